from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    NotFittedError,
    SeparationWarning,
)
from mentor_impact.propensity import PropensityModel


def _data(n=400, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * np.array([1.0, 100.0, 0.01])[:p] + 5
    eta = -0.5 + 0.8 * (X[:, 0] - 5) + 0.003 * (X[:, 1] - 5)
    D = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, D


def test_matches_statsmodels_glm():
    sm = pytest.importorskip("statsmodels.api")
    X, D = _data()
    pm = PropensityModel().fit(X, D)
    ref = sm.GLM(D, sm.add_constant(X), family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(np.r_[pm.intercept_, pm.coef_], ref.params, rtol=1e-8)
    np.testing.assert_allclose(pm.ps_, ref.fittedvalues, rtol=1e-9)


def test_design_matrix_reproduces_logit():
    X, D = _data()
    pm = PropensityModel().fit(X, D)
    Z = pm.design_matrix(X)
    np.testing.assert_allclose(Z @ pm.coef_design_, pm.logit_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pm.predict_ps(X), pm.ps_)
    np.testing.assert_allclose(pm.predict_proba(X)[:, 1], pm.ps_)
    np.testing.assert_allclose(pm.intercept_ + X @ pm.coef_, pm.logit_, rtol=1e-10, atol=1e-10)
    # scores sum to zero at the MLE
    assert np.abs(pm.score_contributions(X, D).sum(axis=0)).max() < 1e-8


def test_frequency_weights_equal_duplicated_rows():
    X, D = _data(200)
    w = np.random.default_rng(1).integers(1, 4, size=200)
    a = PropensityModel().fit(X, D, sample_weight=w)
    b = PropensityModel().fit(np.repeat(X, w, axis=0), np.repeat(D, w))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-9)


def test_row_order_changes_nothing():
    X, D = _data(300)
    perm = np.random.default_rng(2).permutation(300)
    a = PropensityModel().fit(X, D)
    b = PropensityModel().fit(X[perm], D[perm])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    np.testing.assert_allclose(a.ps_[perm], b.ps_, rtol=1e-9)


def test_sklearn_estimator_wrapped():
    X, D = _data()
    pm = PropensityModel(LogisticRegression(C=1e10, max_iter=1000)).fit(X, D)
    ref = PropensityModel().fit(X, D)
    np.testing.assert_allclose(pm.ps_, ref.ps_, atol=1e-4)
    assert pm.coef_ is not None and pm.coef_.shape == (3,)


def test_separation_warns_with_counts():
    x = np.arange(20.0)
    D = (x >= 10).astype(int)
    with pytest.warns(SeparationWarning, match=r"separation.*of 20 rows"):
        PropensityModel().fit(x[:, None], D)


def test_bad_inputs():
    X, D = _data(50)
    Xn = X.copy()
    Xn[[3, 7], 1] = np.nan
    with pytest.raises(DataValidationError, match=r"X: expected finite.*2 rows.*rows 3, 7"):
        PropensityModel().fit(Xn, D)
    D2 = D.copy()
    D2[4] = 2
    with pytest.raises(DataValidationError, match=r"binary 0/1.*1 rows.*row 4"):
        PropensityModel().fit(X, D2)
    with pytest.raises(DataValidationError, match=r"both treated and control"):
        PropensityModel().fit(X, np.zeros(50))
    with pytest.raises(DataValidationError, match=r"expected 50 treatment values"):
        PropensityModel().fit(X, D[:-1])
    with pytest.raises(NotFittedError, match="not fitted"):
        PropensityModel().predict_ps(X)
    with pytest.raises(ConfigurationError, match="calendar_width"):
        PropensityModel(calendar_width=0).fit(X, D)
    with pytest.raises(ConfigurationError, match="together"):
        PropensityModel(duration_column="d").fit(X, D)
