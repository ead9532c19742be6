"""True effects on duration outcomes from the simulator's potential paths.

The simulator stores, for every treated start, the state path under the start and under the
counterfactuals of estimands A and B (common random numbers, so the in-sample truth is
exact). From these paths the time to the first sustained self-support spell is computed with
exactly the rules of the risk-set design (:mod:`mentor_impact.design.outcomes`), and the
Kaplan–Meier curves of the treated starts under each regime give the true survival
differences and the true ΔRMST that :func:`mentor_impact.survival_effect` estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._kernels import design as K
from mentor_impact.exceptions import DataValidationError

__all__ = ["potential_durations", "true_duration_effects"]


def potential_durations(
    study: Any,
    rows: npt.ArrayLike,
    start_cols: npt.ArrayLike,
    *,
    estimand: str = "A",
    sustain: int = 4,
    sustained_outcome: str = "self_support",
) -> dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]]:
    """Time to the first sustained spell under the start and under the counterfactual.

    Parameters
    ----------
    study : MentorStudy
        The simulated study.
    rows, start_cols : array-like of int
        Treated starts (register rows and start columns).
    estimand : {"A", "B"}, default="A"
        Counterfactual regime: no start now (A) or no start during follow-up (B).
    sustain : int, default=4
        ``L``: weeks of the sustained spell.
    sustained_outcome : str, default="self_support"
        State or union of the spell.

    Returns
    -------
    dict
        ``{"treated": (time, event), "counterfactual": (time, event)}``; ``event`` is 1 when
        a spell starts at ``time`` (weeks since the start, ``k >= 1``), 0 when censored (at
        death or emigration, or administratively at ``H - L + 1``), as in the design.
    """
    po = study.potential_outcomes
    pos = po.index(rows, start_cols)
    catalog = po.catalog
    lut = catalog.state_mask(sustained_outcome).astype(np.int8)
    dead = catalog.state_id("dead_emigrated")
    horizon = po.horizon
    other = po.never_now if estimand == "A" else po.never_followup
    if estimand not in ("A", "B"):
        raise DataValidationError(f"estimand: expected 'A' or 'B'; got {estimand!r}.")
    out = {}
    for name, paths in (("treated", po.treated[pos]), ("counterfactual", other[pos])):
        k = K.first_sustained(np.take(lut, paths), sustain, first=1)
        is_dead = paths == dead
        dhit = is_dead.any(axis=1)
        dtau = np.where(dhit, np.argmax(is_dead, axis=1), np.iinfo(np.int64).max)
        event = (k >= 1) & (k < dtau)
        admin = max(horizon - sustain + 1, 0)
        cens = np.where(dhit & (dtau < admin), dtau, admin)
        time = np.maximum(np.where(event, k, cens), 0).astype(np.float64)
        out[name] = (time, event.astype(np.int64))
    return out


def true_duration_effects(
    study: Any,
    data: Any,
    *,
    estimand: str = "A",
    sustain: int = 4,
    sustained_outcome: str = "self_support",
    times: Sequence[float] = (26, 52, 104, 156),
    rmst_horizon: float | None = 156,
) -> pd.DataFrame:
    """Return the true survival differences and ΔRMST over the treated rows of a design.

    Parameters
    ----------
    study : MentorStudy
        The simulated study the design was built from.
    data : EvaluationData
        A risk-set design from ``study`` (its treated rows define the population).
    estimand : {"A", "B"}, default="A"
        Counterfactual regime.
    sustain : int, default=4
        ``L`` of the sustained spell (as the design's ``sustain``).
    sustained_outcome : str, default="self_support"
        State or union of the spell.
    times : sequence of float, default=(26, 52, 104, 156)
        Weeks of the survival differences.
    rmst_horizon : float, optional
        Horizon of ΔRMST; ``None`` to skip.

    Returns
    -------
    pandas.DataFrame
        ``target`` (``"S1-S0 at 26"``, ..., ``"dRMST(156)"``, the labels of
        :func:`mentor_impact.survival_effect`), ``treated``, ``counterfactual`` and
        ``truth`` (their difference), from the Kaplan–Meier curves of the potential
        durations of the treated starts (exact in sample; censoring only by death or
        emigration and the end of the horizon, as in the design).
    """
    from mentor_impact.duration import KaplanMeier

    if data.start_week is None:
        raise DataValidationError(
            "data: expected a risk-set design with start_week; found None."
        )
    tr = data.treatment == 1
    pot = potential_durations(
        study, np.asarray(data.cluster)[tr], data.start_week[tr], estimand=estimand,
        sustain=sustain, sustained_outcome=sustained_outcome,
    )
    curves = {}
    for arm, (time, event) in pot.items():
        keep = time > 0  # a start week of death: no time at risk
        frame = pd.DataFrame({"time": time[keep], "event": event[keep]})
        curves[arm] = KaplanMeier().fit(frame, duration="time", event="event")
    rows = []
    for t in times:
        s1 = float(curves["treated"].at([t])["surv"].iloc[0])
        s0 = float(curves["counterfactual"].at([t])["surv"].iloc[0])
        rows.append({"target": f"S1-S0 at {t:g}", "treated": s1, "counterfactual": s0,
                     "truth": s1 - s0})
    if rmst_horizon is not None:
        r1 = float(curves["treated"].rmst(rmst_horizon)["rmst"].iloc[0])
        r0 = float(curves["counterfactual"].rmst(rmst_horizon)["rmst"].iloc[0])
        rows.append({"target": f"dRMST({rmst_horizon:g})", "treated": r1,
                     "counterfactual": r0, "truth": r1 - r0})
    return pd.DataFrame(rows)
