"""Version of mentor_impact."""

__version__ = "0.1.0"
