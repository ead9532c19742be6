"""Reporting: HTML reports, disclosure control and reproducibility comparison."""

from mentor_impact.reporting.compare import compare_results, flatten_estimates
from mentor_impact.reporting.disclosure import is_count_column, suppress_counts
from mentor_impact.reporting.html import Report, Section, figure_png

__all__ = [
    "Report",
    "Section",
    "compare_results",
    "figure_png",
    "flatten_estimates",
    "is_count_column",
    "suppress_counts",
]
