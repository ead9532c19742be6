"""Shared helpers of the weighting estimators: checks, trimming, truncation, ESS."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    PositivityWarning,
)
from mentor_impact.propensity._checks import check_choice, format_rows

FloatArray = npt.NDArray[np.float64]

#: A :class:`PositivityWarning` is issued when an arm's effective sample size falls below
#: this fraction of its rows ...
ESS_WARN_FRACTION = 0.05
#: ... or when one row carries more than this share of an arm's total weight.
MAX_SHARE_WARN = 0.10
#: Propensity scores closer than this to 0 or 1 are treated as 0 or 1.
PS_EPS = 1e-12

#: Row positions for messages (never values) and the sklearn-worded option check, shared
#: with :mod:`mentor_impact.propensity`.
rows = format_rows
choice = check_choice


def outcome_matrix(data: Any, outcome: str) -> tuple[FloatArray, bool]:
    """Return the outcome as a float (n, K) matrix and whether it is a curve."""
    y = np.asarray(data.outcome(outcome), dtype=np.float64)
    curve = y.ndim == 2
    return (y if curve else y[:, None]), curve


def check_outcome_finite(Y: FloatArray, used: npt.NDArray[np.bool_], outcome: str) -> None:
    """Raise :class:`DataValidationError` for missing outcomes in rows that carry weight."""
    bad = ~np.isfinite(Y) & used
    if bad.any():
        rows_bad = np.asarray(bad.any(axis=1) if bad.ndim == 2 else bad)
        raise missing_outcome_error(outcome, int(bad.sum()), rows_bad)


def missing_outcome_error(
    outcome: str, n_values: int, rows_bad: npt.NDArray[np.bool_]
) -> DataValidationError:
    """Build the error of :func:`check_outcome_finite` (counts and row positions only)."""
    return DataValidationError(
        f"outcome {outcome!r}: expected finite values in every weighted row; found "
        f"{n_values} missing or infinite values in {int(rows_bad.sum())} rows "
        f"({rows(rows_bad)}). Hint: drop these rows with data.subset(...) or impute them."
    )


def check_ps(ps: npt.ArrayLike, n: int, name: str = "ps") -> FloatArray:
    """Validate user-supplied propensity scores: shape (n,), finite, strictly in (0, 1)."""
    p = np.asarray(ps, dtype=np.float64)
    if p.shape != (n,):
        raise DataValidationError(
            f"{name}: expected {n} propensity scores (one per row); found shape {p.shape}."
        )
    bad = ~np.isfinite(p) | (p <= 0.0) | (p >= 1.0)
    if bad.any():
        raise DataValidationError(
            f"{name}: expected propensity scores strictly between 0 and 1; found {int(bad.sum())} "
            f"at 0, 1, outside or missing ({rows(bad)}). Hint: trim these units "
            "(trim=0.01 or trim='common_support') or use a calibrated classifier."
        )
    return p


def trim_mask(
    ps: FloatArray, d: FloatArray, rule: Any, cell: npt.NDArray[np.int64] | None, estimand: str
) -> npt.NDArray[np.bool_]:
    """Rows kept by a trimming rule (see :class:`mentor_impact.IPW`)."""
    n = ps.size
    if rule is None:
        return np.ones(n, dtype=bool)
    if isinstance(rule, str):
        from mentor_impact.propensity import common_support
        from mentor_impact.propensity import crump_alpha as _crump

        if rule == "crump":
            a = _crump(ps)
            return (ps >= a) & (ps <= 1.0 - a)
        if rule in ("common_support", "minmax"):
            est = estimand if estimand in ("ATT", "ATC") else "ATE"
            return np.asarray(common_support(ps, d, estimand=est, cells=cell), dtype=bool)
        raise ConfigurationError(
            "trim: expected None, a float alpha in (0, 0.5), a (lower, upper) pair, 'crump', "
            f"'minmax' or 'common_support'; got {rule!r}."
        )
    if isinstance(rule, (tuple, list)) and len(rule) == 2:
        lo_, hi_ = float(rule[0]), float(rule[1])
    else:
        try:
            lo_ = float(rule)
        except (TypeError, ValueError):
            raise ConfigurationError(
                "trim: expected None, a float alpha in (0, 0.5), a (lower, upper) pair, 'crump' "
                f"or 'common_support'; got an object of type {type(rule).__name__}."
            ) from None
        hi_ = 1.0 - lo_
    if not (0.0 <= lo_ < hi_ <= 1.0):
        raise ConfigurationError(
            f"trim: expected 0 <= lower < upper <= 1; got lower={lo_}, upper={hi_}."
        )
    return (ps >= lo_) & (ps <= hi_)


def crump_alpha(ps: FloatArray) -> float:
    """Crump, Hotz, Imbens & Mitnik (2009) optimal alpha (see ``propensity.crump_alpha``)."""
    from mentor_impact.propensity import crump_alpha as _crump

    return float(_crump(ps))


def truncate_weights(
    omega: FloatArray, arm: npt.NDArray[np.bool_], spec: Any
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Cap the weights of one arm at percentiles; returns new weights and the capped rows."""
    if spec is None or not arm.any():
        return omega, np.zeros(omega.size, dtype=bool)
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        lo_q, hi_q = float(spec[0]), float(spec[1])
    else:
        try:
            lo_q, hi_q = 0.0, float(spec)
        except (TypeError, ValueError):
            raise ConfigurationError(
                "truncate: expected None, an upper percentile in (0.5, 1] such as 0.99, or a "
                f"(lower, upper) pair of percentiles; got {type(spec).__name__}."
            ) from None
    if not (0.0 <= lo_q < hi_q <= 1.0):
        raise ConfigurationError(
            f"truncate: expected percentiles 0 <= lower < upper <= 1; got ({lo_q}, {hi_q})."
        )
    vals = omega[arm]
    lo_v, hi_v = np.quantile(vals, [lo_q, hi_q])
    new = omega.copy()
    new[arm] = np.clip(vals, lo_v, hi_v)
    capped = np.zeros(omega.size, dtype=bool)
    capped[arm] = (vals < lo_v) | (vals > hi_v)
    return new, capped


def ess(weights: FloatArray) -> FloatArray:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` per column of a (n, K) matrix."""
    s = weights.sum(axis=0)
    s2 = (weights**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s2 > 0, s**2 / s2, 0.0)


def positivity_check(
    owner: str, nu: FloatArray, arm: npt.NDArray[np.bool_], label: str, stacklevel: int = 3
) -> None:
    """Warn when the normalised weights ``nu`` (n, K) of one arm are extreme."""
    n_arm = int(arm.sum())
    if n_arm < 2:
        return
    sub = np.abs(nu[arm])
    positivity_warn(owner, n_arm, sub.sum(axis=0), (sub**2).sum(axis=0), sub.max(axis=0),
                    label, stacklevel + 1)


def positivity_warn(
    owner: str,
    n_arm: int,
    total: FloatArray,
    sumsq: FloatArray,
    largest: FloatArray,
    label: str,
    stacklevel: int = 3,
) -> None:
    """:func:`positivity_check` from per-target column statistics of ``|nu|`` of the arm.

    ``total``, ``sumsq`` and ``largest`` are the per-target sum, sum of squares and maximum
    of the absolute weights over the arm's rows (``n_arm`` of them).
    """
    if n_arm < 2:
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, largest / total, 0.0)
        e = np.where(sumsq > 0, total**2 / sumsq, 0.0)
    worst_share = float(share.max())
    worst_ess = float(e.min())
    if worst_share > MAX_SHARE_WARN or worst_ess < ESS_WARN_FRACTION * n_arm:
        warnings.warn(
            f"{owner}: extreme {label} weights: effective sample size {worst_ess:.1f} of "
            f"{n_arm} {label} rows, largest single weight share {worst_share:.1%}. Hint: "
            "truncate the weights (truncate=0.99), trim on the propensity score, or use "
            "overlap weights (estimand='ATO').",
            PositivityWarning,
            stacklevel=stacklevel,
        )
