"""Known-truth simulator of a Danish-style mentor study (``simulate_mentor_study``).

The data-generating process is documented in ``docs/simulator.md``. In short: a stock of
people with a cash/education-benefit history is followed week by week over ~10 years; each
week a person moves between the states of :class:`~mentor_impact.registers.StateCatalog`
by a Markov-type rule with person-level traits; mentor spells start with a weekly logit
hazard in *observed* features only; a spell locks people in (lower exit rates into
employment and education) and raises them afterwards. Every treated start is re-simulated
under two counterfactual regimes with common random numbers, so that the in-sample truth is
exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact._rng import SeedLike
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.registers import (
    StateCatalog,
    TreatmentSpells,
    WeeklyRegister,
    iso_to_ordinal,
    ordinal_to_iso,
)

__all__ = [
    "OUTCOMES",
    "MentorStudy",
    "PotentialOutcomes",
    "simulate_mentor_study",
]

WEEKS_PER_YEAR = 52.1775
OUTCOMES: tuple[str, ...] = (
    "employed",
    "education",
    "employment_or_education",
    "self_support",
    "on_benefit",
    "self_support_other",
    "passive_benefit",
    "activation",
    "subsidised_job",
    "health_benefit",
    "retired_disabled",
    "dead_emigrated",
)

# state ids (positions in StateCatalog.STATES)
E, U, O, P, A, J, H, R, D = range(9)  # noqa: E741
_N_DEST = 9
_BENEFIT = np.zeros(10, dtype=bool)
_BENEFIT[[P, A, J, H, R]] = True  # the catalogue's on_benefit union
_CASH = np.zeros(10, dtype=bool)
_CASH[[P, A]] = True

# weekly transition probabilities before person effects (rows: origin, columns: destination)
_P0 = np.zeros((10, _N_DEST))
_P0[E, [U, O, P, J, H, R, D]] = [0.0008, 0.0015, 0.0070, 0.0004, 0.0015, 0.00005, 0.00003]
_P0[U, [E, O, P, H, D]] = [0.0050, 0.0020, 0.0090, 0.0008, 0.00003]
_P0[O, [E, U, P, J, H, R, D]] = [0.0060, 0.0020, 0.0110, 0.0010, 0.0020, 0.0002, 0.00008]
_P0[P, [E, U, O, A, J, H, R, D]] = [0.0030, 0.0014, 0.0035, 0.0220, 0.0016, 0.0025, 0.0004, 0.00008]
_P0[A, [E, U, O, P, J, H, R, D]] = [0.0036, 0.0017, 0.0025, 0.0420, 0.0040, 0.0015, 0.0003, 0.00008]
_P0[J, [E, U, O, P, A, H, R, D]] = [0.0060, 0.0005, 0.0010, 0.0140, 0.0030, 0.0020, 0.0005, 0.00008]
_P0[H, [E, U, O, P, A, J, R, D]] = [0.0015, 0.0003, 0.0008, 0.0180, 0.0050, 0.0010, 0.0020, 0.00015]
_P0[R, D] = 0.0003
_REST_CUM = np.cumsum(_P0[:, O:], axis=1)  # cumulative probabilities of destinations O..D
_REST_TOT = _REST_CUM[:, -1].copy()

# state -> illustrative DREAM-like code of StateCatalog.default()
_STATE_CODE = np.array([1001, 651, 0, 211, 231, 511, 711, 781, 998, 999], dtype=np.uint16)
_YOUNG_EDU_BENEFIT_CODE = 215  # education benefit (uddannelseshjælp) for under-30s from 2014
_REGIONS = ("capital", "zealand", "south", "central", "north")
_EDUCATION = ("basic", "vocational", "higher")


@dataclass(frozen=True)
class PotentialOutcomes:
    """Per-start potential state paths of the treated starts, ``tau = 0..H``.

    Attributes
    ----------
    rows : numpy.ndarray of int64, shape (m,)
        Register rows of the treated starts (sorted by ``(row, start_col)``).
    start_cols : numpy.ndarray of int64, shape (m,)
        Start columns ``s``.
    treated : numpy.ndarray of int8, shape (m, H + 1)
        State ids under the observed regime (start at ``s``); equals the register states in
        columns ``s..s+H``.
    never_now : numpy.ndarray of int8, shape (m, H + 1)
        Estimand A counterfactual ``Y^(¬s)``: no start at ``s``, later starts possible.
    never_followup : numpy.ndarray of int8, shape (m, H + 1)
        Estimand B counterfactual ``Y^(∞)``: no start in ``s..s+H``.
    catalog : StateCatalog
        For resolving outcome names.

    Notes
    -----
    Stored as state ids (1 byte per person-week) rather than one curve per outcome; the
    outcome curves are computed on demand by :meth:`curves`.
    """

    rows: npt.NDArray[np.int64]
    start_cols: npt.NDArray[np.int64]
    treated: npt.NDArray[np.int8]
    never_now: npt.NDArray[np.int8]
    never_followup: npt.NDArray[np.int8]
    catalog: StateCatalog = field(repr=False)

    @property
    def n_starts(self) -> int:
        """Number of treated starts."""
        return int(self.rows.size)

    @property
    def horizon(self) -> int:
        """``H``: the last horizon week."""
        return int(self.treated.shape[1] - 1)

    def index(self, rows: npt.ArrayLike, start_cols: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Return positions of ``(row, start_col)`` pairs among the treated starts.

        Parameters
        ----------
        rows, start_cols : array_like of int
            Register rows and start columns.

        Returns
        -------
        numpy.ndarray of int64

        Raises
        ------
        DataValidationError
            If a pair is not a treated start of the simulation.
        """
        r = np.asarray(rows, dtype=np.int64).ravel()
        c = np.asarray(start_cols, dtype=np.int64).ravel()
        if r.size != c.size:
            raise DataValidationError(
                f"rows, start_cols: expected equal lengths; found {r.size} and {c.size}. "
                "Hint: pass aligned arrays."
            )
        width = int(max(self.start_cols.max(initial=0), c.max(initial=0))) + 1
        keys = self.rows * width + self.start_cols
        want = r * width + c
        pos = np.searchsorted(keys, want)
        pos_c = np.minimum(pos, max(keys.size - 1, 0))
        ok = (pos < keys.size) & (keys[pos_c] == want) if keys.size else np.zeros(r.size, bool)
        if not np.all(ok):
            bad = np.flatnonzero(~ok)
            shown = ", ".join(str(int(b)) for b in bad[:5])
            raise DataValidationError(
                f"rows, start_cols: expected treated starts of the simulation; found "
                f"{bad.size} pairs that are not (positions {shown}). Hint: pass the register "
                "rows and start columns of treated rows only (treatment == 1)."
            )
        return pos_c

    def curves(
        self,
        outcome: str,
        estimand: Literal["A", "B"] = "A",
        positions: npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
        """Return the treated and counterfactual outcome curves of the starts.

        Parameters
        ----------
        outcome : str
            State or union name.
        estimand : {"A", "B"}, default "A"
            ``"A"``: start now vs not now; ``"B"``: start now vs no start in the follow-up.
        positions : array_like of int, optional
            Subset of starts (see :meth:`index`); default all.

        Returns
        -------
        treated, counterfactual : numpy.ndarray of int8, shape (m, H + 1)
        """
        lut = self.catalog.state_mask(outcome).astype(np.int8)
        cf = _check_estimand(estimand) == "A"
        other = self.never_now if cf else self.never_followup
        if positions is None:
            return np.take(lut, self.treated), np.take(lut, other)
        p = np.asarray(positions, dtype=np.int64)
        return np.take(lut, self.treated[p]), np.take(lut, other[p])


def _check_estimand(estimand: str) -> str:
    if estimand not in ("A", "B"):
        raise ConfigurationError(
            "estimand: expected 'A' (start now vs not now) or 'B' (start now vs no start "
            "during follow-up); found another value. Hint: use 'A' or 'B'."
        )
    return estimand


@dataclass(frozen=True)
class MentorStudy:
    """A simulated mentor study with its known truth.

    Attributes
    ----------
    register : WeeklyRegister
        Weekly DREAM-like codes of all persons.
    spells : TreatmentSpells
        Registered mentor spells (fragments of one episode may be separated by gaps of 1–3
        weeks; ``spells.episodes(gap=4)`` recovers the true episodes).
    baseline : pandas.DataFrame
        One row per person in register row order; first column ``person``.
    truth : pandas.DataFrame
        Tidy true effects averaged over all treated starts: ``outcome, estimand, tau,
        treated_mean, counterfactual_mean, effect``.
    potential_outcomes : PotentialOutcomes
        Per-start potential state paths keyed by ``(row, start_col)``.
    latent : pandas.DataFrame
        Unobserved traits (``u``: confounder used by the ``confounding`` knob; ``v``:
        employability frailty), register row order. Not for estimation.
    config : dict
        Every parameter of the simulation, including the seed.
    """

    register: WeeklyRegister
    spells: TreatmentSpells
    baseline: pd.DataFrame
    truth: pd.DataFrame
    potential_outcomes: PotentialOutcomes
    latent: pd.DataFrame = field(repr=False)
    config: dict[str, Any] = field(repr=False)
    _elapsed_at_start: npt.NDArray[np.int64] = field(repr=False)

    @property
    def treated_starts(self) -> pd.DataFrame:
        """Treated starts: ``row, start_col, person, start_week`` (one per treated person)."""
        po = self.potential_outcomes
        return pd.DataFrame(
            {
                "row": po.rows,
                "start_col": po.start_cols,
                "person": self.register.persons[po.rows],
                "start_week": self.register.weeks[po.start_cols],
            }
        )

    def truth_for(
        self,
        rows: npt.ArrayLike,
        start_cols: npt.ArrayLike,
        outcome: str,
        estimand: Literal["A", "B"] = "A",
        weights: npt.ArrayLike | None = None,
    ) -> pd.DataFrame:
        """Average the true per-start curves over exactly the given treated starts.

        Parameters
        ----------
        rows, start_cols : array_like of int
            Register rows and start columns of treated starts (e.g. the treated rows a
            design kept: ``data.cluster[data.treatment == 1]``, ``data.start_week[...]``).
        outcome : str
            State or union name.
        estimand : {"A", "B"}, default "A"
        weights : array_like of float, optional
            Weights of the starts (default equal).

        Returns
        -------
        pandas.DataFrame
            ``tau, treated_mean, counterfactual_mean, effect``.
        """
        po = self.potential_outcomes
        pos = po.index(rows, start_cols)
        y1, y0 = po.curves(outcome, estimand, pos)
        if weights is None:
            m1, m0 = y1.mean(axis=0), y0.mean(axis=0)
        else:
            w = np.asarray(weights, dtype=np.float64).ravel()
            if w.size != pos.size or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise DataValidationError(
                    f"weights: expected {pos.size} finite non-negative weights; found "
                    f"{w.size} values or invalid entries. Hint: pass one weight per start."
                )
            m1, m0 = (w @ y1) / w.sum(), (w @ y0) / w.sum()
        return pd.DataFrame(
            {
                "tau": np.arange(po.horizon + 1),
                "treated_mean": m1,
                "counterfactual_mean": m0,
                "effect": m1 - m0,
            }
        )

    def summary(self) -> pd.Series:
        """Return a sample overview for reports and the CLI demo.

        Returns
        -------
        pandas.Series
            Persons, weeks, register period, spells and episodes, treated starts, starters
            per calendar year, mean episode length (weeks), mean weekly hours, share passive /
            in activation in week ``s - 1``, mean elapsed benefit duration at start (weeks),
            mean age at start and the confounding knob.
        """
        reg = self.register
        ep = self.spells.episodes(gap=4)
        po = self.potential_outcomes
        prev = reg.states()[po.rows, po.start_cols - 1]
        year = ep.start // 100
        out: dict[str, Any] = {
            "persons": reg.n_persons,
            "weeks": reg.n_weeks,
            "first_week": int(reg.weeks[0]),
            "last_week": int(reg.weeks[-1]),
            "spells": len(self.spells),
            "episodes": len(ep),
            "treated_starts": po.n_starts,
        }
        w0, w1 = self.config["start_window"]
        for y in range(w0 // 100, w1 // 100 + 1):
            out[f"starters_{y}"] = int(np.unique(ep.person[year == y]).size)
        out["mean_episode_weeks"] = float(ep.duration.mean()) if len(ep) else float("nan")
        out["mean_hours_per_week"] = float(np.nanmean(self.spells.hours)) if len(ep) else 0.0
        out["share_passive_at_start"] = float(np.mean(prev == P)) if prev.size else 0.0
        out["share_activation_at_start"] = float(np.mean(prev == A)) if prev.size else 0.0
        out["mean_benefit_weeks_at_start"] = (
            float(self._elapsed_at_start.mean()) if prev.size else float("nan")
        )
        birth = self.baseline["birth_year"].to_numpy()[po.rows]
        wk_ord = iso_to_ordinal(reg.weeks[po.start_cols])
        age = (wk_ord - iso_to_ordinal(birth * 100 + 26)) / WEEKS_PER_YEAR
        out["mean_age_at_start"] = float(age.mean()) if age.size else float("nan")
        out["confounding"] = float(self.config["confounding"])
        return pd.Series(out, name="simulated mentor study")


# ---------------------------------------------------------------------- internals
@dataclass
class _World:
    """Per-person state of one regime (arrays aligned with ``rows``)."""

    prev: npt.NDArray[np.int8]
    dur: npt.NDArray[np.int32]
    emp52: npt.NDArray[np.int16]
    spell_start: npt.NDArray[np.int32]
    spell_end: npt.NDArray[np.int32]
    first_end: npt.NDArray[np.int32]


_NO_SPELL = -(10**6)
_BLOCK = 1 << 16  # rows per block of the observed regime (keeps temporaries in cache)
Rows = npt.NDArray[np.int64] | slice
_NEVER = 10**6


def _seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    return np.random.SeedSequence(seed)


def _week_uniforms(ss: np.random.SeedSequence, w: int, n: int) -> npt.NDArray[np.float32]:
    """Draw the common random numbers of week ``w`` (transition, start, spell length)."""
    child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 1, w))
    return np.random.Generator(np.random.PCG64(child)).random((3, n), dtype=np.float32)


def _spell_length(q: npt.NDArray[np.float32], mean: float, shape: float) -> npt.NDArray[np.int32]:
    """Episode length in weeks from a uniform: ``max(1, round(Gamma(shape, mean/shape)))``."""
    g = stats.gamma.ppf(np.asarray(q, dtype=np.float64), a=shape, scale=mean / shape)
    return np.maximum(1, np.rint(g)).astype(np.int32)


def _draw_destination(
    prev: npt.NDArray[np.int8],
    unif: npt.NDArray[np.float32],
    p_e: npt.NDArray[np.float64],
    p_u: npt.NDArray[np.float64],
) -> npt.NDArray[np.int8]:
    """Draw next week's state by inverse CDF from one uniform per person (vectorised kernel).

    Destinations are ordered E, U, O, P, A, J, H, R, D with probabilities ``p_e``, ``p_u``
    (person-specific) and ``_P0[prev, O:]`` (the rest); a uniform at or above their sum means
    staying in ``prev``.
    """
    x = unif.astype(np.float64)
    new = prev.copy()
    mv = np.flatnonzero(x < p_e + p_u + _REST_TOT[prev])
    if mv.size:
        xm, pe, pu = x[mv], p_e[mv], p_u[mv]
        rest = O + (xm[:, None] - (pe + pu)[:, None] >= _REST_CUM[prev[mv]]).sum(axis=1)
        new[mv] = np.where(xm < pe, E, np.where(xm < pe + pu, U, rest))
    return new


def _check_config(
    n_persons: int,
    first_week: int,
    start_window: tuple[int, int],
    horizon: int,
    history_weeks: int,
    confounding: float,
    effect_scale: float,
    start_rate: float,
) -> None:
    def bad(arg: str, expected: str) -> ConfigurationError:
        return ConfigurationError(f"{arg}: expected {expected}; found another value. "
                                  "Hint: see simulate_mentor_study's docstring.")

    if not isinstance(n_persons, (int, np.integer)) or n_persons < 1:
        raise bad("n_persons", "a positive integer")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise bad("horizon", "a positive integer number of weeks")
    if not np.isfinite(confounding) or not np.isfinite(effect_scale):
        raise bad("confounding, effect_scale", "finite numbers")
    if not (np.isfinite(start_rate) and start_rate > 0):
        raise bad("start_rate", "a positive number")
    a = int(iso_to_ordinal(start_window[0], argument="start_window"))
    b = int(iso_to_ordinal(start_window[1], argument="start_window"))
    f = int(iso_to_ordinal(first_week, argument="first_week"))
    if b < a:
        raise bad("start_window", "(first, last) with first <= last")
    if a - f < history_weeks:
        raise bad("start_window", f"a first week at least {history_weeks} weeks after first_week")


def simulate_mentor_study(
    n_persons: int = 200_000,
    seed: SeedLike = 0,
    *,
    first_week: int = 200801,
    start_window: tuple[int, int] = (201201, 201452),
    horizon: int = 156,
    confounding: float = 0.0,
    effect_scale: float = 1.0,
    start_rate: float = 1.0,
    mean_spell_weeks: float = 21.0,
    fragment_share: float = 0.25,
    catalog: StateCatalog | None = None,
    outcomes: Sequence[str] = OUTCOMES,
) -> MentorStudy:
    """Simulate a register-based mentor study with known true effects.

    Parameters
    ----------
    n_persons : int, default 200_000
        Size of the stock of people with a cash/education-benefit history. The default
        gives about 16–24 thousand mentor starters per year in the start window.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, default 0
        Seed of every random draw; same seed ⇒ identical arrays.
    first_week : int, default 200801
        ISO label of the first register week.
    start_window : (int, int), default (201201, 201452)
        First and last ISO week in which *treated* starts are taken (mentor starts happen
        from the first window week to the end of the register; earlier weeks have none).
        The register ends ``horizon`` weeks after the last window week, so every treated
        start has complete follow-up.
    horizon : int, default 156
        ``H``: truth curves cover ``tau = 0..H`` weeks after the start.
    confounding : float, default 0.0
        Loading of the unobserved trait ``u ~ N(0, 1)`` in the start hazard (``+confounding
        * u``) and in the log-rates of moving into employment (``-confounding * u``) and
        education (``-0.5 * confounding * u``). 0 means selection on observables.
    effect_scale : float, default 1.0
        Multiplies every treatment effect parameter (lock-in and later gains); 0 gives no
        effect at all, so that both true effect curves are exactly zero.
    start_rate : float, default 1.0
        Multiplies the odds of the weekly start hazard.
    mean_spell_weeks : float, default 21.0
        Mean episode length (Gamma with shape 2.5, rounded, at least one week).
    fragment_share : float, default 0.25
        Share of episodes of at least 6 weeks registered as two spells with a 1–3 week
        gap (merged again by ``spells.episodes(gap=4)``).
    catalog : StateCatalog, optional
        Catalogue of the register; default :meth:`StateCatalog.default` (which must know
        the simulator's codes 0, 211, 215, 231, 511, 651, 711, 781, 998, 1001).
    outcomes : sequence of str, default OUTCOMES
        States and unions for which :attr:`MentorStudy.truth` is tabulated.

    Returns
    -------
    MentorStudy
        ``register``, ``spells``, ``baseline``, ``truth``, ``potential_outcomes``,
        ``latent``, ``config``.

    Notes
    -----
    The full data-generating process (transition matrix, hazards, effect curves, the
    common-random-number construction of the truth) is documented in
    ``docs/simulator.md``. Key conventions:

    * Weekly random numbers are a function of ``(seed, week, person row)``, shared by the
      observed regime and both counterfactual regimes (common random numbers), so that the
      per-start truth is exact in sample.
    * Eligibility for a start in week ``s`` (as in the risk-set design): state in ``s - 1``
      is ``passive_benefit`` or ``activation``; no mentor episode in ``s - 52 .. s - 1``;
      ``18 <= age(s) < 65`` with ``age = (ordinal(s) - ordinal(birth_year-W26)) / 52.1775``.
    * The start hazard uses observed features only: age, sex, immigrant, education,
      psychiatric history, region, activation in ``s - 1``, elapsed benefit duration (run
      of ``on_benefit`` weeks ending in ``s - 1``, capped at 156), share of weeks employed
      in ``s - 52 .. s - 1`` and calendar year (plus ``confounding * u``).
    * Treated start = a person's first start in the window (every start is eligible).
      Estimand A's counterfactual forbids the start at ``s`` only (later starts follow the
      same hazard and random numbers); estimand B's forbids starts in ``s .. s + H``.

    Examples
    --------
    >>> study = simulate_mentor_study(n_persons=2_000, seed=1)
    >>> sorted(study.truth["estimand"].unique())
    ['A', 'B']
    """
    _check_config(n_persons, first_week, start_window, horizon, 156, confounding,
                  effect_scale, start_rate)
    n = int(n_persons)
    cat = catalog if catalog is not None else StateCatalog.default()
    ss = _seed_sequence(seed)
    rng = np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 0))))
    f_ord = int(iso_to_ordinal(first_week))
    ws = int(iso_to_ordinal(start_window[0])) - f_ord
    we = int(iso_to_ordinal(start_window[1])) - f_ord
    n_w = we + horizon + 1
    wk_ord = f_ord + np.arange(n_w, dtype=np.int64)
    weeks = ordinal_to_iso(wk_ord)
    year_of_col = weeks // 100

    # ---------------- baseline and latent traits
    age0 = 18.0 + 38.0 * rng.beta(1.1, 1.5, n)
    birth_year = (2008 + (f_ord - int(iso_to_ordinal(200826))) / WEEKS_PER_YEAR - age0)
    birth_year = np.floor(birth_year).astype(np.int64)
    female = (rng.random(n) < 0.45).astype(np.int8)
    immigrant = (rng.random(n) < 0.25).astype(np.int8)
    edu = np.searchsorted(np.cumsum([0.55, 0.35, 0.10]), rng.random(n), side="right")
    edu = np.minimum(edu, 2)
    psych = (rng.random(n) < 0.30).astype(np.int8)
    region = np.minimum(np.searchsorted(np.cumsum([0.30, 0.15, 0.22, 0.22, 0.11]),
                                        rng.random(n), side="right"), 4)
    u = rng.standard_normal(n)
    v = 0.7 * rng.standard_normal(n)
    birth_ord = iso_to_ordinal(birth_year * 100 + 26).astype(np.float64)

    # static parts of the log rates and of the start logit
    lp_e = (0.35 * (edu == 1) + 0.7 * (edu == 2) - 0.5 * psych - 0.3 * immigrant
            - 0.1 * female + v - confounding * u)
    lp_u = (-0.4 * psych + 0.3 * (edu == 0) + 0.5 * v - 0.5 * confounding * u)
    region_eff = np.array([0.0, 0.1, -0.1, 0.05, 0.15])[region]
    st_static = (np.log(start_rate) - 6.22 + 0.5 * psych + 0.2 * immigrant + 0.1 * female
                 - 0.4 * (edu == 2) + region_eff + confounding * u)
    year_eff = {2012: 0.0, 2013: 0.45, 2014: 0.5}

    # effect parameters (log-rate scale), multiplied by effect_scale
    lock_e, lock_u = -0.7 * effect_scale, -0.5 * effect_scale
    gain_e, gain_u, kappa = 0.3 * effect_scale, 0.45 * effect_scale, 52.0

    # ---------------- initial state (week -1) and pre-register benefit duration
    init_p = np.array([0.12, 0.04, 0.06, 0.46, 0.20, 0.04, 0.08, 0.0, 0.0])
    state0 = np.minimum(np.searchsorted(np.cumsum(init_p), rng.random(n), side="right"), 8)
    dur0 = np.where(_BENEFIT[state0], rng.gamma(1.0, 40.0, n), 0.0).astype(np.int32)
    obs = _World(
        prev=state0.astype(np.int8),
        dur=dur0,
        emp52=np.zeros(n, np.int16),
        spell_start=np.full(n, _NO_SPELL, np.int32),
        spell_end=np.full(n, _NO_SPELL, np.int32),
        first_end=np.full(n, _NEVER, np.int32),
    )
    # lookup tables: gain build-up g(t) = 1 - exp(-t / kappa) for t = weeks since the first
    # episode ended (0 before), and duration dependence (1 + d / 52) ** -0.5 for d weeks
    post_lut = np.r_[0.0, -np.expm1(-np.arange(1, n_w + 1) / kappa)]
    dur_lut = 1.0 / np.sqrt(1.0 + np.arange(int(dur0.max(initial=0)) + n_w + 2) / 52.0)
    zt = np.empty((n_w, n), dtype=np.int8)  # week-major: one contiguous row per week
    treat_col = np.full(n, -1, np.int64)  # s_i of the treated start (first start in window)
    elapsed_at = np.zeros(n, np.int64)
    cf_a = _World(obs.prev.copy(), obs.dur.copy(), obs.emp52.copy(), obs.spell_start.copy(),
                  obs.spell_end.copy(), obs.first_end.copy())
    cf_b = _World(obs.prev.copy(), obs.dur.copy(), obs.emp52.copy(), obs.spell_start.copy(),
                  obs.spell_end.copy(), obs.first_end.copy())
    path_a = np.zeros((n, horizon + 1), dtype=np.int8)
    path_b = np.zeros((n, horizon + 1), dtype=np.int8)
    new_by_week: list[npt.NDArray[np.int64]] = []
    spell_rows: list[npt.NDArray[np.int64]] = []
    spell_cols: list[npt.NDArray[np.int64]] = []
    spell_len: list[npt.NDArray[np.int32]] = []

    def features(world: _World, rows: Rows, w: int,
                 hist: npt.NDArray[np.int8] | None) -> None:
        """Advance dur and emp52 from week w-1 information (in place on ``rows``)."""
        prev = world.prev[rows]
        world.dur[rows] = np.where(_BENEFIT[prev], world.dur[rows] + 1, 0)
        delta = (prev == E).astype(np.int16)
        if hist is not None:
            delta -= (hist == E).astype(np.int16)
        world.emp52[rows] += delta

    def draw_starts(world: _World, rows: Rows, w: int,
                    v: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        """Global rows among ``rows`` that are eligible and start in week ``w``."""
        prev = world.prev[rows]
        age = (wk_ord[w] - birth_ord[rows]) / WEEKS_PER_YEAR
        ok = np.flatnonzero(_CASH[prev] & (w - world.spell_end[rows] > 52)
                            & (age >= 18) & (age < 65))
        g = ok + (rows.start or 0) if isinstance(rows, slice) else rows[ok]
        dur = np.minimum(world.dur[g], 156) / 52.0
        logit = (st_static[g] + year_eff.get(int(year_of_col[w]), 0.5)
                 - 0.03 * (age[ok] - 40.0) + 0.4 * (prev[ok] == A) + 0.1 * dur
                 - 1.5 * world.emp52[g] / 52.0)
        return g[v[g] < 1.0 / (1.0 + np.exp(-logit))].astype(np.int64)

    def begin(world: _World, rows: npt.NDArray[np.int64], w: int,
              q: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
        length = _spell_length(q, mean_spell_weeks, 2.5)
        world.spell_start[rows] = w
        world.spell_end[rows] = w + length - 1
        first = world.first_end[rows] == _NEVER
        world.first_end[rows[first]] = w + length[first] - 1
        return length

    def transition(world: _World, rows: Rows, w: int,
                   unif: npt.NDArray[np.float32]) -> npt.NDArray[np.int8]:
        prev = world.prev[rows]
        in_spell = (world.spell_start[rows] <= w) & (w <= world.spell_end[rows])
        post = post_lut[np.clip(w - world.first_end[rows], 0, n_w)]
        durfac = dur_lut[world.dur[rows]]  # dur is 0 (factor 1) unless on benefit in w - 1
        age = (wk_ord[w] - birth_ord[rows]) / WEEKS_PER_YEAR
        emp = world.emp52[rows] / 52.0
        p_e = _P0[prev, E] * durfac * np.exp(np.minimum(
            lp_e[rows] + lock_e * in_spell + gain_e * post + 1.0 * emp
            - 0.02 * np.maximum(age - 45.0, 0.0), 3.0))
        p_u = _P0[prev, U] * durfac * np.exp(np.minimum(
            lp_u[rows] + lock_u * in_spell + gain_u * post + 1.1 * (age < 30)
            - 0.06 * np.maximum(age - 30.0, 0.0), 3.0))
        new = _draw_destination(prev, unif, p_e, p_u)
        world.prev[rows] = new
        return new

    for w in range(n_w):
        rnd = _week_uniforms(ss, w, n)
        # -------- observed regime, all persons, in cache-sized blocks of rows
        new_parts: list[npt.NDArray[np.int64]] = []
        for a in range(0, n, _BLOCK):
            blk = slice(a, min(n, a + _BLOCK))
            features(obs, blk, w, zt[w - 53, blk] if w >= 53 else None)
            if w < ws:
                zt[w, blk] = transition(obs, blk, w, rnd[0, blk])
                continue
            starters = draw_starts(obs, blk, w, rnd[1])
            new_b = starters[treat_col[starters] < 0] if w <= we else starters[:0]
            if new_b.size:
                treat_col[new_b] = w
                elapsed_at[new_b] = obs.dur[new_b]
                for cf in (cf_a, cf_b):
                    cf.prev[new_b] = obs.prev[new_b]
                    cf.dur[new_b] = obs.dur[new_b]
                    cf.emp52[new_b] = obs.emp52[new_b]
                    cf.spell_start[new_b] = obs.spell_start[new_b]
                    cf.spell_end[new_b] = obs.spell_end[new_b]
                    cf.first_end[new_b] = obs.first_end[new_b]
                new_parts.append(new_b)
            if starters.size:
                length = begin(obs, starters, w, rnd[2, starters])
                spell_rows.append(starters)
                spell_cols.append(np.full(starters.size, w, np.int64))
                spell_len.append(length)
            zt[w, blk] = transition(obs, blk, w, rnd[0, blk])
        new_t = np.concatenate(new_parts) if new_parts else np.zeros(0, np.int64)
        # -------- counterfactual regimes, active treated starts only
        old = (np.concatenate(new_by_week[-horizon:]) if new_by_week else np.zeros(0, np.int64))
        new_by_week.append(new_t)
        if old.size == 0 and new_t.size == 0:
            continue
        s_old = treat_col[old]
        for cf, path, allow_later in ((cf_a, path_a, True), (cf_b, path_b, False)):
            if old.size:
                if w >= 53:
                    back = w - 53 - s_old
                    hist_cf = np.where(back >= 0, path[old, np.maximum(back, 0)], zt[w - 53, old])
                else:
                    hist_cf = None
                features(cf, old, w, hist_cf)
            act = np.concatenate([old, new_t])
            if allow_later and old.size:
                later = draw_starts(cf, old, w, rnd[1])
                if later.size:
                    begin(cf, later, w, rnd[2, later])
            path[act, w - treat_col[act]] = transition(cf, act, w, rnd[0, act])

    # ---------------- spells: episodes clipped at the register end, some fragmented
    if spell_rows:
        s_row = np.concatenate(spell_rows)
        s_col = np.concatenate(spell_cols)
        s_len = np.concatenate(spell_len).astype(np.int64)
    else:
        s_row = s_col = s_len = np.zeros(0, np.int64)
    s_end = np.minimum(s_col + s_len - 1, n_w - 1)
    length = s_end - s_col + 1
    frag = (rng.random(s_row.size) < fragment_share) & (length >= 6)
    gap = rng.integers(1, 4, s_row.size)
    cut = 1 + np.floor(rng.random(s_row.size) * np.maximum(length - gap - 1, 1)).astype(np.int64)
    # piece 1: [start, start+cut-1]; piece 2: [start+cut+gap, end]
    p1_end = np.where(frag, s_col + cut - 1, s_end)
    p2_start = s_col + cut + gap
    rows_all = np.concatenate([s_row, s_row[frag]])
    start_all = np.concatenate([s_col, p2_start[frag]])
    end_all = np.concatenate([p1_end, s_end[frag]])
    hours = rng.gamma(2.0, 1.7, rows_all.size)
    order = np.lexsort((start_all, rows_all))
    persons = 10_000_000 + rng.choice(10 * n, size=n, replace=False).astype(np.int64)
    spells = TreatmentSpells(
        persons[rows_all[order]], weeks[start_all[order]], weeks[end_all[order]], hours[order]
    )

    # ---------------- register codes
    codes_t = np.take(_STATE_CODE, zt)
    c2014 = int(np.searchsorted(year_of_col, 2014))
    for y in np.unique(year_of_col[c2014:]):
        cols = np.flatnonzero(year_of_col == y)
        a, b = int(cols[0]), int(cols[-1]) + 1
        young = (iso_to_ordinal(int(y) * 100 + 1) - birth_ord) / WEEKS_PER_YEAR < 30
        sub = codes_t[a:b]
        sub[(zt[a:b] == P) & young[None, :]] = _YOUNG_EDU_BENEFIT_CODE
    codes = np.ascontiguousarray(codes_t.T)
    del codes_t
    register = WeeklyRegister(codes, persons, weeks, catalog=cat)

    baseline = pd.DataFrame(
        {
            "person": persons,
            "birth_year": birth_year,
            "female": female,
            "immigrant": immigrant,
            "education": pd.Categorical.from_codes(
                edu.astype(np.int64), categories=pd.Index(list(_EDUCATION))
            ),
            "psychiatric_history": psych,
            "region": pd.Categorical.from_codes(
                region.astype(np.int64), categories=pd.Index(list(_REGIONS))
            ),
        }
    )
    latent = pd.DataFrame({"u": u, "v": v})

    # ---------------- potential outcomes and truth
    t_rows = np.flatnonzero(treat_col >= 0).astype(np.int64)
    t_cols = treat_col[t_rows]
    taus = np.arange(horizon + 1)
    treated_states = zt[t_cols[:, None] + taus[None, :], t_rows[:, None]]
    po = PotentialOutcomes(
        rows=t_rows,
        start_cols=t_cols,
        treated=treated_states,
        never_now=path_a[t_rows],
        never_followup=path_b[t_rows],
        catalog=cat,
    )
    frames = []
    for name in outcomes:
        for est in ("A", "B"):
            y1, y0 = po.curves(name, est)  # type: ignore[arg-type]
            m1 = y1.mean(axis=0) if y1.shape[0] else np.full(taus.size, np.nan)
            m0 = y0.mean(axis=0) if y0.shape[0] else np.full(taus.size, np.nan)
            frames.append(pd.DataFrame({"outcome": name, "estimand": est, "tau": taus,
                                        "treated_mean": m1, "counterfactual_mean": m0,
                                        "effect": m1 - m0}))
    truth = pd.concat(frames, ignore_index=True)
    config = {
        "n_persons": n,
        "seed": seed if isinstance(seed, (int, np.integer)) or seed is None else repr(seed),
        "first_week": int(first_week),
        "start_window": (int(start_window[0]), int(start_window[1])),
        "horizon": int(horizon),
        "confounding": float(confounding),
        "effect_scale": float(effect_scale),
        "start_rate": float(start_rate),
        "mean_spell_weeks": float(mean_spell_weeks),
        "fragment_share": float(fragment_share),
        "catalog_version": cat.version,
    }
    return MentorStudy(
        register=register,
        spells=spells,
        baseline=baseline,
        truth=truth,
        potential_outcomes=po,
        latent=latent,
        config=config,
        _elapsed_at_start=elapsed_at[t_rows],
    )
