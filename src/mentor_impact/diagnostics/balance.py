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
    "weighted_column_means",
]

FloatArray = npt.NDArray[np.float64]
#: float64 elements of one row block when reading (n, W) curves (about 32 MB)
_BLOCK_ELEMS = 4_000_000
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
    """Whether every value is 0 or 1 (no sort; stops after the range check when not)."""
    if x.size and not (0.0 <= x.min() and x.max() <= 1.0):
        return False
    return int(np.count_nonzero(x == 0.0)) + int(np.count_nonzero(x == 1.0)) == x.size


class _ValueGroups:
    """The distinct values of a covariate, shared by the eCDF statistics of several weightings.

    The weighted eCDF of an arm at a distinct value ``v`` is the arm's total weight at
    values ``<= v`` divided by its total weight: per-value weight sums (``bincount`` over
    the value codes of a hash factorisation, O(n); only the distinct values are sorted)
    accumulated over the sorted values. No sort of the ``n`` rows is needed.
    """

    def __init__(self, x: FloatArray) -> None:
        codes, uniq = pd.factorize(x, sort=True)
        self.codes = np.asarray(codes, dtype=np.intp)
        self.n_values = len(uniq)

    def ecdf_stats(
        self, w_t: FloatArray, w_c: FloatArray, sum_t: float, sum_c: float
    ) -> tuple[float, float]:
        """Return (mean, max) of ``|F_t - F_c|`` over the distinct values.

        ``w_t`` and ``w_c`` are the weights of all rows with the other arm's rows set to 0;
        ``sum_t`` and ``sum_c`` the arms' total weights.
        """
        ft = np.cumsum(np.bincount(self.codes, weights=w_t, minlength=self.n_values)) / sum_t
        fc = np.cumsum(np.bincount(self.codes, weights=w_c, minlength=self.n_values)) / sum_c
        d = np.abs(ft - fc)
        return float(d.mean()), float(d.max())


def _resolve(
    data: Any, treatment: npt.ArrayLike | None, covariates: Sequence[str] | None
) -> tuple[list[FloatArray], tuple[str, ...], npt.NDArray[np.int8], FloatArray]:
    """Return (covariate columns, names, D, sampling weights).

    Columns of an EvaluationData are views of its ``X`` (or frame columns): the covariate
    matrix is never copied whole.
    """
    if hasattr(data, "covariate_names") and hasattr(data, "treatment"):
        D = np.asarray(data.treatment).astype(np.int8)
        s = (
            np.ones(data.n)
            if getattr(data, "weight", None) is None
            else np.asarray(data.weight, dtype=np.float64)
        )
        names = tuple(covariates) if covariates is not None else tuple(data.covariate_names)
        cols = [np.asarray(data.column(c), dtype=np.float64) for c in names]
        return cols, names, D, s
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
    return [X[:, j] for j in range(X.shape[1])], names, D, np.ones(X.shape[0])


def _balance_tables(
    data: Any,
    treatment: npt.ArrayLike | None,
    weight_sets: Sequence[tuple[npt.ArrayLike | None, Any]],
    *,
    covariates: Sequence[str] | None,
    estimand: str,
    distance: npt.ArrayLike | None,
    sample_weight: npt.ArrayLike | None = None,
) -> list[pd.DataFrame]:
    """Balance tables of one sample under several weightings, one pass over the covariates.

    ``weight_sets`` holds ``(weights, matches)`` pairs (``weights=None``: the unweighted
    sample). Each covariate column is read once; its split by arm, full-sample SD and
    distinct values (eCDF statistics) are shared by all weightings.
    """
    check_choice("balance_table", "estimand", estimand, ("ATT", "ATC", "ATE"))
    cols, names, D, s = _resolve(data, treatment, covariates)
    n = D.size
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
    if distance is not None:
        dv = np.asarray(distance, dtype=np.float64).ravel()
        if dv.size != n:
            raise DataValidationError(
                f"distance: expected {n} values; found {dv.size}."
            )
        cols = [dv, *cols]
        names = ("distance", *names)
    bad = np.zeros(n, dtype=bool)
    for x in cols:
        bad |= ~np.isfinite(x)
    if bad.any():
        raise DataValidationError(
            f"balance_table: expected finite covariates; found {int(bad.sum())} rows with "
            f"missing values ({format_rows(bad)}). Hint: impute or drop them."
        )
    t = D == 1
    st, sc = s[t], s[~t]
    sets = []
    for weights, matches in weight_sets:
        w = s.copy() if weights is None else np.asarray(weights, dtype=np.float64) * s
        if w.size != n:
            raise DataValidationError(
                f"weights: expected {n} weights; found {w.size}."
            )
        if not (w[t] > 0).any() or not (w[~t] > 0).any():
            raise ConfigurationError(
                "balance_table: both arms need positive total weight; found "
                f"{int((w[t] > 0).sum())} treated and {int((w[~t] > 0).sum())} control rows "
                "with positive weight."
            )
        wt, wc = w[t], w[~t]
        pos_t, pos_c = wt > 0, wc > 0
        pairs = None
        if matches is not None and matches.matched.size:
            owner = np.repeat(np.arange(matches.focal.size), matches.n_matches)
            pairs = (matches.focal[owner], matches.matched)
        sets.append({
            "w_t": np.where(t, w, 0.0), "w_c": np.where(t, 0.0, w),
            "wt": wt, "wc": wc, "sum_t": float(wt.sum()), "sum_c": float(wc.sum()),
            "pos_t": None if pos_t.all() else pos_t, "pos_c": None if pos_c.all() else pos_c,
            "pairs": pairs, "rows": [],
        })
    for col in cols:
        x = np.ascontiguousarray(col)  # one strided read of a column of X; then contiguous
        binary = _is_binary(x)
        xt, xc = x[t], x[~t]
        # SD in the full sample with sampling weights only
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
        groups = None
        for ws in sets:
            wt, wc = ws["wt"], ws["wc"]
            mt, mc = _wmean(xt, wt), _wmean(xc, wc)
            standardize = abs(mt - mc) > _SQRT_EPS
            smd = (mt - mc) / denom if standardize else mt - mc
            if binary:
                vr = np.nan
                em = ex = abs(mt - mc)
            else:
                pt_, pc_ = ws["pos_t"], ws["pos_c"]
                vc_w = _wvar(xc, wc) if pc_ is None else _wvar(xc[pc_], wc[pc_])
                vt_w = _wvar(xt, wt) if pt_ is None else _wvar(xt[pt_], wt[pt_])
                vr = vt_w / vc_w if vc_w > 0 else np.nan
                if groups is None:
                    groups = _ValueGroups(x)
                em, ex = groups.ecdf_stats(ws["w_t"], ws["w_c"], ws["sum_t"], ws["sum_c"])
            pdist = np.nan
            if ws["pairs"] is not None:
                pf, pm = ws["pairs"]
                pdist = float(np.mean(np.abs(x[pf] - x[pm])))
                if standardize and pdist > 1e-8:
                    pdist /= denom
            ws["rows"].append((mt, mc, smd, vr, em, ex, pdist))
    index = pd.Index(names, name="covariate")
    return [pd.DataFrame(ws["rows"], index=index, columns=BALANCE_COLUMNS) for ws in sets]


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
    return _balance_tables(
        data, treatment, [(weights, matches)], covariates=covariates, estimand=estimand,
        distance=distance, sample_weight=sample_weight,
    )[0]


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
    # one pass over the covariates for both tables (shared splits, SDs, distinct values)
    before, after = _balance_tables(
        data, None, [(None, None), (w, m if hasattr(m, "n_matches") else None)],
        covariates=covariates, estimand=est, distance=dist,
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
    C = np.asarray(curves)
    if C.dtype == bool:
        C = C.view(np.uint8)
    D = check_binary(treatment, "treatment")
    if C.ndim != 2 or C.shape[0] != D.size:
        raise DataValidationError(
            f"curves: expected shape ({D.size}, W); found {C.shape}."
        )
    s = np.ones(D.size) if sample_weight is None else np.asarray(sample_weight, float)
    w = s if weights is None else np.asarray(weights, float) * s
    t = D == 1
    # one pass over row blocks: weighted sums per arm with the balancing weights (means)
    # and the sampling weights (full-sample SDs), and the 0/1 check per arm
    sums, binary = _arm_column_sums(C, t, [w, s])
    mt = sums[0, 0] / w[t].sum()
    mc = sums[1, 0] / w[~t].sum()

    def wv(arm: int, ww: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
        m = sums[arm, 1] / ww.sum()
        denom = ww.sum() - (ww @ ww) / ww.sum()
        v = np.zeros_like(m)
        cols = np.flatnonzero(~binary[arm])
        if cols.size:  # second pass only for columns that are not 0/1
            v[cols] = _arm_column_sq_dev(C, mask, ww, cols, m[cols]) / denom
        return np.asarray(np.where(binary[arm], m * (1 - m), v))

    vt, vc = wv(0, s[t], t), wv(1, s[~t], ~t)
    den = {"ATT": vt, "ATC": vc, "ATE": (vt + vc) / 2}[estimand] ** 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = np.where(den > 0, (mt - mc) / den, 0.0)
    wk = np.arange(-C.shape[1], 0) if weeks is None else np.asarray(weeks)
    return pd.DataFrame(
        {"week": wk, "mean_treated": mt, "mean_control": mc, "difference": mt - mc, "smd": smd}
    )


def _row_blocks(n: int, k: int) -> list[slice]:
    step = max(1, _BLOCK_ELEMS // max(k, 1))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _arm_column_sums(
    C: npt.NDArray[Any], t: npt.NDArray[np.bool_], weights: Sequence[FloatArray]
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Weighted column sums of ``C`` per arm, by row blocks (``C`` is never widened whole).

    Returns ``sums`` of shape (2, len(weights), W) (arm 0 = treated, 1 = control) and
    ``binary`` (2, W): whether every value of the column in that arm is 0 or 1.
    """
    n, k = C.shape
    sums = np.zeros((2, len(weights), k))
    binary = np.ones((2, k), dtype=bool)
    wmat = np.vstack([np.asarray(w_, dtype=np.float64) for w_ in weights])
    for sl in _row_blocks(n, k):
        blk = C[sl]
        for arm, mask in ((0, t[sl]), (1, ~t[sl])):
            if not mask.any():
                continue
            sub = blk[mask]
            binary[arm] &= np.all((sub == 0) | (sub == 1), axis=0)
            sums[arm] += wmat[:, sl][:, mask] @ sub.astype(np.float64, copy=False)
    return sums, binary


def _arm_column_sq_dev(
    C: npt.NDArray[Any],
    mask: npt.NDArray[np.bool_],
    ww: FloatArray,
    cols: npt.NDArray[np.intp],
    m: FloatArray,
) -> FloatArray:
    """``sum_i ww_i (C_ij - m_j)^2`` over the rows of ``mask`` for columns ``cols``."""
    k = C.shape[1]
    rows = np.flatnonzero(mask)
    out = np.zeros(cols.size)
    step = max(1, _BLOCK_ELEMS // max(k, 1))
    for a in range(0, rows.size, step):
        r = rows[a : a + step]
        out += ww[a : a + step] @ (C[r][:, cols].astype(np.float64) - m) ** 2
    return out


def weighted_column_means(
    curves: npt.ArrayLike, rows: npt.ArrayLike, weights: npt.ArrayLike
) -> FloatArray:
    """Weighted means of the columns of ``curves`` over a subset of rows, by row blocks.

    Parameters
    ----------
    curves : array-like of shape (n, W)
        Any numeric dtype (an int8 indicator curve is read block by block, never widened
        whole).
    rows : array-like of shape (n,) of bool
        Rows to average over.
    weights : array-like of shape (n,)
        Weights of the rows.

    Returns
    -------
    ndarray of shape (W,)
        ``sum_{i in rows} w_i C_i / sum_{i in rows} w_i``.
    """
    C = np.asarray(curves)
    if C.dtype == bool:
        C = C.view(np.uint8)
    mask = np.asarray(rows, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    sums, _ = _arm_column_sums(C, mask, [w])
    return np.asarray(sums[0, 0] / w[mask].sum())


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
