"""The dynamic risk-set design: (person, start week) pairs with covariates and outcomes."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._kernels import design as K
from mentor_impact._rng import SeedLike, as_generator
from mentor_impact.design.covariates import (
    DEFAULT_LAG_GROUPS,
    DEFAULT_YEAR_BINS,
    calendar_of_weeks,
    history_covariates,
)
from mentor_impact.design.evaluation_data import (
    EvaluationData,
    _positions,
    encode_covariates,
)
from mentor_impact.design.outcomes import (
    DEFAULT_STATUS_WEEKS,
    DEFAULT_WINDOWS,
    EXIT_ORIGIN,
    event_time_outcomes,
    later_start_at_risk,
)
from mentor_impact.design.sample_flow import sample_flow_table
from mentor_impact.exceptions import ConfigurationError, DataValidationError

__all__ = ["RiskSetDesign", "true_effects"]

WEEKS_PER_YEAR = 52.1775
_AGE_BANDS = ((18, 30), (30, 40), (40, 50), (50, 65))


def _cat(codes: npt.NDArray[Any], labels: Sequence[str]) -> Any:
    """Return a categorical from integer codes and labels (one byte per row)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64),
                                     categories=pd.Index(list(labels)))


def _frame_column(col: pd.Series) -> Any:
    """Return a baseline column for the design frame (categoricals and text: one byte a row).

    Text columns become categoricals; ``data.column(name)`` still returns the values (an
    object array), as before, while the frame holds codes instead of one Python object per
    row.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.array
    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        try:
            return pd.Categorical(col)
        except TypeError:  # unorderable mixed values: keep them as they are
            return col.to_numpy()
    return col.to_numpy()


def _band_labels(edges: Sequence[int]) -> list[str]:
    out = [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
    return [*out, f"{edges[-1]}+"]


class RiskSetDesign:
    """Dynamic risk-set design for staggered mentor starts (METHODS §4).

    For every start week ``s``, the treated are the persons whose (first eligible) mentor
    episode starts in ``s``; the controls are persons eligible in ``s`` who do not start in
    ``s`` (they may start later), subsampled per risk set with a known probability. Every
    row of the result is a ``(person, s)`` pair with covariates from before ``s``, outcome
    curves over ``tau = 0..H`` and duration outcomes measured from ``s``.

    Parameters
    ----------
    horizon : int, default=156
        ``H``: outcome curves cover ``tau = 0..H`` weeks after ``s``.
    controls_per_treated : float or None, default=10
        Controls sampled per treated row in each risk set. ``None`` together with
        ``control_share=None`` keeps every eligible control.
    control_share : float, optional
        Alternative to ``controls_per_treated``: sample this share of the eligible controls
        of each risk set (``k_s = round(share * N0(s))`` with ``"exact"``); when given it
        takes precedence over ``controls_per_treated``.
    sampling : {"exact", "bernoulli"}, default="exact"
        ``"exact"``: draw ``k_s = round(controls_per_treated * N1(s))`` controls without
        replacement (inclusion probability ``k_s / N0(s)``). ``"bernoulli"``: keep each
        eligible control independently with ``pi_s = min(1, c * N1(s) / N0(s))``.
    target_states : sequence of str, default=("passive_benefit", "activation")
        States that make a person eligible when held in week ``s - 1``.
    washout : int, default=52
        No mentor episode may be active in weeks ``s - washout .. s - 1``.
    episode_gap : int, default=4
        Spells separated by fewer weeks are merged into one episode.
    age_band : (float, float) or None, default=(18, 65)
        Eligible ages ``lo <= age(s) < hi`` (``None`` switches the rule off).
    birth_column : str, default="birth_year"
        Baseline column with the birth year (``YYYY``, taken as ISO week 26) or birth week
        (``YYYYWW``); needed for ``age_band`` and the ``age`` covariate.
    start_weeks : (int, int), optional
        First and last ISO week label allowed for ``s``.
    min_history : int, default=156
        ``s`` must have at least this many register weeks before it (so that the history
        covariates and pre-start curves of years -1..-3 are complete).
    follow_up : {"complete", "censor"}, default="complete"
        ``"complete"``: only start weeks with ``s + H`` inside the register (curves are
        int8). ``"censor"``: all start weeks; weeks after the register end are ``NaN`` in
        float32 curves and durations are censored at the register end.
    starts : {"first", "all"}, default="first"
        ``"first"``: a person is treated at the first eligible episode start only and leaves
        all later risk sets (``S_i`` of METHODS §4.1). ``"all"``: every eligible episode
        start is a treated row (repeat starts after the washout).
    cell_period : {"quarter", "month"}, default="quarter"
        Calendar period of the exact-match cell.
    duration_bands : sequence of int, default=(0, 26, 52, 104, 156)
        Lower edges of the elapsed-benefit-duration bands (weeks) of the exact-match cell.
    outcomes : sequence of str, optional
        States and unions for outcome curves; default all states and unions.
    windows : sequence of (int, int)
        Accumulated-weeks windows, default ``(1, 52), (1, 104), (1, 156), (105, 156)``.
    status_weeks : sequence of int
        Status weeks, default ``26, 52, 104, 156``.
    sustain : int, default=4
        ``L`` of the sustained self-support spell.
    sustained_outcome : str, default="self_support"
        State or union of the sustained-spell duration outcome.
    year_bins : sequence of (int, int)
        History bins in years before ``s`` (see :func:`history_covariates`).
    lags : int, default=13
        Weekly lags ``s - 1 .. s - lags`` described by state-group indicators.
    baseline_covariates : sequence of str, optional
        Baseline columns entering ``X`` (strings/categoricals get treatment contrasts named
        like R). Default: every baseline column except the first (the person id) and
        ``birth_column`` (replaced by ``age`` at ``s``).
    benefit_type_column : str, optional
        Baseline column with the person's benefit type (e.g. cash benefit vs insured
        unemployment) used as the benefit-type part of the exact-match cell and as
        ``frame["benefit_type"]``. Default: the state in week ``s - 1``.
    chunk_rows : int, default=32768
        Rows per block when gathering windows (memory control).

    Notes
    -----
    Conventions (METHODS §4.1, §5.1):

    * Eligibility ``E_i(s)``: state in week ``s - 1`` is a target state (which also means
      alive and resident: ``dead_emigrated`` is never a target state); no episode active in
      ``[s - washout, s - 1]``; ``lo <= age(s) < hi`` with age in years of 52.1775 weeks.
    * Treated at ``s``: an episode that starts in ``s`` and is eligible (and, with
      ``starts="first"``, is the person's first eligible start). Episodes that fail a rule
      are counted, by rule, in ``data.sample_flow`` (rules in the order: start before
      ``min_history``, incomplete follow-up, outside ``start_weeks``, state, washout, age,
      not first, no eligible control).
    * Controls at ``s``: eligible at ``s``, no episode starting at ``s`` (nor active in the
      washout window), and with ``starts="first"`` no eligible start before or at ``s``.
    * Sampling weight: treated 1; controls ``1 / pi_s``. Risk sets without treated are not
      sampled. Each (person, s) pair gets its own uniform from a counter-based generator
      keyed by ``seed``, the person id (hashed) and ``s``: ``"exact"`` keeps the ``k_s``
      smallest, ``"bernoulli"`` those below ``pi_s``. The sample therefore does not depend
      on the row order of the register (nor on which other persons it holds).
    * ``later_start`` (estimand B): weeks from ``s`` to the row's next episode start after
      ``s`` (any episode, eligible or not), ``-1`` if none in the register; 0 for treated.
    * ``data.at_risk`` (estimand B): the weeks ``s + tau`` in which the row is at risk of a
      later start, i.e. in a target state in week ``s + tau - 1`` (bit-packed; see
      :func:`mentor_impact.design.outcomes.later_start_at_risk`). The censoring weights of
      van den Berg & Vikström multiply over exactly these weeks: weeks out of the target
      states contribute a factor 1 and re-entry puts the row at risk again (METHODS §5.4).
      Washout and age are not re-checked after ``s``.
    * ``frame["eligible_until"]``: ``E``, the number of consecutive weeks ``s+1 .. s+E`` in
      which the row stays eligible by the state rule (``H + 1`` if through the horizon);
      kept for reference (before re-entry was counted, the weeks at risk were
      ``min(tau, E)``).
    * Exact cell: benefit type (the state in ``s - 1``, or ``benefit_type_column``) ×
      calendar quarter (or month) of ``s`` × elapsed-benefit-duration band; ``cell`` is
      the rank of the combination among those observed, labels in ``frame``
      (``benefit_type``, ``calendar_period``, ``duration_band``).
    * Row order: by ``s``; within ``s`` treated then controls, each in register row order.

    Examples
    --------
    >>> design = RiskSetDesign(horizon=156, controls_per_treated=10)  # doctest: +SKIP
    >>> data = design.build(study.register, study.spells, study.baseline, seed=1)  # doctest: +SKIP
    >>> data.sample_flow  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        horizon: int = 156,
        controls_per_treated: float | None = 10,
        control_share: float | None = None,
        sampling: str = "exact",
        target_states: Sequence[str] = ("passive_benefit", "activation"),
        washout: int = 52,
        episode_gap: int = 4,
        age_band: tuple[float, float] | None = (18, 65),
        birth_column: str = "birth_year",
        start_weeks: tuple[int, int] | None = None,
        min_history: int = 156,
        follow_up: str = "complete",
        starts: str = "first",
        cell_period: str = "quarter",
        duration_bands: Sequence[int] = (0, 26, 52, 104, 156),
        outcomes: Sequence[str] | None = None,
        windows: Sequence[tuple[int, int]] = DEFAULT_WINDOWS,
        status_weeks: Sequence[int] = DEFAULT_STATUS_WEEKS,
        sustain: int = 4,
        sustained_outcome: str = "self_support",
        year_bins: Sequence[tuple[int, int]] = DEFAULT_YEAR_BINS,
        lags: int = 13,
        baseline_covariates: Sequence[str] | None = None,
        benefit_type_column: str | None = None,
        chunk_rows: int = 32_768,
    ) -> None:
        self.horizon = horizon
        self.controls_per_treated = controls_per_treated
        self.control_share = control_share
        self.sampling = sampling
        self.target_states = target_states
        self.washout = washout
        self.episode_gap = episode_gap
        self.age_band = age_band
        self.birth_column = birth_column
        self.start_weeks = start_weeks
        self.min_history = min_history
        self.follow_up = follow_up
        self.starts = starts
        self.cell_period = cell_period
        self.duration_bands = duration_bands
        self.outcomes = outcomes
        self.windows = windows
        self.status_weeks = status_weeks
        self.sustain = sustain
        self.sustained_outcome = sustained_outcome
        self.year_bins = year_bins
        self.lags = lags
        self.baseline_covariates = baseline_covariates
        self.benefit_type_column = benefit_type_column
        self.chunk_rows = chunk_rows

    def get_params(self) -> dict[str, Any]:
        """Return the options as a dict (recorded in ``data.meta["design"]``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def __repr__(self) -> str:
        return (
            f"RiskSetDesign(horizon={self.horizon}, "
            f"controls_per_treated={self.controls_per_treated})"
        )

    # ------------------------------------------------------------------ validation
    def _check_config(self, state_names: Sequence[str]) -> None:
        def bad(arg: str, expected: str, got: Any) -> ConfigurationError:
            return ConfigurationError(f"{arg}: expected {expected}; got {got!r}.")

        if not isinstance(self.horizon, (int, np.integer)) or self.horizon < 0:
            raise bad("horizon", "a non-negative integer number of weeks", self.horizon)
        cpt = self.controls_per_treated
        if cpt is not None and not (np.isfinite(cpt) and cpt > 0):
            raise bad("controls_per_treated", "a positive number or None", cpt)
        sh = self.control_share
        if sh is not None and not (0 < sh <= 1):
            raise bad("control_share", "a share in (0, 1] or None", sh)
        if self.sampling not in ("exact", "bernoulli"):
            raise bad("sampling", "'exact' or 'bernoulli'", self.sampling)
        if self.follow_up not in ("complete", "censor"):
            raise bad("follow_up", "'complete' or 'censor'", self.follow_up)
        if self.starts not in ("first", "all"):
            raise bad("starts", "'first' or 'all'", self.starts)
        if self.cell_period not in ("quarter", "month"):
            raise bad("cell_period", "'quarter' or 'month'", self.cell_period)
        unknown = [t for t in self.target_states if t not in state_names]
        if unknown or not len(self.target_states):
            raise ConfigurationError(
                f"target_states: expected state names of the catalogue; {len(unknown)} unknown "
                f"({unknown}). Hint: states are {list(state_names)}."
            )
        if "dead_emigrated" in self.target_states:
            raise bad("target_states", "benefit states (not 'dead_emigrated')", "dead_emigrated")
        for arg in ("washout", "episode_gap", "min_history", "lags"):
            v = getattr(self, arg)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise bad(arg, "a non-negative integer", v)
        if not isinstance(self.sustain, (int, np.integer)) or self.sustain < 1:
            raise bad("sustain", "a positive integer number of weeks", self.sustain)
        if self.age_band is not None and not (
            len(self.age_band) == 2 and self.age_band[0] < self.age_band[1]
        ):
            raise bad("age_band", "(lo, hi) with lo < hi, or None", self.age_band)
        edges = list(self.duration_bands)
        if not edges or edges[0] != 0 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise bad("duration_bands", "increasing lower edges starting at 0", self.duration_bands)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _locate(
        register: Any, spells: Any, gap: int
    ) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Episodes as (row, start column, end column), checked against the register."""
        from mentor_impact.registers.isoweek import iso_to_ordinal

        persons = pd.Index(np.asarray(register.persons))
        person = np.asarray(spells.person)
        n_spells = int(person.shape[0])
        pos = persons.get_indexer(person)
        unknown = pos < 0
        if unknown.any():
            raise DataValidationError(
                f"spells: expected persons of the register; found {int(unknown.sum())} of "
                f"{n_spells} spells for persons not in the register ({_positions(unknown)}). "
                "Hint: restrict the spells to the register population first."
            )
        wk = iso_to_ordinal(np.asarray(register.weeks), argument="register.weeks")
        start = iso_to_ordinal(np.asarray(spells.start), argument="spells.start")
        outside = (start < wk[0]) | (start > wk[-1])
        if outside.any():
            raise DataValidationError(
                f"spells: expected start weeks inside the register ({wk.size} weeks); found "
                f"{int(outside.sum())} of {n_spells} spells starting outside "
                f"({_positions(outside)}). Hint: drop or clip spells outside the register "
                "period before building the design."
            )
        eps = spells.episodes(gap=gap) if gap > 0 else spells
        last = int(np.asarray(register.weeks)[-1])
        if np.any(np.asarray(eps.end) > last):
            # ongoing at the register end: the end is administratively censored there
            eps = type(eps)(eps.person, eps.start, np.minimum(np.asarray(eps.end), last))
        row, s0, s1 = eps.locate(register)
        row = np.asarray(row, dtype=np.int64)
        s0 = np.asarray(s0, dtype=np.int64)
        s1 = np.minimum(np.asarray(s1, dtype=np.int64), wk.size - 1)
        order = np.lexsort((s0, row))
        return n_spells, row[order], s0[order], s1[order]

    # ------------------------------------------------------------------ build
    def build(
        self,
        register: Any,
        spells: Any,
        baseline: pd.DataFrame | None = None,
        *,
        seed: SeedLike,
    ) -> EvaluationData:
        """Build the risk-set evaluation data.

        Parameters
        ----------
        register : WeeklyRegister
            Weekly states of the population (rows = persons).
        spells : TreatmentSpells
            Mentor spells (person ids and ISO weeks).
        baseline : pandas.DataFrame, optional
            One row per register row, in register row order, first column the person id.
        seed : int, numpy.random.Generator or None
            Seed of the control subsampling.

        Returns
        -------
        EvaluationData
            One row per (person, s) pair; ``cluster`` = register row, ``start_week`` = start
            column ``s``, ``later_start``, ``cell``, ``weight`` (sampling), ``tau = 0..H``,
            ``outcomes`` (curves, ``*_acc_a_b``, ``*_wT``), ``durations``
            (``first_self_support``, ``first_exit``), ``meta["sample_flow"]`` (also
            ``data.sample_flow``) and ``frame`` with ``person_row``, ``start_iso_week``,
            ``age_band``, baseline columns, ``benefit_type``, ``activity``
            (passive/active in ``s - 1``), ``start_year``, ``calendar_period``,
            ``duration_band``, ``later_start``, ``eligible_until``, ``sampling_prob``.

        Raises
        ------
        DataValidationError
            Spells for unknown persons or starting outside the register, a baseline that
            does not match the register, a horizon beyond the data, no treated start left.
        ConfigurationError
            Invalid options.
        """
        from mentor_impact.registers.isoweek import iso_to_ordinal

        for arg, obj, attrs, kind in (
            ("register", register, ("states", "catalog", "persons", "weeks"), "WeeklyRegister"),
            ("spells", spells, ("person", "start", "end", "episodes", "locate"),
             "TreatmentSpells"),
        ):
            missing = [a for a in attrs if not hasattr(obj, a)]
            if missing:
                raise DataValidationError(
                    f"{arg}: expected a {kind}; got {type(obj).__name__} without "
                    f"{len(missing)} of its attributes ({', '.join(missing)}). Hint: build it "
                    f"with mentor_impact.registers.{kind}."
                )
        catalog = register.catalog
        state_names = tuple(catalog.STATES)
        self._check_config(state_names)
        states = register.states()
        n, n_w = states.shape
        h = int(self.horizon)
        if baseline is not None:
            if not isinstance(baseline, pd.DataFrame) or len(baseline) != n:
                raise DataValidationError(
                    f"baseline: expected a DataFrame with one row per register row ({n}); "
                    f"found {len(baseline) if hasattr(baseline, '__len__') else 'no'} rows. "
                    "Hint: use the simulator's baseline or reindex to register.persons."
                )
            ids = baseline.iloc[:, 0].reset_index(drop=True)
            mism = ~ids.eq(pd.Series(np.asarray(register.persons))).to_numpy()
            if np.any(mism):
                raise DataValidationError(
                    f"baseline: expected the first column to hold the register person ids in "
                    f"register row order; {int(np.sum(mism))} rows differ "
                    f"({_positions(np.asarray(mism))}). Hint: reorder the baseline to "
                    "register.persons."
                )
        rng = as_generator(seed)
        week_labels = np.asarray(register.weeks, dtype=np.int64)
        wk_ord = iso_to_ordinal(week_labels, argument="register.weeks")
        cal = calendar_of_weeks(week_labels)

        # ---- start-week window
        s_lo = max(1, int(self.min_history))
        s_hi = n_w - h if self.follow_up == "complete" else n_w
        w_lo, w_hi = 0, n_w - 1
        if self.start_weeks is not None:
            a, b = (iso_to_ordinal(np.asarray(self.start_weeks), argument="start_weeks")
                    - wk_ord[0])
            w_lo, w_hi = int(max(a, 0)), int(min(b, n_w - 1))
        lo, hi = max(s_lo, w_lo), min(s_hi, w_hi + 1)
        if hi <= lo:
            raise DataValidationError(
                f"horizon: expected min_history ({self.min_history}) + horizon ({h}) + 1 to fit "
                f"in the register's {n_w} weeks (and inside start_weeks); found no start week "
                "left. Hint: lower horizon or min_history, use follow_up='censor', or pass a "
                "longer register."
            )

        # ---- episodes and their eligibility
        n_spells, ep_row, ep_start, ep_end = self._locate(register, spells, self.episode_gap)
        target_lut = K.make_lut([state_names.index(t) for t in self.target_states],
                                len(state_names))
        age_lo, age_hi, birth = age_window_columns(
            baseline, int(wk_ord[0]), self.age_band, self.birth_column)
        reason = K.episode_eligibility(
            states, target_lut, ep_row, ep_start, ep_end, washout=int(self.washout),
            age_lo=age_lo, age_hi=age_hi, first_only=self.starts == "first",
        )
        eligible_ep = reason == K.REASON_KEPT
        first_start = None
        if self.starts == "first":
            first_start = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first_start, ep_row[eligible_ep], ep_start[eligible_ep])
        before_hist = ep_start < s_lo
        after_fu = ep_start >= s_hi
        outside_w = (ep_start < w_lo) | (ep_start > w_hi)
        in_window = ~before_hist & ~after_fu & ~outside_w
        treated_ep = eligible_ep & in_window

        sweep = K.risk_set_sweep(
            states, target_lut, ep_row, ep_start, ep_end, treated_ep,
            washout=int(self.washout), s_lo=lo, s_hi=hi, age_lo=age_lo, age_hi=age_hi,
            first_start=first_start,
            controls_per_treated=(None if self.controls_per_treated is None
                                  or self.control_share is not None
                                  else float(self.controls_per_treated)),
            control_share=self.control_share, sampling=self.sampling,
            person_key=pd.util.hash_array(np.asarray(register.persons)),
            seed_key=int(rng.integers(0, 2**63 - 1)),
        )
        # treated in risk sets without any eligible control are dropped (and counted)
        no_ctrl_w = (sweep.n1 > 0) & (sweep.n0 == 0)
        keep = ~no_ctrl_w[sweep.s] | (sweep.treatment == 0)
        rows, s, d, w = (sweep.rows[keep], sweep.s[keep], sweep.treatment[keep],
                         sweep.weight[keep])
        n_no_ctrl = int(sweep.n1[no_ctrl_w].sum())

        exclusions = {
            f"start before {s_lo} register weeks of history (min_history)": int(
                before_hist.sum()),
            f"incomplete follow-up (start within {h} weeks of the register end)": int(
                (~before_hist & after_fu).sum()),
            "start outside start_weeks": int((~before_hist & ~after_fu & outside_w).sum()),
            "not in a target state in week s-1": int(
                (in_window & (reason == K.REASON_STATE)).sum()),
            f"washout: mentor episode active in the previous {self.washout} weeks": int(
                (in_window & (reason == K.REASON_WASHOUT)).sum()),
            (f"age outside [{self.age_band[0]}, {self.age_band[1]})" if self.age_band
             else "age outside band (rule off)"): int(
                (in_window & (reason == K.REASON_AGE)).sum()),
            "not the person's first eligible start": int(
                (in_window & (reason == K.REASON_NOT_FIRST)).sum()),
            "no eligible control in the risk set": n_no_ctrl,
        }
        n_treated = int(d.sum())
        if n_treated == 0 or n_treated == d.shape[0]:
            parts = "; ".join(f"{k}: {v}" for k, v in exclusions.items())
            raise DataValidationError(
                f"spells: expected at least one treated start with eligible controls; found "
                f"{n_treated} treated and {d.shape[0] - n_treated} control rows from "
                f"{ep_row.shape[0]} episodes (empty risk sets). Exclusions: {parts}. Hint: "
                "check target_states, age_band, min_history and horizon against the data."
            )

        # ---- covariates X(s): [baseline contrasts, age, history]; one (n, p) matrix,
        # the history written into it and the leading columns filled here (no stacking)
        ep_key = ep_row * (n_w + 1) + ep_start
        year_of_week = cal["year"]
        frame = pd.DataFrame({"person_row": rows, "start_iso_week": week_labels[s]})
        lead: list[npt.NDArray[np.float64]] = []
        names: list[str] = []
        bsub = None
        if baseline is not None:
            cols = (
                [c for c in baseline.columns[1:] if c != self.birth_column]
                if self.baseline_covariates is None
                else list(self.baseline_covariates)
            )
            unknown = [c for c in cols if c not in baseline.columns]
            if unknown:
                raise ConfigurationError(
                    f"baseline_covariates: expected baseline columns; {len(unknown)} not found "
                    f"({unknown}). Hint: baseline has {baseline.shape[1]} columns."
                )
            for c in cols:
                na = baseline[c].isna().to_numpy()
                if na.any():
                    raise DataValidationError(
                        f"baseline: column {c!r} has {int(na.sum())} missing values "
                        f"(baseline {_positions(na)}). Hint: impute or add a missing level, "
                        "or leave the column out with baseline_covariates=[...]."
                    )
            bsub = baseline.iloc[rows].reset_index(drop=True)
            if cols:
                xb, bnames, _ = encode_covariates(bsub, cols)
                lead.append(xb)
                names += list(bnames)
        if birth is not None:
            age = (wk_ord[s] - birth[rows]) / WEEKS_PER_YEAR
            lead.append(age[:, None])
            names.append("age")
            edges = [b[0] for b in _AGE_BANDS] + [_AGE_BANDS[-1][1]]
            # code 0 = below the first edge, then one code per band, last = above
            code = np.searchsorted(edges, age, side="right")
            labels = ([f"<{edges[0]}"] + [f"{a}-{b_ - 1}" for a, b_ in _AGE_BANDS]
                      + [f"{edges[-1]}+"])
            frame["age_band"] = _cat(code, labels)
        n_lead = len(names)
        x, hnames, elapsed = history_covariates(
            states, rows, s, state_names=state_names,
            on_benefit=catalog.unions.get(
                "on_benefit", ("passive_benefit", "activation", "subsidised_job",
                               "health_benefit", "retired_disabled")),
            year_bins=self.year_bins, lags=int(self.lags), lag_groups=DEFAULT_LAG_GROUPS,
            episode_key=ep_key, quarter=cal["quarter"], year=year_of_week,
            year_levels=np.unique(year_of_week[lo:hi]).tolist(),
            chunk=max(1024, self.chunk_rows // 2), lead_columns=n_lead,
        )
        names += list(hnames)
        j = 0
        for blk in lead:
            x[:, j : j + blk.shape[1]] = blk
            j += blk.shape[1]
        del lead
        if baseline is not None and bsub is not None:
            for c in baseline.columns[1:]:
                if c not in frame.columns:
                    frame[c] = _frame_column(bsub[c])
            del bsub

        # ---- outcomes
        outs, durs, elig_until = event_time_outcomes(
            states, rows, s, catalog=catalog, horizon=h, names=self.outcomes,
            windows=self.windows, status_weeks=self.status_weeks, sustain=int(self.sustain),
            sustained_outcome=self.sustained_outcome, exit_origin=EXIT_ORIGIN,
            eligible_states=tuple(self.target_states),
            censor_missing=self.follow_up == "censor", chunk=self.chunk_rows,
        )
        at_risk = later_start_at_risk(states, rows, s, catalog=catalog, horizon=h,
                                      eligible_states=tuple(self.target_states),
                                      chunk=self.chunk_rows)
        later = K.next_start_after(ep_key, ep_row, ep_start, rows, s, n_w)
        later = np.where(d == 1, 0, later)

        # ---- cells and frame
        btype = states[rows, s - 1]
        period = (cal["year"][s] * 100 + (cal["quarter"][s] if self.cell_period == "quarter"
                                          else cal["month"][s]))
        dur_edges = np.asarray(list(self.duration_bands), dtype=np.int64)
        band = np.searchsorted(dur_edges, elapsed, side="right") - 1
        if self.benefit_type_column is not None:
            if baseline is None or self.benefit_type_column not in baseline.columns:
                raise ConfigurationError(
                    f"benefit_type_column: expected a baseline column; "
                    f"{self.benefit_type_column!r} not found. Hint: pass None to use the state "
                    "in week s - 1."
                )
            bt_codes, bt_labels = pd.factorize(baseline[self.benefit_type_column], sort=True)
            if (bt_codes < 0).any():
                na = bt_codes < 0
                raise DataValidationError(
                    f"baseline: column {self.benefit_type_column!r} has {int(na.sum())} missing "
                    f"values (baseline {_positions(na)}). Hint: add an explicit level."
                )
            bt = bt_codes[rows].astype(np.int64)
            bt_names = [str(x) for x in bt_labels]
        else:
            bt = btype.astype(np.int64)
            bt_names = list(state_names)
        key = (period.astype(np.int64) * 4096 + bt) * 64 + band
        _, cell = np.unique(key, return_inverse=True)
        frame["benefit_type"] = _cat(bt, bt_names)
        passive = (btype == state_names.index("passive_benefit")) if (
            "passive_benefit" in state_names) else np.zeros(btype.shape, dtype=bool)
        frame["activity"] = _cat(passive, ["active", "passive"])
        frame["start_year"] = cal["iso_year"][s]
        sep = "Q" if self.cell_period == "quarter" else "-"
        per_u, per_code = np.unique(period, return_inverse=True)
        per_labels = [f"{int(p_) // 100}{sep}{int(p_) % 100:0{1 if sep == 'Q' else 2}d}"
                      for p_ in per_u]
        frame["calendar_period"] = _cat(per_code, per_labels)
        frame["duration_band"] = _cat(band, _band_labels(list(self.duration_bands)))
        frame["later_start"] = later
        frame["eligible_until"] = elig_until
        frame["sampling_prob"] = 1.0 / w

        ctrl = d == 0
        flow = sample_flow_table(
            n_spells=n_spells, n_episodes=int(ep_row.shape[0]), gap=int(self.episode_gap),
            exclusions=exclusions,
            n_kept=n_treated, episode_year=cal["iso_year"][ep_start],
            kept_year=cal["iso_year"][s[d == 1]], n1=sweep.n1, n0=sweep.n0, k0=sweep.k0,
            pi=sweep.pi, later_start=later[ctrl], control_weight=w[ctrl],
        )
        seed_meta = seed if isinstance(seed, (int, np.integer)) else None
        meta = {
            "source": "RiskSetDesign",
            "design": self.get_params(),
            "sample_flow": flow,
            "seed": seed_meta,
            "register_weeks": (int(week_labels[0]), int(week_labels[-1])),
            "n_register_persons": int(n),
            "start_columns": (lo, hi - 1),
        }
        return EvaluationData(
            X=x,
            covariate_names=tuple(names),
            treatment=d,
            outcomes=outs,
            tau=np.arange(h + 1, dtype=np.int64),
            weight=w,
            cluster=rows,
            cell=cell.astype(np.int64),
            start_week=s,
            later_start=later,
            at_risk=at_risk,
            durations=durs,
            frame=frame,
            meta=meta,
        )


def true_effects(
    study: Any, data: EvaluationData, outcome: str, estimand: str = "A"
) -> pd.DataFrame:
    """Return the simulator's true effect curve averaged over the design's treated rows.

    Parameters
    ----------
    study : MentorStudy
        The simulated study the design was built from.
    data : EvaluationData
        A risk-set design (or a subset of one) built from ``study.register``.
    outcome : str
        Outcome name known to the simulator (e.g. ``"employed"``).
    estimand : {"A", "B"}, default="A"
        Estimand of the truth.

    Returns
    -------
    pandas.DataFrame
        ``tau, treated_mean, counterfactual_mean, effect`` (from ``study.truth_for``).

    Raises
    ------
    DataValidationError
        If ``data`` has no start weeks (not a risk-set design).
    """
    if data.start_week is None:
        raise DataValidationError(
            "data: expected a risk-set design with start_week; found None. Hint: build it with "
            "RiskSetDesign.build."
        )
    tr = data.treatment == 1
    rows = np.asarray(data.cluster)[tr].astype(np.int64)
    cols = data.start_week[tr]
    truth: pd.DataFrame = study.truth_for(rows, cols, outcome, estimand)
    return truth


def age_window_columns(
    baseline: pd.DataFrame | None,
    week0_ordinal: int,
    age_band: tuple[float, float] | None,
    birth_column: str = "birth_year",
) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.int64] | None,
           npt.NDArray[np.float64] | None]:
    """Register columns at which each person enters and leaves an age band.

    Parameters
    ----------
    baseline : pandas.DataFrame or None
        One row per register person with ``birth_column`` (birth year ``YYYY``, taken as
        ISO week 26, or ISO birth week ``YYYYWW``).
    week0_ordinal : int
        Week ordinal of the register's first column.
    age_band : (float, float) or None
        ``lo <= age < hi`` in years of 52.1775 weeks; None gives no band.
    birth_column : str
        Column with the birth year or week.

    Returns
    -------
    (ndarray or None, ndarray or None, ndarray or None)
        Per person the first column with ``age >= lo``, the first with ``age >= hi``
        (both None without a band) and the birth-week ordinal (None without the column
        and band).

    Raises
    ------
    ConfigurationError
        A band is asked for but the column is missing.
    DataValidationError
        Missing birth years.
    """
    from mentor_impact.registers.isoweek import iso_to_ordinal

    if baseline is None or birth_column not in baseline.columns:
        if age_band is not None:
            raise ConfigurationError(
                f"age_band: needs the baseline column {birth_column!r} (birth year or "
                "ISO birth week); not found. Hint: pass birth_column=... or age_band=None."
            )
        return None, None, None
    b = baseline[birth_column].to_numpy()
    na = pd.isna(b)
    if na.any():
        raise DataValidationError(
            f"baseline: column {birth_column!r} has {int(na.sum())} missing values "
            f"({_positions(np.asarray(na))}). Hint: drop those persons or set age_band=None."
        )
    b = b.astype(np.int64)
    label = np.where(b < 10_000, b * 100 + 26, b)
    birth = iso_to_ordinal(label, argument=f"baseline.{birth_column}").astype(np.float64)
    if age_band is None:
        return None, None, birth
    lo, hi = age_band
    a_lo = np.ceil(birth + lo * WEEKS_PER_YEAR - week0_ordinal).astype(np.int64)
    a_hi = np.ceil(birth + hi * WEEKS_PER_YEAR - week0_ordinal).astype(np.int64)
    return a_lo, a_hi, birth
