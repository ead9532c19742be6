"""Row-block influence functions and the blockwise Gram (reference twins: dense numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from mentor_impact.inference import IID, Clustered
from mentor_impact.inference.influence import RowInfluence, influence_gram


class _Dense(RowInfluence):
    """A RowInfluence backed by a dense matrix (test double)."""

    def __init__(self, a):
        super().__init__(*a.shape)
        self.a = a

    def _rows(self, idx):
        return np.array(self.a[idx], dtype=np.float64)


def _loop_cluster_gram(phi, codes):
    """Plain-loop twin: sum over clusters of the outer product of the cluster sums."""
    k = phi.shape[1]
    out = np.zeros((k, k))
    for g in np.unique(codes):
        s = phi[codes == g].sum(axis=0)
        out += np.outer(s, s)
    return out


@pytest.mark.parametrize("block_elems", [1, 7, 50, 10_000])
def test_gram_equals_loop_twin_with_and_without_clusters(block_elems):
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(203, 4))
    codes = rng.integers(0, 37, size=203)  # clusters spread over the rows
    np.testing.assert_allclose(influence_gram(phi, block_elems=block_elems), phi.T @ phi,
                               rtol=1e-12)
    ref = _loop_cluster_gram(phi, codes)
    for src in (phi, _Dense(phi)):
        got = influence_gram(src, codes, block_elems=block_elems)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_one_cluster_larger_than_a_block_is_summed_whole():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(100, 3))
    codes = np.r_[np.zeros(80, np.int64), np.arange(1, 21)]
    np.testing.assert_allclose(influence_gram(phi, codes, block_elems=9),
                               _loop_cluster_gram(phi, codes), rtol=1e-12)


def test_covariance_estimators_accept_row_influence():
    rng = np.random.default_rng(2)
    phi = rng.normal(size=(150, 5))
    person = rng.integers(0, 40, size=150)
    lazy = _Dense(phi)
    np.testing.assert_allclose(IID().cov(lazy), IID().cov(phi), rtol=1e-12)
    np.testing.assert_allclose(Clustered().cov(lazy, cluster=person),
                               Clustered().cov(phi, cluster=person), rtol=1e-12)
    g = np.unique(person).size
    np.testing.assert_allclose(Clustered().cov(phi, cluster=person),
                               _loop_cluster_gram(phi, person) * g / (g - 1), rtol=1e-12)


def test_row_influence_behaves_like_an_array():
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(60, 4))
    lazy = _Dense(phi)
    assert lazy.shape == (60, 4) and lazy.ndim == 2 and len(lazy) == 60
    np.testing.assert_array_equal(np.asarray(lazy), phi)
    L = rng.normal(size=(4, 2))
    prod = lazy @ L
    assert isinstance(prod, RowInfluence) and prod.shape == (60, 2)
    np.testing.assert_allclose(np.asarray(prod), phi @ L, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(prod @ np.ones((2, 1))), phi @ L @ np.ones((2, 1)))
    np.testing.assert_allclose(lazy[:, 2], phi[:, 2])
    np.testing.assert_allclose(lazy[:, [0, 3]], phi[:, [0, 3]])
    np.testing.assert_allclose(lazy[5:9, 1], phi[5:9, 1])
    np.testing.assert_allclose(lazy[[1, 4]], phi[[1, 4]])
    np.testing.assert_allclose(lazy.sum(axis=0), phi.sum(axis=0))
    with pytest.raises(ValueError, match="expected L of shape"):
        _ = lazy @ np.ones((3, 1))
