"""Private validation helpers shared by the register classes (messages never show values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import DataValidationError


def positions(mask: npt.ArrayLike, limit: int = 5) -> str:
    """Return 'i, j, k, ... (m more)' for the first row positions where ``mask`` holds."""
    pos = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(int(p)) for p in pos[:limit])
    more = f", ... ({pos.size - limit} more)" if pos.size > limit else ""
    return f"{shown}{more}"


def missing_mask(values: Any) -> npt.NDArray[np.bool_]:
    """Boolean mask of missing entries (NaN, None, pd.NA, NaT) of a 1-D or 2-D array."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind in "iub":
        return np.zeros(arr.shape, dtype=bool)
    return np.asarray(pd.isna(pd.DataFrame(arr) if arr.ndim == 2 else pd.Series(arr))).reshape(
        arr.shape
    )


def as_int_array(values: Any, argument: str, *, what: str) -> npt.NDArray[np.int64]:
    """Convert a 1-D column to int64, raising for missing values or non-integer values."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        miss = values.isna().to_numpy()
        if miss.any():
            raise DataValidationError(
                f"{argument}: expected {what} without missing values; found {int(miss.sum())} "
                f"missing (rows {positions(miss)}). Hint: drop or impute these rows first."
            )
        values = values.to_numpy(dtype=np.float64)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataValidationError(
            f"{argument}: expected a 1-D array of {what}; found {arr.ndim} dimensions. "
            "Hint: pass one column."
        )
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise DataValidationError(
            f"{argument}: expected {what} (integers); found dtype bool. Hint: pass integer codes."
        )
    miss = missing_mask(arr)
    if miss.any():
        raise DataValidationError(
            f"{argument}: expected {what} without missing values; found {int(miss.sum())} "
            f"missing (rows {positions(miss)}). Hint: drop or impute these rows first."
        )
    if arr.dtype.kind == "f":
        frac = arr != np.round(arr)
        if frac.any():
            raise DataValidationError(
                f"{argument}: expected {what} (integers); found {int(frac.sum())} non-integer "
                f"values (rows {positions(frac)}). Hint: round or recode them."
            )
        return arr.astype(np.int64)
    try:
        return arr.astype(np.int64)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"{argument}: expected {what} (integers); found dtype {arr.dtype}. "
            "Hint: convert the column with pd.to_numeric(...).astype('int64')."
        ) from None
