"""mentor_impact: causal effects of mentor support from weekly register data.

The public API, in the order of the data flow: registers → design → estimators → results.
See ``docs/`` for the user guide and ``help(name)`` for each name.
"""

from mentor_impact import datasets
from mentor_impact._version import __version__
from mentor_impact.design import DurationOutcome, EvaluationData, RiskSetDesign
from mentor_impact.design.outcomes import pre_start_curves
from mentor_impact.design.risk_set import true_effects
from mentor_impact.diagnostics import (
    balance_table,
    compare_balance,
    curve_balance,
    effective_sample_size,
    love_plot,
    ps_density_plot,
    reuse_summary,
)
from mentor_impact.duration import (
    AalenJohansen,
    CoxPH,
    CoxPHResults,
    DiscreteTimeHazard,
    FineGray,
    FineGrayResults,
    KaplanMeier,
    PiecewiseExponential,
    RegressionResults,
    SurvivalResults,
    TimingOfEvents,
    logrank_test,
    marginal_hazard_ratio,
    spells_from_register,
    start_gaps_from_register,
    survival_effect,
)
from mentor_impact.exceptions import (
    ConfigurationError,
    ConvergenceError,
    ConvergenceWarning,
    DataValidationError,
    DataWarning,
    DisclosureWarning,
    EstimationError,
    ImbalanceWarning,
    MentorImpactError,
    MentorImpactWarning,
    MissingDependencyError,
    NotFittedError,
    PositivityWarning,
    SeparationWarning,
)
from mentor_impact.inference import IID, Clustered
from mentor_impact.matching import (
    AbadieImbens,
    Caliper,
    KernelMatching,
    MatchedSetRegression,
    NearestNeighborMatching,
    RadiusMatching,
)
from mentor_impact.propensity import PropensityModel, common_support, crump_alpha, trim
from mentor_impact.registers import StateCatalog, TreatmentSpells, WeeklyRegister
from mentor_impact.results import EffectResults
from mentor_impact.weighting import AIPW, IPW, cate_summary, subgroup_effects

__all__ = [
    "AIPW",
    "IID",
    "IPW",
    "AalenJohansen",
    "AbadieImbens",
    "Caliper",
    "Clustered",
    "ConfigurationError",
    "ConvergenceError",
    "ConvergenceWarning",
    "CoxPH",
    "CoxPHResults",
    "DataValidationError",
    "DataWarning",
    "DisclosureWarning",
    "DiscreteTimeHazard",
    "DurationOutcome",
    "EffectResults",
    "EstimationError",
    "EvaluationData",
    "FineGray",
    "FineGrayResults",
    "ImbalanceWarning",
    "KaplanMeier",
    "KernelMatching",
    "MatchedSetRegression",
    "MentorImpactError",
    "MentorImpactWarning",
    "MissingDependencyError",
    "NearestNeighborMatching",
    "NotFittedError",
    "PiecewiseExponential",
    "PositivityWarning",
    "PropensityModel",
    "RadiusMatching",
    "RegressionResults",
    "RiskSetDesign",
    "SeparationWarning",
    "StateCatalog",
    "SurvivalResults",
    "TimingOfEvents",
    "TreatmentSpells",
    "WeeklyRegister",
    "__version__",
    "balance_table",
    "cate_summary",
    "common_support",
    "compare_balance",
    "crump_alpha",
    "curve_balance",
    "datasets",
    "effective_sample_size",
    "logrank_test",
    "love_plot",
    "marginal_hazard_ratio",
    "pre_start_curves",
    "ps_density_plot",
    "reuse_summary",
    "spells_from_register",
    "start_gaps_from_register",
    "subgroup_effects",
    "survival_effect",
    "trim",
    "true_effects",
]
