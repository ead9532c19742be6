"""Datasets: the known-truth mentor-study simulator and small generators for tests."""

from mentor_impact.datasets.duration_truth import potential_durations, true_duration_effects
from mentor_impact.datasets.public import load_lalonde, load_mgus2, load_veteran
from mentor_impact.datasets.simulate import (
    OUTCOMES,
    MentorStudy,
    PotentialOutcomes,
    simulate_mentor_study,
)
from mentor_impact.datasets.toe_sim import ToeSimulation, simulate_toe

__all__ = [
    "OUTCOMES",
    "MentorStudy",
    "PotentialOutcomes",
    "ToeSimulation",
    "load_lalonde",
    "load_mgus2",
    "load_veteran",
    "potential_durations",
    "simulate_mentor_study",
    "simulate_toe",
    "true_duration_effects",
]
