"""Benchmarks of WeeklyRegister (size from env MI_BENCH_N persons × 520 weeks, default 100_000).

Issue target at ``MI_BENCH_N=1000000``: building the register from its wide form, ``states()``
and the prefix sums of three states within 10× the time of one ``np.take`` pass over the code
matrix, with peak (traced) memory under 4 GB beyond the input matrix.
"""

from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np
import pytest

from mentor_impact.registers import StateCatalog, WeeklyRegister, iso_to_ordinal, ordinal_to_iso

N = int(os.environ.get("MI_BENCH_N", "100000"))
W = 520
NAMES = ("employed", "cash_benefit", "on_benefit")


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(0)
    pool = np.array([0, 211, 231, 511, 651, 711, 781, 1001], dtype=np.uint16)
    codes = np.empty((N, W), dtype=np.uint16)
    step = 50_000
    for a in range(0, N, step):
        b = min(N, a + step)
        codes[a:b] = pool[rng.integers(0, pool.size, size=(b - a, W), dtype=np.uint8)]
    persons = np.arange(N, dtype=np.int64) + 10**7
    weeks = ordinal_to_iso(iso_to_ordinal(200801) + np.arange(W))
    return codes, persons, weeks


def _build(codes, persons, weeks):
    reg = WeeklyRegister.from_wide(codes, persons, weeks)
    reg.states()
    for name in NAMES:
        reg.prefix_sums(name)
    return reg


def _take_pass(codes):
    lut = StateCatalog.default().lookup(size=1 << 16)
    return np.take(lut, codes)


def test_floor_take_pass(benchmark, wide):
    codes, _, _ = wide
    out = benchmark.pedantic(_take_pass, args=(codes,), rounds=3, iterations=1)
    assert out.shape == codes.shape


def test_build_states_prefix3(benchmark, wide):
    codes, persons, weeks = wide
    reg = benchmark.pedantic(_build, args=(codes, persons, weeks), rounds=2, iterations=1)
    rows = np.arange(0, N, max(1, N // 50))
    ind = reg.indicator("employed")[rows]
    assert np.array_equal(reg.prefix_sums("employed")[rows, -1], ind.sum(axis=1))


def test_ratio_and_peak_memory(wide):
    codes, persons, weeks = wide
    t_take = min(_timed(_take_pass, codes) for _ in range(3))
    t_fast = min(_timed(_build, codes, persons, weeks) for _ in range(2))
    tracemalloc.start()
    t0 = time.perf_counter()
    reg = _build(codes, persons, weeks)
    t_build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_build = min(t_build, t_fast)
    ratio = t_build / t_take
    print(f"\nN={N}: take {t_take:.3f}s, build+states+3 prefix {t_build:.3f}s, "
          f"ratio {ratio:.1f}, traced peak {peak / 1e9:.2f} GB")
    assert reg.n_persons == N
    assert ratio < 10
    assert peak < 4e9


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0
