"""Weighted Kaplan–Meier and Aalen–Johansen vs lifelines, side by side (pytest-benchmark).

Size from env ``MI_BENCH_N`` (default 100_000 rows). Weekly (tied) times over 0..156 weeks,
four competing exit causes, non-unit weights. Issue targets at 1,000,000 rows: weighted KM
under 0.3 s and Aalen–Johansen under 0.5 s (asserted on the median; at smaller N the same
limits apply, above 1e6 they scale with N).

lifelines' AalenJohansenFitter jitters tied times (so every row becomes its own time) and
is run here without its variance (``calculate_variance=False``) and on at most 100,000
rows, otherwise a single round takes minutes.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import AalenJohansen, KaplanMeier

N = int(os.environ.get("MI_BENCH_N", "100000"))
# the limits at 1e6 rows; smaller N must simply stay under them
KM_LIMIT_S = 0.3 * max(N, 1_000_000) / 1_000_000
AJ_LIMIT_S = 0.5 * max(N, 1_000_000) / 1_000_000
TIMES = [26.0, 52.0, 104.0, 156.0]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    t = np.minimum(np.ceil(rng.exponential(60, N)), 157.0)
    cause = np.where(t < 157, rng.integers(1, 5, N), 0)
    t = np.minimum(t, 156.0)
    return pd.DataFrame(
        {"t": t, "e": (cause > 0).astype(np.int64), "cause": cause, "w": rng.uniform(0.2, 3, N)}
    )


def _median(benchmark) -> float:
    return float(benchmark.stats.stats.median)


@pytest.mark.benchmark(group="weighted-km")
def test_km_mentor_impact(benchmark, data) -> None:
    res = benchmark(KaplanMeier().fit, data, duration="t", event="e", weights="w")
    from lifelines import KaplanMeierFitter

    ll = KaplanMeierFitter().fit(data.t, data.e, weights=data.w)
    want = ll.survival_function_at_times(TIMES).to_numpy()
    np.testing.assert_allclose(res.at(TIMES)["surv"].to_numpy(), want, rtol=1e-8)
    assert _median(benchmark) < KM_LIMIT_S


@pytest.mark.benchmark(group="weighted-km")
def test_km_lifelines(benchmark, data) -> None:
    from lifelines import KaplanMeierFitter

    fit = benchmark(lambda: KaplanMeierFitter().fit(data.t, data.e, weights=data.w))
    assert fit.survival_function_.shape[0] > 0


@pytest.mark.benchmark(group="aalen-johansen")
def test_aj_mentor_impact(benchmark, data) -> None:
    res = benchmark(AalenJohansen().fit, data, duration="t", event="cause", weights="w")
    c = res.curves["all"]
    np.testing.assert_allclose(c.cif.sum(axis=1) + c.surv, 1.0, atol=1e-10)
    assert np.all(np.isfinite(c.cif_std_err))
    assert _median(benchmark) < AJ_LIMIT_S


@pytest.mark.benchmark(group="aalen-johansen")
def test_aj_mentor_impact_unweighted(benchmark, data) -> None:
    res = benchmark(AalenJohansen().fit, data, duration="t", event="cause")
    assert res.variance == "cmprsk"
    assert _median(benchmark) < AJ_LIMIT_S


@pytest.mark.benchmark(group="aalen-johansen")
def test_aj_lifelines(benchmark, data) -> None:
    from lifelines import AalenJohansenFitter

    sub = data.iloc[: min(N, 100_000)]

    def run():
        return AalenJohansenFitter(calculate_variance=False, seed=0).fit(
            sub.t, sub.cause, event_of_interest=1, weights=sub.w
        )

    fit = benchmark.pedantic(run, rounds=1, iterations=1)
    assert fit.cumulative_density_.shape[0] > 0
