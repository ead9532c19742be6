from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _toe_reference import (
    assert_curves_match_loop,
    assert_gradient_matches_fd,
    loglik_loop,
    z_vs_truth,
)

from mentor_impact._kernels import toe as K_
from mentor_impact.datasets.toe_sim import simulate_toe
from mentor_impact.duration import TimingOfEvents
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    EstimationError,
)

EC = np.array([0, 5, 12])
SC = np.array([0, 8])
BINS = np.array([0, 4, 10])


def _small(n=40, K=2, max_entry=0, seed=3):
    sim = simulate_toe(
        n, n_support_points=K, exit_cuts=EC, start_cuts=SC, effect_bins=BINS, max_weeks=30,
        min_followup=10, max_entry=max_entry, seed=seed,
        alpha_exit=[[-2.0, -2.3, -2.6], [-2.4, -2.6, -2.8]], alpha_start=[-2.0, -2.4],
    )
    return sim.data


def _arrays(df, K, truncated, pz=0, seed=0, start_before_entry=True):
    rng = np.random.default_rng(seed)
    n = len(df)
    X = df[["x1", "x2"]].to_numpy()
    Z = X[:, :pz]
    w = rng.integers(1, 4, n).astype(float)
    D = K_.build_toe_data(
        df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(), df.entry.to_numpy(),
        X, Z, w, EC, SC, BINS, 2, condition_on_entry=truncated,
        start_before_entry=start_before_entry,
    )
    L = K_.Layout(R=2, Qe=EC.size, Qm=SC.size, J=BINS.size, p=2, pz=pz, K=K)
    theta = rng.normal(0, 0.3, L.size)
    P = L.unpack(theta)
    theta = L.pack({**P, "alpha_e": P["alpha_e"] - 2.5, "alpha_m": P["alpha_m"] - 2.5})
    return D, L, theta, w, X, Z


@pytest.mark.parametrize("truncated,K,pz", [(False, 1, 0), (False, 2, 1), (True, 3, 1)])
def test_loglik_matches_loop_twin(truncated, K, pz):
    df = _small(30, max_entry=6 if truncated else 0)
    D, L, theta, w, X, Z = _arrays(df, K, truncated, pz)
    ll = K_.loglik(theta, L, D)
    ref = loglik_loop(
        L.unpack(theta), df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(),
        df.entry.to_numpy(), X, Z, w, EC, SC, BINS, truncated,
    )
    assert ll == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("truncated,K,pz", [(False, 1, 0), (True, 3, 1)])
def test_gradient_matches_finite_differences(truncated, K, pz):
    df = _small(40, max_entry=6 if truncated else 0)
    D, L, theta, *_ = _arrays(df, K, truncated, pz)
    # analytic gradient = finite differences; weighted per-person scores sum to it
    assert_gradient_matches_fd(K_, theta, L, D)


def test_curves_match_loop_twin():
    df = _small(40, max_entry=5)
    D, L, theta, _w, X, Z = _arrays(df, 2, True, 1)
    assert_curves_match_loop(K_, theta, L, D, df, X, Z)


def test_cluster_meat_matches_loop():
    from mentor_impact.duration.toe import _cluster_meat

    rng = np.random.default_rng(2)
    S = rng.normal(size=(60, 5))
    for cl in (np.arange(60), rng.integers(0, 17, 60), np.repeat(["b", "a", "c"], 20)):
        groups = sorted(set(cl.tolist()))
        G = len(groups)
        ref = np.zeros((5, 5))
        for g in groups:
            s_g = np.zeros(5)
            for i in range(60):
                if cl[i] == g:
                    s_g += S[i]
            ref += np.outer(s_g, s_g)
        ref *= G / (G - 1)
        np.testing.assert_allclose(_cluster_meat(S, cl), ref, rtol=1e-12, atol=1e-12)


def test_row_scatter_and_gram_helpers_match_loops():
    rng = np.random.default_rng(4)
    M = rng.normal(size=(3, 40))
    rows = np.sort(rng.choice(40, 15, replace=False))
    vals = rng.normal(size=(3, 15))
    ref = M.copy()
    for i in range(3):
        for t, r in enumerate(rows):
            ref[i, r] += vals[i, t]
    K_._add_rows(M, rows, vals)
    np.testing.assert_allclose(M, ref, rtol=0, atol=1e-15)
    A, B = rng.normal(size=(3, 40)), rng.normal(size=(4, 40))
    ref = np.array([[sum(A[k, i] * B[h, i] for i in range(40)) for h in range(4)]
                    for k in range(3)])
    np.testing.assert_allclose(K_._gram_rows(A, B), ref, rtol=1e-12, atol=1e-12)


def test_episodes_cover_every_person_week():
    df = _small(60)
    D, *_ = _arrays(df, 1, False)
    T, c, tm = df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy()
    expo = D.NE.sum(axis=(1, 2))
    np.testing.assert_array_equal(expo, T - (c > 0))
    mexpo = D.NM.sum(axis=1)
    np.testing.assert_array_equal(mexpo, np.where(tm >= 0, np.minimum(T, tm - 1), T))
    # weeks in effect bins: after the start week only
    post = D.NE[:, 1:].sum(axis=(1, 2))
    np.testing.assert_array_equal(post, np.where(tm >= 0, np.maximum(T - (c > 0) - tm, 0), 0))
    # far fewer episodes than person-weeks
    assert D.n_episodes < 0.6 * ((T - (c > 0)).sum() + mexpo.sum())


# ---------------------------------------------------------------------------------------
# K = 1 equals a plain cloglog discrete-time hazard (statsmodels GLM)
# ---------------------------------------------------------------------------------------


def _person_period(df, ec, bins):
    rows = []
    for i, r in df.iterrows():
        for t in range(1, int(r.duration) + 1):
            q = int(np.searchsorted(ec, t, side="left") - 1)
            u = t - r.start
            j = int(np.searchsorted(bins, u, side="left") - 1) if r.start >= 0 and u >= 1 else -1
            rows.append((i, t, q, j, int(t == r.duration and r.exit == 1), r.x1, r.x2))
    return pd.DataFrame(rows, columns=["i", "t", "q", "j", "y", "x1", "x2"])


def test_k1_equals_statsmodels_cloglog_glm():
    sm = pytest.importorskip("statsmodels.api")
    ec = np.array([0, 13, 52])
    bins = np.array([0, 13, 26])
    sim = simulate_toe(1500, n_causes=1, n_support_points=1, exit_cuts=ec, start_cuts=(0, 26),
                       effect_bins=bins, max_weeks=104, seed=11)
    df = sim.data
    res = TimingOfEvents(exit_cuts=ec, start_cuts=(0, 26), effect_bins=bins,
                         support_points=1).fit(
        df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    pp = _person_period(df, ec, bins)
    Xd = np.column_stack(
        [(pp.q.to_numpy() == q) for q in range(ec.size)]
        + [pp.x1, pp.x2]
        + [(pp.j.to_numpy() == j) for j in range(bins.size)]
    ).astype(float)
    model = sm.GLM(pp.y.to_numpy(), Xd,
                   family=sm.families.Binomial(link=sm.families.links.CLogLog()))
    glm = model.fit(tol=1e-12)
    ours = res.params[res.params.equation == "exit:cause1"]
    np.testing.assert_allclose(ours.estimate.to_numpy(), glm.params, rtol=1e-6)
    # our standard errors use the observed information (as a Newton fit does); R / IRLS
    # report the expected information for the non-canonical cloglog link
    newton = model.fit(method="newton", start_params=glm.params, tol=1e-12, maxiter=5)
    obs_se = np.sqrt(np.diag(np.linalg.inv(-model.hessian(glm.params, observed=True))))
    np.testing.assert_allclose(ours.std_error_hessian.to_numpy(), obs_se, rtol=1e-4)
    np.testing.assert_allclose(ours.std_error_hessian.to_numpy(), glm.bse, rtol=5e-3)
    assert newton.params == pytest.approx(glm.params, rel=1e-6)
    assert res.k_search.K.tolist() == [1]


# ---------------------------------------------------------------------------------------
# equivalences
# ---------------------------------------------------------------------------------------


def _fit(df, **kw):
    est = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), **kw)
    return est.fit(df, duration="duration", exit="exit", start="start",
                   covariates=["x1", "x2"], weights=kw.pop("weights", None) or None)


@pytest.fixture(scope="module")
def sim2():
    return simulate_toe(1500, n_support_points=2, seed=5)


def test_frequency_weights_equal_duplicated_rows(sim2):
    df = sim2.data.iloc[:600].copy()
    rng = np.random.default_rng(0)
    df["w"] = rng.integers(1, 3, len(df))
    dup = df.loc[df.index.repeat(df["w"])].reset_index(drop=True)
    est = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=1)
    a = est.fit(df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
                weights="w")
    b = est.fit(dup, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    np.testing.assert_allclose(a.params.estimate, b.params.estimate, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.params.std_error, b.params.std_error, rtol=1e-5)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-10)


def test_row_order_changes_nothing(sim2):
    df = sim2.data
    est = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), max_support_points=2)
    a = est.fit(df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    perm = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = est.fit(perm, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    np.testing.assert_allclose(a.params.estimate, b.params.estimate, rtol=1e-5, atol=1e-6)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-9)


# ---------------------------------------------------------------------------------------
# recovery on data simulated from the model
# ---------------------------------------------------------------------------------------


def test_recovers_parameters_k2(sim2):
    sim = simulate_toe(4000, n_support_points=2, seed=21)
    res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), max_support_points=3).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
        seed=1)
    assert res.n_support_points == 2
    assert res.k_search.selected.sum() == 1
    tab = z_vs_truth(res, sim)
    assert len(tab) == len(res.params)
    assert np.all(np.abs(tab.z) < 3.5), tab
    eff = res.effects_on_probabilities((26, 52), outcome="cause1")
    assert eff.estimate.shape == (2,)
    assert np.all(np.isfinite(eff.std_errors))


def test_effects_zero_when_effects_are_zero():
    sim = simulate_toe(1500, n_support_points=1, delta=np.zeros((2, 4)), seed=2)
    res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=1).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    # at theta with delta = 0 the effect is exactly zero
    th = res.theta.copy()
    sel = (res.params.block == "effect").to_numpy()
    th[sel] = 0.0
    A, B = res._effect_rows(th, np.array([26, 52]), 0)
    np.testing.assert_allclose(A, B)
    eff = res.effects_on_probabilities((26, 52, 104), outcome="survival")
    assert eff.estimator == "TimingOfEvents"
    assert eff.targets == ("tau=26", "tau=52", "tau=104")
    ci = eff.conf_int()
    assert np.all(ci.iloc[:, 0] < 0.05) and np.all(ci.iloc[:, 1] > -0.05)


def test_left_truncation_condition_vs_ignore():
    sim = simulate_toe(2500, n_support_points=2, max_entry=40, seed=8)
    assert (sim.data.entry > 0).mean() > 0.5
    kw = dict(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=2)
    ok = TimingOfEvents(truncation="condition", **kw).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
        entry="entry")
    assert ok.truncation == "condition"
    eff = z_vs_truth(ok, sim, ["effect", "covariate"])
    assert np.all(np.abs(eff.z) < 3.5), eff
    inflow = TimingOfEvents(truncation="inflow", max_support_points=1,
                            exit_cuts=(0, 13, 52), start_cuts=(0, 26))
    with pytest.raises(DataValidationError, match=r"sample rule|without exits|treated"):
        df = sim.data[sim.data.entry > 0]
        inflow.fit(df, duration="duration", exit="exit", start="start", entry="entry")


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_df():
    return simulate_toe(600, n_support_points=1, seed=4).data


def _fit_bad(df, **kw):
    return TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), **kw).fit(
        df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])


def test_start_after_exit(base_df):
    df = base_df.copy()
    df.loc[[3, 7], "start"] = df.loc[[3, 7], "duration"] + 2
    with pytest.raises(DataValidationError, match=r"start: .*2 \(rows 3, 7\) starts after exit"):
        _fit_bad(df)


def test_zero_length_spells(base_df):
    df = base_df.copy()
    df.loc[5, "duration"] = 0
    df.loc[5, "start"] = -1
    with pytest.raises(DataValidationError, match=r"duration: .*1 \(rows 5\).*zero"):
        _fit_bad(df)


def test_no_treated_spells(base_df):
    df = base_df.copy()
    df["start"] = np.nan
    with pytest.raises(DataValidationError, match=r"start: .*0 treated spells"):
        _fit_bad(df)


def test_constant_covariate_is_flat(base_df):
    df = base_df.copy()
    df["x2"] = 1.0
    with pytest.raises(DataValidationError, match=r"covariates: .*constant"):
        _fit_bad(df)


def test_collinear_covariates(base_df):
    df = base_df.copy()
    df["x2"] = 2 * df["x1"]
    with pytest.raises(DataValidationError, match=r"covariates: .*linearly independent"):
        _fit_bad(df)


def test_interval_without_events(base_df):
    with pytest.raises(ConfigurationError, match=r"exit_cuts: .*without exits"):
        TimingOfEvents(exit_cuts=(0, 13, 52, 150), start_cuts=(0, 26)).fit(
            base_df, duration="duration", exit="exit", start="start")


def test_bad_cuts():
    with pytest.raises(ConfigurationError, match="effect_bins: expected the first cut to be 0"):
        TimingOfEvents(effect_bins=(1, 13))._validate_config()
    with pytest.raises(ConfigurationError, match="exit_cuts: expected strictly increasing"):
        TimingOfEvents(exit_cuts=(0, 13, 13))._validate_config()


def test_k_larger_than_identifiable(base_df):
    # data from a K = 1 model: a forced 3-point fit is not identified
    with pytest.raises(EstimationError, match="support_points: expected 3 identifiable"):
        _fit_bad(base_df, support_points=3)


def test_missing_column_and_negative_weights(base_df):
    with pytest.raises(DataValidationError, match="duration: expected a column"):
        TimingOfEvents().fit(base_df, duration="nope", exit="exit", start="start")
    df = base_df.copy()
    df["w"] = 1.0
    df.loc[2, "w"] = -1.0
    with pytest.raises(DataValidationError, match=r"weights: .*1 \(rows 2\)"):
        TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26)).fit(
            df, duration="duration", exit="exit", start="start", weights="w")


# ---------------------------------------------------------------------------------------
# spell data from the register
# ---------------------------------------------------------------------------------------


def test_spells_from_register_matches_loop_twin():
    from _toe_reference import spells_loop

    from mentor_impact.datasets import simulate_mentor_study
    from mentor_impact.duration import spells_from_register

    st = simulate_mentor_study(600, seed=3)
    reg = st.register
    sp_obj = st.spells.episodes(gap=4)
    sp = spells_from_register(reg, sp_obj, st.baseline, sample="inflow", max_weeks=156)
    assert sp.attrs["causes"] == ("employment", "education", "other")
    B = reg.indicator("on_benefit")
    exit_ids = [reg.catalog.members(n) for n in ("employed", "education", "self_support_other")]
    rows, cols, _ = sp_obj.locate(reg)
    by_row: dict[int, list[int]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        by_row.setdefault(r, []).append(c)
    ref = spells_loop(B, reg.states(), exit_ids, by_row, 156)
    assert sorted(ref) == sp.row.tolist()
    got = {int(r.row): (int(r.duration), int(r.exit), int(r.start)) for r in sp.itertuples()}
    assert got == ref
    assert (sp.person.to_numpy() == st.baseline.person.to_numpy()[sp.row]).all()


def test_fit_on_register_spells_stock_sample():
    from mentor_impact.datasets import simulate_mentor_study
    from mentor_impact.duration import spells_from_register

    st = simulate_mentor_study(3000, seed=4)
    sp = spells_from_register(st.register, st.spells.episodes(gap=4), st.baseline,
                              sample="stock", stock_week=201201, max_weeks=156)
    assert (sp.entry > 0).any() and (sp.duration - sp.entry <= 156).all()
    res = TimingOfEvents(exit_cuts=(0, 52, 104), start_cuts=(0, 104), effect_bins=(0, 26),
                         cause_labels=sp.attrs["causes"], max_support_points=2).fit(
        sp, duration="duration", exit="exit", start="start", entry="entry",
        covariates=["female", "psychiatric_history", "prior_benefit_share"], cluster="person")
    assert res.truncation == "condition"
    assert res.cov_type == "clustered(person)"
    assert np.isfinite(res.params.std_error).all()


@pytest.mark.slow
def test_demo_runs_on_simulated_study():
    from mentor_impact.duration import timing_of_events_demo

    demo = timing_of_events_demo(n_persons=3000, seed=2, max_support_points=2)
    covs = demo.results.covariates
    assert {"birth_year", "prior_benefit_share", "educationvocational"} <= set(covs)
    assert any(c.startswith("entry") for c in covs)
    assert demo.results.k_search.selected.sum() == 1
    tab = demo.table()
    assert set(tab.outcome) == {"employment", "education", "other", "survival"}
    assert np.isfinite(tab.estimate).all() and (tab.std_error > 0).all()
    assert demo.truth is None or {"tau", "effect"} <= set(demo.truth.columns)


@pytest.mark.slow
def test_recovers_k3_with_search():
    sim = simulate_toe(20_000, n_support_points=3, seed=31)
    res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), max_support_points=4).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
        seed=0)
    assert res.n_support_points == 3
    assert list(res.k_search.K[:3]) == [1, 2, 3]
    tab = z_vs_truth(res, sim)
    assert np.all(np.abs(tab.z) < 3.5), tab


@pytest.mark.slow
def test_effect_interval_coverage():
    """95 % intervals of the lock-in / post-programme effects cover in 93-97 % of replications
    (K = 2 data with 2,500 spells and K = 3 data with 8,000 spells, correlated unobservables,
    K chosen by the AIC search; 8 effects per replication, 120 replications)."""
    hits = []
    for rep in range(120):
        K = 2 if rep % 2 == 0 else 3
        sim = simulate_toe(2500 if K == 2 else 8000, n_support_points=K, seed=1000 + rep)
        res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), max_support_points=3,
                             ).fit(sim.data, duration="duration", exit="exit", start="start",
                                   covariates=["x1", "x2"], seed=rep)
        tab = res.params.merge(sim.truth, on=["equation", "block", "term"])
        eff = tab[tab.block == "effect"]
        hits.extend(((eff.ci_lower <= eff.value) & (eff.value <= eff.ci_upper)).tolist())
    cover = float(np.mean(hits))
    print(f"coverage {cover:.4f} over {len(hits)} intervals")
    assert 0.93 <= cover <= 0.97, cover


def test_reporting_and_bootstrap(tmp_path):
    sim = simulate_toe(1200, n_support_points=1, seed=9)
    res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=1,
                         cause_labels=("employment", "education")).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    text = res.summary()
    assert "K search" in text and "hazard ratio" in text.lower()
    js = res.to_json(str(tmp_path / "toe.json"))
    assert '"estimator": "TimingOfEvents"' in js
    ax = res.plot()
    assert ax.get_ylabel() == "hazard ratio"
    curves = res.probability_curves(horizon=30)
    assert {"tau", "survival_treated", "survival_counterfactual",
            "cif_education_counterfactual"} <= set(curves.columns)
    total = (curves.survival_treated + curves.cif_employment_treated
             + curves.cif_education_treated)
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    d = res.effects_on_probabilities((13, 26), outcome="employment")
    b = res.effects_on_probabilities((13, 26), outcome="employment", method="bootstrap",
                                     n_boot=200, seed=1)
    np.testing.assert_allclose(d.estimate, b.estimate)
    np.testing.assert_allclose(b.std_errors, d.std_errors, rtol=0.35)
    assert b.cov_type == "parametric-bootstrap"
    with pytest.raises(ConfigurationError, match="outcome: expected 'survival' or one of"):
        res.effects_on_probabilities((13,), outcome="nope")


def test_em_start_values_raise_the_likelihood():
    sim = simulate_toe(1500, n_support_points=2, seed=12)
    df = sim.data
    D = K_.build_toe_data(
        df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(), df.entry.to_numpy(),
        df[["x1", "x2"]].to_numpy(), np.zeros((len(df), 0)), np.ones(len(df)),
        np.array([0, 13, 52]), np.array([0, 26]), np.array([0, 13, 26, 52]), 2,
        condition_on_entry=False)
    L = K_.Layout(R=2, Qe=3, Qm=2, J=4, p=2, pz=0, K=1)
    truth = sim.truth.set_index(["equation", "block", "term"])["value"]
    theta = truth.to_numpy()[: L.size]  # structural part (K = 1 layout)
    pc = K_.pieces(theta, L, D)
    lv0 = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    a0 = np.array([0.0, -1.0])
    ll0 = K_.mixture_loglik(pc, lv0, a0, D)
    lv1, a1, ll1 = K_.em_heterogeneity(pc, lv0, a0, D, n_iter=15)
    assert ll1 > ll0
    assert K_.mixture_loglik(pc, lv1, a1, D) >= ll1 - 1e-8
    # the second point moves towards the true (lower) location
    assert lv1[1, 0] < 0.5


def test_effect_interactions_fit_end_to_end():
    sim = simulate_toe(2500, n_support_points=1, seed=14)
    res = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), effect_bins=(0, 26),
                         support_points=1, effect_interactions=["x1"]).fit(
        sim.data, duration="duration", exit="exit", start="start", covariates=["x1", "x2"])
    ex = res.params[res.params.block == "effect_x"]
    assert len(ex) == 2 * 2  # two causes x two bins x one covariate
    assert ex.term.str.endswith(":x1").all()
    assert np.all(np.abs(ex.estimate / ex.std_error) < 3.5)  # no true interaction
    eff = res.effects_on_probabilities((26,), outcome="cause2")
    assert np.isfinite(eff.estimate).all() and np.isfinite(eff.std_errors).all()


# ---------------------------------------------------------------------------------------
# covariate scale, honest convergence, choice of K
# ---------------------------------------------------------------------------------------


def _fit_cols(df, covs, **kw):
    est = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), **kw)
    return est.fit(df, duration="duration", exit="exit", start="start", covariates=covs,
                   cluster="id" if "id" in df.columns else None, seed=1)


def test_affine_rescaled_covariate_gives_identical_fit(sim2):
    # a raw "birth year"-like column (1000 x + 1960) used to stall L-BFGS-B after one step
    df = sim2.data.copy()
    df["xbig"] = 1000.0 * df["x1"] + 1960.0
    a = _fit_cols(df, ["x1", "x2"], max_support_points=3)
    b = _fit_cols(df, ["xbig", "x2"], max_support_points=3)
    assert a.converged and b.converged
    assert a.n_support_points == b.n_support_points == 2
    assert b.loglik == pytest.approx(a.loglik, rel=1e-10)
    np.testing.assert_allclose(b.k_search.loglik, a.k_search.loglik, rtol=1e-8)
    # linear map from b's parameters to a's: beta_x1 = 1000 beta_big and every baseline
    # of the same equation absorbs 1960 beta_big
    pb = b.params
    M = np.eye(len(pb))
    for eq in pb.equation.unique():
        jb = np.flatnonzero((pb.equation == eq).to_numpy() & (pb.term == "xbig").to_numpy())
        if jb.size == 0:
            continue
        M[jb[0], jb[0]] = 1000.0
        base = np.flatnonzero((pb.equation == eq).to_numpy()
                              & (pb.block == "baseline").to_numpy())
        M[base, jb[0]] = 1960.0
    np.testing.assert_allclose(M @ b.theta, a.theta, rtol=1e-6, atol=1e-8)
    for cb, ca in ((b.cov, a.cov), (b.cov_hessian, a.cov_hessian),
                   (b.cov_sandwich, a.cov_sandwich)):
        sd = np.sqrt(np.diag(ca))
        np.testing.assert_allclose(np.diag(M @ cb @ M.T), np.diag(ca), rtol=1e-6)
        # covariances on the correlation scale (the finite-difference Hessian is noisy
        # at ~1e-9 relative to its largest entries)
        np.testing.assert_allclose((M @ cb @ M.T) / np.outer(sd, sd), ca / np.outer(sd, sd),
                                   atol=1e-6)
    big = (pb.term == "xbig").to_numpy()
    np.testing.assert_allclose(1000.0 * pb.std_error[big], a.params.std_error[big], rtol=1e-6)
    np.testing.assert_allclose(pb.statistic[big], a.params.statistic[big], rtol=1e-6)
    for out in ("cause1", "survival"):
        ea = a.effects_on_probabilities((13, 26, 52), outcome=out)
        eb = b.effects_on_probabilities((13, 26, 52), outcome=out)
        np.testing.assert_allclose(eb.estimate, ea.estimate, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(eb.std_errors, ea.std_errors, rtol=1e-7)
        np.testing.assert_allclose(eb.treated_mean, ea.treated_mean, rtol=1e-8)


def test_reported_parameters_are_on_the_original_scale():
    # res.theta evaluated on the unstandardised data reproduces res.loglik (the map back,
    # including the effect bins absorbing the centring of interaction covariates)
    sim = simulate_toe(1500, n_support_points=2, seed=5)
    df = sim.data.copy()
    df["x1"] = 50.0 * df["x1"] + 300.0
    est = TimingOfEvents(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=2,
                         effect_bins=(0, 13, 26), effect_interactions=["x1"])
    res = est.fit(df, duration="duration", exit="exit", start="start",
                  covariates=["x1", "x2"], seed=1)
    D = K_.build_toe_data(
        df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(), df.entry.to_numpy(),
        df[["x1", "x2"]].to_numpy(float), df[["x1"]].to_numpy(float), np.ones(len(df)),
        np.array([0, 13, 52]), np.array([0, 26]), np.array([0, 13, 26]), 2,
        condition_on_entry=False)
    assert K_.loglik(res.theta, res._layout, D) == pytest.approx(res.loglik, rel=1e-10)
    _, g = K_.loglik_grad(res.theta, res._layout, D)
    assert np.max(np.abs(g)) / len(df) < 1e-4


def test_convergence_is_reported_honestly(sim2, monkeypatch):
    # an optimiser that claims convergence without moving must not yield converged=True
    from mentor_impact.duration import toe as toe_mod
    from mentor_impact.exceptions import ConvergenceWarning

    def lazy_polish(self, theta, L, D):
        return theta, K_.loglik(theta, L, D), True, toe_mod._num_hessian(theta, L, D)

    monkeypatch.setattr(toe_mod.TimingOfEvents, "_polish", lazy_polish)
    with pytest.warns(ConvergenceWarning, match=r"(?s)max \|gradient\|.*Tried: L-BFGS-B"):
        res = _fit_cols(sim2.data, ["x1", "x2"], support_points=1, max_iter=2)
    assert res.converged is False
    assert res.k_search.max_grad.iloc[0] > 1e-3
    assert any("not converged" in n for n in res.notes)


def test_converged_fit_reports_small_gradient(sim2):
    res = _fit_cols(sim2.data, ["x1", "x2"], max_support_points=2)
    assert res.converged is True
    sel = res.k_search[res.k_search.selected]
    assert float(sel.max_grad.iloc[0]) <= 1e-6


def test_k_search_selects_minimum_aic(sim2):
    # with an unscaled covariate the K = 2 run used to stop after one step below the K = 1
    # log-likelihood, and K = 1 was selected
    df = sim2.data.copy()
    df["birth_year"] = 8.0 * df["x1"] + 1975.0
    res = _fit_cols(df, ["birth_year", "x2"], max_support_points=3)
    ks = res.k_search
    assert res.n_support_points == 2
    assert np.all(np.diff(ks.loglik.to_numpy()) > 0)
    assert np.all(ks.max_grad < 1e-3)
    assert ks.selected.sum() == 1
    chosen = ks[ks.selected].iloc[0]
    assert chosen.aic == ks.aic.min()
    assert int(chosen.K) == res.n_support_points
    assert res.aic == pytest.approx(float(chosen.aic))
    assert len(ks) >= 2  # the search fitted at least one larger K and rejected it by AIC


def test_k_search_reports_when_it_stops_at_the_cap(sim2):
    capped = _fit(sim2.data, max_support_points=2)
    assert capped.n_support_points == 2
    assert any("stopped at max_support_points=2" in s for s in capped.notes)
    free = _fit(sim2.data, max_support_points=4)
    assert free.n_support_points == 2 and len(free.k_search) == 3
    assert not any("max_support_points" in s for s in free.notes)


def test_demo_entry_year_dummies_one_per_year_but_the_first():
    from mentor_impact.duration._toe_demo import _add_entry_year, _with_dummies

    weeks = np.array([200801, 200901, 201001, 201101])
    col = np.repeat([0, 1, 2, 3], 50)
    sp = pd.DataFrame({"entry_col": col, "start": np.full(200, -1)})
    names = _add_entry_year(sp, weeks)
    # years are not pooled (pooling no-start years with programme years misfits the start
    # hazard; see the docstring): one dummy per year, the first year the reference
    assert names == ["entry2009", "entry2010", "entry2011"]
    for y, c in ((2009, 1), (2010, 2), (2011, 3)):
        np.testing.assert_array_equal(sp[f"entry{y}"].to_numpy(), (col == c).astype(np.int8))
    base = pd.DataFrame({"person": [1, 2, 3], "edu": pd.Categorical(["b", "a", "b"]),
                         "ids": ["x", "y", "z"], "age": [1.0, 2.0, 3.0]})
    out = _with_dummies(base)
    assert list(out.columns) == ["person", "age", "edub", "idsy", "idsz"]
    np.testing.assert_array_equal(out["edub"], [1, 0, 1])
