"""PiecewiseExponential and DiscreteTimeHazard: aggregated fits equal the person-period GLM
(plain-loop twin + statsmodels), equivalences, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from mentor_impact._kernels.glm import glm_fit
from mentor_impact.duration import DiscreteTimeHazard, PiecewiseExponential
from mentor_impact.exceptions import ConfigurationError, DataValidationError, SeparationWarning


def _sim(n=150, seed=0, cap=30):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "b": rng.integers(0, 2, size=n),
        }
    )
    haz = 0.08 * np.exp(0.4 * df["x"] + 0.3 * df["b"])
    t = rng.geometric(np.clip(haz, 0.01, 0.9))
    c = rng.integers(3, cap, size=n)
    df["time"] = np.minimum(t, c).astype(float)
    df["status"] = (t <= c).astype(int)
    df["w"] = rng.integers(1, 4, size=n).astype(float)
    df["id"] = np.arange(n) // 2
    df["entry"] = np.minimum(rng.integers(0, 3, size=n), df["time"] - 1).astype(float)
    return df


def _person_period_loop(df, bounds, entry=False):
    """Plain-loop person-period split (survSplit twin): one row per subject and interval."""
    rows = []
    for i, r in df.iterrows():
        t0 = r["entry"] if entry else 0.0
        for k in range(len(bounds) - 1):
            lo, hi = max(t0, bounds[k]), min(r["time"], bounds[k + 1])
            if hi <= lo:
                continue
            y = int(r["status"] == 1 and bounds[k] < r["time"] <= bounds[k + 1])
            rows.append(dict(i=i, k=k, expo=hi - lo, y=y))
    return pd.DataFrame(rows).merge(df, left_on="i", right_index=True)


def _design(pp, n_lev, covs):
    d = pd.get_dummies(pp["k"], prefix="k", dtype=float)
    d = d[[f"k_{j}" for j in range(1, n_lev) if f"k_{j}" in d]]
    x = pd.concat(
        [
            pd.Series(1.0, index=pp.index, name="c"),
            d,
            pd.get_dummies(pp["g"], prefix="g", drop_first=True, dtype=float),
            pp[["x", "b"]],
        ],
        axis=1,
    )
    return x[["c", *d.columns, "g_b", "g_c", *covs]]


@pytest.mark.parametrize("entry", [False, True])
def test_pwe_equals_split_poisson(entry):
    df = _sim(seed=1)
    cuts = [5, 10, 20]
    bounds = [0, *cuts, np.inf]
    res = PiecewiseExponential(cuts=cuts, tol=1e-13).fit(
        df,
        duration="time",
        event="status",
        covariates=["g", "x", "b"],
        weights="w",
        entry="entry" if entry else None,
        cluster="id",
    )
    pp = _person_period_loop(df, bounds, entry)
    x = _design(pp, 4, ["x", "b"])
    g = sm.GLM(
        pp["y"], x, family=sm.families.Poisson(), offset=np.log(pp["expo"]), freq_weights=pp["w"]
    ).fit(tol=1e-13)
    np.testing.assert_allclose(res.coef, g.params.to_numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.std_errors_model.to_numpy(), g.bse.to_numpy(), rtol=1e-6)
    assert res.loglik == pytest.approx(g.llf, rel=1e-9)
    # cluster-robust: statsmodels with the same cluster ids and no small-sample correction
    gv = sm.GLM(
        pp["y"], x, family=sm.families.Poisson(), offset=np.log(pp["expo"]), var_weights=pp["w"]
    ).fit(tol=1e-13)
    sc = gv.model.score_obs(gv.params)
    meat = pd.DataFrame(sc).groupby(pp["id"].to_numpy()).sum().to_numpy()
    bread = np.linalg.inv(-gv.model.hessian(gv.params, observed=False))
    v = bread @ (meat.T @ meat) @ bread
    np.testing.assert_allclose(res.std_errors.to_numpy(), np.sqrt(np.diag(v)), rtol=1e-6)
    assert list(res.names[:4]) == [
        "(Intercept)",
        "factor(interval)2",
        "factor(interval)3",
        "factor(interval)4",
    ]


@pytest.mark.parametrize("link", ["cloglog", "logit"])
@pytest.mark.parametrize("cuts", [None, [4, 8]])
def test_discrete_time_equals_person_period_glm(link, cuts):
    df = _sim(n=300, seed=2, cap=9)  # every period 1..8 has events
    res = DiscreteTimeHazard(link=link, cuts=cuts).fit(
        df,
        duration="time",
        event="status",
        covariates=["g", "x", "b"],
        weights="w",
        entry="entry",
        robust=True,
    )
    # person-period table by loops (twin)
    rows = []
    for i, r in df.iterrows():
        for t in range(int(r["entry"]) + 1, int(r["time"]) + 1):
            rows.append(dict(i=i, t=t, y=int(r["status"] == 1 and t == r["time"])))
    pp = pd.DataFrame(rows).merge(df, left_on="i", right_index=True)
    if cuts is None:
        levels = np.sort(pp["t"].unique())
        pp["k"] = np.searchsorted(levels, pp["t"])
    else:
        pp["k"] = np.searchsorted(np.array([0, *cuts, np.inf]), pp["t"], side="left") - 1
        pp["k"] = pp["k"].rank(method="dense").astype(int) - 1
    n_lev = pp["k"].nunique()
    x = _design(pp, n_lev, ["x", "b"])
    lk = sm.families.links.CLogLog() if link == "cloglog" else sm.families.links.Logit()
    fam = sm.families.Binomial(lk)
    g = sm.GLM(pp["y"], x, family=fam, freq_weights=pp["w"]).fit(tol=1e-14, maxiter=200)
    np.testing.assert_allclose(res.coef, g.params.to_numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res.std_errors_model.to_numpy(), g.bse.to_numpy(), rtol=1e-5)
    assert res.loglik == pytest.approx(g.llf, rel=1e-8)
    # sandwich as R's sandwich::vcovCL(type = "HC0", cadjust = FALSE): bread = expected
    # information (IRLS), meat = person-summed scores of the person-period rows
    gv = sm.GLM(pp["y"], x, family=fam, var_weights=pp["w"]).fit(tol=1e-14, maxiter=200)
    sc = gv.model.score_obs(gv.params)
    meat_rows = pd.DataFrame(sc).groupby(pp["i"].to_numpy()).sum().to_numpy()
    bread = np.linalg.inv(-gv.model.hessian(gv.params, observed=False))
    v = bread @ (meat_rows.T @ meat_rows) @ bread
    np.testing.assert_allclose(res.std_errors.to_numpy(), np.sqrt(np.diag(v)), rtol=1e-5)
    assert res.extra["n_cells"] <= len(pp)


def test_discrete_time_aggregates_patterns():
    df = _sim(n=400, seed=3, cap=9)
    res = DiscreteTimeHazard().fit(df, duration="time", event="status", covariates=["g", "b"])
    # 6 covariate patterns x at most 8 periods
    assert res.extra["n_cells"] <= 6 * 8


@pytest.mark.filterwarnings("ignore::mentor_impact.exceptions.ConvergenceWarning")
def test_period_without_events_warns():
    df = _sim(n=150, seed=3)
    with pytest.warns(SeparationWarning, match=r"baseline period\(s\) have no events"):
        DiscreteTimeHazard().fit(df, duration="time", event="status", covariates=["x"])


def test_frequency_weights_equal_duplicated_rows():
    df = _sim(seed=4)
    dup = df.loc[df.index.repeat(df["w"].astype(int))].reset_index(drop=True)
    for model in (PiecewiseExponential(cuts=[5, 10], tol=1e-13), DiscreteTimeHazard(cuts=[5, 10])):
        a = model.fit(df, duration="time", event="status", covariates=["x", "g"], weights="w")
        b = model.fit(dup, duration="time", event="status", covariates=["x", "g"])
        np.testing.assert_allclose(a.coef, b.coef, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(a.cov_model, b.cov_model, rtol=1e-7, atol=1e-12)
        assert a.loglik == pytest.approx(b.loglik, rel=1e-10)


def test_row_order_changes_nothing():
    df = _sim(seed=5)
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for model in (PiecewiseExponential(cuts=[5, 10]), DiscreteTimeHazard(link="logit", cuts=[5])):
        a = model.fit(df, duration="time", event="status", covariates=["x", "g"], cluster="id")
        b = model.fit(
            shuffled, duration="time", event="status", covariates=["x", "g"], cluster="id"
        )
        np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a.cov, b.cov, rtol=1e-8, atol=1e-14)


def test_glm_kernel_loop_twin_logit():
    rng = np.random.default_rng(6)
    x = np.column_stack([np.ones(200), rng.normal(size=(200, 2))])
    y = (rng.random(200) < 1 / (1 + np.exp(-x @ [0.2, 1.0, -0.5]))).astype(float)
    fit = glm_fit(x, y, np.ones(200), family="binomial", link="logit")
    # plain Newton loop twin
    b = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ b))
        grad = sum((y[i] - p[i]) * x[i] for i in range(200))
        hess = sum(p[i] * (1 - p[i]) * np.outer(x[i], x[i]) for i in range(200))
        b = b + np.linalg.solve(hess, grad)
    np.testing.assert_allclose(fit.beta, b, rtol=1e-9)
    np.testing.assert_allclose(fit.cov, np.linalg.inv(hess), rtol=1e-7)


# ------------------------------------------------------------------ bad input


def test_bad_cuts():
    df = _sim()
    with pytest.raises(ConfigurationError, match="cuts: expected strictly increasing"):
        PiecewiseExponential(cuts=[10, 5]).fit(
            df, duration="time", event="status", covariates=["x"]
        )
    with pytest.raises(DataValidationError, match=r"cuts: expected exposure in every interval"):
        PiecewiseExponential(cuts=[5, 1000]).fit(
            df, duration="time", event="status", covariates=["x"]
        )


def test_bad_link():
    with pytest.raises(ConfigurationError, match="link: expected 'cloglog' or 'logit'"):
        DiscreteTimeHazard(link="probit").fit(
            _sim(), duration="time", event="status", covariates=["x"]
        )


def test_non_integer_periods():
    df = _sim()
    df.loc[[2, 5], "time"] += 0.5
    with pytest.raises(DataValidationError, match=r"duration: expected integer periods; found 2"):
        DiscreteTimeHazard().fit(df, duration="time", event="status", covariates=["x"])


def test_hazard_bad_durations_events():
    df = _sim()
    df.loc[3, "time"] = 0
    with pytest.raises(DataValidationError, match=r"found 1 zero or negative \(rows 3\)"):
        PiecewiseExponential(cuts=[5]).fit(df, duration="time", event="status", covariates=["x"])
    df = _sim()
    df.loc[[0, 4], "status"] = 3
    with pytest.raises(DataValidationError, match=r"expected codes in \[0, 1\]; found 2"):
        DiscreteTimeHazard().fit(df, duration="time", event="status", covariates=["x"])
    df = _sim()
    df["status"] = 0
    with pytest.raises(DataValidationError, match="all censored"):
        DiscreteTimeHazard().fit(df, duration="time", event="status", covariates=["x"])


def test_hazard_collinear():
    df = _sim()
    df["x2"] = df["x"] * 3
    with pytest.raises(DataValidationError, match="collinearity"):
        PiecewiseExponential(cuts=[5]).fit(
            df, duration="time", event="status", covariates=["x", "x2"]
        )


@pytest.mark.parametrize(
    "family,link", [("poisson", "log"), ("binomial", "cloglog"), ("binomial", "logit")]
)
def test_blocked_glm_equals_dense_glm(family, link):
    from mentor_impact._kernels.glm import glm_fit, glm_fit_blocked

    rng = np.random.default_rng(7)
    n_cells, n_lev, n_pat = 300, 4, 60
    lev = rng.integers(0, n_lev, n_cells)
    pat = rng.integers(0, n_pat, n_cells)
    xp = rng.normal(size=(n_pat, 2))
    eta = np.array([-2.0, -1.5, -1.0, -1.2])[lev] + xp[pat] @ [0.5, -0.3]
    if family == "poisson":
        prior, expo = np.ones(n_cells), rng.uniform(1, 5, n_cells)
        y, off = rng.poisson(np.exp(eta) * expo).astype(float), np.log(expo)
    else:
        prior = rng.integers(1, 20, n_cells).astype(float)
        y, off = rng.binomial(prior.astype(int), 1 / (1 + np.exp(-eta))) / prior, None
    blocked = glm_fit_blocked(
        lev,
        pat,
        xp,
        y,
        prior,
        n_levels=n_lev,
        family=family,
        link=link,
        offset=off,
        tol=1e-14,
        step_tol=1e-12,
        max_iter=100,
    )
    dense_x = np.column_stack(
        [np.ones(n_cells), *(lev == j for j in range(1, n_lev)), xp[pat]]
    ).astype(float)
    dense = glm_fit(
        dense_x, y, prior, family=family, link=link, offset=off, tol=1e-14, max_iter=100
    )
    np.testing.assert_allclose(blocked.beta, dense.beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(blocked.cov, dense.cov, rtol=1e-6, atol=1e-12)
