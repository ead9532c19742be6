"""Inference: covariance estimators on influence functions and uniform bands."""

from mentor_impact.inference.bands import (
    multiplier_bootstrap_critical_value,
    sup_t_critical_value,
)
from mentor_impact.inference.covariance import (
    IID,
    Clustered,
    CovarianceEstimator,
    cluster_sums,
    resolve_cov,
)

__all__ = [
    "IID",
    "Clustered",
    "CovarianceEstimator",
    "cluster_sums",
    "multiplier_bootstrap_critical_value",
    "resolve_cov",
    "sup_t_critical_value",
]
