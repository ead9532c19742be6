"""The weekly register: an ``n × W`` matrix of raw codes over consecutive ISO weeks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import DataValidationError
from mentor_impact.registers._validate import as_int_array, missing_mask, positions
from mentor_impact.registers.catalog import StateCatalog
from mentor_impact.registers.isoweek import iso_to_ordinal, ordinal_to_iso

__all__ = ["WeeklyRegister", "parse_week_column"]

_WEEK_COL = re.compile(r"^(?:y_?|w)?(\d{4}|\d{6})$")
_CHUNK_CELLS = 1 << 21  # person-weeks per chunk in the prefix-sum kernel (cache-sized)

OnUnknown = Literal["raise", "unknown"]
Layout = Literal["wide", "long", "spells"]


def parse_week_column(name: Any) -> int | None:
    """Parse a wide-format column name into an ISO week label, or ``None``.

    Parameters
    ----------
    name : Any
        Column name: ``201301``, ``"201301"``, ``"y_201301"`` or DREAM's ``"y_1301"``
        (two-digit years: 50–99 → 19xx, 00–49 → 20xx).

    Returns
    -------
    int or None
        ``YYYYWW`` or ``None`` if the name is not a week column.
    """
    m = _WEEK_COL.match(str(name))
    if m is None:
        return None
    digits = m.group(1)
    if len(digits) == 4:
        yy, ww = int(digits[:2]), int(digits[2:])
        return (1900 + yy if yy >= 50 else 2000 + yy) * 100 + ww
    return int(digits)


def _codes_dtype(max_code: int) -> type[np.unsignedinteger[Any]]:
    return np.uint16 if max_code < (1 << 16) else np.uint32


def _check_weeks(weeks: Any, argument: str = "weeks") -> tuple[npt.NDArray[np.int64], int]:
    labels = as_int_array(weeks, argument, what="ISO week labels YYYYWW")
    ords = iso_to_ordinal(labels, argument=argument)
    if ords.size == 0:
        raise DataValidationError(
            f"{argument}: expected at least one week; found none. Hint: check the input columns."
        )
    step = np.diff(ords) != 1
    if step.any():
        raise DataValidationError(
            f"{argument}: expected consecutive ISO weeks in increasing order; found "
            f"{int(step.sum())} breaks (positions {positions(np.r_[False, step])}). Hint: add "
            "the missing weeks (with the empty code) or sort the columns."
        )
    return labels, int(ords[0])


def _check_persons(persons: Any, n: int, argument: str = "persons") -> npt.NDArray[Any]:
    p = np.asarray(persons)
    if p.ndim != 1 or p.shape[0] != n:
        raise DataValidationError(
            f"{argument}: expected one id per register row ({n}); found shape {p.shape}. "
            "Hint: pass the person column aligned with the code matrix."
        )
    miss = missing_mask(p)
    if miss.any():
        raise DataValidationError(
            f"{argument}: expected ids without missing values; found {int(miss.sum())} missing "
            f"(rows {positions(miss)}). Hint: drop these rows."
        )
    if p.dtype.kind == "f":
        raise DataValidationError(
            f"{argument}: expected integer or string person ids; found dtype {p.dtype}. "
            "Hint: convert ids with .astype('int64') or .astype(str)."
        )
    order = np.argsort(p, kind="stable")
    sp = p[order]
    dup = np.zeros(n, dtype=bool)
    if n > 1:
        d = sp[1:] == sp[:-1]
        dup[order[1:][d]] = True
    if dup.any():
        raise DataValidationError(
            f"{argument}: expected unique person ids (one row per person); found "
            f"{int(dup.sum())} duplicated rows (rows {positions(dup)}). Hint: aggregate to one "
            "row per person or use from_long(), which checks person-week conflicts."
        )
    return p


def _check_codes(codes: Any, argument: str = "codes") -> npt.NDArray[np.unsignedinteger[Any]]:
    c = np.asarray(codes)
    if c.ndim != 2:
        raise DataValidationError(
            f"{argument}: expected a 2-D (persons × weeks) code matrix; found {c.ndim} "
            "dimensions. Hint: reshape or use from_long()."
        )
    if c.dtype.kind == "u" and c.dtype.itemsize <= 4:
        return c
    if c.dtype.kind == "f":
        miss = np.isnan(c)
        if miss.any():
            rows = miss.any(axis=1)
            raise DataValidationError(
                f"{argument}: expected integer codes in every person-week; found "
                f"{int(miss.sum())} missing values in {int(rows.sum())} rows (rows "
                f"{positions(rows)}). Hint: fill empty weeks with the empty code (0)."
            )
        frac = c != np.round(c)
        if frac.any():
            rows = frac.any(axis=1)
            raise DataValidationError(
                f"{argument}: expected integer codes; found {int(frac.sum())} non-integer "
                f"values in {int(rows.sum())} rows (rows {positions(rows)}). Hint: recode them."
            )
    elif c.dtype.kind not in "iu":
        raise DataValidationError(
            f"{argument}: expected an integer code matrix; found dtype {c.dtype}. Hint: "
            "convert with pd.to_numeric and fill empty weeks with the empty code (0)."
        )
    if c.size == 0:
        return c.astype(np.uint16)
    lo, hi = c.min(), c.max()
    if lo < 0:
        neg = c < 0
        rows = neg.any(axis=1)
        raise DataValidationError(
            f"{argument}: expected non-negative codes; found {int(neg.sum())} negative values "
            f"in {int(rows.sum())} rows (rows {positions(rows)}). Hint: recode them; the empty "
            "week is code 0."
        )
    if hi >= (1 << 32):
        raise DataValidationError(
            f"{argument}: expected codes below 2**32; found larger codes. Hint: recode them."
        )
    return c.astype(_codes_dtype(int(hi)))


def _person_ids(df: pd.DataFrame, person: str) -> npt.NDArray[Any]:
    """Person-id column of a long / spell frame; missing ids are an error."""
    pid = df[person].to_numpy()
    miss = missing_mask(pid)
    if miss.any():
        raise DataValidationError(
            f"data.{person}: expected ids without missing values; found {int(miss.sum())} "
            f"missing (rows {positions(miss)}). Hint: drop these rows."
        )
    return pid


def _check_long_codes(cd: npt.NDArray[np.int64], code: str) -> None:
    """Raise when a code of a long / spell frame is negative."""
    neg = cd < 0
    if neg.any():
        raise DataValidationError(
            f"data.{code}: expected non-negative codes; found {int(neg.sum())} negative "
            f"(rows {positions(neg)}). Hint: recode them."
        )


class WeeklyRegister:
    """Weekly register: raw codes of ``n`` persons over ``W`` consecutive ISO weeks.

    Parameters
    ----------
    codes : array_like of int, shape (n, W)
        Raw register codes (e.g. DREAM benefit codes); stored as ``uint16`` when all codes are
        below 65536, else ``uint32``. An unsigned integer array is stored without copying.
    persons : array_like, shape (n,)
        Unique person ids (int or str), aligned with the rows. Ids are never printed.
    weeks : array_like of int, shape (W,)
        Consecutive ISO week labels ``YYYYWW`` of the columns (week 53 included where it
        exists).
    catalog : StateCatalog, optional
        Code → state table; default :meth:`StateCatalog.default`.
    on_unknown : {"raise", "unknown"}, default "raise"
        Codes missing from the catalogue raise :class:`DataValidationError`, or are mapped to
        state ``unknown`` with a :class:`DataWarning` (see :meth:`StateCatalog.map_codes`).

    Attributes
    ----------
    codes : numpy.ndarray, shape (n, W)
    persons : numpy.ndarray, shape (n,)
    weeks : numpy.ndarray of int64, shape (W,)
    catalog : StateCatalog

    Raises
    ------
    DataValidationError
        Missing values, wrong dtypes, negative codes, duplicated persons, non-consecutive or
        invalid weeks, codes missing from the catalogue (with ``on_unknown="raise"``).

    Notes
    -----
    * Columns are consecutive ISO weeks; :meth:`column` converts labels to column indices.
    * The state matrix is computed (one ``np.take`` pass per catalogue period) at
      construction, which validates the codes, and is cached.
    * :meth:`prefix_sums` returns ``int16`` when ``W < 32767`` (half the memory of int32;
      cast to a wider type before summing over many persons), else ``int32``; they are cached
      per state/union name.
    * Row order is the order given (``from_long``/``from_spells`` sort persons by id).

    Examples
    --------
    >>> reg = WeeklyRegister([[211, 231, 1001]], persons=[7], weeks=[201252, 201301, 201302])
    >>> reg.states().tolist()
    [[3, 4, 0]]
    >>> reg.window_count("cash_benefit", rows=[0], start=[0], stop=[3]).tolist()
    [2]
    """

    def __init__(
        self,
        codes: npt.ArrayLike,
        persons: npt.ArrayLike,
        weeks: npt.ArrayLike,
        *,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> None:
        c = _check_codes(codes)
        labels, first = _check_weeks(weeks)
        if labels.size != c.shape[1]:
            raise DataValidationError(
                f"weeks: expected one label per code column ({c.shape[1]}); found "
                f"{labels.size}. Hint: pass the ISO labels of the columns."
            )
        self.persons = _check_persons(persons, c.shape[0])
        self.codes = c
        self.weeks = labels
        self._first_ordinal = first
        self.catalog = catalog if catalog is not None else StateCatalog.default()
        self._states = self.catalog.map_codes(c, labels, on_unknown=on_unknown)
        self._prefix: dict[tuple[str, str], npt.NDArray[np.integer[Any]]] = {}
        self._row_index: tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None = None

    # ------------------------------------------------------------------ basics
    @property
    def n_persons(self) -> int:
        """Number of persons (rows)."""
        return int(self.codes.shape[0])

    @property
    def n_weeks(self) -> int:
        """Number of weeks (columns)."""
        return int(self.codes.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(n_persons, n_weeks)``."""
        return (self.n_persons, self.n_weeks)

    def __len__(self) -> int:
        return self.n_persons

    def __repr__(self) -> str:
        return (
            f"WeeklyRegister(n_persons={self.n_persons}, n_weeks={self.n_weeks}, "
            f"weeks={int(self.weeks[0])}..{int(self.weeks[-1])}, "
            f"catalog={self.catalog.version!r})"
        )

    def states(self) -> npt.NDArray[np.int8]:
        """Return the ``int8`` state matrix (state ids of :attr:`StateCatalog.STATES`).

        Returns
        -------
        numpy.ndarray of int8, shape (n, W)
            Cached; do not modify in place.
        """
        return self._states

    def indicator(self, name: str) -> npt.NDArray[np.bool_]:
        """Return the boolean matrix of weeks spent in a state or union.

        Parameters
        ----------
        name : str
            State or union name (see :attr:`StateCatalog.unions`).

        Returns
        -------
        numpy.ndarray of bool, shape (n, W)
        """
        return np.take(self.catalog.state_mask(name), self._states)

    def prefix_sums(
        self, name: str, *, dtype: npt.DTypeLike | None = None, cache: bool = True
    ) -> npt.NDArray[np.integer[Any]]:
        """Return per-person cumulative week counts in a state or union.

        Parameters
        ----------
        name : str
            State or union name.
        dtype : numpy dtype, optional
            Integer dtype of the result; default ``int16`` when ``W < 32767`` else ``int32``.
        cache : bool, default True
            Keep the result for later calls (and :meth:`window_count`).

        Returns
        -------
        numpy.ndarray, shape (n, W + 1)
            ``C[:, 0] = 0`` and ``C[:, w + 1]`` = number of weeks in columns ``0..w`` spent
            in ``name``; so weeks in ``[a, b)`` = ``C[:, b] - C[:, a]``.

        Notes
        -----
        Computed in cache-sized row chunks (about 2 million person-weeks): the indicator is
        looked up directly in the result dtype, then ``np.cumsum`` runs along weeks into the
        preallocated result, so the extra memory beyond the result is small.
        """
        dt = np.dtype(dtype) if dtype is not None else self._default_prefix_dtype()
        key = (name, dt.str)
        if key in self._prefix:
            return self._prefix[key]
        lut = self.catalog.state_mask(name).astype(dt)
        n, w = self._states.shape
        out = np.empty((n, w + 1), dtype=dt)
        out[:, 0] = 0
        step = max(1, _CHUNK_CELLS // max(w, 1))
        for a in range(0, n, step):
            b = min(n, a + step)
            np.cumsum(np.take(lut, self._states[a:b]), axis=1, out=out[a:b, 1:])
        if cache:
            self._prefix[key] = out
        return out

    def _default_prefix_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int16) if self.n_weeks < 32767 else np.dtype(np.int32)

    def clear_cache(self) -> None:
        """Drop cached prefix sums (the state matrix is kept)."""
        self._prefix.clear()

    def window_count(
        self,
        name: str,
        rows: npt.ArrayLike,
        start: npt.ArrayLike,
        stop: npt.ArrayLike,
    ) -> npt.NDArray[np.int32]:
        """Count weeks in ``name`` within column windows ``[start, stop)``, in O(1) each.

        Parameters
        ----------
        name : str
            State or union name.
        rows, start, stop : array_like of int
            Register rows and column bounds (broadcast together). Bounds are clipped to
            ``[0, W]``; empty or reversed windows count 0.

        Returns
        -------
        numpy.ndarray of int32
            Counts, broadcast shape of the inputs.
        """
        c = self.prefix_sums(name)
        r = np.asarray(rows, dtype=np.int64)
        w = self.n_weeks
        a = np.clip(np.asarray(start, dtype=np.int64), 0, w)
        b = np.clip(np.asarray(stop, dtype=np.int64), 0, w)
        b = np.maximum(a, b)
        if r.size and (r.min() < 0 or r.max() >= self.n_persons):
            bad = (r < 0) | (r >= self.n_persons)
            raise DataValidationError(
                f"rows: expected register rows in 0..{self.n_persons - 1}; found "
                f"{int(bad.sum())} outside (positions {positions(bad.ravel())}). Hint: map "
                "person ids to rows with WeeklyRegister.row()."
            )
        return c[r, b].astype(np.int32) - c[r, a].astype(np.int32)

    def column(self, labels: npt.ArrayLike, *, argument: str = "labels") -> npt.NDArray[np.int64]:
        """Convert ISO week labels to column indices.

        Parameters
        ----------
        labels : array_like of int
            ISO week labels ``YYYYWW``.
        argument : str, default "labels"
            Name used in error messages.

        Returns
        -------
        numpy.ndarray of int64

        Raises
        ------
        DataValidationError
            If a week lies outside the register.
        """
        col = iso_to_ordinal(labels, argument=argument) - self._first_ordinal
        out = (col < 0) | (col >= self.n_weeks)
        if np.any(out):
            raise DataValidationError(
                f"{argument}: expected weeks inside the register ({int(self.weeks[0])}.."
                f"{int(self.weeks[-1])}); found {int(np.sum(out))} outside (positions "
                f"{positions(np.ravel(out))}). Hint: restrict the input to the register period "
                "or build a longer register."
            )
        return col

    def row(self, persons: npt.ArrayLike, *, argument: str = "persons") -> npt.NDArray[np.int64]:
        """Return the register rows of the given person ids.

        Parameters
        ----------
        persons : array_like
            Person ids.
        argument : str, default "persons"
            Name used in error messages.

        Returns
        -------
        numpy.ndarray of int64

        Raises
        ------
        DataValidationError
            If an id is not in the register (positions reported, ids never shown).
        """
        if self._row_index is None:
            order = np.argsort(self.persons, kind="stable")
            self._row_index = (self.persons[order], order.astype(np.int64))
        keys, order = self._row_index
        p = np.asarray(persons)
        try:
            pos = np.searchsorted(keys, p)
        except TypeError:
            raise DataValidationError(
                f"{argument}: expected ids of the register's type ({keys.dtype}); found dtype "
                f"{p.dtype}. Hint: convert the ids to the same type."
            ) from None
        pos_c = np.minimum(pos, max(keys.size - 1, 0))
        found = (pos < keys.size) & (keys[pos_c] == p) if keys.size else np.zeros(p.shape, bool)
        if not np.all(found):
            miss = ~np.asarray(found)
            raise DataValidationError(
                f"{argument}: expected persons present in the register; found {int(miss.sum())} "
                f"rows with unknown persons (rows {positions(miss.ravel())}). Hint: restrict to "
                "persons in the register or add them to it."
            )
        return order[pos_c]

    def subset(self, rows: npt.ArrayLike) -> WeeklyRegister:
        """Return a register with the given rows (states recomputed for the subset).

        Parameters
        ----------
        rows : array_like of int or bool
            Row indices or a boolean mask.

        Returns
        -------
        WeeklyRegister
        """
        r = np.asarray(rows)
        new = object.__new__(WeeklyRegister)
        new.codes = self.codes[r]
        new.persons = self.persons[r]
        new.weeks = self.weeks
        new._first_ordinal = self._first_ordinal
        new.catalog = self.catalog
        new._states = self._states[r]
        new._prefix = {}
        new._row_index = None
        return new

    def equals(self, other: WeeklyRegister) -> bool:
        """Return whether two registers hold the same persons, weeks and codes.

        Parameters
        ----------
        other : WeeklyRegister

        Returns
        -------
        bool
        """
        return (
            self.shape == other.shape
            and np.array_equal(self.weeks, other.weeks)
            and np.array_equal(self.persons, other.persons)
            and np.array_equal(self.codes, other.codes)
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_wide(
        cls,
        data: pd.DataFrame | npt.ArrayLike,
        persons: npt.ArrayLike | None = None,
        weeks: npt.ArrayLike | None = None,
        *,
        person_column: str = "person",
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Build from wide data: one row per person, one column per week.

        Parameters
        ----------
        data : pandas.DataFrame or array_like, shape (n, W)
            A DataFrame with a person column and week columns named ``YYYYWW``,
            ``y_YYYYWW`` or DREAM's ``y_YYWW`` (other columns are ignored), or a code matrix.
        persons, weeks : array_like, optional
            Required with a matrix; ignored (taken from the frame) with a DataFrame.
        person_column : str, default "person"
            Person id column of a DataFrame.
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
        """
        if isinstance(data, pd.DataFrame):
            if person_column not in data.columns:
                raise DataValidationError(
                    f"data: expected a person column {person_column!r}; found none among "
                    f"{data.shape[1]} columns. Hint: pass person_column=..."
                )
            parsed = [(parse_week_column(c), c) for c in data.columns if c != person_column]
            cols: list[tuple[int, Any]] = [(w, c) for w, c in parsed if w is not None]
            if not cols:
                raise DataValidationError(
                    "data: expected week columns named YYYYWW, y_YYYYWW or y_YYWW; found none. "
                    "Hint: rename the columns."
                )
            cols.sort(key=lambda t: t[0])
            frame = data[[c for _, c in cols]]
            dts = frame.dtypes
            if any(isinstance(d, pd.api.extensions.ExtensionDtype) for d in dts):
                miss = frame.isna().to_numpy()
                if miss.any():
                    rows = miss.any(axis=1)
                    raise DataValidationError(
                        f"data: expected integer codes in every person-week; found "
                        f"{int(miss.sum())} missing values in {int(rows.sum())} rows (rows "
                        f"{positions(rows)}). Hint: fill empty weeks with the empty code (0)."
                    )
                frame = frame.astype(np.int64)
            return cls(
                frame.to_numpy(),
                data[person_column].to_numpy(),
                [w for w, _ in cols],
                catalog=catalog,
                on_unknown=on_unknown,
            )
        if persons is None or weeks is None:
            raise DataValidationError(
                "persons, weeks: expected both with a code matrix; found at least one missing. "
                "Hint: pass persons=... and weeks=..., or a DataFrame."
            )
        return cls(data, persons, weeks, catalog=catalog, on_unknown=on_unknown)

    @classmethod
    def from_long(
        cls,
        data: pd.DataFrame | Mapping[str, npt.ArrayLike],
        *,
        person: str = "person",
        week: str = "week",
        code: str = "code",
        weeks: npt.ArrayLike | None = None,
        fill_code: int = 0,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Build from long data: one row per (person, week, code).

        Parameters
        ----------
        data : pandas.DataFrame or mapping of column name to array
            Long table.
        person, week, code : str
            Column names.
        weeks : array_like of int, optional
            Consecutive ISO labels of the register columns; default from the first to the
            last week in the data.
        fill_code : int, default 0
            Code for person-weeks absent from the data (0 = DREAM's empty week).
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
            Rows sorted by person id.

        Raises
        ------
        DataValidationError
            Missing values, invalid weeks, weeks outside ``weeks``, or duplicated person-weeks
            with conflicting codes. Exact duplicates are dropped silently.
        """
        df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
        for name in (person, week, code):
            if name not in df.columns:
                raise DataValidationError(
                    f"data: expected a column {name!r}; found none. Hint: pass person=, week=, "
                    "code= with your column names."
                )
        pid = _person_ids(df, person)
        wk = as_int_array(df[week], f"data.{week}", what="ISO week labels YYYYWW")
        cd = as_int_array(df[code], f"data.{code}", what="register codes")
        _check_long_codes(cd, code)
        ords = iso_to_ordinal(wk, argument=f"data.{week}")
        if weeks is None:
            if ords.size == 0:
                raise DataValidationError(
                    "data: expected at least one row; found none. Hint: pass weeks=... and "
                    "persons through a wide matrix for an empty register."
                )
            labels = ordinal_to_iso(np.arange(ords.min(), ords.max() + 1))
        else:
            labels, _ = _check_weeks(weeks)
        first = int(iso_to_ordinal(labels[0]))
        col = ords - first
        out = (col < 0) | (col >= labels.size)
        if out.any():
            raise DataValidationError(
                f"data.{week}: expected weeks inside {int(labels[0])}..{int(labels[-1])}; found "
                f"{int(out.sum())} rows outside (rows {positions(out)}). Hint: widen weeks= or "
                "drop these rows."
            )
        uniq, row = np.unique(pid, return_inverse=True)
        w = labels.size
        key = row.astype(np.int64) * w + col
        order = np.argsort(key, kind="stable")
        ks, cs = key[order], cd[order]
        same = ks[1:] == ks[:-1]
        conflict = same & (cs[1:] != cs[:-1])
        if conflict.any():
            bad = np.zeros(key.size, dtype=bool)
            bad[order[1:][conflict]] = True
            raise DataValidationError(
                f"data: expected one code per person-week; found {int(conflict.sum())} "
                f"duplicated person-weeks with conflicting codes (rows {positions(bad)}). Hint: "
                "apply the register's priority rule (one code per week) before loading."
            )
        max_code = int(max(cd.max() if cd.size else 0, fill_code))
        codes = np.full((uniq.size, w), fill_code, dtype=_codes_dtype(max_code))
        codes.ravel()[key] = cd
        return cls(codes, uniq, labels, catalog=catalog, on_unknown=on_unknown)

    @classmethod
    def from_spells(
        cls,
        data: pd.DataFrame | Mapping[str, npt.ArrayLike],
        *,
        person: str = "person",
        start: str = "start",
        end: str = "end",
        code: str = "code",
        weeks: npt.ArrayLike | None = None,
        fill_code: int = 0,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Build from spell data: one row per (person, start, end, code), end inclusive.

        Parameters
        ----------
        data : pandas.DataFrame or mapping of column name to array
            Spell table with ISO week labels.
        person, start, end, code : str
            Column names.
        weeks : array_like of int, optional
            Register columns; default from the earliest start to the latest end.
        fill_code : int, default 0
            Code for weeks not covered by any spell.
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
            Rows sorted by person id.

        Raises
        ------
        DataValidationError
            Missing values, reversed spells (end < start), overlapping spells of one person,
            spells outside ``weeks``.
        """
        df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
        for col in (person, start, end, code):
            if col not in df.columns:
                raise DataValidationError(
                    f"data: expected a column {col!r}; found none. Hint: pass person=, start=, "
                    "end=, code= with your column names."
                )
        pid = _person_ids(df, person)
        s = iso_to_ordinal(
            as_int_array(df[start], f"data.{start}", what="ISO week labels YYYYWW"),
            argument=f"data.{start}",
        )
        e = iso_to_ordinal(
            as_int_array(df[end], f"data.{end}", what="ISO week labels YYYYWW"),
            argument=f"data.{end}",
        )
        cd = as_int_array(df[code], f"data.{code}", what="register codes")
        rev = e < s
        if rev.any():
            raise DataValidationError(
                f"data: expected end >= start; found {int(rev.sum())} reversed spells (rows "
                f"{positions(rev)}). Hint: swap the columns or drop them."
            )
        _check_long_codes(cd, code)
        if weeks is None:
            if s.size == 0:
                raise DataValidationError(
                    "data: expected at least one spell; found none. Hint: pass weeks=..."
                )
            labels = ordinal_to_iso(np.arange(s.min(), e.max() + 1))
        else:
            labels, _ = _check_weeks(weeks)
        first = int(iso_to_ordinal(labels[0]))
        n_w = int(labels.size)
        sc, ec = s - first, e - first
        out = (sc < 0) | (ec >= n_w)
        if out.any():
            raise DataValidationError(
                f"data: expected spells inside {int(labels[0])}..{int(labels[-1])}; found "
                f"{int(out.sum())} spells outside (rows {positions(out)}). Hint: widen weeks= or "
                "clip the spells."
            )
        uniq, row = np.unique(pid, return_inverse=True)
        order = np.lexsort((sc, row))
        r_s, s_s, e_s = row[order], sc[order], ec[order]
        overlap = (r_s[1:] == r_s[:-1]) & (s_s[1:] <= e_s[:-1])
        if overlap.any():
            bad = np.zeros(row.size, dtype=bool)
            bad[order[1:][overlap]] = True
            raise DataValidationError(
                f"data: expected non-overlapping spells per person; found {int(overlap.sum())} "
                f"overlapping spells (rows {positions(bad)}). Hint: apply the register's "
                "priority rule so that each week has one code."
            )
        max_code = int(max(cd.max() if cd.size else 0, fill_code))
        codes = np.full((uniq.size, n_w), fill_code, dtype=_codes_dtype(max_code))
        length = (ec - sc + 1).astype(np.int64)
        total = int(length.sum())
        base = np.repeat(row.astype(np.int64) * n_w + sc - np.cumsum(length) + length, length)
        flat = base + np.arange(total, dtype=np.int64)
        codes.ravel()[flat] = np.repeat(cd, length)
        return cls(codes, uniq, labels, catalog=catalog, on_unknown=on_unknown)

    # ------------------------------------------------------------------ exporters
    def to_wide(self, *, prefix: str = "y_") -> pd.DataFrame:
        """Return the wide table: ``person`` then one column per week named ``y_YYYYWW``.

        Parameters
        ----------
        prefix : str, default "y_"
            Prefix of the week column names.

        Returns
        -------
        pandas.DataFrame
        """
        frame = pd.DataFrame(self.codes, columns=[f"{prefix}{int(w)}" for w in self.weeks])
        frame.insert(0, "person", self.persons)
        return frame

    def to_long(self, *, drop_code: int | None = None) -> pd.DataFrame:
        """Return the long table ``person, week, code`` (person-major order).

        Parameters
        ----------
        drop_code : int, optional
            Leave out person-weeks with this code (e.g. the empty code 0).

        Returns
        -------
        pandas.DataFrame
        """
        n, w = self.shape
        flat = self.codes.ravel()
        keep = slice(None) if drop_code is None else np.flatnonzero(flat != drop_code)
        idx = np.arange(n * w, dtype=np.int64)[keep]
        return pd.DataFrame(
            {
                "person": self.persons[idx // w],
                "week": self.weeks[idx % w],
                "code": flat[keep],
            }
        )

    def to_spells(self) -> pd.DataFrame:
        """Return the run-length encoded spells ``person, start, end, code`` (end inclusive).

        Returns
        -------
        pandas.DataFrame
            One row per maximal run of one code in one person's row.
        """
        n, w = self.shape
        c = self.codes
        change = np.ones((n, w), dtype=bool)
        if w > 1:
            change[:, 1:] = c[:, 1:] != c[:, :-1]
        flat = np.flatnonzero(change.ravel())
        ends = np.r_[flat[1:] - 1, n * w - 1]
        row = flat // w
        # a run never crosses rows because column 0 always starts a run
        return pd.DataFrame(
            {
                "person": self.persons[row],
                "start": self.weeks[flat % w],
                "end": self.weeks[ends % w],
                "code": c.ravel()[flat],
            }
        )

    def to_parquet(self, path: str | PathLike[str], *, layout: Layout = "wide") -> None:
        """Write the register to a parquet file.

        Parameters
        ----------
        path : str or path-like
        layout : {"wide", "long", "spells"}, default "wide"
            Table layout (see :meth:`to_wide`, :meth:`to_long`, :meth:`to_spells`).
        """
        self._frame(layout).to_parquet(path, index=False)

    def to_csv(self, path: str | PathLike[str], *, layout: Layout = "long") -> None:
        """Write the register to a CSV file.

        Parameters
        ----------
        path : str or path-like
        layout : {"wide", "long", "spells"}, default "long"
        """
        self._frame(layout).to_csv(path, index=False)

    def _frame(self, layout: Layout) -> pd.DataFrame:
        if layout == "wide":
            return self.to_wide()
        if layout == "long":
            return self.to_long()
        if layout == "spells":
            return self.to_spells()
        raise DataValidationError(
            "layout: expected 'wide', 'long' or 'spells'; found another value. "
            "Hint: pick one of the three layouts."
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        layout: Layout | None = None,
        weeks: npt.ArrayLike | None = None,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Build from a DataFrame in any of the three layouts (detected from the columns).

        Parameters
        ----------
        frame : pandas.DataFrame
            ``person, week, code`` (long), ``person, start, end, code`` (spells) or ``person``
            plus week columns (wide).
        layout : {"wide", "long", "spells"}, optional
            Force a layout instead of detecting it.
        weeks : array_like of int, optional
            Register columns for the long and spell layouts.
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
        """
        cols = set(frame.columns)
        if layout is None:
            if {"person", "start", "end", "code"} <= cols:
                layout = "spells"
            elif {"person", "week", "code"} <= cols:
                layout = "long"
            else:
                layout = "wide"
        if layout == "long":
            return cls.from_long(frame, weeks=weeks, catalog=catalog, on_unknown=on_unknown)
        if layout == "spells":
            return cls.from_spells(frame, weeks=weeks, catalog=catalog, on_unknown=on_unknown)
        return cls.from_wide(frame, catalog=catalog, on_unknown=on_unknown)

    @classmethod
    def read_parquet(
        cls,
        path: str | PathLike[str],
        *,
        layout: Layout | None = None,
        weeks: npt.ArrayLike | None = None,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Read a register from parquet (layout detected from the columns).

        Parameters
        ----------
        path : str or path-like
        layout : {"wide", "long", "spells"}, optional
        weeks : array_like of int, optional
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
        """
        frame = pd.read_parquet(path)
        return cls.from_frame(
            frame, layout=layout, weeks=weeks, catalog=catalog, on_unknown=on_unknown
        )

    @classmethod
    def read_csv(
        cls,
        path: str | PathLike[str],
        *,
        layout: Layout | None = None,
        weeks: npt.ArrayLike | None = None,
        catalog: StateCatalog | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> WeeklyRegister:
        """Read a register from CSV (layout detected from the columns).

        Parameters
        ----------
        path : str or path-like
        layout : {"wide", "long", "spells"}, optional
        weeks : array_like of int, optional
        catalog : StateCatalog, optional
        on_unknown : {"raise", "unknown"}, default "raise"

        Returns
        -------
        WeeklyRegister
        """
        frame = pd.read_csv(path)
        return cls.from_frame(
            frame, layout=layout, weeks=weeks, catalog=catalog, on_unknown=on_unknown
        )
