"""Covariance estimators and bands: vectorised kernels against plain-loop twins."""

import numpy as np
import pytest

from mentor_impact.inference import (
    IID,
    Clustered,
    cluster_sums,
    multiplier_bootstrap_critical_value,
    sup_t_critical_value,
)


def _cluster_sums_loop(phi, labels):
    uniq = sorted(set(labels.tolist()))
    out = np.zeros((len(uniq), phi.shape[1]))
    for gi, g in enumerate(uniq):
        for i in range(phi.shape[0]):
            if labels[i] == g:
                out[gi] += phi[i]
    return out


def test_cluster_sums_equal_loop_twin():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(57, 4))
    labels = rng.integers(0, 9, size=57) * 7
    sums, g = cluster_sums(phi, labels)
    np.testing.assert_allclose(sums, _cluster_sums_loop(phi, labels))
    assert g == len(set(labels.tolist()))


def test_row_order_does_not_change_covariance():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(100, 3))
    labels = rng.integers(0, 20, size=100)
    perm = rng.permutation(100)
    v1 = Clustered().cov(phi, cluster=labels)
    v2 = Clustered().cov(phi[perm], cluster=labels[perm])
    np.testing.assert_allclose(v1, v2)
    np.testing.assert_allclose(IID().cov(phi), IID().cov(phi[perm]))


def test_iid_small_sample_factor():
    phi = np.arange(10.0)[:, None]
    assert IID(small_sample=True).cov(phi)[0, 0] == pytest.approx((phi**2).sum() * 10 / 9)


def test_sup_t_independent_targets_matches_sidak():
    k = 10
    c = sup_t_critical_value(np.eye(k) * 4.0, 0.95, n_draws=200_000, seed=0)
    # for independent normals P(max|Z| <= c) = (2 Phi(c) - 1)^k
    from scipy import stats

    exact = stats.norm.ppf(0.5 + 0.95 ** (1 / k) / 2)
    assert c == pytest.approx(exact, abs=0.02)


def test_sup_t_perfectly_correlated_equals_pointwise():
    cov = np.ones((5, 5))
    c = sup_t_critical_value(cov, 0.95, n_draws=200_000, seed=0)
    assert c == pytest.approx(1.96, abs=0.02)


def test_multiplier_bootstrap_agrees_with_gaussian_band():
    rng = np.random.default_rng(2)
    n, k = 4000, 8
    base = rng.normal(size=(n, 1))
    phi = (0.7 * base + 0.3 * rng.normal(size=(n, k))) / n
    cl = np.arange(n)
    c_boot = multiplier_bootstrap_critical_value(phi, cl, 0.95, n_draws=4000, seed=1)
    c_gauss = sup_t_critical_value(IID().cov(phi), 0.95, n_draws=50_000, seed=1)
    assert c_boot == pytest.approx(c_gauss, rel=0.05)
