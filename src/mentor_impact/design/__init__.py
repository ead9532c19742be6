"""Design: the validated evaluation sample and the dynamic risk-set design."""

from mentor_impact.design.evaluation_data import DurationOutcome, EvaluationData, encode_covariates
from mentor_impact.design.risk_set import RiskSetDesign

__all__ = ["DurationOutcome", "EvaluationData", "RiskSetDesign", "encode_covariates"]
