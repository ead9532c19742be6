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
    """Spell data aggregated to exposure per constant-hazard cell.

    ``NE[0, i, q]`` counts the weeks of spell i in exit-baseline interval q without an active
    effect (before/without a start), ``NE[1 + j, i, q]`` those in effect bin j; ``AE`` the
    weeks before sample entry (left truncation). ``NM`` / ``AM`` are the mentor-hazard
    exposures by start-baseline interval. The exit week and the start week are kept as
    event rows (``x_*`` and ``s_*``).
    """

    n: int
    n_causes: int
    X: FloatArray  # (n, p)
    Z: FloatArray  # (n, pz) effect-interaction covariates
    w: FloatArray  # (n,) frequency weights
    exit_cuts: IntArray
    start_cuts: IntArray
    bins: IntArray
    NE: FloatArray  # (J + 1, n, Qe)
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


def _exposure(row: IntArray, q: IntArray, length: FloatArray, n: int, Q: int) -> FloatArray:
    out = np.bincount(row * Q + q, length, minlength=n * Q).astype(np.float64)
    return out.reshape(n, Q)


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
    """Exposure arrays from per-spell (duration, cause 0..R, start or -1, entry)."""
    n = duration.size
    T = duration.astype(np.int64)
    t0 = entry.astype(np.int64)
    tm = start.astype(np.int64)
    treated = tm >= 0
    exited = cause > 0
    Qe, Qm, J = exit_cuts.size, start_cuts.size, bins.size
    # exit survival: weeks (t0, T] minus the exit week
    e_row, e_q, e_j, e_len = split_episodes(t0, T - exited, exit_cuts, tm, bins)
    NE = np.empty((J + 1, n, Qe))
    for j in range(-1, J):
        m = e_j == j
        NE[j + 1] = _exposure(e_row[m], e_q[m], e_len[m], n, Qe)
    # mentor survival: weeks (t0, min(T, tm - 1)] (untreated: (t0, T])
    m_hi = np.where(treated, np.minimum(T, tm - 1), T)
    m_row, m_q, _, m_len = split_episodes(t0, m_hi, start_cuts)
    NM = _exposure(m_row, m_q, m_len, n, Qm)
    n_ep = int(e_row.size + m_row.size)
    truncated = bool(condition_on_entry and np.any(t0 > 0))
    if truncated:
        zero = np.zeros(n, dtype=np.int64)
        pr, pq, _, pl = split_episodes(zero, t0, exit_cuts)
        AE = _exposure(pr, pq, pl, n, Qe)
        mr, mq, _, ml = split_episodes(zero, t0, start_cuts)
        AM = _exposure(mr, mq, ml, n, Qm)
        n_ep += int(pr.size + mr.size)
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
        return np.log(-np.expm1(-x))  # absolute error <= 1e-16 for large x


# ----------------------------------------------------------------------------------------
# log-likelihood and gradient
# ----------------------------------------------------------------------------------------


@dataclass
class Pieces:
    """Person-level sufficient pieces of the log-likelihood at given structural params."""

    S_e: FloatArray  # (n, R) exit exposure sum_t exp(eta) after entry
    A_e: FloatArray  # (n, R) before entry
    S_m: FloatArray  # (n,)
    A_m: FloatArray  # (n,)
    eta_x: FloatArray  # (n_exit_events, R)
    eta_s: FloatArray  # (n_starts,)
    exb_e: FloatArray  # (n, R) exp(x'beta_r)
    exb_m: FloatArray  # (n,)
    base: FloatArray  # (n, R) sum_q NE[0] exp(alpha)
    binx: FloatArray  # (J, n, R) sum_q NE[1+j] exp(alpha)
    ed: FloatArray  # (J, n or 1, R) exp(delta_j + z'gamma_j)
    xb_e: FloatArray  # (n, R)
    zg: FloatArray  # (J, n, R) or (J, 1, R) zeros without interactions


def _eta_events(P: dict[str, FloatArray], row: IntArray, q: IntArray, j: IntArray,
                xb_e: FloatArray, zg: FloatArray, pz: int) -> FloatArray:
    jj = np.maximum(j, 0)
    on = j >= 0
    eta = xb_e[row] + P["alpha_e"][:, q].T
    if P["delta"].shape[1]:
        eff = P["delta"][:, jj].T
        if pz:
            eff = eff + zg[jj, row, :]
        eta += np.where(on[:, None], eff, 0.0)
    return eta


def pieces(theta: FloatArray, L: Layout, D: ToeData) -> Pieces:
    """Structural (K-free) person-level pieces."""
    P = L.unpack(theta)
    n, R, J, Qe = D.n, L.R, L.J, L.Qe
    xb_e = D.X @ P["beta_e"].T if L.p else np.zeros((n, R))
    if L.pz:
        zg = np.einsum("np,rjp->jnr", D.Z, P["gamma"])
    else:
        zg = np.zeros((J, 1, R))
    exb_e = np.exp(xb_e)
    eaT = np.ascontiguousarray(np.exp(P["alpha_e"]).T)  # (Qe, R)
    allx = (D.NE.reshape((J + 1) * n, Qe) @ eaT).reshape(J + 1, n, R)
    base = allx[0]
    binx = allx[1:]
    ed = np.exp(P["delta"].T[:, None, :] + zg)  # (J, n|1, R)
    S_e = exb_e * (base + (ed * binx).sum(axis=0)) if J else exb_e * base
    A_e = exb_e * (D.AE @ eaT) if D.truncated else np.zeros((n, R))
    xb_m = D.X @ P["beta_m"] if L.p else np.zeros(n)
    exb_m = np.exp(xb_m)
    eam = np.exp(P["alpha_m"])
    S_m = exb_m * (D.NM @ eam)
    A_m = exb_m * (D.AM @ eam) if D.truncated else np.zeros(n)
    eta_x = _eta_events(P, D.x_row, D.x_q, D.x_j, xb_e, zg, L.pz)
    eta_s = xb_m[D.s_row] + P["alpha_m"][D.s_q]
    return Pieces(S_e, A_e, S_m, A_m, eta_x, eta_s, exb_e, exb_m, base, binx, ed, xb_e, zg)


def _lse(M: FloatArray) -> FloatArray:
    """Row-wise log-sum-exp of a finite (n, K) array."""
    m = M.max(axis=1)
    return m + np.log(np.exp(M - m[:, None]).sum(axis=1))


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
    theta_x = np.exp(pc.eta_x)[:, :, None] * V[:, :R].T[None, :, :]  # (nx, R, K)
    Theta_x = theta_x.sum(axis=1)
    ev = _log1mexp(Theta_x) - np.log(Theta_x)
    ev += pc.eta_x[np.arange(D.x_row.size), D.x_cause][:, None] + lv[:, D.x_cause].T
    ell[D.x_row] += ev
    theta_s = np.exp(pc.eta_s)[:, None] * V[None, :, R]
    ell[D.s_row] += _log1mexp(theta_s)
    M = ell + logpi[None, :]
    ll_i = _lse(M)
    w = np.exp(M - ll_i[:, None])
    if D.truncated:
        Dm = logpi[None, :] - pc.A_e @ V[:, :R].T - np.outer(pc.A_m, V[:, R])
        ld = _lse(Dm)
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
    n, R, K, J, pz, Qe = D.n, L.R, L.K, L.J, L.pz, L.Qe
    pw = np.ones(n) if per_person else D.w
    V = np.exp(P["lv"])
    w, u = mx.w, mx.u
    Om = (w @ V) * pw[:, None]  # (n, R+1): d ll / d S = -Om
    Op = Om - (u @ V) * pw[:, None] if D.truncated else Om  # d ll / d A = -Op
    # exit events: d ll / d eta at the exit week
    nx = D.x_row.size
    gx = _g(mx.Theta_x)  # (nx, K)
    d_x = np.einsum("ik,irk->ir", w[D.x_row] * gx, mx.theta_x)
    d_x[np.arange(nx), D.x_cause] += 1.0
    d_x *= pw[D.x_row][:, None]
    xs = _x_over_expm1(mx.theta_s)  # (ns, K)
    d_s = (w[D.s_row] * xs).sum(axis=1) * pw[D.s_row]
    ea = np.exp(P["alpha_e"])  # (R, Qe)
    on_x = D.x_j >= 0
    v = Om[:, :R] * pc.exb_e  # (n, R)
    vp = Op[:, :R] * pc.exb_e
    prow = -(Om[:, :R] * pc.S_e + Op[:, :R] * pc.A_e)  # d ll / d x'beta_r
    for r in range(R):
        prow[:, r] += np.bincount(D.x_row, d_x[:, r], minlength=n)
    G = -(v[None, :, :] * pc.ed * pc.binx)  # (J, n, R): d ll / d (delta_j + z'gamma_j)
    blocks: list[FloatArray] = []
    if not per_person:
        Vall = np.empty((J + 1, n, R))
        Vall[0] = v
        Vall[1:] = v[None, :, :] * pc.ed
        acc = D.NE.reshape((J + 1) * n, Qe).T @ Vall.reshape((J + 1) * n, R)  # (Qe, R)
        if D.truncated:
            acc += D.AE.T @ vp
        ga_all = -(acc.T * ea)  # (R, Qe)
        gb_all = (D.X.T @ prow).T  # (R, p)
        gd_all = G.sum(axis=1).T  # (R, J)
        for r in range(R):
            ga_all[r] += np.bincount(D.x_q, d_x[:, r], minlength=Qe)
            if J:
                gd_all[r] += np.bincount(D.x_j[on_x], d_x[on_x, r], minlength=J)
        if pz:
            Gf = G.copy()
            for r in range(R):
                np.add.at(Gf[:, :, r], (D.x_j[on_x], D.x_row[on_x]), d_x[on_x, r])
            gg_all = np.einsum("np,jnr->rjp", D.Z, Gf).reshape(R, J * pz)
        else:
            gg_all = np.zeros((R, 0))
        for r in range(R):
            blocks += [ga_all[r], gb_all[r], gd_all[r], gg_all[r]]
    else:
        rx = D.x_row
        for r in range(R):
            M = D.NE[0] * v[:, r][:, None]
            for j in range(J):
                M += D.NE[1 + j] * (v[:, r] * pc.ed[j, :, r])[:, None]
            if D.truncated:
                M += D.AE * vp[:, r][:, None]
            ga = -M * ea[r][None, :]
            ga[rx, D.x_q] += d_x[:, r]  # one exit row per spell
            gb = D.X * prow[:, r][:, None]
            gd = G[:, :, r].T.copy()  # (n, J)
            if J:
                gd[rx[on_x], D.x_j[on_x]] += d_x[on_x, r]
            gg = (gd[:, :, None] * D.Z[:, None, :]).reshape(n, J * pz)
            blocks += [ga, gb, gd, gg]
    eam = np.exp(P["alpha_m"])
    vm = Om[:, R] * pc.exb_m
    vmp = Op[:, R] * pc.exb_m
    prow_m = -(Om[:, R] * pc.S_m + Op[:, R] * pc.A_m)
    prow_m += np.bincount(D.s_row, d_s, minlength=n)
    if per_person:
        M = D.NM * vm[:, None]
        if D.truncated:
            M += D.AM * vmp[:, None]
        gam = -M * eam[None, :]
        gam[D.s_row, D.s_q] += d_s
        gbm = D.X * prow_m[:, None]
    else:
        accm = D.NM.T @ vm
        if D.truncated:
            accm += D.AM.T @ vmp
        gam = -accm * eam + np.bincount(D.s_q, d_s, minlength=L.Qm)
        gbm = D.X.T @ prow_m
    blocks += [gam, gbm]
    if K > 1:
        # heterogeneity: d ll / d lv[k, h] and d ll / d a_k
        if per_person:
            dl = np.empty((n, K, R + 1))
            dl[:, :, :R] = -(pc.S_e + pc.A_e)[:, None, :] * V[None, :, :R]
            dl[:, :, R] = -(pc.S_m + pc.A_m)[:, None] * V[None, :, R]
            evx = gx[:, None, :] * mx.theta_x  # (nx, R, K)
            evx[np.arange(nx), D.x_cause, :] += 1.0
            dl[D.x_row, :, :R] += evx.transpose(0, 2, 1)
            dl[D.s_row, :, R] += xs
            glv = w[:, :, None] * dl
            if D.truncated:
                dd = np.empty((n, K, R + 1))
                dd[:, :, :R] = -pc.A_e[:, None, :] * V[None, :, :R]
                dd[:, :, R] = -pc.A_m[:, None] * V[None, :, R]
                glv -= u[:, :, None] * dd
                ga_k = w - u
            else:
                ga_k = w - mx.pi[None, :]
            blocks += [glv[:, 1:, :].reshape(n, (K - 1) * (R + 1)), ga_k[:, 1:]]
        else:
            Wp = w * pw[:, None]  # (n, K)
            SA = np.column_stack([pc.S_e + pc.A_e, pc.S_m + pc.A_m])  # (n, R+1)
            glv = -(Wp.T @ SA) * V  # (K, R+1)
            evx = gx[:, None, :] * mx.theta_x  # (nx, R, K)
            glv[:, :R] += np.einsum("ik,irk->kr", Wp[D.x_row], evx)
            glv[:, :R] += np.stack(
                [np.bincount(D.x_cause, Wp[D.x_row, k], minlength=R) for k in range(K)]
            )
            glv[:, R] += (Wp[D.s_row] * xs).sum(axis=0)
            if D.truncated:
                Up = u * pw[:, None]
                Apre = np.column_stack([pc.A_e, pc.A_m])
                glv += (Up.T @ Apre) * V
                ga_k = (Wp - Up).sum(axis=0)
            else:
                ga_k = Wp.sum(axis=0) - mx.pi * pw.sum()
            blocks += [glv[1:].ravel(), ga_k[1:]]
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
                for _newton in range(2):
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
    # pre-start exposure: weeks (t0, min(tm, T_s)] without an active effect
    Spre = pc.exb_e[rows] * pc.base[rows]
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
                eta = eta + pc.zg[j, rows, :]
        th = np.exp(eta[:, :, None] + lv[:, :R].T[None, :, :])  # (m, R, K)
        Th = th.sum(axis=1)
        pexit = -np.expm1(-Th)
        cif += surv[:, None, :] * th / Th[:, None, :] * pexit[:, None, :]
        surv = surv * np.exp(-Th)
        S_out[:, tau] = (surv * post).sum(axis=1)
        C_out[:, :, tau] = np.einsum("mrk,mk->mr", cif, post)
    return S_out, C_out
