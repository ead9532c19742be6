"""Benchmark of simulate_mentor_study (size from env MI_BENCH_N, default 100_000 persons).

Issue targets on the 2-core machine: 200,000 persons under 60 s; 1,000,000 persons under
5 minutes and 12 GB (peak resident memory of the process).
"""

from __future__ import annotations

import os
import resource
import time

from mentor_impact.datasets import simulate_mentor_study

N = int(os.environ.get("MI_BENCH_N", "100000"))


def test_simulate(benchmark):
    t0 = time.perf_counter()
    study = benchmark.pedantic(simulate_mentor_study, args=(N,), kwargs={"seed": 1},
                               rounds=1, iterations=1)
    elapsed = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\nN={N}: {elapsed:.1f}s, peak RSS {peak_gb:.2f} GB")
    s = study.summary()
    assert s["persons"] == N and s["treated_starts"] > 0
    per_year = s["starters_2013"] * 200_000 / N
    assert 14_000 <= per_year <= 26_000
    limit_s = 60 if N <= 200_000 else 300
    assert elapsed < limit_s * max(1.0, N / (200_000 if N <= 200_000 else 1_000_000))
    assert peak_gb < 12
