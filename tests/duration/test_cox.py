"""CoxPH: kernels vs plain-loop twins, cross-checks vs lifelines / statsmodels, equivalences,
bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _cox_reference import loop_concordance, loop_cox, loop_score_residuals

from mentor_impact._kernels.cox import (
    aeq_times,
    cox_concordance,
    cox_derivatives,
    cox_score_residuals,
    prepare_cox,
)
from mentor_impact.duration import CoxPH, marginal_hazard_ratio
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    SeparationWarning,
)


def _sim(n=60, seed=0, weeks=True, entry=False, strata=False, p=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    t = rng.exponential(10 * np.exp(-0.5 * x[:, 0]))
    c = rng.exponential(15, size=n)
    time = np.minimum(t, c)
    if weeks:
        time = np.ceil(time)
    df = pd.DataFrame(x, columns=[f"x{j}" for j in range(p)])
    df["time"] = time
    df["status"] = (t <= c).astype(int)
    df["w"] = rng.integers(1, 4, size=n).astype(float)
    df["g"] = rng.integers(0, 2, size=n) if strata else 0
    df["id"] = rng.integers(0, n // 3, size=n)
    if entry:
        df["start"] = np.floor(rng.uniform(0, 0.7, size=n) * df["time"])
    return df


CASES = [
    dict(ties="efron"),
    dict(ties="breslow"),
    dict(ties="efron", strata=True),
    dict(ties="efron", entry=True),
    dict(ties="breslow", entry=True, strata=True),
]


@pytest.mark.parametrize("case", CASES)
def test_kernel_matches_loop(case):
    df = _sim(seed=3, entry=case.get("entry", False), strata=case.get("strata", False))
    x = df[["x0", "x1"]].to_numpy()
    w = df["w"].to_numpy()
    stop = df["time"].to_numpy()
    ev = df["status"].to_numpy()
    start = df["start"].to_numpy() if "start" in df else None
    strata = df["g"].to_numpy() if case.get("strata") else None
    st = prepare_cox(stop, ev == 1, w, start=start, strata=strata)
    beta = np.array([0.3, -0.2])
    ll, u, info = cox_derivatives(beta, x[st.order], st, case["ties"])
    ll2, u2, info2 = loop_cox(beta, x, stop, ev, w, start, strata, case["ties"])
    assert ll == pytest.approx(ll2, rel=1e-12)
    np.testing.assert_allclose(u, u2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(info, info2, rtol=1e-10, atol=1e-12)
    r = cox_score_residuals(beta, x[st.order], st, case["ties"], chunk=7)
    r2 = loop_score_residuals(beta, x, stop, ev, w, start, strata, case["ties"])
    np.testing.assert_allclose(r, r2[st.order], rtol=1e-9, atol=1e-12)
    eta = x @ beta
    c = cox_concordance(eta[st.order], st)
    c2 = loop_concordance(eta, stop, ev, w, start, strata)
    for k in c2:
        assert c[k] == pytest.approx(c2[k], rel=1e-12, abs=1e-12)


def test_concordance_tied_risk_scores():
    df = _sim(seed=5)
    eta = np.round(df["x0"].to_numpy())  # many ties in the predictor
    st = prepare_cox(df["time"].to_numpy(), df["status"].to_numpy() == 1, df["w"].to_numpy())
    c = cox_concordance(eta[st.order], st)
    c2 = loop_concordance(eta, df["time"].to_numpy(), df["status"].to_numpy(), df["w"].to_numpy())
    assert c2["tied_x"] > 0
    for k in c2:
        assert c[k] == pytest.approx(c2[k])


def test_aeq_times_merges_near_ties():
    t = np.array([1.0, 1.0 + 1e-12, 2.0, 3.0])
    out = aeq_times(t)
    assert out[0] == out[1] == 1.0
    np.testing.assert_array_equal(aeq_times(np.array([1.0, 2.0])), [1.0, 2.0])


# ------------------------------------------------------------------ cross-checks with lifelines


def test_weights_strata_vs_lifelines():
    from lifelines import CoxPHFitter

    df = _sim(n=200, seed=1, strata=True, weeks=False)
    ours = CoxPH().fit(
        df, duration="time", event="status", covariates=["x0", "x1"], weights="w", strata="g"
    )
    cph = CoxPHFitter().fit(
        df[["time", "status", "x0", "x1", "w", "g"]],
        "time",
        "status",
        weights_col="w",
        strata=["g"],
    )
    np.testing.assert_allclose(ours.coef, cph.params_.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        ours.std_errors_model.to_numpy(), cph.standard_errors_.to_numpy(), rtol=1e-4
    )


def test_counting_process_vs_lifelines():
    from lifelines import CoxTimeVaryingFitter

    df = _sim(n=200, seed=2, entry=True, weeks=False)
    ours = CoxPH().fit(df, duration="time", event="status", covariates=["x0", "x1"], entry="start")
    ctv = CoxTimeVaryingFitter().fit(
        df[["start", "time", "status", "x0", "x1", "id"]].rename(columns={"time": "stop"}),
        event_col="status",
        start_col="start",
        stop_col="stop",
        id_col="id",
    )
    np.testing.assert_allclose(ours.coef, ctv.params_.to_numpy(), rtol=1e-5)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_entry_strata_vs_statsmodels(ties):
    from statsmodels.duration.hazard_regression import PHReg

    df = _sim(n=200, seed=4, entry=True, strata=True)
    # statsmodels counts a row as at risk at t = entry; R / we use (entry, stop]: keep entry
    # times off the (weekly, tied) event times so both conventions agree
    df["start"] = np.maximum(df["start"] - 0.5, 0.0)
    ours = CoxPH(ties=ties).fit(
        df, duration="time", event="status", covariates=["x0", "x1"], entry="start", strata="g"
    )
    ph = PHReg(
        df["time"],
        df[["x0", "x1"]],
        status=df["status"],
        entry=df["start"],
        strata=df["g"],
        ties=ties,
    ).fit()
    np.testing.assert_allclose(ours.coef, ph.params, rtol=1e-6)
    np.testing.assert_allclose(ours.std_errors_model.to_numpy(), ph.bse, rtol=1e-5)


def test_cluster_robust_vs_lifelines():
    from lifelines import CoxPHFitter

    df = _sim(n=150, seed=7, weeks=False)
    ours = CoxPH().fit(df, duration="time", event="status", covariates=["x0", "x1"], cluster="id")
    cph = CoxPHFitter().fit(
        df[["time", "status", "x0", "x1", "id"]], "time", "status", cluster_col="id"
    )
    assert ours.cov_type == "clustered"
    np.testing.assert_allclose(
        ours.std_errors.to_numpy(), cph.standard_errors_.to_numpy(), rtol=1e-4
    )


# ------------------------------------------------------------------ equivalences


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_frequency_weights_equal_duplicated_rows(ties):
    # Breslow: always.  Efron: with frequency_weights=True (R's default counts tied event
    # rows, not their weights; see test_efron_weights_follow_r_convention)
    df = _sim(n=80, seed=8, strata=True)
    wf = CoxPH(ties=ties, frequency_weights=True).fit(
        df, duration="time", event="status", covariates=["x0", "x1"], weights="w", strata="g"
    )
    dup = df.loc[df.index.repeat(df["w"].astype(int))].reset_index(drop=True)
    dp = CoxPH(ties=ties).fit(
        dup, duration="time", event="status", covariates=["x0", "x1"], strata="g"
    )
    np.testing.assert_allclose(wf.coef, dp.coef, rtol=1e-9)
    np.testing.assert_allclose(wf.cov_model, dp.cov_model, rtol=1e-8)
    assert wf.loglik == pytest.approx(dp.loglik, rel=1e-10)
    assert wf.concordance == pytest.approx(dp.concordance, rel=1e-12)
    np.testing.assert_allclose(
        wf.baseline_cumulative_hazard([3, 8])["hazard"],
        dp.baseline_cumulative_hazard([3, 8])["hazard"],
        rtol=1e-9,
    )


def test_efron_weights_follow_r_convention():
    # with tied event times, a weight-2 row is one death in the Efron correction (R coxfit6:
    # mean death weight over d = number of event rows), so it differs from two duplicated rows
    df = _sim(n=80, seed=8, weeks=True)
    st = prepare_cox(df["time"].to_numpy(), df["status"].to_numpy() == 1, df["w"].to_numpy())
    assert np.any(st.death_count > 1)
    x = df[["x0", "x1"]].to_numpy()
    beta = np.array([0.2, 0.1])
    ll, _u, _ = cox_derivatives(beta, x[st.order], st, "efron")
    ll2, _u2, _ = loop_cox(
        beta, x, df["time"].to_numpy(), df["status"].to_numpy(), df["w"].to_numpy(), ties="efron"
    )
    assert ll == pytest.approx(ll2, rel=1e-12)


def test_row_order_changes_nothing():
    df = _sim(n=90, seed=9, entry=True, strata=True)
    kw = dict(
        duration="time",
        event="status",
        covariates=["x0", "x1"],
        weights="w",
        strata="g",
        entry="start",
        cluster="id",
    )
    a = CoxPH().fit(df, **kw)
    b = CoxPH().fit(df.sample(frac=1.0, random_state=1).reset_index(drop=True), **kw)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-9)
    assert a.concordance == pytest.approx(b.concordance, rel=1e-12)


def test_categorical_encoding_and_reference_level():
    df = _sim(n=120, seed=10)
    df["grp"] = np.array(["b", "a", "c"])[np.arange(len(df)) % 3]
    r = CoxPH().fit(
        df, duration="time", event="status", covariates=["x0", "grp"], reference_levels={"grp": "c"}
    )
    assert list(r.names) == ["x0", "grpa", "grpb"]
    r2 = CoxPH().fit(df, duration="time", event="status", covariates=["x0", "grp"])
    assert list(r2.names) == ["x0", "grpb", "grpc"]
    assert r.loglik == pytest.approx(r2.loglik, rel=1e-10)


def test_adjusted_survival_and_outputs(tmp_path):
    df = _sim(n=100, seed=11)
    df["trt"] = (df["x1"] > 0).astype(int)
    r = CoxPH().fit(df, duration="time", event="status", covariates=["x0", "trt"])
    adj = r.adjusted_survival(df, column="trt", values=[0, 1], times=[2, 5, 10])
    manual = [
        r.predict_survival(df.assign(trt=v), [2, 5, 10]).to_numpy().mean(axis=1) for v in (0, 1)
    ]
    np.testing.assert_allclose(adj.to_numpy().T, manual, rtol=1e-12)
    assert np.all(np.diff(adj.to_numpy(), axis=0) <= 0)
    d = json.loads(r.to_json(str(tmp_path / "r.json")))
    assert d["names"] == ["x0", "trt"] and d["converged"] is True
    assert "hazard_ratio" in r.exp_coef.name
    assert "x0" in r.summary()
    tab = r.to_frame()
    assert list(tab["term"]) == ["x0", "trt"]
    np.testing.assert_allclose(tab["exp_coef"], np.exp(r.coef))
    ax = r.plot()
    assert ax is not None


def test_marginal_hazard_ratio_dataframe():
    df = _sim(n=150, seed=12)
    df["trt"] = (df["x1"] > 0).astype(int)
    res = marginal_hazard_ratio(
        df, duration="time", event="status", treatment="trt", weights="w", cluster="id"
    )
    direct = CoxPH().fit(
        df, duration="time", event="status", covariates=["trt"], weights="w", cluster="id"
    )
    np.testing.assert_allclose(res.coef, direct.coef)
    np.testing.assert_allclose(res.cov, direct.cov)
    assert res.cov_type == "clustered"


# ------------------------------------------------------------------ bad input


@pytest.fixture
def small():
    return _sim(n=40, seed=13)


def test_bad_ties():
    with pytest.raises(ConfigurationError, match="ties: expected 'efron' or 'breslow'"):
        CoxPH(ties="exact").fit(_sim(), duration="time", event="status", covariates=["x0"])


def test_negative_durations(small):
    small.loc[[3, 7], "time"] = [-2.0, -1.0]
    small.loc[5, "time"] = 0.0  # zero times are allowed (R's coxph convention)
    with pytest.raises(
        DataValidationError, match=r"duration: .*found 2 negative \(rows 3, 7\)"
    ):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"])


def test_zero_durations_are_at_risk_first(small):
    """A zero time is ordered before every positive one: the fit equals one in which the
    zero is replaced by any time below the smallest positive time."""
    small.loc[[3, 7], "time"] = 0.0
    small.loc[[3], "status"] = 1
    a = CoxPH().fit(small, duration="time", event="status", covariates=["x0"])
    shifted = small.copy()
    shifted.loc[[3, 7], "time"] = small.loc[small.time > 0, "time"].min() / 2
    b = CoxPH().fit(shifted, duration="time", event="status", covariates=["x0"])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-12)


def test_stop_before_start(small):
    small["start"] = 0.0
    small.loc[5, "start"] = small.loc[5, "time"]
    with pytest.raises(
        DataValidationError, match=r"found 1 rows with duration <= entry \(rows 5\)"
    ):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"], entry="start")


def test_event_codes(small):
    small.loc[[1, 2], "status"] = 2
    with pytest.raises(DataValidationError, match=r"event: expected codes in \[0, 1\]; found 2"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"])


def test_all_censored(small):
    small["status"] = 0
    with pytest.raises(DataValidationError, match="all censored"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"])


def test_collinear(small):
    small["x2"] = 2 * small["x0"] - small["x1"]
    with pytest.raises(DataValidationError, match="collinearity among 3 columns"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0", "x1", "x2"])


def test_constant_covariate(small):
    small["c"] = 1.0
    with pytest.raises(DataValidationError, match="constant column"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0", "c"])


def test_nan(small):
    small.loc[[4, 9], "time"] = np.nan
    with pytest.raises(DataValidationError, match=r"2 missing or infinite values \(rows 4, 9\)"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"])
    small2 = _sim(n=40, seed=13)
    small2.loc[6, "x0"] = np.nan
    with pytest.raises(DataValidationError, match=r"1 missing values \(rows 6\)"):
        CoxPH().fit(small2, duration="time", event="status", covariates=["x0"])


def test_bad_weights(small):
    small.loc[0, "w"] = 0.0
    with pytest.raises(DataValidationError, match=r"weights: expected strictly positive"):
        CoxPH().fit(small, duration="time", event="status", covariates=["x0"], weights="w")


@pytest.mark.filterwarnings("ignore::mentor_impact.exceptions.ConvergenceWarning")
def test_monotone_likelihood_warns():
    df = _sim(n=60, seed=14)
    # x separates: every event has x = 1 at its time and all x = 1 rows die first
    df["sep"] = 0.0
    order = np.argsort(df["time"].to_numpy())
    df.loc[order[:5], "sep"] = 1.0
    df.loc[order[:5], "status"] = 1
    df.loc[order[:5], "time"] = np.arange(1, 6) * 0.1
    with pytest.warns(SeparationWarning, match=r"monotone likelihood.*'sep'"):
        CoxPH().fit(df, duration="time", event="status", covariates=["x0", "sep"])


def test_no_warning_on_regular_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CoxPH().fit(_sim(), duration="time", event="status", covariates=["x0", "x1"])


def test_marginal_hazard_ratio_evaluation_data():
    from mentor_impact.design import EvaluationData

    df = _sim(n=150, seed=15)
    df["trt"] = (df["x1"] > 0).astype(int)
    data = EvaluationData.from_frame(
        df,
        treatment="trt",
        outcomes="x0",
        covariates=["x0"],
        weights="w",
        cluster="id",
        durations={"dur": ("time", "status")},
    )
    res = marginal_hazard_ratio(data, duration="dur")
    direct = CoxPH().fit(
        df, duration="time", event="status", covariates=["trt"], weights="w", cluster="id"
    )
    np.testing.assert_allclose(res.coef, direct.coef, rtol=1e-10)
    np.testing.assert_allclose(res.cov, direct.cov, rtol=1e-8)


def test_marginal_hazard_ratio_bad_treatment():
    df = _sim(n=50, seed=16)
    df["trt"] = 2
    with pytest.raises(DataValidationError, match="treatment: expected 0/1; found 50"):
        marginal_hazard_ratio(df, duration="time", event="status", treatment="trt")
    with pytest.raises(ConfigurationError, match="expected event= and treatment="):
        marginal_hazard_ratio(df, duration="time")


def test_kernel_unsorted_rows_equal_sorted():
    df = _sim(seed=17, entry=True, strata=True)
    x = df[["x0", "x1"]].to_numpy()
    args = (df["time"].to_numpy(), df["status"].to_numpy() == 1, df["w"].to_numpy())
    kw = dict(start=df["start"].to_numpy(), strata=df["g"].to_numpy())
    a = prepare_cox(*args, **kw)
    b = prepare_cox(*args, **kw, sort_rows=False)
    beta = np.array([0.1, 0.4])
    la, ua, ia = cox_derivatives(beta, x[a.order], a, "efron")
    lb, ub, ib = cox_derivatives(beta, x, b, "efron")
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(ua, ub, rtol=1e-10)
    np.testing.assert_allclose(ia, ib, rtol=1e-10)
    ra = cox_score_residuals(beta, x[a.order], a, "efron")
    rb = cox_score_residuals(beta, x, b, "efron")
    np.testing.assert_allclose(ra, rb[a.order], rtol=1e-10, atol=1e-14)


def test_efron_tied_weighted_vs_lifelines():
    # lifelines uses the same Efron-with-case-weights convention as R (mean death weight)
    from lifelines import CoxPHFitter

    df = _sim(n=200, seed=18, weeks=True)
    ours = CoxPH().fit(df, duration="time", event="status", covariates=["x0", "x1"], weights="w")
    cph = CoxPHFitter().fit(
        df[["time", "status", "x0", "x1", "w"]], "time", "status", weights_col="w"
    )
    np.testing.assert_allclose(ours.coef, cph.params_.to_numpy(), rtol=1e-5)


def test_strata_without_events_and_null_model():
    df = _sim(n=100, seed=3, strata=True)
    r0 = CoxPH(ties="breslow").fit(df, duration="time", event="status", covariates=[])
    assert r0.coef.size == 0 and r0.loglik == pytest.approx(r0.loglik_null)
    # Breslow null model: baseline hazard = Nelson-Aalen
    t, d = df["time"].to_numpy(), df["status"].to_numpy()
    na = sum(d[t == u].sum() / (t >= u).sum() for u in np.unique(t[d == 1]) if u <= 10)
    h = r0.baseline_cumulative_hazard([10])["hazard"].iloc[0]
    assert h == pytest.approx(na, rel=1e-12)
    df["grp"] = np.where(df["g"] == 1, "b", "a")
    df["sub"] = df["id"] % 7
    r = CoxPH().fit(df, duration="time", event="status", covariates=["x0"], strata=["grp", "sub"])
    s = r.predict_survival(df.iloc[:5], [0.5, 5, 50])
    assert np.all((s.to_numpy() > 0) & (s.to_numpy() <= 1))
    np.testing.assert_allclose(s.iloc[0].to_numpy(), 1.0)


def test_results_pickle():
    import pickle

    r = CoxPH().fit(_sim(), duration="time", event="status", covariates=["x0", "x1"])
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_allclose(r2.coef, r.coef)
    assert r2.concordance == pytest.approx(r.concordance)
