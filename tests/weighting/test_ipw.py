from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mentor_impact._kernels import weighting as K
from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    EstimationError,
    PositivityWarning,
)
from mentor_impact.inference import IID, Clustered
from mentor_impact.weighting import AIPW as AIPW_
from mentor_impact.weighting import IPW, compare_estimands

from ._reference import ref_ipw
from ._sim import simulate


def flat_data(n=300, seed=0, k_curve=None, weights=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-(0.3 + x @ np.array([0.7, -0.5]))))
    d = (rng.random(n) < e).astype(int)
    y = x.sum(axis=1) + d + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["a", "b"]).assign(d=d, y=y)
    if weights is not None:
        df["w"] = weights
    return EvaluationData.from_frame(
        df, treatment="d", outcomes="y", covariates=["a", "b"],
        weights="w" if weights is not None else None,
    )


@pytest.fixture(scope="module")
def rs():
    return simulate(n_persons=200, seed=3)


# --------------------------------------------------------------- kernel vs plain loops
@pytest.mark.parametrize("estimand", ["ATT", "ATE", "ATC", "ATO"])
@pytest.mark.parametrize("normalized", [True, False])
def test_ipw_matches_loop_reference_with_risk_sets(rs, estimand, normalized):
    res = IPW(estimand=estimand, normalized=normalized).fit(rs, outcome="y")
    ref = ref_ipw(rs.outcome("y"), rs.treatment, rs.weight, rs.X,
                  groups=rs.start_week, estimand=estimand, normalized=normalized)
    np.testing.assert_allclose(res.estimate, ref, rtol=1e-9)


def test_estimand_b_matches_loop_reference(rs):
    res = IPW().fit(rs, outcome="y", dynamic="B")
    ref = ref_ipw(rs.outcome("y"), rs.treatment, rs.weight, rs.X, groups=rs.start_week,
                  later_start=rs.later_start, tau=rs.tau, dynamic="B")
    np.testing.assert_allclose(res.estimate, ref, rtol=1e-9)
    assert res.estimand == "ATT-B"
    assert 0 < res.extra["share_later_treated"] < 1


@pytest.mark.parametrize(
    ("estimand", "dynamic", "normalized"),
    [("ATT", "A", True), ("ATE", "A", True), ("ATO", "A", True), ("ATC", "A", False),
     ("ATT", "B", True)],
)
def test_influence_function_is_derivative_of_estimate(rs, estimand, dynamic, normalized):
    """phi_i / w_i = d theta_hat / d w_i, with the logit refitted (finite differences)."""
    est = IPW(estimand=estimand, normalized=normalized)
    res = est.fit(rs, outcome="y", dynamic=dynamic)
    rows_ = [0, 5, 17, rs.n - 1]
    h = 1e-5
    for i in rows_:
        wp = rs.weight.copy()
        wm = rs.weight.copy()
        wp[i] *= 1 + h
        wm[i] *= 1 - h
        tp = est.fit(rs.with_weight(wp), outcome="y", dynamic=dynamic).estimate
        tm = est.fit(rs.with_weight(wm), outcome="y", dynamic=dynamic).estimate
        deriv = (tp - tm) / (2 * h * rs.weight[i])
        np.testing.assert_allclose(res.influence[i] / rs.weight[i], deriv, rtol=1e-4,
                                   atol=1e-8)


def test_influence_sums_to_zero(rs):
    res = IPW().fit(rs, outcome="y")
    np.testing.assert_allclose(res.influence.sum(axis=0), 0.0, atol=1e-10)


# --------------------------------------------------------------- equivalences
def test_constant_ps_gives_difference_in_means():
    data = flat_data()
    res = IPW(estimand="ATE").fit(data, outcome="y", ps=np.full(data.n, 0.4))
    y, d = data.outcome("y"), data.treatment
    assert res.estimate[0] == pytest.approx(y[d == 1].mean() - y[d == 0].mean(), rel=1e-12)


@pytest.mark.parametrize("estimand", ["ATT", "ATE", "ATO"])
def test_rescaling_weights_leaves_hajek_unchanged(estimand):
    base = flat_data(weights=np.linspace(0.5, 2.0, 300))
    scaled = base.with_weight(base.weight * 7.3)
    a = IPW(estimand=estimand).fit(base, outcome="y")
    b = IPW(estimand=estimand).fit(scaled, outcome="y")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-10)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-8)


@pytest.mark.parametrize("normalized", [True, False])
def test_frequency_weights_equal_duplicated_rows(normalized):
    rng = np.random.default_rng(5)
    fw = rng.integers(1, 4, size=300).astype(float)
    weighted = flat_data(weights=fw)
    idx = np.repeat(np.arange(300), fw.astype(int))
    dup = dataclasses.replace(weighted.subset(idx), weight=np.ones(idx.size),
                              cluster=idx)
    a = IPW(normalized=normalized).fit(weighted, outcome="y", cov=IID())
    b = IPW(normalized=normalized).fit(dup, outcome="y",
                                       cov=Clustered("person", small_sample=False))
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-9)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-7)


def test_row_order_changes_nothing(rs):
    perm = np.random.default_rng(0).permutation(rs.n)
    a = IPW().fit(rs, outcome="y")
    b = IPW().fit(rs.subset(perm), outcome="y")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-10)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-8)
    np.testing.assert_allclose(a.weights[perm], b.weights, rtol=1e-10)


def test_curve_equals_columnwise_scalars(rs):
    curve = IPW().fit(rs, outcome="y")
    last = IPW().fit(rs, outcome="y_last")
    assert curve.estimate[-1] == pytest.approx(last.estimate[0], rel=1e-12)
    assert curve.std_errors.iloc[-1] == pytest.approx(last.std_errors.iloc[0], rel=1e-10)
    assert curve.targets == ("tau=0", "tau=3", "tau=8")
    assert curve.cov_type == "clustered(person)"


def test_risk_set_weights_reproduce_estimate(rs):
    """Reusable weights: a pooled weighted contrast equals the risk-set normalised one."""
    res = IPW().fit(rs, outcome="y")
    y, d, w = rs.outcome("y"), rs.treatment == 1, res.weights
    pooled = (w[d, None] * y[d]).sum(0) / w[d].sum() - (w[~d, None] * y[~d]).sum(0) / w[~d].sum()
    np.testing.assert_allclose(res.estimate, pooled, rtol=1e-10)


def test_fit_ab_side_by_side(rs):
    both = IPW().fit_ab(rs, outcome="y")
    table = compare_estimands(both)
    assert list(table.columns[:2]) == ["estimate_A", "std_error_A"]
    assert "estimate_B" in table.columns
    assert len(table) == 3


def test_with_cov_and_ess_by_tau(rs):
    res = IPW().fit(rs, outcome="y", dynamic="B")
    iid = res.with_cov(IID())
    assert iid.cov_type == "iid"
    ess = res.extra["ess"]
    assert list(ess["target"]) == ["tau=0", "tau=3", "tau=8"]
    assert ess["ess_control"].iloc[-1] < ess["ess_control"].iloc[0]


def test_trimming_counts_and_crump():
    data = flat_data(n=400, seed=2)
    res = IPW(estimand="ATE", trim=0.2).fit(data, outcome="y")
    ps = res.extra["ps"]
    assert res.dropped["trimmed"] == int(((ps < 0.2) | (ps > 0.8)).sum())
    assert res.n == data.n - res.dropped["trimmed"]
    assert np.all(res.weights[(ps < 0.2) | (ps > 0.8)] == 0)
    assert IPW(estimand="ATE", trim="crump").fit(data, outcome="y").n <= data.n


def test_trim_rules_are_the_propensity_modules():
    from mentor_impact.propensity import common_support, crump_alpha

    data = flat_data(n=400, seed=2)
    res = IPW(estimand="ATE", trim="crump").fit(data, outcome="y")
    a = crump_alpha(res.extra["ps"])
    ps = res.extra["ps"]
    assert res.dropped.get("trimmed", 0) == int(((ps < a) | (ps > 1 - a)).sum())
    mm = IPW(trim="minmax").fit(data, outcome="y")
    keep = common_support(ps, data.treatment, estimand="ATT")
    assert mm.n == int(keep.sum())


def test_truncation_caps_weights():
    data = flat_data(n=400, seed=2)
    raw = IPW().fit(data, outcome="y")
    cut = IPW(truncate=0.9).fit(data, outcome="y")
    c = data.treatment == 0
    assert cut.weights[c].max() == pytest.approx(np.quantile(raw.weights[c], 0.9))
    assert cut.extra["n_truncated"] > 0


def test_overlap_weights_need_no_inverse():
    data = flat_data()
    res = IPW(estimand="ATO").fit(data, outcome="y")
    assert np.isfinite(res.estimate).all()


# --------------------------------------------------------------- bad input
def test_ps_at_zero_or_one_is_rejected():
    data = flat_data()
    ps = np.full(data.n, 0.5)
    ps[[3, 9]] = [0.0, 1.0]
    with pytest.raises(DataValidationError, match=r"found 2 at 0, 1.*rows 3, 9"):
        IPW().fit(data, outcome="y", ps=ps)


def test_empty_arm_after_trimming():
    data = flat_data()
    with pytest.raises(DataValidationError, match=r"no (treated|control) rows"):
        IPW(trim=(0.0, 0.01)).fit(data, outcome="y")


def test_extreme_weights_warn_with_ess_and_share():
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=n)
    x[0] = 6.0
    d = (x > 0.5).astype(int)
    d[1] = 1
    d[0] = 0
    df = pd.DataFrame({"x": x, "d": d, "y": rng.normal(size=n)})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    ps = np.clip(1 / (1 + np.exp(-(x - 0.5) * 3)), 1e-6, 1 - 1e-6)
    with pytest.warns(PositivityWarning, match=r"effective sample size .* largest single"):
        IPW().fit(data, outcome="y", ps=ps)


def test_nan_outcome_is_reported_with_rows():
    data = flat_data()
    y = data.outcome("y").copy()
    y[[4, 8, 15]] = np.nan
    bad = dataclasses.replace(data, outcomes={"y": y})
    with pytest.raises(DataValidationError, match=r"3 missing .*\(rows 4, 8, 15\)"):
        IPW().fit(bad, outcome="y")


def test_bad_options():
    data = flat_data()
    with pytest.raises(ConfigurationError, match="'estimand' parameter of IPW"):
        IPW(estimand="XYZ").fit(data, outcome="y")
    with pytest.raises(ConfigurationError, match="trim"):
        IPW(trim="nope").fit(data, outcome="y")
    with pytest.raises(ConfigurationError, match="truncate"):
        IPW(truncate=(0.9, 0.1)).fit(data, outcome="y")
    with pytest.raises(DataValidationError, match="later_start"):
        IPW().fit(data, outcome="y", dynamic="B")
    with pytest.raises(ConfigurationError, match="ATT only"):
        IPW(estimand="ATE").fit(data, outcome="y", dynamic="B")


def test_propensity_learner_without_predict_proba():
    from sklearn.linear_model import LinearRegression

    with pytest.raises(ConfigurationError, match="predict_proba"):
        IPW(propensity=LinearRegression()).fit(flat_data(), outcome="y")


def test_separated_fit_raises_estimation_error():
    rng = np.random.default_rng(1)
    x = rng.normal(size=100)
    d = (x > 0).astype(int)
    df = pd.DataFrame({"x": x, "d": d, "y": rng.normal(size=100)})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    with pytest.warns(Warning), pytest.raises(EstimationError, match="at 0 or 1"):
        IPW().fit(data, outcome="y")


def test_group_matrix_matches_loop():
    g = np.array([2, 0, 1, 2, 2, 0])
    a = np.arange(12.0).reshape(6, 2)
    out = np.asarray(K.group_matrix(g, 3) @ a)
    ref = np.zeros((3, 2))
    for i in range(6):
        ref[g[i]] += a[i]
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("dynamic", ["A", "B"])
def test_column_blocks_change_nothing(rs, monkeypatch, dynamic):
    # Horvitz-Thompson curves are processed in column blocks
    import mentor_impact.weighting.ipw as ipw_mod

    whole = IPW(normalized=False).fit(rs, outcome="y", dynamic=dynamic)
    monkeypatch.setattr(ipw_mod, "_BLOCK_ELEMS", rs.n)  # one column per block
    blocked = IPW(normalized=False).fit(rs, outcome="y", dynamic=dynamic)
    np.testing.assert_allclose(blocked.estimate, whole.estimate, rtol=1e-12)
    np.testing.assert_allclose(blocked.influence, whole.influence, rtol=1e-10, atol=1e-14)
    pd.testing.assert_frame_equal(blocked.extra["ess"], whole.extra["ess"])


@pytest.mark.parametrize("dynamic", ["A", "B"])
def test_row_blocks_change_nothing(rs, monkeypatch, dynamic):
    # Hajek curves read the outcome in row blocks and keep the influence factored
    import mentor_impact.inference.influence as infl

    whole = IPW().fit(rs, outcome="y", dynamic=dynamic)
    monkeypatch.setattr(infl, "BLOCK_ELEMS", 3 * whole.estimate.size)  # 3 rows per block
    blocked = IPW().fit(rs, outcome="y", dynamic=dynamic)
    np.testing.assert_allclose(blocked.estimate, whole.estimate, rtol=1e-12)
    np.testing.assert_allclose(blocked.cov, whole.cov, rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(np.asarray(blocked.influence), np.asarray(whole.influence),
                               rtol=1e-10, atol=1e-14)
    pd.testing.assert_frame_equal(blocked.extra["ess"], whole.extra["ess"])
    np.testing.assert_allclose(blocked.weights, whole.weights, rtol=1e-12)
    # the factored influence gives the covariance of the materialised one
    dense = np.asarray(whole.influence)
    np.testing.assert_allclose(Clustered().cov(dense, cluster=whole.cluster), whole.cov,
                               rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(dense.sum(axis=0), 0.0, atol=1e-10)


def test_weighting_table_beside_truth(rs):
    from mentor_impact.weighting import weighting_table

    truth = pd.DataFrame({"estimand": ["A", "B", "A"], "tau": [3, 3, 8], "effect": [0.5, 1, 0.3]})
    tab = weighting_table(rs, outcome="y", truth=truth, taus=(3, 8), n_folds=2)
    assert set(tab["estimator"]) == {"IPW", "AIPW"}
    assert len(tab) == 6
    row = tab[(tab.estimator == "IPW") & (tab.estimand == "B") & (tab.tau == 3)]
    assert row["truth"].iloc[0] == 1.0
    assert np.isnan(tab[(tab.estimand == "B") & (tab.tau == 8)]["truth"].iloc[0])


def test_logit_large_n_start_does_not_change_the_mle():
    rng = np.random.default_rng(0)
    n = 120_000
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    d = (rng.random(n) < K.expit(Z @ np.array([-1.0, 0.5, 0.2]))).astype(float)
    w = np.ones(n)
    a = K.logit_fit(Z, d, w)
    perm = rng.permutation(n)
    b = K.logit_fit(Z[perm], d[perm], w[perm])
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)
    assert a.converged


def test_aliased_covariates_are_left_out():
    base = flat_data()
    X = np.column_stack([base.X, np.ones(base.n) * 3.0, base.X[:, 0] * 2 - base.X[:, 1]])
    wide = dataclasses.replace(base, X=X, covariate_names=("a", "b", "const", "combo"))
    a = IPW().fit(base, outcome="y")
    b = IPW().fit(wide, outcome="y")
    assert b.extra["ps_aliased_covariates"] == 2
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-10)
    np.testing.assert_allclose(b.std_errors, a.std_errors, rtol=1e-8)
    c = AIPW_(n_folds=1).fit(wide, outcome="y", variance="stacked")
    d = AIPW_(n_folds=1).fit(base, outcome="y", variance="stacked")
    np.testing.assert_allclose(c.estimate, d.estimate, rtol=1e-10)
    np.testing.assert_allclose(c.std_errors, d.std_errors, rtol=1e-8)


def test_propensity_model_logit_gives_same_sandwich():
    from mentor_impact.propensity import PropensityModel

    data = flat_data()
    a = IPW().fit(data, outcome="y")
    b = IPW(propensity=PropensityModel()).fit(data, outcome="y")
    assert b.extra["ps_source"] == "model"
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-8)
    np.testing.assert_allclose(b.std_errors, a.std_errors, rtol=1e-6)


def test_sklearn_classifier_scores_treated_as_known():
    from sklearn.linear_model import LogisticRegression

    data = flat_data()
    res = IPW(propensity=LogisticRegression()).fit(data, outcome="y")
    assert res.extra["ps_source"] == "given"
    assert np.isfinite(res.std_errors).all()


def test_reused_propensity_fit_equals_refit():
    from mentor_impact.design import EvaluationData
    from mentor_impact.exceptions import ConfigurationError
    from mentor_impact.weighting import IPW, fit_propensity

    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=(n, 2))
    d = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    y = x[:, 1] + d + rng.normal(size=n)
    data = EvaluationData(X=x, covariate_names=("a", "b"), treatment=d, outcomes={"y": y})
    pf = fit_propensity(data)
    r1 = IPW().fit(data, outcome="y")
    r2 = IPW(propensity=pf).fit(data, outcome="y")
    np.testing.assert_allclose(r2.estimate, r1.estimate, rtol=1e-12)
    np.testing.assert_allclose(r2.std_errors, r1.std_errors, rtol=1e-10)
    with pytest.raises(ConfigurationError, match="PropensityFit for 400 rows"):
        IPW(propensity=pf).fit(data.subset(np.arange(100)), outcome="y")


# --------------------------------------------------------------- several outcomes at once
@pytest.fixture(scope="module")
def rs_many(rs):
    rng = np.random.default_rng(8)
    y = rs.outcome("y")
    extra = {
        "y2": (rng.random(y.shape) < 0.3).astype(np.int8),
        "y3": y + rng.normal(size=y.shape),
        "s": rng.normal(size=rs.n),
    }
    frame = rs.frame.assign(muni=rng.integers(0, 7, size=rs.n))
    return dataclasses.replace(rs, outcomes={**rs.outcomes, **extra}, frame=frame)


@pytest.mark.parametrize("dynamic", ["A", "B"])
@pytest.mark.parametrize("cov", [None, IID(), Clustered("muni")])
def test_fit_many_equals_fit_outcome_by_outcome(rs_many, dynamic, cov):
    names = ["y", "y2", "y3", "y"]
    kw = {"horizon": 5} if dynamic == "B" else {}
    many = IPW().fit_many(rs_many, outcomes=names, cov=cov, dynamic=dynamic)
    assert list(many) == ["y", "y2", "y3"]
    for name, res in many.items():
        one = IPW().fit(rs_many, outcome=name, cov=cov, dynamic=dynamic)
        np.testing.assert_allclose(res.estimate, one.estimate, rtol=1e-12)
        np.testing.assert_allclose(res.cov, one.cov, rtol=1e-9, atol=1e-16)
        assert res.cov_type == one.cov_type
        pd.testing.assert_frame_equal(res.extra["ess"], one.extra["ess"])
        np.testing.assert_allclose(res.weights, one.weights, rtol=1e-12)
        # the stored influence function gives the same covariance again
        np.testing.assert_allclose(res.with_cov(cov or Clustered()).cov, res.cov, rtol=1e-9,
                                   atol=1e-16)
    if dynamic == "B":  # a scalar outcome beside the curves (needs the horizon)
        mixed = IPW().fit_many(rs_many, outcomes=["y", "s"], dynamic="B", **kw)
        alone = IPW().fit(rs_many, outcome="s", dynamic="B", **kw)
        np.testing.assert_allclose(mixed["s"].estimate, alone.estimate, rtol=1e-12)


def test_fit_many_reports_missing_outcomes_of_each_curve(rs_many):
    y3 = rs_many.outcome("y3").copy()
    treated_row = int(np.flatnonzero(rs_many.treatment > 0)[0])
    y3[treated_row, 0] = np.nan
    data = dataclasses.replace(rs_many, outcomes={**rs_many.outcomes, "y3": y3})
    with pytest.raises(DataValidationError, match=r"outcome 'y3'.*1 missing"):
        IPW().fit_many(data, outcomes=["y", "y3"], dynamic="B")
