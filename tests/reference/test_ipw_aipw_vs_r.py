"""IPW and AIPW on lalonde against R (and statsmodels' TreatmentEffect).

Provenance: ``data/lalonde.csv`` is MatchIt's ``data(lalonde)``; the numbers below were
computed in R 4.x (entries ``lalonde.ps_logit``, ``lalonde.ipw_att`` and ``lalonde.aipw`` of
the project's shared ``reference.json``) and are copied here. No test needs R.

R preparation::

    lal <- read.csv('data/lalonde.csv')
    lal$race <- factor(lal$race, levels = c('black', 'hispan', 'white'))
    fit <- glm(treat ~ age + educ + race + married + nodegree + re74 + re75,
               family = binomial(link = 'logit'), data = lal)
    ps <- fitted(fit)

R's glm stops at epsilon = 1e-8, about 4e-9 (relative) from the exact MLE computed here,
so estimates are compared at 1e-6 relative.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.inference import IID
from mentor_impact.weighting import AIPW, IPW

DATA = Path(__file__).parent / "data" / "lalonde.csv"
COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
RTOL = 1e-6

# lm(re78 ~ treat, data = lal, weights = w_att); w_att = 1 (treated), ps/(1-ps) (controls)
IPW_ATT = {
    "estimate_hajek": 1214.0712208914701,
    "estimate_horvitz_thompson": 1158.5883750724827,
    "se_HC0": 824.051711383397,
    "se_HC1": 825.3971028284179,
    "se_mest": 798.1546271688294,
    "mu1_hajek": 6349.143530270269,
    "mu0_hajek": 5135.072309378799,
    "weights_sum_control": 186.9988669794904,
    "ess_control": 99.81538630063424,
    "max_weight_control": 3.7432217470545597,
}
# phi <- mu1 - mu0 + Tr * (Y - mu1) / ps - (1 - Tr) * (Y - mu0) / (1 - ps); mean(phi)
AIPW_REF = {
    "ate": 469.6399830069789,
    "se_if": 925.4005626289935,
    "mu1_aipw": 6892.913240256241,
    "mu0_aipw": 6423.273257249262,
    "att": 1226.5437437781236,
    "se_att_if": 813.4162351305573,
}


@pytest.fixture(scope="module")
def data() -> EvaluationData:
    df = pd.read_csv(DATA)
    return EvaluationData.from_frame(df, treatment="treat", outcomes="re78", covariates=COVS)


@pytest.fixture(scope="module")
def ipw_att(data):
    return IPW(estimand="ATT").fit(data, outcome="re78")


def test_ipw_att_hajek_estimate(ipw_att):
    """coef(lm(re78 ~ treat, weights = w_att))['treat']"""
    assert ipw_att.estimate[0] == pytest.approx(IPW_ATT["estimate_hajek"], rel=RTOL)


def test_ipw_att_arm_means(ipw_att):
    assert ipw_att.treated_mean[0] == pytest.approx(IPW_ATT["mu1_hajek"], rel=RTOL)
    assert ipw_att.counterfactual_mean[0] == pytest.approx(IPW_ATT["mu0_hajek"], rel=RTOL)


def test_ipw_att_stacked_sandwich_se(ipw_att):
    """se_mest: A^-1 B A^-T / n of logit scores + two weighted-mean equations."""
    assert ipw_att.std_errors.iloc[0] == pytest.approx(IPW_ATT["se_mest"], rel=RTOL)
    assert ipw_att.cov_type == "iid"


def test_ipw_att_hc0_with_fixed_ps(data, ipw_att):
    """sandwich::vcovHC(fit, type = 'HC0') treats the weights as fixed: ps given."""
    res = IPW(estimand="ATT").fit(data, outcome="re78", ps=ipw_att.extra["ps"])
    assert res.std_errors.iloc[0] == pytest.approx(IPW_ATT["se_HC0"], rel=RTOL)
    n = data.n
    hc1 = res.std_errors.iloc[0] * np.sqrt(n / (n - 2))
    assert hc1 == pytest.approx(IPW_ATT["se_HC1"], rel=RTOL)


def test_ipw_att_horvitz_thompson(data):
    """(sum T*Y - sum (1-T)*e/(1-e)*Y) / sum T"""
    res = IPW(estimand="ATT", normalized=False).fit(data, outcome="re78")
    assert res.estimate[0] == pytest.approx(IPW_ATT["estimate_horvitz_thompson"], rel=RTOL)


def test_ipw_att_weights_and_ess(ipw_att, data):
    w = ipw_att.weights
    ctrl = data.treatment == 0
    assert np.all(w[~ctrl] == 1.0)
    assert w[ctrl].sum() == pytest.approx(IPW_ATT["weights_sum_control"], rel=RTOL)
    assert w[ctrl].max() == pytest.approx(IPW_ATT["max_weight_control"], rel=RTOL)
    ess = ipw_att.extra["ess"]
    assert ess["ess_control"].iloc[0] == pytest.approx(IPW_ATT["ess_control"], rel=RTOL)
    assert ess["ess_treated"].iloc[0] == pytest.approx(185.0)


@pytest.fixture(scope="module")
def aipw_ate(data):
    return AIPW(n_folds=1, estimand="ATE").fit(data, outcome="re78")


def test_aipw_ate_estimate(aipw_ate):
    assert aipw_ate.estimate[0] == pytest.approx(AIPW_REF["ate"], rel=RTOL)


def test_aipw_ate_potential_outcome_means(aipw_ate):
    assert aipw_ate.treated_mean[0] == pytest.approx(AIPW_REF["mu1_aipw"], rel=RTOL)
    assert aipw_ate.counterfactual_mean[0] == pytest.approx(AIPW_REF["mu0_aipw"], rel=RTOL)


def test_aipw_ate_if_se(aipw_ate):
    """se_if = sqrt(sum((phi - ate)^2)) / n (n denominator)."""
    assert aipw_ate.std_errors.iloc[0] == pytest.approx(AIPW_REF["se_if"], rel=RTOL)


def test_aipw_att_estimate_and_se(data):
    res = AIPW(n_folds=1, estimand="ATT").fit(data, outcome="re78")
    assert res.estimate[0] == pytest.approx(AIPW_REF["att"], rel=RTOL)
    assert res.std_errors.iloc[0] == pytest.approx(AIPW_REF["se_att_if"], rel=RTOL)


def test_aipw_sklearn_learners_reproduce_reference(data):
    """Any scikit-learn learners: unpenalised logit + OLS give the same numbers."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs on unscaled earnings converges poorly: scale inside a pipeline
    res = AIPW(
        propensity_learner=make_pipeline(
            StandardScaler(), LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
        ),
        outcome_learner=LinearRegression(),
        n_folds=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = res.fit(data, outcome="re78")
    assert out.estimate[0] == pytest.approx(AIPW_REF["ate"], rel=1e-4)


# ---------------------------------------------------------------- statsmodels cross-check
sm = pytest.importorskip("statsmodels.api")


@pytest.fixture(scope="module")
def sim():
    """A data set whose propensity scores stay inside [0.01, 0.99].

    statsmodels clips scores to [0.01, 0.99] inside its moment conditions; on lalonde
    (control scores down to 0.009) that changes its numbers, so the exact cross-check uses
    these simulated data.
    """
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=(n, 3))
    z = np.column_stack([np.ones(n), x])
    e = 1 / (1 + np.exp(-(z @ np.array([-0.3, 0.6, -0.4, 0.3]))))
    d = (rng.random(n) < e).astype(int)
    y = z @ np.array([1.0, 1.0, 2.0, -1.0]) + d * (1 + x[:, 0]) + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["a", "b", "c"]).assign(D=d, y=y)
    ed = EvaluationData.from_frame(df, treatment="D", outcomes="y", covariates=["a", "b", "c"])
    return ed, z, d, y


@pytest.fixture(scope="module")
def te(sim):
    from statsmodels.treatment.treatment_effects import TreatmentEffect

    _, z, d, y = sim
    sel = sm.GLM(d, z, family=sm.families.Binomial()).fit(tol=1e-13)
    return TreatmentEffect(sm.OLS(y, z), d, results_select=sel)


@pytest.mark.parametrize(("estimand", "group"), [("ATE", "all"), ("ATT", 1), ("ATC", 0)])
def test_ipw_matches_statsmodels(sim, te, estimand, group):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = te.ipw(return_results=True, effect_group=group, disp=False)
    res = IPW(estimand=estimand).fit(sim[0], outcome="y", cov=IID())
    assert res.estimate[0] == pytest.approx(ref.effect[0], rel=1e-6)
    se_ref = float(ref.summary_frame().iloc[0]["std err"])
    assert res.std_errors.iloc[0] == pytest.approx(se_ref, rel=1e-4)


def test_aipw_stacked_matches_statsmodels(sim, te):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = te.aipw(return_results=True, disp=False)
    res = AIPW(n_folds=1).fit(sim[0], outcome="y", variance="stacked")
    assert res.estimate[0] == pytest.approx(ref.effect[0], rel=1e-6)
    se_ref = float(ref.summary_frame().iloc[0]["std err"])
    assert res.std_errors.iloc[0] == pytest.approx(se_ref, rel=1e-4)
