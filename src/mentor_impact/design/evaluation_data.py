"""The validated container every estimator takes: :class:`EvaluationData`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._meta import fingerprint
from mentor_impact.exceptions import DataValidationError

__all__ = ["DurationOutcome", "EvaluationData", "encode_covariates"]


def _positions(mask: npt.NDArray[np.bool_], limit: int = 5) -> str:
    """Describe the first row positions where ``mask`` is true (never values)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(int(p)) for p in pos[:limit])
    return f"rows {shown}{', ...' if pos.size > limit else ''}"


@dataclass(frozen=True, eq=False)
class DurationOutcome:
    """A (possibly competing-risk) time-to-event outcome.

    Parameters
    ----------
    time : ndarray of shape (n,)
        Follow-up time (weeks for register data); must be positive.
    event : ndarray of shape (n,) of int
        ``0`` = censored, ``k`` = exit by cause ``k`` (``1..K``).
    causes : tuple of str
        Labels of causes ``1..K`` (``("event",)`` for a single cause).
    """

    time: npt.NDArray[np.float64]
    event: npt.NDArray[np.int64]
    causes: tuple[str, ...] = ("event",)

    def __post_init__(self) -> None:
        time = np.asarray(self.time, dtype=np.float64)
        event = np.asarray(self.event)
        if time.ndim != 1 or event.shape != time.shape:
            raise DataValidationError(
                f"DurationOutcome: expected time and event of equal length; found {time.shape} "
                f"and {event.shape}."
            )
        bad = ~np.isfinite(time)
        if bad.any():
            raise DataValidationError(
                f"time: expected finite durations; found {int(bad.sum())} missing or infinite "
                f"({_positions(bad)}). Hint: censor at the end of follow-up instead."
            )
        if not np.issubdtype(event.dtype, np.integer):
            if not np.all(np.isfinite(event.astype(float))) or np.any(event != np.round(event)):
                raise DataValidationError(
                    "event: expected integer codes (0 = censored, k = cause k); found non-integer "
                    "or missing values."
                )
        event = event.astype(np.int64)
        out = (event < 0) | (event > len(self.causes))
        if out.any():
            raise DataValidationError(
                f"event: expected codes in 0..{len(self.causes)} (0 = censored, causes "
                f"{list(self.causes)}); found {int(out.sum())} outside ({_positions(out)})."
            )
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "causes", tuple(self.causes))

    def take(self, idx: npt.NDArray[Any]) -> DurationOutcome:
        """Return the outcome for rows ``idx`` (a boolean mask or integer positions)."""
        return DurationOutcome(self.time[idx], self.event[idx], self.causes)


def encode_covariates(
    df: pd.DataFrame,
    covariates: Sequence[str],
    *,
    reference_levels: Mapping[str, Any] | None = None,
) -> tuple[npt.NDArray[np.float64], tuple[str, ...], dict[str, list[Any]]]:
    """Encode covariates as a float matrix, with treatment contrasts for categoricals.

    Numeric and boolean columns enter as they are. String, object and categorical columns
    get one indicator per level except the reference level, named like R's model matrix
    (``f"{column}{level}"``, e.g. ``racehispan``). Levels follow the categorical's order,
    else sorted order; the first level is the reference unless ``reference_levels`` names one.

    Parameters
    ----------
    df : pandas.DataFrame
        The data.
    covariates : sequence of str
        Column names, in the order wanted.
    reference_levels : mapping, optional
        ``{column: level}`` overriding the reference level.

    Returns
    -------
    X : ndarray of shape (n, p)
        The encoded matrix.
    names : tuple of str
        Column names of ``X``.
    levels : dict of str to list
        The levels of each categorical column (reference first).

    Raises
    ------
    DataValidationError
        If a column is missing or holds missing values.
    """
    reference_levels = dict(reference_levels or {})
    missing = [c for c in covariates if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"covariates: expected columns of the data frame; {len(missing)} not found: "
            f"{missing}. Hint: check the spelling; available columns number {df.shape[1]}."
        )
    unknown_ref = [c for c in reference_levels if c not in covariates]
    if unknown_ref:
        raise DataValidationError(
            f"reference_levels: names columns that are not covariates: {unknown_ref}."
        )
    blocks: list[npt.NDArray[np.float64]] = []
    names: list[str] = []
    levels: dict[str, list[Any]] = {}
    for col in covariates:
        s = df[col]
        na = s.isna().to_numpy()
        if na.any():
            raise DataValidationError(
                f"covariates: column {col!r} has {int(na.sum())} missing values "
                f"({_positions(na)}). Hint: impute, add a missing-indicator level, or drop those "
                "rows before building the data (and report the count)."
            )
        is_cat = isinstance(s.dtype, pd.CategoricalDtype)
        if is_cat or s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            if is_cat:
                lv = [x for x in s.cat.categories if (s == x).any()]
            else:
                lv = sorted(pd.unique(s).tolist(), key=lambda x: (str(type(x)), x))
            if col in reference_levels:
                ref = reference_levels[col]
                if ref not in lv:
                    raise DataValidationError(
                        f"reference_levels: level for {col!r} is not among its "
                        f"{len(lv)} observed levels."
                    )
                lv = [ref] + [x for x in lv if x != ref]
            levels[col] = lv
            vals = s.to_numpy()
            for level in lv[1:]:
                blocks.append((vals == level).astype(np.float64)[:, None])
                names.append(f"{col}{level}")
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            x = s.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(x)
            if bad.any():
                raise DataValidationError(
                    f"covariates: column {col!r} has {int(bad.sum())} infinite values "
                    f"({_positions(bad)})."
                )
            blocks.append(x[:, None])
            names.append(col)
        else:
            raise DataValidationError(
                f"covariates: column {col!r} has dtype {s.dtype}; expected numeric, boolean, "
                "string or categorical."
            )
    n = len(df)
    x_mat = np.hstack(blocks) if blocks else np.empty((n, 0))
    return np.ascontiguousarray(x_mat, dtype=np.float64), tuple(names), levels


@dataclass(frozen=True, eq=False)
class EvaluationData:
    """Validated evaluation sample: one row per unit, e.g. a (person, start week) pair.

    Every estimator takes an ``EvaluationData``; validation happens here, once. Build one
    with :meth:`mentor_impact.RiskSetDesign.build` (register data) or :meth:`from_frame`
    (a flat table, one row per unit).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Covariates, float64, no missing values.
    covariate_names : tuple of str
        Names of the ``p`` columns of ``X``.
    treatment : ndarray of shape (n,)
        ``1`` treated (starts at ``s``), ``0`` control.
    outcomes : dict of str to ndarray
        Scalar outcomes of shape ``(n,)`` or curves of shape ``(n, H + 1)`` over ``tau``.
    tau : ndarray of shape (H + 1,), optional
        Horizon weeks of the curves (``0..H``).
    weight : ndarray of shape (n,), optional
        Sampling or frequency weights (default 1).
    cluster : ndarray of shape (n,), optional
        Person index (default: the row number, every row its own cluster).
    cell : ndarray of shape (n,), optional
        Exact-matching cell code.
    start_week : ndarray of shape (n,), optional
        Start (or pseudo-start) column ``s`` of each row: its risk set.
    later_start : ndarray of shape (n,), optional
        For controls, weeks from ``s`` to their own later start (``-1`` = none observed).
    durations : dict of str to DurationOutcome
        Time-to-event outcomes.
    at_risk : ndarray of shape (n, ceil((H + 1) / 8)), uint8, optional
        Bit-packed weeks ``s + tau`` in which the row is at risk of a later start (see
        :func:`mentor_impact.design.outcomes.later_start_at_risk`); estimand B uses them.
        :meth:`at_risk_weeks` unpacks them.
    frame : pandas.DataFrame, optional
        Extra per-row columns (subgroups, cell labels, baseline characteristics).
    meta : dict
        Design configuration, sample flow, seeds.

    Attributes
    ----------
    n, n_treated, n_control : int
        Rows, treated rows and control rows.
    fingerprint : str
        Hash of the data (for provenance in results; reveals nothing about values).
    """

    X: npt.NDArray[np.float64]
    covariate_names: tuple[str, ...]
    treatment: npt.NDArray[np.int8]
    outcomes: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    tau: npt.NDArray[np.int64] | None = None
    weight: npt.NDArray[np.float64] | None = None
    cluster: npt.NDArray[np.int64] | None = None
    cell: npt.NDArray[np.int64] | None = None
    start_week: npt.NDArray[np.int64] | None = None
    later_start: npt.NDArray[np.int64] | None = None
    durations: dict[str, DurationOutcome] = field(default_factory=dict)
    frame: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    at_risk: npt.NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.X, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise DataValidationError(f"X: expected a 2-D array; found {x.ndim} dimensions.")
        n = x.shape[0]
        if len(self.covariate_names) != x.shape[1]:
            raise DataValidationError(
                f"covariate_names: expected {x.shape[1]} names (columns of X); "
                f"found {len(self.covariate_names)}."
            )
        bad = np.asarray(~np.isfinite(x).all(axis=1))
        if bad.any():
            raise DataValidationError(
                f"X: expected finite covariates; found {int(bad.sum())} rows with missing or "
                f"infinite values ({_positions(bad)}). Hint: impute or drop them first."
            )
        d = np.asarray(self.treatment)
        if d.shape != (n,):
            raise DataValidationError(
                f"treatment: expected {n} values (one per row of X); found shape {d.shape}."
            )
        dnum = pd.to_numeric(pd.Series(d), errors="coerce").to_numpy(dtype=float)
        nonbin = ~np.isin(dnum, (0.0, 1.0))
        if nonbin.any():
            raise DataValidationError(
                f"treatment: expected binary 0/1 values; found {int(nonbin.sum())} other or "
                f"missing values ({_positions(nonbin)}). Hint: code treated as 1, controls as 0."
            )
        d = dnum.astype(np.int8)
        if n > 0 and (d.sum() == 0 or d.sum() == n):
            which = "treated" if d.sum() == 0 else "control"
            raise DataValidationError(
                f"treatment: expected both arms; found no {which} rows among {n}."
            )
        w = np.ones(n) if self.weight is None else np.asarray(self.weight, dtype=np.float64)
        if w.shape != (n,):
            raise DataValidationError(f"weight: expected {n} values; found shape {w.shape}.")
        badw = ~np.isfinite(w) | (w < 0)
        if badw.any():
            raise DataValidationError(
                f"weight: expected finite non-negative weights; found {int(badw.sum())} invalid "
                f"({_positions(badw)})."
            )
        cl = np.arange(n) if self.cluster is None else np.asarray(self.cluster)
        if cl.shape != (n,):
            raise DataValidationError(f"cluster: expected {n} labels; found shape {cl.shape}.")
        if pd.isna(cl).any():
            m = np.asarray(pd.isna(cl))
            raise DataValidationError(
                f"cluster: found {int(m.sum())} missing labels ({_positions(m)})."
            )
        tau = None if self.tau is None else np.asarray(self.tau, dtype=np.int64)
        outs: dict[str, npt.NDArray[Any]] = {}
        for name, y in self.outcomes.items():
            arr = np.asarray(y)
            if arr.shape[0] != n or arr.ndim not in (1, 2):
                raise DataValidationError(
                    f"outcomes[{name!r}]: expected shape ({n},) or ({n}, H + 1); found {arr.shape}."
                )
            if arr.ndim == 2:
                if tau is None or arr.shape[1] != tau.size:
                    raise DataValidationError(
                        f"outcomes[{name!r}]: a curve needs tau with {arr.shape[1]} horizon "
                        f"weeks; tau has {0 if tau is None else tau.size}."
                    )
            if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
                raise DataValidationError(
                    f"outcomes[{name!r}]: expected numeric values; found dtype {arr.dtype}."
                )
            outs[str(name)] = arr
        for name_, opt in (("cell", self.cell), ("start_week", self.start_week),
                           ("later_start", self.later_start)):
            if opt is not None and np.asarray(opt).shape != (n,):
                raise DataValidationError(
                    f"{name_}: expected {n} values; found shape {np.asarray(opt).shape}."
                )
        for name, dur in self.durations.items():
            if not isinstance(dur, DurationOutcome) or dur.time.shape != (n,):
                raise DataValidationError(
                    f"durations[{name!r}]: expected a DurationOutcome with {n} rows."
                )
        if self.at_risk is not None:
            ar = np.asarray(self.at_risk)
            if ar.ndim != 2 or ar.shape[0] != n or ar.dtype != np.uint8:
                raise DataValidationError(
                    f"at_risk: expected bit-packed uint8 indicators with {n} rows; found "
                    f"shape {ar.shape} and dtype {ar.dtype}. Hint: build it with "
                    "design.outcomes.later_start_at_risk."
                )
        if self.frame is not None and len(self.frame) != n:
            raise DataValidationError(
                f"frame: expected {n} rows; found {len(self.frame)}."
            )
        object.__setattr__(self, "X", np.ascontiguousarray(x))
        object.__setattr__(self, "covariate_names", tuple(str(c) for c in self.covariate_names))
        object.__setattr__(self, "treatment", d)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "cluster", cl)
        object.__setattr__(self, "tau", tau)
        object.__setattr__(self, "outcomes", outs)
        for name_ in ("cell", "start_week", "later_start"):
            v = getattr(self, name_)
            if v is not None:
                object.__setattr__(self, name_, np.asarray(v, dtype=np.int64))
        frame = (
            pd.DataFrame(index=pd.RangeIndex(n))
            if self.frame is None
            else self.frame.reset_index(drop=True)
        )
        object.__setattr__(self, "frame", frame)

    # ------------------------------------------------------------------ basic facts
    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_treated(self) -> int:
        """Number of treated rows."""
        return int(self.treatment.sum())

    @property
    def n_control(self) -> int:
        """Number of control rows."""
        return self.n - self.n_treated

    @property
    def horizon(self) -> int | None:
        """Largest horizon week of the curves, or ``None`` without curves."""
        return None if self.tau is None else int(self.tau.max())

    @property
    def sample_flow(self) -> pd.DataFrame | None:
        """Sample flow table of the design that built the data (``None`` for flat data)."""
        flow = self.meta.get("sample_flow")
        return flow if isinstance(flow, pd.DataFrame) else None

    @property
    def fingerprint(self) -> str:
        """Hash of covariates, treatment, weights and outcomes (reveals no values)."""
        return fingerprint(
            self.X, self.treatment, self.weight, *[self.outcomes[k] for k in sorted(self.outcomes)]
        )

    def __repr__(self) -> str:
        curves = [k for k, v in self.outcomes.items() if v.ndim == 2]
        scalars = [k for k, v in self.outcomes.items() if v.ndim == 1]
        return (
            f"EvaluationData(n={self.n}, treated={self.n_treated}, control={self.n_control}, "
            f"covariates={len(self.covariate_names)}, curves={curves}, scalars={scalars}, "
            f"durations={list(self.durations)})"
        )

    # ------------------------------------------------------------------ access
    def is_curve(self, name: str) -> bool:
        """Whether outcome ``name`` is a curve over ``tau``."""
        return self.outcome(name).ndim == 2

    def outcome(self, name: str) -> npt.NDArray[Any]:
        """Return outcome ``name`` (shape ``(n,)`` or ``(n, H + 1)``).

        Raises
        ------
        DataValidationError
            If no outcome has that name.
        """
        try:
            return self.outcomes[name]
        except KeyError:
            raise DataValidationError(
                f"outcome: expected one of {sorted(self.outcomes)}; got {name!r}."
            ) from None

    def duration(self, name: str) -> DurationOutcome:
        """Return duration outcome ``name``."""
        try:
            return self.durations[name]
        except KeyError:
            raise DataValidationError(
                f"duration: expected one of {sorted(self.durations)}; got {name!r}."
            ) from None

    def column(self, name: str) -> npt.NDArray[Any]:
        """Return a per-row column by name.

        Looks in the covariates, then ``frame``, then the special names ``cell``,
        ``start_week``, ``cluster``, ``weight`` and ``treatment``.
        """
        if name in self.covariate_names:
            return self.X[:, self.covariate_names.index(name)]
        assert self.frame is not None
        if name in self.frame.columns:
            return self.frame[name].to_numpy()
        special = {
            "cell": self.cell,
            "start_week": self.start_week,
            "cluster": self.cluster,
            "weight": self.weight,
            "treatment": self.treatment,
        }
        if name in special and special[name] is not None:
            return np.asarray(special[name])
        assert self.frame is not None
        raise DataValidationError(
            f"column: {name!r} is neither a covariate nor a frame column; covariates number "
            f"{len(self.covariate_names)}, frame columns are {list(self.frame.columns)}."
        )

    # ------------------------------------------------------------------ transformations
    def subset(self, mask: npt.ArrayLike) -> EvaluationData:
        """Return the rows selected by a boolean mask or integer positions.

        Parameters
        ----------
        mask : array-like
            Boolean mask of length ``n`` or integer row positions.

        Returns
        -------
        EvaluationData
            A new container; ``meta["parent_rows"]`` keeps the selected positions.
        """
        m = np.asarray(mask)
        if m.dtype == bool:
            if m.shape != (self.n,):
                raise DataValidationError(
                    f"mask: expected a boolean mask of length {self.n}; found shape {m.shape}."
                )
            idx = np.flatnonzero(m)
        else:
            idx = m.astype(np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= self.n):
                raise DataValidationError(
                    f"mask: expected row positions in 0..{self.n - 1}; found out-of-range ones."
                )

        def take(v: Any) -> Any:
            return None if v is None else np.asarray(v)[idx]

        assert self.frame is not None
        meta = dict(self.meta)
        meta["parent_rows"] = idx
        return dataclasses.replace(
            self,
            X=self.X[idx],
            treatment=self.treatment[idx],
            outcomes={k: v[idx] for k, v in self.outcomes.items()},
            weight=take(self.weight),
            cluster=take(self.cluster),
            cell=take(self.cell),
            start_week=take(self.start_week),
            later_start=take(self.later_start),
            durations={k: v.take(idx) for k, v in self.durations.items()},
            frame=self.frame.iloc[idx].reset_index(drop=True),
            meta=meta,
            at_risk=take(self.at_risk),
        )

    def at_risk_weeks(self, rows: slice | npt.NDArray[np.int64] | None = None
                      ) -> npt.NDArray[np.bool_] | None:
        """Unpack :attr:`at_risk` for some rows.

        Parameters
        ----------
        rows : slice or ndarray of int, optional
            Rows to unpack (default all).

        Returns
        -------
        ndarray of shape (len(rows), H + 1), bool, or None
            ``True`` where week ``s + tau`` is at risk of a later start; ``None`` when the
            data carry no :attr:`at_risk`.
        """
        if self.at_risk is None:
            return None
        k = self.tau.size if self.tau is not None else self.at_risk.shape[1] * 8
        packed = self.at_risk if rows is None else self.at_risk[rows]
        return np.unpackbits(packed, axis=1, count=k).astype(bool)

    def with_weight(self, weight: npt.ArrayLike) -> EvaluationData:
        """Return a copy with other per-row weights (e.g. matching weights)."""
        return dataclasses.replace(self, weight=np.asarray(weight, dtype=np.float64))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        treatment: str,
        outcomes: str | Sequence[str],
        covariates: Sequence[str],
        weights: str | None = None,
        cluster: str | None = None,
        cell: str | Sequence[str] | None = None,
        durations: Mapping[str, tuple[str, str] | tuple[str, str, Sequence[str]]] | None = None,
        frame_columns: Sequence[str] | None = None,
        reference_levels: Mapping[str, Any] | None = None,
    ) -> EvaluationData:
        """Build the container from a flat table, one row per unit.

        Parameters
        ----------
        df : pandas.DataFrame
            The data.
        treatment : str
            Binary (0/1 or boolean) treatment column.
        outcomes : str or sequence of str
            Scalar outcome columns.
        covariates : sequence of str
            Covariate columns; string or categorical ones get treatment contrasts with the
            first level (categorical order, else sorted) as reference, named like R
            (``racehispan``).
        weights : str, optional
            Sampling or frequency weight column.
        cluster : str, optional
            Cluster column (e.g. person id); rows are their own clusters when omitted.
        cell : str or sequence of str, optional
            Column(s) whose combination defines exact-matching cells.
        durations : mapping, optional
            ``{name: (time_col, event_col)}`` or ``{name: (time_col, event_col, causes)}``.
        frame_columns : sequence of str, optional
            Extra columns kept in ``frame`` (subgroups, ids for later joins). Covariate,
            cell and treatment columns are always kept.
        reference_levels : mapping, optional
            ``{column: level}`` reference levels for categorical covariates.

        Returns
        -------
        EvaluationData
            The validated container.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"d": [1, 0, 1, 0], "y": [3.0, 1.0, 4.0, 2.0],
        ...                    "g": ["a", "b", "a", "c"]})
        >>> data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["g"])
        >>> data.covariate_names
        ('gb', 'gc')
        """
        if not isinstance(df, pd.DataFrame):
            raise DataValidationError(
                f"df: expected a pandas DataFrame; got {type(df).__name__}."
            )
        outcome_cols = [outcomes] if isinstance(outcomes, str) else list(outcomes)
        needed = [treatment, *outcome_cols]
        for opt in (weights, cluster):
            if opt is not None:
                needed.append(opt)
        cell_cols = [] if cell is None else ([cell] if isinstance(cell, str) else list(cell))
        needed += cell_cols
        for spec in (durations or {}).values():
            needed += [spec[0], spec[1]]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"df: expected columns {missing} (named as treatment/outcome/weight/cluster/"
                f"cell/duration roles); not found among the {df.shape[1]} columns."
            )
        x, names, levels = encode_covariates(df, covariates, reference_levels=reference_levels)
        outs: dict[str, npt.NDArray[Any]] = {}
        for c in outcome_cols:
            s = df[c]
            if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
                raise DataValidationError(
                    f"outcomes: column {c!r} has dtype {s.dtype}; expected numeric or boolean."
                )
            y = s.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(y)
            if bad.any():
                raise DataValidationError(
                    f"outcomes: column {c!r} has {int(bad.sum())} missing values "
                    f"({_positions(bad)}). Hint: drop or impute them and report the count."
                )
            outs[c] = y
        dur: dict[str, DurationOutcome] = {}
        for name, spec in (durations or {}).items():
            causes = tuple(spec[2]) if len(spec) > 2 else ("event",)  # type: ignore[misc]
            dur[name] = DurationOutcome(
                df[spec[0]].to_numpy(dtype=np.float64), df[spec[1]].to_numpy(), causes
            )
        cell_codes = None
        keep_cols = list(dict.fromkeys([*cell_cols, *(frame_columns or [])]))
        if cell_cols:
            cell_codes = (
                df[cell_cols].astype(str).agg("\x1f".join, axis=1).pipe(pd.factorize)[0]
                if len(cell_cols) > 1
                else pd.factorize(df[cell_cols[0]])[0]
            ).astype(np.int64)
        frame = df[keep_cols].reset_index(drop=True) if keep_cols else None
        cl = None
        if cluster is not None:
            cl = pd.factorize(df[cluster])[0].astype(np.int64)
            if (cl < 0).any():
                m = cl < 0
                raise DataValidationError(
                    f"cluster: column {cluster!r} has {int(m.sum())} missing values "
                    f"({_positions(m)})."
                )
        return cls(
            X=x,
            covariate_names=names,
            treatment=df[treatment].to_numpy(),
            outcomes=outs,
            weight=None if weights is None else df[weights].to_numpy(dtype=np.float64),
            cluster=cl,
            cell=cell_codes,
            durations=dur,
            frame=frame,
            meta={"source": "from_frame", "levels": levels, "treatment": treatment},
        )
