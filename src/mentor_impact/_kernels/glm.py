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

from mentor_impact._kernels.linalg import weighted_gram

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
        gram = weighted_gram(x, ww)
        rhs = (ww * z) @ x
        try:
            new_beta = np.linalg.solve(gram, rhs)
        except np.linalg.LinAlgError:
            new_beta = np.linalg.lstsq(gram, rhs, rcond=None)[0]
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
    gram = weighted_gram(x, ww)
    try:
        cov = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(gram)
    return GLMFit(beta, cov, eta, mu, float(dev_old), it, converged, ww)


@dataclass
class BlockedGLMFit:
    """Result of :func:`glm_fit_blocked` in R's parametrisation.

    ``beta`` = (intercept = level-1 effect, level 2..L contrasts, covariate coefficients).
    """

    beta: FloatArray
    cov: FloatArray
    mu: FloatArray  # per cell
    eta: FloatArray  # per cell (without offset)
    deviance: float
    iterations: int
    converged: bool


def glm_fit_blocked(
    level: NDArray[Any],
    pattern: NDArray[Any],
    x_pattern: FloatArray,
    y: FloatArray,
    prior: FloatArray,
    *,
    n_levels: int,
    family: str,
    link: str = "logit",
    offset: FloatArray | None = None,
    deviance: Any = None,
    first: tuple[FloatArray, FloatArray] | None = None,
    max_iter: int = 25,
    tol: float = 1e-8,
    step_tol: float | None = None,
) -> BlockedGLMFit:
    """IRLS for ``eta_c = alpha_{level_c} + x_{pattern_c}' beta + offset_c`` on aggregated cells.

    The level dummies are never materialised: the normal equations are solved by blocks
    (``A = diag`` of level weight sums, ``B`` level-by-covariate sums, ``C`` the pattern Gram
    matrix) with the Schur complement ``C - B' A^-1 B``.  Memory is O(cells + patterns x p).

    ``first = (W, Wz)`` gives the cell sums of the first IRLS step (R's ``mustart`` on the
    disaggregated rows); ``deviance(eta_lin, mu)`` the deviance used for convergence
    (``|dev - dev_old| / (|dev| + 0.1) < tol``; with ``step_tol`` also a relative step).
    The covariance uses the working weights of the last iteration, as R's ``summary.glm``.
    """
    from scipy import sparse

    from mentor_impact._kernels.cox import weighted_gram

    n_pat, p = x_pattern.shape
    k = n_levels + p
    off = np.zeros(y.size) if offset is None else offset
    if deviance is None:

        def deviance(lin: FloatArray, mu: FloatArray) -> float:
            return _deviance(family, y, mu, prior)

    # level x pattern sums through a CSR matrix whose structure is built once
    key_lp = np.asarray(level, np.int64) * n_pat + np.asarray(pattern, np.int64)
    uniq_lp, pos_lp = np.unique(key_lp, return_inverse=True)
    pos_lp = pos_lp.ravel()
    lp_ptr = np.concatenate(([0], np.cumsum(np.bincount(uniq_lp // n_pat, minlength=n_levels))))
    lp_idx = uniq_lp % n_pat

    def level_by_covariate(wc: FloatArray) -> FloatArray:
        data = np.bincount(pos_lp, weights=wc, minlength=uniq_lp.size)
        m = sparse.csr_matrix((data, lp_idx, lp_ptr), shape=(n_levels, n_pat))
        return np.asarray(m @ x_pattern)

    alpha: FloatArray = np.zeros(n_levels)
    beta: FloatArray = np.zeros(p)
    eta: FloatArray = np.zeros(y.size)
    mu = np.zeros(y.size)
    dmu = np.zeros(y.size)
    dev_old = np.inf
    converged = False
    w_used = np.zeros(y.size)
    it = 0
    for it in range(1, max_iter + 1):
        if it == 1 and first is not None:
            w_c, wz_c = first
        else:
            if it == 1:  # R's default mustart on the cells
                mu0 = y + 0.1 if family == "poisson" else (prior * y + 0.5) / (prior + 1.0)
                if family == "poisson":
                    eta = np.log(mu0)
                elif link == "logit":
                    eta = np.log(mu0 / (1 - mu0))
                else:
                    eta = np.log(-np.log1p(-mu0))
                mu, dmu = _link(family, link, eta)
                eta = eta - off
            var = _variance(family, mu)
            w_c = prior * dmu**2 / np.maximum(var, _EPS)
            wz_c = w_c * (eta + (y - mu) / dmu)
        w_used = w_c
        a_diag = np.bincount(level, weights=w_c, minlength=n_levels)
        a_vec = np.bincount(level, weights=wz_c, minlength=n_levels)
        w_pat = np.bincount(pattern, weights=w_c, minlength=n_pat)
        c_mat = weighted_gram(x_pattern, w_pat)
        b_vec = x_pattern.T @ np.bincount(pattern, weights=wz_c, minlength=n_pat)
        b_mat = level_by_covariate(w_c)  # (L, p)
        schur = c_mat - b_mat.T @ (b_mat / a_diag[:, None])
        new_beta = np.linalg.solve(schur, b_vec - b_mat.T @ (a_vec / a_diag)) if p else beta
        new_alpha = (a_vec - b_mat @ new_beta) / a_diag
        step = float(
            np.max(
                np.abs(np.concatenate([new_alpha - alpha, new_beta - beta]))
                / (np.abs(np.concatenate([new_alpha, new_beta])) + 0.1)
            )
        )
        alpha, beta = new_alpha, new_beta
        eta = alpha[level] + (x_pattern @ beta)[pattern]
        mu, dmu = _link(family, link, eta + off)
        dev = float(deviance(eta, mu))
        crit = abs(dev - dev_old) / (abs(dev) + 0.1) < tol
        if crit and (step_tol is None or step < step_tol):
            converged = True
            dev_old = dev
            break
        dev_old = dev
    # covariance of (alpha, beta) from the last weights, then R's parametrisation
    a_diag = np.bincount(level, weights=w_used, minlength=n_levels)
    w_pat = np.bincount(pattern, weights=w_used, minlength=n_pat)
    c_mat = weighted_gram(x_pattern, w_pat)
    b_mat = level_by_covariate(w_used)
    schur = c_mat - b_mat.T @ (b_mat / a_diag[:, None])
    s_inv = np.linalg.inv(schur) if p else np.zeros((0, 0))
    ab = (b_mat / a_diag[:, None]) @ s_inv  # A^-1 B S^-1
    cov_full = np.empty((k, k))
    cov_full[:n_levels, :n_levels] = np.diag(1.0 / a_diag) + ab @ (b_mat.T / a_diag[None, :])
    cov_full[:n_levels, n_levels:] = -ab
    cov_full[n_levels:, :n_levels] = -ab.T
    cov_full[n_levels:, n_levels:] = s_inv
    t = np.eye(k)
    t[1:n_levels, 0] = -1.0  # contrast_j = alpha_j - alpha_1
    theta = t @ np.concatenate([alpha, beta])
    return BlockedGLMFit(theta, t @ cov_full @ t.T, mu, eta, dev_old, it, converged)
