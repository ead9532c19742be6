"""Design: the validated evaluation sample and the dynamic risk-set design."""

from mentor_impact.design.evaluation_data import DurationOutcome, EvaluationData, encode_covariates

__all__ = ["DurationOutcome", "EvaluationData", "encode_covariates"]

try:  # the risk-set design lands separately; keep the container importable on its own
    from mentor_impact.design.risk_set import RiskSetDesign

    __all__ += ["RiskSetDesign"]
except ImportError:  # pragma: no cover - only while the module is being written
    pass
