"""Weighted Kaplan–Meier, Nelson–Aalen and Aalen–Johansen estimators (curves by arm).

The estimators fit either a :class:`pandas.DataFrame` by column roles or an
``EvaluationData`` container, and return a :class:`SurvivalResults`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact._kernels import survival as K
from mentor_impact.duration._survival_results import ArmCurve, SurvivalResults, _ArmRows
from mentor_impact.exceptions import ConfigurationError, DataValidationError, DataWarning

__all__ = ["AalenJohansen", "KaplanMeier", "logrank_test"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_KM_VARIANCES = ("auto", "greenwood", "xie-liu", "ij")
_AJ_VARIANCES = ("auto", "cmprsk", "ij")


def _rows(mask: npt.NDArray[Any], limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return f"{'row' if idx.size == 1 else 'rows'} {shown}{', ...' if idx.size > limit else ''}"


@dataclass(frozen=True)
class _Prepared:
    time: FloatArray
    event: IntArray  # 0 = censored, k = cause k
    weight: FloatArray
    group: IntArray  # dense arm codes
    arm_labels: tuple[str, ...]
    group_name: str | None
    cluster: IntArray | None  # dense codes
    n_clusters: int
    entry: FloatArray | None
    causes: tuple[str, ...]
    weighted: bool
    grid: FloatArray  # pooled sorted unique times
    code: IntArray  # pooled grid index of each row
    arm_sizes: IntArray  # rows per arm


def _is_evaluation_data(obj: object) -> bool:
    return not isinstance(obj, pd.DataFrame) and hasattr(obj, "durations")


def _column(df: pd.DataFrame, role: str, spec: str | npt.ArrayLike) -> npt.NDArray[Any]:
    if isinstance(spec, str):
        if spec not in df.columns:
            raise ConfigurationError(
                f"{role}: expected a column of the data frame; found no column with this name "
                f"among {df.shape[1]} columns. Hint: check the spelling."
            )
        return df[spec].to_numpy()
    arr = np.asarray(spec)
    if arr.shape != (len(df),):
        raise DataValidationError(
            f"{role}: expected a column name or an array of length {len(df)}; found shape "
            f"{arr.shape}. Hint: pass one value per row."
        )
    return arr


def _numeric(role: str, arr: npt.NDArray[Any]) -> FloatArray:
    try:
        out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{role}: expected numeric values; found a non-numeric column. "
            "Hint: convert it with pd.to_numeric."
        ) from exc
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataValidationError(
            f"{role}: expected finite numbers; found {int(bad.sum())} missing or infinite "
            f"values ({_rows(bad)}). Hint: drop or impute these rows before fitting."
        )
    return out


def _dense(role: str, arr: npt.NDArray[Any]) -> tuple[IntArray, npt.NDArray[Any]]:
    ser = pd.Series(arr)
    bad = ser.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{role}: expected no missing labels; found {int(bad.sum())} missing values "
            f"({_rows(bad)}). Hint: drop these rows or give them their own level."
        )
    codes, levels = pd.factorize(ser, sort=True)
    return codes.astype(np.int64), np.asarray(levels)


def _prepare(
    data: Any,
    *,
    duration: str | npt.ArrayLike | None,
    event: str | npt.ArrayLike | None,
    weights: str | npt.ArrayLike | None,
    group: str | npt.ArrayLike | None,
    cluster: str | npt.ArrayLike | None,
    entry: str | npt.ArrayLike | None,
    causes: Sequence[str] | Mapping[int, str] | None,
    competing: bool,
) -> _Prepared:
    group_name: str | None = None
    cause_labels: tuple[str, ...] | None = None
    if _is_evaluation_data(data):
        name = duration if isinstance(duration, str) else "first_self_support"
        if name not in data.durations:
            raise ConfigurationError(
                f"duration: expected a key of data.durations ({sorted(data.durations)}); "
                "found an unknown name. Hint: build the design with this duration outcome."
            )
        dur = data.durations[name]
        time_raw = np.asarray(dur.time)
        ev_raw = np.asarray(dur.event)
        cause_labels = tuple(getattr(dur, "causes", ()) or ())

        def _col(spec: str | npt.ArrayLike) -> npt.NDArray[Any]:
            return np.asarray(data.column(spec)) if isinstance(spec, str) else np.asarray(spec)

        if weights is None:
            w_raw: npt.NDArray[Any] | None = np.asarray(data.weight)
        else:
            w_raw = _col(weights)
        if group is None or isinstance(group, str):
            gname = group if isinstance(group, str) else "treatment"
            g_raw: npt.NDArray[Any] | None = (
                np.asarray(data.treatment)
                if gname == "treatment"
                else np.asarray(data.column(gname))
            )
            group_name = gname
        else:
            g_raw = np.asarray(group)
            group_name = "group"
        c_raw: npt.NDArray[Any] | None = (
            np.asarray(data.cluster) if cluster is None else _col(cluster)
        )
        e_raw = None if entry is None else _col(entry)
    elif isinstance(data, pd.DataFrame):
        if duration is None or event is None:
            raise ConfigurationError(
                "duration, event: expected the column names (or arrays) of the durations and "
                "the event indicator; found None. Hint: fit(df, duration='time', event='status')."
            )
        time_raw = _column(data, "duration", duration)
        ev_raw = _column(data, "event", event)
        w_raw = None if weights is None else _column(data, "weights", weights)
        g_raw = None if group is None else _column(data, "group", group)
        group_name = None if group is None else (group if isinstance(group, str) else "group")
        c_raw = None if cluster is None else _column(data, "cluster", cluster)
        e_raw = None if entry is None else _column(data, "entry", entry)
    else:
        raise DataValidationError(
            f"data: expected a pandas DataFrame or an EvaluationData; found {type(data).__name__}. "
            "Hint: wrap arrays in pd.DataFrame."
        )
    n = len(time_raw)
    if n == 0:
        raise DataValidationError("data: expected at least one row; found 0 rows.")
    time = _numeric("duration", time_raw)
    neg = time < 0
    if neg.any():
        raise DataValidationError(
            f"duration: expected non-negative times; found {int(neg.sum())} negative durations "
            f"({_rows(neg)}). Hint: check the start/end columns or drop these rows."
        )
    zero = time == 0
    if zero.any():
        warnings.warn(
            f"duration: found {int(zero.sum())} zero durations ({_rows(zero)}); they are kept "
            "as exits at time 0 (as survival::survfit does). Hint: weekly durations start at 1; "
            "drop them if they are coding errors.",
            DataWarning,
            stacklevel=3,
        )
    ev_num = _numeric("event", ev_raw.astype(np.float64) if ev_raw.dtype == bool else ev_raw)
    nonint = ev_num != np.round(ev_num)
    if nonint.any():
        raise DataValidationError(
            f"event: expected integer codes; found {int(nonint.sum())} non-integer values "
            f"({_rows(nonint)}). Hint: code 0 = censored, 1..K = causes."
        )
    ev = ev_num.astype(np.int64)
    if competing:
        if causes is not None:
            if isinstance(causes, Mapping):
                codes = sorted(int(k) for k in causes)
                if codes != list(range(1, len(codes) + 1)):
                    raise ConfigurationError(
                        "causes: expected a mapping with keys 1..K; found other keys. "
                        "Hint: recode causes to 1..K."
                    )
                cause_labels = tuple(str(causes[k]) for k in codes)
            else:
                cause_labels = tuple(str(c) for c in causes)
        if not cause_labels:
            kmax = int(ev.max()) if ev.size else 0
            cause_labels = tuple(str(k) for k in range(1, max(kmax, 1) + 1))
        allowed = len(cause_labels)
        bad = (ev < 0) | (ev > allowed)
        if bad.any():
            raise DataValidationError(
                f"event: expected codes in {{0, ..., {allowed}}} (0 = censored, "
                f"{allowed} declared causes); found {int(bad.sum())} rows with other codes "
                f"({_rows(bad)}). Hint: declare all causes with causes=... or recode."
            )
    else:
        bad = (ev < 0) | (ev > 1)
        if bad.any():
            if cause_labels is not None and ev.min() >= 0:
                ev = (ev > 0).astype(np.int64)  # EvaluationData: any exit is an event
            else:
                raise DataValidationError(
                    f"event: expected 0 (censored) or 1 (event); found {int(bad.sum())} rows "
                    f"with other codes ({_rows(bad)}). Hint: use AalenJohansen for competing "
                    "causes or recode to 0/1."
                )
        cause_labels = ("event",)
    weighted = w_raw is not None
    if w_raw is None:
        w = np.ones(n)
    else:
        w = _numeric("weights", w_raw)
        negw = w < 0
        if negw.any():
            raise DataValidationError(
                f"weights: expected non-negative weights; found {int(negw.sum())} negative "
                f"weights ({_rows(negw)}). Hint: check the weighting step."
            )
        if w.sum() <= 0:
            raise DataValidationError(
                "weights: expected a positive total weight; found all weights zero."
            )
        if np.all(w == 1.0):
            weighted = False
    if g_raw is None:
        g = np.zeros(n, dtype=np.int64)
        labels: tuple[str, ...] = ("all",)
    else:
        g, levels = _dense("group", g_raw)
        gl = group_name or "group"
        labels = tuple(f"{gl}={lv}" for lv in levels)
    if c_raw is None:
        cl = None
        ncl = n
    else:
        cl, clev = _dense("cluster", c_raw)
        ncl = int(clev.size)
    ent = None
    if e_raw is not None:
        ent = _numeric("entry", e_raw)
        badent = ent >= time
        if badent.any():
            raise DataValidationError(
                f"entry: expected entry < duration; found {int(badent.sum())} rows with entry "
                f">= exit ({_rows(badent)}). Hint: drop rows with no time at risk."
            )
    grid, code = K.grid_codes(time)
    return _Prepared(
        grid=grid,
        code=code,
        arm_sizes=np.bincount(g, minlength=len(labels)).astype(np.int64),
        time=time,
        event=ev,
        weight=w,
        group=g,
        arm_labels=labels,
        group_name=group_name,
        cluster=cl,
        n_clusters=ncl,
        entry=ent,
        causes=cause_labels,
        weighted=weighted,
    )


def _check_conf(
    owner: str, conf_level: float, conf_type: str, allowed: tuple[str, ...] = ("log",)
) -> None:
    if not (0 < conf_level < 1):
        raise ConfigurationError(
            f"The 'conf_level' parameter of {owner} must be in (0, 1). Got {conf_level!r} instead."
        )
    if conf_type not in allowed:
        opts = "{" + ", ".join(repr(a) for a in allowed) + "}"
        raise ConfigurationError(
            f"The 'conf_type' parameter of {owner} must be one of {opts}. "
            f"Got {conf_type!r} instead."
        )


def _check_variance(owner: str, variance: str, allowed: tuple[str, ...]) -> None:
    if variance not in allowed:
        raise ConfigurationError(
            f"The 'variance' parameter of {owner} must be one of {set(allowed)}. "
            f"Got {variance!r} instead."
        )


def _survival_results(
    estimator: str,
    p: _Prepared,
    curves: dict[str, ArmCurve],
    rows: dict[str, _ArmRows],
    used: str,
    tests: dict[str, Any],
    conf_level: float,
    conf_type: str,
    variance: str,
    **config: Any,
) -> SurvivalResults:
    """Assemble the :class:`SurvivalResults` of a KM / AJ fit (``config`` adds entries)."""
    return SurvivalResults(
        estimator=estimator,
        group=p.group_name,
        arms=p.arm_labels,
        causes=p.causes,
        curves=curves,
        variance=used,
        conf_level=float(conf_level),
        conf_type=conf_type,
        n=int(p.time.size),
        tests=tests,
        dropped={},
        config={
            "conf_level": conf_level,
            "conf_type": conf_type,
            "variance": variance,
            "weighted": p.weighted,
            "clustered": p.cluster is not None,
            "delayed_entry": p.entry is not None,
            **config,
        },
        _rows=rows,
    )


def _fit_curves(
    p: _Prepared,
    *,
    competing: bool,
    variance: str,
    owner: str,
    keep_rows: bool = False,
    tables: dict[str, FloatArray] | None = None,
) -> tuple[dict[str, ArmCurve], dict[str, _ArmRows], str]:
    if tables is None:
        tables = {}
    ncause = len(p.causes)
    if variance == "auto":
        if p.cluster is not None:
            variance = "ij"
        elif competing:
            variance = "ij" if p.weighted else "cmprsk"
        else:
            variance = "xie-liu" if p.weighted else "greenwood"
    curves: dict[str, ArmCurve] = {}
    rows: dict[str, _ArmRows] = {}
    G = len(p.arm_labels)
    T = p.grid.size
    start_pooled = None
    if p.entry is not None:
        start_pooled = np.searchsorted(p.grid, p.entry, side="right").astype(np.int64)
    n_event_g, y_g, y2_g, present = K.risk_table_grouped(
        p.code,
        p.event,
        p.weight,
        p.group,
        G,
        T,
        ncause,
        start_pooled,
        need_w2=variance == "xie-liu",
    )
    ev_rows = np.bincount(p.group[p.event > 0], minlength=G)
    tables["y"] = y_g
    tables["d"] = n_event_g[:, :, 1:].sum(axis=2)
    need_rows = variance == "ij" or keep_rows
    cluster_all = p.cluster if p.cluster is not None else np.arange(p.time.size, dtype=np.int64)
    for a, label in enumerate(p.arm_labels):
        keep_idx = np.flatnonzero(present[a])
        grid = p.grid[keep_idx]
        y = y_g[a, keep_idx]
        n_ev = n_event_g[a, keep_idx]
        d = n_ev[:, 1:].sum(axis=1)
        arm_rows = None
        if need_rows:
            pos = np.flatnonzero(p.group == a)
            remap = np.cumsum(present[a]) - 1
            stop = remap[p.code[pos]].astype(np.int64)
            if start_pooled is None:
                st = np.zeros(pos.size, dtype=np.int64)
            else:
                st = np.searchsorted(keep_idx, start_pooled[pos], side="left").astype(np.int64)
            arm_rows = _ArmRows(
                positions=pos,
                stop=stop,
                start=st,
                event=p.event[pos],
                weight=p.weight[pos],
                cluster=cluster_all[pos],
                n_clusters=p.n_clusters,
                clustered=p.cluster is not None,
            )
            rows[label] = arm_rows
        n_rows = int(p.arm_sizes[a])
        if float(d.sum()) == 0.0:
            warnings.warn(
                f"{owner}: arm {label!r} has no events ({n_rows} rows, all censored); its "
                "curve stays at its starting value and has zero variance.",
                DataWarning,
                stacklevel=4,
            )
        km = K.km_curve(y, d)
        surv = km["surv"]
        rmst_inc: FloatArray | None = None
        cells: tuple[IntArray, IntArray, IntArray, FloatArray] | None = None
        if variance in ("greenwood", "cmprsk"):
            with np.errstate(divide="ignore", invalid="ignore"):
                se = surv * np.sqrt(km["gw"])
                rmst_inc = np.where((y - d) > 0, np.where(d > 0, d / (y * (y - d)), 0.0), 0.0)
        elif variance == "xie-liu":
            assert y2_g is not None
            y2 = y2_g[a, keep_idx]
            xl = K.xie_liu_sum(y, y2, d)
            with np.errstate(divide="ignore", invalid="ignore"):
                se = surv * np.sqrt(xl)
                m = y * y / y2
                rmst_inc = np.where((y - d) > 0, np.where(d > 0, d / (m * (y - d)), 0.0), 0.0)
        else:
            assert arm_rows is not None
            if not arm_rows.clustered:
                cells = _cells(arm_rows, grid.size)
            se = _ij_se(arm_rows, y, d, surv, None, None, 0, cells)
        se = np.where(np.isfinite(se), se, np.nan)
        cif = cif_se = None
        if competing:
            dc = n_ev[:, 1:]
            cif = K.aj_curves(surv, y, dc)
            if variance == "ij":
                assert arm_rows is not None
                cif_se = np.column_stack(
                    [
                        _ij_se(arm_rows, y, d, surv, cif[:, k], dc[:, k], k + 1, cells)
                        for k in range(ncause)
                    ]
                )
            else:
                cif_se = np.sqrt(np.maximum(K.cmprsk_variance(surv, y, dc, cif), 0.0))
        curves[label] = ArmCurve(
            label=label,
            time=grid,
            n_risk=y,
            n_event=d,
            n_censor=n_ev[:, 0],
            surv=surv,
            std_err=se,
            cumhaz=km["cumhaz"],
            std_chaz=np.sqrt(km["var_chaz"]),
            cif=cif,
            cif_std_err=cif_se,
            rmst_inc=rmst_inc,
            n_rows=n_rows,
            n_event_rows=int(ev_rows[a]),
        )
    return curves, rows, variance


def _cells(r: _ArmRows, n_times: int) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Compress rows to (exit, entry, event) cells with summed squared weights."""
    T = n_times
    ncode = int(r.event.max()) + 1 if r.event.size else 1
    key = (r.stop * ncode + r.event) * (T + 1) + r.start
    uniq, inv = K.grid_codes(key.astype(np.float64))
    w2 = np.asarray(
        np.bincount(inv, weights=r.weight * r.weight, minlength=uniq.size), dtype=np.float64
    )
    ck = uniq.astype(np.int64)
    return ck // (T + 1) // ncode, ck % (T + 1), (ck // (T + 1)) % ncode, w2


def _ij_se(
    r: _ArmRows,
    y: FloatArray,
    d: FloatArray,
    surv: FloatArray,
    cif_c: FloatArray | None,
    d_c: FloatArray | None,
    cause: int,
    cells: tuple[IntArray, IntArray, IntArray, FloatArray] | None = None,
) -> FloatArray:
    """Influence-function SE on the grid.

    Without clusters (``cells`` given), rows sharing (entry index, exit index, event code)
    have influences proportional to their weights, so the sum of squares runs over these
    cells (weights ``sum w^2``) at event times and is carried forward; with clusters, the
    piecewise cluster sums of :func:`~mentor_impact._kernels.survival.clustered_step_products`
    give all times in O(n log n).
    """
    T = y.size
    ev_idx = np.flatnonzero(d > 0)
    vals = np.zeros(ev_idx.size)
    if cells is not None:
        c_stop, c_start, c_event, w2 = cells
        ones = np.ones(c_stop.size)
        chunk = max(1, 2_000_000 // max(c_stop.size, 1))
        for lo in range(0, ev_idx.size, chunk):
            ks = ev_idx[lo : lo + chunk]
            g = K.aj_influence_matrix(
                ks, c_stop, c_start, c_event, ones, y, d, surv, cif_c, d_c, cause
            )
            vals[lo : lo + ks.size] = w2 @ (g * g)
    elif cif_c is None:
        var = K.km_ij_variance_clustered(r.stop, r.start, r.event, r.weight, r.cluster, y, d, surv)
        return np.sqrt(var)
    else:
        assert d_c is not None
        var = K.aj_ij_variance_clustered(
            r.stop, r.start, r.event, r.weight, r.cluster, y, d, surv, cif_c, d_c, cause
        )
        return np.sqrt(var)
    # carry forward (the influence only changes at event times)
    idx = np.maximum.accumulate(np.where(d > 0, np.arange(T), -1))
    pos = np.searchsorted(ev_idx, idx)
    out = np.where(
        idx >= 0, vals[np.minimum(pos, max(ev_idx.size - 1, 0))] if ev_idx.size else 0.0, 0.0
    )
    return np.sqrt(out)


class KaplanMeier:
    """Weighted Kaplan–Meier survival and Nelson–Aalen cumulative hazard, by arm.

    Parameters
    ----------
    conf_level : float, default=0.95
        Level of the pointwise confidence intervals.
    conf_type : {"log", "log-log", "plain"}, default="log"
        Interval type as ``survfit``'s ``conf.type``: ``"log"`` (default)
        ``exp(log S -+ z se(log S))`` with the upper limit capped at 1; ``"log-log"``
        ``exp(-exp(log(-log S) -+ z se(log S)/log S))``; ``"plain"`` ``S -+ z se`` clipped
        to [0, 1].
    variance : {"auto", "greenwood", "xie-liu", "ij"}, default="auto"
        ``"greenwood"``: Greenwood on weighted counts (survfit; frequency-weight
        convention: weights equal duplicated rows); ``"xie-liu"``: Xie & Liu (2005)
        Greenwood analogue with the Kish effective size, for matching/IPW weights; ``"ij"``:
        influence function (infinitesimal jackknife) summed within clusters. ``"auto"``
        chooses ``"ij"`` when a cluster is given (always for ``EvaluationData``, whose
        ``cluster`` is the person), else ``"xie-liu"`` when non-unit weights are given, else
        ``"greenwood"``.

    Notes
    -----
    With grid times ``t_j`` (all unique times of an arm), weighted risk sets
    ``Y_j = sum_i w_i 1{entry_i < t_j <= T_i}`` and events ``d_j``:

    * ``S(t) = prod_{t_j <= t} (1 - d_j / Y_j)``;
    * Greenwood: ``Var S(t) = S(t)^2 sum_{t_j <= t} d_j / (Y_j (Y_j - d_j))`` (reported as
      ``std_err`` on the survival scale, as ``summary.survfit``);
    * Xie–Liu: the same with ``M_j = Y_j^2 / sum_{risk set} w_i^2`` in place of the first
      ``Y_j``;
    * ``"ij"``: ``Var S(t) = sum_g (sum_{i in g} w_i dS(t)/dw_i)^2`` with the exact
      derivative of the product-limit estimator (as ``survfit(..., id=, robust=TRUE)``; no
      small-sample factor). Use it for person-clustered data (a person in several rows);
    * Nelson–Aalen ``H(t) = sum d_j / Y_j`` with ``std_chaz = sqrt(sum d_j / Y_j^2)``.

    Zero durations are kept (with a :class:`~mentor_impact.exceptions.DataWarning`), as
    survfit does. An arm without events gives a flat curve and a ``DataWarning``.
    The two-or-more-arm weighted log-rank test is stored in ``results.tests["logrank"]``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 5], "e": [1, 1, 0, 1, 0]})
    >>> res = KaplanMeier().fit(df, duration="t", event="e")
    >>> round(float(res.at([2])["surv"].iloc[0]), 4)
    0.6
    """

    def __init__(
        self, conf_level: float = 0.95, *, conf_type: str = "log", variance: str = "auto"
    ) -> None:
        self.conf_level = conf_level
        self.conf_type = conf_type
        self.variance = variance

    def fit(
        self,
        data: Any,
        *,
        duration: str | npt.ArrayLike | None = None,
        event: str | npt.ArrayLike | None = None,
        weights: str | npt.ArrayLike | None = None,
        group: str | npt.ArrayLike | None = None,
        cluster: str | npt.ArrayLike | None = None,
        entry: str | npt.ArrayLike | None = None,
    ) -> SurvivalResults:
        """Fit the curves.

        Parameters
        ----------
        data : pandas.DataFrame or EvaluationData
            Rows to use. For ``EvaluationData``, ``duration`` names an entry of
            ``data.durations`` (default ``"first_self_support"``; any exit is an event),
            weights default to ``data.weight``, arms to ``data.treatment`` (``group`` may name
            another column) and clusters to ``data.cluster``.
        duration, event : str or array-like
            Column names (or arrays) of the exit time and of the event indicator (0/1).
        weights : str or array-like, optional
            Non-negative case weights (frequency, matching or IPW weights).
        group : str or array-like, optional
            Arms; one curve per sorted level, labelled ``f"{group}={level}"``.
        cluster : str or array-like, optional
            Cluster (person) identifiers; implies the ``"ij"`` variance under ``"auto"``.
        entry : str or array-like, optional
            Delayed-entry times; a row is at risk at ``t`` when ``entry < t <= duration``.

        Returns
        -------
        SurvivalResults
            The curves, tests and options.

        Raises
        ------
        DataValidationError
            Missing/negative durations, event codes other than 0/1, negative weights, entry
            not before exit.
        """
        owner = type(self).__name__
        _check_conf(owner, self.conf_level, self.conf_type, ("log", "log-log", "plain"))
        _check_variance(owner, self.variance, _KM_VARIANCES)
        p = _prepare(
            data,
            duration=duration,
            event=event,
            weights=weights,
            group=group,
            cluster=cluster,
            entry=entry,
            causes=None,
            competing=False,
        )
        if _is_evaluation_data(data) and self.variance == "auto":
            variance = "ij"
        else:
            variance = self.variance
        tables: dict[str, FloatArray] = {}
        curves, rows, used = _fit_curves(
            p, competing=False, variance=variance, owner=owner, tables=tables
        )
        tests: dict[str, Any] = {}
        if len(p.arm_labels) > 1:
            tests["logrank"] = _logrank(p, tables)
        return _survival_results(
            "kaplan-meier", p, curves, rows, used, tests,
            self.conf_level, self.conf_type, self.variance,
        )


class AalenJohansen:
    """Weighted Aalen–Johansen cumulative incidence functions for competing exits, by arm.

    Parameters
    ----------
    conf_level : float, default=0.95
        Level of the pointwise confidence intervals.
    conf_type : {"log", "plain"}, default="log"
        ``"log"``: ``exp(log F -+ z se/F)``, upper capped at 1; ``"plain"``: ``F -+ z se``
        clipped to [0, 1].
    variance : {"auto", "cmprsk", "ij"}, default="auto"
        ``"cmprsk"``: Gray's (1988) delta-method estimator exactly as ``cmprsk::cuminc``
        (weighted counts plugged in: the frequency-weight convention); ``"ij"``: influence
        function summed within clusters. ``"auto"``: ``"cmprsk"`` without weights and
        clusters, ``"ij"`` otherwise (always for ``EvaluationData``).

    Notes
    -----
    ``F_c(t) = sum_{t_j <= t} S(t_{j-1}) d_{c,j} / Y_j`` with ``S`` the all-cause weighted
    Kaplan–Meier. cmprsk's variance is recorded only at times with an event of the cause
    itself and carried forward in between (exactly as ``cuminc``/``timepoints``); beyond an
    arm's last follow-up time ``at`` returns NaN (``timepoints``). The influence function of
    the discrete estimator is::

        dF(t)/dw_i = sum_{l<=t} (dN_ci(l) - R_i(l) d_c(l)/Y(l)) S(l-1)/Y(l)
                     - sum_{l<=t} (F(t) - F(l)) (dN_i(l) - R_i(l) d(l)/Y(l)) / (Y(l) - d(l)).

    Gray's K-sample test (``rho = 0``, unstratified, as ``cmprsk::crstm``) is stored in
    ``results.tests[f"gray[{cause}]"]`` when there are several arms; it uses weighted counts
    only when weights are integers (otherwise it is skipped with a note).
    """

    def __init__(
        self, conf_level: float = 0.95, *, conf_type: str = "log", variance: str = "auto"
    ) -> None:
        self.conf_level = conf_level
        self.conf_type = conf_type
        self.variance = variance

    def fit(
        self,
        data: Any,
        *,
        duration: str | npt.ArrayLike | None = None,
        event: str | npt.ArrayLike | None = None,
        causes: Sequence[str] | Mapping[int, str] | None = None,
        weights: str | npt.ArrayLike | None = None,
        group: str | npt.ArrayLike | None = None,
        cluster: str | npt.ArrayLike | None = None,
        entry: str | npt.ArrayLike | None = None,
    ) -> SurvivalResults:
        """Fit the cumulative incidence curves.

        Parameters
        ----------
        data : pandas.DataFrame or EvaluationData
            Rows to use (see :meth:`KaplanMeier.fit`); for ``EvaluationData`` the cause
            labels come from the duration outcome.
        duration : str or array-like
            Exit times.
        event : str or array-like
            0 = censored, ``k`` = cause ``k`` (1..K).
        causes : sequence of str or mapping of int to str, optional
            Labels of causes 1..K; codes above K are errors. Default: ``"1"..str(max code)``.
        weights, group, cluster, entry : optional
            As in :meth:`KaplanMeier.fit`.

        Returns
        -------
        SurvivalResults
            ``cif`` and ``cif_std_err`` per arm; tests hold Gray's test per cause.

        Raises
        ------
        DataValidationError
            Event codes outside ``{0, ..., K}``, missing or negative durations, negative weights.
        """
        owner = type(self).__name__
        _check_conf(owner, self.conf_level, self.conf_type, ("log", "plain"))
        _check_variance(owner, self.variance, _AJ_VARIANCES)
        p = _prepare(
            data,
            duration=duration,
            event=event,
            weights=weights,
            group=group,
            cluster=cluster,
            entry=entry,
            causes=causes,
            competing=True,
        )
        for k, c in enumerate(p.causes):
            nk = int(np.sum(p.event == k + 1))
            if nk == 0:
                warnings.warn(
                    f"event: cause {c!r} (code {k + 1}) has no events in {p.time.size} rows; "
                    "its cumulative incidence is 0.",
                    DataWarning,
                    stacklevel=2,
                )
        variance = (
            "ij" if (_is_evaluation_data(data) and self.variance == "auto") else self.variance
        )
        curves, rows, used = _fit_curves(p, competing=True, variance=variance, owner=owner)
        notes: list[str] = []
        tests: dict[str, Any] = {}
        if len(p.arm_labels) > 1:
            integer_w = bool(np.all(p.weight == np.round(p.weight)))
            if p.entry is None and integer_w:
                for k, c in enumerate(p.causes):
                    tests[f"gray[{c}]"] = _gray(p, k + 1)
            else:
                notes.append(
                    "Gray's test skipped: it is defined for unweighted (or integer frequency "
                    "weighted) data without delayed entry."
                )
        return _survival_results(
            "aalen-johansen", p, curves, rows, used, tests,
            self.conf_level, self.conf_type, self.variance, notes=notes,
        )


def _logrank(p: _Prepared, tables: dict[str, FloatArray] | None = None) -> dict[str, Any]:
    G = len(p.arm_labels)
    if tables:
        yg, dg = tables["y"].T, tables["d"].T
    else:
        start = None
        if p.entry is not None:
            start = np.searchsorted(p.grid, p.entry, side="right").astype(np.int64)
        ev = (p.event > 0).astype(np.int64)
        n_ev, y, _, _ = K.risk_table_grouped(
            p.code, ev, p.weight, p.group, G, p.grid.size, 1, start
        )
        yg, dg = y.T, n_ev[:, :, 1].T
    stat, obs, exp_ = K.logrank_test(yg, dg)
    return {
        "stat": stat,
        "df": G - 1,
        "p_value": float(stats.chi2.sf(stat, G - 1)),
        "observed": dict(zip(p.arm_labels, obs.tolist(), strict=True)),
        "expected": dict(zip(p.arm_labels, exp_.tolist(), strict=True)),
    }


def _gray(p: _Prepared, cause: int) -> dict[str, Any]:
    G = len(p.arm_labels)
    w = None if not p.weighted else p.weight
    stat, _, _ = K.gray_test(p.code, p.event, p.group, G, p.grid.size, cause, weight=w)
    return {"stat": stat, "df": G - 1, "p_value": float(stats.chi2.sf(stat, G - 1))}


def logrank_test(
    df: pd.DataFrame,
    *,
    duration: str | npt.ArrayLike,
    event: str | npt.ArrayLike,
    group: str | npt.ArrayLike,
    weights: str | npt.ArrayLike | None = None,
    entry: str | npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Weighted K-sample log-rank test.

    Parameters
    ----------
    df : pandas.DataFrame
        Data.
    duration, event, group : str or array-like
        Exit time, event indicator (0/1) and arm.
    weights : str or array-like, optional
        Case weights (plugged into the counts).
    entry : str or array-like, optional
        Delayed entry times.

    Returns
    -------
    dict
        ``stat`` (chi-square), ``df``, ``p_value``, ``observed`` and ``expected`` per arm.

    Notes
    -----
    ``survival::survdiff`` (rho = 0): ``U = O - E`` over the first ``G - 1`` arms with the
    hypergeometric variance ``sum_t d (Y - d) / (Y^2 (Y - 1)) (diag(Y_g) Y - Y_g Y_g')``,
    computed on weighted counts (equal to duplicated rows for frequency weights).
    """
    p = _prepare(
        df,
        duration=duration,
        event=event,
        weights=weights,
        group=group,
        cluster=None,
        entry=entry,
        causes=None,
        competing=False,
    )
    if len(p.arm_labels) < 2:
        raise DataValidationError(
            "group: expected at least two arms; found 1 level. Hint: check the group column."
        )
    return _logrank(p)
