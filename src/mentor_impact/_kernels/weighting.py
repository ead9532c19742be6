"""Private kernels of the weighting estimators (IPW, estimand B, AIPW); no validation.

Conventions
-----------
- ``Z`` (n, q) is the propensity design *with* the intercept column, float64.
- ``d`` (n,) is the 0/1 treatment as float64, ``w`` (n,) the sampling / frequency weights.
- ``Y`` is always 2-D (n, K): a scalar outcome is a curve with ``K = 1``.
- Influence functions are *scaled*: ``theta_hat - theta ~= phi.sum(axis=0)``.
- ``ps_if`` (n, q) is the scaled influence function of the logit coefficients,
  ``gamma_hat - gamma ~= ps_if.sum(axis=0)``, i.e. ``w_i z_i (d_i - e_i) @ inv(Z'WVZ)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "LogitResult",
    "arm_weights",
    "expit",
    "group_matrix",
    "hajek_if",
    "horvitz_thompson_if",
    "logit_fit",
    "ols_fit",
]


def expit(eta: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


@dataclass
class LogitResult:
    coef: FloatArray
    ps: FloatArray
    hessian: FloatArray  # Z' diag(w e (1 - e)) Z
    n_iter: int
    converged: bool
    max_abs_eta: float


def _gram(Z: FloatArray, v: FloatArray, chunk: int = 262_144) -> FloatArray:
    n, q = Z.shape
    out = np.zeros((q, q))
    for lo in range(0, n, chunk):
        zc = Z[lo : lo + chunk]
        out += (zc * v[lo : lo + chunk, None]).T @ zc
    return out


def logit_fit(
    Z: FloatArray, d: FloatArray, w: FloatArray, *, tol: float = 1e-12, max_iter: int = 60
) -> LogitResult:
    """Weighted logit MLE by Newton-Raphson with step halving.

    Start: zero slopes, intercept at the weighted log-odds (column 0 must be the intercept).
    Stop: relative deviance change below ``tol`` (R's glm rule with a tighter epsilon).
    """
    n, q = Z.shape
    beta = np.zeros(q)
    pbar = float(np.clip(np.dot(w, d) / max(w.sum(), 1e-300), 1e-12, 1 - 1e-12))
    beta[0] = np.log(pbar / (1 - pbar))
    eta = Z @ beta

    def dev_of(e: FloatArray) -> float:
        return float(-2.0 * np.dot(w, d * e - np.logaddexp(0.0, e)))

    dev = dev_of(eta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        p = expit(eta)
        grad = Z.T @ (w * (d - p))
        H = _gram(Z, w * p * (1.0 - p))
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        t = 1.0
        while True:
            b_new = beta + t * step
            e_new = Z @ b_new
            dev_new = dev_of(e_new)
            if dev_new <= dev + 1e-10 * (abs(dev) + 0.1) or t < 1e-8:
                break
            t *= 0.5
        rel = abs(dev - dev_new) / (abs(dev_new) + 0.1)
        beta, eta, dev = b_new, e_new, dev_new
        if rel < tol:
            converged = True
            break
    p = expit(eta)
    H = _gram(Z, w * p * (1.0 - p))
    return LogitResult(beta, p, H, it, converged, float(np.max(np.abs(eta))) if n else 0.0)


def ols_fit(Z: FloatArray, Y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted least squares coefficients (q, K) via the normal equations (lstsq fallback)."""
    sw = w[:, None]
    A = _gram(Z, w)
    b = Z.T @ (Y * sw)
    try:
        return np.asarray(np.linalg.solve(A, b))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(A, b, rcond=None)[0])


def arm_weights(
    ps: FloatArray, d: FloatArray, estimand: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Balancing weights and their logit derivatives.

    Returns ``omega`` (the weight of each row within its arm), ``g`` with
    ``d omega / d gamma = g * z``, the target-population density ``t`` (whose weighted sum
    defines the estimand's population) and ``t_prime`` with ``d t / d gamma = t_prime * z``.
    """
    e = ps
    treated = d > 0.5
    if estimand == "ATT":
        omega = np.where(treated, 1.0, e / (1.0 - e))
        g = np.where(treated, 0.0, omega)
        t = d.copy()
        tp = np.zeros_like(e)
    elif estimand == "ATE":
        omega = np.where(treated, 1.0 / e, 1.0 / (1.0 - e))
        g = np.where(treated, -(1.0 - e) / e, e / (1.0 - e))
        t = np.ones_like(e)
        tp = np.zeros_like(e)
    elif estimand == "ATC":
        omega = np.where(treated, (1.0 - e) / e, 1.0)
        g = np.where(treated, -omega, 0.0)
        t = 1.0 - d
        tp = np.zeros_like(e)
    elif estimand == "ATO":
        omega = np.where(treated, 1.0 - e, e)
        g = np.where(treated, -e * (1.0 - e), e * (1.0 - e))
        t = e * (1.0 - e)
        tp = e * (1.0 - e) * (1.0 - 2.0 * e)
    else:  # pragma: no cover - validated by the caller
        raise ValueError(estimand)
    return omega, g, t, tp


def group_matrix(groups: IntArray, n_groups: int) -> sp.csr_matrix:
    """Sparse (G, n) indicator matrix: ``M @ A`` sums the rows of ``A`` within groups."""
    n = groups.size
    return sp.csr_matrix(
        (np.ones(n), (groups, np.arange(n))), shape=(n_groups, n), dtype=np.float64
    )


def _gsum(M: sp.csr_matrix | None, A: FloatArray) -> FloatArray:
    """Group sums of the rows of ``A`` (n, K) -> (G, K); a single group when ``M`` is None."""
    if M is None:
        return A.sum(axis=0, keepdims=True)
    return np.asarray(M @ A)


def hajek_if(
    Y: FloatArray,
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    omega0: FloatArray,
    g1: FloatArray,
    g0: FloatArray,
    t: FloatArray,
    tp: FloatArray,
    Z: FloatArray | None,
    ps_if: FloatArray | None,
    groups: IntArray | None = None,
    n_groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Hajek contrast normalised within groups (risk sets) and aggregated over groups.

    ``theta = sum_s pi_s (m1_s - m0_s)``, ``m_as = sum_{i in s, arm a} w omega_a Y /
    sum w omega_a`` and ``pi_s = sum_{i in s} w t / sum w t``.

    ``omega1``/``g1`` are (n,) or (n, K) weights of treated rows (zero or ignored elsewhere),
    ``omega0``/``g0`` of control rows; a (n, K) control weight gives a per-target weight
    (estimand B). The PS terms are added when ``ps_if`` is given.

    A risk set where one arm has no weight at target ``k`` (e.g. every control censored
    under estimand B) is left out at that target and ``pi`` renormalised over the others.

    Returns ``(theta, m1, m0, phi, n_dropped)`` with ``m1 = sum_s pi_s m1_s`` etc. and the
    number of risk sets left out per target.
    """
    n, K = Y.shape
    M = None if groups is None else group_matrix(groups, n_groups)
    gi = np.zeros(n, dtype=np.int64) if groups is None else groups

    def col(a: FloatArray) -> FloatArray:
        return a if a.ndim == 2 else a[:, None]

    a1 = col(d * w)[:, :1] * col(omega1)  # (n, 1|K)
    a0 = col((1.0 - d) * w)[:, :1] * col(omega0)
    a1 = np.broadcast_to(a1, (n, K)) if a1.shape[1] != K else a1
    a0 = np.broadcast_to(a0, (n, K)) if a0.shape[1] != K else a0
    S1 = _gsum(M, a1)  # (G, K)
    S0 = _gsum(M, a0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1s = _gsum(M, a1 * Y) / S1
        m0s = _gsum(M, a0 * Y) / S0
    tw = w * t
    T_s = _gsum(M, tw[:, None])  # (G, 1)
    # a risk set contributes at target k only when both arms have weight there
    valid = (S1 > 0) & (S0 > 0) & (T_s > 0)  # (G, K)
    Tv = np.where(valid, T_s, 0.0)
    T = Tv.sum(axis=0)  # (K,)
    pi = Tv / np.where(T > 0, T, 1.0)  # (G, K)
    m1s = np.where(valid, m1s, 0.0)
    m0s = np.where(valid, m0s, 0.0)
    delta_s = m1s - m0s
    theta = (pi * delta_s).sum(axis=0)
    m1 = (pi * m1s).sum(axis=0)
    m0 = (pi * m0s).sum(axis=0)
    n_dropped = (~valid & (T_s > 0)).sum(axis=0)
    # normalised per-row weights: nu = pi_s * a / S_as
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(valid, pi / S1, 0.0)  # (G, K)
        f0 = np.where(valid, pi / S0, 0.0)
    r1 = Y - m1s[gi]
    r0 = Y - m0s[gi]
    nu1r = a1 * f1[gi] * r1
    nu0r = a0 * f0[gi] * r0
    tv = tw[:, None] * valid[gi]  # target mass of rows in contributing risk sets
    phi = nu1r - nu0r + (tv * (delta_s[gi] - theta)) / T
    if ps_if is not None and Z is not None:
        # derivative of sum_s pi_s (m1_s - m0_s) with respect to gamma, (K, q)
        wd1 = col(d * w) * col(g1)
        wd0 = col((1.0 - d) * w) * col(g0)
        # d m_as/d gamma = sum_i w g (Y - m_as) z / S_as ; weighted by pi_s
        c1 = (wd1 * f1[gi] * r1) if wd1.shape[1] == K else (wd1 * (f1[gi] * r1))
        c0 = (wd0 * f0[gi] * r0) if wd0.shape[1] == K else (wd0 * (f0[gi] * r0))
        C = c1 - c0
        if np.any(tp != 0):
            C = C + ((w * tp)[:, None] * valid[gi] * (delta_s[gi] - theta)) / T
        Dg = Z.T @ C  # (q, K)
        phi = phi + ps_if @ Dg
    return theta, m1, m0, phi, n_dropped


def horvitz_thompson_if(
    Y: FloatArray,
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    omega0: FloatArray,
    g1: FloatArray,
    g0: FloatArray,
    t: FloatArray,
    tp: FloatArray,
    Z: FloatArray | None,
    ps_if: FloatArray | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Horvitz-Thompson contrast ``sum w (d omega1 - (1-d) omega0) Y / sum w t``.

    Normalising within risk sets by the target count of each risk set and aggregating with
    the target shares gives the same number, so no groups are needed.
    """
    # Y is (n, K)

    def col(a: FloatArray) -> FloatArray:
        return a if a.ndim == 2 else a[:, None]

    tw = w * t
    T = float(tw.sum())
    a1 = col(d * w) * col(omega1)
    a0 = col((1.0 - d) * w) * col(omega0)
    A1 = (a1 * Y).sum(axis=0) / T
    A0 = (a0 * Y).sum(axis=0) / T
    theta = A1 - A0
    phi = (a1 * Y - a0 * Y - tw[:, None] * theta[None, :]) / T
    if ps_if is not None and Z is not None:
        C = (col(d * w) * col(g1) * Y - col((1.0 - d) * w) * col(g0) * Y) / T
        if np.any(tp != 0):
            C = C - (w * tp)[:, None] * theta[None, :] / T
        phi = phi + ps_if @ (Z.T @ C)
    return theta, A1, A0, phi
