"""Uniform (sup-t) bands over tau by a person-level multiplier bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mentor_impact._rng import SeedLike
from mentor_impact.exceptions import ConfigurationError
from mentor_impact.inference.bands import multiplier_bootstrap_critical_value
from mentor_impact.results import EffectResults

__all__ = ["multiplier_band"]


def multiplier_band(
    res: EffectResults,
    level: float = 0.95,
    *,
    n_draws: int = 2_000,
    seed: SeedLike = 0,
    chunk: int = 250,
) -> pd.DataFrame:
    """Simultaneous confidence band over all targets by a multiplier bootstrap.

    Each draw multiplies the per-person sums of the stored influence function by independent
    standard normal weights (Gaussian multiplier bootstrap, person-level so that repeated
    appearances of a person in several risk sets move together); the band uses the
    ``level`` quantile ``c`` of ``max_k |theta*_k - theta_hat_k| / se_k``. Draws are made in
    chunks of ``chunk`` (memory ``O(chunk * persons)``).

    Parameters
    ----------
    res : EffectResults
        Results with an influence function (``IPW``, ``AIPW``).
    level : float, default=0.95
        Simultaneous coverage.
    n_draws : int, default=2000
        Bootstrap draws.
    seed : int, Generator or None, default=0
        Seed of the multipliers.
    chunk : int, default=250
        Draws per matrix product.

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper`` indexed by target, with ``attrs["critical_value"]``.
        The band is ``estimate -/+ c * se`` with ``se`` the results' standard errors.

    Raises
    ------
    ConfigurationError
        When the results carry no influence function.

    Notes
    -----
    :meth:`EffectResults.uniform_band` simulates from the estimated covariance instead
    (equivalent to first order); this version is the one of METHODS §6.2/§6.4.
    """
    if res.influence is None:
        raise ConfigurationError(
            "res: expected results with an influence function; found none. Hint: use "
            "res.uniform_band(), which simulates from the covariance."
        )
    c = multiplier_bootstrap_critical_value(
        res.influence, res.cluster, level, n_draws=n_draws, seed=seed, chunk=chunk
    )
    se = res.std_errors.to_numpy()
    out = pd.DataFrame(
        {"lower": res.estimate - c * se, "upper": res.estimate + c * se}, index=res.index
    )
    out.attrs["critical_value"] = float(c)
    out.attrs["level"] = level
    if not np.isfinite(c):  # pragma: no cover - degenerate influence
        out[:] = np.nan
    return out
