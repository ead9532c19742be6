"""Datasets: the known-truth mentor-study simulator and small generators for tests."""

from mentor_impact.datasets.duration_truth import potential_durations, true_duration_effects
from mentor_impact.datasets.public import load_lalonde, load_mgus2, load_veteran
from mentor_impact.datasets.simulate import (
    OUTCOMES,
    MentorStudy,
    PotentialOutcomes,
    simulate_mentor_study,
)

__all__ = [
    "OUTCOMES",
    "MentorStudy",
    "PotentialOutcomes",
    "load_lalonde",
    "load_mgus2",
    "load_veteran",
    "potential_durations",
    "simulate_mentor_study",
    "true_duration_effects",
]

try:  # the timing-of-events generator is owned by the duration module's author
    from mentor_impact.datasets.toe_sim import ToeSimulation, simulate_toe

    __all__ += ["ToeSimulation", "simulate_toe"]
except ImportError:  # pragma: no cover
    pass
