"""Weekly registers: states, the code catalogue, the register matrix and treatment spells."""

from mentor_impact.registers.catalog import DEFAULT_CATALOG_VERSION, StateCatalog
from mentor_impact.registers.isoweek import (
    iso_range,
    iso_to_ordinal,
    iso_weeks_in_year,
    ordinal_to_iso,
)
from mentor_impact.registers.register import WeeklyRegister, parse_week_column
from mentor_impact.registers.spells import TreatmentSpells, merge_episodes

__all__ = [
    "DEFAULT_CATALOG_VERSION",
    "StateCatalog",
    "TreatmentSpells",
    "WeeklyRegister",
    "iso_range",
    "iso_to_ordinal",
    "iso_weeks_in_year",
    "merge_episodes",
    "ordinal_to_iso",
    "parse_week_column",
]
