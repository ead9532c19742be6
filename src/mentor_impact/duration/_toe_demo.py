"""Timing-of-events on a simulated mentor study (for ``mentor-impact demo``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mentor_impact._rng import SeedLike
from mentor_impact.duration.toe import (
    TimingOfEvents,
    TimingOfEventsResults,
    spells_from_register,
)

if TYPE_CHECKING:
    from mentor_impact.results import EffectResults

__all__ = ["ToeDemo", "timing_of_events_demo"]


@dataclass(frozen=True)
class ToeDemo:
    """Output of :func:`timing_of_events_demo`.

    Attributes
    ----------
    results : TimingOfEventsResults
        The fitted model (parameters, K search, mass points).
    effects : dict of str to EffectResults
        Effects of the start on the probability of having left benefit to each exit
        cause (cumulative incidence) and on staying in the spell (``"survival"``) at the
        requested weeks after the start, for the treated.
    spells : pandas.DataFrame
        The spell data built by :func:`spells_from_register`.
    truth : pandas.DataFrame or None
        The simulator's true effects (estimand B, weekly state outcomes) averaged over the
        treated spells' starts, for orientation only: they are state prevalences, not the
        exit probabilities the ToE effects measure.
    notes : list of str
        What was fitted and the conventions in force.
    """

    results: TimingOfEventsResults
    effects: dict[str, EffectResults]
    spells: pd.DataFrame
    truth: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """Tidy table of the probability effects (one row per outcome and week).

        Returns
        -------
        pandas.DataFrame
            ``outcome, target, estimate, std_error, ci_lower, ci_upper, treated_mean,
            counterfactual_mean``.
        """
        frames = []
        for name, eff in self.effects.items():
            ci = eff.conf_int()
            frames.append(
                pd.DataFrame(
                    {
                        "outcome": name,
                        "target": list(eff.targets),
                        "estimate": eff.estimate,
                        "std_error": eff.std_errors.to_numpy(),
                        "ci_lower": ci.iloc[:, 0].to_numpy(),
                        "ci_upper": ci.iloc[:, 1].to_numpy(),
                        "treated_mean": eff.treated_mean,
                        "counterfactual_mean": eff.counterfactual_mean,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def timing_of_events_demo(
    study: Any = None,
    *,
    n_persons: int = 20_000,
    seed: SeedLike = 0,
    confounding: float = 0.0,
    taus: Sequence[int] = (26, 52, 104, 156),
    covariates: Sequence[str] = ("female", "immigrant", "psychiatric_history",
                                 "prior_benefit_share"),
    max_support_points: int = 3,
) -> ToeDemo:
    """Fit the timing-of-events model on a simulated study and return its effects.

    Parameters
    ----------
    study : MentorStudy, optional
        A study from :func:`mentor_impact.datasets.simulate_mentor_study`; simulated with
        ``n_persons``, ``seed`` and ``confounding`` when omitted.
    n_persons : int
        Study size when simulating.
    seed : int, Generator or None
        Seed of the simulation and of the K search.
    confounding : float
        The simulator's unobserved-confounding knob.
    taus : sequence of int
        Weeks after the start at which effects are reported.
    covariates : sequence of str
        Baseline covariates (time-constant, at spell entry).
    max_support_points : int
        Largest K in the search over mass points.

    Returns
    -------
    ToeDemo
        Fitted model, effects on probabilities and the spell data.

    Notes
    -----
    Spells are the first benefit spell entered inside the register window (inflow
    sample, so no left-truncation correction is needed), with exits to employment,
    education and other self-support; covariates are measured at spell entry.
    """
    from mentor_impact.datasets import simulate_mentor_study

    if study is None:
        study = simulate_mentor_study(n_persons, seed=seed, confounding=confounding)
    spells = spells_from_register(
        study.register, study.spells.episodes(gap=4), study.baseline, sample="inflow",
        max_weeks=max(int(max(taus)), 156),
    )
    causes = tuple(spells.attrs["causes"])
    covs = [c for c in covariates if c in spells.columns]
    est = TimingOfEvents(
        exit_cuts=(0, 13, 26, 52, 104),
        start_cuts=(0, 26, 52, 104),
        effect_bins=(0, 13, 26, 52),
        cause_labels=causes,
        max_support_points=max_support_points,
        truncation="inflow",
    )
    res = est.fit(spells, duration="duration", exit="exit", start="start", covariates=covs,
                  cluster="person", seed=seed)
    effects = {
        name: res.effects_on_probabilities(taus, outcome=name)
        for name in (*causes, "survival")
    }
    truth = None
    treated = spells[spells.start >= 0]
    if hasattr(study, "truth_for") and hasattr(study, "treated_starts") and len(treated):
        cand = pd.DataFrame(
            {
                "row": treated["row"].to_numpy(),
                "start_col": (treated["entry_col"] + treated["start"] - 1).to_numpy(),
            }
        )
        known = cand.merge(study.treated_starts[["row", "start_col"]], on=["row", "start_col"])
        if len(known):
            tr = study.truth_for(known["row"].to_numpy(), known["start_col"].to_numpy(),
                                 "employment_or_education", estimand="B")
            truth = tr[tr["tau"].isin(list(taus))].reset_index(drop=True)
    notes = [
        f"inflow sample of {res.n_spells} spells, {res.n_treated} with a mentor start",
        f"K selected by AIC: {res.n_support_points}",
        "effects: cumulative incidence of exit by cause / survival in the benefit spell, "
        "treated with vs without the estimated effects (posterior-integrated)",
    ]
    return ToeDemo(results=res, effects=effects, spells=spells, truth=truth,
                   notes=notes + ([] if np.isfinite(res.loglik) else ["loglik not finite"]))
