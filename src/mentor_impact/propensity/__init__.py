"""Propensity score models, overlap and trimming rules."""

from __future__ import annotations

from mentor_impact.propensity.model import PropensityModel

__all__ = ["PropensityModel"]
