"""Benchmark of the timing-of-events fit (size from env MI_BENCH_N spells, default 20_000).

Issue target on the 2-core machine: 200,000 spells with up to 156 weeks, 20 covariates,
two exits and K = 3 -- a full fit including the search over K in under 2 minutes and
peak memory under 4 GB (``MI_BENCH_N=200000``). The answer is checked too: the selected
K and the lock-in / post-programme effects against the simulation truth.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from mentor_impact.datasets.toe_sim import simulate_toe
from mentor_impact.duration import TimingOfEvents

N = int(os.environ.get("MI_BENCH_N", "20000"))
P = 20


def _data():
    beta_e = np.tile(0.1 * (-1.0) ** np.arange(P), (2, 1))
    return simulate_toe(
        N, n_covariates=P, n_causes=2, n_support_points=3,
        exit_cuts=(0, 4, 13, 26, 52, 104), start_cuts=(0, 13, 26, 52, 104),
        beta_exit=beta_e, beta_start=0.05 * np.ones(P), seed=1,
    )


def test_toe_fit(benchmark):
    sim = _data()
    est = TimingOfEvents(max_support_points=4)
    covs = [f"x{i + 1}" for i in range(P)]

    def run():
        return est.fit(sim.data, duration="duration", exit="exit", start="start",
                       covariates=covs, seed=0)

    t0 = time.perf_counter()
    c0 = time.process_time()
    res = benchmark.pedantic(run, rounds=1, iterations=1)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\nN={N}: wall {elapsed:.1f}s, cpu {cpu:.1f}s, peak RSS {peak_gb:.2f} GB; "
          f"timings {res.timings}")
    print(res.k_search.to_string())
    tab = res.params.merge(sim.truth, on=["equation", "block", "term"])
    eff = tab[tab.block == "effect"]
    z = (eff.estimate - eff.value) / eff.std_error
    assert np.all(np.abs(z) < 4)
    if N >= 100_000:
        assert res.n_support_points == 3
    assert peak_gb < 4


if __name__ == "__main__":  # plain run without pytest-benchmark: python bench_toe.py
    class _B:
        @staticmethod
        def pedantic(f, rounds=1, iterations=1):
            return f()

    test_toe_fit(_B())
