from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import ConfigurationError, DataValidationError, MissingDependencyError
from mentor_impact.weighting import IPW, adjust_pvalues, cate_summary, subgroup_effects

from ._sim import simulate


def loop_holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(running, 1.0)
    return out


def loop_bh(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i], reverse=True)
    out = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, m / rank * p[i])
        out[i] = min(running, 1.0)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjust_pvalues_match_loops_and_statsmodels(seed):
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(seed).uniform(0, 0.2, size=9)
    p[3] = p[5]  # a tie
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), loop_holm(p), rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), loop_bh(p), rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), multipletests(p, method="fdr_bh")[1])


def test_adjust_pvalues_known_r_values():
    """p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), 'holm') / 'BH' in R."""
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.05, 0.08, 0.09, 0.09, 0.09])
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.05] * 5)


@pytest.fixture(scope="module")
def rs():
    d = simulate(n_persons=600, seed=8)
    return d


def test_subgroup_effects_table_and_plot(rs):
    import dataclasses

    grp = np.where(rs.X[:, 0] > 0, "high", "low")
    data = dataclasses.replace(rs, frame=rs.frame.assign(x1grp=grp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = subgroup_effects(IPW(), data, outcome="y", by="x1grp", target=3)
        single = IPW().fit(data.subset(grp == "high"), outcome="y")
    t = out.table
    assert list(t["subgroup"]) == ["high", "low"]
    assert t.loc[0, "estimate"] == pytest.approx(single.estimate[1], rel=1e-12)
    # the subgroups are disjoint in persons, so their own SEs equal the joint ones up to the
    # G/(G-1) factor, which the joint covariance takes over all persons
    from mentor_impact.inference import Clustered

    g_all = np.unique(data.cluster).size
    raw = single.with_cov(Clustered("person", small_sample=False)).std_errors.iloc[1]
    assert t.loc[0, "std_error"] == pytest.approx(raw * np.sqrt(g_all / (g_all - 1)), rel=1e-10)
    assert np.all(t["p_holm"] >= t["p_value"]) and np.all(t["p_bh"] >= t["p_value"])
    assert 0 <= out.wald_pvalue <= 1 and out.wald_df == 1
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert out.plot(ax=ax) is ax
    plt.close(fig)


def test_subgroup_bad_inputs(rs):
    with pytest.raises(DataValidationError, match="by: expected a covariate or frame column"):
        subgroup_effects(IPW(), rs, outcome="y", by="nope", target=3)
    with pytest.raises(ConfigurationError, match="target"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            subgroup_effects(IPW(), rs.subset(np.arange(rs.n)), outcome="y",
                             by="start_week")


def test_cate_summary_drlearner_gates_blp():
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-0.5 * x[:, 0]))
    d = (rng.random(n) < e).astype(int)
    y = x[:, 0] + d * (1 + 2 * (x[:, 1] > 0)) + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["a", "b"]).assign(d=d, y=y)
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cate_summary(data, outcome="y", n_groups=4, seed=1)
    assert out.gates.shape[0] == 4
    assert out.gates["estimate"].iloc[-1] > out.gates["estimate"].iloc[0]
    assert out.blp.loc["ate", "estimate"] == pytest.approx(2.0, abs=0.3)
    assert out.blp.loc["heterogeneity", "estimate"] > 0.3
    assert out.cate.shape == (n,)


def test_missing_econml_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "econml", None)
    monkeypatch.setitem(sys.modules, "econml.dr", None)
    monkeypatch.setitem(sys.modules, "econml.dml", None)
    df = pd.DataFrame({"a": [0.0, 1, 2, 3], "d": [0, 1, 0, 1], "y": [1.0, 2, 3, 4]})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["a"])
    with pytest.raises(MissingDependencyError, match=r"pip install 'mentor_impact\[ml\]'"):
        cate_summary(data, outcome="y")


def test_cate_summary_causal_forest_on_risk_sets():
    rs = simulate(n_persons=500, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cate_summary(rs, outcome="y", learner="causal_forest", target=3, n_groups=3,
                           n_estimators=40, min_samples_leaf=20)
    assert out.learner == "causal_forest"
    assert out.gates.shape[0] == 3
    assert np.isfinite(out.blp["std_error"]).all()
    with pytest.raises(ConfigurationError, match="target"):
        cate_summary(rs, outcome="y")


def test_subgroup_effects_accept_a_ready_overall_fit():
    import dataclasses

    from mentor_impact.weighting import IPW, fit_propensity, subgroup_effects

    from ._sim import simulate

    data = simulate(n_persons=600, seed=6)
    grp = (data.X[:, 0] > np.median(data.X[:, 0])).astype(int)
    data = dataclasses.replace(data, frame=data.frame.assign(grp=grp))
    est = IPW(estimand="ATT", trim=(1e-6, 1 - 1e-6))
    a = subgroup_effects(est, data, outcome="y", by="grp", target=3)
    ready = IPW(estimand="ATT", trim=(1e-6, 1 - 1e-6),
                propensity=fit_propensity(data)).fit(data, outcome="y")
    b = subgroup_effects(est, data, outcome="y", by="grp", target=3, overall=ready)
    pd.testing.assert_frame_equal(a.table, b.table, rtol=1e-10)
