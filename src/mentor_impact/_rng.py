"""Seed handling: every random step of the library goes through :func:`as_generator`."""

from __future__ import annotations

import numpy as np

SeedLike = int | np.random.Generator | np.random.SeedSequence | None

__all__ = ["SeedLike", "as_generator"]


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    Parameters
    ----------
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        An integer seed, an existing generator (returned unchanged) or ``None`` for a
        fresh, unpredictable generator (avoid ``None`` where results must reproduce).

    Returns
    -------
    numpy.random.Generator
        The generator to draw from.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
