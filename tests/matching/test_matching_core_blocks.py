"""Row-block kernels of matching._core against plain loops (reference twins).

The matching variance reads the outcome in row blocks (an int8 curve of register size is
never widened whole): same-arm residuals, matched-set sums and the influence function are
computed for the rows asked for. Small blocks are forced so that every kernel crosses
block boundaries.
"""

from __future__ import annotations

import numpy as np
import pytest

import mentor_impact.matching._core as C
from mentor_impact.matching._core import (
    Matches,
    SameArmResiduals,
    ai_covariance,
    focal_effects,
    pair_weights_uniform,
    same_arm_neighbors,
)


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    monkeypatch.setattr(C, "BLOCK_ELEMS", 23)


def _setup(n=60, k=4, seed=0, dtype=np.int8, J=2):
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.35
    dist = np.round(rng.normal(size=n), 1)  # ties
    cell = rng.integers(0, 2, size=n)
    if dtype == np.int8:
        Y = (rng.random((n, k)) < 0.4).astype(np.int8)
    else:
        Y = rng.normal(size=(n, k))
    # matches: each treated unit gets 0..3 random controls with uniform weights
    focal = np.flatnonzero(treat)
    ctrl = np.flatnonzero(~treat)
    lists = [rng.choice(ctrl, size=rng.integers(0, 4), replace=False) for _ in focal]
    ptr = np.r_[0, np.cumsum([len(x) for x in lists])].astype(np.int64)
    matched = np.concatenate(lists).astype(np.int64)
    m = Matches(focal=focal, ptr=ptr, matched=matched, pair_weight=pair_weights_uniform(ptr),
                n_rows=n)
    nbr = same_arm_neighbors(dist, None, treat, cell, J)
    return rng, treat, Y, m, nbr


def _loop_residuals(Y, nbr, sign):
    n, k = Y.shape
    out = np.zeros((n, k))
    for i in range(n):
        nb = [j for j in nbr[i] if j >= 0]
        if not nb:
            continue
        for t in range(k):
            mean = sum(sign * float(Y[j, t]) for j in nb) / len(nb)
            out[i, t] = np.sqrt(len(nb) / (len(nb) + 1.0)) * (sign * float(Y[i, t]) - mean)
    return out


@pytest.mark.parametrize("dtype", [np.int8, np.float64])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_same_arm_residuals_equal_loop(dtype, sign):
    _, treat, Y, _, nbr = _setup(dtype=dtype)
    # neighbours are in the same arm and never the unit itself
    ok = nbr >= 0
    rows = np.repeat(np.arange(len(treat))[:, None], nbr.shape[1], axis=1)
    assert np.all(treat[nbr[ok]] == treat[rows[ok]]) and np.all(nbr[ok] != rows[ok])
    res = SameArmResiduals(Y, nbr, sign)
    want = _loop_residuals(Y, nbr, sign)
    np.testing.assert_allclose(np.asarray(res), want, rtol=1e-14, atol=1e-15)
    idx = np.array([5, 0, 17, 17, 59])
    np.testing.assert_allclose(res.rows(idx), want[idx], rtol=1e-14, atol=1e-15)
    # a row without neighbours (arm of one unit in its cell) has residual 0
    nbr2 = nbr.copy()
    nbr2[3] = -1
    assert np.all(SameArmResiduals(Y, nbr2, sign).rows(np.array([3])) == 0.0)


@pytest.mark.parametrize("dtype", [np.int8, np.float64])
def test_focal_effects_equal_loop(dtype):
    _, _, Y, m, _ = _setup(dtype=dtype, seed=1)
    fy, cf = focal_effects(m, Y, -1.0)
    for i, f in enumerate(m.focal):
        np.testing.assert_array_equal(fy[i], -Y[f].astype(float))
        js = m.matched[m.ptr[i]:m.ptr[i + 1]]
        if js.size == 0:
            assert np.all(np.isnan(cf[i]))
        else:
            w = 1.0 / js.size
            want = [sum(-float(Y[j, t]) * w for j in js) for t in range(Y.shape[1])]
            np.testing.assert_allclose(cf[i], want, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.int8, np.float64])
@pytest.mark.parametrize("population", [True, False])
def test_ai_covariance_and_influence_equal_loop(dtype, population):
    rng, _, Y, m, nbr = _setup(dtype=dtype, seed=2)
    n, k = Y.shape
    s = rng.uniform(0.5, 2.0, size=n)
    e = SameArmResiduals(Y, nbr)
    fy, cf = focal_effects(m, Y)
    ok = m.n_matches > 0
    sf = s[m.focal]
    S1 = sf[ok].sum()
    est = (sf[ok, None] * (fy[ok] - cf[ok])).sum(axis=0) / S1
    v, phi = ai_covariance(m, Y, fy[ok] - cf[ok] - est, est, s, e, population, e)
    E = _loop_residuals(Y, nbr, 1.0)
    # loops over units: K_j, KK_j, the variance and phi_i
    Kc = np.zeros(n)
    KK = np.zeros(n)
    emean = np.zeros((m.focal.size, k))
    for i, f in enumerate(m.focal):
        js = m.matched[m.ptr[i]:m.ptr[i + 1]]
        for j in js:
            w = 1.0 / js.size
            Kc[j] += s[f] * w
            KK[j] += s[f] * w * w
            emean[i] += w * E[j]
    V = np.zeros((k, k))
    phi_loop = np.zeros((n, k))
    for i, f in enumerate(m.focal):
        if not ok[i]:
            continue
        dev = fy[i] - cf[i] - est
        if population:
            V += sf[i] * np.outer(dev, dev)
        phi_loop[f] += sf[i] * (dev + emean[i])
    for j in range(n):
        c = (Kc[j] ** 2 - KK[j]) if population else (Kc[j] + (s[j] if j in set(
            m.focal[ok].tolist()) else 0.0)) ** 2
        V += max(c, 0.0) * np.outer(E[j], E[j])
        phi_loop[j] -= Kc[j] * E[j]
    np.testing.assert_allclose(v, V / S1**2, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(np.asarray(phi), phi_loop / S1, rtol=1e-12, atol=1e-18)
    idx = np.array([m.focal[0], m.matched[0], 1, 1])
    np.testing.assert_allclose(phi.rows(idx), phi_loop[idx] / S1, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("with_cells", [True, False])
def test_sorted_order_and_layout_equal_lexsort_and_prepare(with_cells):
    from mentor_impact._kernels.matching import prepare
    from mentor_impact.matching._core import layout, sorted_order

    rng = np.random.default_rng(4)
    n = 500
    dist = np.round(rng.normal(size=n), 1)  # many ties: row order decides
    cell = rng.integers(0, 7, size=n) if with_cells else None
    treat = rng.random(n) < 0.3
    want = np.argsort(dist, kind="stable") if cell is None else np.lexsort((dist, cell))
    order = sorted_order(dist, cell)
    np.testing.assert_array_equal(order, want)
    assert sorted_order(dist.copy(), None if cell is None else cell.copy()) is order  # cached
    rows = np.flatnonzero(treat)
    a, b = layout(dist, treat, cell, rows, order), prepare(dist, treat, cell, rows)
    for f in ("ctrl_rows", "ctrl_dist", "ctrl_cell", "treat_rows", "treat_dist", "split",
              "lo", "hi", "treat_cell"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
