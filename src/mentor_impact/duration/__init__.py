"""Duration outcomes: nonparametric curves, hazard regression and treatment effects on durations."""

from mentor_impact.duration._survival_results import ArmCurve, SurvivalResults
from mentor_impact.duration.nonparametric import AalenJohansen, KaplanMeier, logrank_test

__all__ = [
    "AalenJohansen",
    "ArmCurve",
    "KaplanMeier",
    "SurvivalResults",
    "logrank_test",
]
