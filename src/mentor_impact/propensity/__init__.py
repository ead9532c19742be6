"""Propensity score models, overlap and trimming rules."""

from __future__ import annotations

from mentor_impact.propensity.model import PropensityModel
from mentor_impact.propensity.overlap import TrimResult, common_support, crump_alpha, trim

__all__ = ["PropensityModel", "TrimResult", "common_support", "crump_alpha", "trim"]
