"""ISO-8601 week arithmetic on integer labels ``YYYYWW``.

The public time axis of mentor_impact is the ISO week label ``YYYYWW`` (``201301``; week 53
exists in long years such as 2009, 2015 and 2020). Internally weeks are counted as
*ordinals*: the number of weeks since ISO week 1970-W01 (whose Monday is 1969-12-29).
Consecutive ISO weeks have consecutive ordinals, so ordinal differences are week counts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mentor_impact.exceptions import DataValidationError
from mentor_impact.registers._validate import positions as _positions

__all__ = [
    "iso_range",
    "iso_to_ordinal",
    "iso_weeks_in_year",
    "ordinal_to_iso",
]

_EPOCH_MONDAY_DAYS = -3  # 1969-12-29 (Monday of ISO week 1970-W01) in days since 1970-01-01


def _week1_ordinal(year: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Ordinal of ISO week 1 of ``year`` (the week that contains 4 January)."""
    jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    jan4 = jan1 + 3
    monday = jan4 - (jan4 + 3) % 7  # 1970-01-01 was a Thursday: weekday(Mon=0) = (d + 3) % 7
    return (monday - _EPOCH_MONDAY_DAYS) // 7


def iso_weeks_in_year(year: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Return the number of ISO weeks (52 or 53) in each ISO year.

    Parameters
    ----------
    year : array_like of int
        ISO years.

    Returns
    -------
    numpy.ndarray of int64
        52 or 53 for each year.

    Examples
    --------
    >>> iso_weeks_in_year([2008, 2009, 2015, 2020]).tolist()
    [52, 53, 53, 53]
    """
    y = np.asarray(year, dtype=np.int64)
    return _week1_ordinal(y + 1) - _week1_ordinal(y)


def iso_to_ordinal(labels: npt.ArrayLike, *, argument: str = "labels") -> npt.NDArray[np.int64]:
    """Convert ISO week labels ``YYYYWW`` to week ordinals (weeks since ISO 1970-W01).

    Parameters
    ----------
    labels : array_like of int
        ISO week labels such as ``201301``. Week 53 is valid only in ISO years that have it.
    argument : str, default "labels"
        Name of the argument reported in error messages.

    Returns
    -------
    numpy.ndarray of int64
        Week ordinals, same shape as ``labels``.

    Raises
    ------
    DataValidationError
        If labels are not integers or are not valid ISO weeks.

    Notes
    -----
    The ordinal of 1970-W01 is 0; consecutive ISO weeks differ by exactly 1, across week 53
    and year boundaries, so that register columns can be indexed by ordinal differences.

    Examples
    --------
    >>> int(iso_to_ordinal(200953) + 1 == iso_to_ordinal(201001))
    1
    """
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(
            arr == np.round(arr)
        ):
            arr = arr.astype(np.int64)
        else:
            found = arr.dtype
            if arr.dtype.kind == "f":
                n_nan = int(np.isnan(arr).sum())
                raise DataValidationError(
                    f"{argument}: expected integer ISO week labels YYYYWW; found {n_nan} missing "
                    f"values (rows {_positions(np.isnan(arr).ravel())}). Hint: drop or impute "
                    "the missing weeks before building the object."
                )
            raise DataValidationError(
                f"{argument}: expected integer ISO week labels YYYYWW; found dtype {found}. "
                "Hint: convert with .astype('int64') (e.g. 2013-W01 -> 201301)."
            )
    a = arr.astype(np.int64, copy=False)
    year = a // 100
    week = a % 100
    ok_year = (year >= 1900) & (year <= 2200)
    nweeks = iso_weeks_in_year(np.where(ok_year, year, 2000))
    bad = ~ok_year | (week < 1) | (week > nweeks)
    if bad.any():
        raise DataValidationError(
            f"{argument}: expected valid ISO week labels YYYYWW (week 01..52, or 53 in long "
            f"years); found {int(bad.sum())} invalid labels (rows {_positions(bad.ravel())}). "
            "Hint: check the week numbering (ISO 8601) and the YYYYWW layout."
        )
    return _week1_ordinal(year) + week - 1


def ordinal_to_iso(ordinals: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Convert week ordinals (weeks since ISO 1970-W01) back to ISO labels ``YYYYWW``.

    Parameters
    ----------
    ordinals : array_like of int
        Week ordinals as returned by :func:`iso_to_ordinal`.

    Returns
    -------
    numpy.ndarray of int64
        ISO week labels ``YYYYWW``.

    Examples
    --------
    >>> ordinal_to_iso(iso_to_ordinal([200952, 200953, 201001]) + 1).tolist()
    [200953, 201001, 201002]
    """
    o = np.asarray(ordinals, dtype=np.int64)
    thursday = o * 7 + _EPOCH_MONDAY_DAYS + 3
    year = thursday.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    week = o - _week1_ordinal(year) + 1
    return year * 100 + week


def iso_range(first: int, last: int) -> npt.NDArray[np.int64]:
    """Return all consecutive ISO week labels from ``first`` to ``last`` inclusive.

    Parameters
    ----------
    first, last : int
        ISO week labels ``YYYYWW`` with ``first <= last``.

    Returns
    -------
    numpy.ndarray of int64
        The labels, including week 53 where it exists.

    Examples
    --------
    >>> iso_range(200951, 201002).tolist()
    [200951, 200952, 200953, 201001, 201002]
    """
    a = int(iso_to_ordinal(first, argument="first"))
    b = int(iso_to_ordinal(last, argument="last"))
    if b < a:
        raise DataValidationError(
            "last: expected a week on or after `first`; found a week before it. "
            "Hint: swap the two arguments."
        )
    return ordinal_to_iso(np.arange(a, b + 1, dtype=np.int64))

