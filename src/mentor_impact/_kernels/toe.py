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
    """Spell data as episode arrays (one entry per constant-hazard piece)."""

    n: int
    n_causes: int
    X: FloatArray  # (n, p)
    Z: FloatArray  # (n, pz) effect-interaction covariates
    w: FloatArray  # (n,) frequency weights
    exit_cuts: IntArray
    start_cuts: IntArray
    bins: IntArray
    # exit-hazard survival episodes
    e_row: IntArray
    e_q: IntArray
    e_j: IntArray
    e_len: FloatArray
    e_pre: BoolArray
    # exit events (one per exiting spell)
    x_row: IntArray
    x_cause: IntArray  # 0..R-1
    x_q: IntArray
    x_j: IntArray
    # mentor-hazard survival episodes
    m_row: IntArray
    m_q: IntArray
    m_len: FloatArray
    m_pre: BoolArray
    # mentor starts
    s_row: IntArray
    s_q: IntArray
    truncated: bool = False
    extra: dict[str, object] = field(default_factory=dict)


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
) -> ToeData:
    """Episode arrays from per-spell (duration, cause 0..R, start or -1, entry)."""
    n = duration.size
    T = duration.astype(np.int64)
    t0 = entry.astype(np.int64)
    tm = start.astype(np.int64)
    treated = tm >= 0
    exited = cause > 0
    # exit survival: weeks (t0, T] minus the exit week
    e_row, e_q, e_j, e_len = split_episodes(t0, T - exited, exit_cuts, tm, bins)
    e_pre = np.zeros(e_row.size, dtype=bool)
    # mentor survival: weeks (t0, min(T, tm - 1)] (untreated: (t0, T])
    m_hi = np.where(treated, np.minimum(T, tm - 1), T)
    m_row, m_q, _, m_len = split_episodes(t0, m_hi, start_cuts)
    m_pre = np.zeros(m_row.size, dtype=bool)
    if condition_on_entry and np.any(t0 > 0):
        zero = np.zeros(n, dtype=np.int64)
        pr, pq, pj, pl = split_episodes(zero, t0, exit_cuts)
        e_row = np.concatenate([e_row, pr])
        e_q = np.concatenate([e_q, pq])
        e_j = np.concatenate([e_j, pj])
        e_len = np.concatenate([e_len, pl])
        e_pre = np.concatenate([e_pre, np.ones(pr.size, dtype=bool)])
        mr, mq, _, ml = split_episodes(zero, t0, start_cuts)
        m_row = np.concatenate([m_row, mr])
        m_q = np.concatenate([m_q, mq])
        m_len = np.concatenate([m_len, ml])
        m_pre = np.concatenate([m_pre, np.ones(mr.size, dtype=bool)])
        truncated = True
    else:
        truncated = False
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
        e_row=e_row,
        e_q=e_q,
        e_j=e_j.astype(np.int64),
        e_len=e_len,
        e_pre=e_pre,
        x_row=x_row,
        x_cause=(cause[x_row] - 1).astype(np.int64),
        x_q=x_q,
        x_j=x_j.astype(np.int64),
        m_row=m_row,
        m_q=m_q,
        m_len=m_len,
        m_pre=m_pre,
        s_row=s_row,
        s_q=s_q,
        truncated=truncated,
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
    out = np.empty_like(big)
    small = big < 1e-3
    xs = big[small]
    out[small] = -0.5 + xs / 12.0 - xs**3 / 720.0
    xl = big[~small]
    with np.errstate(over="ignore"):
        out[~small] = 1.0 / np.expm1(xl) - 1.0 / xl
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
        return np.where(x > 0.6931, np.log1p(-np.exp(-x)), np.log(-np.expm1(-x)))


# ----------------------------------------------------------------------------------------
# log-likelihood and gradient
# ----------------------------------------------------------------------------------------


@dataclass
class Pieces:
    """Person-level sufficient pieces of the log-likelihood at given structural params."""

    S_e: FloatArray  # (n, R) exit exposure sum_e len * exp(eta) after entry
    A_e: FloatArray  # (n, R) before entry
    S_m: FloatArray  # (n,)
    A_m: FloatArray  # (n,)
    eta_x: FloatArray  # (n_exit_events, R)
    eta_s: FloatArray  # (n_starts,)
    c_e: FloatArray  # (E, R) len * exp(eta) per exit episode
    c_m: FloatArray  # (Em,)
    xb_e: FloatArray  # (n, R)
    zg: FloatArray  # (n, R, J)


def _exit_eta_cells(P: dict[str, FloatArray], row: IntArray, q: IntArray, j: IntArray,
                    xb_e: FloatArray, zg: FloatArray) -> FloatArray:
    R = xb_e.shape[1]
    jj = np.maximum(j, 0)
    on = (j >= 0)
    eta = xb_e[row] + P["alpha_e"][:, q].T
    if P["delta"].shape[1]:
        eta += np.where(on[:, None], P["delta"][:, jj].T, 0.0)
        if zg.shape[2] and zg.size:
            eta += np.where(on[:, None], zg[row, :, jj].reshape(row.size, R), 0.0)
    return eta


def pieces(theta: FloatArray, L: Layout, D: ToeData) -> Pieces:
    """Structural (K-free) person-level pieces."""
    P = L.unpack(theta)
    n, R = D.n, L.R
    xb_e = D.X @ P["beta_e"].T if L.p else np.zeros((n, R))
    if L.pz:
        zg = np.einsum("np,rjp->nrj", D.Z, P["gamma"])
    else:
        zg = np.zeros((n, R, 0))
    eta = _exit_eta_cells(P, D.e_row, D.e_q, D.e_j, xb_e, zg)
    c_e = D.e_len[:, None] * np.exp(eta)
    S_e = np.empty((n, R))
    A_e = np.zeros((n, R))
    main = ~D.e_pre
    for r in range(R):
        if D.truncated:
            S_e[:, r] = np.bincount(D.e_row[main], c_e[main, r], minlength=n)
            A_e[:, r] = np.bincount(D.e_row[~main], c_e[~main, r], minlength=n)
        else:
            S_e[:, r] = np.bincount(D.e_row, c_e[:, r], minlength=n)
    xb_m = D.X @ P["beta_m"] if L.p else np.zeros(n)
    c_m = D.m_len * np.exp(xb_m[D.m_row] + P["alpha_m"][D.m_q])
    if D.truncated:
        mm = ~D.m_pre
        S_m = np.bincount(D.m_row[mm], c_m[mm], minlength=n)
        A_m = np.bincount(D.m_row[~mm], c_m[~mm], minlength=n)
    else:
        S_m = np.bincount(D.m_row, c_m, minlength=n)
        A_m = np.zeros(n)
    eta_x = _exit_eta_cells(P, D.x_row, D.x_q, D.x_j, xb_e, zg)
    eta_s = xb_m[D.s_row] + P["alpha_m"][D.s_q]
    return Pieces(S_e, A_e, S_m, A_m, eta_x, eta_s, c_e, c_m, xb_e, zg)


@dataclass
class Mix:
    """Per-person mixture quantities for given pieces and heterogeneity parameters."""

    ll_i: FloatArray  # (n,)
    w: FloatArray  # (n, K) posterior (numerator)
    u: FloatArray  # (n, K) truncation posterior (zeros if not truncated)
    theta_x: FloatArray  # (nx, R, K)
    Theta_x: FloatArray  # (nx, K)
    theta_s: FloatArray  # (ns, K)
    pi: FloatArray


def mixture(pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData) -> Mix:
    """Person log-likelihood contributions and posteriors over the K mass points."""
    R = D.n_causes
    V = np.exp(lv)  # (K, R+1)
    logpi = a - logsumexp(a)
    ell = -(pc.S_e + pc.A_e) @ V[:, :R].T - np.outer(pc.S_m + pc.A_m, V[:, R])
    theta_x = np.exp(pc.eta_x[:, :, None] + lv[:, :R].T[None, :, :])  # (nx, R, K)
    Theta_x = theta_x.sum(axis=1)
    ev = _log1mexp(Theta_x) - np.log(Theta_x)
    ev += pc.eta_x[np.arange(D.x_row.size), D.x_cause][:, None] + lv[:, D.x_cause].T
    ell[D.x_row] += ev
    theta_s = np.exp(pc.eta_s[:, None] + lv[None, :, R])
    ell[D.s_row] += _log1mexp(theta_s)
    M = ell + logpi[None, :]
    ll_i = logsumexp(M, axis=1)
    w = np.exp(M - ll_i[:, None])
    if D.truncated:
        Dm = logpi[None, :] - pc.A_e @ V[:, :R].T - np.outer(pc.A_m, V[:, R])
        ld = logsumexp(Dm, axis=1)
        ll_i = ll_i - ld
        u = np.exp(Dm - ld[:, None])
    else:
        u = np.zeros_like(w)
    return Mix(ll_i, w, u, theta_x, Theta_x, theta_s, np.exp(logpi))


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
    n, R, K, J, pz = D.n, L.R, L.K, L.J, L.pz
    pw = np.ones(n) if per_person else D.w
    V = np.exp(P["lv"])
    w, u = mx.w, mx.u
    Om = (w @ V) * pw[:, None]  # (n, R+1)
    Ou = (u @ V) * pw[:, None] if D.truncated else np.zeros_like(Om)
    # d ll / d eta for exit episodes
    mult_e = Om[D.e_row, :R]
    if D.truncated:
        mult_e = mult_e - np.where(D.e_pre[:, None], Ou[D.e_row, :R], 0.0)
    d_e = -mult_e * pc.c_e  # (E, R)
    # exit events
    nx = D.x_row.size
    gx = _g(mx.Theta_x)  # (nx, K)
    wx = w[D.x_row]
    d_x = np.einsum("ik,irk->ir", wx * gx, mx.theta_x)
    d_x[np.arange(nx), D.x_cause] += 1.0
    d_x *= pw[D.x_row][:, None]
    # mentor
    mult_m = Om[D.m_row, R]
    if D.truncated:
        mult_m = mult_m - np.where(D.m_pre, Ou[D.m_row, R], 0.0)
    d_m = -mult_m * pc.c_m
    xs = _x_over_expm1(mx.theta_s)  # (ns, K)
    d_s = (w[D.s_row] * xs).sum(axis=1) * pw[D.s_row]

    def red(rows: IntArray, cells: IntArray, vals: FloatArray, ncell: int) -> FloatArray:
        if per_person:
            return np.bincount(rows * ncell + cells, vals, minlength=n * ncell).reshape(n, ncell)
        return np.bincount(cells, vals, minlength=ncell)

    def per_row(rows: IntArray, vals: FloatArray) -> FloatArray:
        return np.bincount(rows, vals, minlength=n)

    blocks: list[FloatArray] = []
    on_e = D.e_j >= 0
    on_x = D.x_j >= 0
    for r in range(R):
        ga = red(D.e_row, D.e_q, d_e[:, r], L.Qe) + red(D.x_row, D.x_q, d_x[:, r], L.Qe)
        prow = per_row(D.e_row, d_e[:, r]) + per_row(D.x_row, d_x[:, r])
        gb = D.X * prow[:, None] if per_person else D.X.T @ prow
        gd = red(D.e_row[on_e], D.e_j[on_e], d_e[on_e, r], J) + red(
            D.x_row[on_x], D.x_j[on_x], d_x[on_x, r], J
        )
        if pz:
            G = np.bincount(D.e_row[on_e] * J + D.e_j[on_e], d_e[on_e, r], minlength=n * J)
            G += np.bincount(D.x_row[on_x] * J + D.x_j[on_x], d_x[on_x, r], minlength=n * J)
            G = G.reshape(n, J)
            if per_person:
                gg = (G[:, :, None] * D.Z[:, None, :]).reshape(n, J * pz)
            else:
                gg = (D.Z.T @ G).T.ravel()
        else:
            gg = np.zeros((n, 0)) if per_person else np.zeros(0)
        blocks += [ga, gb, gd, gg]
    gam = red(D.m_row, D.m_q, d_m, L.Qm) + red(D.s_row, D.s_q, d_s, L.Qm)
    prow = per_row(D.m_row, d_m) + per_row(D.s_row, d_s)
    gbm = D.X * prow[:, None] if per_person else D.X.T @ prow
    blocks += [gam, gbm]
    if K > 1:
        # heterogeneity: d ll_i / d lv[k, h]
        dl = np.zeros((n, K, R + 1))
        dl[:, :, :R] = -(pc.S_e + pc.A_e)[:, None, :] * V[None, :, :R]
        dl[:, :, R] = -(pc.S_m + pc.A_m)[:, None] * V[None, :, R]
        evx = gx[:, None, :] * mx.theta_x  # (nx, R, K)
        evx[np.arange(nx), D.x_cause, :] += 1.0
        dl[D.x_row, :, :R] += evx.transpose(0, 2, 1)
        dl[D.s_row, :, R] += xs
        glv = w[:, :, None] * dl
        if D.truncated:
            dd = np.zeros((n, K, R + 1))
            dd[:, :, :R] = -pc.A_e[:, None, :] * V[None, :, :R]
            dd[:, :, R] = -pc.A_m[:, None] * V[None, :, R]
            glv -= u[:, :, None] * dd
            ga_k = w - u
        else:
            ga_k = w - mx.pi[None, :]
        glv = glv[:, 1:, :] * pw[:, None, None]
        ga_k = ga_k[:, 1:] * pw[:, None]
        if per_person:
            blocks += [glv.reshape(n, (K - 1) * (R + 1)), ga_k]
        else:
            blocks += [glv.sum(axis=0).ravel(), ga_k.sum(axis=0)]
    ll = float(D.w @ mx.ll_i)
    if per_person:
        return ll, np.concatenate([b.reshape(n, -1) for b in blocks], axis=1)
    return ll, np.concatenate([np.ravel(b) for b in blocks])


# ----------------------------------------------------------------------------------------
# heterogeneity-only likelihood (for grid search and EM start values)
# ----------------------------------------------------------------------------------------


def mixture_loglik(pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData) -> float:
    """Weighted log-likelihood for given structural pieces and mass points."""
    return float(D.w @ mixture(pc, lv, a, D).ll_i)


def em_heterogeneity(
    pc: Pieces, lv: FloatArray, a: FloatArray, D: ToeData, n_iter: int = 20, tol: float = 1e-8
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
    last = -np.inf
    ll = last
    for _ in range(n_iter):
        mx = mixture(pc, lv, a, D)
        ll = float(D.w @ mx.ll_i)
        if ll - last < tol * max(1.0, abs(ll)):
            break
        last = ll
        ww = mx.w * D.w[:, None]
        pi = np.maximum(ww.sum(axis=0) / wsum, 1e-12)
        a = np.log(pi) - np.log(pi[0])
        for k in range(1, K):
            wk = ww[:, k]
            for h in range(R + 1):
                for _newton in range(3):
                    v = np.exp(lv[k, h])
                    if h < R:
                        Sx = (pc.S_e[:, h] + pc.A_e[:, h])
                        g1 = -v * (wk @ Sx)
                        h1 = g1
                        th = np.exp(pc.eta_x + lv[k, :R][None, :])
                        Th = th.sum(axis=1)
                        wx = wk[D.x_row]
                        gg = _g(Th)
                        dth = th[:, h]
                        g1 += wx @ (gg * dth + (D.x_cause == h))
                        # second derivative of log(1-e^-T) - log T in lv_h
                        eT = np.exp(-Th)
                        d2 = -eT / (-np.expm1(-Th)) ** 2 + 1.0 / Th**2
                        h1 += wx @ (d2 * dth**2 + gg * dth)
                    else:
                        Sx = pc.S_m + pc.A_m
                        g1 = -v * (wk @ Sx)
                        h1 = g1
                        th = np.exp(pc.eta_s + lv[k, R])
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
    # pre-start exposure: exit survival up to tm - 1 (episodes with first week < tm)
    # reuse the fitted episode tables: exit episodes of treated rows are split at tm.
    pos = np.full(D.n, -1, dtype=np.int64)
    pos[rows] = np.arange(m)
    before = (D.e_j < 0) & ~D.e_pre & (pos[D.e_row] >= 0)
    Spre = np.zeros((m, R))
    for r in range(R):
        Spre[:, r] = np.bincount(pos[D.e_row[before]], pc.c_e[before, r], minlength=m)
    # exit events before the start cannot occur for a treated row (start <= T); an exit in
    # the start week itself is part of the outcome, so Spre excludes week tm if exposure
    # ran through it: episodes with j < 0 end at tm (bins split at tm), so they cover <= tm.
    # Remove the week tm contribution from Spre (it belongs to the outcome period).
    qtm = interval_index(D.exit_cuts, tm)
    eta_tm = pc.xb_e[rows] + P["alpha_e"][:, qtm].T  # (m, R)
    # week tm is in the survival table exactly when the row did not exit in week tm
    exit_at = np.zeros(D.n, dtype=bool)
    exit_at[D.x_row[D.x_j < 0]] = True  # exits without active effect: week T <= tm
    in_tab = ~exit_at[rows]
    Spre -= np.where(in_tab[:, None], np.exp(eta_tm), 0.0)
    Spre = np.maximum(Spre, 0.0)
    ell = logpi[None, :] - (Spre + pc.A_e[rows]) @ V[:, :R].T
    # mentor: survival in (t0, tm - 1] and start at tm, plus pre-entry exposure
    ell -= np.outer(pc.S_m[rows] + pc.A_m[rows], V[:, R])
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
        eta = pc.xb_e[rows] + P["alpha_e"][:, q].T
        if with_effect and tau >= 1 and L.J:
            j = int(interval_index(D.bins, np.array([tau]))[0])
            eta = eta + P["delta"][:, j][None, :]
            if L.pz:
                eta = eta + pc.zg[rows, :, j]
        th = np.exp(eta[:, :, None] + lv[:, :R].T[None, :, :])  # (m, R, K)
        Th = th.sum(axis=1)
        pexit = -np.expm1(-Th)
        cif += surv[:, None, :] * th / Th[:, None, :] * pexit[:, None, :]
        surv = surv * np.exp(-Th)
        S_out[:, tau] = (surv * post).sum(axis=1)
        C_out[:, :, tau] = np.einsum("mrk,mk->mr", cif, post)
    return S_out, C_out
