"""Overlap (common support) and trimming rules on the propensity score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.propensity._checks import check_binary, check_choice

__all__ = ["TrimResult", "common_support", "crump_alpha", "trim"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrimResult:
    """Outcome of a trimming rule.

    Attributes
    ----------
    keep : ndarray of shape (n,) of bool
        Rows kept.
    rule : str
        The rule applied (``"minmax"``, ``"crump"``, ``"bounds"``).
    bounds : tuple of float
        PS bounds applied (for ``"minmax"`` within cells: the widest interval).
    dropped : dict of str to int
        Rows dropped by arm: ``{"treated": ..., "control": ...}``.
    note : str
        The changed estimand in words.
    """

    keep: npt.NDArray[np.bool_]
    rule: str
    bounds: tuple[float, float]
    dropped: dict[str, int] = field(default_factory=dict)
    note: str = ""


def crump_alpha(ps: npt.ArrayLike) -> float:
    """Optimal trimming threshold of Crump, Hotz, Imbens and Mitnik (2009).

    Parameters
    ----------
    ps : array-like of shape (n,)
        Propensity scores in (0, 1).

    Returns
    -------
    float
        ``alpha`` such that units with ``alpha <= e <= 1 - alpha`` are kept; 0 when no
        trimming is needed (``sup g <= 2 E[g]`` with ``g = 1 / (e (1 - e))``).

    Notes
    -----
    ``alpha`` solves ``1 / (alpha (1 - alpha)) = 2 E[g | g <= 1 / (alpha (1 - alpha))]``. With
    ``g`` sorted, the solution is ``gamma = 2 mean(g_(1..k))`` for the largest ``k`` with
    ``g_(k) <= 2 mean(g_(1..k))``, and ``alpha = 1/2 - sqrt(1/4 - 1/gamma)``.
    """
    e = np.asarray(ps, dtype=np.float64)
    e = e[(e > 0) & (e < 1)]
    if e.size == 0:
        raise DataValidationError(
            "crump_alpha: expected propensity scores strictly between 0 and 1; found none."
        )
    g = 1.0 / (e * (1.0 - e))
    if g.max() <= 2.0 * g.mean():
        return 0.0
    return float(0.5 - np.sqrt(0.25 - 1.0 / _gamma(e)))


def _gamma(e: FloatArray) -> float:
    g = np.sort(1.0 / (e * (1.0 - e)))
    cm = np.cumsum(g) / np.arange(1, g.size + 1)
    ok = g <= 2.0 * cm
    k = int(np.flatnonzero(ok).max())
    return float(2.0 * cm[k])


def common_support(
    ps: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    estimand: str = "ATT",
    cells: npt.ArrayLike | None = None,
) -> npt.NDArray[np.bool_]:
    """Min–max common support, optionally within exact cells.

    Parameters
    ----------
    ps : array-like of shape (n,)
        Propensity scores.
    treatment : array-like of shape (n,)
        0/1 treatment.
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT: drop treated units outside ``[min, max]`` of the control PS (in their cell);
        ATC: drop controls outside the treated range; ATE: drop every unit outside the
        intersection of both ranges (MatchIt's ``discard = "both"``).
    cells : array-like of shape (n,), optional
        Exact cells; the ranges are computed within each cell (a cell without the other
        arm drops all its focal units).

    Returns
    -------
    ndarray of shape (n,) of bool
        Rows on the common support.
    """
    check_choice("common_support", "estimand", estimand, ("ATT", "ATC", "ATE"))
    e = np.asarray(ps, dtype=np.float64)
    D = check_binary(treatment, "treatment") == 1
    c = np.zeros(e.size, dtype=np.int64) if cells is None else np.unique(
        np.asarray(cells), return_inverse=True
    )[1].ravel()
    G = int(c.max()) + 1 if c.size else 0

    def rng(mask: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
        lo = np.full(G, np.inf)
        hi = np.full(G, -np.inf)
        np.minimum.at(lo, c[mask], e[mask])
        np.maximum.at(hi, c[mask], e[mask])
        return lo, hi

    lo1, hi1 = rng(D)
    lo0, hi0 = rng(~D)
    inside0 = (e >= lo0[c]) & (e <= hi0[c])  # within the control range
    inside1 = (e >= lo1[c]) & (e <= hi1[c])
    if estimand == "ATT":
        return ~D | inside0
    if estimand == "ATC":
        return D | inside1
    return inside0 & inside1


def trim(
    ps: npt.ArrayLike,
    treatment: npt.ArrayLike,
    rule: str | tuple[float, float] = "minmax",
    *,
    estimand: str = "ATT",
    cells: npt.ArrayLike | None = None,
) -> TrimResult:
    """Apply a trimming rule and count what it drops.

    Parameters
    ----------
    ps : array-like of shape (n,)
        Propensity scores.
    treatment : array-like of shape (n,)
        0/1 treatment.
    rule : {"minmax", "crump"} or (float, float), default="minmax"
        ``"minmax"``: :func:`common_support`; ``"crump"``: keep
        ``alpha <= e <= 1 - alpha`` with :func:`crump_alpha`; a tuple: fixed bounds
        ``lo <= e <= hi`` (e.g. ``(0.1, 0.9)``).
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        For ``"minmax"``.
    cells : array-like of shape (n,), optional
        Exact cells for ``"minmax"``.

    Returns
    -------
    TrimResult
        Mask, counts by arm and the changed estimand.

    Raises
    ------
    ConfigurationError
        Unknown rule or bounds outside ``[0, 1]``.
    DataValidationError
        Trimming would drop every treated or every control unit.
    """
    e = np.asarray(ps, dtype=np.float64)
    D = check_binary(treatment, "treatment") == 1
    if isinstance(rule, tuple):
        lo, hi = float(rule[0]), float(rule[1])
        if not (0.0 <= lo < hi <= 1.0):
            raise ConfigurationError(
                f"trim: expected bounds 0 <= lo < hi <= 1; got ({lo!r}, {hi!r})."
            )
        keep = (e >= lo) & (e <= hi)
        name = "bounds"
        bounds = (lo, hi)
    elif rule == "crump":
        a = crump_alpha(e)
        keep = (e >= a) & (e <= 1 - a)
        name = "crump"
        bounds = (a, 1 - a)
    elif rule == "minmax":
        keep = common_support(e, D.astype(int), estimand=estimand, cells=cells)
        name = "minmax"
        bounds = (float(e[keep].min()), float(e[keep].max())) if keep.any() else (0.0, 0.0)
    else:
        raise ConfigurationError(
            "The 'rule' parameter of trim must be one of {'minmax', 'crump'} or a (lo, hi) "
            f"tuple. Got {rule!r} instead."
        )
    dropped = {"treated": int((D & ~keep).sum()), "control": int((~D & ~keep).sum())}
    if not (keep & D).any() or not (keep & ~D).any():
        raise DataValidationError(
            f"trim: the {name} rule drops all treated or all control units "
            f"({dropped['treated']} treated and {dropped['control']} control dropped). "
            "Hint: use a milder rule or check the propensity model."
        )
    note = (
        "no units trimmed"
        if not any(dropped.values())
        else f"{name} trimming dropped {dropped['treated']} treated and {dropped['control']} "
        f"control units (PS bounds {bounds[0]:.4g}-{bounds[1]:.4g}); the estimand refers to "
        "the population on the common support"
    )
    return TrimResult(keep=keep, rule=name, bounds=bounds, dropped=dropped, note=note)
