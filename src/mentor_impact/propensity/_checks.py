"""Shared input checks with privacy-safe messages (counts and row positions only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mentor_impact.exceptions import ConfigurationError, DataValidationError

__all__ = [
    "as_float_matrix",
    "check_binary",
    "check_choice",
    "check_weights",
    "format_rows",
]


def format_rows(mask_or_idx: ArrayLike, limit: int = 5) -> str:
    """Describe row positions: ``"rows 3, 17, 92"`` (at most ``limit``, then ``", ..."``)."""
    idx = np.asarray(mask_or_idx)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    more = ", ..." if idx.size > limit else ""
    word = "row" if idx.size == 1 else "rows"
    return f"{word} {shown}{more}"


def check_choice(owner: str, name: str, value: object, options: tuple[object, ...]) -> None:
    """Raise ConfigurationError (sklearn wording) when ``value`` is not one of ``options``."""
    if value not in options:
        opts = "{" + ", ".join(repr(o) for o in options) + "}"
        raise ConfigurationError(
            f"The {name!r} parameter of {owner} must be one of {opts}. Got {value!r} instead."
        )


def as_float_matrix(X: ArrayLike, name: str = "X") -> NDArray[np.float64]:
    """Return ``X`` as a 2-D C-contiguous float64 array; NaN/inf raise with row positions."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataValidationError(
            f"{name}: expected a 2-D array (rows x covariates); found {arr.ndim} dimensions. "
            "Hint: pass one row per unit and one column per covariate."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = bad.any(axis=1)
        cols = np.flatnonzero(bad.any(axis=0))
        raise DataValidationError(
            f"{name}: expected finite covariates; found {int(rows.sum())} rows with missing or "
            f"infinite values ({format_rows(rows)}) in {cols.size} column(s) "
            f"(positions {', '.join(str(int(c)) for c in cols[:5])}). "
            "Hint: impute, add missingness indicators or drop these rows before fitting."
        )
    return np.ascontiguousarray(arr)


def check_binary(D: ArrayLike, name: str = "treatment") -> NDArray[np.int8]:
    """Return ``D`` as int8 in {0, 1}; anything else raises with counts and row positions."""
    arr = np.asarray(D)
    if arr.ndim != 1:
        raise DataValidationError(
            f"{name}: expected a 1-D array of 0/1; found shape {arr.shape}. "
            "Hint: pass one treatment indicator per row."
        )
    with np.errstate(invalid="ignore"):
        fl = arr.astype(np.float64)
    bad = ~((fl == 0) | (fl == 1))
    if bad.any():
        raise DataValidationError(
            f"{name}: expected a binary 0/1 indicator; found {int(bad.sum())} rows with other "
            f"or missing values ({format_rows(bad)}). Hint: recode the treatment to 0/1."
        )
    out = fl.astype(np.int8)
    n1 = int(out.sum())
    if n1 == 0 or n1 == out.size:
        which = "treated" if n1 == 0 else "control"
        raise DataValidationError(
            f"{name}: expected both treated and control rows; found 0 {which} rows "
            f"among {out.size}. Hint: check the treatment coding or the sample selection."
        )
    return out


def check_weights(w: ArrayLike | None, n: int, name: str = "sample_weight") -> NDArray[np.float64]:
    """Return non-negative finite float64 weights of length ``n`` (ones when ``None``)."""
    if w is None:
        return np.ones(n)
    arr = np.asarray(w, dtype=np.float64).reshape(-1)
    if arr.size != n:
        raise DataValidationError(
            f"{name}: expected {n} weights (one per row); found {arr.size}. "
            "Hint: align the weights with the rows of the data."
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise DataValidationError(
            f"{name}: expected finite non-negative weights; found {int(bad.sum())} invalid "
            f"({format_rows(bad)}). Hint: drop these rows or fix the weights."
        )
    return arr
