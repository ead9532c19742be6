"""Duration outcomes: nonparametric curves, hazard regression and treatment effects on durations."""

from mentor_impact.duration._regression_results import RegressionResults
from mentor_impact.duration._survival_results import ArmCurve, SurvivalResults
from mentor_impact.duration._toe_demo import (
    DEMO_BASIC_COVARIATES,
    ToeDemo,
    timing_of_events_demo,
)
from mentor_impact.duration.cox import CoxPH, CoxPHResults, marginal_hazard_ratio
from mentor_impact.duration.effects import survival_effect
from mentor_impact.duration.finegray import FineGray, FineGrayResults
from mentor_impact.duration.hazard import DiscreteTimeHazard, PiecewiseExponential
from mentor_impact.duration.nonparametric import AalenJohansen, KaplanMeier, logrank_test
from mentor_impact.duration.toe import (
    TimingOfEvents,
    TimingOfEventsResults,
    spells_from_register,
    start_gaps_from_register,
)

__all__ = [
    "DEMO_BASIC_COVARIATES",
    "AalenJohansen",
    "ArmCurve",
    "CoxPH",
    "CoxPHResults",
    "DiscreteTimeHazard",
    "FineGray",
    "FineGrayResults",
    "KaplanMeier",
    "PiecewiseExponential",
    "RegressionResults",
    "SurvivalResults",
    "TimingOfEvents",
    "TimingOfEventsResults",
    "ToeDemo",
    "logrank_test",
    "marginal_hazard_ratio",
    "spells_from_register",
    "start_gaps_from_register",
    "survival_effect",
    "timing_of_events_demo",
]
