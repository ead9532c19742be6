"""Fine-Gray proportional subdistribution hazards model for one cause of a competing risk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.duration._inputs import (
    check_frame,
    check_positive_durations,
    covariate_matrix,
)
from mentor_impact.duration._regression_results import (
    _positions,
    as_float_column,
    group_codes,
    weights_column,
)
from mentor_impact.duration.cox import CoxPHResults, fit_cox_arrays
from mentor_impact.exceptions import ConfigurationError, DataValidationError

__all__ = ["FineGray", "FineGrayResults", "censoring_survival"]

FloatArray = npt.NDArray[Any]


def censoring_survival(
    time: FloatArray, censored: npt.NDArray[np.bool_], weight: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted Kaplan-Meier of the censoring distribution ``G``.

    Censorings are the events; every other exit counts as censored (``cmprsk::crr``).

    Parameters
    ----------
    time : ndarray of shape (n,)
        Follow-up times.
    censored : ndarray of bool, shape (n,)
        ``True`` where the row is censored.
    weight : ndarray of shape (n,)
        Case weights.

    Returns
    -------
    times : ndarray
        Distinct censoring times (jump points of ``G``).
    surv : ndarray
        ``G`` just after each of those times (right-continuous).
    """
    ut, inv = np.unique(time, return_inverse=True)
    n_at = np.cumsum(np.bincount(inv, weights=weight)[::-1])[::-1]
    d_c = np.bincount(inv, weights=weight * censored, minlength=ut.size)
    jump = d_c > 0
    surv = np.cumprod(1.0 - d_c[jump] / n_at[jump])
    return ut[jump], surv


def _g_at(times: FloatArray, surv: FloatArray, t: FloatArray, *, left: bool) -> FloatArray:
    """``G(t)`` (right-continuous) or ``G(t-)`` (left limit) from the jump table."""
    idx = np.searchsorted(times, t, side="left" if left else "right") - 1
    return np.where(idx >= 0, surv[np.maximum(idx, 0)], 1.0)


@dataclass(frozen=True, eq=False)
class FineGrayResults(CoxPHResults):
    """:class:`~mentor_impact.duration.CoxPHResults` of a Fine-Gray model.

    ``exp_coef`` are subdistribution hazard ratios; the baseline hazard is the subdistribution
    cumulative hazard, so :meth:`predict_cumulative_incidence` is ``1 - predict_survival``.

    Attributes
    ----------
    params, std_errors, exp_coef : pandas.Series
        Coefficients, their (robust) standard errors and subdistribution hazard ratios, as
        in :class:`~mentor_impact.duration.CoxPHResults`, whose other attributes and
        methods are inherited.
    """

    def predict_cumulative_incidence(self, df: pd.DataFrame, times: npt.ArrayLike) -> pd.DataFrame:
        """Cumulative incidence ``1 - exp(-Lambda_1(t) exp(x' beta))`` of the cause.

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates.
        times : array-like
            Evaluation times.

        Returns
        -------
        pandas.DataFrame
            Shape ``(len(times), len(df))``, indexed by time.
        """
        return 1.0 - self.predict_survival(df, times)


class FineGray:
    """Fine & Gray (1999) proportional subdistribution hazards regression.

    Parameters
    ----------
    cause : int, default 1
        Event code of the cause of interest.
    ties : {"breslow", "efron"}, default "breslow"
        Tie handling in the weighted partial likelihood (``cmprsk::crr`` uses Breslow).
    max_iter : int, default 20
        Newton-Raphson iterations.
    eps : float, default 1e-9
        Convergence tolerance (relative log-likelihood change).

    Notes
    -----
    - Subjects failing from a competing cause stay in the risk set after their exit with
      the time-varying weight ``G(t-) / G(T_j-)``, ``G`` the Kaplan-Meier estimate of the
      censoring distribution (censoring = event, any failure = censored), both taken as left
      limits as ``cmprsk::crr`` (``uuu`` at ``ftime * (1 - 100 eps)``).
    - Computed as ``survival::finegray``: each competing-risk subject gets extra
      counting-process intervals between the censoring times after its exit (up to the last
      event of the cause), with constant weights, then a weighted Cox fit.  Rows grow by
      the number of later censoring times per competing-risk subject.
    - Variance in use: the robust sandwich clustered by subject (``cluster`` or each input
      row).  It ignores the estimation of ``G``, so it differs slightly from ``crr``'s
      variance (which adds that term); the model-based variance is also stored.
    - Case weights multiply the subject weights and enter the censoring Kaplan-Meier.
    """

    def __init__(
        self, *, cause: int = 1, ties: str = "breslow", max_iter: int = 20, eps: float = 1e-9
    ) -> None:
        self.cause = cause
        self.ties = ties
        self.max_iter = max_iter
        self.eps = eps

    def __repr__(self) -> str:
        return f"FineGray(cause={self.cause!r})"

    def fit(
        self,
        df: pd.DataFrame,
        *,
        duration: str,
        event: str,
        covariates: Sequence[str],
        weights: str | None = None,
        strata: str | None = None,
        cluster: str | None = None,
        entry: str | None = None,
        robust: bool = True,
        reference_levels: Mapping[str, Any] | None = None,
        event_codes: Sequence[int] | None = None,
    ) -> FineGrayResults:
        """Fit the subdistribution hazards model.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per subject.
        duration : str
            Time to the first event or censoring (> 0).
        event : str
            0 = censored, ``k`` = failure from cause ``k``.
        covariates : sequence of str
            Covariates (categoricals get treatment contrasts named like R).
        weights : str, optional
            Case weights (> 0).
        strata : None
            Not supported; must be None.
        cluster : str, optional
            Cluster ids for the robust variance (default: each subject).
        entry : None
            Delayed entry is not supported; must be None.
        robust : bool, default True
            Use the robust variance (``False``: model-based).
        reference_levels : mapping, optional
            Reference levels of categorical covariates.
        event_codes : sequence of int, optional
            Declared cause codes; other non-zero codes are an error.

        Returns
        -------
        FineGrayResults
            Subdistribution hazard ratios, baseline subdistribution hazard, ``extra`` with the
            expanded row count and event counts by cause.

        Raises
        ------
        DataValidationError
            Non-positive durations, negative / non-integer / undeclared event codes, no event of
            ``cause``, missing values, collinear covariates.
        """
        if self.ties not in ("breslow", "efron"):
            raise ConfigurationError(f"ties: expected 'breslow' or 'efron'; found {self.ties!r}.")
        if strata is not None or entry is not None:
            raise ConfigurationError(
                "strata / entry: not supported by FineGray; must be None. Hint: fit separate "
                "models per stratum."
            )
        check_frame(df)
        time = as_float_column(df, duration, "duration")
        check_positive_durations(time)
        code = as_float_column(df, event, "event")
        bad = (code < 0) | (code != np.round(code))
        if event_codes is not None:
            bad |= ~np.isin(code, np.concatenate(([0.0], np.asarray(event_codes, float))))
        if bad.any():
            declared = "0 or " + (
                str(sorted(event_codes)) if event_codes is not None else "a positive integer"
            )
            raise DataValidationError(
                f"event: expected codes {declared}; found {int(bad.sum())} other values "
                f"({_positions(bad)}). Hint: code censoring as 0 and causes as 1..K."
            )
        w = weights_column(df, weights)
        is_cause = code == self.cause
        if not is_cause.any():
            raise DataValidationError(
                f"event: expected at least one event of cause {self.cause}; found 0 among "
                f"{len(df)} rows. Hint: check cause= and the event coding."
            )
        x, frame = covariate_matrix(df, covariates, w, reference_levels)
        n = time.size
        subj = (
            np.arange(n, dtype=np.int64) if cluster is None else group_codes(df, cluster, "cluster")
        )
        competing = (code > 0) & ~is_cause
        c_times, c_surv = censoring_survival(time, code == 0, w)
        t_max = float(time[is_cause].max())
        # expansion of competing-risk rows beyond their exit
        cj = np.flatnonzero(competing & (time < t_max))
        tj = time[cj]
        k0 = np.searchsorted(c_times, tj, side="right")
        k1 = np.searchsorted(c_times, t_max, side="left")
        n_int = np.maximum(k1 - k0, 0) + 1
        rep = np.repeat(np.arange(cj.size), n_int)
        pos = np.arange(rep.size) - np.repeat(np.cumsum(n_int) - n_int, n_int)
        c_pad = np.concatenate((c_times, [t_max]))
        e_start = np.where(pos == 0, tj[rep], c_pad[np.minimum(k0[rep] + pos - 1, c_pad.size - 1)])
        last = pos == n_int[rep] - 1
        e_stop = np.where(last, t_max, c_pad[np.minimum(k0[rep] + pos, c_pad.size - 1)])
        g_start = _g_at(c_times, c_surv, e_start, left=False)
        g_exit = _g_at(c_times, c_surv, tj, left=True)[rep]
        e_w = w[cj][rep] * g_start / g_exit
        keep = (e_stop > e_start) & (e_w > 0)
        rows = cj[rep][keep]
        start = np.concatenate((np.zeros(n), e_start[keep]))
        stop = np.concatenate((time, e_stop[keep]))
        ev = np.concatenate((is_cause, np.zeros(rows.size, bool)))
        wt = np.concatenate((w, e_w[keep]))
        xx = np.vstack((x, x[rows]))
        cl = np.concatenate((subj, subj[rows]))
        res = fit_cox_arrays(
            xx,
            stop,
            ev,
            wt,
            start=start,
            cluster=cl if robust else None,
            robust=robust,
            ties=self.ties,
            max_iter=self.max_iter,
            eps=self.eps,
            names=frame.names,
            factor_columns=frame.factor_columns,
        )
        base = dict(res["base"])
        base_extra = base.pop("extra")
        base["n"] = int(n)
        base["exp_label"] = "subdistribution_hazard_ratio"
        base["_lazy"] = {}  # concordance on the expanded rows would be meaningless
        counts = {int(k): int(v) for k, v in zip(*np.unique(code, return_counts=True), strict=True)}
        return FineGrayResults(
            **base,
            model=repr(self),
            config={
                "cause": self.cause,
                "ties": self.ties,
                "duration": duration,
                "event": event,
                "covariates": list(covariates),
                "weights": weights,
                "cluster": cluster,
                "robust": robust,
            },
            extra={
                **base_extra,
                "n_expanded_rows": int(stop.size),
                "events_by_code": counts,
            },
            frame=frame,
            means=res["means"],
            slot_time=res["slot_time"],
            slot_stratum=res["slot_stratum"],
            dh0=res["dh0"],
        )
