"""The row-block Hajek kernel equals the dense one (and hence the loop references)."""

from __future__ import annotations

import numpy as np
import pytest

from mentor_impact._kernels import weighting as K


def _problem(n, n_groups, estimand, seed, curve_dtype):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Z = K.with_intercept(X)
    d = (rng.random(n) < K.expit(-0.4 + X @ np.array([0.5, -0.3, 0.2]))).astype(float)
    w = rng.integers(1, 4, size=n).astype(float)
    w[rng.random(n) < 0.05] = 0.0  # rows without weight (as after trimming)
    fit = K.logit_fit(Z, d, w)
    e = np.clip(fit.ps, 1e-12, 1 - 1e-12)
    omega, g, t, tp = K.arm_weights(e, d, estimand)
    term = K.PSTerm(Z, w * (d - e), np.linalg.inv(fit.hessian))
    groups = None if n_groups == 1 else rng.integers(0, n_groups, size=n).astype(np.int64)
    Y = (rng.random((n, 6)) < 0.4).astype(curve_dtype)
    return Y, d, w, omega, g, t, tp, term, groups


@pytest.mark.parametrize("estimand", ["ATT", "ATE", "ATC", "ATO"])
@pytest.mark.parametrize("n_groups", [1, 3, 40])
@pytest.mark.parametrize("with_ps", [True, False])
def test_rows_kernel_equals_dense_kernel(estimand, n_groups, with_ps):
    Y, d, w, omega, g, t, tp, term, groups = _problem(400, n_groups, estimand, 7, np.int8)
    ps = term if with_ps else None
    ref = K.hajek_if(Y.astype(float), d, w, omega, omega, g, g, t, tp, ps, groups, n_groups)
    got = K.hajek_rows(Y, d, w, omega, g, t, tp, ps, groups, n_groups)
    for a, b in zip(got[:3], ref[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(got[3]), ref[3], rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(got[4], ref[4])


def test_rows_kernel_reads_y_in_blocks(monkeypatch):
    import mentor_impact.inference.influence as infl

    Y, d, w, omega, g, t, tp, term, groups = _problem(300, 5, "ATT", 3, np.float64)
    whole = K.hajek_rows(Y, d, w, omega, g, t, tp, term, groups, 5)
    monkeypatch.setattr(infl, "BLOCK_ELEMS", 13)  # many row blocks of 2 rows
    blocked = K.hajek_rows(Y, d, w, omega, g, t, tp, term, groups, 5)
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(blocked[3]), np.asarray(whole[3]), rtol=1e-10,
                               atol=1e-15)


def test_missing_outcome_in_rows_without_weight_is_ignored():
    Y, d, w, omega, g, t, tp, term, _ = _problem(300, 1, "ATT", 5, np.float64)
    Yn = Y.copy()
    Yn[w == 0, 2] = np.nan
    a = K.hajek_rows(Y, d, w, omega, g, t, tp, term)
    b = K.hajek_rows(Yn, d, w, omega, g, t, tp, term)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
    phi_a, phi_b = np.asarray(a[3]), np.asarray(b[3])
    assert np.isfinite(phi_b).all()
    np.testing.assert_allclose(phi_b[w > 0], phi_a[w > 0], rtol=1e-12)


def test_block_size_is_read_at_call_time(monkeypatch):
    import mentor_impact.inference.influence as infl

    monkeypatch.setattr(infl, "BLOCK_ELEMS", 13)
    assert len(infl.block_rows(300, 6)) == 150


@pytest.mark.parametrize("n_groups", [1, 4, 30])
@pytest.mark.parametrize("with_ps", [True, False])
@pytest.mark.parametrize("dtype", [np.int8, np.float64])
def test_varying_weights_kernel_equals_dense_kernel(n_groups, with_ps, dtype, monkeypatch):
    import mentor_impact.inference.influence as infl

    Y, d, w, omega, g, t, tp, term, groups = _problem(350, n_groups, "ATT", 11, dtype)
    rng = np.random.default_rng(4)
    kept = (rng.random(Y.shape) < 0.8) | (d > 0.5)[:, None]  # controls censored per target
    scale = np.exp(rng.normal(scale=0.3, size=Y.shape))
    om0 = np.where(kept, omega[:, None] * scale, 0.0)
    g0 = om0 * rng.normal(size=Y.shape)
    if dtype == np.float64:  # missing outcomes where a control is censored are not used
        Y = Y.copy()
        Y[~kept & (rng.random(Y.shape) < 0.5)] = np.nan

    def weights0(idx, need_g, need_kept):
        return (om0[idx], g0[idx] if need_g else None,
                kept[idx].copy() if need_kept else None)

    ps = term if with_ps else None
    Yd = np.where(np.isfinite(Y), Y, 0.0).astype(float)
    ref = K.hajek_if(Yd, d, w, omega, om0, g, g0, t, tp, ps, groups, n_groups)
    monkeypatch.setattr(infl, "BLOCK_ELEMS", 60)  # several row blocks
    got = K.hajek_rows_varying(Y, d, w, omega, g, weights0, t, tp, ps, groups, n_groups)
    for a, b in zip(got[:3], ref[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(got[3]), ref[3], rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(got[4], ref[4])
    nu0 = np.where(d > 0.5, 0.0, w)[:, None] * om0
    np.testing.assert_allclose(got[5]["sum"], nu0.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got[5]["sumsq"], (nu0**2).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got[5]["max"], nu0.max(axis=0), rtol=1e-12)
    if dtype == np.float64:
        assert int(got[5]["n_bad"]) == 0


@pytest.mark.parametrize("n_groups", [1, 6])
def test_segment_sums_equal_summed_rows(n_groups):
    from mentor_impact.inference.influence import summing_matrix

    Y, d, w, omega, g, t, tp, term, groups = _problem(240, n_groups, "ATE", 9, np.int8)
    phi = K.hajek_rows(Y, d, w, omega, g, t, tp, term, groups, n_groups)[3]
    rng = np.random.default_rng(0)
    idx = rng.permutation(240)[:150]
    seg = np.sort(rng.integers(0, 40, size=150))
    seg = np.unique(seg, return_inverse=True)[1]
    n_seg = int(seg.max()) + 1
    ref = summing_matrix(seg, n_seg) @ phi.rows(idx)
    np.testing.assert_allclose(phi.summed_rows(idx, seg, n_seg), ref, rtol=1e-10, atol=1e-15)
    L = rng.normal(size=(6, 2))
    np.testing.assert_allclose((phi @ L).summed_rows(idx, seg, n_seg), ref @ L, rtol=1e-10,
                               atol=1e-15)


@pytest.mark.parametrize("n_groups", [1, 3])
@pytest.mark.parametrize("dtype", [np.int8, np.float64])
@pytest.mark.parametrize("estimand", ["ATT", "ATO"])
def test_augmented_gram_equals_row_gram(n_groups, dtype, estimand, monkeypatch):
    from mentor_impact.inference.influence import influence_gram

    Y, d, w, omega, g, t, tp, term, groups = _problem(300, n_groups, estimand, 13, dtype)
    if dtype == np.float64:  # a large common level: the augmented columns are centred
        Y = Y * 3.0 + 1e4
    phi = K.hajek_rows(Y, d, w, omega, g, t, tp, term, groups, n_groups)[3]
    fast = influence_gram(phi, block_elems=500)
    assert phi._fast_gram(None, None) is not None
    monkeypatch.setattr(K, "_AUG_TABLE_ROWS", 0)  # force the row path
    assert phi._fast_gram(None, None) is None
    dense = np.asarray(phi)
    np.testing.assert_allclose(fast, dense.T @ dense, rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(influence_gram(phi), fast, rtol=1e-9, atol=1e-18)
    L = np.random.default_rng(0).normal(size=(6, 2))
    monkeypatch.setattr(K, "_AUG_TABLE_ROWS", 24)
    np.testing.assert_allclose(influence_gram(phi @ L), L.T @ dense.T @ dense @ L, rtol=1e-9,
                               atol=1e-18)
