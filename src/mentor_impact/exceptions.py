"""The one error and warning hierarchy of mentor_impact.

Every error raised on purpose by the library derives from :class:`MentorImpactError`,
every warning from :class:`MentorImpactWarning`. Messages follow one rule: they name the
argument, what was expected, what was found (with counts and row positions, never
person identifiers or data values) and a hint on what to do next.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataValidationError",
    "DataWarning",
    "DisclosureWarning",
    "EstimationError",
    "ImbalanceWarning",
    "MentorImpactError",
    "MentorImpactWarning",
    "MissingDependencyError",
    "NotFittedError",
    "PositivityWarning",
    "SeparationWarning",
]


class MentorImpactError(Exception):
    """Base class of every error raised by mentor_impact."""


class DataValidationError(MentorImpactError, ValueError):
    """Input data do not satisfy the documented contract (types, shapes, ranges, codes)."""


class ConfigurationError(MentorImpactError, ValueError):
    """An option, hyper-parameter or study specification is invalid."""


class NotFittedError(MentorImpactError, ValueError, AttributeError):
    """A fitted attribute was requested from an estimator that has not been fitted."""


class ConvergenceError(MentorImpactError, RuntimeError):
    """An iterative algorithm did not converge; the message states what was tried."""


class EstimationError(MentorImpactError, RuntimeError):
    """The estimator cannot produce an estimate on these data (e.g. no matches at all)."""


class MissingDependencyError(MentorImpactError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


class MentorImpactWarning(UserWarning):
    """Base class of every warning issued by mentor_impact."""


class PositivityWarning(MentorImpactWarning):
    """Limited overlap: extreme propensity scores or weights, small effective sample size."""


class ImbalanceWarning(MentorImpactWarning):
    """Covariates remain imbalanced after matching or weighting."""


class SeparationWarning(MentorImpactWarning):
    """(Quasi-)complete separation in a binary-response model; coefficients may be infinite."""


class ConvergenceWarning(MentorImpactWarning):
    """An iterative algorithm stopped before meeting its tolerance but returned a result."""


class DataWarning(MentorImpactWarning):
    """Data were altered by a documented rule (e.g. unknown codes mapped to ``unknown``)."""


class DisclosureWarning(MentorImpactWarning):
    """Cells were suppressed by the minimum-cell disclosure rule."""
