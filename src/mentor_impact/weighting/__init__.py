"""Weighting estimators.

IPW (Hajek / Horvitz-Thompson; ATT, ATE, ATC, overlap weights; risk-set normalisation),
estimand B censoring weights, AIPW with cross-fitting by person, multiplier-bootstrap
uniform bands, and effect heterogeneity (subgroups with Holm / BH, CATE via econml).
"""

from __future__ import annotations

from mentor_impact.weighting.aipw import AIPW, person_folds
from mentor_impact.weighting.bands import multiplier_band
from mentor_impact.weighting.demo import weighting_table
from mentor_impact.weighting.heterogeneity import (
    CATESummary,
    SubgroupEffects,
    adjust_pvalues,
    cate_summary,
    subgroup_effects,
)
from mentor_impact.weighting.ipw import IPW, PropensityFit, compare_estimands, fit_propensity

__all__ = [
    "AIPW",
    "IPW",
    "CATESummary",
    "PropensityFit",
    "SubgroupEffects",
    "adjust_pvalues",
    "cate_summary",
    "compare_estimands",
    "fit_propensity",
    "multiplier_band",
    "person_folds",
    "subgroup_effects",
    "weighting_table",
]
