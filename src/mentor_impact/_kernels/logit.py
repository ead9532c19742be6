"""Weighted logistic regression by Newton-Raphson (private kernel; no validation).

All functions take plain contiguous float64 arrays:

- ``Z`` (n, q) design matrix (the caller adds the intercept column),
- ``y`` (n,) 0/1 response as float64,
- ``w`` (n,) non-negative frequency / sampling weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = ["LogitFit", "expit", "fit_logit_newton", "log1pexp", "logit_deviance"]

# R's glm.fit flags fitted probabilities within 10 * .Machine$double.eps of 0 or 1.
R_PROB_EPS = 10.0 * np.finfo(np.float64).eps


def expit(eta: FloatArray) -> FloatArray:
    """Numerically stable logistic function.

    ``1 / (1 + e^-eta)`` for ``eta >= 0`` and ``e^eta / (1 + e^eta)`` otherwise, evaluated
    without boolean gathers as ``(1 or e) / (1 + e)`` with ``e = exp(-|eta|)`` (same bits).
    """
    e = np.exp(-np.abs(eta))
    return np.asarray(np.where(eta >= 0, 1.0, e) / (1.0 + e))


def log1pexp(eta: FloatArray) -> FloatArray:
    """log(1 + exp(eta)) without overflow."""
    return np.logaddexp(0.0, eta)


def logit_deviance(eta: FloatArray, y: FloatArray, w: FloatArray) -> float:
    """Binomial deviance -2 * sum w (y eta - log(1 + e^eta))."""
    return float(-2.0 * np.dot(w, y * eta - log1pexp(eta)))


@dataclass
class LogitFit:
    beta: FloatArray
    eta: FloatArray
    p: FloatArray
    deviance: float
    n_iter: int
    converged: bool
    information: FloatArray  # Z' diag(w p (1-p)) Z at the solution
    rank_deficient: bool
    diverging: bool  # linear predictor kept growing (sign of separation)


def _weighted_gram(Z: FloatArray, v: FloatArray, chunk: int = 262_144) -> FloatArray:
    """Z' diag(v) Z computed in row chunks (keeps the temporary small).

    Uses ``A' A`` with ``A = Z * sqrt(v)`` so that numpy calls BLAS ``syrk``.
    """
    from mentor_impact._kernels.linalg import weighted_gram

    return weighted_gram(Z, v, chunk)


def _solve_psd(H: FloatArray, g: FloatArray) -> tuple[FloatArray, bool]:
    """Solve H x = g for symmetric PSD H; fall back to the pseudo-inverse when singular."""
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        L = None  # not positive definite: pseudo-inverse below
    if L is not None:
        x = np.linalg.solve(L.T, np.linalg.solve(L, g))
        d = np.diag(L)
        # guard against a numerically singular but "successful" Cholesky
        if np.all(np.isfinite(x)) and d.min() > 1e-10 * max(d.max(), 1e-300):
            return x, False
    return np.linalg.pinv(H, rcond=1e-12, hermitian=True) @ g, True


def fit_logit_newton(
    Z: FloatArray,
    y: FloatArray,
    w: FloatArray,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
    beta0: FloatArray | None = None,
    warm_start_rows: int = 200_000,
    information: bool = True,
) -> LogitFit:
    """Maximise the weighted Bernoulli log-likelihood by Newton-Raphson with step halving.

    Convergence: relative change of the deviance below ``tol`` (R's glm rule
    ``|dev - dev_old| / (|dev| + 0.1) < epsilon`` with a much tighter epsilon) and a
    Newton decrement below ``tol``. Starting values: ``beta0`` or zeros (above
    ``warm_start_rows`` rows: the fit on an evenly strided subsample).
    ``information=False`` skips the final information matrix (returned as zeros).
    """
    n, q = Z.shape
    if beta0 is None:
        beta = np.zeros(q)
        if n > warm_start_rows:
            # warm start from an evenly strided subsample (deterministic, no seed needed);
            # the full-data Newton iterations below then converge in 2-3 steps
            stride = n // (warm_start_rows // 2)
            sub = fit_logit_newton(
                Z[::stride], y[::stride], w[::stride], tol=1e-8, max_iter=max_iter,
                warm_start_rows=warm_start_rows, information=False,
            )
            if sub.converged and np.all(np.isfinite(sub.beta)) and not sub.diverging:
                beta = sub.beta
    else:
        beta = beta0.astype(np.float64).copy()
    eta = Z @ beta
    dev = logit_deviance(eta, y, w)
    converged = False
    rank_def = False
    it = 0
    max_eta_hist: list[float] = []
    for it in range(1, max_iter + 1):  # noqa: B007
        p = expit(eta)
        grad = Z.T @ (w * (y - p))
        v = w * p * (1.0 - p)
        H = _weighted_gram(Z, v)
        step, rd = _solve_psd(H, grad)
        rank_def = rank_def or rd
        decrement = float(grad @ step)
        t = 1.0
        while True:
            beta_new = beta + t * step
            eta_new = Z @ beta_new
            dev_new = logit_deviance(eta_new, y, w)
            if dev_new <= dev + 1e-12 * (abs(dev) + 0.1) or t < 1e-10:
                break
            t *= 0.5
        rel = abs(dev - dev_new) / (abs(dev_new) + 0.1)
        beta, eta, dev = beta_new, eta_new, dev_new
        max_eta_hist.append(float(np.max(np.abs(eta))) if n else 0.0)
        if rel < tol or decrement < 1e-20:
            converged = True
            break
    p = expit(eta)
    info = _weighted_gram(Z, w * p * (1.0 - p)) if information else np.zeros((q, q))
    diverging = len(max_eta_hist) >= 3 and max_eta_hist[-1] > 15.0 and (
        max_eta_hist[-1] > max_eta_hist[-3] + 1.0
    )
    return LogitFit(
        beta=beta,
        eta=eta,
        p=p,
        deviance=dev,
        n_iter=it,
        converged=converged,
        information=info,
        rank_deficient=rank_def,
        diverging=diverging,
    )
