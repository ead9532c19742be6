"""Augmented IPW (doubly robust) estimation with cross-fitting by person."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mentor_impact._kernels import weighting as K
from mentor_impact._rng import as_generator
from mentor_impact.exceptions import ConfigurationError, EstimationError
from mentor_impact.inference.covariance import Clustered, CovarianceEstimator
from mentor_impact.inference.influence import RowIndex, RowInfluence
from mentor_impact.results import EffectResults, make_effect_results
from mentor_impact.weighting._common import (
    PS_EPS,
    check_outcome_finite,
    choice,
    ess,
    positivity_check,
    rows,
)
from mentor_impact.weighting.ipw import _BLOCK_ELEMS

__all__ = ["AIPW", "person_folds"]

FloatArray = npt.NDArray[np.float64]


def person_folds(cluster: npt.ArrayLike, n_folds: int, seed: Any = 0) -> npt.NDArray[np.int64]:
    """Assign rows to cross-fitting folds so that all rows of a person share a fold.

    Parameters
    ----------
    cluster : array-like of shape (n,)
        Person (cluster) labels.
    n_folds : int
        Number of folds.
    seed : int, Generator or None, default=0
        Seed of the random permutation of persons.

    Returns
    -------
    ndarray of shape (n,)
        Fold index ``0..n_folds-1`` of every row; persons are dealt to folds in a random
        order, so fold sizes (in persons) differ by at most one.
    """
    _, codes = np.unique(np.asarray(cluster), return_inverse=True)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    perm = as_generator(seed).permutation(n_groups)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[perm] = np.arange(n_groups) % n_folds
    return fold_of_group[codes]


_design = K.with_intercept


class AIPW:
    """Augmented inverse probability weighting (doubly robust) with cross-fitting.

    Parameters
    ----------
    propensity_learner : scikit-learn classifier or None, default=None
        Model of ``P(D = 1 | X)``; must implement ``predict_proba``. ``None`` fits an
        unpenalised logit of ``D`` on ``[1, X]`` (exact MLE, as R's ``glm``).
    outcome_learner : scikit-learn regressor or None, default=None
        Model of ``E[Y | X, D = d]``, fitted separately in each arm (only controls for the
        ATT); for a curve it is fitted to the ``(n, K)`` outcome matrix (multi-output).
        ``None`` fits (weighted) least squares on ``[1, X]``, as R's ``lm``.
    n_folds : int, default=5
        Cross-fitting folds, split by person (``data.cluster``): nuisance models are fitted
        on the other folds and predicted on the held-out fold. ``n_folds=1`` fits and
        predicts on the whole sample (the textbook AIPW).
    estimand : {"ATE", "ATT"}, default="ATE"
        Target population.
    seed : int, Generator or None, default=0
        Seed of the fold split (and passed to nothing else; seed your learners yourself).
    ps_clip : float or None, default=None
        If given, clip propensity scores to ``[ps_clip, 1 - ps_clip]``; by default scores at 0
        or 1 raise an error.
    design_from : PropensityFit or None, default=None
        A :func:`~mentor_impact.weighting.fit_propensity` result on the same data whose logit
        design ``[1, X]`` (the same non-aliased columns the default learners use) is reused
        instead of building another ``n x q`` copy; the scores are still (cross-)fitted here.
        Ignored when it carries no design or has another number of rows.

    Notes
    -----
    * ATE: ``phi_i = mu1 - mu0 + D (Y - mu1) / e - (1 - D)(Y - mu0) / (1 - e)``,
      ``theta = sum w phi / sum w``; scaled influence ``w (phi - theta) / sum w``.
    * ATT (Moodie et al. / Hahn form, METHODS §5.5):
      ``theta = sum w [D (Y - mu0) - (1 - D) e/(1-e) (Y - mu0)] / sum w D`` with influence
      ``w [D (Y - mu0 - theta) - (1 - D) e/(1-e) (Y - mu0)] / sum w D``. Pooling risk sets
      in one sum equals aggregating per-risk-set estimates with weights ``N_1(s)/N_1``.
    * ``variance="if"`` (default) treats the nuisance models as known, which is first-order
      valid with cross-fitting (Neyman orthogonality) and reproduces R's ``se_if``
      (``sqrt(sum((phi - ate)^2)) / n``, no small-sample factor). ``variance="stacked"``
      (``n_folds=1`` with the default learners only) adds the estimation terms of the logit
      and of the arm-wise least-squares fits: the stacked M-estimation sandwich of
      statsmodels' ``TreatmentEffect.aipw`` / Stata's ``teffects aipw`` (no small-sample
      factor).
    * Risk-set data are clustered by person by default (``Clustered("person")``).
    * Default learners and ``n_folds > 1``: the fold logits are one Newton step from the
      full-sample MLE using the training rows' score and information (a one-step estimator,
      within ``O_p(1/n)`` of the fold MLE), and the fold least-squares fits subtract the
      held-out fold's Gram matrix from the total; both cost one pass over the data.
    """

    def __init__(
        self,
        *,
        propensity_learner: Any = None,
        outcome_learner: Any = None,
        n_folds: int = 5,
        estimand: str = "ATE",
        seed: Any = 0,
        ps_clip: float | None = None,
        design_from: Any = None,
    ) -> None:
        self.design_from = design_from
        self.propensity_learner = propensity_learner
        self.outcome_learner = outcome_learner
        self.n_folds = n_folds
        self.estimand = estimand
        self.seed = seed
        self.ps_clip = ps_clip

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn convention)."""
        return {
            "propensity_learner": self.propensity_learner,
            "outcome_learner": self.outcome_learner,
            "n_folds": self.n_folds,
            "estimand": self.estimand,
            "seed": self.seed,
            "ps_clip": self.ps_clip,
            "design_from": self.design_from,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"AIPW({args})"

    def _check_params(self) -> None:
        choice("AIPW", "estimand", self.estimand, ("ATE", "ATT"))
        if not isinstance(self.n_folds, (int, np.integer)) or self.n_folds < 1:
            raise ConfigurationError(
                f"The 'n_folds' parameter of AIPW must be an int >= 1. Got {self.n_folds!r} "
                "instead."
            )
        pl = self.propensity_learner
        if pl is not None and not hasattr(pl, "predict_proba"):
            raise ConfigurationError(
                f"propensity_learner: expected a classifier with predict_proba; got "
                f"{type(pl).__name__}, which has none. Hint: use e.g. "
                "sklearn.linear_model.LogisticRegression or a calibrated classifier."
            )
        ol = self.outcome_learner
        if ol is not None and not (hasattr(ol, "fit") and hasattr(ol, "predict")):
            raise ConfigurationError(
                f"outcome_learner: expected a regressor with fit and predict; got "
                f"{type(ol).__name__}."
            )
        if self.ps_clip is not None and not (0.0 < float(self.ps_clip) < 0.5):
            raise ConfigurationError(
                f"The 'ps_clip' parameter of AIPW must be in (0, 0.5). Got {self.ps_clip!r}."
            )

    # ------------------------------------------------------------------ nuisance fits
    def _fit_ps(self, X: FloatArray, d: FloatArray, w: FloatArray,
                Xp: FloatArray) -> tuple[FloatArray, Any]:
        if self.propensity_learner is None:
            fit = K.logit_fit(_design(X), d, w)
            return K.expit(_design(Xp) @ fit.coef), fit
        from sklearn.base import clone

        m = clone(self.propensity_learner)
        _fit_sw(m, X, d.astype(np.int64), w, "propensity_learner")
        proba = np.asarray(m.predict_proba(Xp))
        classes = list(getattr(m, "classes_", [0, 1]))
        return np.asarray(proba[:, classes.index(1)], dtype=np.float64), m

    def _fit_mu(self, X: FloatArray, Y: FloatArray, w: FloatArray,
                Xp: FloatArray) -> tuple[FloatArray, Any]:
        if self.outcome_learner is None:
            beta = K.ols_fit(_design(X), Y, w)
            return _design(Xp) @ beta, beta
        from sklearn.base import clone

        m = clone(self.outcome_learner)
        yy = Y[:, 0] if Y.shape[1] == 1 else Y
        _fit_sw(m, X, yy, w, "outcome_learner")
        pred = np.asarray(m.predict(Xp), dtype=np.float64)
        return pred.reshape(Xp.shape[0], Y.shape[1]), m

    # ------------------------------------------------------------------ public
    def fit(
        self,
        data: Any,
        *,
        outcome: str,
        cov: CovarianceEstimator | str | None = None,
        variance: str = "if",
    ) -> EffectResults:
        """Estimate the doubly robust effect for one outcome (scalar or curve).

        Parameters
        ----------
        data : EvaluationData
            The evaluation sample.
        outcome : str
            Outcome name.
        cov : IID, Clustered or str, optional
            Covariance; default clustered by person for risk-set data, else IID.
        variance : {"if", "stacked"}, default="if"
            Influence function with known nuisances, or the full stacked sandwich
            (``n_folds=1`` and default learners only); see Notes of the class.

        Returns
        -------
        EffectResults
            With ``influence``, ``weights`` (the IPW part, ``w`` for treated and
            ``w e/(1-e)`` (ATT) or ``w/(1-e)``, ``w/e`` (ATE)), ``extra["ps"]``,
            ``extra["mu0"]``/``["mu1"]`` summaries, ``extra["folds"]``.

        Raises
        ------
        ConfigurationError
            Invalid options or learners.
        DataValidationError
            Missing outcomes.
        EstimationError
            Propensity scores at 0 or 1, or an arm missing in a training fold.
        """
        self._check_params()
        choice("AIPW.fit", "variance", variance, ("if", "stacked"))
        if variance == "stacked" and (
            self.n_folds != 1 or self.propensity_learner is not None
            or self.outcome_learner is not None
        ):
            raise ConfigurationError(
                "variance: 'stacked' needs n_folds=1 and the default (logit / least-squares) "
                f"learners; got n_folds={self.n_folds}. Hint: use variance='if' with "
                "cross-fitting."
            )
        Y_raw = np.asarray(data.outcome(outcome))
        curve = Y_raw.ndim == 2
        Y = Y_raw if curve else Y_raw[:, None]  # any numeric dtype; float64 by column block
        n, Kt = Y.shape
        d = data.treatment.astype(np.float64)
        w = np.asarray(data.weight, dtype=np.float64)
        if not (np.issubdtype(Y.dtype, np.integer) or Y.dtype == bool):
            check_outcome_finite(Y, (w > 0)[:, None], outcome)
        X = data.X
        t_arm = d > 0.5
        folds = (np.zeros(n, dtype=np.int64) if self.n_folds == 1
                 else person_folds(data.cluster, self.n_folds, self.seed))
        for k in range(self.n_folds):
            train = folds != k if self.n_folds > 1 else np.ones(n, dtype=bool)
            for arm_name, arm in (("treated", t_arm), ("control", ~t_arm)):
                if not (train & arm).any():
                    raise EstimationError(
                        f"AIPW: fold {k} leaves no {arm_name} rows for training. Hint: use "
                        "fewer folds."
                    )
        fitted: dict[str, Any] = {}
        Z = None
        if self.propensity_learner is None or self.outcome_learner is None:
            # constant and aliased covariates are left out (fitted values are unchanged)
            shared = getattr(self.design_from, "design", None)
            if shared is not None and shared.shape[0] == n:
                Z = shared  # the same [1, X[:, independent columns]], not copied
            else:
                Z = _design(X, K.independent_columns(X, w))
        e = np.empty(n)
        if self.propensity_learner is None:
            assert Z is not None
            full = K.logit_fit(Z, d, w)
            fitted["ps"] = full
            if self.n_folds == 1:
                e[:] = full.ps
            else:
                e[:] = K.crossfit_logit(Z, d, w, folds, self.n_folds, full.coef, full.ps)
        else:
            for k in range(self.n_folds):  # loop over folds (<= ~10), each step vectorised
                test = folds == k if self.n_folds > 1 else np.ones(n, dtype=bool)
                train = ~test if self.n_folds > 1 else test
                e[test], _ = self._fit_ps(X[train], d[train], w[train], X[test])
        if self.ps_clip is not None:
            e = np.clip(e, self.ps_clip, 1.0 - self.ps_clip)
        need = ~t_arm if self.estimand == "ATT" else np.ones(n, dtype=bool)
        bad = need & (w > 0) & ((e < PS_EPS) | (e > 1.0 - PS_EPS) | ~np.isfinite(e))
        if bad.any():
            raise EstimationError(
                f"ps: expected propensity scores strictly inside (0, 1); found {int(bad.sum())} "
                f"rows at 0 or 1 ({rows(bad)}). Hint: set ps_clip=1e-3, regularise or "
                "calibrate the propensity learner, or trim the sample first."
            )
        mu1: FloatArray | None = None
        mu0: FloatArray | None = None
        # the default least-squares outcome models go by blocks of targets (temporaries
        # O(n * block); the per-fold Gram matrices are shared by the blocks); learners and
        # the stacked variance see the whole outcome matrix
        blockwise = self.outcome_learner is None and variance == "if"
        grams0 = grams1 = None
        if blockwise:
            assert Z is not None
            grams0 = K.fold_grams(Z, w, ~t_arm, folds, self.n_folds)
            if self.estimand == "ATE":
                grams1 = K.fold_grams(Z, w, t_arm, folds, self.n_folds)
            step = max(1, min(Kt, _BLOCK_ELEMS // max(n, 1)))
        else:
            step = Kt
            Yf = np.asarray(Y, dtype=np.float64)
            if self.outcome_learner is None:
                assert Z is not None
                mu0 = K.crossfit_ols(Z, Yf, w, ~t_arm, folds, self.n_folds)
                if self.estimand == "ATE":
                    mu1 = K.crossfit_ols(Z, Yf, w, t_arm, folds, self.n_folds)
            else:
                mu0 = np.empty((n, Kt))
                mu1 = np.empty((n, Kt)) if self.estimand == "ATE" else None
                for k in range(self.n_folds):
                    test = folds == k if self.n_folds > 1 else np.ones(n, dtype=bool)
                    train = ~test if self.n_folds > 1 else test
                    tr0 = train & ~t_arm
                    mu0[test], _ = self._fit_mu(X[tr0], Yf[tr0], w[tr0], X[test])
                    if mu1 is not None:
                        tr1 = train & t_arm
                        mu1[test], _ = self._fit_mu(X[tr1], Yf[tr1], w[tr1], X[test])
        if self.estimand == "ATE":
            W = float(w.sum())
            ipw_w = np.where(t_arm, w / e, w / (1.0 - e))
        else:
            omega = e / (1.0 - e)
            W = float((w * d).sum())
            ipw_w = np.where(t_arm, w, w * omega)
        theta = np.empty(Kt)
        m1 = np.empty(Kt)
        infl: Any = np.empty((0, Kt) if blockwise else (n, Kt))
        q = 0 if Z is None else Z.shape[1]
        B0 = np.zeros((self.n_folds, q, Kt)) if blockwise else None
        B1 = np.zeros((self.n_folds, q, Kt)) if blockwise and self.estimand == "ATE" else None
        for lo in range(0, Kt, step):
            cols = slice(lo, min(lo + step, Kt))
            Yb = np.asarray(Y[:, cols], dtype=np.float64)
            if blockwise:
                assert Z is not None and B0 is not None
                c0 = np.zeros((self.n_folds, q, cols.stop - cols.start))
                mu0b = K.crossfit_ols(Z, Yb, w, ~t_arm, folds, self.n_folds, grams0, c0)
                B0[:, :, cols] = c0
                mu1b = None
                if B1 is not None:
                    c1 = np.zeros_like(c0)
                    mu1b = K.crossfit_ols(Z, Yb, w, t_arm, folds, self.n_folds, grams1, c1)
                    B1[:, :, cols] = c1
                theta[cols], m1[cols], _ = self._block(Yb, mu0b, mu1b, d, w, e, W, False)
            else:
                assert mu0 is not None
                mu0b = mu0[:, cols]
                mu1b = None if mu1 is None else mu1[:, cols]
                theta[cols], m1[cols], infl[:, cols] = self._block(Yb, mu0b, mu1b, d, w, e, W)
        if blockwise:
            # the influence function in factored form (rows on demand; see AIPWInfluence)
            assert Z is not None and B0 is not None
            if self.estimand == "ATE":
                alpha = w * (d / e - (1.0 - d) / (1.0 - e)) / W
                beta1 = w * (1.0 - d / e) / W
                beta0 = -w * (1.0 - (1.0 - d) / (1.0 - e)) / W
                gamma = w / W
            else:
                alpha = w * (d - (1.0 - d) * (e / (1.0 - e))) / W
                beta1 = np.zeros(n)
                beta0 = -alpha
                gamma = w * d / W
            infl = AIPWInfluence(Y, Z, folds, self.n_folds, alpha, beta0, B0,
                                 beta1 if B1 is not None else None, B1, gamma, theta)
        m0 = m1 - theta
        if variance == "stacked":
            assert Z is not None and mu0 is not None
            infl = infl + self._stacked_terms(Z, d, w, e, Yf, mu0, mu1, W, fitted)
        nu = np.where(t_arm, ipw_w, 0.0)[:, None]
        positivity_check("AIPW", np.where(t_arm, 0.0, ipw_w)[:, None], ~t_arm, "control")
        if self.estimand == "ATE":
            positivity_check("AIPW", nu, t_arm, "treated")
        tau = data.tau if curve else None
        cov_use = cov
        if cov_use is None:
            cov_use = Clustered("person") if data.start_week is not None else "iid"
        extra = {
            "ps": e,
            "folds": self.n_folds,
            "variance": variance,
            "ess_control": float(ess(np.where(t_arm, 0.0, ipw_w)[:, None])[0]),
            "ess_treated": float(ess(nu)[0]),
        }
        return make_effect_results(
            estimator="AIPW",
            estimand=self.estimand,
            outcome=outcome,
            estimate=theta,
            influence=infl,
            cov=cov_use,
            cluster=data.cluster,
            tau=tau,
            treated_mean=m1,
            counterfactual_mean=m0,
            n=n,
            n_treated=int(t_arm.sum()),
            n_control=int((~t_arm).sum()),
            weights=ipw_w,
            extra=extra,
            config={**{k: repr(v) if k.endswith("learner") else v
                       for k, v in self.get_params().items()},
                    "design_from": None if self.design_from is None
                    else type(self.design_from).__name__,
                    "variance": variance},
            seed=int(self.seed) if isinstance(self.seed, (int, np.integer)) else None,
            frame=data.frame,
        )

    def _block(
        self, Y: FloatArray, mu0: FloatArray, mu1: FloatArray | None, d: FloatArray,
        w: FloatArray, e: FloatArray, W: float, influence: bool = True,
    ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """Estimates, treated means and (if asked) influence functions of a block of targets."""
        dd = d[:, None]
        r0 = Y - mu0
        if self.estimand == "ATE":
            assert mu1 is not None
            r1 = Y - mu1
            phi_i = mu1 - mu0 + dd * r1 / e[:, None] - (1.0 - dd) * r0 / (1.0 - e[:, None])
            theta = (w[:, None] * phi_i).sum(axis=0) / W
            infl = w[:, None] * (phi_i - theta) / W if influence else None
            m1 = (w[:, None] * (mu1 + dd * r1 / e[:, None])).sum(axis=0) / W
            return theta, m1, infl
        omega = e / (1.0 - e)
        contrib = w[:, None] * (dd * r0 - (1.0 - dd) * omega[:, None] * r0)
        theta = contrib.sum(axis=0) / W
        infl2 = (contrib - (w * d)[:, None] * theta) / W if influence else None
        m1 = (w[:, None] * dd * Y).sum(axis=0) / W
        return theta, m1, infl2

    def _stacked_terms(
        self, Z: FloatArray, d: FloatArray, w: FloatArray, e: FloatArray, Y: FloatArray,
        mu0: FloatArray, mu1: FloatArray | None, W: float, fitted: dict[str, Any],
    ) -> FloatArray:
        """Estimation terms of the logit and least-squares nuisances (n_folds=1)."""
        lf = fitted["ps"]
        ps_if = (Z * (w * (d - e))[:, None]) @ np.linalg.inv(lf.hessian)
        dd = d[:, None]
        r0 = Y - mu0
        c0_mat = K._gram(Z, w * (1.0 - d))  # Z0' W Z0
        out = np.zeros_like(Y)
        if self.estimand == "ATE":
            assert mu1 is not None
            r1 = Y - mu1
            c1_mat = K._gram(Z, w * d)
            c1 = Z.T @ (w * (1.0 - d / e))
            c0 = Z.T @ (w * (-1.0 + (1.0 - d) / (1.0 - e)))
            a1 = Z @ np.linalg.solve(c1_mat, c1)
            a0 = Z @ np.linalg.solve(c0_mat, c0)
            out += (a1 * w * d)[:, None] * r1 + (a0 * w * (1.0 - d))[:, None] * r0
            cg = K._tmul(Z, w[:, None] * (-dd * r1 * ((1.0 - e) / e)[:, None]
                                         - (1.0 - dd) * r0 * (e / (1.0 - e))[:, None]))
        else:
            omega = e / (1.0 - e)
            c0 = Z.T @ (w * (-d + (1.0 - d) * omega))
            a0 = Z @ np.linalg.solve(c0_mat, c0)
            out += (a0 * w * (1.0 - d))[:, None] * r0
            cg = -K._tmul(Z, w[:, None] * (1.0 - dd) * omega[:, None] * r0)
        out += ps_if @ cg
        return out / W


class AIPWInfluence(RowInfluence):
    """Influence function of cross-fitted AIPW with least-squares outcome models, factored.

    Row ``i`` is ``alpha_i Y_i + beta0_i z_i' B0_f + beta1_i z_i' B1_f - gamma_i theta`` with
    ``f`` the row's fold and ``B*_f`` (q, K) that fold's outcome-model coefficients (ATT:
    ``alpha = -beta0 = w (d - (1 - d) e / (1 - e)) / W``, ``beta1 = 0``,
    ``gamma = w d / W``; ATE: the analogous weights of ``mu1 - mu0 + d r1 / e -
    (1 - d) r0 / (1 - e)``). Only per-row vectors and the coefficients are stored.
    """

    def __init__(
        self, Y: npt.NDArray[Any], Z: FloatArray, folds: npt.NDArray[np.int64], n_folds: int,
        alpha: FloatArray, beta0: FloatArray, B0: FloatArray, beta1: FloatArray | None,
        B1: FloatArray | None, gamma: FloatArray, theta: FloatArray,
    ) -> None:
        super().__init__(Y.shape[0], Y.shape[1])
        self.Y, self.Z, self.folds, self.n_folds = Y, Z, folds, n_folds
        self.alpha, self.beta0, self.B0, self.beta1, self.B1 = alpha, beta0, B0, beta1, B1
        self.gamma, self.theta = gamma, theta

    def _rows(self, idx: RowIndex) -> FloatArray:
        out = np.multiply(self.Y[idx], self.alpha[idx][:, None], dtype=np.float64)
        out -= self.gamma[idx][:, None] * self.theta[None, :]
        Zb = self.Z[idx]
        fb = self.folds[idx]
        b0 = self.beta0[idx]
        b1 = None if self.beta1 is None else self.beta1[idx]
        for k in range(self.n_folds):  # folds (<= ~10); each step vectorised over rows
            sel = np.flatnonzero(fb == k)
            if sel.size == 0:
                continue
            Zs = Zb[sel]
            out[sel] += b0[sel][:, None] * (Zs @ self.B0[k])
            if b1 is not None and self.B1 is not None:
                out[sel] += b1[sel][:, None] * (Zs @ self.B1[k])
        return out


def _fit_sw(model: Any, X: FloatArray, y: Any, w: FloatArray, name: str) -> None:
    """Fit with ``sample_weight`` when weights are not all one."""
    if np.all(w == 1.0):
        model.fit(X, y)
        return
    try:
        model.fit(X, y, sample_weight=w)
    except TypeError as exc:
        raise ConfigurationError(
            f"{name}: the data carry sampling weights but {type(model).__name__}.fit does not "
            "accept sample_weight. Hint: use a learner that supports sample weights."
        ) from exc
