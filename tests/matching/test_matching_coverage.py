"""Coverage of Abadie–Imbens intervals by simulation (slow; run once in CI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.matching import AbadieImbens, NearestNeighborMatching


def _one(seed: int, n: int = 600) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-(-1.0 + 0.8 * x)))
    d = (rng.random(n) < e).astype(int)
    tau_x = 1.0 + 0.5 * x  # heterogeneous effect; truth = population ATT
    y = x + x**2 / 2 + d * tau_x + rng.normal(size=n) * (1 + 0.5 * np.abs(x))
    df = pd.DataFrame({"x": x, "d": d, "y": y})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    res = NearestNeighborMatching(k=4, replace=True, distance="ps").fit(
        data, outcome="y", ps=e, cov=AbadieImbens(n_neighbors=2)
    )
    return float(res.estimate[0]), float(res.std_errors.iloc[0])


def _true_att() -> float:
    rng = np.random.default_rng(12345)
    x = rng.normal(size=4_000_000)
    e = 1 / (1 + np.exp(-(-1.0 + 0.8 * x)))
    return float(np.sum(e * (1.0 + 0.5 * x)) / np.sum(e))


@pytest.mark.slow
def test_ai_interval_coverage_93_to_97_percent():
    truth = _true_att()
    reps = 1000
    hits = 0
    for s in range(reps):
        est, se = _one(s)
        hits += abs(est - truth) <= 1.959964 * se
    cover = hits / reps
    assert 0.93 <= cover <= 0.97, cover
