"""Input validation and covariate encoding shared by the duration regressions (private).

Used by :mod:`~mentor_impact.duration.cox`, :mod:`~mentor_impact.duration.hazard` and
:mod:`~mentor_impact.duration.finegray`. Messages follow the contract: argument, expectation,
counts and row positions, hint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.duration._regression_results import (
    ModelFrame,
    _positions,
    as_float_column,
    build_model_frame,
    check_rank,
    group_codes,
    weights_column,
)
from mentor_impact.exceptions import DataValidationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_frame(df: object) -> None:
    """Raise :class:`DataValidationError` unless ``df`` is a pandas DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"df: expected a pandas DataFrame; found {type(df).__name__}.")


def check_positive_durations(
    stop: FloatArray, hint: str = "drop them or add a small positive time.",
    allow_zero: bool = False,
) -> None:
    """Raise when a duration is zero or negative (no entry column).

    With ``allow_zero`` only negative durations raise (R's ``coxph`` convention for
    right-censored data: a zero time is at risk from time 0 and ordered first).
    """
    if allow_zero:
        bad = stop < 0
        if bad.any():
            raise DataValidationError(
                f"duration: expected non-negative durations; found {int(bad.sum())} negative "
                f"({_positions(bad)}). Hint: {hint}"
            )
        return
    bad = stop <= 0
    if bad.any():
        raise DataValidationError(
            f"duration: expected positive durations; found {int(bad.sum())} zero or negative "
            f"({_positions(bad)}). Hint: {hint}"
        )


def check_has_events(is_event: npt.NDArray[np.bool_], n: int) -> None:
    """Raise when no row has an event (all censored)."""
    if not is_event.any():
        raise DataValidationError(
            f"event: expected at least one event; found 0 events among {n} rows (all "
            "censored). Hint: check the event coding (1 = event)."
        )


def covariate_matrix(
    df: pd.DataFrame,
    covariates: Sequence[str],
    w: FloatArray,
    reference_levels: Mapping[str, Any] | None,
) -> tuple[FloatArray, ModelFrame]:
    """Encode the covariates (treatment contrasts named like R) and check their rank."""
    x, frame = build_model_frame(df, covariates, reference_levels)
    check_rank(x, frame.names, w, "covariates")
    return x, frame


def event_indicator(df: pd.DataFrame, event: str, codes: Sequence[int] = (0, 1)) -> FloatArray:
    """Event column as integer codes within ``codes`` (booleans map to 0/1)."""
    e = as_float_column(df, event, "event")
    bad = ~np.isin(e, np.asarray(codes, dtype=float))
    if bad.any():
        raise DataValidationError(
            f"event: expected codes in {sorted(codes)}; found {int(bad.sum())} rows with other "
            f"values ({_positions(bad)}). Hint: recode the event column (0 = censored)."
        )
    return e


def common_inputs(
    df: pd.DataFrame,
    duration: str,
    event: str,
    covariates: Sequence[str],
    weights: str | None,
    entry: str | None,
    cluster: str | None,
    reference_levels: Mapping[str, Any] | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, Any, IntArray | None]:
    """Validate and return ``(stop, event, start, weight, x, frame, cluster codes)``."""
    check_frame(df)
    stop = as_float_column(df, duration, "duration")
    ev = event_indicator(df, event)
    start = np.zeros(len(df)) if entry is None else as_float_column(df, entry, "entry")
    if entry is None:
        check_positive_durations(stop)
    else:
        bad = stop <= start
        if bad.any():
            raise DataValidationError(
                f"duration: expected duration > entry; found {int(bad.sum())} rows with "
                f"duration <= entry ({_positions(bad)}). Hint: drop empty intervals."
            )
        neg = start < 0
        if neg.any():
            raise DataValidationError(
                f"entry: expected entry >= 0; found {int(neg.sum())} negative ({_positions(neg)})."
            )
    w = weights_column(df, weights)
    check_has_events(ev == 1, len(df))
    x, frame = covariate_matrix(df, covariates, w, reference_levels)
    clus = None if cluster is None else group_codes(df, cluster, "cluster")
    return stop, ev, start, w, x, frame, clus
