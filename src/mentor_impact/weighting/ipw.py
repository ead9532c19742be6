"""Inverse probability weighting for scalar outcomes and whole effect curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._kernels import weighting as K
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    EstimationError,
    SeparationWarning,
)
from mentor_impact.inference.covariance import IID, Clustered, CovarianceEstimator, resolve_cov
from mentor_impact.results import EffectResults, make_effect_results
from mentor_impact.weighting._common import (
    PS_EPS,
    check_outcome_finite,
    check_ps,
    choice,
    ess,
    missing_outcome_error,
    positivity_check,
    positivity_warn,
    rows,
    trim_mask,
    truncate_weights,
)

__all__ = ["IPW", "PropensityFit", "compare_estimands", "fit_propensity"]

FloatArray = npt.NDArray[np.float64]

_ESTIMANDS = ("ATT", "ATE", "ATC", "ATO")
#: elements of an (n, block) temporary when curves are processed in column blocks
_BLOCK_ELEMS = 24_000_000


class PropensityFit:
    """A fitted propensity score with what the stacked sandwich needs.

    Parameters
    ----------
    ps : ndarray of shape (n,)
        Propensity scores.
    design : ndarray of shape (n, q) or None
        Logit design matrix (intercept first) when the score is a logit MLE.
    hessian : ndarray of shape (q, q) or None
        ``Z' diag(w e (1 - e)) Z`` at the MLE.
    source : str
        ``"logit"`` (own Newton fit), ``"model"`` (a PropensityModel logit), or
        ``"given"`` (fixed scores, treated as known).
    d, w : ndarray of shape (n,), optional
        Treatment and weights (needed for the sandwich term).

    Attributes
    ----------
    term : PSTerm or None
        The propensity-estimation term of the influence functions.
    n_aliased : int
        Covariates left out of the default logit as constant or collinear.
    """

    def __init__(
        self,
        ps: FloatArray,
        design: FloatArray | None = None,
        hessian: FloatArray | None = None,
        source: str = "given",
        d: FloatArray | None = None,
        w: FloatArray | None = None,
    ) -> None:
        self.ps = ps
        self.design = design
        self.hessian = hessian
        self.source = source
        self.term: K.PSTerm | None = None
        self.n_aliased = 0
        if design is not None and hessian is not None and d is not None and w is not None:
            try:
                hinv = np.asarray(np.linalg.inv(hessian), dtype=np.float64)
            except np.linalg.LinAlgError:
                hinv = np.asarray(np.linalg.pinv(hessian), dtype=np.float64)
            self.term = K.PSTerm(design, w * (d - ps), hinv)

    @property
    def ps_if(self) -> FloatArray | None:
        """Scaled influence function of the logit coefficients (n, q), or None."""
        if self.term is None:
            return None
        return np.asarray(self.term.resid[:, None] * (self.term.Z @ self.term.hinv))


def fit_propensity(
    data: Any, propensity: Any = None, ps: npt.ArrayLike | None = None, owner: str = "IPW"
) -> PropensityFit:
    """Fit (or take) the propensity score of ``data``.

    Parameters
    ----------
    data : EvaluationData
        The evaluation sample; ``X``, ``treatment`` and ``weight`` are used.
    propensity : PropensityModel, scikit-learn classifier, PropensityFit or None
        A :class:`PropensityFit` from an earlier call of :func:`fit_propensity` on the same
        data is used as it is (no refit; the stacked sandwich still accounts for it).
        ``None`` fits an unpenalised logit of ``D`` on ``[1, X]`` with the sampling weights
        (Newton-Raphson, exact MLE). A :class:`mentor_impact.propensity.PropensityModel` is
        fitted on ``data``; when it is a logit (its ``estimator`` is ``None``) its design and
        information enter the stacked sandwich. Any other classifier with
        ``predict_proba`` is fitted with ``sample_weight`` and its scores treated as known.
    ps : array-like of shape (n,), optional
        Fixed propensity scores (treated as known); overrides ``propensity``.
    owner : str
        Name used in messages.

    Returns
    -------
    PropensityFit
        Scores and sandwich ingredients.
    """
    d = data.treatment.astype(np.float64)
    w = np.asarray(data.weight, dtype=np.float64)
    if ps is not None:
        return PropensityFit(check_ps(ps, data.n), source="given")
    if isinstance(propensity, PropensityFit):
        # a fit made once on these data and reused across outcomes (e.g. by the pipeline)
        if np.asarray(propensity.ps).shape != (data.n,):
            raise ConfigurationError(
                f"propensity: a PropensityFit for {np.asarray(propensity.ps).size} rows was "
                f"given for data with {data.n} rows. Hint: fit it on the same data with "
                "fit_propensity(data)."
            )
        return propensity
    if propensity is None:
        cols = K.independent_columns(data.X, w)
        Z = K.with_intercept(data.X, cols)
        fit = K.logit_fit(Z, d, w)
        if fit.max_abs_eta > 30.0 or not fit.converged:
            import warnings

            extreme = (fit.ps < PS_EPS) | (fit.ps > 1.0 - PS_EPS)
            warnings.warn(
                f"{owner}: the propensity logit shows signs of (quasi-)separation: "
                f"{int(extreme.sum())} fitted scores within 1e-12 of 0 or 1 "
                f"({rows(extreme) if extreme.any() else 'none yet'}), converged="
                f"{fit.converged}. Hint: drop or merge the covariates that predict treatment "
                "perfectly, or trim.",
                SeparationWarning,
                stacklevel=3,
            )
        out = PropensityFit(fit.ps, Z, fit.hessian, "logit", d, w)
        out.n_aliased = int(data.X.shape[1] - cols.size)
        return out
    if not (hasattr(propensity, "fit") and hasattr(propensity, "predict_proba")):
        raise ConfigurationError(
            f"propensity: expected None, a PropensityModel or a scikit-learn classifier with "
            f"fit and predict_proba; got an object of type {type(propensity).__name__} "
            "without them. Hint: wrap regressors in a classifier or pass ps=... directly."
        )
    from sklearn.base import clone

    model = clone(propensity) if hasattr(propensity, "get_params") else propensity
    if type(model).__name__ == "PropensityModel":
        model.fit(data)
        psv = np.asarray(model.ps_, dtype=np.float64)
        info = getattr(model, "information_", None)
        if getattr(model, "estimator", None) is None and info is not None:
            Z = np.asarray(model.design_matrix(data), dtype=np.float64)
            return PropensityFit(psv, Z, np.asarray(model.information_), "model", d, w)
        return PropensityFit(psv, source="given")
    model.fit(data.X, data.treatment, sample_weight=w)
    proba = np.asarray(model.predict_proba(data.X))
    classes = list(getattr(model, "classes_", [0, 1]))
    psv = np.asarray(proba[:, classes.index(1)], dtype=np.float64)
    return PropensityFit(psv, source="given")


class IPW:
    """Inverse probability weighting (Hajek or Horvitz-Thompson) for scalars and curves.

    Parameters
    ----------
    estimand : {"ATT", "ATE", "ATC", "ATO"}, default="ATT"
        Target population: treated (controls weighted by ``e/(1-e)``), everyone (``1/e``,
        ``1/(1-e)``), controls (treated weighted by ``(1-e)/e``) or the overlap population
        (Li, Morgan & Zaslavsky 2018: treated ``1-e``, controls ``e``).
    normalized : bool, default=True
        Hajek (weights normalised to sum to one within each arm and risk set) if True,
        Horvitz-Thompson (divided by the target count) if False.
    trim : None, float, (float, float), "crump", "minmax" or "common_support", default=None
        Trimming on the propensity score before weighting, with the rules of
        :mod:`mentor_impact.propensity` (shared with matching): ``alpha`` keeps
        ``alpha <= e <= 1 - alpha`` (rule of thumb 0.1); a pair keeps ``lower <= e <= upper``;
        ``"crump"`` the Crump, Hotz, Imbens & Mitnik (2009) optimal alpha;
        ``"minmax"`` (alias ``"common_support"``) min-max common support within exact cells
        (ATT: treated outside the control range of their cell are dropped; ATE/ATO: units
        outside both ranges). Trimming changes the estimand; counts are in
        ``results.dropped``.
    truncate : None, float or (float, float), default=None
        Cap the weights of the weighted arm(s) at percentiles of their distribution
        (Cole & Hernan 2008): ``0.99`` caps at the 99th percentile, ``(0.01, 0.99)`` at both
        ends. For the ATT only control weights are truncated.
    propensity : PropensityModel, classifier, PropensityFit or None, default=None
        Propensity model (see :func:`fit_propensity`); ``None`` fits a logit of the treatment
        on ``[1, X]`` with the sampling weights.
    by_risk_set : bool, default=True
        For risk-set data (``data.start_week`` present), normalise within each risk set and
        aggregate over start weeks with the target-population shares (METHODS §5.3).

    Notes
    -----
    * Hajek estimator within risk set ``s``:
      ``m_as = sum_{i in s, arm a} w_i omega_i Y_i / sum w_i omega_i`` and
      ``theta = sum_s pi_s (m_1s - m_0s)`` with ``pi_s`` the share of the target population
      (ATT: weighted treated count ``N_1(s)/N_1``). Without risk sets (or with
      ``by_risk_set=False``) there is one group, and the ATT is R's coefficient of ``treat``
      in ``lm(y ~ treat, weights = w_att)``.
    * Horvitz-Thompson: ``sum w (D omega_1 - (1-D) omega_0) Y / sum w t`` with ``t`` the
      target density (ATT: ``D``); normalising within risk sets by ``N_1(s)`` and
      aggregating with ``N_1(s)/N_1`` gives the same number.
    * ``w`` are sampling / frequency weights (``data.weight``, ``1/pi`` for subsampled
      controls); they multiply the balancing weights and enter the logit likelihood, so
      integer weights equal duplicated rows.
    * Inference: stacked M-estimation (Lunceford & Davidian 2004) of the logit score
      ``w z (D - e)``, the arm means and the target shares. The influence function includes
      the propensity estimation term ``(d theta / d gamma) H^{-1} w z (D - e)``; the
      default covariance is ``Clustered("person")`` for risk-set data (meat summed within
      person, ``G/(G-1)`` factor) and ``IID()`` (``A^-1 B A^-T / n``, no small-sample
      factor; equal to statsmodels' / Stata's ``teffects ipw``) otherwise. With fixed scores
      (``ps=``) or a non-logit classifier the scores are treated as known; then IID equals
      R's ``sandwich::vcovHC(lm(y ~ treat, weights), type = "HC0")``.
    * Default logit: constant and collinear covariates are left out (counted in
      ``extra["ps_aliased_covariates"]``); the fitted scores are those of R's ``glm``, which
      reports ``NA`` for aliased coefficients.
    * Truncated weights are held fixed in the derivative (their rows get no PS term);
      trimming thresholds are held fixed, and the logit is fitted on all rows.
    * Results expose ``weights`` for reuse by duration estimators: without risk sets the raw
      ``w * omega`` (R / WeightIt convention: ATT weights 1 for treated, ``e/(1-e)`` for
      controls); with risk sets each arm's weights within risk set ``s`` are rescaled to sum
      to the target count of ``s`` (ATT: ``N_1(s)``), so a pooled weighted contrast equals
      the risk-set normalised one. Trimmed rows get weight 0; for estimand B the weights
      are those at the first horizon (censoring varies by ``tau``). ``extra["ess"]`` holds
      the effective sample size ``(sum w)^2 / sum w^2`` by target.
    """

    def __init__(
        self,
        *,
        estimand: str = "ATT",
        normalized: bool = True,
        trim: Any = None,
        truncate: Any = None,
        propensity: Any = None,
        by_risk_set: bool = True,
    ) -> None:
        self.estimand = estimand
        self.normalized = normalized
        self.trim = trim
        self.truncate = truncate
        self.propensity = propensity
        self.by_risk_set = by_risk_set

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn convention)."""
        return {
            "estimand": self.estimand,
            "normalized": self.normalized,
            "trim": self.trim,
            "truncate": self.truncate,
            "propensity": self.propensity,
            "by_risk_set": self.by_risk_set,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"IPW({args})"

    # ------------------------------------------------------------------ public
    def fit(
        self,
        data: Any,
        *,
        outcome: str,
        cov: CovarianceEstimator | str | None = None,
        ps: npt.ArrayLike | None = None,
        dynamic: str = "A",
        hazard: npt.ArrayLike | None = None,
        eligible_weeks: str | npt.ArrayLike | None = None,
        horizon: int | None = None,
    ) -> EffectResults:
        """Estimate the weighted contrast for one outcome.

        Parameters
        ----------
        data : EvaluationData
            The evaluation sample.
        outcome : str
            Name of a scalar outcome or a curve over ``data.tau``.
        cov : IID, Clustered or str, optional
            Covariance; default ``Clustered("person")`` for risk-set data, else ``IID()``.
        ps : array-like of shape (n,), optional
            Fixed propensity scores (treated as known).
        dynamic : {"A", "B"}, default="A"
            Estimand A ("start now vs not now") or B ("start now vs no start during the
            follow-up"): controls are censored at their own later start and reweighted by
            the inverse probability of remaining untreated (METHODS §5.4).
        hazard : array-like of shape (n,) or (n, K), optional
            Estimand B: weekly start hazard of each control after ``s``; default the
            propensity score itself (the pooled weekly start hazard of METHODS §5.1). A
            (n, K) array is taken as the probability of remaining untreated through
            ``tau`` directly.
        eligible_weeks : str or array-like of shape (n,), optional
            Estimand B: number of weeks after ``s`` that the control stays eligible (weeks
            after leaving eligibility contribute a factor 1); a frame column name or an
            array, negative = through the whole horizon. Default: the frame column
            ``eligible_until`` if present, else eligible throughout.
        horizon : int, optional
            Estimand B with a scalar outcome: the horizon week ``tau`` at which the outcome
            is measured (controls starting at or before it are censored). Required then.

        Returns
        -------
        EffectResults
            Estimates over the targets with influence functions, per-row ``weights`` and
            ``extra`` (``ess``, ``ps``, ``n_trimmed``, ``n_truncated``, for B
            ``share_later_treated`` and ``n_censored``).

        Raises
        ------
        ConfigurationError
            Invalid options.
        DataValidationError
            Propensity scores at 0 or 1, missing outcomes, an empty arm after trimming.
        """
        return self._fit_outcomes(data, [outcome], cov, ps, dynamic, hazard, eligible_weeks,
                                  horizon)[0]

    def fit_many(
        self,
        data: Any,
        *,
        outcomes: list[str],
        cov: CovarianceEstimator | str | None = None,
        ps: npt.ArrayLike | None = None,
        dynamic: str = "A",
        hazard: npt.ArrayLike | None = None,
        eligible_weeks: str | npt.ArrayLike | None = None,
        horizon: int | None = None,
    ) -> dict[str, EffectResults]:
        """Estimate the weighted contrast for several outcomes with one set of weights.

        Equal, outcome by outcome, to :meth:`fit`; the propensity score, the weights and
        their checks are computed once. For estimand B with Hajek weights the curves of
        the same targets are processed together: the per-target control weights of each
        block of rows are computed once for all outcomes (in the estimation passes and in
        the covariance pass), which is what makes estimand B affordable at register size.

        Parameters
        ----------
        data : EvaluationData
            The evaluation sample.
        outcomes : list of str
            Names of scalar outcomes or curves (duplicates are fitted once).
        cov, ps, dynamic, hazard, eligible_weeks, horizon
            As in :meth:`fit`.

        Returns
        -------
        dict of str to EffectResults
            One results object per outcome, in the order given.
        """
        names = list(dict.fromkeys(outcomes))
        res = self._fit_outcomes(data, names, cov, ps, dynamic, hazard, eligible_weeks, horizon)
        return dict(zip(names, res, strict=True))

    def _fit_outcomes(
        self,
        data: Any,
        outcomes: list[str],
        cov: CovarianceEstimator | str | None,
        ps: npt.ArrayLike | None,
        dynamic: str,
        hazard: npt.ArrayLike | None,
        eligible_weeks: str | npt.ArrayLike | None,
        horizon: int | None,
    ) -> list[EffectResults]:
        self._check_params()
        choice("IPW.fit", "dynamic", dynamic, ("A", "B"))
        if dynamic == "B" and self.estimand != "ATT":
            raise ConfigurationError(
                f"dynamic: estimand B is defined for the ATT only; got estimand="
                f"{self.estimand!r}. Hint: use IPW(estimand='ATT')."
            )
        if dynamic == "B" and data.later_start is None and "later_start" not in data.frame:
            raise DataValidationError(
                "later_start: estimand B needs each control's weeks to its own later start; "
                "found no later_start in the data. Hint: build the data with RiskSetDesign."
            )
        Ys = [np.asarray(data.outcome(o)) for o in outcomes]
        n = data.n
        d = data.treatment.astype(np.float64)
        w = np.asarray(data.weight, dtype=np.float64)
        pf = fit_propensity(data, self.propensity, ps)
        e = pf.ps
        keep = trim_mask(e, d, self.trim, data.cell, self.estimand)
        n_trim = int((~keep).sum())
        wk = np.where(keep, w, 0.0)
        t_arm = d > 0.5
        for arm_name, arm in (("treated", t_arm), ("control", ~t_arm)):
            if not (keep & arm & (wk > 0)).any():
                raise DataValidationError(
                    f"data: expected treated and control rows with positive weight after "
                    f"trimming; found no {arm_name} rows ({n_trim} of {n} rows trimmed). Hint: "
                    "relax trim or check the treatment coding."
                )
        # PS at 0 / 1 in rows that need 1/e or 1/(1-e)
        need = self._needs_inverse(d, keep)
        bad = need & ((e < PS_EPS) | (e > 1.0 - PS_EPS))
        if bad.any():
            raise EstimationError(
                f"ps: expected propensity scores strictly inside (0, 1) where weights divide by "
                f"them; found {int(bad.sum())} rows at 0 or 1 ({rows(bad)}). Hint: trim "
                "(trim=0.01 or 'common_support') or use overlap weights (estimand='ATO')."
            )
        eu = np.clip(e, PS_EPS, 1.0 - PS_EPS)
        omega, g, t, tp = K.arm_weights(eu, d, self.estimand)
        # truncation of the weighted arm(s)
        n_trunc = 0
        arms = [~t_arm] if self.estimand == "ATT" else [t_arm] if self.estimand == "ATC" else [
            t_arm, ~t_arm]
        for arm in arms:
            omega, capped = truncate_weights(omega, arm & keep, self.truncate)
            g = np.where(capped, 0.0, g)
            n_trunc += int(capped.sum())
        if not np.all(np.isfinite(omega[keep])):
            raise EstimationError(
                "weights: expected finite balancing weights; found infinite ones. Hint: trim."
            )
        groups, n_groups = self._groups(data)
        prep = _Prep(d, wk, keep, t_arm, omega, g, t, tp, pf, groups, n_groups)
        b_infos: dict[bool, _BWeights] = {}
        if dynamic == "B":
            for curve in sorted({Y.ndim == 2 for Y in Ys}):
                b_infos[curve] = _BWeights(data, eu, omega, g, curve, hazard, eligible_weeks,
                                           horizon)
        nu1 = np.where(t_arm, wk * omega, 0.0)
        ess1 = ess(nu1[t_arm][:, None])
        positivity_check("IPW", nu1[:, None], t_arm & keep, "treated", stacklevel=4)
        cov_use = cov
        if cov_use is None:
            cov_use = Clustered("person") if data.start_week is not None else "iid"
        fits: dict[int, _OneFit] = {}
        batch = [j for j, Y in enumerate(Ys) if Y.ndim == 2 and Y.shape == Ys[0].shape
                 and Ys[0].ndim == 2]
        if dynamic == "B" and self.normalized and len(batch) > 1:
            fits.update(self._estimate_b_batch([Ys[j] for j in batch], batch,
                                               [outcomes[j] for j in batch], prep,
                                               b_infos[True], cov_use, data))
        for j, Y in enumerate(Ys):
            if j not in fits:
                fits[j] = self._estimate_one(Y, outcomes[j], prep, b_infos.get(Y.ndim == 2))
        out = []
        for j, outcome in enumerate(outcomes):
            f = fits[j]
            curve = Ys[j].ndim == 2
            Kt = f.theta.size
            extra: dict[str, Any] = {}
            if dynamic == "B":
                extra.update(b_infos[curve].info)
            if self.normalized:
                extra["risk_sets_left_out"] = f.n_empty
            weights = _reuse_weights(nu1, f.nu0_first, t_arm, wk * t, groups, n_groups)
            tau = data.tau if curve else None
            extra.update(
                {
                    "ess": pd.DataFrame(
                        {
                            "target": list(_targets(outcome, tau, Kt)),
                            "ess_treated": np.broadcast_to(ess1, (Kt,)),
                            "ess_control": np.broadcast_to(f.ess0, (Kt,)),
                        }
                    ),
                    "ps": e,
                    "ps_source": pf.source,
                    "ps_aliased_covariates": pf.n_aliased,
                    "n_trimmed": n_trim,
                    "n_truncated": n_trunc,
                    "dynamic_estimand": dynamic,
                    "normalized": self.normalized,
                    "n_risk_sets": n_groups if groups is not None else 1,
                }
            )
            dropped = {"trimmed": n_trim} if n_trim else {}
            estimand_label = self.estimand if dynamic == "A" else f"{self.estimand}-B"
            out.append(make_effect_results(
                estimator="IPW" if self.normalized else "IPW-HT",
                estimand=estimand_label,
                outcome=outcome,
                estimate=f.theta,
                influence=f.phi,
                cov=cov_use if f.cov is None else f.cov,
                cov_type=f.cov_type,
                cluster=data.cluster,
                tau=tau,
                treated_mean=f.m1,
                counterfactual_mean=f.m0,
                n=int(keep.sum()),
                n_treated=int((keep & t_arm).sum()),
                n_control=int((keep & ~t_arm).sum()),
                dropped=dropped,
                weights=weights,
                extra=extra,
                config={**self.get_params(), "propensity": repr(self.propensity),
                        "dynamic": dynamic},
                frame=data.frame,
            ))
        return out

    def _estimate_one(
        self, Y_raw: npt.NDArray[Any], outcome: str, p: _Prep, b_info: _BWeights | None
    ) -> _OneFit:
        """Estimates, influence function and control ESS of one outcome."""
        curve = Y_raw.ndim == 2
        int_outcome = bool(np.issubdtype(Y_raw.dtype, np.integer) or Y_raw.dtype == bool)
        n = Y_raw.shape[0]
        Kt = Y_raw.shape[1] if curve else 1
        d, wk, keep, t_arm = p.d, p.wk, p.keep, p.t_arm
        omega, g, t, tp, term = p.omega, p.g, p.t, p.tp, p.pf.term
        used = (wk > 0)[:, None]
        Y2 = Y_raw if curve else Y_raw[:, None]
        if b_info is None and self.normalized:
            # weights constant over targets: one read of Y in row blocks, influence kept
            # in factored form (never n x K in memory; see HajekInfluence)
            if not int_outcome:
                check_outcome_finite(Y2, used, outcome)
            theta, m1, m0, phi_rows, n_empty = K.hajek_rows(
                Y2, d, wk, omega, g, t, tp, term, p.groups, p.n_groups
            )
            nu0b = np.where(~t_arm, wk * omega, 0.0)[:, None]
            positivity_check("IPW", nu0b, ~t_arm & keep, "control", stacklevel=5)
            return _OneFit(theta, m1, m0, phi_rows, n_empty,
                           np.broadcast_to(ess(nu0b[~t_arm]), (Kt,)).copy(), nu0b[:, 0])
        if b_info is not None and self.normalized:
            # estimand B: control weights vary by target; produced per row block
            theta, m1, m0, phi_v, n_empty, st = K.hajek_rows_varying(
                Y2, d, wk, omega, g, b_info.rows, t, tp, term, p.groups, p.n_groups
            )
            return _OneFit(theta, m1, m0, phi_v, n_empty,
                           *self._b_controls(outcome, st, p, b_info, [0]))
        # Horvitz-Thompson: targets in column blocks, temporaries O(n * block)
        block = max(1, min(Kt, _BLOCK_ELEMS // max(n, 1)))
        theta = np.empty(Kt)
        m1 = np.empty(Kt)
        m0 = np.empty(Kt)
        phi = np.empty((n, Kt))
        ess0 = np.empty(Kt)
        nu0_first: FloatArray | None = None
        for lo in range(0, Kt, block):
            cols = slice(lo, min(lo + block, Kt))
            Yb = np.asarray(Y_raw[:, cols] if curve else Y_raw[:, None], dtype=np.float64)
            if b_info is not None:
                omega0, g0, keep_b = b_info.block(cols)
                uses = used & (t_arm[:, None] | keep_b)
                if not np.isfinite(Yb).all():
                    Yb = np.where(uses, Yb, 0.0)
            else:
                omega0, g0 = omega, g
                uses = used
            if not int_outcome:  # integer / boolean outcomes cannot be missing
                check_outcome_finite(Yb, uses, outcome)
            th, a1, a0, ph = K.horvitz_thompson_if(
                Yb, d, wk, omega, omega0, g, g0, t, tp, term
            )
            theta[cols], m1[cols], m0[cols], phi[:, cols] = th, a1, a0, ph
            if b_info is not None or nu0_first is None:  # A: the weights do not vary by tau
                om0 = omega0 if omega0.ndim == 2 else omega0[:, None]
                nu0b = np.where(~t_arm[:, None], wk[:, None] * om0, 0.0)
                ess0[cols] = ess(nu0b[~t_arm])
                positivity_check("IPW", nu0b, ~t_arm & keep, "control", stacklevel=5)
                if nu0_first is None:
                    nu0_first = nu0b[:, 0]
            else:
                ess0[cols] = ess0[0]
        assert nu0_first is not None
        return _OneFit(theta, m1, m0, phi, np.zeros(Kt, dtype=np.int64), ess0, nu0_first)

    def _b_controls(
        self, outcome: str, st: dict[str, npt.NDArray[Any]], p: _Prep, b_info: _BWeights,
        cols: list[int],
    ) -> tuple[FloatArray, FloatArray]:
        """Check missing outcomes, warn on extreme control weights; ESS and first weights."""
        if "n_bad" in st:
            n_bad = np.atleast_1d(st["n_bad"])
            bad_rows = st["bad_rows"] if st["bad_rows"].ndim == 2 else st["bad_rows"][:, None]
            for c in cols:
                if int(n_bad[c]) > 0:
                    raise missing_outcome_error(outcome, int(n_bad[c]), bad_rows[:, c] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ess0 = np.where(st["sumsq"] > 0, st["sum"] ** 2 / st["sumsq"], 0.0)
        positivity_warn("IPW", int((~p.t_arm & p.keep).sum()), st["sum"], st["sumsq"],
                        st["max"], "control", stacklevel=6)
        om_first = b_info.rows(slice(0, p.d.size), need_g=False, first=True)[0][:, 0]
        return ess0, np.where(~p.t_arm, p.wk * om_first, 0.0)

    def _estimate_b_batch(
        self,
        Ys: list[npt.NDArray[Any]],
        index: list[int],
        names: list[str],
        p: _Prep,
        b_info: _BWeights,
        cov: CovarianceEstimator | str,
        data: Any,
    ) -> dict[int, _OneFit]:
        """Estimand B for several curves sharing the per-block control weights."""
        fits, st = K.hajek_rows_varying_multi(
            Ys, p.d, p.wk, p.omega, p.g, b_info.rows, p.t, p.tp, p.pf.term, p.groups,
            p.n_groups,
        )
        ess0, nu0_first = self._b_controls(names[0], st, p, b_info, [0])
        for c, name in enumerate(names[1:], start=1):  # missing outcomes of the others
            self._b_controls(name, {k: v for k, v in st.items() if k != "max"}
                             | {"max": np.zeros_like(st["sum"])}, p, b_info, [c])
        covs: list[FloatArray | None] = [None] * len(Ys)
        label = None
        est = resolve_cov(cov, IID())
        if isinstance(est, (IID, Clustered)):  # sums over clusters: one shared pass
            codes, factor = est.grouping(p.d.size, cluster=data.cluster, frame=data.frame)
            grams = K.varying_grams([f[3] for f in fits], codes)
            covs = [gm * factor for gm in grams]
            label = est.describe()
        # any other covariance: each results object computes its own from the influence
        return {
            j: _OneFit(f[0], f[1], f[2], f[3], f[4], ess0, nu0_first, covs[c], label)
            for c, (j, f) in enumerate(zip(index, fits, strict=True))
        }

    def fit_ab(
        self, data: Any, *, outcome: str, cov: CovarianceEstimator | str | None = None,
        **kwargs: Any,
    ) -> dict[str, EffectResults]:
        """Fit estimands A and B on the same data; see :meth:`fit` and :func:`compare_estimands`.

        Parameters
        ----------
        data : EvaluationData
            Risk-set data with ``later_start``.
        outcome : str
            Outcome name.
        cov : IID, Clustered or str, optional
            Covariance (default clustered by person for risk-set data).
        **kwargs
            Passed to :meth:`fit` (``ps``, ``hazard``, ``eligible_weeks``).

        Returns
        -------
        dict
            ``{"A": results_A, "B": results_B}``.
        """
        ps = kwargs.pop("ps", None)
        horizon = kwargs.get("horizon")
        a = self.fit(data, outcome=outcome, cov=cov, ps=ps, horizon=horizon)
        b = self.fit(data, outcome=outcome, cov=cov, ps=ps, dynamic="B", **kwargs)
        return {"A": a, "B": b}

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        choice("IPW", "estimand", self.estimand, _ESTIMANDS)
        if not isinstance(self.normalized, (bool, np.bool_)):
            raise ConfigurationError(
                f"The 'normalized' parameter of IPW must be a bool. Got {self.normalized!r} "
                "instead."
            )

    def _needs_inverse(self, d: FloatArray, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        t = d > 0.5
        if self.estimand == "ATT":
            return keep & ~t
        if self.estimand == "ATC":
            return keep & t
        if self.estimand == "ATE":
            return keep
        return np.zeros_like(keep)

    def _groups(self, data: Any) -> tuple[npt.NDArray[np.int64] | None, int]:
        if not self.by_risk_set or data.start_week is None or not self.normalized:
            return None, 1
        _, codes = np.unique(data.start_week, return_inverse=True)
        return codes.astype(np.int64), int(codes.max()) + 1 if codes.size else 0


@dataclass
class _Prep:
    """What every outcome of one IPW fit shares: treatment, weights, propensity, groups."""

    d: FloatArray
    wk: FloatArray
    keep: npt.NDArray[np.bool_]
    t_arm: npt.NDArray[np.bool_]
    omega: FloatArray
    g: FloatArray
    t: FloatArray
    tp: FloatArray
    pf: PropensityFit
    groups: npt.NDArray[np.int64] | None
    n_groups: int


@dataclass
class _OneFit:
    """Estimates of one outcome (influence function dense or factored; covariance if ready)."""

    theta: FloatArray
    m1: FloatArray
    m0: FloatArray
    phi: Any
    n_empty: npt.NDArray[np.int64]
    ess0: FloatArray
    nu0_first: FloatArray
    cov: FloatArray | None = None
    cov_type: str | None = None


def _reuse_weights(
    a1: FloatArray,
    a0: FloatArray,
    t_arm: npt.NDArray[np.bool_],
    tw: FloatArray,
    groups: npt.NDArray[np.int64] | None,
    n_groups: int,
) -> FloatArray:
    """Per-row weights for reuse (see the Notes of :class:`IPW`).

    Raw ``w * omega`` without risk sets; with risk sets each arm's weights in risk set ``s``
    are rescaled to sum to the target count of ``s``.
    """
    if groups is None:
        return np.where(t_arm, a1, a0)
    T_s = np.bincount(groups, weights=tw, minlength=n_groups)
    S1 = np.bincount(groups, weights=np.where(t_arm, a1, 0.0), minlength=n_groups)
    S0 = np.bincount(groups, weights=np.where(t_arm, 0.0, a0), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(S1 > 0, T_s / S1, 0.0)
        f0 = np.where(S0 > 0, T_s / S0, 0.0)
    return np.where(t_arm, a1 * f1[groups], a0 * f0[groups])


def _targets(outcome: str, tau: npt.NDArray[np.int64] | None, k: int) -> tuple[str, ...]:
    if tau is None:
        return (outcome,)
    return tuple(f"tau={int(x)}" for x in tau)


class _BWeights:
    """Control weights of estimand B, produced per block of targets (see :meth:`IPW.fit`)."""

    def __init__(
        self,
        data: Any,
        e: FloatArray,
        omega: FloatArray,
        g: FloatArray,
        curve: bool,
        hazard: npt.ArrayLike | None,
        eligible_weeks: str | npt.ArrayLike | None,
        horizon: int | None,
    ) -> None:
        n = data.n
        ls = data.later_start if data.later_start is not None else np.asarray(
            data.frame["later_start"], dtype=np.int64)
        self.ls = np.asarray(ls, dtype=np.int64)
        if curve:
            self.tau = np.asarray(data.tau, dtype=np.int64)
        else:
            if horizon is None:
                raise ConfigurationError(
                    "horizon: estimand B with a scalar outcome needs the horizon week at which "
                    "the outcome is measured; got None. Hint: pass horizon=52 (say) or use a "
                    "curve."
                )
            self.tau = np.asarray([int(horizon)], dtype=np.int64)
        Kt = self.tau.size
        self.treated = data.treatment > 0
        # weeks at risk of a later start: the design's per-week indicators (re-entry
        # counted, METHODS §5.4) unless eligible_weeks is given explicitly
        self.data = data
        self.at_risk_cols: npt.NDArray[np.int64] | None = None
        if eligible_weeks is None and data.at_risk is not None:
            tau_all = np.asarray(data.tau if data.tau is not None else np.arange(Kt))
            cols_ = np.searchsorted(tau_all, self.tau)
            if np.any(cols_ >= tau_all.size) or np.any(tau_all[np.minimum(
                    cols_, tau_all.size - 1)] != self.tau):
                raise ConfigurationError(
                    f"horizon: expected a horizon week among the data's tau "
                    f"(0..{int(tau_all.max())}); got {self.tau.tolist()}."
                )
            self.at_risk_cols = cols_.astype(np.int64)
        if eligible_weeks is None and self.at_risk_cols is None and (
                "eligible_until" in data.frame.columns):
            eligible_weeks = "eligible_until"
        big = np.iinfo(np.int64).max // 4
        if eligible_weeks is None:
            self.elig = np.full(n, big, dtype=np.int64)
        else:
            ev = (np.asarray(data.frame[eligible_weeks]) if isinstance(eligible_weeks, str)
                  else np.asarray(eligible_weeks))
            evf = pd.to_numeric(pd.Series(ev), errors="coerce").to_numpy(float)
            if evf.shape != (n,):
                raise DataValidationError(
                    f"eligible_weeks: expected {n} values; found shape {evf.shape}."
                )
            self.elig = np.where(~np.isfinite(evf) | (evf < 0), big,
                                 np.nan_to_num(evf)).astype(np.int64)
        self.hazard_matrix: FloatArray | None = None
        self.log1m_h: FloatArray | None = None
        self.e = e
        if hazard is None:
            self.log1m_h = np.log1p(-e)
        else:
            hz = np.asarray(hazard, dtype=np.float64)
            if hz.shape == (n,):
                bad = ~np.isfinite(hz) | (hz < 0) | (hz >= 1)
                if bad.any():
                    raise DataValidationError(
                        f"hazard: expected weekly hazards in [0, 1); found {int(bad.sum())} "
                        f"others ({rows(bad)})."
                    )
                self.log1m_h = np.log1p(-hz)
            elif hz.shape == (n, Kt):
                badm = (~np.isfinite(hz) | (hz <= 0) | (hz > 1)) & ~self.treated[:, None]
                if badm.any():
                    bad_rows = badm.any(axis=1)
                    raise DataValidationError(
                        "hazard: a (n, K) array is the probability of remaining untreated and "
                        f"must lie in (0, 1]; found {int(badm.sum())} others in "
                        f"{int(bad_rows.sum())} rows ({rows(bad_rows)})."
                    )
                self.hazard_matrix = hz
            else:
                raise DataValidationError(
                    f"hazard: expected shape ({n},) or ({n}, {Kt}); found {hz.shape}."
                )
        self.from_ps = hazard is None
        #: targets are consecutive weeks (a curve): survival weights by a running product
        self.consecutive = bool(Kt > 1 and np.all(np.diff(self.tau) == 1))
        self.tau_f = self.tau.astype(np.float64)
        self.omega = omega
        with np.errstate(invalid="ignore", divide="ignore"):
            self.ratio = np.where(omega > 0, g / omega, 0.0)
        ctrl = ~self.treated
        later = ctrl & (self.ls >= 0)
        n_cens = np.array([int((ctrl & (self.ls >= 0) & (self.ls <= t)).sum()) for t in self.tau])
        self.info = {
            "share_later_treated": float(later.sum() / max(int(ctrl.sum()), 1)),
            "n_censored": n_cens,
            "hazard_source": "ps" if hazard is None else "given",
            "weeks_at_risk": ("design at_risk (re-entry counted)"
                              if self.at_risk_cols is not None and hazard is None
                              else "eligible_until" if hazard is None else "n/a"),
        }

    def rows(
        self,
        idx: slice | npt.NDArray[np.int64],
        need_g: bool = True,
        need_kept: bool = False,
        first: bool = False,
    ) -> tuple[FloatArray, FloatArray | None, npt.NDArray[np.bool_] | None]:
        """Return ``(omega0, g0, keep)`` for the rows ``idx`` and every target.

        ``g0`` (the logit derivative weights) is None unless ``need_g``, ``keep`` (the
        controls still uncensored; treated rows True) None unless ``need_kept``;
        ``first=True`` gives the first target only (shape (len(idx), 1)).
        """
        tau = self.tau[:1] if first else self.tau
        ls = self.ls[idx]
        tr = self.treated[idx]
        m: FloatArray | None = None
        if self.hazard_matrix is not None:
            hm = self.hazard_matrix[idx][:, : tau.size]
            om0 = 1.0 / np.where(tr[:, None], 1.0, hm)
        elif self.at_risk_cols is not None:
            assert self.log1m_h is not None
            L = self.log1m_h[idx]
            cols_ = self.at_risk_cols[: tau.size]
            A = self.data.at_risk_weeks(idx)
            cnt = np.cumsum(A[:, : int(cols_[-1]) + 1], axis=1, dtype=np.int32)
            if tau.size > 1 and self.consecutive:
                # (1 - h)^-m(tau) with m the weeks at risk in (s, s + tau]: a running
                # product of 1/(1 - h) over the weeks at risk
                om0 = np.where(A[:, cols_], np.exp(-L)[:, None], 1.0)
                om0[:, 0] = np.exp(-cnt[:, cols_[0]] * L)
                np.cumprod(om0, axis=1, out=om0)
            else:
                om0 = np.exp(-cnt[:, cols_] * L[:, None])
            if need_g:
                m = cnt[:, cols_].astype(np.float64)
        else:
            assert self.log1m_h is not None
            L = self.log1m_h[idx]
            elig = self.elig[idx]
            if tau.size > 1 and self.consecutive:
                # (1 - h)^-m for m = tau0, tau0 + 1, ... by a running product (an elementwise
                # exp costs several times more); the weeks after eligibility ends are capped
                om0 = np.empty((L.size, tau.size))
                om0[:, 0] = np.exp(-tau[0] * L)
                om0[:, 1:] = np.exp(-L)[:, None]
                np.cumprod(om0, axis=1, out=om0)
                capped = np.flatnonzero(elig < tau[-1])
                if capped.size:
                    om0[capped] = np.where(tau[None, :] > elig[capped, None],
                                           np.exp(-elig[capped] * L[capped])[:, None],
                                           om0[capped])
            else:
                m = np.minimum(self.tau_f[: tau.size][None, :], elig[:, None].astype(np.float64))
                om0 = np.exp(-m * L[:, None])
        om0 *= self.omega[idx][:, None]
        # censoring at the own later start: only controls with a later start (a subset)
        cs = np.flatnonzero((ls >= 0) & ~tr)
        cens = ls[cs, None] <= tau[None, :]
        om0[cs] = np.where(cens, 0.0, om0[cs])
        keep_b = None
        if need_kept:
            keep_b = np.ones(om0.shape, dtype=bool)
            keep_b[cs] = ~cens
        if not need_g:
            return om0, None, keep_b
        if self.from_ps and self.log1m_h is not None:
            # d(-log S)/d gamma = m e z when the hazard is the propensity score
            if m is None:
                m = np.minimum(self.tau_f[: tau.size][None, :],
                               self.elig[idx][:, None].astype(np.float64))
            g0 = m * self.e[idx][:, None]
            g0 += self.ratio[idx][:, None]
            g0 *= om0
        else:
            g0 = om0 * self.ratio[idx][:, None]
        return om0, g0, keep_b

    def block(self, cols: slice) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Return ``(omega0, g0, keep)`` of shape (n, block) for the targets ``cols``."""
        tau = self.tau[cols]
        # censored at own later start S_j = s + later_start: kept at tau iff later_start > tau
        keep_b = (self.ls[:, None] < 0) | (self.ls[:, None] > tau[None, :])
        keep_b[self.treated] = True
        if self.hazard_matrix is not None:
            hm = self.hazard_matrix[:, cols]
            inv_s = 1.0 / np.where(self.treated[:, None], 1.0, hm)
            dlog: FloatArray | float = 0.0
        else:
            assert self.log1m_h is not None
            if self.at_risk_cols is not None:  # weeks at risk counted from the design
                A = self.data.at_risk_weeks()
                cnt = np.cumsum(A, axis=1, dtype=np.int32)
                m = cnt[:, self.at_risk_cols[cols]].astype(np.float64)
            else:
                m = np.minimum(tau[None, :], self.elig[:, None]).astype(np.float64)
            inv_s = np.exp(-m * self.log1m_h[:, None])
            # d(-log S)/d gamma = m e z when the hazard is the propensity score
            dlog = m * self.e[:, None] if self.from_ps else 0.0
        om0 = np.where(keep_b, self.omega[:, None] * inv_s, 0.0)
        g0 = om0 * (self.ratio[:, None] + dlog)
        return om0, g0, keep_b


def compare_estimands(results: dict[str, EffectResults], level: float = 0.95) -> pd.DataFrame:
    """Put estimands A and B side by side.

    Parameters
    ----------
    results : dict
        ``{"A": results_A, "B": results_B}`` as returned by :meth:`IPW.fit_ab` (any
        labels work).
    level : float, default=0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per target; columns ``estimate_<label>``, ``std_error_<label>``,
        ``ci_lower_<label>``, ``ci_upper_<label>`` per estimand.
    """
    frames = []
    for label, res in results.items():
        ci = res.conf_int(level)
        frames.append(
            pd.DataFrame(
                {
                    f"estimate_{label}": res.estimate,
                    f"std_error_{label}": res.std_errors.to_numpy(),
                    f"ci_lower_{label}": ci["lower"].to_numpy(),
                    f"ci_upper_{label}": ci["upper"].to_numpy(),
                },
                index=res.index,
            )
        )
    return pd.concat(frames, axis=1)
