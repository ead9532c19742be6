"""Small weighted GLM kernel (IRLS / Fisher scoring as R's ``glm.fit``); no validation.

Families: ``binomial`` with ``logit`` or ``cloglog`` link (``y`` a proportion, ``weights`` the
number of trials times any case weight) and ``poisson`` with log link and an ``offset``.
Reusable by other modules: import :func:`glm_fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, gammaln, xlogy

FloatArray = NDArray[Any]

__all__ = ["GLMFit", "glm_fit", "glm_loglik"]

_EPS = np.finfo(float).eps


@dataclass
class GLMFit:
    """Result of :func:`glm_fit`."""

    beta: FloatArray
    cov: FloatArray  # inverse Fisher information (dispersion 1)
    eta: FloatArray
    mu: FloatArray
    deviance: float
    iterations: int
    converged: bool
    working_weights: FloatArray


def _link(family: str, link: str, eta: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and d mu / d eta."""
    if family == "poisson":
        mu = np.exp(eta)
        return mu, np.maximum(mu, _EPS)
    if link == "logit":
        mu = expit(eta)
        return mu, np.maximum(mu * (1.0 - mu), _EPS)
    # cloglog, with R's clamping of the mean
    eta = np.minimum(eta, 700.0)
    mu = -np.expm1(-np.exp(eta))
    mu = np.clip(mu, _EPS, 1.0 - _EPS)
    dmu = np.maximum(np.exp(eta - np.exp(eta)), _EPS)
    return mu, dmu


def _variance(family: str, mu: FloatArray) -> FloatArray:
    return mu if family == "poisson" else mu * (1.0 - mu)


def _deviance(family: str, y: FloatArray, mu: FloatArray, w: FloatArray) -> float:
    if family == "poisson":
        return float(2.0 * np.sum(w * (xlogy(y, y) - xlogy(y, mu) - (y - mu))))
    return float(
        2.0 * np.sum(w * (xlogy(y, y) - xlogy(y, mu) + xlogy(1 - y, 1 - y) - xlogy(1 - y, 1 - mu)))
    )


def glm_loglik(family: str, y: FloatArray, mu: FloatArray, w: FloatArray) -> float:
    """Log-likelihood as R's ``logLik.glm`` (Poisson with ``-lgamma(y + 1)``).

    Binomial: the Bernoulli log-likelihood of the trials (no binomial coefficient).
    """
    if family == "poisson":
        return float(np.sum(w * (xlogy(y, mu) - mu - gammaln(y + 1.0))))
    return float(np.sum(w * (xlogy(y, mu) + xlogy(1 - y, 1 - mu))))


def glm_fit(
    x: FloatArray,
    y: FloatArray,
    weights: FloatArray,
    *,
    family: str,
    link: str = "logit",
    offset: FloatArray | None = None,
    beta0: FloatArray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
    step_tol: float = 1e-9,
) -> GLMFit:
    """Fit by IRLS (Fisher scoring) with step halving on a deviance increase.

    Convergence as R: ``|dev - dev_old| / (|dev| + 0.1) < tol`` (R's default ``1e-8``; default
    here ``1e-10``) and, because Fisher scoring converges only linearly for non-canonical links
    (cloglog), also a relative step ``max |d beta| / (|beta| + 0.1) < step_tol``.
    """
    n, p = x.shape
    off = np.zeros(n) if offset is None else offset
    if beta0 is None:
        # R's mustart: poisson y + 0.1; binomial (w y + 0.5) / (w + 1)
        if family == "poisson":
            mu0 = y + 0.1
            eta = np.log(mu0)
        else:
            mu0 = (weights * y + 0.5) / (weights + 1.0)
            eta = np.log(mu0 / (1 - mu0)) if link == "logit" else np.log(-np.log1p(-mu0))
        beta = np.zeros(p)
        first = True
    else:
        beta = np.asarray(beta0, float).copy()
        eta = x @ beta + off
        first = False
    mu, dmu = _link(family, link, eta)
    dev_old = _deviance(family, y, mu, weights) if not first else np.inf
    converged = False
    it = 0
    ww = np.zeros(n)
    for it in range(1, max_iter + 1):  # noqa: B007
        var = _variance(family, mu)
        z = (eta - off) + (y - mu) / dmu
        ww = weights * dmu**2 / np.maximum(var, _EPS)
        xw = x * ww[:, None]
        gram = xw.T @ x
        try:
            new_beta = np.linalg.solve(gram, xw.T @ z)
        except np.linalg.LinAlgError:
            new_beta = np.linalg.lstsq(gram, xw.T @ z, rcond=None)[0]
        eta_new = x @ new_beta + off
        mu_new, dmu_new = _link(family, link, eta_new)
        dev = _deviance(family, y, mu_new, weights)
        halv = 0
        while (not np.isfinite(dev) or (not first and dev > dev_old + 1e-12 * abs(dev_old))) and (
            halv < 30
        ):
            new_beta = (new_beta + beta) / 2.0
            eta_new = x @ new_beta + off
            mu_new, dmu_new = _link(family, link, eta_new)
            dev = _deviance(family, y, mu_new, weights)
            halv += 1
        step = float(np.max(np.abs(new_beta - beta) / (np.abs(new_beta) + 0.1))) if p else 0.0
        beta, eta, mu, dmu = new_beta, eta_new, mu_new, dmu_new
        if not first and abs(dev - dev_old) / (abs(dev) + 0.1) < tol and step < step_tol:
            converged = True
            dev_old = dev
            break
        first = False
        dev_old = dev
    var = _variance(family, mu)
    ww = weights * dmu**2 / np.maximum(var, _EPS)
    gram = (x * ww[:, None]).T @ x
    try:
        cov = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(gram)
    return GLMFit(beta, cov, eta, mu, float(dev_old), it, converged, ww)
