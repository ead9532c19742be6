"""Covariate balance: standardised mean differences, variance ratios, eCDF statistics.

Conventions follow MatchIt 4.x ``summary.matchit`` (and cobalt's defaults for the ATT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.propensity._checks import check_binary, check_choice, format_rows

__all__ = [
    "BALANCE_COLUMNS",
    "balance_table",
    "compare_balance",
    "curve_balance",
    "effective_sample_size",
    "reuse_summary",
]

FloatArray = npt.NDArray[np.float64]
_SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))

BALANCE_COLUMNS = (
    "Means Treated",
    "Means Control",
    "Std. Mean Diff.",
    "Var. Ratio",
    "eCDF Mean",
    "eCDF Max",
    "Std. Pair Dist.",
)


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``.

    Parameters
    ----------
    weights : array-like of shape (n,)
        Non-negative weights (zeros are ignored).

    Returns
    -------
    float
        The effective sample size (0 when all weights are 0).

    Notes
    -----
    MatchIt reports this as ``Matched (ESS)`` for each arm of the matched sample.
    """
    w = np.asarray(weights, dtype=np.float64)
    s2 = float(np.dot(w, w))
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def _wmean(x: FloatArray, w: FloatArray) -> float:
    return float(np.dot(w, x) / w.sum())


def _wvar(x: FloatArray, w: FloatArray) -> float:
    """MatchIt/cobalt weighted variance: sum w (x - m)^2 / (sum w - sum w^2 / sum w)."""
    sw = w.sum()
    m = np.dot(w, x) / sw
    denom = sw - np.dot(w, w) / sw
    if denom <= 0:
        return float("nan")
    return float(np.dot(w, (x - m) ** 2) / denom)


def _is_binary(x: FloatArray) -> bool:
    u = np.unique(x)
    return u.size <= 2 and bool(np.all(np.isin(u, (0.0, 1.0))))


def _ecdf_stats(
    xt: FloatArray, wt: FloatArray, xc: FloatArray, wc: FloatArray
) -> tuple[float, float]:
    """Mean and max absolute difference of the weighted eCDFs over the pooled unique values.

    The grid is every distinct value in the sample passed, weight-0 rows included (MatchIt's
    ``qqsum`` on the full data with matching weights).
    """
    vals = np.unique(np.concatenate([xt, xc]))
    ot = np.argsort(xt, kind="stable")
    oc = np.argsort(xc, kind="stable")
    ct = np.concatenate([[0.0], np.cumsum(wt[ot])]) / wt.sum()
    cc = np.concatenate([[0.0], np.cumsum(wc[oc])]) / wc.sum()
    Ft = ct[np.searchsorted(xt[ot], vals, side="right")]
    Fc = cc[np.searchsorted(xc[oc], vals, side="right")]
    d = np.abs(Ft - Fc)
    return float(d.mean()), float(d.max())


def _resolve(
    data: Any, treatment: npt.ArrayLike | None, covariates: Sequence[str] | None
) -> tuple[FloatArray, tuple[str, ...], npt.NDArray[np.int8], FloatArray]:
    """Return (X, names, D, sampling weights)."""
    if hasattr(data, "covariate_names") and hasattr(data, "treatment"):
        D = np.asarray(data.treatment).astype(np.int8)
        s = (
            np.ones(data.n)
            if getattr(data, "weight", None) is None
            else np.asarray(data.weight, dtype=np.float64)
        )
        names = tuple(covariates) if covariates is not None else tuple(data.covariate_names)
        X = np.column_stack([np.asarray(data.column(c), dtype=np.float64) for c in names])
        return X, names, D, s
    if treatment is None:
        raise DataValidationError(
            "treatment: expected a 0/1 vector when data is a table or matrix; found None. "
            "Hint: pass treatment= or an EvaluationData."
        )
    if isinstance(data, pd.DataFrame):
        names = tuple(covariates) if covariates is not None else tuple(map(str, data.columns))
        X = data[list(names)].to_numpy(dtype=np.float64)
    else:
        X = np.asarray(data, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        default = tuple(f"x{j}" for j in range(X.shape[1]))
        names = tuple(covariates) if covariates is not None else default
    D = check_binary(treatment, "treatment")
    if D.size != X.shape[0]:
        raise DataValidationError(
            f"treatment: expected {X.shape[0]} values (one per row); found {D.size}."
        )
    return X, names, D, np.ones(X.shape[0])


def balance_table(
    data: Any,
    treatment: npt.ArrayLike | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    covariates: Sequence[str] | None = None,
    estimand: str = "ATT",
    distance: npt.ArrayLike | None = None,
    matches: Any = None,
    sample_weight: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Balance statistics of covariates in a (weighted) sample, as MatchIt's ``summary``.

    Parameters
    ----------
    data : EvaluationData, DataFrame or array-like of shape (n, p)
        Covariates (for EvaluationData, ``covariates`` may name frame columns too).
    treatment : array-like of shape (n,), optional
        0/1 treatment (taken from EvaluationData otherwise).
    weights : array-like of shape (n,), optional
        Matching or balancing weights (``results.weights``); ``None`` = unweighted
        (the full sample). Rows with weight 0 are outside the matched sample.
    covariates : sequence of str, optional
        Columns to report (default: all covariates).
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        Chooses the SMD denominator.
    distance : array-like of shape (n,), optional
        Propensity score or distance; reported as the first row ``"distance"``.
    matches : Matches, optional
        Matched sets; adds ``Std. Pair Dist.``.
    sample_weight : array-like of shape (n,), optional
        Sampling weights multiplying ``weights`` (defaults to the data's weights).

    Returns
    -------
    pandas.DataFrame
        Index: covariates; columns :data:`BALANCE_COLUMNS`.

    Notes
    -----
    MatchIt 4.x / cobalt conventions:

    * ``Std. Mean Diff.`` = (weighted mean treated - weighted mean control) / SD, with the SD
      computed in the **full (unweighted) sample** of the treated for the ATT (controls for
      the ATC; ``sqrt((var_t + var_c) / 2)`` for the ATE). For 0/1 variables the SD is
      ``sqrt(p (1 - p))``; otherwise the ``n - 1`` SD.
    * ``Var. Ratio`` = weighted variance treated / control (NaN for 0/1 variables); weighted
      variances use ``sum w (x - m)^2 / (sum w - sum w^2 / sum w)``.
    * ``eCDF Mean`` / ``eCDF Max``: mean / max absolute difference of the weighted empirical
      CDFs over the distinct values of all rows passed, including rows with weight 0 (for
      0/1 variables both equal the difference in proportions).
    * ``Std. Pair Dist.``: mean absolute difference over all matched pairs (each cell of
      MatchIt's ``match.matrix`` once), divided by the same SD.
    * As MatchIt's ``bal1var``: when ``|mean difference| <= sqrt(machine eps)`` the raw
      difference is reported and the pair distance is not standardised; pair distances
      ``<= 1e-8`` are not standardised; when the chosen SD is ~0 the pooled SD is used.
    """
    check_choice("balance_table", "estimand", estimand, ("ATT", "ATC", "ATE"))
    X, names, D, s = _resolve(data, treatment, covariates)
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
    if distance is not None:
        dv = np.asarray(distance, dtype=np.float64).ravel()
        if dv.size != X.shape[0]:
            raise DataValidationError(
                f"distance: expected {X.shape[0]} values; found {dv.size}."
            )
        X = np.column_stack([dv, X])
        names = ("distance", *names)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise DataValidationError(
            f"balance_table: expected finite covariates; found {int(bad.sum())} rows with "
            f"missing values ({format_rows(bad)}). Hint: impute or drop them."
        )
    w = s.copy() if weights is None else np.asarray(weights, dtype=np.float64) * s
    if w.size != X.shape[0]:
        raise DataValidationError(
            f"weights: expected {X.shape[0]} weights; found {w.size}."
        )
    t = D == 1
    if not (w[t] > 0).any() or not (w[~t] > 0).any():
        raise ConfigurationError(
            "balance_table: both arms need positive total weight; found "
            f"{int((w[t] > 0).sum())} treated and {int((w[~t] > 0).sum())} control rows with "
            "positive weight."
        )
    rows = []
    for j, _ in enumerate(names):
        x = X[:, j]
        binary = _is_binary(x)
        xt, xc = x[t], x[~t]
        wt, wc = w[t], w[~t]
        mt, mc = _wmean(xt, wt), _wmean(xc, wc)
        # SD in the full sample with sampling weights only
        st, sc = s[t], s[~t]
        if binary:
            pt, pc = _wmean(xt, st), _wmean(xc, sc)
            vt_full, vc_full = pt * (1 - pt), pc * (1 - pc)
        else:
            vt_full, vc_full = _wvar(xt, st), _wvar(xc, sc)
        denom = {
            "ATT": np.sqrt(vt_full),
            "ATC": np.sqrt(vc_full),
            "ATE": np.sqrt((vt_full + vc_full) / 2),
        }[estimand]
        if not denom >= _SQRT_EPS:
            # MatchIt smd_denom(): fall back to the pooled SD when the chosen SD is ~0
            denom = np.sqrt((vt_full + vc_full) / 2)
        standardize = abs(mt - mc) > _SQRT_EPS
        smd = (mt - mc) / denom if standardize else mt - mc
        if binary:
            vr = np.nan
            em = ex = abs(mt - mc)
        else:
            vc_w = _wvar(xc[wc > 0], wc[wc > 0])
            vr = _wvar(xt[wt > 0], wt[wt > 0]) / vc_w if vc_w > 0 else np.nan
            em, ex = _ecdf_stats(xt, wt, xc, wc)
        pdist = np.nan
        if matches is not None and matches.matched.size:
            owner = np.repeat(np.arange(matches.focal.size), matches.n_matches)
            pdist = float(np.mean(np.abs(x[matches.focal[owner]] - x[matches.matched])))
            if standardize and pdist > 1e-8:
                pdist /= denom
        rows.append((mt, mc, smd, vr, em, ex, pdist))
    return pd.DataFrame(rows, index=pd.Index(names, name="covariate"), columns=BALANCE_COLUMNS)


def compare_balance(
    data: Any,
    results: Any = None,
    *,
    weights: npt.ArrayLike | None = None,
    covariates: Sequence[str] | None = None,
    estimand: str | None = None,
    distance: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Balance before and after matching or weighting, side by side.

    Parameters
    ----------
    data : EvaluationData
        The evaluation sample.
    results : EffectResults, optional
        A matching or weighting result; its ``weights``, ``estimand`` and (for matching)
        ``extra["matches"]`` and ``extra["ps"]`` are used.
    weights : array-like, optional
        Weights to use instead of ``results.weights``.
    covariates : sequence of str, optional
        Columns to report.
    estimand : str, optional
        Defaults to ``results.estimand`` or ``"ATT"``.
    distance : array-like, optional
        Propensity score to report as ``"distance"`` (defaults to ``results.extra["ps"]``).

    Returns
    -------
    pandas.DataFrame
        Columns with a two-level index: ``("before" | "after", statistic)``.
    """
    extra = getattr(results, "extra", {}) or {}
    est = estimand or getattr(results, "estimand", "ATT")
    if est not in ("ATT", "ATC", "ATE"):
        est = "ATT"
    w = weights if weights is not None else getattr(results, "weights", None)
    if w is None:
        raise ConfigurationError(
            "compare_balance: expected weights or a results object with weights; found none."
        )
    dist = distance if distance is not None else extra.get("ps")
    m = extra.get("matches")
    before = balance_table(data, covariates=covariates, estimand=est, distance=dist)
    after = balance_table(
        data,
        weights=w,
        covariates=covariates,
        estimand=est,
        distance=dist,
        matches=m if hasattr(m, "n_matches") else None,
    )
    return pd.concat({"before": before, "after": after}, axis=1)


def curve_balance(
    curves: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    weeks: npt.ArrayLike | None = None,
    estimand: str = "ATT",
    sample_weight: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Balance of pre-start weekly state curves (e.g. share employed in weeks -156..-1).

    Parameters
    ----------
    curves : array-like of shape (n, W)
        Per-row state indicators or shares for ``W`` pre-start weeks.
    treatment : array-like of shape (n,)
        0/1 treatment.
    weights : array-like of shape (n,), optional
        Matching or balancing weights (``None`` = before adjustment).
    weeks : array-like of shape (W,), optional
        Labels of the weeks (default ``-W..-1``).
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        SMD denominator as in :func:`balance_table`.
    sample_weight : array-like of shape (n,), optional
        Sampling weights.

    Returns
    -------
    pandas.DataFrame
        One row per week: ``week``, ``mean_treated``, ``mean_control``, ``difference``,
        ``smd``.

    Notes
    -----
    Vectorised over weeks (one matrix-vector product per arm). SMD denominators are the
    full-sample SDs per week (``sqrt(p (1 - p))`` for 0/1 indicators, as MatchIt).
    """
    C = np.asarray(curves, dtype=np.float64)
    D = check_binary(treatment, "treatment")
    if C.ndim != 2 or C.shape[0] != D.size:
        raise DataValidationError(
            f"curves: expected shape ({D.size}, W); found {C.shape}."
        )
    s = np.ones(D.size) if sample_weight is None else np.asarray(sample_weight, float)
    w = s if weights is None else np.asarray(weights, float) * s
    t = D == 1
    mt = w[t] @ C[t] / w[t].sum()
    mc = w[~t] @ C[~t] / w[~t].sum()

    def wv(M: FloatArray, ww: FloatArray) -> FloatArray:
        m = ww @ M / ww.sum()
        denom = ww.sum() - (ww @ ww) / ww.sum()
        binary = np.all((M == 0) | (M == 1), axis=0)
        v = ww @ (M - m) ** 2 / denom
        return np.asarray(np.where(binary, m * (1 - m), v))

    vt, vc = wv(C[t], s[t]), wv(C[~t], s[~t])
    den = {"ATT": vt, "ATC": vc, "ATE": (vt + vc) / 2}[estimand] ** 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = np.where(den > 0, (mt - mc) / den, 0.0)
    wk = np.arange(-C.shape[1], 0) if weeks is None else np.asarray(weeks)
    return pd.DataFrame(
        {"week": wk, "mean_treated": mt, "mean_control": mc, "difference": mt - mc, "smd": smd}
    )


def reuse_summary(results: Any, cluster: npt.ArrayLike | None = None) -> pd.DataFrame:
    """Distribution of how often control units (and persons) are reused as matches.

    Parameters
    ----------
    results : EffectResults
        A matching result (``extra["reuse_counts"]``).
    cluster : array-like of shape (n,), optional
        Person index per row; adds the reuse counts aggregated by person.

    Returns
    -------
    pandas.DataFrame
        Index ``times_used`` (0, 1, 2, ...), columns ``units`` (and ``persons``).
    """
    rc = np.asarray(results.extra.get("reuse_counts"))
    if rc.ndim != 1:
        raise ConfigurationError(
            "reuse_summary: the results carry no reuse counts (not a matching result)."
        )
    used = rc[rc > 0] if (rc > 0).any() else rc
    tab = pd.Series(np.bincount(used)).rename("units")
    out = tab.to_frame()
    if cluster is not None:
        cl = np.asarray(cluster)
        _, inv = np.unique(cl, return_inverse=True)
        per = np.bincount(inv, weights=rc).astype(np.int64)
        per = per[per > 0]
        out = out.join(pd.Series(np.bincount(per)).rename("persons"), how="outer").fillna(0)
    out.index.name = "times_used"
    return out.astype(np.int64)
