"""Timing-of-events kernels: episode splitting, grouped MPH log-likelihood, gradient, curves.

Private, unchecked, plain-ndarray functions used by :mod:`mentor_impact.duration.toe`.

Time convention (all integer weeks since entry into the benefit spell):

* week ``t`` runs over ``t0 + 1, ..., T`` where ``t0`` is the sample-entry week (0 for an
  inflow sample) and ``T`` the last week in the spell (the exit or censoring week);
* baseline interval ``q`` holds the weeks ``cuts[q] < t <= cuts[q + 1]`` (last one open);
* a mentor start in week ``tm`` shifts the exit hazards from week ``tm + 1`` on; time since
  start ``u = t - tm`` falls in effect bin ``j`` when ``bins[j] < u <= bins[j + 1]``.

Hazards for mass point ``k``: ``theta_h(t | k) = exp(eta_h(t) + lv[k, h])`` with the
grouped (complementary log-log) week probabilities ``1 - exp(-theta)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.special import logsumexp

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# ----------------------------------------------------------------------------------------
# episode splitting
# ----------------------------------------------------------------------------------------


def interval_index(cuts: IntArray, t: IntArray) -> IntArray:
    """Index q with cuts[q] < t <= cuts[q+1] (t >= 1, cuts[0] = 0)."""
    return np.searchsorted(cuts, t, side="left").astype(np.int64) - 1


def split_episodes(
    lo: IntArray,
    hi: IntArray,
    cuts: IntArray,
    tm: IntArray | None = None,
    bins: IntArray | None = None,
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Split the week ranges (lo, hi] into constant-hazard episodes.

    Breakpoints are the baseline cuts and, where ``tm >= 0``, ``tm + bins``. Returns
    (row, q, j, length) for the non-empty episodes; ``j = -1`` before/without a start.
    """
    n = lo.size
    lo = lo.astype(np.int64)
    hi = np.maximum(hi.astype(np.int64), lo)
    cols = [lo[:, None], hi[:, None], np.broadcast_to(cuts[None, :], (n, cuts.size))]
    if tm is not None and bins is not None:
        tmb = np.where(tm[:, None] >= 0, tm[:, None] + bins[None, :], lo[:, None])
        cols.append(tmb)
    pts = np.concatenate(cols, axis=1)
    np.clip(pts, lo[:, None], hi[:, None], out=pts)
    pts.sort(axis=1)
    length = np.diff(pts, axis=1)
    keep = length > 0
    row = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], length.shape)[keep]
    first = pts[:, :-1][keep] + 1
    q = interval_index(cuts, first)
    if tm is not None and bins is not None:
        u = first - tm[row]
        j = np.where((tm[row] >= 0) & (u >= 1), interval_index(bins, np.maximum(u, 1)), -1)
    else:
        j = np.full(row.size, -1, dtype=np.int64)
    return row, q, j.astype(np.int64), length[keep].astype(np.float64)


@dataclass(frozen=True)
class ToeData:
    """Spell data aggregated to exposure per constant-hazard cell.

    ``NE[i, 0, q]`` counts the weeks of spell i in exit-baseline interval q without an active
    effect (before/without a start), ``NE[i, 1 + j, q]`` those in effect bin j (layout
    ``(n, J + 1, Qe)``, so that ``NE.reshape(n, -1)`` is one contiguous cell matrix);
    ``AE`` the weeks before sample entry (left truncation). ``NM`` / ``AM`` are the
    mentor-hazard exposures by start-baseline interval. The exit week and the start week
    are kept as event rows (``x_*`` and ``s_*``; at most one of each per spell).
    """

    n: int
    n_causes: int
    X: FloatArray  # (n, p)
    Z: FloatArray  # (n, pz) effect-interaction covariates
    w: FloatArray  # (n,) frequency weights
    exit_cuts: IntArray
    start_cuts: IntArray
    bins: IntArray
    NE: FloatArray  # (n, J + 1, Qe)
    AE: FloatArray  # (n, Qe)
    NM: FloatArray  # (n, Qm)
    AM: FloatArray  # (n, Qm)
    # exit events (one per exiting spell)
    x_row: IntArray
    x_cause: IntArray  # 0..R-1
    x_q: IntArray
    x_j: IntArray
    # mentor starts
    s_row: IntArray
    s_q: IntArray
    truncated: bool = False
    n_episodes: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    # derived index arrays (set in __post_init__)
    x_cell: IntArray = field(init=False, repr=False)  # (j + 1) * Qe + q of the exit week
    x_pick: IntArray = field(init=False, repr=False)  # cause * nx + event: flat (R, nx) pick
    x_onehot: FloatArray = field(init=False, repr=False)  # (nx, R) cause indicators
    x_on: BoolArray = field(init=False, repr=False)  # exit week in an effect bin
    x_on_idx: IntArray = field(init=False, repr=False)  # positions of those exits
    # the cell matrix NE.reshape(n, -1) in compressed-column form, and its transpose: a
    # spell has only a few non-empty cells, so the products read far less memory
    NE_csc: sparse.csc_matrix = field(init=False, repr=False)
    NE_cscT: sparse.csc_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nx = self.x_row.size
        Qe = self.exit_cuts.size
        onehot = np.zeros((nx, self.n_causes))
        onehot[np.arange(nx), self.x_cause] = 1.0
        object.__setattr__(self, "x_cell", (self.x_j + 1) * Qe + self.x_q)
        object.__setattr__(self, "x_pick", self.x_cause * nx + np.arange(nx, dtype=np.int64))
        object.__setattr__(self, "x_onehot", onehot)
        object.__setattr__(self, "x_on", self.x_j >= 0)
        object.__setattr__(self, "x_on_idx", np.flatnonzero(self.x_j >= 0))
        NEw = self.NE.reshape(self.n, -1)
        object.__setattr__(self, "NE_csc", sparse.csc_matrix(NEw))
        object.__setattr__(self, "NE_cscT", sparse.csc_matrix(NEw.T))


def _exposure(row: IntArray, q: IntArray, length: FloatArray, n: int, Q: int) -> FloatArray:
    out = np.bincount(row * Q + q, length, minlength=n * Q).astype(np.float64)
    return out.reshape(n, Q)


def _range_exposure(row: IntArray, lo: IntArray, hi: IntArray, cuts: IntArray, n: int
                    ) -> FloatArray:
    """Weeks of the ranges ``(lo, hi]`` (empty when ``hi <= lo``) per spell and interval."""
    r, q, _, length = split_episodes(lo, hi, cuts)
    return _exposure(row[r], q, length, n, cuts.size)


def build_toe_data(
    duration: IntArray,
    cause: IntArray,
    start: IntArray,
    entry: IntArray,
    X: FloatArray,
    Z: FloatArray,
    w: FloatArray,
    exit_cuts: IntArray,
    start_cuts: IntArray,
    bins: IntArray,
    n_causes: int,
    *,
    condition_on_entry: bool,
    start_before_entry: bool = True,
    gaps: tuple[IntArray, IntArray, IntArray] | None = None,
) -> ToeData:
    """Exposure arrays from per-spell (duration, cause 0..R, start or -1, entry).

    With ``condition_on_entry`` the weeks ``1..t0`` before sample entry are kept for the
    left-truncation term: the exit hazards always, the start hazard only when
    ``start_before_entry`` (False: no start was possible before entry, e.g. a stock
    sampled when the programme began, so ``AM`` is zero).

    ``gaps = (row, lo, hi)``: week ranges ``(lo, hi]`` of spell ``row`` in which no start
    was possible (not eligible); they are removed from the start-hazard exposure (``NM``
    and ``AM``). The ranges must not overlap within a spell and must not hold the start
    week (checked by the caller).
    """
    n = duration.size
    T = duration.astype(np.int64)
    t0 = entry.astype(np.int64)
    tm = start.astype(np.int64)
    treated = tm >= 0
    exited = cause > 0
    Qe, Qm, J = exit_cuts.size, start_cuts.size, bins.size
    # exit survival: weeks (t0, T] minus the exit week
    e_row, e_q, e_j, e_len = split_episodes(t0, T - exited, exit_cuts, tm, bins)
    NE = _exposure(e_row, (e_j + 1) * Qe + e_q, e_len, n, (J + 1) * Qe).reshape(n, J + 1, Qe)
    # mentor survival: weeks (t0, min(T, tm - 1)] (untreated: (t0, T])
    m_hi = np.where(treated, np.minimum(T, tm - 1), T)
    m_row, m_q, _, m_len = split_episodes(t0, m_hi, start_cuts)
    NM = _exposure(m_row, m_q, m_len, n, Qm)
    if gaps is not None and gaps[0].size:
        g_row, g_lo, g_hi = (np.asarray(a, dtype=np.int64) for a in gaps)
        NM -= _range_exposure(g_row, np.maximum(g_lo, t0[g_row]),
                              np.minimum(g_hi, m_hi[g_row]), start_cuts, n)
    n_ep = int(e_row.size + m_row.size)
    truncated = bool(condition_on_entry and np.any(t0 > 0))
    if truncated:
        zero = np.zeros(n, dtype=np.int64)
        pr, pq, _, pl = split_episodes(zero, t0, exit_cuts)
        AE = _exposure(pr, pq, pl, n, Qe)
        if start_before_entry:
            mr, mq, _, ml = split_episodes(zero, t0, start_cuts)
            AM = _exposure(mr, mq, ml, n, Qm)
            if gaps is not None and gaps[0].size:
                AM -= _range_exposure(g_row, g_lo, np.minimum(g_hi, t0[g_row]), start_cuts, n)
            n_ep += int(mr.size)
        else:
            AM = np.zeros((n, Qm))
        n_ep += int(pr.size)
    else:
        AE = np.zeros((n, Qe))
        AM = np.zeros((n, Qm))
    x_row = np.flatnonzero(exited).astype(np.int64)
    xT = T[x_row]
    x_q = interval_index(exit_cuts, xT)
    xu = xT - tm[x_row]
    x_j = np.where(treated[x_row] & (xu >= 1), interval_index(bins, np.maximum(xu, 1)), -1)
    s_row = np.flatnonzero(treated).astype(np.int64)
    s_q = interval_index(start_cuts, tm[s_row])
    return ToeData(
        n=n,
        n_causes=n_causes,
        X=np.ascontiguousarray(X, dtype=np.float64),
        Z=np.ascontiguousarray(Z, dtype=np.float64),
        w=np.asarray(w, dtype=np.float64),
        exit_cuts=exit_cuts,
        start_cuts=start_cuts,
        bins=bins,
        NE=NE,
        AE=AE,
        NM=NM,
        AM=AM,
        x_row=x_row,
        x_cause=(cause[x_row] - 1).astype(np.int64),
        x_q=x_q,
        x_j=x_j.astype(np.int64),
        s_row=s_row,
        s_q=s_q,
        truncated=truncated,
        n_episodes=n_ep,
    )


# ----------------------------------------------------------------------------------------
# parameter layout
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Positions of the parameter blocks in the flat vector."""

    R: int
    Qe: int
    Qm: int
    J: int
    p: int
    pz: int
    K: int

    @property
    def n_exit_block(self) -> int:
        return self.Qe + self.p + self.J + self.J * self.pz

    @property
    def n_structural(self) -> int:
        return self.R * self.n_exit_block + self.Qm + self.p

    @property
    def size(self) -> int:
        return self.n_structural + (self.K - 1) * (self.R + 2)

    def with_k(self, K: int) -> Layout:
        return Layout(self.R, self.Qe, self.Qm, self.J, self.p, self.pz, K)

    def unpack(self, theta: FloatArray) -> dict[str, FloatArray]:
        R, Qe, Qm, J, p, pz, K = self.R, self.Qe, self.Qm, self.J, self.p, self.pz, self.K
        eb = self.n_exit_block
        E = theta[: R * eb].reshape(R, eb)
        o = R * eb
        lv = np.zeros((K, R + 1))
        a = np.zeros(K)
        ns = self.n_structural
        if K > 1:
            lv[1:] = theta[ns : ns + (K - 1) * (R + 1)].reshape(K - 1, R + 1)
            a[1:] = theta[ns + (K - 1) * (R + 1) :]
        return {
            "alpha_e": E[:, :Qe],
            "beta_e": E[:, Qe : Qe + p],
            "delta": E[:, Qe + p : Qe + p + J],
            "gamma": E[:, Qe + p + J :].reshape(R, J, pz),
            "alpha_m": theta[o : o + Qm],
            "beta_m": theta[o + Qm : o + Qm + p],
            "lv": lv,
            "a": a,
        }

    def pack(self, d: dict[str, FloatArray]) -> FloatArray:
        R, K = self.R, self.K
        parts = []
        for r in range(R):
            parts += [
                d["alpha_e"][r],
                d["beta_e"][r],
                d["delta"][r],
                np.asarray(d["gamma"][r]).ravel(),
            ]
        parts += [d["alpha_m"], d["beta_m"]]
        if K > 1:
            parts += [np.asarray(d["lv"])[1:].ravel(), np.asarray(d["a"])[1:]]
        return np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in parts])

    def names(self, covs: tuple[str, ...], zcovs: tuple[str, ...], causes: tuple[str, ...],
              exit_labels: tuple[str, ...], start_labels: tuple[str, ...],
              bin_labels: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(equation, block, term) for each parameter."""
        out: list[tuple[str, str, str]] = []
        for r in range(self.R):
            eq = f"exit:{causes[r]}"
            out += [(eq, "baseline", s) for s in exit_labels]
            out += [(eq, "covariate", c) for c in covs]
            out += [(eq, "effect", b) for b in bin_labels]
            out += [(eq, "effect_x", f"{b}:{z}") for b in bin_labels for z in zcovs]
        out += [("start", "baseline", s) for s in start_labels]
        out += [("start", "covariate", c) for c in covs]
        for k in range(1, self.K):
            out += [("heterogeneity", "log_v", f"{h}[{k + 1}]")
                    for h in (*(f"exit:{c}" for c in causes), "start")]
        out += [("heterogeneity", "logit_pi", f"pi[{k + 1}]") for k in range(1, self.K)]
        return out


# ----------------------------------------------------------------------------------------
# numerics
# ----------------------------------------------------------------------------------------


def _g(big: FloatArray) -> FloatArray:
    """1/expm1(x) - 1/x, stable for small x (x > 0)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = 1.0 / np.expm1(big)
        out -= 1.0 / big
    small = big < 1e-3
    if small.any():
        xs = big[small]
        out[small] = -0.5 + xs / 12.0 - xs**3 / 720.0
    return out


def _x_over_expm1(x: FloatArray) -> FloatArray:
    """x / expm1(x) with the limit 1 at 0 and 0 at +inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = x / np.expm1(x)
    out[x < 1e-12] = 1.0
    out[~np.isfinite(out)] = 0.0
    return out


def _log1mexp(x: FloatArray) -> FloatArray:
    """log(1 - exp(-x)) for x > 0."""
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(-x))  # absolute error <= 1e-16 for large x


def _log1mexp_over(x: FloatArray) -> FloatArray:
    """log((1 - exp(-x)) / x) for x > 0 (one logarithm instead of two)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.expm1(-x)
        out /= x
        return np.log(out, out=out)


# ----------------------------------------------------------------------------------------
# log-likelihood and gradient
# ----------------------------------------------------------------------------------------
#
# Arrays are hazard-major ``(H, n)`` with ``H = R + 1`` (exit causes, then the start) and
# mass-point-major ``(K, n)``: every per-person vector is contiguous, reductions over the
# few hazards / mass points are sums of whole vectors, the products with the covariates are
# single BLAS calls and those with the cell exposures sparse (compressed-column) products.
# The exit-week and start-week terms are added to the per-person rows by scatters.


def _add_rows(M: FloatArray, rows: IntArray, vals: FloatArray) -> None:
    """``M[:, rows] += vals`` for unique ``rows``, one contiguous row at a time.

    A scatter into a zero buffer and a dense add run several times faster than the
    two-dimensional fancy-index update (gather, add, scatter with index arithmetic).
    """
    buf = np.zeros(M.shape[1])
    for i in range(M.shape[0]):
        buf[rows] = vals[i]
        M[i] += buf


def _gram_rows(A: FloatArray, B: FloatArray) -> FloatArray:
    """``A @ B.T`` for a few long rows (dot products; avoids a slow transposed GEMM)."""
    return np.array([[a @ b for b in B] for a in A]).reshape(A.shape[0], B.shape[0])


@dataclass
class Pieces:
    """Person-level sufficient pieces of the log-likelihood at given structural params."""

    S: FloatArray  # (H, n) sum_t exp(eta_h) after entry (exit causes, then the start)
    A: FloatArray | None  # (H, n) before entry (None without left truncation)
    xb: FloatArray  # (H, n) x'beta_h
    exb: FloatArray  # (H, n) exp(x'beta_h)
    eta_x: FloatArray  # (R, nx) linear index of every cause in the exit week
    ex: FloatArray  # (R, nx) exp(eta_x)
    eta_c: FloatArray  # (nx,) eta_x of the observed cause
    eta_s: FloatArray  # (ns,) start-hazard index in the start week
    es: FloatArray  # (ns,) exp(eta_s)
    zg: FloatArray | None  # (J, R, n) z'gamma_j (None without interactions)
    ed: FloatArray | None  # (J, R, n) exp(delta_j + z'gamma_j) (interactions only)
    binx: FloatArray | None  # (J, R, n) sum_q NE[:, 1 + j, q] exp(alpha_q) (interactions)


def _exit_table(P: dict[str, FloatArray], J: int, Qe: int) -> FloatArray:
    """(R, (J + 1) * Qe) linear index alpha_q + delta_j of every exit cell (delta_-1 = 0)."""
    R = P["alpha_e"].shape[0]
    tab = np.empty((R, J + 1, Qe))
    tab[:, 0] = P["alpha_e"]
    tab[:, 1:] = P["alpha_e"][:, None, :] + P["delta"][:, :, None]
    return tab.reshape(R, (J + 1) * Qe)


def pieces(theta: FloatArray, L: Layout, D: ToeData) -> Pieces:
    """Structural (K-free) person-level pieces."""
    P = L.unpack(theta)
    n, R, J, Qe, pz = D.n, L.R, L.J, L.Qe, L.pz
    H = R + 1
    if L.p:
        Bm = np.empty((H, L.p))
        Bm[:R] = P["beta_e"]
        Bm[R] = P["beta_m"]
        xb = np.ascontiguousarray((D.X @ Bm.T).T)
    else:
        xb = np.zeros((H, n))
    exb = np.exp(xb)
    ea = np.exp(P["alpha_e"])  # (R, Qe)
    eam = np.exp(P["alpha_m"])
    S = np.empty((H, n))
    zg = ed = binx = None
    if pz:
        zg = np.einsum("rjp,np->jrn", P["gamma"], D.Z)
        ed = np.exp(zg + P["delta"].T[:, :, None])
        binx = np.empty((J, R, n))
        base = ea @ D.NE[:, 0, :].T
        for j in range(J):
            binx[j] = ea @ D.NE[:, 1 + j, :].T
        S[:R] = base + (ed * binx).sum(axis=0)
    else:
        cw = np.exp(_exit_table(P, J, Qe))
        for r in range(R):
            S[r] = D.NE_csc @ cw[r]
    S[R] = eam @ D.NM.T
    S *= exb
    A: FloatArray | None = None
    if D.truncated:
        A = np.empty((H, n))
        A[:R] = ea @ D.AE.T
        A[R] = eam @ D.AM.T
        A *= exb
    eta_x = np.take(xb[:R], D.x_row, axis=1)
    eta_x += np.take(_exit_table(P, J, Qe), D.x_cell, axis=1)
    if pz and zg is not None:
        on = D.x_on
        eta_x[:, on] += zg[D.x_j[on], :, D.x_row[on]].T
    ex = np.exp(eta_x)
    eta_c = np.take(eta_x.ravel(), D.x_pick)
    eta_s = xb[R, D.s_row] + P["alpha_m"][D.s_q]
    return Pieces(S, A, xb, exb, eta_x, ex, eta_c, eta_s, np.exp(eta_s), zg, ed, binx)


@dataclass
class Mix:
    """Per-person mixture quantities for given pieces and heterogeneity parameters."""

    ll_i: FloatArray  # (n,)
    w: FloatArray  # (K, n) posterior
    u: FloatArray | None  # (K, n) truncation posterior (None if not truncated)
    Theta_x: FloatArray  # (K, nx) total exit hazard in the exit week
    theta_s: FloatArray  # (K, ns) start hazard in the start week
    pi: FloatArray  # (K,)
    V: FloatArray  # (K, H) exp(lv)


def _lse_rows(M: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log-sum-exp over axis 0 of a finite (K, n) array and the normalised weights."""
    m = M.max(axis=0)
    e = np.exp(M - m)
    s = e.sum(axis=0)
    e /= s
    m += np.log(s)
    return m, e


def mixture(pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData) -> Mix:
    """Person log-likelihood contributions and posteriors over the K mass points."""
    R = D.n_causes
    K = lv.shape[0]
    V = np.exp(lv)  # (K, H)
    logpi = a - logsumexp(a)
    SA = pc.S if pc.A is None else pc.S + pc.A
    M = V @ SA
    np.negative(M, out=M)
    M += logpi[:, None]
    Theta_x = V[:, :R] @ pc.ex  # (K, nx)
    ev = _log1mexp_over(Theta_x)
    ev += pc.eta_c
    ev += np.take(lv, D.x_cause, axis=1)
    _add_rows(M, D.x_row, ev)
    theta_s = V[:, R : R + 1] * pc.es[None, :]
    _add_rows(M, D.s_row, _log1mexp(theta_s))
    if K == 1:
        ll_i = M[0]
        w = np.ones((1, D.n))
    else:
        ll_i, w = _lse_rows(M)
    u = None
    if pc.A is not None:
        Dm = V @ pc.A
        np.negative(Dm, out=Dm)
        Dm += logpi[:, None]
        ld, u = _lse_rows(Dm)
        ll_i = ll_i - ld
    return Mix(ll_i, w, u, Theta_x, theta_s, np.exp(logpi), V)


def loglik(theta: FloatArray, L: Layout, D: ToeData) -> float:
    """Weighted log-likelihood."""
    pc = pieces(theta, L, D)
    P = L.unpack(theta)
    mx = mixture(pc, P["lv"], P["a"], D)
    return float(D.w @ mx.ll_i)


def loglik_grad(
    theta: FloatArray, L: Layout, D: ToeData, *, per_person: bool = False
) -> tuple[float, FloatArray]:
    """Weighted log-likelihood and its gradient (or unweighted per-person scores (n, P))."""
    P = L.unpack(theta)
    pc = pieces(theta, L, D)
    mx = mixture(pc, P["lv"], P["a"], D)
    R, K, J, pz, Qe = L.R, L.K, L.J, L.pz, L.Qe
    V = mx.V
    # posterior weights times frequency weights
    Wp = mx.w if per_person else mx.w * D.w
    Up = None
    if mx.u is not None:
        Up = mx.u if per_person else mx.u * D.w
    Om = V.T @ Wp  # (H, n): d ll / d S = -Om
    Op = Om if Up is None else Om - V.T @ Up  # d ll / d A = -Op
    # exit events: d ll / d eta_r in the exit week
    gx = _g(mx.Theta_x)  # (K, nx)
    Wx = np.take(Wp, D.x_row, axis=1)
    wgx = Wx * gx
    d_x = V[:, :R].T @ wgx
    d_x *= pc.ex  # (R, nx)
    d_x.ravel()[D.x_pick] += 1.0 if per_person else D.w[D.x_row]
    # start events
    xs = _x_over_expm1(mx.theta_s)  # (K, ns)
    Ws = np.take(Wp, D.s_row, axis=1)
    Wxs = Ws * xs
    d_s = Wxs.sum(axis=0)
    # d ll / d x'beta_h
    prow = Om * pc.S
    if pc.A is not None:
        prow += Op * pc.A
    np.negative(prow, out=prow)
    _add_rows(prow[:R], D.x_row, d_x)
    _add_rows(prow[R:], D.s_row, d_s[None, :])
    v = Om[:R] * pc.exb[:R]  # (R, n): d ll / d (cell weight exp(alpha + delta))
    vp = Op[:R] * pc.exb[:R] if pc.A is not None else None
    vm = Om[R] * pc.exb[R]
    vmp = Op[R] * pc.exb[R] if pc.A is not None else None
    ea = np.exp(P["alpha_e"])  # (R, Qe)
    eam = np.exp(P["alpha_m"])
    xj_on = D.x_j.take(D.x_on_idx)
    if per_person:
        return _per_person_scores(P, L, D, pc, mx, float(D.w @ mx.ll_i), gx, d_x, xs, d_s,
                                  prow, v, vp, vm, vmp)
    blocks: list[FloatArray] = []
    gb = prow @ D.X if L.p else np.zeros((R + 1, 0))  # (H, p)
    if pz:
        assert pc.ed is not None and pc.binx is not None
        acc = v @ D.NE[:, 0, :]  # (R, Qe)
        gd = np.empty((R, J))
        gg = np.empty((R, J, pz))
        for j in range(J):
            vj = v * pc.ed[j]
            acc += vj @ D.NE[:, 1 + j, :]
            Gj = vj * pc.binx[j]
            np.negative(Gj, out=Gj)
            gd[:, j] = Gj.sum(axis=1)
            m = D.x_j == j
            Gj[:, D.x_row[m]] += d_x[:, m]
            gg[:, j, :] = Gj @ D.Z
        ga = -(acc * ea)
    else:
        ed = np.exp(P["delta"])  # (R, J)
        Y = np.ascontiguousarray((D.NE_cscT @ v.T).T).reshape(R, J + 1, Qe)
        acc = Y[:, 0] + np.einsum("rj,rjq->rq", ed, Y[:, 1:])
        ga = -(acc * ea)
        gd = -(ed * np.einsum("rq,rjq->rj", ea, Y[:, 1:]))
        gg = np.zeros((R, J, 0))
    if vp is not None:
        ga -= (vp @ D.AE) * ea
    for r in range(R):
        ga[r] += np.bincount(D.x_q, d_x[r], minlength=Qe)
        if J:
            gd[r] += np.bincount(xj_on, d_x[r].take(D.x_on_idx), minlength=J)
        blocks += [ga[r], gb[r], gd[r], gg[r].ravel()]
    accm = D.NM.T @ vm
    if vmp is not None:
        accm += D.AM.T @ vmp
    gam = -accm * eam + np.bincount(D.s_q, d_s, minlength=L.Qm)
    blocks += [gam, gb[R]]
    if K > 1:
        # heterogeneity: d ll / d lv[k, h] and d ll / d a_k
        SA = pc.S if pc.A is None else pc.S + pc.A
        glv = -_gram_rows(Wp, SA) * V  # (K, H)
        glv[:, :R] += V[:, :R] * _gram_rows(wgx, pc.ex) + Wx @ D.x_onehot
        glv[:, R] += Wxs.sum(axis=1)
        if Up is not None and pc.A is not None:
            glv += _gram_rows(Up, pc.A) * V
            ga_k = Wp.sum(axis=1) - Up.sum(axis=1)
        else:
            ga_k = Wp.sum(axis=1) - mx.pi * D.w.sum()
        blocks += [glv[1:].ravel(), ga_k[1:]]
    ll = float(D.w @ mx.ll_i)
    return ll, np.concatenate([np.ravel(b) for b in blocks])


def _per_person_scores(
    P: dict[str, FloatArray], L: Layout, D: ToeData, pc: Pieces, mx: Mix, ll: float,
    gx: FloatArray, d_x: FloatArray, xs: FloatArray, d_s: FloatArray, prow: FloatArray,
    v: FloatArray, vp: FloatArray | None, vm: FloatArray, vmp: FloatArray | None,
) -> tuple[float, FloatArray]:
    """Unweighted per-person scores ``(n, P)`` from the shared gradient pieces."""
    n, R, K, J, pz, Qe, Qm, p = D.n, L.R, L.K, L.J, L.pz, L.Qe, L.Qm, L.p
    out = np.empty((n, L.size))
    ea = np.exp(P["alpha_e"])
    eam = np.exp(P["alpha_m"])
    rx = D.x_row
    on = D.x_on
    # sum_q NE[:, j, q] exp(alpha_rq) for all j, per cause: (n, J + 1)
    NE2 = D.NE.reshape(n * (J + 1), Qe)
    c = 0
    for r in range(R):
        if pz:
            assert pc.ed is not None
            C = D.NE[:, 0, :].copy()
            for j in range(J):
                C += pc.ed[j, r][:, None] * D.NE[:, 1 + j, :]
            edr = pc.ed[:, r, :].T  # (n, J)
        else:
            edf = np.concatenate([[1.0], np.exp(P["delta"][r])])
            C = np.einsum("njq,j->nq", D.NE, edf)
            edr = np.exp(P["delta"][r])[None, :]
        ga = out[:, c : c + Qe]
        np.multiply(C, (-v[r])[:, None], out=ga)
        if vp is not None:
            ga -= D.AE * vp[r][:, None]
        ga *= ea[r]
        ga[rx, D.x_q] += d_x[r]  # one exit row per spell
        c += Qe
        out[:, c : c + p] = D.X * prow[r][:, None]
        c += p
        gd = out[:, c : c + J]
        if J:
            binx = (NE2 @ ea[r]).reshape(n, J + 1)[:, 1:]
            np.multiply(binx * edr, (-v[r])[:, None], out=gd)
            gd[rx[on], D.x_j[on]] += d_x[r, on]
        c += J
        if pz:
            out[:, c : c + J * pz] = (gd[:, :, None] * D.Z[:, None, :]).reshape(n, J * pz)
        c += J * pz
    gam = out[:, c : c + Qm]
    np.multiply(D.NM, (-vm)[:, None], out=gam)
    if vmp is not None:
        gam -= D.AM * vmp[:, None]
    gam *= eam
    gam[D.s_row, D.s_q] += d_s
    c += Qm
    out[:, c : c + p] = D.X * prow[R][:, None]
    c += p
    if K > 1:
        V = mx.V
        w, u = mx.w, mx.u
        SA = pc.S if pc.A is None else pc.S + pc.A
        for k in range(1, K):
            for h in range(R + 1):
                col = out[:, c]
                np.multiply(w[k], SA[h], out=col)
                col *= -V[k, h]
                if u is not None and pc.A is not None:
                    col += u[k] * pc.A[h] * V[k, h]
                if h < R:
                    ev = gx[k] * V[k, h] * pc.ex[h]
                    ev += D.x_cause == h
                    col[rx] += w[k, rx] * ev
                else:
                    col[D.s_row] += w[k, D.s_row] * xs[k]
                c += 1
        for k in range(1, K):
            out[:, c] = w[k] - (u[k] if u is not None else mx.pi[k])
            c += 1
    return ll, out


# ----------------------------------------------------------------------------------------
# heterogeneity-only likelihood (for grid search and EM start values)
# ----------------------------------------------------------------------------------------


def mixture_loglik(pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData) -> float:
    """Weighted log-likelihood for given structural pieces and mass points."""
    return float(D.w @ mixture(pc, lv, a, D).ll_i)


def em_heterogeneity(
    pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData, n_iter: int = 12, tol: float = 1e-8
) -> tuple[FloatArray, FloatArray, float]:
    """EM on the mass-point locations and probabilities with the structural part fixed.

    E-step: posteriors w_ik; M-step: pi_k = weighted mean of w_ik (closed form) and, per
    mass point k > 1 and hazard h, Newton steps on the expected complete-data
    log-likelihood in lv[k, h] (one-dimensional for the start hazard and each exit cause,
    holding the other causes at their current value).
    """
    R = D.n_causes
    lv = lv.copy()
    a = a.copy()
    K = lv.shape[0]
    wsum = D.w.sum()
    SA = pc.S if pc.A is None else pc.S + pc.A
    last = -np.inf
    ll = last
    for _ in range(n_iter):
        mx = mixture(pc, lv, a, D)
        ll = float(D.w @ mx.ll_i)
        if ll - last < tol * max(1.0, abs(ll)):
            break
        last = ll
        ww = mx.w * D.w
        pi = np.maximum(ww.sum(axis=1) / wsum, 1e-12)
        a = np.log(pi) - np.log(pi[0])
        for k in range(1, K):
            wk = ww[k]
            for h in range(R + 1):
                for _newton in range(2):
                    v = np.exp(lv[k, h])
                    g1 = -v * (wk @ SA[h])
                    h1 = g1
                    if h < R:
                        th = pc.ex * np.exp(lv[k, :R])[:, None]  # (R, nx)
                        Th = th.sum(axis=0)
                        wx = wk[D.x_row]
                        gg = _g(Th)
                        dth = th[h]
                        g1 += wx @ (gg * dth + (D.x_cause == h))
                        # second derivative of log(1-e^-T) - log T in lv_h
                        eT = np.exp(-Th)
                        d2 = -eT / (-np.expm1(-Th)) ** 2 + 1.0 / Th**2
                        h1 += wx @ (d2 * dth**2 + gg * dth)
                    else:
                        th = pc.es * v
                        xs = _x_over_expm1(th)
                        ws = wk[D.s_row]
                        g1 += ws @ xs
                        # d/dlv of th/expm1(th) = xs * (1 - th*e^th/expm1(th))
                        with np.errstate(over="ignore", invalid="ignore"):
                            dd = xs * (1.0 - th * np.exp(th) / np.expm1(th))
                        dd[~np.isfinite(dd)] = 0.0
                        h1 += ws @ dd
                    if h1 >= 0 or not np.isfinite(h1):
                        step = np.sign(g1) * 0.5
                    else:
                        step = float(np.clip(-g1 / h1, -2.0, 2.0))
                    lv[k, h] = float(np.clip(lv[k, h] + step, -15.0, 15.0))
    return lv, a, ll


# ----------------------------------------------------------------------------------------
# probability curves for the treated
# ----------------------------------------------------------------------------------------


def treated_curves(
    theta: FloatArray,
    L: Layout,
    D: ToeData,
    start: IntArray,
    rows: IntArray,
    horizon: int,
    *,
    with_effect: bool,
) -> tuple[FloatArray, FloatArray]:
    """Model-implied survival and cumulative incidence after the mentor start.

    For each treated row, weeks ``tm + tau`` for ``tau = 0..horizon``; integrated over the
    posterior of the mass point given the history up to and including the start week
    (no exit in ``(t0, tm - 1]``, start in week ``tm``; divided by survival to entry when
    the sample is left-truncated). Returns per-row survival ``(m, H + 1)`` and cumulative
    incidence ``(m, R, H + 1)``.
    """
    P = L.unpack(theta)
    R, K = L.R, L.K
    lv, a = P["lv"], P["a"]
    V = np.exp(lv)
    logpi = a - logsumexp(a)
    pc = pieces(theta, L, D)
    tm = start[rows].astype(np.int64)
    m = rows.size
    xbr = pc.xb[:R, rows].T  # (m, R)
    # pre-start exposure: weeks (t0, min(tm, T_s)] without an active effect
    Spre = pc.exb[:R, rows].T * (D.NE[rows, 0, :] @ np.exp(P["alpha_e"]).T)
    qtm = interval_index(D.exit_cuts, tm)
    eta_tm = xbr + P["alpha_e"][:, qtm].T  # (m, R)
    # week tm is in the survival table exactly when the row did not exit in week tm
    exit_at = np.zeros(D.n, dtype=bool)
    exit_at[D.x_row[D.x_j < 0]] = True  # exits without active effect: week T <= tm
    in_tab = ~exit_at[rows]
    Spre -= np.where(in_tab[:, None], np.exp(eta_tm), 0.0)
    Spre = np.maximum(Spre, 0.0)
    S_m = pc.S[R, rows]
    if pc.A is not None:
        Spre += pc.A[:R, rows].T
        S_m = S_m + pc.A[R, rows]
    ell = logpi[None, :] - Spre @ V[:, :R].T
    # mentor: survival in (t0, tm - 1] and start at tm, plus pre-entry exposure
    ell -= np.outer(S_m, V[:, R])
    spos = np.full(D.n, -1, dtype=np.int64)
    spos[D.s_row] = np.arange(D.s_row.size)
    eta_s = pc.eta_s[spos[rows]]
    ell += _log1mexp(np.exp(eta_s[:, None] + lv[None, :, R]))
    post = np.exp(ell - logsumexp(ell, axis=1)[:, None])  # (m, K)
    # forward recursion over tau
    surv = np.ones((m, K))
    cif = np.zeros((m, R, K))
    S_out = np.empty((m, horizon + 1))
    C_out = np.empty((m, R, horizon + 1))
    for tau in range(horizon + 1):
        t = tm + tau
        q = interval_index(D.exit_cuts, t)
        eta = xbr + P["alpha_e"][:, q].T
        if with_effect and tau >= 1 and L.J:
            j = int(interval_index(D.bins, np.array([tau]))[0])
            eta = eta + P["delta"][:, j][None, :]
            if pc.zg is not None:
                eta = eta + pc.zg[j][:, rows].T
        th = np.exp(eta[:, :, None] + lv[:, :R].T[None, :, :])  # (m, R, K)
        Th = th.sum(axis=1)
        pexit = -np.expm1(-Th)
        cif += surv[:, None, :] * th / Th[:, None, :] * pexit[:, None, :]
        surv = surv * np.exp(-Th)
        S_out[:, tau] = (surv * post).sum(axis=1)
        C_out[:, :, tau] = np.einsum("mrk,mk->mr", cif, post)
    return S_out, C_out
