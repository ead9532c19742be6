"""FineGray vs a direct (plain-loop) Fine-Gray weighted partial likelihood, equivalences, bad
input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import FineGray
from mentor_impact.duration.finegray import censoring_survival
from mentor_impact.exceptions import ConfigurationError, DataValidationError


def _sim(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    b = rng.integers(0, 2, size=n)
    t1 = rng.exponential(20 * np.exp(-0.5 * x))
    t2 = rng.exponential(25 * np.exp(0.3 * b))
    c = rng.uniform(5, 40, size=n)
    t = np.ceil(np.minimum(np.minimum(t1, t2), c))
    ev = np.where(c < np.minimum(t1, t2), 0, np.where(t1 <= t2, 1, 2))
    return pd.DataFrame(
        {"time": t, "event": ev, "x": x, "b": b, "w": rng.integers(1, 3, size=n).astype(float)}
    )


def _loop_km_censoring(time, event, w):
    ut = np.unique(time)
    g, out = 1.0, []
    for t in ut:
        at_risk = w[time >= t].sum()
        dc = w[(time == t) & (event == 0)].sum()
        g *= 1 - dc / at_risk
        out.append(g)
    return ut, np.array(out)


def _loop_fg(beta, x, time, event, w, cause=1):
    """Direct Fine-Gray weighted partial log-likelihood and score (Breslow ties), by loops.

    Risk set at a cause-1 time t: everyone with T >= t (weight w_j), plus competing-risk
    failures with T_j < t with weight w_j G(t-) / G(T_j-) (cmprsk::crr)."""
    ut, g = _loop_km_censoring(time, event, w)

    def g_left(t):
        k = np.searchsorted(ut, t, side="left") - 1
        return 1.0 if k < 0 else g[k]

    n = len(time)
    eta = x @ beta
    ll, u = 0.0, np.zeros(x.shape[1])
    for t in np.unique(time[event == cause]):
        s0, s1 = 0.0, np.zeros(x.shape[1])
        for j in range(n):
            if time[j] >= t:
                wj = w[j]
            elif event[j] not in (0, cause):
                wj = w[j] * g_left(t) / g_left(time[j])
            else:
                continue
            s0 += wj * np.exp(eta[j])
            s1 += wj * np.exp(eta[j]) * x[j]
        dead = [i for i in range(n) if time[i] == t and event[i] == cause]
        for i in dead:
            ll += w[i] * (eta[i] - np.log(s0))
            u += w[i] * (x[i] - s1 / s0)
    return ll, u


def test_censoring_km_matches_loop():
    df = _sim(seed=1)
    t, e, w = df["time"].to_numpy(), df["event"].to_numpy(), df["w"].to_numpy()
    ct, cs = censoring_survival(t, e == 0, w)
    ut, g = _loop_km_censoring(t, e, w)
    np.testing.assert_allclose(cs, g[np.isin(ut, ct)], rtol=1e-12)


@pytest.mark.parametrize("weights", [None, "w"])
def test_fine_gray_equals_direct_likelihood(weights):
    df = _sim(seed=2)
    res = FineGray(cause=1).fit(
        df, duration="time", event="event", covariates=["x", "b"], weights=weights
    )
    x = df[["x", "b"]].to_numpy()
    w = np.ones(len(df)) if weights is None else df["w"].to_numpy()
    ll, u = _loop_fg(res.coef, x, df["time"].to_numpy(), df["event"].to_numpy(), w)
    assert res.loglik == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(u, 0.0, atol=1e-7)  # the estimate solves the FG score equation
    ll0, _ = _loop_fg(np.zeros(2), x, df["time"].to_numpy(), df["event"].to_numpy(), w)
    assert res.loglik_null == pytest.approx(ll0, rel=1e-10)


def test_cause_two_and_prediction():
    df = _sim(seed=3)
    res = FineGray(cause=2).fit(df, duration="time", event="event", covariates=["x", "b"])
    _ll, u = _loop_fg(
        res.coef,
        df[["x", "b"]].to_numpy(),
        df["time"].to_numpy(),
        df["event"].to_numpy(),
        np.ones(len(df)),
        cause=2,
    )
    np.testing.assert_allclose(u, 0.0, atol=1e-7)
    cif = res.predict_cumulative_incidence(df.iloc[:4], [5, 10, 20])
    assert cif.shape == (3, 4)
    assert np.all(np.diff(cif.to_numpy(), axis=0) >= 0)
    assert np.all((cif.to_numpy() >= 0) & (cif.to_numpy() <= 1))
    assert res.exp_label == "subdistribution_hazard_ratio"
    assert res.cov_type == "clustered" and res.n_clusters == len(df)


def test_frequency_weights_equal_duplicated_rows():
    df = _sim(seed=4)
    a = FineGray().fit(df, duration="time", event="event", covariates=["x", "b"], weights="w")
    dup = df.loc[df.index.repeat(df["w"].astype(int))].reset_index(drop=True)
    b = FineGray().fit(dup, duration="time", event="event", covariates=["x", "b"])
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)
    np.testing.assert_allclose(a.cov_model, b.cov_model, rtol=1e-8)


def test_row_order_changes_nothing():
    df = _sim(seed=5)
    a = FineGray().fit(df, duration="time", event="event", covariates=["x", "b"])
    b = FineGray().fit(
        df.sample(frac=1, random_state=2).reset_index(drop=True),
        duration="time",
        event="event",
        covariates=["x", "b"],
    )
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-9)


def test_fine_gray_bad_input():
    df = _sim()
    bad = df.copy()
    bad.loc[[2, 3], "event"] = 5
    with pytest.raises(DataValidationError, match=r"event: expected codes 0 or \[1, 2\]; found 2"):
        FineGray().fit(bad, duration="time", event="event", covariates=["x"], event_codes=[1, 2])
    bad = df.copy()
    bad.loc[1, "event"] = -1
    with pytest.raises(DataValidationError, match=r"found 1 other values \(rows 1\)"):
        FineGray().fit(bad, duration="time", event="event", covariates=["x"])
    with pytest.raises(DataValidationError, match="at least one event of cause 3"):
        FineGray(cause=3).fit(df, duration="time", event="event", covariates=["x"])
    bad = df.copy()
    bad.loc[0, "time"] = 0
    with pytest.raises(DataValidationError, match=r"zero or negative \(rows 0\)"):
        FineGray().fit(bad, duration="time", event="event", covariates=["x"])
    with pytest.raises(ConfigurationError, match="not supported by FineGray"):
        FineGray().fit(df, duration="time", event="event", covariates=["x"], strata="b")
