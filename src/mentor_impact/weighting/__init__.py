"""Weighting estimators: IPW (Hajek / Horvitz-Thompson, ATT/ATE/ATC/ATO), estimand B
censoring weights, AIPW with cross-fitting, and effect heterogeneity."""

from __future__ import annotations

from mentor_impact.weighting.aipw import AIPW, person_folds
from mentor_impact.weighting.bands import multiplier_band
from mentor_impact.weighting.ipw import IPW, PropensityFit, compare_estimands, fit_propensity

__all__ = ["AIPW", "IPW", "multiplier_band", "person_folds", "PropensityFit", "compare_estimands", "fit_propensity"]
