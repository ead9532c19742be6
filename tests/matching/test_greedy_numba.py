"""Numba greedy matcher == vectorised fallback == plain-loop twin; fallback without numba."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mentor_impact._kernels import matching as K
from mentor_impact.exceptions import MissingDependencyError

sys.path.insert(0, str(Path(__file__).parent))
import _matching_reference as ref

try:
    import numba
except ImportError:  # the fallback test still runs
    numba = None

needs_numba = pytest.mark.skipif(numba is None, reason="numba not installed")


def _design(seed, n, n_cells, discrete):
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < rng.uniform(0.15, 0.6)
    treat[0], treat[1] = True, False  # both arms present
    dist = rng.normal(size=n) + treat * 0.5
    if discrete:  # many exact ties in the distance
        dist = np.round(dist * 2) / 2
    cell = rng.integers(0, n_cells, size=n) if n_cells > 1 else None
    return dist, treat, cell


def _priority(order, ps_t, rng):
    n1 = ps_t.size
    if order == "largest":
        o = np.argsort(-ps_t, kind="stable")
    elif order == "smallest":
        o = np.argsort(ps_t, kind="stable")
    elif order == "random":
        o = rng.permutation(n1)
    else:  # data order
        o = np.arange(n1)
    prio = np.empty(n1, dtype=np.int64)
    prio[o] = np.arange(n1)
    return o, prio


def _as_dict(sd, ptr, pos):
    return {int(sd.treat_rows[i]): [int(r) for r in sd.ctrl_rows[pos[ptr[i]:ptr[i + 1]]]]
            for i in range(sd.treat_rows.size)}


@needs_numba
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("caliper", [None, 0.05, 0.3])
@pytest.mark.parametrize("n_cells", [1, 4])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("order", ["largest", "smallest", "random", "data"])
def test_numba_equals_numpy_and_loop(seed, k, caliper, n_cells, discrete, order):
    dist, treat, cell = _design(seed, 90, n_cells, discrete)
    trows = np.flatnonzero(treat)
    rng = np.random.default_rng(seed + 7)
    o, prio = _priority(order, dist[trows], rng)
    sd = K.prepare(dist, treat, cell, trows)
    ptr_nb, pos_nb = K.greedy_numba(sd, prio, k, caliper)
    ptr_np, pos_np = K.greedy_numpy(sd, prio, k, caliper)
    np.testing.assert_array_equal(ptr_nb, ptr_np)
    np.testing.assert_array_equal(pos_nb, pos_np)
    assert _as_dict(sd, ptr_nb, pos_nb) == ref.sequential_greedy(
        dist, treat, cell, trows[o], k, caliper
    )
    # the default engine is the compiled one and gives the same arrays
    ptr, pos = K.greedy_without_replacement(sd, prio, k, caliper)
    np.testing.assert_array_equal(ptr, ptr_nb)
    np.testing.assert_array_equal(pos, pos_nb)


@needs_numba
@pytest.mark.parametrize("seed", range(3))
def test_numba_equals_numpy_larger(seed):
    """More units than controls, heavy ties, cells and k = 3: both engines agree."""
    dist, treat, cell = _design(seed, 3000, 7, True)
    trows = np.flatnonzero(treat)
    _, prio = _priority("random", dist[trows], np.random.default_rng(seed))
    sd = K.prepare(dist, treat, cell, trows)
    for caliper in (None, 0.25):
        a = K.greedy_numba(sd, prio, 3, caliper)
        b = K.greedy_numpy(sd, prio, 3, caliper)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@needs_numba
def test_pure_python_loop_equals_compiled():
    """The uncompiled loop body is the same algorithm (guards the numba-free semantics)."""
    dist, treat, cell = _design(3, 150, 3, True)
    trows = np.flatnonzero(treat)
    _, prio = _priority("largest", dist[trows], None)
    sd = K.prepare(dist, treat, cell, trows)
    args = (sd.ctrl_dist, sd.treat_dist, sd.split, sd.lo, sd.hi,
            np.argsort(prio, kind="stable"), 2, 0.2, True)
    picks = K._greedy_loop(*args)
    np.testing.assert_array_equal(picks, K._numba_greedy_kernel()(*args))


@pytest.fixture
def no_numba(monkeypatch):
    """Pretend numba is not installed (``import numba`` raises ImportError)."""
    monkeypatch.setitem(sys.modules, "numba", None)
    K._numba_greedy_kernel.cache_clear()
    yield
    monkeypatch.undo()
    K._numba_greedy_kernel.cache_clear()


def test_fallback_without_numba(no_numba, monkeypatch):
    dist, treat, cell = _design(1, 120, 2, True)
    trows = np.flatnonzero(treat)
    _, prio = _priority("largest", dist[trows], None)
    sd = K.prepare(dist, treat, cell, trows)
    assert K._numba_greedy_kernel() is None
    calls = []
    real = K.greedy_numpy
    monkeypatch.setattr(K, "greedy_numpy", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    ptr, pos = K.greedy_without_replacement(sd, prio, 2, 0.3)
    assert calls == [1]
    want = real(sd, prio, 2, 0.3)
    np.testing.assert_array_equal(ptr, want[0])
    np.testing.assert_array_equal(pos, want[1])
    with pytest.raises(MissingDependencyError, match="numba is not installed"):
        K.greedy_without_replacement(sd, prio, 2, 0.3, engine="numba")
    with pytest.raises(MissingDependencyError, match="numba is not installed"):
        K.greedy_numba(sd, prio, 2, 0.3)


@needs_numba
def test_engine_dispatch(monkeypatch):
    dist, treat, cell = _design(2, 100, 1, False)
    trows = np.flatnonzero(treat)
    _, prio = _priority("smallest", dist[trows], None)
    sd = K.prepare(dist, treat, cell, trows)
    monkeypatch.setattr(K, "greedy_numpy", lambda *a, **kw: pytest.fail("numpy path used"))
    K.greedy_without_replacement(sd, prio, 1, None)
    K.greedy_without_replacement(sd, prio, 1, None, engine="numba")
    with pytest.raises(ValueError, match="engine"):
        K.greedy_without_replacement(sd, prio, 1, None, engine="cuda")


@needs_numba
def test_jit_without_writable_cache():
    """A numba that cannot cache (read-only install) still compiles, without the cache."""
    seen = []

    class FakeNumba:
        @staticmethod
        def njit(*args, **kwargs):
            if kwargs.get("cache"):
                raise RuntimeError("cannot cache function: no locator available")
            seen.append(args)
            return numba.njit(*args)

    f = K._jit(FakeNumba, lambda x: x + 1)
    assert f(1) == 2 and len(seen) == 1


@needs_numba
def test_cache_write_failure_falls_back(monkeypatch):
    dist, treat, cell = _design(0, 80, 1, False)
    trows = np.flatnonzero(treat)
    _, prio = _priority("largest", dist[trows], None)
    sd = K.prepare(dist, treat, cell, trows)
    want = K.greedy_numba(sd, prio, 1, None)

    def broken(*a):
        raise OSError("read-only file system")

    real = K._numba_greedy_kernel
    monkeypatch.setattr(
        K, "_numba_greedy_kernel", lambda cache=True: broken if cache else real(False)
    )
    got = K.greedy_numba(sd, prio, 1, None)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
