"""Vectorised matching kernels vs their plain-loop twins (tests/matching/_matching_reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mentor_impact._kernels import matching as K

sys.path.insert(0, str(Path(__file__).parent))
import _matching_reference as ref


def _design(seed, n=120, p_treat=0.3, n_cells=1, discrete=False):
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < p_treat
    dist = rng.normal(size=n) + treat * 0.5
    if discrete:  # many exact ties in the distance
        dist = np.round(dist * 2) / 2
    cell = rng.integers(0, n_cells, size=n) if n_cells > 1 else None
    return dist, treat, cell


def _as_dict(sd, ptr, pos):
    return {int(sd.treat_rows[i]): [int(r) for r in sd.ctrl_rows[pos[ptr[i]:ptr[i + 1]]]]
            for i in range(sd.treat_rows.size)}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("caliper", [None, 0.05])
@pytest.mark.parametrize("n_cells", [1, 3])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize(("block", "safe"), [(1, True), (5, True), (1024, True), (5, False),
                                           (1024, False)])
def test_greedy_equals_sequential(seed, k, caliper, n_cells, discrete, block, safe):
    dist, treat, cell = _design(seed, n_cells=n_cells, discrete=discrete)
    trows = np.flatnonzero(treat)
    rng = np.random.default_rng(seed + 100)
    o = rng.permutation(trows.size)
    prio = np.empty(trows.size, dtype=np.int64)
    prio[o] = np.arange(trows.size)
    sd = K.prepare(dist, treat, cell, trows)
    ptr, pos = K.greedy_numpy(sd, prio, k, caliper, block=block, safe=safe)
    got = _as_dict(sd, ptr, pos)
    want = ref.sequential_greedy(dist, treat, cell, trows[o], k, caliper)
    assert got == want


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("ties", ["first", "all"])
@pytest.mark.parametrize("caliper", [None, 0.1])
@pytest.mark.parametrize("discrete", [False, True])
def test_knn_with_replacement_equals_loop(seed, k, ties, caliper, discrete):
    dist, treat, cell = _design(seed, n_cells=2, discrete=discrete)
    trows = np.flatnonzero(treat)
    sd = K.prepare(dist, treat, cell, trows)
    ptr, pos = K.knn_with_replacement(sd, k, caliper, ties)
    got = _as_dict(sd, ptr, pos)
    want = ref.knn_replace(dist, treat, cell, k, caliper, ties)
    if ties == "all":
        got = {t: sorted(v) for t, v in got.items()}
        want = {t: sorted(v) for t, v in want.items()}
    assert got == want


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("radius", [0.05, 0.5])
def test_radius_equals_loop(seed, radius):
    dist, treat, cell = _design(seed, n_cells=2, discrete=seed % 2 == 0)
    trows = np.flatnonzero(treat)
    sd = K.prepare(dist, treat, cell, trows)
    idx = np.arange(trows.size)
    r = np.full(trows.size, radius)
    a = K._extend_pred(sd, idx, sd.split - 1, sd.lo, r, strict=False, step=-1)
    b = K._extend_pred(sd, idx, sd.split, sd.hi, r, strict=False, step=+1)
    got = {int(trows[i]): sorted(int(x) for x in sd.ctrl_rows[a[i]:b[i] + 1])
           for i in range(trows.size)}
    assert got == ref.radius_loop(dist, treat, cell, radius)


def test_range_max_equals_loop():
    rng = np.random.default_rng(0)
    v = rng.integers(-5, 100, size=57)
    t = K.sparse_table(v)
    a = rng.integers(0, 57, size=200)
    b = rng.integers(0, 58, size=200)
    got = K.range_max(t, a, b)
    want = [v[x:y].max() if y > x else K.NEG for x, y in zip(a, b, strict=True)]
    np.testing.assert_array_equal(got, want)
