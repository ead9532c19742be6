"""Treatment effects on durations: weighted survival / CIF differences, ΔRMST, marginal HR."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._kernels import survival as K
from mentor_impact.duration._survival_results import SurvivalResults
from mentor_impact.duration.nonparametric import AalenJohansen, KaplanMeier, _is_evaluation_data
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.inference.covariance import CovarianceEstimator
from mentor_impact.results import EffectResults, make_effect_results

__all__ = ["survival_effect"]

FloatArray = npt.NDArray[np.float64]


def _curve_influence(
    res: SurvivalResults, arm: str, t: float, cause_idx: int | None
) -> tuple[float, FloatArray]:
    """Estimate at ``t`` and per-row influence (rows of ``res._rows[arm]``)."""
    c = res.curves[arm]
    r = res._rows[arm]
    k = int(K.step_index(c.time, np.array([t]))[0])
    if k < 0:
        start = 1.0 if cause_idx is None else 0.0
        return start, np.zeros(r.stop.size)
    if cause_idx is None:
        infl = K.aj_influence(
            k, r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, None, None, 0
        )
        return float(c.surv[k]), infl
    assert c.cif is not None
    ev_c = r.event == cause_idx + 1
    d_c = np.asarray(
        np.bincount(r.stop[ev_c], weights=r.weight[ev_c], minlength=c.time.size),
        dtype=np.float64,
    )
    infl = K.aj_influence(
        k,
        r.stop,
        r.start,
        r.event,
        r.weight,
        c.n_risk,
        c.n_event,
        c.surv,
        c.cif[:, cause_idx],
        d_c,
        cause_idx + 1,
    )
    return float(c.cif[k, cause_idx]), infl


def survival_effect(
    data: Any,
    *,
    duration: str = "first_self_support",
    event: str | None = None,
    treatment: str | None = None,
    weights: str | npt.ArrayLike | None = None,
    cluster: str | npt.ArrayLike | None = None,
    cause: str | None = None,
    times: Sequence[float] = (26, 52, 104, 156),
    rmst_horizon: float | None = 156,
    estimand: str = "ATT",
    cov: CovarianceEstimator | str | None = None,
    hazard_ratio: bool = False,
) -> EffectResults:
    """Weighted effects on a duration: ``S1 - S0`` (or ``F1 - F0``) at given times and ΔRMST.

    Parameters
    ----------
    data : pandas.DataFrame or EvaluationData
        Rows (units). For ``EvaluationData``, ``duration`` names an entry of
        ``data.durations``; treatment, weights (default ``data.weight``) and clusters
        (``data.cluster``) come from the container.
    duration : str, default="first_self_support"
        Duration outcome name (``EvaluationData``) or duration column (DataFrame).
    event : str, optional
        Event column (DataFrame input): 0 = censored, ``k`` = cause ``k``.
    treatment : str, optional
        0/1 treatment column (DataFrame input).
    weights : str or array-like, optional
        Matching or IPW weights (treated typically 1).
    cluster : str or array-like, optional
        Person identifiers; rows of the same person (as a control at one start and treated
        later) are summed before squaring.
    cause : str, optional
        With ``None`` the targets are survival differences (any exit is the event);
        otherwise cumulative-incidence differences for this cause label.
    times : sequence of float, default=(26, 52, 104, 156)
        Times (weeks) of the curve differences.
    rmst_horizon : float or None, default=156
        Horizon of ΔRMST (survival only); ``None`` to skip.
    estimand : str, default="ATT"
        Label of the estimand the weights target.
    cov : CovarianceEstimator or str, optional
        Covariance applied to the influence function; default ``Clustered("person")`` when
        clusters are known, else ``IID()``.
    hazard_ratio : bool, default=False
        Also fit the marginal hazard ratio (weighted Cox, robust SE) with
        ``mentor_impact.duration.cox.marginal_hazard_ratio``; stored in
        ``extra["hazard_ratio"]``.

    Returns
    -------
    EffectResults
        Targets ``"S1-S0 at 26", ..., "dRMST(156)"`` (or ``"F1-F0 at 26", ...``), with
        ``treated_mean`` (arm 1 level) and ``counterfactual_mean`` (weighted arm 0 level) and
        the per-row influence function.

    Notes
    -----
    Each arm's weighted Kaplan–Meier / Aalen–Johansen curve is computed on its own time
    grid; the influence of row ``i`` is ``w_i dtheta/dw_i`` of the discrete estimator
    (infinitesimal jackknife), so ``sum_i phi_i phi_i'`` is the IJ variance and cluster sums
    give the person-clustered variance (``Clustered`` adds the ``G/(G-1)`` factor). The
    variance treats the weights as fixed (it ignores propensity-score estimation); prefer a
    person-cluster bootstrap that re-estimates the score for final inference (METHODS §5.6).
    ``RMST(tau) = integral_0^tau S(t) dt`` (with weekly times ``sum_{k<tau} S(k)``).
    Curves are evaluated as right-continuous step functions; a requested time beyond an
    arm's last follow-up takes the last value.
    """
    w: Any
    cl: Any
    if _is_evaluation_data(data):
        if duration not in data.durations:
            raise ConfigurationError(
                f"duration: expected a key of data.durations ({sorted(data.durations)}); "
                "found an unknown name."
            )
        dur = data.durations[duration]
        trt = np.asarray(data.treatment)
        w = np.asarray(data.weight, dtype=np.float64) if weights is None else weights
        cl = np.asarray(data.cluster) if cluster is None else cluster
        frame = pd.DataFrame(
            {"time": np.asarray(dur.time, dtype=np.float64), "event": np.asarray(dur.event)}
        )
        causes = tuple(dur.causes)
    elif isinstance(data, pd.DataFrame):
        if event is None or treatment is None:
            raise ConfigurationError(
                "event, treatment: expected column names for DataFrame input; found None. "
                "Hint: survival_effect(df, duration='t', event='e', treatment='d', weights='w')."
            )
        for role, col in (("duration", duration), ("event", event), ("treatment", treatment)):
            if col not in data.columns:
                raise ConfigurationError(
                    f"{role}: expected a column of the data frame; found no column with this "
                    "name. Hint: check the spelling."
                )
        trt = data[treatment].to_numpy()
        w = data[weights].to_numpy() if isinstance(weights, str) else weights
        cl = data[cluster].to_numpy() if isinstance(cluster, str) else cluster
        frame = pd.DataFrame({"time": data[duration].to_numpy(), "event": data[event].to_numpy()})
        causes = ()
    else:
        raise DataValidationError(
            f"data: expected a pandas DataFrame or an EvaluationData; found {type(data).__name__}."
        )
    trt_f = pd.to_numeric(pd.Series(trt), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(trt_f, [0.0, 1.0])
    if bad.any():
        idx = np.flatnonzero(bad)
        rows = ", ".join(str(int(i)) for i in idx[:5]) + (", ..." if idx.size > 5 else "")
        raise DataValidationError(
            f"treatment: expected 0/1; found {int(bad.sum())} other or missing values "
            f"(rows {rows}). Hint: recode the treatment indicator."
        )
    if not (np.any(trt_f == 1) and np.any(trt_f == 0)):
        raise DataValidationError(
            "treatment: expected both treated (1) and control (0) rows; found only one arm."
        )
    frame["arm"] = trt_f.astype(np.int64)
    times_arr = np.asarray(list(times), dtype=np.float64)
    if cause is None:
        frame["event"] = (np.asarray(frame["event"]) > 0).astype(np.int64)
        res = KaplanMeier(variance="ij").fit(
            frame, duration="time", event="event", weights=w, group="arm", cluster=cl
        )
        cause_idx: int | None = None
        prefix = "S1-S0"
    else:
        res = AalenJohansen(variance="ij").fit(
            frame,
            duration="time",
            event="event",
            causes=causes or None,
            weights=w,
            group="arm",
            cluster=cl,
        )
        if cause not in res.causes:
            raise ConfigurationError(
                f"cause: expected one of {list(res.causes)}; found an unknown label."
            )
        cause_idx = res.causes.index(cause)
        prefix = "F1-F0"
    a1, a0 = "arm=1", "arm=0"
    r1, r0 = res._rows[a1], res._rows[a0]
    n = frame.shape[0]
    targets: list[str] = []
    est1: list[float] = []
    est0: list[float] = []
    cols: list[FloatArray] = []
    for t in times_arr:
        v1, i1 = _curve_influence(res, a1, float(t), cause_idx)
        v0, i0 = _curve_influence(res, a0, float(t), cause_idx)
        phi = np.zeros(n)
        phi[r1.positions] = i1
        phi[r0.positions] = -i0
        targets.append(f"{prefix} at {t:g}")
        est1.append(v1)
        est0.append(v0)
        cols.append(phi)
    if rmst_horizon is not None and cause is None:
        tab = res.rmst(float(rmst_horizon))
        rm = tab["rmst"].to_dict()
        phi = np.zeros(n)
        phi[r1.positions] = res._rmst_influence(a1, float(rmst_horizon))
        phi[r0.positions] = -res._rmst_influence(a0, float(rmst_horizon))
        targets.append(f"dRMST({rmst_horizon:g})")
        est1.append(float(rm[a1]))
        est0.append(float(rm[a0]))
        cols.append(phi)
    influence = np.column_stack(cols)
    e1 = np.asarray(est1)
    e0 = np.asarray(est0)
    cl_arr = None if cl is None else np.asarray(cl)
    extra: dict[str, Any] = {"curves": res, "causes": res.causes, "cause": cause}
    if hazard_ratio:
        try:
            from mentor_impact.duration.cox import marginal_hazard_ratio
        except ImportError:  # pragma: no cover - optional sibling module
            extra["hazard_ratio"] = None
        else:
            hr_df = pd.DataFrame(
                {
                    "time": frame["time"].to_numpy(dtype=np.float64),
                    "event": (np.asarray(frame["event"]) > 0).astype(int),
                    "treatment": trt_f,
                }
            )
            hr = marginal_hazard_ratio(
                hr_df,
                duration="time",
                event="event",
                treatment="treatment",
                weights=None if w is None else np.asarray(w, dtype=np.float64),
                cluster=cl_arr,
            )
            extra["hazard_ratio"] = hr
    w_out = None if w is None else np.asarray(w, dtype=np.float64)
    return make_effect_results(
        estimator="weighted-kaplan-meier" if cause is None else "weighted-aalen-johansen",
        estimand=estimand,
        outcome=duration if cause is None else f"{duration}[{cause}]",
        targets=targets,
        estimate=e1 - e0,
        influence=influence,
        cov=cov,
        cluster=cl_arr,
        treated_mean=e1,
        counterfactual_mean=e0,
        n=n,
        n_treated=int(np.sum(trt_f == 1)),
        n_control=int(np.sum(trt_f == 0)),
        weights=w_out,
        extra=extra,
        config={
            "times": times_arr.tolist(),
            "rmst_horizon": rmst_horizon,
            "cause": cause,
            "hazard_ratio": hazard_ratio,
        },
    )
