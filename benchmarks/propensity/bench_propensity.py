"""Propensity fit benchmarks (pytest-benchmark). Size: env MI_BENCH_N (default 100_000).

Side by side: PropensityModel (Newton on standardised covariates, subsample warm start) and
scikit-learn's LogisticRegression(solver="newton-cholesky", C=inf: unpenalised) on the same data.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mentor_impact.propensity import PropensityModel

N = int(os.environ.get("MI_BENCH_N", "100000"))
P = 30


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, P)) * rng.uniform(0.5, 50, size=P) + rng.uniform(-5, 100, size=P)
    Xs = (X - X.mean(0)) / X.std(0)
    beta = rng.normal(size=P) * 0.15
    # about 5 % treated
    D = (rng.random(N) < 1 / (1 + np.exp(3.2 - Xs @ beta))).astype(int)
    return X, D


@pytest.mark.benchmark(group="propensity-fit")
def test_bench_propensity_model(benchmark, xy):
    X, D = xy
    pm = benchmark.pedantic(lambda: PropensityModel().fit(X, D), rounds=3, iterations=1)
    assert pm.converged_
    assert abs(np.mean(pm.ps_) - D.mean()) < 1e-8  # score equation for the intercept


@pytest.mark.benchmark(group="propensity-fit")
def test_bench_sklearn_newton_cholesky(benchmark, xy):
    X, D = xy
    Xs = (X - X.mean(0)) / X.std(0)
    lr = benchmark.pedantic(
        lambda: LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10).fit(Xs, D),
        rounds=3, iterations=1,
    )
    ref = PropensityModel().fit(X, D)
    np.testing.assert_allclose(lr.predict_proba(Xs)[:, 1], ref.ps_, atol=1e-6)
