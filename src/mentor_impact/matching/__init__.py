"""Matching estimators: nearest neighbour, radius and kernel matching; Abadie–Imbens variance."""

from __future__ import annotations

from mentor_impact.matching._core import Matches
from mentor_impact.matching._options import AbadieImbens, Caliper, MatchedSetRegression
from mentor_impact.matching.nearest import (
    KernelMatching,
    NearestNeighborMatching,
    RadiusMatching,
)

__all__ = [
    "AbadieImbens",
    "Caliper",
    "KernelMatching",
    "MatchedSetRegression",
    "Matches",
    "NearestNeighborMatching",
    "RadiusMatching",
]
