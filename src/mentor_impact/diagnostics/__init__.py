"""Diagnostics: covariate and curve balance, effective sample size, reuse, overlap plots."""

from __future__ import annotations

from mentor_impact.diagnostics.balance import (
    balance_table,
    compare_balance,
    curve_balance,
    effective_sample_size,
    reuse_summary,
    weighted_column_means,
)
from mentor_impact.diagnostics.plots import love_plot, ps_density_plot

__all__ = [
    "balance_table",
    "compare_balance",
    "curve_balance",
    "effective_sample_size",
    "love_plot",
    "ps_density_plot",
    "reuse_summary",
    "weighted_column_means",
]
