from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import ConfigurationError, DataValidationError, EstimationError
from mentor_impact.inference import IID, Clustered
from mentor_impact.weighting import AIPW, person_folds

from ._sim import simulate


def flat(n=400, seed=0, weights=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-(x @ np.array([0.6, -0.4]))))
    d = (rng.random(n) < e).astype(int)
    y = 1 + x @ np.array([1.0, 0.5]) + d * (1 + 0.5 * x[:, 0]) + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["a", "b"]).assign(d=d, y=y)
    if weights is not None:
        df["w"] = weights
    return EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["a", "b"],
                                     weights="w" if weights is not None else None)


def loop_aipw_ate(y, d, x, w):
    """Plain-loop twin: logit + arm-wise OLS, then the AIPW average row by row."""
    import statsmodels.api as sm

    z = np.column_stack([np.ones(len(y)), x])
    ps = sm.GLM(d, z, family=sm.families.Binomial(), freq_weights=w).fit(tol=1e-13).predict(z)
    b1 = sm.WLS(y[d == 1], z[d == 1], weights=w[d == 1]).fit().params
    b0 = sm.WLS(y[d == 0], z[d == 0], weights=w[d == 0]).fit().params
    num = den = 0.0
    for i in range(len(y)):
        m1 = float(z[i] @ b1)
        m0 = float(z[i] @ b0)
        phi = m1 - m0 + d[i] * (y[i] - m1) / ps[i] - (1 - d[i]) * (y[i] - m0) / (1 - ps[i])
        num += w[i] * phi
        den += w[i]
    return num / den


def test_no_crossfit_matches_loop_twin():
    w = np.linspace(0.5, 1.5, 400)
    data = flat(weights=w)
    res = AIPW(n_folds=1).fit(data, outcome="y")
    ref = loop_aipw_ate(data.outcome("y"), data.treatment, data.X, w)
    assert res.estimate[0] == pytest.approx(ref, rel=1e-8)


def test_person_folds_keep_persons_together():
    cl = np.repeat(np.arange(50), 3)[np.random.default_rng(0).permutation(150)]
    f = person_folds(cl, 5, seed=1)
    for c in range(50):
        assert np.unique(f[cl == c]).size == 1
    counts = np.bincount(f[np.unique(cl, return_index=True)[1]])
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(f, person_folds(cl, 5, seed=1))


def test_person_folds_loop_twin():
    cl = np.array([4, 4, 9, 1, 9, 1, 7])
    f = person_folds(cl, 2, seed=3)
    ref = {}
    for i, c in enumerate(cl):
        ref.setdefault(c, f[i])
        assert f[i] == ref[c]


def test_crossfit_is_reproducible_and_close():
    data = flat(n=1000)
    a = AIPW(n_folds=5, seed=3).fit(data, outcome="y")
    b = AIPW(n_folds=5, seed=3).fit(data, outcome="y")
    c = AIPW(n_folds=1).fit(data, outcome="y")
    np.testing.assert_array_equal(a.estimate, b.estimate)
    assert abs(a.estimate[0] - c.estimate[0]) < 0.5 * c.std_errors.iloc[0]


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_curve_on_risk_sets_clustered(estimand):
    rs = simulate(n_persons=300, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = AIPW(estimand=estimand, n_folds=3).fit(rs, outcome="y")
        last = AIPW(estimand=estimand, n_folds=3).fit(rs, outcome="y_last")
    assert res.cov_type == "clustered(person)"
    assert res.estimate.shape == (3,)
    assert res.estimate[-1] == pytest.approx(last.estimate[0], rel=1e-10)
    assert res.with_cov(IID()).cov_type == "iid"


def test_frequency_weights_equal_duplicated_rows():
    fw = np.random.default_rng(2).integers(1, 4, size=400).astype(float)
    data = flat(weights=fw)
    idx = np.repeat(np.arange(400), fw.astype(int))
    dup = dataclasses.replace(data.subset(idx), weight=np.ones(idx.size), cluster=idx)
    for est in ("ATE", "ATT"):
        a = AIPW(n_folds=1, estimand=est).fit(data, outcome="y", cov=IID())
        b = AIPW(n_folds=1, estimand=est).fit(
            dup, outcome="y", cov=Clustered("person", small_sample=False))
        np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-9)
        np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-7)


def test_stacked_if_is_derivative_of_estimate():
    data = flat(n=300)
    est = AIPW(n_folds=1, estimand="ATT")
    res = est.fit(data, outcome="y", variance="stacked")
    h = 1e-5
    for i in (0, 7, 150):
        wp, wm = data.weight.copy(), data.weight.copy()
        wp[i] *= 1 + h
        wm[i] *= 1 - h
        tp = est.fit(data.with_weight(wp), outcome="y").estimate
        tm = est.fit(data.with_weight(wm), outcome="y").estimate
        np.testing.assert_allclose(res.influence[i], (tp - tm) / (2 * h), rtol=1e-4)


def test_sklearn_learners_any():
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    data = flat(n=300)
    res = AIPW(
        propensity_learner=RandomForestClassifier(n_estimators=20, min_samples_leaf=20,
                                                  random_state=0),
        outcome_learner=RandomForestRegressor(n_estimators=20, min_samples_leaf=10,
                                              random_state=0),
        n_folds=2,
    ).fit(data, outcome="y")
    assert np.isfinite(res.estimate).all() and np.isfinite(res.std_errors).all()


# --------------------------------------------------------------- bad input
def test_learner_without_predict_proba():
    from sklearn.linear_model import LinearRegression

    with pytest.raises(ConfigurationError, match="predict_proba"):
        AIPW(propensity_learner=LinearRegression()).fit(flat(), outcome="y")


def test_bad_options():
    with pytest.raises(ConfigurationError, match="'n_folds' parameter"):
        AIPW(n_folds=0).fit(flat(), outcome="y")
    with pytest.raises(ConfigurationError, match="'estimand' parameter"):
        AIPW(estimand="ATC").fit(flat(), outcome="y")
    with pytest.raises(ConfigurationError, match="stacked"):
        AIPW(n_folds=5).fit(flat(), outcome="y", variance="stacked")


def test_nan_outcome():
    data = flat()
    y = data.outcome("y").copy()
    y[[2, 30]] = np.nan
    with pytest.raises(DataValidationError, match=r"2 missing .*\(rows 2, 30\)"):
        AIPW().fit(dataclasses.replace(data, outcomes={"y": y}), outcome="y")


def test_ps_at_zero_or_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    d = (x > 0).astype(int)
    df = pd.DataFrame({"x": x, "d": d, "y": rng.normal(size=200)})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    with pytest.raises(EstimationError, match=r"rows at 0 or 1 \(rows"):
        AIPW(n_folds=1).fit(data, outcome="y")
    res = AIPW(n_folds=1, ps_clip=0.01).fit(data, outcome="y")
    assert np.isfinite(res.estimate).all()


def test_crossfit_ols_matches_per_fold_loop():
    from mentor_impact._kernels.weighting import crossfit_ols

    rng = np.random.default_rng(0)
    n = 200
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    Y = rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2, size=n)
    arm = rng.random(n) < 0.6
    folds = rng.integers(0, 4, size=n)
    out = crossfit_ols(Z, Y, w, arm, folds, 4)
    for i in range(n):
        tr = arm & (folds != folds[i])
        sw = np.sqrt(w[tr])
        beta = np.linalg.lstsq(Z[tr] * sw[:, None], Y[tr] * sw[:, None], rcond=None)[0]
        np.testing.assert_allclose(out[i], Z[i] @ beta, rtol=1e-9, atol=1e-12)


def test_warm_started_fold_logit_equals_cold_start():
    from mentor_impact._kernels.weighting import logit_fit

    rng = np.random.default_rng(1)
    Z = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
    d = (rng.random(500) < 0.4).astype(float)
    w = np.ones(500)
    cold = logit_fit(Z[:400], d[:400], w[:400])
    warm = logit_fit(Z[:400], d[:400], w[:400], beta0=logit_fit(Z, d, w).coef)
    np.testing.assert_allclose(warm.coef, cold.coef, rtol=1e-8)


def test_one_step_fold_logit_close_to_fold_mle():
    from mentor_impact._kernels.weighting import crossfit_logit, expit, logit_fit

    rng = np.random.default_rng(2)
    n = 4000
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    d = (rng.random(n) < expit(Z @ np.array([-0.5, 0.7, -0.3, 0.2]))).astype(float)
    w = np.ones(n)
    folds = rng.integers(0, 4, size=n)
    full = logit_fit(Z, d, w)
    one = crossfit_logit(Z, d, w, folds, 4, full.coef, full.ps)
    for k in range(4):
        tr = folds != k
        exact = expit(Z[~tr] @ logit_fit(Z[tr], d[tr], w[tr]).coef)
        np.testing.assert_allclose(one[~tr], exact, rtol=2e-3)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_column_blocks_of_the_outcome_change_nothing(estimand, monkeypatch):
    import mentor_impact.weighting.aipw as aipw_mod

    from ._sim import simulate

    data = simulate(n_persons=300, seed=3)
    whole = AIPW(n_folds=3, estimand=estimand, seed=1).fit(data, outcome="y")
    monkeypatch.setattr(aipw_mod, "_BLOCK_ELEMS", data.n)  # one target per block
    blocked = AIPW(n_folds=3, estimand=estimand, seed=1).fit(data, outcome="y")
    assert whole.estimate.size > 1
    np.testing.assert_allclose(blocked.estimate, whole.estimate, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(blocked.influence, whole.influence, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_factored_influence_equals_dense_influence(estimand):
    # default least squares (factored influence) vs the same model through a scikit-learn
    # learner (dense influence computed row by row from the predictions)
    from sklearn.linear_model import LinearRegression

    from mentor_impact.inference.influence import RowInfluence

    from ._sim import simulate

    data = simulate(n_persons=300, seed=4)
    lazy = AIPW(n_folds=3, estimand=estimand, seed=2).fit(data, outcome="y")
    dense = AIPW(n_folds=3, estimand=estimand, seed=2,
                 outcome_learner=LinearRegression()).fit(data, outcome="y")
    assert isinstance(lazy.influence, RowInfluence)
    assert not isinstance(dense.influence, RowInfluence)
    np.testing.assert_allclose(lazy.estimate, dense.estimate, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lazy.influence), dense.influence, rtol=1e-7,
                               atol=1e-12)
    np.testing.assert_allclose(lazy.cov, dense.cov, rtol=1e-7, atol=1e-16)


def test_design_from_a_propensity_fit_changes_nothing():
    from mentor_impact.weighting import fit_propensity

    from ._sim import simulate

    data = simulate(n_persons=300, seed=4)
    pf = fit_propensity(data)
    own = AIPW(n_folds=3, estimand="ATT", seed=2).fit(data, outcome="y")
    shared = AIPW(n_folds=3, estimand="ATT", seed=2, design_from=pf).fit(data, outcome="y")
    assert shared.influence.Z is pf.design  # reused, not copied
    np.testing.assert_allclose(shared.estimate, own.estimate, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(shared.cov, own.cov, rtol=1e-12, atol=1e-18)
    assert shared.config["design_from"] == "PropensityFit"
    shared.to_json()  # serialisable
