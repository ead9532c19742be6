"""Diagnostics: covariate and curve balance, effective sample size, reuse, overlap plots."""

from __future__ import annotations

from mentor_impact.diagnostics.balance import (
    balance_table,
    compare_balance,
    curve_balance,
    effective_sample_size,
    reuse_summary,
)

__all__ = [
    "balance_table",
    "compare_balance",
    "curve_balance",
    "effective_sample_size",
    "reuse_summary",
]
