"""mentor_impact: causal effects of mentor support from weekly register data."""

from mentor_impact._version import __version__

__all__ = ["__version__"]
