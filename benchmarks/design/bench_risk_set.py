"""Benchmarks of the risk-set design (sizes from env MI_BENCH_N, default 100_000 persons).

At ``MI_BENCH_N=1000000`` (520 weeks, ~70,000 treated starts, 10 controls per treated) the
issue asks for < 60 s and < 8 GB for the build; ``test_floor_one_pass`` times one pass over
the code matrix as the floor to report beside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _synth import synth

from mentor_impact.design.risk_set import RiskSetDesign

N = int(os.environ.get("MI_BENCH_N", "100000"))


@pytest.fixture(scope="module")
def world():
    return synth(N, w=520, starts_per_person=0.07, seed=0)


def test_floor_one_pass(benchmark, world):
    reg, _, _ = world
    codes = reg.codes

    def one_pass() -> int:
        tot = 0
        for c in range(0, codes.shape[1], 64):
            tot += int((codes[:, c : c + 64] == 211).sum())
        return tot

    tot = benchmark.pedantic(one_pass, rounds=3, iterations=1)
    assert tot > 0


def test_build(benchmark, world):
    reg, sp, baseline = world
    design = RiskSetDesign(horizon=156, controls_per_treated=10)
    data = benchmark.pedantic(
        lambda: design.build(reg, sp, baseline, seed=1), rounds=1, iterations=1
    )
    assert data.n_treated > 0
    k = data.treatment == 0
    # exact sampling: 10 controls per treated in every risk set with enough controls
    assert data.n_control == 10 * data.n_treated
    np.testing.assert_allclose(data.weight[~k], 1.0)
    assert data.outcome("employed").shape == (data.n, 157)
    assert data.outcome("employed").dtype == np.int8
