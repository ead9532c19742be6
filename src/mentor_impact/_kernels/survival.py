"""Vectorised kernels for nonparametric survival curves (no pandas, no validation).

All kernels work on a *time grid* of ``T`` sorted unique times and on integer grid positions:

* ``stop``  (n,) int64: grid index of each row's exit time (event or censoring);
* ``start`` (n,) int64: first grid index at which the row is at risk (0 without delayed
  entry; ``searchsorted(grid, entry, side="right")`` with delayed entry, so a row is at risk
  at grid time ``t_j`` iff ``entry < t_j <= stop``);
* ``event`` (n,) int64: 0 = censored, ``k`` = cause ``k`` (1..K);
* ``weight`` (n,) float64.

Counts are built with :func:`numpy.bincount` and curves with cumulative products / sums, so
every kernel is O(n + T).  Influence functions loop over grid times only (one vectorised
O(n) pass per requested time).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "aj_curves",
    "aj_ij_variance_clustered",
    "aj_influence",
    "aj_influence_matrix",
    "clustered_step_products",
    "cmprsk_variance",
    "gray_test",
    "grid_codes",
    "km_curve",
    "km_ij_variance_clustered",
    "km_rmst_influence",
    "logrank_test",
    "risk_table_grouped",
    "step_index",
]


def grid_codes(time: FloatArray) -> tuple[FloatArray, IntArray]:
    """Sorted unique times and each row's grid index (``np.unique(..., return_inverse=True)``).

    Integer-valued times with a small range (weekly registers) use an O(n) bincount path
    instead of sorting.
    """
    n = time.size
    if n:
        lo = float(time.min())
        hi = float(time.max())
        if hi - lo <= 4 * n + 1024:
            shifted = time - lo
            as_int = shifted.astype(np.int64)
            if np.array_equal(as_int, shifted):
                present = np.bincount(as_int, minlength=int(hi - lo) + 1) > 0
                remap = np.cumsum(present) - 1
                grid = np.flatnonzero(present).astype(np.float64) + lo
                return grid, remap[as_int].astype(np.int64)
    grid, inv = np.unique(time, return_inverse=True)
    return grid.astype(np.float64), inv.astype(np.int64).ravel()


def risk_table_grouped(
    code: IntArray,
    event: IntArray,
    weight: FloatArray,
    group: IntArray,
    n_groups: int,
    n_times: int,
    n_causes: int,
    start: IntArray | None = None,
    need_w2: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray | None, npt.NDArray[np.bool_]]:
    """Risk tables of all groups on one pooled grid with a single weighted bincount.

    Returns ``n_event`` (G, T, K + 1), ``n_risk`` (G, T), ``n_risk_w2`` (G, T) or None and
    ``present`` (G, T): whether any row of the group exits at grid time ``t``.
    """
    G, T, C = n_groups, n_times, n_causes + 1
    gt = group * T + code
    n_event = np.asarray(
        np.bincount(gt * C + event, weights=weight, minlength=G * T * C), dtype=np.float64
    ).reshape(G, T, C)
    present = (np.bincount(gt, minlength=G * T) > 0).reshape(G, T)
    y = np.cumsum(n_event.sum(axis=2)[:, ::-1], axis=1)[:, ::-1]
    y2: FloatArray | None = None
    if need_w2:
        out_w2 = np.bincount(gt, weights=weight * weight, minlength=G * T).reshape(G, T)
        y2 = np.asarray(np.cumsum(out_w2[:, ::-1], axis=1)[:, ::-1], dtype=np.float64)
    if start is not None:
        late = start > 0
        if np.any(late):
            gs = group[late] * (T + 1) + start[late]
            wl = weight[late]
            in_w = np.bincount(gs, weights=wl, minlength=G * (T + 1)).reshape(G, T + 1)
            y = y - np.cumsum(in_w[:, ::-1], axis=1)[:, ::-1][:, 1:]
            if y2 is not None:
                in_w2 = np.bincount(gs, weights=wl * wl, minlength=G * (T + 1)).reshape(G, T + 1)
                y2 = y2 - np.cumsum(in_w2[:, ::-1], axis=1)[:, ::-1][:, 1:]
    scale = max(1.0, float(np.abs(weight).sum()))
    y = np.where(np.abs(y) < 1e-12 * scale, 0.0, y)
    return n_event, np.asarray(y, dtype=np.float64), y2, present


def _safe_div(a: FloatArray, b: FloatArray) -> FloatArray:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _hazard_terms(d_all: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return ``lam = d / Y`` and ``c = 1 / (Y - d)`` (0 where not defined) on the grid."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = _safe_div(d_all, y)
        c = np.where(y - d_all > 0, 1.0 / (y - d_all), 0.0)
    return lam, c


def km_curve(y: FloatArray, d: FloatArray) -> dict[str, FloatArray]:
    """Product-limit survival, Greenwood sum and Nelson-Aalen on the grid.

    Returns ``surv`` S(t_j), ``gw`` = cumsum d/(Y (Y - d)) (``inf`` once Y == d),
    ``cumhaz`` = cumsum d/Y and ``var_chaz`` = cumsum d/Y^2.
    """
    haz = _safe_div(d, y)
    surv = np.cumprod(1.0 - haz)
    with np.errstate(divide="ignore", invalid="ignore"):
        inc = np.where(d > 0, d / (y * (y - d)), 0.0)
    gw = np.cumsum(inc)
    cumhaz = np.cumsum(haz)
    var_chaz = np.cumsum(_safe_div(d, y * y))
    return {"surv": surv, "gw": gw, "cumhaz": cumhaz, "var_chaz": var_chaz}


def xie_liu_sum(y: FloatArray, y2: FloatArray, d: FloatArray) -> FloatArray:
    """Cumulative Xie-Liu sum  sum_k d_k / (M_k (Y_k - d_k)),  M_k = Y_k^2 / sum_{risk} w^2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = y * y / y2
        inc = np.where(d > 0, d / (m * (y - d)), 0.0)
    return np.cumsum(inc)


def aj_curves(surv: FloatArray, y: FloatArray, d_cause: FloatArray) -> FloatArray:
    """Aalen-Johansen CIFs ``F_c(t_j) = sum_{l<=j} S(t_{l-1}) d_c(l) / Y(l)`` -> (T, K)."""
    s_prev = np.concatenate(([1.0], surv[:-1]))
    return np.cumsum(s_prev[:, None] * _safe_div(d_cause, y[:, None]), axis=0)


def cmprsk_variance(
    surv: FloatArray, y: FloatArray, d_cause: FloatArray, cif: FloatArray
) -> FloatArray:
    """Variance of the CIFs exactly as ``cmprsk::cuminc`` (Fortran ``cinc``), vectorised.

    Per grid time with events: ``fk = S(t-)``, ``fkn = S(t)``, ``rs = Y(t)``; the increments of
    Gray's (1988) delta-method accumulators ``v1, v2, v3`` from the competing events (``nd2``)
    and from the cause of interest (``nd1``, with the tie factor ``1 - (nd - 1)/(rs - 1)``) are
    summed and ``v = v1 + F^2 v3 - 2 F v2`` is *recorded only at times with a cause-of-interest
    event*; in between the last recorded value is carried forward (as ``timepoints`` does).
    """
    T, K = d_cause.shape
    d_all = d_cause.sum(axis=1)
    fk = np.concatenate(([1.0], surv[:-1]))
    fkn = surv
    out = np.zeros((T, K))
    for c in range(K):  # loop over causes only
        nd1 = d_cause[:, c]
        nd2 = d_all - nd1
        f = cif[:, c]
        with np.errstate(divide="ignore", invalid="ignore"):
            t5_2 = np.where(nd2 > 1, 1.0 - (nd2 - 1.0) / (y - 1.0), 1.0)
            t6_2 = fk * fk * t5_2 * nd2 / (y * y)
            ok2 = (nd2 > 0) & (fkn > 0)
            t3_2 = np.where(ok2, 1.0 / fkn, 0.0)
            t4_2 = np.where(ok2, f / fkn, 0.0)
            t6_2 = np.where(ok2, t6_2, 0.0)
            t5_1 = np.where(nd1 > 1, 1.0 - (nd1 - 1.0) / (y - 1.0), 1.0)
            t6_1 = np.where(nd1 > 0, fk * fk * t5_1 * nd1 / (y * y), 0.0)
            t3_1 = np.where((nd1 > 0) & (fkn > 0), 1.0 / fkn, 0.0)
        t4_1 = 1.0 + t3_1 * f
        v1 = np.cumsum(t4_2 * t4_2 * t6_2 + t4_1 * t4_1 * t6_1)
        v2 = np.cumsum(t3_2 * t4_2 * t6_2 + t3_1 * t4_1 * t6_1)
        v3 = np.cumsum(t3_2 * t3_2 * t6_2 + t3_1 * t3_1 * t6_1)
        v = v1 + f * f * v3 - 2.0 * f * v2
        rec = nd1 > 0
        # carry forward the last recorded value
        idx = np.where(rec, np.arange(T), -1)
        idx = np.maximum.accumulate(idx)
        out[:, c] = np.where(idx >= 0, v[np.maximum(idx, 0)], 0.0)
    return out


def aj_influence(
    k: int,
    stop: IntArray,
    start: IntArray,
    event: IntArray,
    weight: FloatArray,
    y: FloatArray,
    d_all: FloatArray,
    surv: FloatArray,
    cif_c: FloatArray | None,
    d_c: FloatArray | None,
    cause: int,
) -> FloatArray:
    """Per-row influence ``w_i * dF_c(t_k)/dw_i`` of a weighted AJ CIF (or of KM).

    With ``cif_c is None`` the influence of the KM survival ``S(t_k)`` is returned.  The
    derivative is exact for the discrete estimator (infinitesimal jackknife, as
    ``survfit(..., robust=TRUE)``)::

        dF(k)/dw_i = sum_{l<=k} (dN_ci(l) - R_i(l) lam_c(l)) S(l-1)/Y(l)
                     - sum_{l<=k} (F(k) - F(l)) (dN_i(l) - R_i(l) lam(l)) / (Y(l) - d(l))

    and ``dS(k)/dw_i = -S(k) sum_{l<=k} (dN_i(l) - R_i(l) lam(l)) / (Y(l) - d(l))``.
    """
    return aj_influence_matrix(
        np.asarray([k], dtype=np.int64), stop, start, event, weight, y, d_all, surv, cif_c,
        d_c, cause,
    )[:, 0]


def aj_influence_matrix(
    ks: IntArray,
    stop: IntArray,
    start: IntArray,
    event: IntArray,
    weight: FloatArray,
    y: FloatArray,
    d_all: FloatArray,
    surv: FloatArray,
    cif_c: FloatArray | None,
    d_c: FloatArray | None,
    cause: int,
) -> FloatArray:
    """:func:`aj_influence` for several grid indices at once -> (n, len(ks)).

    Memory is ``n * len(ks)``: use it on compressed cells, not on register-sized rows.
    """
    lam, c = _hazard_terms(d_all, y)
    kk = ks[None, :]
    last = np.minimum(stop[:, None], kk)
    active = start[:, None] <= kk
    died = (event > 0)[:, None] & (stop[:, None] <= kk)
    p2 = np.cumsum(lam * c)

    def rng(p: FloatArray) -> FloatArray:
        lo = np.where(start > 0, p[np.maximum(start - 1, 0)], 0.0)[:, None]
        return np.where(active, p[last] - lo, 0.0)

    c_stop = c[stop][:, None]
    if cif_c is None:
        b = np.where(died, c_stop, 0.0) - rng(p2)
        return -weight[:, None] * surv[ks][None, :] * b
    assert d_c is not None
    s_prev = np.concatenate(([1.0], surv[:-1]))
    lam_c = _safe_div(d_c, y)
    p1 = np.cumsum(lam_c * _safe_div(s_prev, y))
    p3 = np.cumsum(cif_c * lam * c)
    died_c = (event == cause)[:, None] & (stop[:, None] <= kk)
    term1 = np.where(died_c, _safe_div(s_prev[stop], y[stop])[:, None], 0.0) - rng(p1)
    fk = cif_c[ks][None, :]
    term2 = fk * (np.where(died, c_stop, 0.0) - rng(p2)) - (
        np.where(died, (cif_c[stop] * c[stop])[:, None], 0.0) - rng(p3)
    )
    return weight[:, None] * (term1 - term2)


def km_rmst_influence(
    stop: IntArray,
    start: IntArray,
    event: IntArray,
    weight: FloatArray,
    y: FloatArray,
    d_all: FloatArray,
    surv: FloatArray,
    time: FloatArray,
    tau: float,
) -> FloatArray:
    """Per-row influence ``w_i dRMST(tau)/dw_i`` of the weighted KM in one O(n) pass.

    With ``a_k = (t_{k+1} - t_k) S(t_k)`` (last width up to ``tau``), suffix sums
    ``A(j) = sum_{k>=j} a_k``, ``P2 = cumsum d/(Y (Y - d))`` and ``Q = cumsum a P2``::

        phi_i = w_i [ -delta_i c(s_i) A(s_i) + Q(min(s_i, K)) - Q(r_i - 1)
                      + P2(s_i) A(s_i + 1) - P2(r_i - 1) A(r_i) ]

    for rows entering at ``r_i <= K`` (0 otherwise); ``K`` = last grid index ``<= tau``.
    """
    T = y.size
    keep = np.flatnonzero(time <= tau)
    a = np.zeros(T + 2)
    if keep.size:
        K_ = int(keep[-1])
        widths = np.diff(np.concatenate((time[: K_ + 1], [tau])))
        a[: K_ + 1] = widths * surv[: K_ + 1]
    else:
        K_ = -1
    lam, c = _hazard_terms(d_all, y)
    p2 = np.cumsum(lam * c)
    suffix = np.concatenate((np.cumsum(a[::-1])[::-1], [0.0]))  # A(j), A(T + 1) = 0
    q = np.cumsum(a[:T] * p2)
    rm1 = start - 1
    m = np.minimum(stop, K_)
    died = event > 0
    p2_rm1 = np.where(rm1 >= 0, p2[np.maximum(rm1, 0)], 0.0)
    q_rm1 = np.where(rm1 >= 0, q[np.maximum(rm1, 0)], 0.0)
    val = (
        -np.where(died, c[stop] * suffix[stop], 0.0)
        + np.where(m >= 0, q[np.maximum(m, 0)], 0.0)
        - q_rm1
        + p2[stop] * suffix[stop + 1]
        - p2_rm1 * suffix[start]
    )
    return np.where(start <= K_, weight * val, 0.0)


def clustered_step_products(
    start: IntArray,
    stop: IntArray,
    cluster: IntArray,
    at_risk: FloatArray,
    after: FloatArray,
    n_times: int,
) -> FloatArray:
    """``sum_g G_g(k) G_g(k)'`` for all ``k`` of per-cluster step functions -> (T, B, B).

    Row ``i`` contributes the vector ``at_risk[i]`` (B,) for ``start_i <= k < stop_i`` and
    ``after[i]`` for ``k >= stop_i``; ``G_g(k)`` sums the rows of cluster ``g``. Jumps are
    sorted by (cluster, time) once, cumulated within clusters, and each constant piece adds
    its outer product over ``[k, k_next)`` through difference arrays: O(n log n + T B^2).
    """
    T = n_times
    n, B = at_risk.shape
    k_ev = np.concatenate((start, stop))
    cl_ev = np.concatenate((cluster, cluster))
    jump = np.concatenate((at_risk, after - at_risk), axis=0)
    order = np.lexsort((k_ev, cl_ev))
    k_ev, cl_ev, jump = k_ev[order], cl_ev[order], jump[order]
    new = np.ones(2 * n, dtype=bool)
    new[1:] = cl_ev[1:] != cl_ev[:-1]
    seg_start = np.flatnonzero(new)
    seg_id = np.cumsum(new) - 1
    g = np.cumsum(jump, axis=0)
    base = np.vstack((np.zeros((1, B)), g))[seg_start][seg_id]
    g = g - base
    k_next = np.empty(2 * n, dtype=np.int64)
    k_next[:-1] = k_ev[1:]
    last = np.ones(2 * n, dtype=bool)
    last[:-1] = new[1:]
    k_next[last] = T
    out = np.zeros((T, B, B))
    for b1 in range(B):
        for b2 in range(b1, B):
            v = g[:, b1] * g[:, b2]
            diff = np.bincount(k_ev, weights=v, minlength=T + 1) - np.bincount(
                k_next, weights=v, minlength=T + 1
            )
            out[:, b1, b2] = out[:, b2, b1] = np.cumsum(diff)[:T]
    return out


def km_ij_variance_clustered(
    stop: IntArray,
    start: IntArray,
    event: IntArray,
    weight: FloatArray,
    cluster: IntArray,
    y: FloatArray,
    d_all: FloatArray,
    surv: FloatArray,
) -> FloatArray:
    """Clustered IJ variance of the weighted KM at every grid time, O(n log n) in total.

    Row ``i`` has influence ``w_i S(k) h_i(k)`` with ``h_i(k) = P2(k) - P2(r_i - 1)`` while
    at risk (``r_i <= k < s_i``) and ``P2(s_i) - P2(r_i - 1) - delta_i c(s_i)`` from its exit
    on, i.e. ``h = P2(k) G1 + G2`` with row step functions ``G1 = (1, 0)`` and
    ``G2 = (-P2(r - 1), P2(s) - P2(r - 1) - delta c(s))`` (at risk, after exit); see
    :func:`clustered_step_products`.
    """
    lam, c = _hazard_terms(d_all, y)
    p2 = np.cumsum(lam * c)
    p2_rm1 = np.where(start > 0, p2[np.maximum(start - 1, 0)], 0.0)
    dc = np.where(event > 0, c[stop], 0.0)
    at_risk = np.column_stack((weight, -weight * p2_rm1))
    after = np.column_stack((np.zeros_like(weight), weight * (p2[stop] - p2_rm1 - dc)))
    a = clustered_step_products(start, stop, cluster, at_risk, after, y.size)
    phi = np.column_stack((p2, np.ones_like(p2)))
    var = surv * surv * np.einsum("tb,tbc,tc->t", phi, a, phi)
    return np.maximum(var, 0.0)


def aj_ij_variance_clustered(
    stop: IntArray,
    start: IntArray,
    event: IntArray,
    weight: FloatArray,
    cluster: IntArray,
    y: FloatArray,
    d_all: FloatArray,
    surv: FloatArray,
    cif_c: FloatArray,
    d_c: FloatArray,
    cause: int,
) -> FloatArray:
    """Clustered IJ variance of a weighted Aalen–Johansen CIF at every grid time.

    The influence of :func:`aj_influence` is ``w_i (phi_A(k) G_A + F(k) G_F + G_1)`` with
    ``phi_A = -P1 + F P2 - P3`` and row step functions (at risk / after exit)
    ``G_A = (1, 0)``, ``G_F = (-P2(r-1), P2(s) - P2(r-1) - delta c(s))`` and
    ``G_1 = (P1(r-1) + P3(r-1), delta_c S(s-1)/Y(s) - P1(s) + P1(r-1)
    + delta F(s) c(s) - P3(s) + P3(r-1))``; see :func:`clustered_step_products`.
    """
    lam, c = _hazard_terms(d_all, y)
    s_prev = np.concatenate(([1.0], surv[:-1]))
    p1 = np.cumsum(_safe_div(d_c, y) * _safe_div(s_prev, y))
    p2 = np.cumsum(lam * c)
    p3 = np.cumsum(cif_c * lam * c)

    def at(p: FloatArray, idx: IntArray) -> FloatArray:
        return np.where(idx >= 0, p[np.maximum(idx, 0)], 0.0)

    rm1 = start - 1
    died = event > 0
    died_c = event == cause
    dcs = np.where(died, c[stop], 0.0)
    zero = np.zeros_like(weight)
    at_risk = np.column_stack((weight, -weight * at(p2, rm1), weight * (at(p1, rm1) + at(p3, rm1))))
    g1_after = (
        np.where(died_c, _safe_div(s_prev[stop], y[stop]), 0.0)
        - p1[stop]
        + at(p1, rm1)
        + np.where(died, cif_c[stop] * c[stop], 0.0)
        - p3[stop]
        + at(p3, rm1)
    )
    after = np.column_stack((zero, weight * (p2[stop] - at(p2, rm1) - dcs), weight * g1_after))
    a = clustered_step_products(start, stop, cluster, at_risk, after, y.size)
    phi = np.column_stack((-p1 + cif_c * p2 - p3, cif_c, np.ones_like(p2)))
    var = np.einsum("tb,tbc,tc->t", phi, a, phi)
    return np.maximum(var, 0.0)


def cluster_sum_squares(infl: FloatArray, cluster: IntArray | None, n_clusters: int) -> float:
    """``sum_g (sum_{i in g} infl_i)^2`` (each row its own cluster when ``cluster`` is None)."""
    if cluster is None:
        return float(np.dot(infl, infl))
    s = np.bincount(cluster, weights=infl, minlength=n_clusters)
    return float(np.dot(s, s))


def step_index(grid: FloatArray, times: FloatArray) -> IntArray:
    """Index of the last grid time ``<= times`` (-1 before the first grid time)."""
    return np.searchsorted(grid, times, side="right").astype(np.int64) - 1


def logrank_test(
    y_g: FloatArray, d_g: FloatArray, y2_g: FloatArray | None = None
) -> tuple[float, FloatArray, FloatArray]:
    """Weighted K-sample log-rank test from per-group risk/event tables (T, G).

    Uses the hypergeometric variance of ``survival::survdiff`` (rho = 0) applied to the
    weighted counts.  Returns ``(chisq, observed, expected)``.
    """
    y = y_g.sum(axis=1)
    d = d_g.sum(axis=1)
    e = _safe_div(y_g * d[:, None], y[:, None])
    obs = d_g.sum(axis=0)
    exp_ = e.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(y > 1, d * (y - d) / (y * y * (y - 1.0)), 0.0)
    G = y_g.shape[1]
    # V = sum_t f_t (diag(Y_g) Y - Y_g Y_g^T)
    v = np.diag((f[:, None] * y_g * y[:, None]).sum(axis=0)) - (y_g * f[:, None]).T @ y_g
    z = (obs - exp_)[: G - 1]
    vv = v[: G - 1, : G - 1]
    stat = float(z @ np.linalg.solve(vv, z)) if G > 1 else 0.0
    return stat, obs, exp_


def gray_test(
    stop: IntArray,
    event: IntArray,
    group: IntArray,
    n_groups: int,
    n_times: int,
    cause: int,
    rho: float = 0.0,
    weight: FloatArray | None = None,
) -> tuple[float, FloatArray, FloatArray]:
    """Gray's (1988) K-sample test for one cause, as ``cmprsk::crstm`` (no strata, unweighted).

    Vectorised over pooled grid times (arrays ``(T, G)`` and ``(T, G, G)``); returns
    ``(stat, score, var)`` with ``stat = s' V^{-1} s`` on ``G - 1`` degrees of freedom.
    Integer ``weight`` (frequency weights) give the result of duplicated rows.
    """
    T, G = n_times, n_groups
    m = np.where(event == 0, 0, np.where(event == cause, 1, 2))
    cnt: FloatArray = (
        np.bincount((stop * G + group) * 3 + m, weights=weight, minlength=T * G * 3)
        .reshape(T, G, 3)
        .astype(np.float64)
    )
    tot = cnt.sum(axis=2)
    rs = np.cumsum(tot[::-1], axis=0)[::-1]  # (T, G) at risk
    d1 = cnt[:, :, 1]
    d2 = cnt[:, :, 2]
    td = d1 + d2
    pos = rs > 0
    haz = np.where(pos, _safe_div(td, rs), 0.0)
    skm = np.cumprod(1.0 - haz, axis=0)
    skmm = np.vstack([np.ones((1, G)), skm[:-1]])
    inc1 = np.where(pos, skmm * _safe_div(d1, rs), 0.0)
    f1 = np.cumsum(inc1, axis=0)
    f1m = np.vstack([np.zeros((1, G)), f1[:-1]])
    nd1 = d1.sum(axis=1)
    nd2 = d2.sum(axis=1)
    has = (nd1 + nd2) > 0
    t1 = np.where(pos, _safe_div(rs, skmm), 0.0)  # rs / skmm (0 where not at risk)
    tr = t1.sum(axis=1)
    tq = np.where(pos, t1 * (1.0 - f1m), 0.0).sum(axis=1)
    f_inc = np.where(has, _safe_div(nd1, tr), 0.0)
    f = np.cumsum(f_inc)
    fm = np.concatenate(([0.0], f[:-1]))
    fb = (1.0 - fm) ** rho
    fb = np.where(has, fb, 0.0)
    # a(i, j) per time
    a = (
        -fb[:, None, None]
        * t1[:, :, None]
        * t1[:, None, :]
        / np.where(tr > 0, tr, 1.0)[:, None, None]
    )
    diag = fb[:, None] * t1 * (1.0 - _safe_div(t1, tr[:, None]))
    idx = np.arange(G)
    a[:, idx, idx] = diag
    with np.errstate(divide="ignore", invalid="ignore"):
        cw = np.where(has & (tr > 0), nd1 / (tr * (1.0 - fm)), 0.0)
    c = np.cumsum(a * cw[:, None, None], axis=0)
    # scores
    sc = np.where(
        pos, fb[:, None] * (d1 - nd1[:, None] * _safe_div(t1 * (1.0 - f1m), tq[:, None])), 0.0
    )
    s = sc.sum(axis=0)[: G - 1]
    # variance pieces from cause-1 failures
    ok1 = (nd1 > 0)[:, None] & pos
    with np.errstate(divide="ignore", invalid="ignore"):
        t4 = np.where(skm > 0, 1.0 - (1.0 - f)[:, None] / skm, 1.0)
        t5 = np.where(
            (nd1 > 1)[:, None], 1.0 - (nd1 - 1.0)[:, None] / (tr[:, None] * skmm - 1.0), 1.0
        )
        t3 = np.where(ok1, t5 * skmm * nd1[:, None] / (tr[:, None] * rs), 0.0)
    # B(i,k) = a(i,k) - t4_k c(i,k)
    b1 = a - t4[:, None, :] * c
    v3 = (t4 * t4 * t3).sum(axis=0)
    v2 = (b1 * (t4 * t3)[:, None, :]).sum(axis=0)
    v = np.einsum("tik,tjk,tk->ij", b1, b1, t3)
    # competing-cause failures
    ok2 = (skm > 0) & (d2 > 0) & (nd2 > 0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t4b = np.where(ok2, (1.0 - f)[:, None] / skm, 0.0)
        t5b = np.where(d2 > 1, 1.0 - (d2 - 1.0) / (rs - 1.0), 1.0)
        t3b = np.where(ok2, t5b * skmm * skmm * d2 / (rs * rs), 0.0)
    b2 = t4b[:, None, :] * c
    v3 = v3 + (t4b * t4b * t3b).sum(axis=0)
    v2 = v2 - (b2 * (t4b * t3b)[:, None, :]).sum(axis=0)
    v = v + np.einsum("tik,tjk,tk->ij", b2, b2, t3b)
    cf = c[-1]
    v = v + (cf * v3[None, :]) @ cf.T + cf @ v2.T + v2 @ cf.T
    vs = v[: G - 1, : G - 1]
    try:
        stat = float(s @ np.linalg.solve(vs, s))
    except np.linalg.LinAlgError:
        stat = float("nan")
    return stat, s, vs
