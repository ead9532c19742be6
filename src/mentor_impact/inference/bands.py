"""Uniform (sup-t) confidence bands for effect curves."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mentor_impact._rng import SeedLike, as_generator
from mentor_impact.exceptions import ConfigurationError
from mentor_impact.inference.influence import InfluenceLike

__all__ = ["multiplier_bootstrap_critical_value", "sup_t_critical_value"]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ConfigurationError(f"level: expected a number in (0, 1); got {level!r}.")


def sup_t_critical_value(
    cov: npt.NDArray[np.float64],
    level: float = 0.95,
    *,
    n_draws: int = 10_000,
    seed: SeedLike = 0,
) -> float:
    """Critical value of the sup-t band from a Gaussian approximation.

    Draws ``Z ~ N(0, R)`` with ``R`` the correlation matrix of the estimates and returns
    the ``level`` quantile of ``max_j |Z_j|``. Targets with zero variance are ignored.

    Parameters
    ----------
    cov : ndarray of shape (k, k)
        Covariance matrix of the curve estimates.
    level : float, default=0.95
        Simultaneous coverage.
    n_draws : int, default=10000
        Number of Gaussian draws.
    seed : int or Generator, default=0
        Seed of the draws (the band is reproducible for a given seed).

    Returns
    -------
    float
        The critical value ``c``; the band is ``estimate +/- c * se``.

    References
    ----------
    Montiel Olea, J. L., Plagborg-Møller, M. (2019). Simultaneous confidence bands: theory,
    implementation, and an application to SVARs. *J Appl Econometrics* 34(1): 1–17.
    """
    _check_level(level)
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    keep = sd > 0
    if not keep.any():
        return float("nan")
    corr = cov[np.ix_(keep, keep)] / np.outer(sd[keep], sd[keep])
    # symmetric square root through the eigen-decomposition (robust to semi-definiteness)
    vals, vecs = np.linalg.eigh((corr + corr.T) / 2.0)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = as_generator(seed)
    z = rng.standard_normal((n_draws, root.shape[0])) @ root.T
    return float(np.quantile(np.abs(z).max(axis=1), level))


def multiplier_bootstrap_critical_value(
    phi: InfluenceLike,
    cluster: npt.ArrayLike | None = None,
    level: float = 0.95,
    *,
    n_draws: int = 2_000,
    seed: SeedLike = 0,
    chunk: int = 250,
) -> float:
    """Critical value of the sup-t band by a multiplier bootstrap of influence functions.

    Each draw multiplies the per-cluster sums of ``phi`` by independent standard normal
    weights (person-level multipliers), ``theta* - theta_hat = sum_g xi_g Phi_g``, and the
    statistic is ``max_j |theta*_j - theta_hat_j| / se_j``. Draws are computed in chunks as
    one matrix product each, so memory stays ``O(chunk * G)``.

    Parameters
    ----------
    phi : ndarray or RowInfluence of shape (n, k)
        Scaled influence functions (a :class:`RowInfluence` is materialised).
    cluster : array-like of shape (n,), optional
        Cluster labels; rows are their own clusters when omitted.
    level : float, default=0.95
        Simultaneous coverage.
    n_draws : int, default=2000
        Number of bootstrap draws.
    seed : int or Generator, default=0
        Seed of the multipliers.
    chunk : int, default=250
        Draws per matrix product.

    Returns
    -------
    float
        The critical value ``c``.
    """
    from mentor_impact.inference.covariance import cluster_sums

    _check_level(level)
    phi = np.asarray(phi, dtype=np.float64)
    labels = np.arange(phi.shape[0]) if cluster is None else np.asarray(cluster)
    sums, _ = cluster_sums(phi, labels)
    se = np.sqrt((sums**2).sum(axis=0))
    keep = se > 0
    if not keep.any():
        return float("nan")
    sums = sums[:, keep] / se[keep]
    rng = as_generator(seed)
    stats = np.empty(n_draws)
    for start in range(0, n_draws, chunk):
        m = min(chunk, n_draws - start)
        xi = rng.standard_normal((m, sums.shape[0]))
        stats[start : start + m] = np.abs(xi @ sums).max(axis=1)
    return float(np.quantile(stats, level))
