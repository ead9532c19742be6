"""The closed set of weekly states and the dated code → state table (:class:`StateCatalog`)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import ConfigurationError, DataValidationError, DataWarning
from mentor_impact.registers._validate import positions as _positions
from mentor_impact.registers.isoweek import iso_to_ordinal

__all__ = ["DEFAULT_CATALOG_VERSION", "StateCatalog"]

DEFAULT_CATALOG_VERSION = "illustrative-dream-2026.1"

_STATES: tuple[str, ...] = (
    "employed",
    "education",
    "self_support_other",
    "passive_benefit",
    "activation",
    "subsidised_job",
    "health_benefit",
    "retired_disabled",
    "dead_emigrated",
    "unknown",
)

_DEFAULT_UNIONS: dict[str, tuple[str, ...]] = {
    "employment_or_education": ("employed", "education"),
    "self_support": ("employed", "education", "self_support_other"),
    "on_benefit": (
        "passive_benefit",
        "activation",
        "subsidised_job",
        "health_benefit",
        "retired_disabled",
    ),
    "cash_benefit": ("passive_benefit", "activation"),
}

# (first code, last code, state, label, valid_from, valid_to) -- ILLUSTRATIVE, see docstring.
_DEFAULT_ROWS: tuple[tuple[int, int, str, str, int | None, int | None], ...] = (
    (0, 0, "self_support_other", "empty DREAM week (no benefit), no employment record", None, None),
    (111, 115, "passive_benefit", "unemployment insurance benefit, passive", None, None),
    (121, 121, "self_support_other", "holiday pay (feriedagpenge), not a benefit", None, None),
    (130, 139, "activation", "activation of insured unemployed", None, None),
    (211, 214, "passive_benefit", "cash benefit (kontanthjælp), passive", None, None),
    (215, 216, "passive_benefit", "education benefit (uddannelseshjælp), passive", 201401, None),
    (217, 217, "passive_benefit", "integration benefit (integrationsydelse)", 201536, None),
    (230, 239, "activation", "activation of cash/education benefit recipients", None, None),
    (411, 413, "passive_benefit", "unemployment allowance for flex-job candidates", None, None),
    (511, 519, "subsidised_job", "wage subsidy / flex job", None, None),
    (621, 629, "retired_disabled", "voluntary early retirement (efterløn)", None, None),
    (651, 652, "education", "student grant (SU)", None, None),
    (661, 661, "education", "student grant, other", None, None),
    (711, 719, "health_benefit", "sickness benefit (sygedagpenge)", None, None),
    (750, 750, "health_benefit", "rehabilitation", None, None),
    (753, 758, "health_benefit", "rehabilitation / resource course", None, None),
    (760, 760, "health_benefit", "health-related benefit", None, None),
    (763, 768, "health_benefit", "health-related benefit", None, None),
    (771, 771, "health_benefit", "health-related benefit", None, None),
    (775, 775, "health_benefit", "health-related benefit", None, None),
    (781, 781, "retired_disabled", "disability pension (førtidspension)", None, None),
    (783, 783, "retired_disabled", "disability pension (førtidspension)", None, None),
    (785, 785, "retired_disabled", "disability pension (førtidspension)", None, None),
    (810, 810, "health_benefit", "health-related benefit", None, None),
    (813, 818, "health_benefit", "health-related benefit", None, None),
    (881, 881, "self_support_other", "not a benefit recipient", None, None),
    (890, 890, "health_benefit", "health-related benefit", None, None),
    (893, 893, "health_benefit", "health-related benefit", None, None),
    (997, 997, "dead_emigrated", "emigrated (synthetic companion code, CPR)", None, None),
    (998, 998, "dead_emigrated", "dead (synthetic companion code, CPR)", None, None),
    (999, 999, "unknown", "unknown / not classifiable", None, None),
    (1001, 1001, "employed", "ordinary employment (synthetic: empty week + eIndkomst)", None, None),
    (1002, 1002, "education", "education without SU (synthetic: KOTRE enrolment)", None, None),
)


class StateCatalog:
    """Closed set of weekly states and a dated, versioned table mapping raw codes to states.

    Parameters
    ----------
    table : pandas.DataFrame or mapping of int to str
        One row per (code, validity period): columns ``code`` (non-negative int), ``state``
        (one of :attr:`STATES`) and optionally ``valid_from`` / ``valid_to`` (ISO week
        labels ``YYYYWW``, inclusive; missing means open-ended) and ``label`` (free text).
        A plain mapping ``{code: state}`` is valid in all weeks.
    version : str, default "custom"
        Version tag of the table, stored in results for provenance.
    unions : mapping of str to sequence of str, optional
        Derived outcomes declared as unions of states. Defaults to
        ``employment_or_education``, ``self_support``, ``on_benefit`` and ``cash_benefit``
        (see Notes).

    Attributes
    ----------
    STATES : tuple of str
        The closed state set; the state id is the position (stored as ``int8``).
    version : str
        The version tag.

    Raises
    ------
    ConfigurationError
        If a state is not in :attr:`STATES`, a code is negative, a validity period is
        reversed, or one code maps to two different states in overlapping periods.

    Notes
    -----
    * State ids are positions in :attr:`STATES`: ``employed`` = 0, ..., ``unknown`` = 9.
    * Unions (derived outcomes, METHODS §3): ``employment_or_education`` = employed or
      education; ``self_support`` = employed, education or self_support_other (SU counted as
      self-support, as in the Danish labour-market convention; declare your own union to
      change this); ``on_benefit`` = passive_benefit, activation, subsidised_job,
      health_benefit or retired_disabled; ``cash_benefit`` = passive_benefit or activation
      (the eligible states of the mentor design).
    * Validity periods are inclusive ISO weeks. A code that is not valid in a week is treated
      exactly like a code missing from the table (see :meth:`map_codes`).

    Examples
    --------
    >>> cat = StateCatalog.default()
    >>> cat.state_id("activation")
    4
    >>> cat.members("employment_or_education")
    (0, 1)
    """

    STATES: tuple[str, ...] = _STATES

    def __init__(
        self,
        table: pd.DataFrame | Mapping[int, str],
        *,
        version: str = "custom",
        unions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if isinstance(table, Mapping):
            table = pd.DataFrame({"code": list(table.keys()), "state": list(table.values())})
        if not isinstance(table, pd.DataFrame):
            raise ConfigurationError(
                f"table: expected a DataFrame with columns code, state or a mapping "
                f"code -> state; found {type(table).__name__}. Hint: see StateCatalog.default()."
            )
        missing = [c for c in ("code", "state") if c not in table.columns]
        if missing:
            raise ConfigurationError(
                f"table: expected columns code and state; found {len(missing)} missing "
                f"({', '.join(missing)}). Hint: rename the columns."
            )
        t = table.reset_index(drop=True).copy()
        for col in ("valid_from", "valid_to"):
            if col not in t.columns:
                t[col] = pd.NA
        if "label" not in t.columns:
            t["label"] = ""
        code = pd.to_numeric(t["code"], errors="coerce")
        bad = code.isna().to_numpy() | (code.fillna(0).to_numpy() < 0)
        if bad.any() or not np.all(code.fillna(0).to_numpy() == np.round(code.fillna(0))):
            raise ConfigurationError(
                f"table.code: expected non-negative integer codes; found {int(bad.sum())} "
                f"invalid codes (rows {_positions(bad)}). Hint: codes are raw integer "
                "register codes; an empty week is usually code 0."
            )
        t["code"] = code.astype(np.int64)
        unknown_state = ~t["state"].isin(self.STATES).to_numpy()
        if unknown_state.any():
            raise ConfigurationError(
                f"table.state: expected one of {', '.join(self.STATES)}; found "
                f"{int(unknown_state.sum())} rows with another state (rows "
                f"{_positions(unknown_state)}). Hint: map local categories onto the closed set."
            )
        lo = np.full(len(t), np.iinfo(np.int64).min, dtype=np.int64)
        hi = np.full(len(t), np.iinfo(np.int64).max, dtype=np.int64)
        for col, arr in (("valid_from", lo), ("valid_to", hi)):
            have = t[col].notna().to_numpy()
            if have.any():
                arr[have] = iso_to_ordinal(
                    t.loc[have, col].to_numpy().astype(np.int64), argument=f"table.{col}"
                )
        rev = lo > hi
        if rev.any():
            raise ConfigurationError(
                f"table: expected valid_from <= valid_to; found {int(rev.sum())} reversed "
                f"periods (rows {_positions(rev)}). Hint: swap the two columns."
            )
        t["state_id"] = np.array([self.STATES.index(s) for s in t["state"]], dtype=np.int8)
        # conflicts: same code, overlapping periods, different state
        order = np.lexsort((lo, t["code"].to_numpy()))
        c_sorted = t["code"].to_numpy()[order]
        lo_s, hi_s = lo[order], hi[order]
        st_s = t["state_id"].to_numpy()[order]
        same = c_sorted[1:] == c_sorted[:-1]
        overlap = same & (lo_s[1:] <= hi_s[:-1])
        conflict = overlap & (st_s[1:] != st_s[:-1])
        if conflict.any():
            rows = np.zeros(len(t), dtype=bool)
            rows[order[1:][conflict]] = True
            raise ConfigurationError(
                f"table: expected each code to map to one state at any week; found "
                f"{int(conflict.sum())} overlapping periods with different states (rows "
                f"{_positions(rows)}). Hint: end the old period the week before the new one."
            )
        self._table = t
        self._lo = lo
        self._hi = hi
        self.version = str(version)
        uni = dict(_DEFAULT_UNIONS if unions is None else unions)
        for name, members in uni.items():
            bad_members = [m for m in members if m not in self.STATES]
            if bad_members or name in self.STATES:
                raise ConfigurationError(
                    f"unions: expected unions of known states with new names; found "
                    f"{len(bad_members)} unknown members in union {name!r}. Hint: use names "
                    f"from StateCatalog.STATES."
                )
        self._unions = {k: tuple(v) for k, v in uni.items()}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def default(cls) -> StateCatalog:
        """Return the illustrative DREAM-like default catalogue.

        Returns
        -------
        StateCatalog
            Version :data:`DEFAULT_CATALOG_VERSION`.

        Notes
        -----
        **Illustrative configuration, not the official code list.** The code families follow
        the public descriptions in METHODS §2.1 (e.g. the BMC Public Health 2023 grouping of
        health-related codes 750, 753–758, 760, 763–768, 771, 775, 781, 783, 785, 810,
        813–818, 890, 893; SU = 651/652; empty week and 881 = no benefit), but exact code
        numbers and their validity periods must be checked against STAR's official DREAM code
        list for the DREAM version in use before any real analysis. Codes 997/998 (emigrated,
        dead) and 1001/1002 (ordinary employment from eIndkomst, education from KOTRE) are
        synthetic companion codes of this library, used by the simulator. The education
        benefit codes 215–216 are valid from 2014-W01 (2014 cash-benefit reform) and 217 from
        2015-W36, to exercise dated mapping.
        """
        rows = []
        for first, last, state, label, vf, vt in _DEFAULT_ROWS:
            for code in range(first, last + 1):
                rows.append((code, state, label, vf, vt))
        table = pd.DataFrame(rows, columns=["code", "state", "label", "valid_from", "valid_to"])
        table["valid_from"] = table["valid_from"].astype("Int64")
        table["valid_to"] = table["valid_to"].astype("Int64")
        return cls(table, version=DEFAULT_CATALOG_VERSION)

    # ------------------------------------------------------------------ queries
    @property
    def table(self) -> pd.DataFrame:
        """A copy of the code table: code, state, label, valid_from, valid_to (DataFrame)."""
        return self._table.drop(columns="state_id").copy()

    @property
    def unions(self) -> dict[str, tuple[str, ...]]:
        """Derived outcomes as unions of state names (dict of str to tuple of str)."""
        return dict(self._unions)

    @property
    def names(self) -> tuple[str, ...]:
        """Every state and union name accepted by :meth:`members` (tuple of str)."""
        return self.STATES + tuple(self._unions)

    def state_id(self, name: str) -> int:
        """Return the integer id (position in :attr:`STATES`) of a state.

        Parameters
        ----------
        name : str
            A state name.

        Returns
        -------
        int
            The state id.
        """
        if name not in self.STATES:
            raise ConfigurationError(
                f"name: expected one of the states {', '.join(self.STATES)}; found an unknown "
                "name. Hint: unions are resolved with members()."
            )
        return self.STATES.index(name)

    def members(self, name: str) -> tuple[int, ...]:
        """Return the state ids making up a state or a union.

        Parameters
        ----------
        name : str
            A state name or a union name (see :attr:`unions`).

        Returns
        -------
        tuple of int
            Sorted state ids.
        """
        if name in self.STATES:
            return (self.STATES.index(name),)
        if name in self._unions:
            return tuple(sorted(self.STATES.index(s) for s in self._unions[name]))
        raise ConfigurationError(
            f"name: expected a state or union ({', '.join(self.names)}); found an unknown "
            "name. Hint: declare new unions with StateCatalog(..., unions=...)."
        )

    def state_mask(self, name: str) -> npt.NDArray[np.bool_]:
        """Return a boolean lookup over state ids that is true for the members of ``name``.

        Parameters
        ----------
        name : str
            A state or union name.

        Returns
        -------
        numpy.ndarray of bool, shape (len(STATES),)
        """
        mask = np.zeros(len(self.STATES), dtype=bool)
        mask[list(self.members(name))] = True
        return mask

    def codes_for(self, state: str) -> npt.NDArray[np.int64]:
        """Return the distinct codes that map to ``state`` in some period.

        Parameters
        ----------
        state : str
            A state name.

        Returns
        -------
        numpy.ndarray of int64
        """
        sid = self.state_id(state)
        return np.unique(self._table.loc[self._table["state_id"] == sid, "code"].to_numpy())

    def lookup(self, week: int | None = None, size: int | None = None) -> npt.NDArray[np.int8]:
        """Return the code → state id lookup array valid in one ISO week.

        Parameters
        ----------
        week : int, optional
            ISO week label ``YYYYWW``. ``None`` uses every row regardless of its period
            (only sensible for undated tables).
        size : int, optional
            Length of the lookup array (at least the largest code + 1).

        Returns
        -------
        numpy.ndarray of int8
            ``lut[code]`` is the state id, or ``-1`` where the code is not in the table (or
            not valid in ``week``).
        """
        codes = self._table["code"].to_numpy()
        n = int(codes.max()) + 1 if codes.size else 1
        size = max(n, size or 0)
        lut = np.full(size, -1, dtype=np.int8)
        if week is None:
            keep = np.ones(codes.size, dtype=bool)
        else:
            o = int(iso_to_ordinal(week, argument="week"))
            keep = (self._lo <= o) & (self._hi >= o)
        lut[codes[keep]] = self._table["state_id"].to_numpy()[keep]
        return lut

    def _segments(self, ordinals: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
        """Split consecutive register columns into runs with one constant mapping."""
        cuts = np.concatenate([self._lo, self._hi + 1])
        cuts = cuts[(cuts > ordinals[0]) & (cuts <= ordinals[-1])]
        cols = np.unique(np.searchsorted(ordinals, cuts))
        bounds = [0, *[int(c) for c in cols], ordinals.size]
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    def map_codes(
        self,
        codes: npt.NDArray[np.integer],
        weeks: npt.ArrayLike,
        *,
        on_unknown: Literal["raise", "unknown"] = "raise",
        argument: str = "codes",
    ) -> npt.NDArray[np.int8]:
        """Map an ``n × W`` code matrix to the ``int8`` state matrix.

        Parameters
        ----------
        codes : numpy.ndarray of unsigned int, shape (n, W)
            Raw codes, one column per consecutive ISO week.
        weeks : array_like of int, shape (W,)
            ISO week labels of the columns (consecutive).
        on_unknown : {"raise", "unknown"}, default "raise"
            What to do with codes missing from the table (or not valid in their week):
            raise :class:`DataValidationError`, or map them to state ``unknown`` and issue a
            :class:`DataWarning` with the counts.
        argument : str, default "codes"
            Argument name used in messages.

        Returns
        -------
        numpy.ndarray of int8, shape (n, W)
            State ids.

        Notes
        -----
        One ``np.take`` pass through a lookup array per run of weeks with a constant mapping
        (a dated table with k change dates gives at most 2k + 1 runs).
        """
        ordinals = iso_to_ordinal(np.asarray(weeks), argument="weeks")
        if codes.dtype.itemsize <= 2 and codes.dtype.kind == "u":
            size = 1 << (8 * codes.dtype.itemsize)
        else:
            size = int(codes.max()) + 1 if codes.size else 1
        segments = self._segments(ordinals)
        labels = np.asarray(weeks, dtype=np.int64)
        if len(segments) == 1:
            states = np.take(self.lookup(int(labels[0]), size), codes)
        else:
            states = np.empty(codes.shape, dtype=np.int8)
            for a, b in segments:
                states[:, a:b] = np.take(self.lookup(int(labels[a]), size), codes[:, a:b])
        if states.size and states.min() < 0:
            bad = states < 0
            n_bad = int(bad.sum())
            rows = bad.any(axis=1)
            cols = bad.any(axis=0)
            if on_unknown == "raise":
                raise DataValidationError(
                    f"{argument}: expected codes present in catalogue {self.version!r} for their "
                    f"week; found {n_bad} person-weeks with unknown codes in {int(rows.sum())} "
                    f"rows (rows {_positions(rows)}; columns {_positions(cols)}). Hint: extend "
                    "the catalogue (StateCatalog(table=...)) or pass on_unknown='unknown' to "
                    "map them to state 'unknown'."
                )
            warnings.warn(
                f"{argument}: {n_bad} person-weeks in {int(rows.sum())} rows had codes missing "
                f"from catalogue {self.version!r} and were mapped to state 'unknown' (rows "
                f"{_positions(rows)}).",
                DataWarning,
                stacklevel=3,
            )
            states[bad] = self.STATES.index("unknown")
        return states

    def describe(self) -> pd.DataFrame:
        """Return one row per state with its number of codes and the union memberships.

        Returns
        -------
        pandas.DataFrame
            Columns ``state``, ``state_id``, ``n_codes``, ``unions``.
        """
        counts = self._table.groupby("state")["code"].nunique()
        return pd.DataFrame(
            {
                "state": list(self.STATES),
                "state_id": np.arange(len(self.STATES)),
                "n_codes": [int(counts.get(s, 0)) for s in self.STATES],
                "unions": [
                    ", ".join(u for u, m in self._unions.items() if s in m) for s in self.STATES
                ],
            }
        )

    def __repr__(self) -> str:
        return (
            f"StateCatalog(version={self.version!r}, codes={self._table['code'].nunique()}, "
            f"states={len(self.STATES)}, unions={len(self._unions)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateCatalog):
            return NotImplemented
        cols = ["code", "state", "valid_from", "valid_to"]
        return (
            self.version == other.version
            and self._unions == other._unions
            and self._table[cols].astype(str).equals(other._table[cols].astype(str))
        )

    __hash__ = None  # type: ignore[assignment]

