"""A small risk-set data generator with known estimand A and B truths (tests only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mentor_impact.design import EvaluationData

COEF = np.array([-1.8, 0.5, -0.3])  # logit start hazard: intercept, x1 (person), x2 (row)


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate(n_persons=600, *, taus=(0, 3, 8), theta=1.0, control_keep=0.5, seed=0, coef=COEF):
    """Persons appear in 1-3 risk sets; D ~ Bernoulli(e(x)); a control's later start is
    geometric with the same weekly hazard e(x); Y(tau) = x1 + x2 + u + theta * started by
    s + tau + noise. Controls are subsampled with probability ``control_keep`` (weight 1/p).

    Truth B = theta at every tau; truth A = theta * (1 - E[1 - (1 - e)^tau | D = 1]).
    """
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 4, size=n_persons)
    person = np.repeat(np.arange(n_persons), k)
    n = person.size
    x1 = rng.normal(size=n_persons)[person]
    u = rng.normal(scale=0.7, size=n_persons)[person]
    x2 = rng.normal(size=n)
    start = rng.integers(0, 5, size=n)
    e = expit(coef[0] + coef[1] * x1 + coef[2] * x2)
    d = (rng.random(n) < e).astype(int)
    later = rng.geometric(e)  # >= 1 weeks after s
    taus = np.asarray(taus)
    H = int(taus.max())
    later = np.where(d == 1, -1, np.where(later > H, -1, later))
    started = (d[:, None] == 1) | ((later[:, None] >= 0) & (later[:, None] <= taus[None, :]))
    Y = (x1 + x2 + u)[:, None] + theta * started + rng.normal(size=(n, taus.size))
    keep = (d == 1) | (rng.random(n) < control_keep)
    w = np.where(d == 1, 1.0, 1.0 / control_keep)
    sel = np.flatnonzero(keep)
    frame = pd.DataFrame({"x1": x1, "x2": x2})
    data = EvaluationData(
        X=np.column_stack([x1, x2])[sel],
        covariate_names=("x1", "x2"),
        treatment=d[sel],
        outcomes={"y": Y[sel], "y_last": Y[sel, -1]},
        tau=taus,
        weight=w[sel],
        cluster=person[sel],
        start_week=start[sel],
        later_start=later[sel],
        frame=frame.iloc[sel].reset_index(drop=True),
    )
    return data


def truth(taus=(0, 3, 8), theta=1.0, n_mc=2_000_000, seed=123, coef=COEF):
    """Population truths of estimands A and B by Monte Carlo over x."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n_mc)
    x2 = rng.normal(size=n_mc)
    e = expit(coef[0] + coef[1] * x1 + coef[2] * x2)
    taus = np.asarray(taus)
    later_by = 1.0 - (1.0 - e[:, None]) ** taus[None, :]
    a = theta * (1.0 - (e[:, None] * later_by).sum(axis=0) / e.sum())
    b = np.full(taus.size, theta)
    return a, b
