"""Treatment (mentor) spells: validation, episode merging and the washout rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import DataValidationError
from mentor_impact.registers._validate import as_int_array, missing_mask, positions
from mentor_impact.registers.isoweek import iso_to_ordinal, ordinal_to_iso

if TYPE_CHECKING:
    from mentor_impact.registers.register import WeeklyRegister

__all__ = ["TreatmentSpells", "merge_episodes"]


def merge_episodes(
    group: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    gap: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Label spells with merged-episode ids (vectorised kernel).

    Parameters
    ----------
    group : numpy.ndarray of int64
        Group (person) code of each spell.
    start, end : numpy.ndarray of int64
        Week ordinals, ``end >= start`` (inclusive end).
    gap : int
        Spells are merged when the number of uncovered weeks between them is ``< gap``
        (``gap=0`` merges only overlaps, ``gap=1`` also adjoining spells).

    Returns
    -------
    order : numpy.ndarray of int64
        Spell positions sorted by (group, start).
    episode : numpy.ndarray of int64
        Episode id (0, 1, ...) of each sorted spell; ids increase with (group, start).

    Notes
    -----
    A spell opens a new episode when it belongs to a new group or when
    ``start - max(end of earlier spells of the group) - 1 >= gap``. The running maximum is
    a ``np.maximum.accumulate`` over ends offset by group, so that overlapping and nested
    spells are handled.
    """
    order = np.lexsort((start, group)).astype(np.int64)
    g, s, e = group[order], start[order], end[order]
    if order.size == 0:
        return order, order.copy()
    new_group = np.r_[True, g[1:] != g[:-1]]
    # running max of end within group: offset ends so that groups never mix
    span = int(e.max() - s.min()) + 2
    grp_idx = np.cumsum(new_group) - 1
    shifted = (e - s.min()) + grp_idx * span
    runmax = np.maximum.accumulate(shifted) - grp_idx * span + s.min()
    prev_max = np.r_[np.iinfo(np.int64).min // 2, runmax[:-1]]
    new_ep = new_group | (s - prev_max - 1 >= gap)
    return order, np.cumsum(new_ep) - 1


class TreatmentSpells:
    """Mentor spells: person, start week, end week (inclusive) and weekly hours.

    Parameters
    ----------
    person : array_like
        Person ids (int or str), matching :attr:`WeeklyRegister.persons`.
    start, end : array_like of int
        ISO week labels ``YYYYWW``; ``end`` is inclusive.
    hours : array_like of float, optional
        Registered mentor hours per week (noisy in practice; never used as a dose by the
        library). Missing values are allowed here.
    on_overlap : {"raise", "merge"}, default "raise"
        Overlapping spells of one person raise :class:`DataValidationError`, or are merged
        into one spell (``hours`` become the length-weighted sum, see :meth:`episodes`).

    Attributes
    ----------
    person : numpy.ndarray
    start, end : numpy.ndarray of int64
        ISO labels.
    hours : numpy.ndarray of float64
        ``NaN`` where not given.

    Raises
    ------
    DataValidationError
        Missing ids or weeks, wrong dtypes, invalid ISO weeks, reversed spells
        (``end < start``), overlapping spells (with ``on_overlap="raise"``), negative hours.

    Notes
    -----
    Stored in the given order (after an overlap merge: sorted by person and start).
    Durations are ``end - start + 1`` weeks.

    Examples
    --------
    >>> sp = TreatmentSpells([1, 1], start=[201301, 201306], end=[201303, 201310])
    >>> len(sp.episodes(gap=4))
    1
    """

    def __init__(
        self,
        person: npt.ArrayLike,
        start: npt.ArrayLike,
        end: npt.ArrayLike,
        hours: npt.ArrayLike | None = None,
        *,
        on_overlap: Literal["raise", "merge"] = "raise",
    ) -> None:
        p = np.asarray(person)
        if p.ndim != 1:
            raise DataValidationError(
                f"person: expected a 1-D array of ids; found {p.ndim} dimensions. "
                "Hint: pass one column."
            )
        miss = missing_mask(p)
        if miss.any():
            raise DataValidationError(
                f"person: expected ids without missing values; found {int(miss.sum())} missing "
                f"(rows {positions(miss)}). Hint: drop these rows."
            )
        s_lab = as_int_array(start, "start", what="ISO week labels YYYYWW")
        e_lab = as_int_array(end, "end", what="ISO week labels YYYYWW")
        if not (s_lab.size == e_lab.size == p.size):
            raise DataValidationError(
                f"start, end: expected one value per spell ({p.size}); found {s_lab.size} "
                f"and {e_lab.size}. Hint: pass aligned columns."
            )
        s = iso_to_ordinal(s_lab, argument="start")
        e = iso_to_ordinal(e_lab, argument="end")
        rev = e < s
        if rev.any():
            raise DataValidationError(
                f"spells: expected end >= start; found {int(rev.sum())} reversed spells (rows "
                f"{positions(rev)}). Hint: swap the columns or drop them."
            )
        if hours is None:
            h = np.full(p.size, np.nan)
        else:
            h_arr = np.asarray(pd.to_numeric(pd.Series(np.asarray(hours)), errors="coerce"))
            if h_arr.size != p.size:
                raise DataValidationError(
                    f"hours: expected one value per spell ({p.size}); found {h_arr.size}. "
                    "Hint: pass an aligned column or None."
                )
            h = h_arr.astype(np.float64)
            neg = h < 0
            if neg.any():
                raise DataValidationError(
                    f"hours: expected non-negative weekly hours; found {int(neg.sum())} "
                    f"negative (rows {positions(neg)}). Hint: set them to NaN if unknown."
                )
        self.person = p
        self._s = s
        self._e = e
        self.hours = h
        _, code = np.unique(p, return_inverse=True)
        order, ep = merge_episodes(code.astype(np.int64), s, e, gap=0)
        n_ep = int(ep[-1]) + 1 if ep.size else 0
        if n_ep < p.size:
            if on_overlap == "raise":
                first_of = np.r_[True, ep[1:] != ep[:-1]]
                bad = np.zeros(p.size, dtype=bool)
                bad[order[~first_of]] = True
                raise DataValidationError(
                    f"spells: expected non-overlapping spells per person; found "
                    f"{int(bad.sum())} spells overlapping an earlier one (rows "
                    f"{positions(bad)}). Hint: pass on_overlap='merge' or merge them with "
                    "episodes(gap=0)."
                )
            merged = self._merged(order, ep)
            self.person, self._s, self._e, self.hours = merged

    def _merged(
        self, order: npt.NDArray[np.int64], ep: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
        n_ep = int(ep[-1]) + 1 if ep.size else 0
        s, e = self._s[order], self._e[order]
        first = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if ep.size else ep
        new_s = s[first]
        new_e = np.full(n_ep, np.iinfo(np.int64).min)
        np.maximum.at(new_e, ep, e)
        length = (e - s + 1).astype(np.float64)
        tot = np.bincount(ep, weights=self.hours[order] * length, minlength=n_ep)
        new_h = tot / (new_e - new_s + 1)
        return self.person[order][first], new_s, new_e, new_h

    # ------------------------------------------------------------------ accessors
    @property
    def start(self) -> npt.NDArray[np.int64]:
        """Start weeks as ISO labels ``YYYYWW``."""
        return ordinal_to_iso(self._s)

    @property
    def end(self) -> npt.NDArray[np.int64]:
        """End weeks (inclusive) as ISO labels ``YYYYWW``."""
        return ordinal_to_iso(self._e)

    @property
    def start_ordinal(self) -> npt.NDArray[np.int64]:
        """Start weeks as week ordinals (see :func:`iso_to_ordinal`)."""
        return self._s

    @property
    def end_ordinal(self) -> npt.NDArray[np.int64]:
        """End weeks (inclusive) as week ordinals."""
        return self._e

    @property
    def duration(self) -> npt.NDArray[np.int64]:
        """Spell length in weeks, ``end - start + 1``."""
        return self._e - self._s + 1

    def __len__(self) -> int:
        return int(self._s.size)

    def __repr__(self) -> str:
        return f"TreatmentSpells(n_spells={len(self)}, n_persons={np.unique(self.person).size})"

    def to_frame(self) -> pd.DataFrame:
        """Return the spells as a DataFrame ``person, start, end, hours``.

        Returns
        -------
        pandas.DataFrame
        """
        return pd.DataFrame(
            {"person": self.person, "start": self.start, "end": self.end, "hours": self.hours}
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        person: str = "person",
        start: str = "start",
        end: str = "end",
        hours: str | None = "hours",
        on_overlap: Literal["raise", "merge"] = "raise",
    ) -> TreatmentSpells:
        """Build from a DataFrame with one row per spell.

        Parameters
        ----------
        frame : pandas.DataFrame
        person, start, end : str
            Column names.
        hours : str or None, default "hours"
            Hours column; ignored when absent.
        on_overlap : {"raise", "merge"}, default "raise"

        Returns
        -------
        TreatmentSpells
        """
        for col in (person, start, end):
            if col not in frame.columns:
                raise DataValidationError(
                    f"frame: expected a column {col!r}; found none. Hint: pass person=, "
                    "start=, end= with your column names."
                )
        h = frame[hours].to_numpy() if hours is not None and hours in frame.columns else None
        return cls(
            frame[person].to_numpy(), frame[start], frame[end], h, on_overlap=on_overlap
        )

    def _codes(self) -> npt.NDArray[np.int64]:
        _, code = np.unique(self.person, return_inverse=True)
        return code.astype(np.int64)

    # ------------------------------------------------------------------ rules
    def episodes(self, gap: int = 4) -> TreatmentSpells:
        """Merge spells of one person separated by fewer than ``gap`` uncovered weeks.

        Parameters
        ----------
        gap : int, default 4
            Two consecutive spells form one episode when the number of weeks between them
            (``next.start - previous.end - 1``) is ``< gap``.

        Returns
        -------
        TreatmentSpells
            Episodes sorted by person and start.

        Notes
        -----
        Episode start = first start, end = last end, hours = sum of ``hours × weeks`` of its
        spells divided by the episode length (weeks between spells count as zero hours; an
        unknown ``hours`` makes the episode's hours unknown).
        """
        if gap < 0:
            raise DataValidationError(
                "gap: expected a non-negative number of weeks; found a negative value. "
                "Hint: the METHODS default is 4."
            )
        order, ep = merge_episodes(self._codes(), self._s, self._e, int(gap))
        p, s, e, h = self._merged(order, ep)
        return TreatmentSpells._trusted(p, s, e, h)

    @classmethod
    def _trusted(
        cls,
        person: npt.NDArray[Any],
        s: npt.NDArray[np.int64],
        e: npt.NDArray[np.int64],
        hours: npt.NDArray[np.float64],
    ) -> TreatmentSpells:
        new = object.__new__(cls)
        new.person, new._s, new._e, new.hours = person, s, e, hours
        return new

    def washout_ok(
        self, weeks: int = 52, *, observed_from: int | None = None
    ) -> npt.NDArray[np.bool_]:
        """Flag spells that satisfy the washout (new-user) rule.

        Parameters
        ----------
        weeks : int, default 52
            A spell passes when the person had no spell week in the ``weeks`` weeks before
            its start.
        observed_from : int, optional
            ISO label of the first week in which spells are recorded. Spells starting fewer
            than ``weeks`` weeks after it cannot be checked and fail the rule.

        Returns
        -------
        numpy.ndarray of bool
            Aligned with the spells' current order.

        Notes
        -----
        Apply it to :meth:`episodes` (merged spells), as the design does: the rule reads
        "no mentor spell in weeks ``s - weeks .. s - 1``", i.e. the latest end of the
        person's earlier spells is ``< s - weeks``.
        """
        order = np.lexsort((self._s, self._codes()))
        g, s, e = self._codes()[order], self._s[order], self._e[order]
        new_group = np.r_[True, g[1:] != g[:-1]] if g.size else np.zeros(0, bool)
        grp_idx = np.cumsum(new_group) - 1
        if s.size:
            span = int(e.max() - s.min()) + 2
            shifted = (e - s.min()) + grp_idx * span
            runmax = np.maximum.accumulate(shifted) - grp_idx * span + s.min()
            prev = np.r_[0, runmax[:-1]]
        else:
            prev = s
        ok_sorted = new_group | (prev < s - weeks)
        if observed_from is not None:
            first = int(iso_to_ordinal(observed_from, argument="observed_from"))
            ok_sorted &= s - weeks >= first
        ok = np.empty(s.size, dtype=bool)
        ok[order] = ok_sorted
        return ok

    def washout(self, weeks: int = 52, *, observed_from: int | None = None) -> TreatmentSpells:
        """Keep only spells passing :meth:`washout_ok`.

        Parameters
        ----------
        weeks : int, default 52
        observed_from : int, optional

        Returns
        -------
        TreatmentSpells
        """
        ok = self.washout_ok(weeks, observed_from=observed_from)
        return TreatmentSpells._trusted(self.person[ok], self._s[ok], self._e[ok], self.hours[ok])

    def subset(self, mask: npt.ArrayLike) -> TreatmentSpells:
        """Return the spells selected by a boolean mask or index array.

        Parameters
        ----------
        mask : array_like of bool or int

        Returns
        -------
        TreatmentSpells
        """
        m = np.asarray(mask)
        return TreatmentSpells._trusted(self.person[m], self._s[m], self._e[m], self.hours[m])

    def locate(
        self, register: WeeklyRegister
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return register rows and start/end columns of the spells.

        Parameters
        ----------
        register : WeeklyRegister

        Returns
        -------
        row, start_col, end_col : numpy.ndarray of int64
            Aligned with the spells' order; ``end_col`` inclusive.

        Raises
        ------
        DataValidationError
            If a person is not in the register or a spell lies (partly) outside its weeks.
        """
        row = register.row(self.person, argument="spells.person")
        first = int(iso_to_ordinal(register.weeks[0]))
        sc, ec = self._s - first, self._e - first
        out = (sc < 0) | (ec >= register.n_weeks)
        if out.any():
            raise DataValidationError(
                f"spells: expected spells inside the register weeks ({int(register.weeks[0])}"
                f"..{int(register.weeks[-1])}); found {int(out.sum())} spells outside (rows "
                f"{positions(out)}). Hint: restrict with spells.subset(...) or build a longer "
                "register."
            )
        return row, sc, ec
