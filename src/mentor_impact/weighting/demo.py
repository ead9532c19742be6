"""Side-by-side table of the weighting estimators against a known truth (for the demo)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mentor_impact.weighting.aipw import AIPW
from mentor_impact.weighting.ipw import IPW

__all__ = ["weighting_table"]


def weighting_table(
    data: Any,
    *,
    outcome: str,
    truth: pd.DataFrame | None = None,
    taus: Sequence[int] = (26, 52, 104, 156),
    n_folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """IPW (estimand A), AIPW (A) and IPW estimand B at selected horizons, beside the truth.

    Parameters
    ----------
    data : EvaluationData
        Risk-set data (with ``later_start`` for estimand B; B is skipped without it).
    outcome : str
        A curve outcome.
    truth : pandas.DataFrame, optional
        Tidy truth with columns ``tau``, ``estimand`` (``"A"``/``"B"``), ``effect`` and
        optionally ``outcome`` (as ``MentorStudy.truth``).
    taus : sequence of int, default=(26, 52, 104, 156)
        Horizon weeks to show (those present in ``data.tau``).
    n_folds : int, default=5
        Cross-fitting folds of AIPW.
    seed : int, default=0
        Seed of the AIPW fold split.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimator``, ``estimand``, ``tau``, ``estimate``, ``std_error``,
        ``ci_lower``, ``ci_upper``, ``truth`` (NaN when not given).

    Notes
    -----
    Positivity warnings are collected and not re-issued; the ESS is in each results object.
    """
    fits: list[tuple[str, str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.append(("IPW", "A", IPW(estimand="ATT").fit(data, outcome=outcome)))
        fits.append(("AIPW", "A", AIPW(estimand="ATT", n_folds=n_folds, seed=seed).fit(
            data, outcome=outcome)))
        if data.later_start is not None:
            fits.append(("IPW", "B", IPW(estimand="ATT").fit(data, outcome=outcome,
                                                             dynamic="B")))
    rows = []
    for name, est, res in fits:
        tau = res.tau if res.tau is not None else np.array([0])
        ci = res.conf_int()
        for t in taus:
            hit = np.flatnonzero(tau == t)
            if hit.size == 0:
                continue
            j = int(hit[0])
            rows.append({
                "estimator": name, "estimand": est, "tau": int(t),
                "estimate": float(res.estimate[j]),
                "std_error": float(res.std_errors.iloc[j]),
                "ci_lower": float(ci["lower"].iloc[j]), "ci_upper": float(ci["upper"].iloc[j]),
            })
    out = pd.DataFrame(rows)
    out["truth"] = np.nan
    if truth is not None and len(out):
        tr = truth
        if "outcome" in tr.columns:
            tr = tr[tr["outcome"] == outcome]
        key = tr.set_index([tr["estimand"].astype(str), tr["tau"].astype(int)])["effect"]
        key = key[~key.index.duplicated()]
        idx = pd.MultiIndex.from_arrays([out["estimand"], out["tau"]])
        out["truth"] = key.reindex(idx).to_numpy()
    return out
