"""Benchmarks of the timing-of-events fit (size from env MI_BENCH_N spells, default 20_000)
and of the start-eligibility gaps built from a register (MI_BENCH_PERSONS, default 100_000).

Issue target on the 2-core machine: 200,000 spells with up to 156 weeks, 20 covariates,
two exits and K = 3 -- a full fit including the search over K in under 2 minutes and
peak memory under 4 GB (``MI_BENCH_N=200000``). The answer is checked too: the selected
K and the lock-in / post-programme effects against the simulation truth.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from mentor_impact.datasets.toe_sim import simulate_toe
from mentor_impact.duration import (
    TimingOfEvents,
    spells_from_register,
    start_gaps_from_register,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "design"))
sys.path.insert(0, str(Path(__file__).parents[2] / "tests" / "duration"))

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


def test_start_gaps_from_register(benchmark):
    """Eligibility gaps of a stock + inflow sample from a synthetic register; the first 300
    spells are checked against the plain-loop twin of the tests."""
    from _synth import synth
    from _toe_reference import start_gaps_loop

    from mentor_impact.registers.isoweek import iso_to_ordinal

    n = int(os.environ.get("MI_BENCH_PERSONS", "100000"))
    reg, sp_obj, base = synth(n, seed=3)
    stock = int(np.asarray(reg.weeks)[260])
    spells = spells_from_register(reg, sp_obj, base, sample="stock_inflow", stock_week=stock)

    def run():
        return start_gaps_from_register(reg, spells, base, age_band=(18, 65))

    t0 = time.perf_counter()
    gaps = benchmark.pedantic(run, rounds=3, iterations=1)
    weeks = int(spells.duration.sum())
    print(f"\n{n} persons, {len(spells)} spells, {weeks} spell-weeks: "
          f"{len(gaps)} gaps ({gaps.attrs['n_weeks']} weeks), "
          f"{(time.perf_counter() - t0) / 3:.2f} s per run")
    head = spells.iloc[:300]
    ok_state = reg.indicator("passive_benefit") | reg.indicator("activation")
    birth = iso_to_ordinal(base.birth_year.to_numpy() * 100 + 26)
    ref, _ = start_gaps_loop(
        ok_state, iso_to_ordinal(np.asarray(reg.weeks)), birth,
        list(zip(head.row, head.entry_col - head.entry, head.duration, head.start,
                 strict=True)),
        age_band=(18, 65),
    )
    got = gaps[gaps.spell < 300][["spell", "first", "last"]].to_numpy().tolist()
    assert list(map(tuple, got)) == ref


if __name__ == "__main__":  # plain run without pytest-benchmark: python bench_toe.py
    class _B:
        @staticmethod
        def pedantic(f, rounds=1, iterations=1):
            return f()

    test_toe_fit(_B())
