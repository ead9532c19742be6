"""Nearest-neighbour, radius and kernel matching on the propensity score (or Mahalanobis)."""

from __future__ import annotations

import dataclasses
import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from mentor_impact._kernels import matching as K
from mentor_impact._rng import as_generator
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    EstimationError,
    PositivityWarning,
)
from mentor_impact.inference.covariance import CovarianceEstimator
from mentor_impact.matching._core import (
    Matches,
    SameArmResiduals,
    WindowMatches,
    ai2016_adjustment,
    ai_covariance,
    ai_covariance_ate,
    bias_correction,
    focal_effects,
    layout,
    matched_set_covariance,
    matchit_weights,
    pair_weights_uniform,
    rows_f64,
    same_arm_neighbors,
    sorted_order,
)
from mentor_impact.matching._options import AbadieImbens, Caliper, MatchedSetRegression
from mentor_impact.propensity._checks import check_choice, format_rows
from mentor_impact.propensity.model import PropensityModel
from mentor_impact.propensity.overlap import TrimResult, trim

__all__ = ["KernelMatching", "NearestNeighborMatching", "RadiusMatching"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _cells_from(data: Any, exact: Any) -> IntArray | None:
    """Integer cell codes from a list of column names (``"cell"`` = data.cell)."""
    if exact is None:
        return None
    if isinstance(exact, str):
        exact = [exact]
    cols = []
    for name in exact:
        if name == "cell" and getattr(data, "cell", None) is not None:
            col = np.asarray(data.cell)
        else:
            col = np.asarray(data.column(name))
        cols.append(_dense_codes(col))
    if not cols:
        return None
    if len(cols) == 1:
        return cols[0]
    _, code = np.unique(np.column_stack(cols), axis=0, return_inverse=True)
    return np.asarray(code, dtype=np.int64).ravel()


def _dense_codes(col: npt.NDArray[Any]) -> IntArray:
    """Ranks of the values among the distinct values (``np.unique`` inverse).

    Small non-negative integer codes (the design's cells) by counting, O(n); other values
    by ``np.unique``.
    """
    if col.dtype.kind in "iu" and col.size and col.min() >= 0 and col.max() < 4 * col.size:
        present = np.bincount(col) > 0
        return (np.cumsum(present) - 1)[col].astype(np.int64)
    _, inv = np.unique(col, return_inverse=True)
    return np.asarray(inv, dtype=np.int64).ravel()


def _has_repeats(c: npt.NDArray[Any]) -> bool:
    """Whether any cluster label occurs twice (bincount fast path for small ints)."""
    if c.size == 0:
        return False
    if c.dtype.kind in "iu" and c.min() >= 0 and c.max() < 4 * c.size:
        return bool(np.bincount(c).max() > 1)
    return bool(np.unique(c).size < c.size)


class _MatchingBase(ABC):
    """Shared fit pipeline: distance, cells, focal/pool roles, effects, variance, results."""

    _name = "Matching"

    # parameters every subclass has
    distance: str
    caliper: Caliper | float | None
    exact: Any
    estimand: str
    bias_correction: bool
    propensity: PropensityModel | None
    replace: bool
    k: int

    # ------------------------------------------------------------------ helpers
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn protocol).

        Parameters
        ----------
        deep : bool, default=True
            Ignored.

        Returns
        -------
        dict
            Parameter names and values.
        """
        return {k: getattr(self, k) for k in self._param_names}

    _param_names: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_common(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "estimand", self.estimand, ("ATT", "ATC", "ATE"))
        check_choice(owner, "distance", self.distance, ("logit", "ps", "mahalanobis"))
        if self.caliper is not None and not isinstance(self.caliper, (Caliper, int, float)):
            raise ConfigurationError(
                f"The 'caliper' parameter of {owner} must be None, a number (SD units) or a "
                f"Caliper. Got {type(self.caliper).__name__} instead."
            )

    def _caliper_obj(self) -> Caliper | None:
        if self.caliper is None:
            return None
        if isinstance(self.caliper, Caliper):
            return self.caliper
        return Caliper(float(self.caliper), "sd")

    def _propensity(self, data: Any, ps: npt.ArrayLike | None) -> tuple[FloatArray, Any]:
        if ps is not None:
            arr = np.asarray(ps, dtype=np.float64).ravel()
            if arr.size != data.n:
                raise DataValidationError(
                    f"ps: expected {data.n} propensity scores (one per row); found {arr.size}. "
                    "Hint: pass the scores in the row order of the data."
                )
            bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
            if bad.any():
                raise DataValidationError(
                    f"ps: expected probabilities in [0, 1]; found {int(bad.sum())} invalid "
                    f"({format_rows(bad)}). Hint: pass P(D = 1 | X), not the logit."
                )
            return arr, None
        from copy import deepcopy

        model = PropensityModel() if self.propensity is None else deepcopy(self.propensity)
        model.fit(data)
        return np.asarray(model.ps_, dtype=np.float64), model

    def _distance(
        self, data: Any, ps: FloatArray, owner: str
    ) -> tuple[FloatArray | None, FloatArray | None, FloatArray]:
        """Return (scalar distance or None, whitened X or None, caliper scale variable)."""
        at01 = (ps <= 0.0) | (ps >= 1.0)
        with np.errstate(divide="ignore"):
            logit = np.log(ps) - np.log1p(-ps)
        if self.distance == "logit" or (self.distance == "mahalanobis" and self.caliper):
            if at01.any():
                raise EstimationError(
                    f"{owner}: the logit propensity score is infinite for {int(at01.sum())} "
                    f"rows with PS exactly 0 or 1 ({format_rows(at01)}). Hint: trim these "
                    "rows (mentor_impact.propensity.trim) or match on distance='ps'."
                )
        elif at01.any():
            warnings.warn(
                f"{owner}: {int(at01.sum())} rows have a propensity score of exactly 0 or 1 "
                f"({format_rows(at01)}); they can only match units with the same score. "
                "Hint: check for separation and consider trimming.",
                PositivityWarning,
                stacklevel=3,
            )
        if self.distance == "ps":
            return ps, None, ps
        if self.distance == "logit":
            return logit, None, logit
        X = np.asarray(data.X, dtype=np.float64)
        Dm = np.asarray(data.treatment) == 1
        # pooled within-group covariance (Rubin 1980)
        xc = X.copy()
        for arm in (True, False):
            sel = Dm == arm
            xc[sel] -= X[sel].mean(axis=0)
        S = xc.T @ xc / max(X.shape[0] - 2, 1)
        try:
            Lc = np.linalg.cholesky(S)
            cond = np.linalg.cond(S)
            if not np.isfinite(cond) or cond > 1e12:
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            sv = np.linalg.eigvalsh(S)
            raise DataValidationError(
                f"{owner}: the pooled covariance of the {X.shape[1]} covariates is singular "
                f"({int(np.sum(sv <= 1e-12 * max(sv.max(), 1e-300)))} zero eigenvalues); the "
                "Mahalanobis distance is undefined. Hint: drop constant or collinear "
                "covariates (e.g. one level of each dummy set)."
            ) from None
        Xw = np.linalg.solve(Lc, X.T).T  # rows whitened: Euclidean = Mahalanobis
        return None, np.asarray(Xw, dtype=np.float64), np.asarray(logit, dtype=np.float64)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: Any,
        *,
        outcome: str,
        cov: CovarianceEstimator | str | None = None,
        ps: npt.ArrayLike | None = None,
    ) -> Any:
        """Match and estimate the effect on ``outcome``.

        Parameters
        ----------
        data : EvaluationData
            The evaluation sample (``EvaluationData.from_frame`` for flat data).
        outcome : str
            Name of a scalar outcome or a curve over ``tau`` (one matched set for all τ).
        cov : AbadieImbens, MatchedSetRegression, IID, Clustered or str, optional
            Covariance. Default: ``AbadieImbens()`` when every row is its own cluster,
            otherwise ``Clustered("person")`` applied to the matching influence function.
        ps : array-like of shape (n,), optional
            Propensity scores to use instead of fitting ``propensity`` (e.g. from R).

        Returns
        -------
        EffectResults
            With ``weights`` (MatchIt convention) and ``extra["matches"]`` (a ``Matches``),
            ``extra["reuse_counts"]``, ``extra["ess"]``, ``extra["unmatched"]``,
            ``extra["estimand_note"]``, ``extra["propensity_model"]``.

        Raises
        ------
        ConfigurationError
            Invalid options.
        DataValidationError
            Unknown outcome, bad ``ps``, singular covariance for Mahalanobis.
        EstimationError
            No focal unit can be matched at all, or infinite logit PS.
        """
        self._check_params()
        psv, model = self._propensity(data, ps)
        support = getattr(self, "support", None)
        if support is None:
            return self._fit_core(data, outcome, cov, psv, model)
        tr = trim(
            psv, np.asarray(data.treatment), support,
            estimand=self.estimand, cells=_cells_from(data, self.exact),
        )
        if tr.keep.all():
            res = self._fit_core(data, outcome, cov, psv, model)
            return dataclasses.replace(
                res, extra={**res.extra, "trim": tr}
            )
        sub = data.subset(tr.keep)
        res = self._fit_core(sub, outcome, cov, psv[tr.keep], model)
        return _expand(res, tr, data, psv)

    def _fit_core(
        self,
        data: Any,
        outcome: str,
        cov: CovarianceEstimator | str | None,
        psv: FloatArray,
        model: Any,
    ) -> Any:
        from mentor_impact.results import make_effect_results

        owner = type(self).__name__
        if outcome not in data.outcomes:
            raise DataValidationError(
                f"outcome: expected one of {sorted(data.outcomes)}; got {outcome!r}."
            )
        # the outcome keeps its dtype (an int8 curve of register size is never widened
        # whole): the helpers of _core read the rows they need as float64
        Y0 = np.asarray(data.outcome(outcome))
        if Y0.dtype == bool:
            Y0 = Y0.view(np.uint8)
        curve = Y0.ndim == 2
        Y = Y0 if curve else Y0[:, None]
        if Y.dtype.kind not in "iu":
            nanrows = ~np.isfinite(Y).all(axis=1)
            if nanrows.any():
                raise DataValidationError(
                    f"outcome {outcome!r}: expected finite values; found {int(nanrows.sum())} "
                    f"rows with missing values ({format_rows(nanrows)}). Hint: drop or impute "
                    "them before matching (censored curves need a duration estimator)."
                )
        treat = np.asarray(data.treatment) == 1
        s = (
            np.ones(data.n)
            if getattr(data, "weight", None) is None
            else np.asarray(data.weight, dtype=np.float64)
        )
        dist, Xw, calvar = self._distance(data, psv, owner)
        cal = self._caliper_obj()
        cal_abs = None if cal is None else cal.absolute(calvar)
        cells = _cells_from(data, self.exact)

        parts = []
        roles = {"ATT": [True], "ATC": [False], "ATE": [True, False]}[self.estimand]
        for focal_is_treated in roles:
            parts.append(
                self._match_one(
                    focal_is_treated, treat, dist, Xw, calvar, cal_abs, cells, psv, owner
                )
            )
        # ---- effects
        ests, phis, covs_ai, tmeans, cmeans, weights = [], [], [], [], [], np.zeros(data.n)
        ate_parts: list[tuple[Any, Any, float]] = []
        resid_orig = None
        S_parts = []
        unmatched: dict[str, int] = {}
        ai = cov if isinstance(cov, AbadieImbens) else AbadieImbens()
        J = ai.n_neighbors
        # same-arm neighbours once (they do not depend on the sign of the outcome); the
        # residuals are computed from them row block by row block where needed
        nbr = same_arm_neighbors(dist, Xw, treat, cells, max(J, 1))
        keep_tau = len(roles) == 2 or bool(getattr(cov, "ps_adjustment", False))
        for focal_is_treated, (m, reasons) in zip(roles, parts, strict=True):
            sign = 1.0 if focal_is_treated else -1.0
            fy, cf = focal_effects(m, Y, sign)
            if self.bias_correction:
                cf += bias_correction(m, Y, np.asarray(data.X, dtype=np.float64), s, sign)
            ok = m.n_matches > 0
            # (n_focal, k) arrays are 0.3 GB each for a 157-week curve at 10^6 persons:
            # no copies when every focal unit is matched, in-place steps, early release
            all_ok = bool(ok.all())
            F = fy if all_ok else fy[ok]
            C = cf if all_ok else cf[ok]
            sf = s[m.focal[ok]]
            S1 = float(sf.sum())
            tmp = F - C
            tmp *= sf[:, None]
            est = tmp.sum(axis=0) / S1
            del tmp
            mean_f = (sf[:, None] * F).sum(axis=0) / S1 * sign
            mean_cf = (sf[:, None] * C).sum(axis=0) / S1 * sign
            # unit effects of the focal units: for the ATE and the AI (2016) adjustment
            tau_f = fy - cf if keep_tau else None
            dev = F if all_ok else F.copy()
            dev -= C
            dev -= est
            del fy, cf, F, C
            resid_phi = SameArmResiduals(Y, nbr, sign)
            resid = None if J == 0 else resid_phi
            v_ai, phi_r = ai_covariance(
                m, Y, dev, est, s, resid, ai.population, resid_phi, sign
            )
            del dev
            ate_parts.append((m, tau_f, sign))
            if resid is not None:
                resid_orig = resid.with_sign(1.0)
            ests.append(est)
            phis.append(phi_r)
            covs_ai.append(v_ai)
            tmeans.append(mean_f)
            cmeans.append(mean_cf)
            S_parts.append(S1)
            weights += matchit_weights(m, s)
            tag = "treated" if focal_is_treated else "control"
            for r, c in reasons.items():
                if c:
                    unmatched[f"{tag}_{r}"] = c
        phi: Any
        if len(roles) == 1:
            est = ests[0]
            phi = phis[0]
            v_ai = covs_ai[0]
            treated_mean = tmeans[0] if roles[0] else cmeans[0]
            cf_mean = cmeans[0] if roles[0] else tmeans[0]
        else:
            S = sum(S_parts)
            a1, a0 = S_parts[0] / S, S_parts[1] / S
            est = a1 * ests[0] + a0 * ests[1]
            phi = (np.asarray(phis[0]) * S_parts[0] + np.asarray(phis[1]) * S_parts[1]) / S
            ai_opt = cov if isinstance(cov, AbadieImbens) else AbadieImbens()
            v_ai, _ = ai_covariance_ate(ate_parts, Y, s, resid_orig, ai_opt.population)
            treated_mean = a1 * tmeans[0] + a0 * cmeans[1]
            cf_mean = a1 * cmeans[0] + a0 * tmeans[1]
        m_main = parts[0][0]
        # ---- covariance
        clusters = None if getattr(data, "cluster", None) is None else np.asarray(data.cluster)
        repeated = clusters is not None and _has_repeats(clusters)
        cov_arg: Any
        cov_type = None
        ps_parts: dict[str, Any] | None = None
        if cov is None:
            if repeated:
                from mentor_impact.inference.covariance import Clustered

                cov_arg = Clustered("person")
            else:
                cov_arg, cov_type = v_ai, AbadieImbens().describe()
        elif isinstance(cov, AbadieImbens):
            if cov.ps_adjustment:
                Yd = rows_f64(Y, slice(None))  # small samples only (no scores at scale)
                delta, ps_parts = self._ps_adjustment(
                    data, cov, roles, ate_parts, treat, dist, Xw, calvar, cal_abs, cells,
                    psv, model, Yd, s, est, owner,
                )
                ps_parts["unadjusted_cov"] = v_ai
                v_ai = v_ai + delta
                dv = np.diag(v_ai).copy()
                # rounding scale: var(Y) / n (the variance is 0 when Y is constant by arm)
                tol = 1e-10 * (np.abs(np.diag(ps_parts["unadjusted_cov"]))
                               + np.var(Yd, axis=0) / Yd.shape[0]) + 1e-300
                if np.any(dv < -tol):
                    raise EstimationError(
                        f"{owner}: the Abadie-Imbens (2016) propensity-score adjustment makes "
                        f"{int(np.sum(dv < 0))} of {dv.size} variances negative. Hint: "
                        "raise AbadieImbens(ps_neighbors=...) or use the unadjusted variance."
                    )
                np.fill_diagonal(v_ai, np.maximum(dv, 0.0))  # rounding below zero
            cov_arg, cov_type = v_ai, cov.describe()
        elif isinstance(cov, MatchedSetRegression):
            if len(roles) != 1:
                raise ConfigurationError(
                    "MatchedSetRegression is available for the ATT and ATC only."
                )
            v = matched_set_covariance(
                m_main, rows_f64(Y, slice(None), 1.0 if roles[0] else -1.0), weights,
                treat == roles[0],
                self._replace_flag(), cov.hc1,
            )
            cov_arg, cov_type = v, cov.describe()
        else:
            cov_arg = cov
        nm_all = np.zeros(data.n, dtype=bool)
        nm_all[weights > 0] = True
        reuse = np.zeros(data.n, dtype=np.int64)
        for m, _ in parts:
            reuse += m.reuse_counts()
        ess = {}
        for arm, lab in ((True, "treated"), (False, "control")):
            w = weights[treat == arm]
            ess[lab] = float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0
        n_unm = sum(unmatched.values())
        note = (
            f"{self.estimand} on all focal units"
            if n_unm == 0
            else (
                f"{self.estimand} restricted to the {int((m_main.n_matches > 0).sum())} matched "
                f"focal units: {n_unm} focal units without an acceptable match were dropped "
                "(the estimand changes to the matched population)"
            )
        )
        tau = getattr(data, "tau", None) if curve else None
        return make_effect_results(
            estimator=owner,
            estimand=self.estimand,
            outcome=outcome,
            estimate=est,
            influence=phi,
            cov=cov_arg,
            cov_type=cov_type,
            cluster=clusters,
            tau=tau,
            treated_mean=treated_mean,
            counterfactual_mean=cf_mean,
            n=int(nm_all.sum()),
            n_treated=int((nm_all & treat).sum()),
            n_control=int((nm_all & ~treat).sum()),
            dropped=unmatched,
            weights=weights,
            extra={
                "matches": m_main if len(parts) == 1 else [p[0] for p in parts],
                "reuse_counts": reuse,
                "ess": ess,
                "unmatched": unmatched,
                "estimand_note": note,
                "caliper": cal_abs,
                "distance": dist,
                "ps": psv,
                "propensity_model": model,
                "ai_cov": v_ai,
                **({"ps_adjustment": ps_parts} if ps_parts is not None else {}),
            },
            config=self.get_params(),
            seed=getattr(self, "seed", None),
            frame=getattr(data, "frame", None),
        )

    def _replace_flag(self) -> bool:
        return True

    def _check_params(self) -> None:
        self._check_common()

    def _ps_adjustment(
        self,
        data: Any,
        ai: AbadieImbens,
        roles: list[bool],
        ate_parts: list[tuple[Matches, FloatArray, float]],
        treat: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        psv: FloatArray,
        model: Any,
        Y: FloatArray,
        s: FloatArray,
        est: FloatArray,
        owner: str,
    ) -> tuple[FloatArray, dict[str, Any]]:
        """Abadie–Imbens (2016) correction (see ``AbadieImbens``); returns (delta, parts)."""
        problems = []
        if not isinstance(self, NearestNeighborMatching) or not self.replace:
            problems.append("nearest-neighbour matching with replace=True")
        if dist is None:
            problems.append("a scalar PS distance ('logit' or 'ps')")
        if self.caliper is not None:
            problems.append("no caliper")
        if cells is not None:
            problems.append("no exact cells")
        if self.bias_correction:
            problems.append("bias_correction=False")
        if getattr(self, "support", None) is not None:
            problems.append("support=None (no trimming)")
        if not ai.population:
            problems.append("AbadieImbens(population=True)")
        if not np.all(s == 1.0):
            problems.append("unit sampling weights")
        if model is None or getattr(model, "estimator_", 1) is not None:
            problems.append("the default logit PropensityModel fitted in fit() (not ps=)")
        elif getattr(model, "calendar_levels_", np.empty(0)).size or model.duration_column:
            problems.append("a logit without calendar/duration dummies")
        if problems:
            raise ConfigurationError(
                f"{owner}: AbadieImbens(ps_adjustment=True) is derived for nearest-neighbour "
                "matching with replacement on a logit propensity score estimated by maximum "
                f"likelihood; this fit lacks: {'; '.join(problems)}. Hint: use the unadjusted "
                "variance (conservative for the ATE) or IPW/AIPW with the stacked sandwich."
            )
        assert dist is not None
        Z = np.asarray(model.design_matrix(data), dtype=np.float64)
        info = np.asarray(model.information_, dtype=np.float64)
        L = ai.ps_neighbors if ai.ps_neighbors is not None else max(ai.n_neighbors, 2)
        small = min(int(treat.sum()), int((~treat).sum()))
        if L > small:
            raise ConfigurationError(
                f"{owner}: ps_neighbors={L} exceeds the {small} units of the smaller arm. "
                "Hint: lower AbadieImbens(ps_neighbors=...)."
            )
        if len(roles) == 2:
            delta, parts = ai2016_adjustment("ATE", dist, Z, psv, info, treat, Y, L)
            return delta, parts
        # the ATT/ATC term d needs imputed unit effects for every unit: match the other way
        m_rev, _ = self._match_one(
            not roles[0], treat, dist, Xw, calvar, cal_abs, cells, psv, owner
        )
        fy, cf = focal_effects(m_rev, Y, 1.0 if not roles[0] else -1.0)
        tau_unit = np.zeros_like(Y)
        m0, tau_f0, _ = ate_parts[0]
        tau_unit[m0.focal] = tau_f0
        tau_unit[m_rev.focal] = fy - cf
        # est and tau_unit are on the original scale (focal minus matched times the sign)
        delta, parts = ai2016_adjustment(
            "ATT" if roles[0] else "ATC", dist, Z, psv, info, treat, Y, L, tau_unit, est
        )
        return delta, parts

    def _match_one(
        self,
        focal_is_treated: bool,
        treat: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> tuple[Matches, dict[str, int]]:
        focal_mask = treat if focal_is_treated else ~treat
        focal = np.flatnonzero(focal_mask)
        role = "treated" if focal_is_treated else "control"
        pool_role = "control" if focal_is_treated else "treated"
        # cells without pool units
        no_pool = np.zeros(focal.size, dtype=bool)
        if cells is not None:
            pool_cells = np.unique(cells[~focal_mask])
            no_pool = ~np.isin(cells[focal], pool_cells)
            if no_pool.all():
                raise EstimationError(
                    f"{owner}: no exact cell contains both {role} and {pool_role} units "
                    f"({focal.size} {role} units in {np.unique(cells[focal]).size} cells). "
                    "Hint: coarsen the exact-matching variables."
                )
            if no_pool.any():
                warnings.warn(
                    f"{owner}: {int(no_pool.sum())} of {focal.size} {role} units are in exact "
                    f"cells without any {pool_role} unit ({format_rows(focal[no_pool])}); "
                    "they are dropped and counted in results.dropped. Hint: coarsen the cells.",
                    PositivityWarning,
                    stacklevel=3,
                )
        m = self._match_sets(focal, focal_mask, dist, Xw, calvar, cal_abs, cells, ps, owner)
        nm = m.n_matches
        unm = nm == 0
        reasons = {
            "no_pool_in_cell": int((unm & no_pool).sum()),
            "outside_caliper" if cal_abs is not None else "no_match": int((unm & ~no_pool).sum()),
        }
        if unm.all():
            raise EstimationError(
                f"{owner}: none of the {focal.size} {role} units has an acceptable match"
                + (f" within the caliper ({cal_abs:.4g} on the distance scale)" if cal_abs else "")
                + ". Hint: widen the caliper or coarsen the exact cells."
            )
        if (unm & ~no_pool).any():
            warnings.warn(
                f"{owner}: {int((unm & ~no_pool).sum())} of {focal.size} {role} units have no "
                f"acceptable match ({format_rows(focal[unm & ~no_pool])}); they are dropped, "
                "counted in results.dropped and the estimand changes to the matched units.",
                PositivityWarning,
                stacklevel=3,
            )
        short = (nm > 0) & (nm < getattr(self, "k", 1))
        if short.any() and getattr(self, "ties", "first") == "first":
            warnings.warn(
                f"{owner}: {int(short.sum())} of {focal.size} {role} units got fewer than "
                f"k={self.k} matches ({format_rows(focal[short])}). Their matches are weighted "
                "1/(number found) as in MatchIt.",
                PositivityWarning,
                stacklevel=3,
            )
        return m, reasons

    def _match_sets(
        self,
        focal: IntArray,
        focal_mask: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> Any:
        """Return the matched sets of the focal units (a ``Matches``, pairs listed)."""
        ptr, pos_rows = self._match_rows(
            focal, focal_mask, dist, Xw, calvar, cal_abs, cells, ps, owner
        )
        pw = self._pair_weights(ptr, focal, pos_rows, dist, cal_abs)
        keep_pair = pw > 0
        if not keep_pair.all():  # e.g. Epanechnikov weight 0 at |u| = 1: not a match
            pair_owner = np.repeat(np.arange(focal.size), np.diff(ptr))
            cnt = np.bincount(pair_owner[keep_pair], minlength=focal.size)
            ptr = np.zeros(focal.size + 1, dtype=np.int64)
            np.cumsum(cnt, out=ptr[1:])
            pos_rows, pw = pos_rows[keep_pair], pw[keep_pair]
        return Matches(focal=focal, ptr=ptr, matched=pos_rows, pair_weight=pw,
                       n_rows=focal_mask.size)

    def _pair_weights(
        self,
        ptr: IntArray,
        focal: IntArray,
        rows: IntArray,
        dist: FloatArray | None,
        cal_abs: float | None,
    ) -> FloatArray:
        return pair_weights_uniform(ptr)

    @abstractmethod
    def _match_rows(
        self,
        focal: IntArray,
        focal_mask: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> tuple[IntArray, IntArray]:  # pragma: no cover - abstract
        """Return ``(focal rows, matched rows)`` pairs; implemented by each matcher."""


def _expand(res: Any, tr: TrimResult, data: Any, psv: FloatArray) -> Any:
    """Map a result computed on the trimmed rows back to all rows of ``data``."""
    keep_idx = np.flatnonzero(tr.keep)
    n = data.n

    def full(a: Any, fill: float = 0.0) -> Any:
        if a is None:
            return None
        a = np.asarray(a)
        out = np.full((n, *a.shape[1:]), fill, dtype=np.result_type(a.dtype, np.float64))
        out[keep_idx] = a
        return out

    def remap(m: Any) -> Any:
        return m.remap(keep_idx, n)

    mt = res.extra.get("matches")
    matches = [remap(x) for x in mt] if isinstance(mt, list) else remap(mt)
    reuse = np.zeros(n, dtype=np.int64)
    reuse[keep_idx] = res.extra["reuse_counts"]
    dropped = {**{f"trimmed_{k}": v for k, v in tr.dropped.items() if v}, **res.dropped}
    extra = {
        **res.extra,
        "matches": matches,
        "reuse_counts": reuse,
        "distance": full(res.extra.get("distance"), np.nan),
        "ps": psv,
        "trim": tr,
        "estimand_note": tr.note + "; " + res.extra.get("estimand_note", ""),
    }
    clusters = None if getattr(data, "cluster", None) is None else np.asarray(data.cluster)
    return dataclasses.replace(
        res,
        influence=full(res.influence),
        weights=full(res.weights),
        cluster=clusters,
        dropped=dropped,
        extra=extra,
        frame=getattr(data, "frame", None),
    )


class NearestNeighborMatching(_MatchingBase):
    """Nearest-neighbour matching on the (logit) propensity score or Mahalanobis distance.

    Parameters
    ----------
    k : int, default=1
        Matches per focal unit (``ratio`` in MatchIt, ``M`` in Matching).
    replace : bool, default=False
        Match with replacement (controls can be reused).
    distance : {"logit", "ps", "mahalanobis"}, default="logit"
        Matching distance: ``|logit e_i - logit e_j|``, ``|e_i - e_j|`` (MatchIt's default
        ``distance = "glm"``) or the Mahalanobis distance on the covariates (pooled
        within-group covariance; with replacement only).
    caliper : Caliper, float or None, default=None
        Maximum distance; a float means SD units of the distance (MatchIt ``std.caliper``).
        With ``distance="mahalanobis"`` it applies to the logit PS.
    exact : list of str or None, default=None
        Columns (``"cell"`` for ``data.cell``) within whose combinations matching is done.
    order : {"largest", "smallest", "random", "data"}, default="largest"
        Order in which focal units choose their matches without replacement (MatchIt
        ``m.order``; by the PS). Irrelevant with replacement.
    ties : {"first", "all"}, default="first"
        ``"first"``: exactly ``k`` matches, ties broken as MatchIt does (by position in the
        distance-sorted data, see Notes). ``"all"``: every control at the distance of the
        k-th match is kept, each weighted ``1/m`` (Stata ``teffects``, R ``Matching``).
        Only with replacement.
    bias_correction : bool, default=False
        Abadie–Imbens (2011) regression bias correction on all covariates.
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT matches controls to treated units, ATC treated to controls; ATE combines both
        (with replacement only), weighted by the arm sizes, with Matching's ATE variance
        (``K^2 + 2K - KK`` weights); its influence function (for clustering) is the
        size-weighted combination of the two parts.
    propensity : PropensityModel or None, default=None
        The propensity model (default: logistic MLE on all covariates).
    support : {"minmax", "crump"}, (float, float) or None, default=None
        Trim before matching (:func:`mentor_impact.propensity.trim`): min–max common support
        within the exact cells, Crump et al. (2009) optimal trimming, or fixed PS bounds.
        Trimmed rows are counted in ``results.dropped`` (``trimmed_treated``,
        ``trimmed_control``) and the changed estimand is stated in
        ``results.extra["estimand_note"]``; they get weight 0.
    seed : int, Generator or None, default=None
        Seed for ``order="random"``.

    Notes
    -----
    * Reproduces MatchIt 4.7.2 ``method = "nearest"``: units are sorted by (cell, distance,
      row); the nearest available control on each side of a focal unit is found and the
      left one (smaller distance value; for equal values, the one earlier in the data) wins
      ties in ``|d_c - d_t|``. Without replacement, focal units are processed in ``order``
      and ``k`` passes are made (every focal unit gets its first match, then its second...).
      The greedy algorithm is inherently sequential (every pick depends on all earlier
      picks): when numba is installed (extra ``mentor_impact[fast]``) it runs as a compiled
      loop with union-find "next available control" pointers (about 0.01 s for 60,000
      treated among 10^6 rows, plus the sort); otherwise the same result is computed exactly
      with vectorised rounds checked against the sequential characterisation (about 0.9 s
      at that size; see ``_kernels.matching``). Both give identical matches.
    * Weights follow MatchIt: a matched focal unit weighs its sampling weight (1), a matched
      unit ``sum_i s_i / m_i`` over the focal units it serves, rescaled so that matched
      units' weights average 1; unmatched units weigh 0.
    * Sampling weights of focal units weigh their contributions (frequency weights: equal
      to duplicated rows). Weights of pool units do not enter the nearest-neighbour choice.
    * For curves, the matched set is found once and applied to all τ (matrix products).
    * Focal units without an acceptable match (outside the caliper, empty cell) are dropped,
      counted in ``results.dropped`` and the changed estimand is stated in
      ``results.extra["estimand_note"]``.
    * ``MatchIt`` lists exact-distance ties in a different column order of ``match.matrix``
      for ``ratio > 1``; matched sets, weights and estimates are identical.

    References
    ----------
    Abadie, A. and Imbens, G. W. (2006). Large sample properties of matching estimators for
    average treatment effects. Econometrica 74, 235–267.
    Ho, D., Imai, K., King, G. and Stuart, E. (2011). MatchIt: Nonparametric preprocessing for
    parametric causal inference. J. Stat. Softw. 42(8).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mentor_impact.design import EvaluationData
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200)})
    >>> df["d"] = (rng.random(200) < 1 / (1 + np.exp(-df.x))).astype(int)
    >>> df["y"] = df.x + 2 * df.d + rng.normal(size=200)
    >>> data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    >>> res = NearestNeighborMatching(replace=True).fit(data, outcome="y")
    >>> res.estimate.shape
    (1,)
    """

    _name = "NearestNeighborMatching"
    _param_names = (
        "k", "replace", "distance", "caliper", "exact", "order", "ties",
        "bias_correction", "estimand", "propensity", "support", "seed",
    )

    def __init__(
        self,
        *,
        k: int = 1,
        replace: bool = False,
        distance: str = "logit",
        caliper: Caliper | float | None = None,
        exact: list[str] | None = None,
        order: str = "largest",
        ties: str = "first",
        bias_correction: bool = False,
        estimand: str = "ATT",
        propensity: PropensityModel | None = None,
        support: str | tuple[float, float] | None = None,
        seed: Any = None,
    ) -> None:
        self.k = k
        self.replace = replace
        self.distance = distance
        self.caliper = caliper
        self.exact = exact
        self.order = order
        self.ties = ties
        self.bias_correction = bias_correction
        self.estimand = estimand
        self.propensity = propensity
        self.support = support
        self.seed = seed

    def _replace_flag(self) -> bool:
        return bool(self.replace)

    def _check_params(self) -> None:
        self._check_common()
        owner = type(self).__name__
        check_choice(owner, "order", self.order, ("largest", "smallest", "random", "data"))
        check_choice(owner, "ties", self.ties, ("first", "all"))
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ConfigurationError(
                f"The 'k' parameter of {owner} must be an int >= 1. Got {self.k!r} instead."
            )
        if self.ties == "all" and not self.replace:
            raise ConfigurationError(
                f"{owner}: ties='all' needs replace=True (tied controls are shared). "
                "Hint: use ties='first' without replacement."
            )
        if self.estimand == "ATE" and not self.replace:
            raise ConfigurationError(
                f"{owner}: estimand='ATE' needs replace=True (both arms are matched to each "
                "other). Hint: set replace=True."
            )
        if self.distance == "mahalanobis" and not self.replace:
            raise ConfigurationError(
                f"{owner}: distance='mahalanobis' is implemented with replacement only. "
                "Hint: set replace=True."
            )

    def _match_rows(
        self,
        focal: IntArray,
        focal_mask: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> tuple[IntArray, IntArray]:
        n_pool = int((~focal_mask).sum())
        if not self.replace and self.k * 1 > n_pool:
            raise ConfigurationError(
                f"{owner}: k={self.k} matches without replacement need at least k pool units; "
                f"found {n_pool}. Hint: lower k or match with replacement."
            )
        if self.replace and self.k > n_pool:
            raise ConfigurationError(
                f"{owner}: k={self.k} exceeds the {n_pool} available pool units. "
                "Hint: lower k."
            )
        if not self.replace and self.k * focal.size > n_pool:
            warnings.warn(
                f"{owner}: {focal.size} focal units x k={self.k} exceed the {n_pool} pool "
                "units; not all focal units will get k matches without replacement.",
                PositivityWarning,
                stacklevel=4,
            )
        if dist is None:
            assert Xw is not None
            return _mahalanobis_knn(
                Xw, focal, focal_mask, cells, self.k, calvar, cal_abs, self.ties
            )
        sd = layout(dist, focal_mask, cells, focal, sorted_order(dist, cells))
        if self.replace:
            ptr, pos = K.knn_with_replacement(sd, self.k, cal_abs, self.ties)
        else:
            key = ps[focal]
            if self.order == "largest":
                o = np.argsort(-key, kind="stable")
            elif self.order == "smallest":
                o = np.argsort(key, kind="stable")
            elif self.order == "random":
                o = as_generator(self.seed).permutation(focal.size)
            else:
                o = np.arange(focal.size)
            prio = np.empty(focal.size, dtype=np.int64)
            prio[o] = np.arange(focal.size)
            ptr, pos = K.greedy_without_replacement(sd, prio, self.k, cal_abs)
        return ptr, sd.ctrl_rows[pos]


def _mahalanobis_knn(
    Xw: FloatArray,
    focal: IntArray,
    focal_mask: npt.NDArray[np.bool_],
    cells: IntArray | None,
    k: int,
    calvar: FloatArray,
    cal_abs: float | None,
    ties: str,
) -> tuple[IntArray, IntArray]:
    """K nearest pool units in Euclidean distance of whitened covariates (KD-tree per cell)."""
    from scipy.spatial import cKDTree

    n = Xw.shape[0]
    cellv = np.zeros(n, dtype=np.int64) if cells is None else cells
    lists: list[list[int]] = [[] for _ in range(focal.size)]
    counts = np.zeros(focal.size, dtype=np.int64)
    chosen_rows: list[IntArray] = []
    chosen_owner: list[IntArray] = []
    for c in np.unique(cellv[focal]):  # loop over cells
        f_loc = np.flatnonzero(cellv[focal] == c)
        pool = np.flatnonzero(~focal_mask & (cellv == c))
        if pool.size == 0:
            continue
        tree = cKDTree(Xw[pool])
        want = min(k, pool.size)
        q = want if cal_abs is None else min(pool.size, max(4 * want, want))
        while True:
            dd, ii = tree.query(Xw[focal[f_loc]], k=q)
            dd = np.asarray(dd).reshape(f_loc.size, q)
            ii = np.asarray(ii).reshape(f_loc.size, q)
            okc = np.ones_like(ii, dtype=bool)
            if cal_abs is not None:
                okc = np.abs(calvar[pool[ii]] - calvar[focal[f_loc]][:, None]) <= cal_abs
            enough = (okc.sum(axis=1) >= want) | (q >= pool.size)
            if enough.all() or cal_abs is None:
                break
            q = min(pool.size, q * 4)
        # take the first `want` acceptable neighbours (ties="all": all at the k-th distance)
        rank = np.cumsum(okc, axis=1)
        sel = okc & (rank <= want)
        if ties == "all":
            kth = np.where(sel, dd, -np.inf).max(axis=1)
            sel = okc & (dd <= kth[:, None])
        r_, c_ = np.nonzero(sel)
        chosen_owner.append(f_loc[r_])
        chosen_rows.append(pool[ii[r_, c_]])
    if chosen_rows:
        own = np.concatenate(chosen_owner)
        rows = np.concatenate(chosen_rows)
        o = np.argsort(own, kind="stable")
        own, rows = own[o], rows[o]
        counts = np.bincount(own, minlength=focal.size).astype(np.int64)
    else:
        rows = np.empty(0, dtype=np.int64)
    del lists
    ptr = np.zeros(focal.size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, rows.astype(np.int64)


class RadiusMatching(_MatchingBase):
    """Radius (caliper) matching: every pool unit within the radius, equally weighted.

    Parameters
    ----------
    caliper : Caliper or float
        The radius (a float means SD units of the distance).
    distance : {"logit", "ps"}, default="logit"
        Scalar matching distance.
    exact : list of str or None, default=None
        Exact-matching columns (``"cell"`` = ``data.cell``).
    bias_correction : bool, default=False
        Regression bias adjustment (Huber, Lechner and Wunsch 2013 recommend it).
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        Target population.
    propensity : PropensityModel or None, default=None
        Propensity model (default logistic MLE).
    support : {"minmax", "crump"}, (float, float) or None, default=None
        Trimming before matching, as in :class:`NearestNeighborMatching`.

    Notes
    -----
    Units within ``|d_i - d_j| <= radius`` are matched (with replacement), each with weight
    ``1 / m_i``; focal units without any unit in the radius are dropped and counted. The
    Abadie–Imbens variance formulas apply with these weights (``K_j = sum_i 1/m_i``).
    """

    _name = "RadiusMatching"
    _param_names: tuple[str, ...] = (
        "caliper", "distance", "exact", "bias_correction", "estimand", "propensity", "support",
    )
    k = 1

    def __init__(
        self,
        caliper: Caliper | float = 0.2,
        *,
        distance: str = "logit",
        exact: list[str] | None = None,
        bias_correction: bool = False,
        estimand: str = "ATT",
        propensity: PropensityModel | None = None,
        support: str | tuple[float, float] | None = None,
    ) -> None:
        self.caliper = caliper
        self.support = support
        self.distance = distance
        self.exact = exact
        self.bias_correction = bias_correction
        self.estimand = estimand
        self.propensity = propensity

    def _check_params(self) -> None:
        self._check_common()
        if self.caliper is None or self.distance == "mahalanobis":
            raise ConfigurationError(
                f"{type(self).__name__}: needs a caliper (radius) and a scalar distance "
                f"('logit' or 'ps'); got caliper={self.caliper!r}, distance={self.distance!r}."
            )

    def _support(self, cal_abs: float) -> float:
        return cal_abs

    def _window_kernel(self, cal_abs: float) -> tuple[bool, float | None, bool]:
        """Return (windows usable, Epanechnikov bandwidth or None, strict window)."""
        return True, None, False

    def _match_sets(
        self,
        focal: IntArray,
        focal_mask: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> Any:
        """Return the matched sets as windows of the sorted pool (:class:`WindowMatches`).

        The pairs are not listed: their number grows with the square of the cell sizes
        (about 5 * 10^7 for 200,000 persons with a 0.2 SD radius), while the window form
        keeps every sum linear in the number of units.
        """
        assert dist is not None and cal_abs is not None
        usable, bandwidth, strict = self._window_kernel(cal_abs)
        if not usable:
            return super()._match_sets(
                focal, focal_mask, dist, Xw, calvar, cal_abs, cells, ps, owner
            )
        support = self._support(cal_abs)
        order = sorted_order(dist, cells)  # one sort for both directions
        sd = layout(dist, focal_mask, cells, focal, order)
        idx = np.arange(focal.size)
        radius = np.full(focal.size, support)
        a = K._extend_pred(sd, idx, sd.split - 1, sd.lo, radius, strict=strict, step=-1)
        b = K._extend_pred(sd, idx, sd.split, sd.hi, radius, strict=strict, step=+1)
        cnt = np.maximum(b - a + 1, 0)
        # reverse windows: the focal units within the radius of each pool unit (the same
        # symmetric rule |d_j - d_i| <= r), among the focal units sorted the same way
        pool_mask = ~focal_mask
        pool_asc = np.flatnonzero(pool_mask)
        sr = layout(dist, pool_mask, cells, pool_asc, order)
        ridx = np.arange(pool_asc.size)
        rradius = np.full(pool_asc.size, support)
        ra = K._extend_pred(sr, ridx, sr.split - 1, sr.lo, rradius, strict=strict, step=-1)
        rb = K._extend_pred(sr, ridx, sr.split, sr.hi, rradius, strict=strict, step=+1)
        at = np.searchsorted(pool_asc, sd.ctrl_rows)
        return WindowMatches(
            focal=focal, n_rows=focal_mask.size, pool_rows=sd.ctrl_rows,
            pool_dist=sd.ctrl_dist, focal_dist=dist[focal], pool_cell=sd.ctrl_cell,
            a=a, cnt=cnt,
            rev_order=np.searchsorted(focal, sr.ctrl_rows), rev_cell=sr.ctrl_cell,
            ra=ra[at], rcnt=np.maximum(rb - ra + 1, 0)[at], bandwidth=bandwidth,
        )

    def _match_rows(
        self,
        focal: IntArray,
        focal_mask: npt.NDArray[np.bool_],
        dist: FloatArray | None,
        Xw: FloatArray | None,
        calvar: FloatArray,
        cal_abs: float | None,
        cells: IntArray | None,
        ps: FloatArray,
        owner: str,
    ) -> tuple[IntArray, IntArray]:
        assert dist is not None and cal_abs is not None
        sd = layout(dist, focal_mask, cells, focal, sorted_order(dist, cells))
        radius = np.full(focal.size, self._support(cal_abs))
        idx = np.arange(focal.size)
        a = K._extend_pred(sd, idx, sd.split - 1, sd.lo, radius, strict=False, step=-1)
        b = K._extend_pred(sd, idx, sd.split, sd.hi, radius, strict=False, step=+1)
        cnt = np.maximum(b - a + 1, 0)
        ptr = np.zeros(focal.size + 1, dtype=np.int64)
        np.cumsum(cnt, out=ptr[1:])
        pos = np.empty(int(ptr[-1]), dtype=np.int64)
        K._fill_runs(pos, ptr[:-1], a, cnt, +1)
        return ptr, sd.ctrl_rows[pos]


class KernelMatching(RadiusMatching):
    """Kernel matching: every pool unit weighted by a kernel of the distance.

    Parameters
    ----------
    bandwidth : Caliper or float, default=0.06
        Kernel bandwidth ``h`` (a float means SD units of the distance).
    kernel : {"epanechnikov", "gaussian"}, default="epanechnikov"
        Kernel ``K(u)``; the Gaussian is truncated at ``|u| <= 4``.
    distance : {"logit", "ps"}, default="logit"
        Scalar matching distance.
    exact : list of str or None, default=None
        Exact-matching columns.
    bias_correction : bool, default=False
        Regression bias adjustment.
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        Target population.
    propensity : PropensityModel or None, default=None
        Propensity model.
    support : {"minmax", "crump"}, (float, float) or None, default=None
        Trimming before matching, as in :class:`NearestNeighborMatching`.

    Notes
    -----
    The counterfactual of focal unit ``i`` is ``sum_j K((d_j - d_i)/h) Y_j / sum_j K(...)``
    (Heckman, Ichimura and Todd 1998, local constant); pair weights are the normalised
    kernel weights, which also enter the MatchIt-style per-row weights and the
    Abadie–Imbens-type variance (``K_j = sum_i w_ij``).
    """

    _name = "KernelMatching"
    _param_names: tuple[str, ...] = (
        "bandwidth", "kernel", "distance", "exact", "bias_correction", "estimand", "propensity",
        "support",
    )

    def __init__(
        self,
        bandwidth: Caliper | float = 0.06,
        *,
        kernel: str = "epanechnikov",
        distance: str = "logit",
        exact: list[str] | None = None,
        bias_correction: bool = False,
        estimand: str = "ATT",
        propensity: PropensityModel | None = None,
        support: str | tuple[float, float] | None = None,
    ) -> None:
        self.bandwidth = bandwidth
        self.support = support
        self.kernel = kernel
        self.distance = distance
        self.exact = exact
        self.bias_correction = bias_correction
        self.estimand = estimand
        self.propensity = propensity

    @property
    def caliper(self) -> Caliper | float:  # type: ignore[override]
        """The bandwidth (used as the caliper scale)."""
        return self.bandwidth

    def _check_params(self) -> None:
        check_choice(type(self).__name__, "kernel", self.kernel, ("epanechnikov", "gaussian"))
        super()._check_params()

    def _support(self, cal_abs: float) -> float:
        return cal_abs * (4.0 if self.kernel == "gaussian" else 1.0)

    def _window_kernel(self, cal_abs: float) -> tuple[bool, float | None, bool]:
        # Epanechnikov weights are quadratic in the distance (window sums); pairs at
        # |u| = 1 have weight 0 and are no match (strict window). The Gaussian lists pairs.
        if self.kernel == "epanechnikov":
            return True, cal_abs, True
        return False, None, False

    def _pair_weights(
        self,
        ptr: IntArray,
        focal: IntArray,
        rows: IntArray,
        dist: FloatArray | None,
        cal_abs: float | None,
    ) -> FloatArray:
        assert dist is not None and cal_abs is not None
        nm = np.diff(ptr)
        owner = np.repeat(np.arange(focal.size), nm)
        h = cal_abs
        u = (dist[rows] - dist[focal[owner]]) / h
        kv = 0.75 * (1 - u**2) if self.kernel == "epanechnikov" else np.exp(-0.5 * u**2)
        kv = np.maximum(kv, 0.0)
        tot = np.bincount(owner, weights=kv, minlength=focal.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = kv / tot[owner]
        return np.nan_to_num(w)
