"""Abadie–Imbens (2016) variance adjustment for matching on an estimated logit PS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import ConfigurationError
from mentor_impact.matching import AbadieImbens, Caliper, NearestNeighborMatching
from mentor_impact.matching._core import (
    ai2016_adjustment,
    knn_points,
    ps_conditional_cov_sum,
)


# ----------------------------------------------------------------------------- loop twins
def _knn_points_loop(query: np.ndarray, pool: np.ndarray, L: int) -> np.ndarray:
    out = np.empty((query.size, L), dtype=np.int64)
    for i, q in enumerate(query):
        dist = np.abs(pool - q)
        out[i] = np.lexsort((pool, dist))[:L]  # nearest first; ties -> smaller value
    return out


def _cond_cov_sum_loop(dist, Z, Y, arm, a, L):
    rows = np.flatnonzero(arm)
    tot = np.zeros((Z.shape[1], Y.shape[1]))
    for i in range(dist.size):
        nb = rows[_knn_points_loop(dist[i : i + 1], dist[rows], L)[0]]
        for qq in range(Z.shape[1]):
            for kk in range(Y.shape[1]):
                tot[qq, kk] += a[i] * np.cov(Z[nb, qq], Y[nb, kk], ddof=1)[0, 1]
    return tot


def test_knn_points_matches_loop_twin():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=40)
    query = np.concatenate([rng.normal(size=30), pool[:5]])  # some queries are pool units
    for L in (1, 2, 5):
        got = knn_points(query, pool, L)
        want = _knn_points_loop(query, pool, L)
        np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(want, axis=1))
    # a pool unit is its own nearest neighbour
    assert np.all(knn_points(pool, pool, 1)[:, 0] == np.arange(pool.size))


def test_conditional_covariance_matches_loop_twin():
    rng = np.random.default_rng(1)
    n = 60
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    Y = np.column_stack([Z[:, 1] + rng.normal(size=n), rng.normal(size=n)])
    dist = rng.random(n)
    arm = rng.random(n) < 0.5
    a = rng.random(n)
    for L in (2, 3):
        got = ps_conditional_cov_sum(dist, Z, Y, arm, a, L)
        want = _cond_cov_sum_loop(dist, Z, Y, arm, a, L)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[0], 0.0, atol=1e-12)  # intercept: no covariance


# ----------------------------------------------------------------------------- DGPs
def _dgp_ai(seed: int, n: int) -> EvaluationData:
    """Abadie–Imbens (2016)-type design: 2 uniform covariates, logit PS, heterogeneous effect."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.5, 0.5, size=(n, 2))
    e = 1 / (1 + np.exp(-(X[:, 0] + 2 * X[:, 1])))
    d = (rng.random(n) < e).astype(int)
    y0 = 3 * X[:, 0] - 3 * X[:, 1] + rng.normal(size=n)
    y1 = 5 + 5 * X[:, 0] + X[:, 1] + rng.normal(size=n)
    df = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "d": d, "y": np.where(d == 1, y1, y0)})
    return EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x1", "x2"])


def _truth_ai() -> dict[str, float]:
    """Population ATT / ATE of ``_dgp_ai`` by midpoint integration over the unit square."""
    g = (np.arange(2000) + 0.5) / 2000 - 0.5
    a, b = np.meshgrid(g, g)
    e = 1 / (1 + np.exp(-(a + 2 * b)))
    tau = 5 + 2 * a + 4 * b
    return {"ATT": float((e * tau).sum() / e.sum()), "ATE": float(tau.mean())}


def _flat(seed: int = 3, n: int = 800, slope: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-(0.3 + 0.7 * x[:, 0] - 0.5 * x[:, 1])))
    d = (rng.random(n) < e).astype(int)
    y = slope * (x[:, 0] + x[:, 1]) + d * (1 + slope * x[:, 0]) + rng.normal(size=n)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "d": d, "y": y})


def _data(df: pd.DataFrame, outcome: str = "y") -> EvaluationData:
    return EvaluationData.from_frame(df, treatment="d", outcomes=outcome,
                                     covariates=["x1", "x2"])


# ----------------------------------------------------------------------------- unit tests
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_adjustment_vanishes_when_outcome_does_not_depend_on_x(estimand):
    df = _flat()
    df["y"] = 2.0 + 3.0 * df["d"]  # mu(x, w) constant: c = 0 and d = 0 exactly
    nn = NearestNeighborMatching(k=2, replace=True, estimand=estimand)
    res = nn.fit(_data(df), outcome="y", cov=AbadieImbens(ps_adjustment=True))
    parts = res.extra["ps_adjustment"]
    np.testing.assert_allclose(parts["c"], 0.0, atol=1e-12)
    if estimand != "ATE":
        np.testing.assert_allclose(parts["d"], 0.0, atol=1e-12)


def test_adjustment_is_negligible_for_pure_noise_outcome():
    df = _flat(n=2000)
    df["y"] = np.random.default_rng(7).normal(size=len(df))
    for estimand in ("ATT", "ATE"):
        nn = NearestNeighborMatching(k=1, replace=True, estimand=estimand)
        res = nn.fit(_data(df), outcome="y", cov=AbadieImbens(ps_adjustment=True))
        v0 = res.extra["ps_adjustment"]["unadjusted_cov"][0, 0]
        assert abs(res.cov[0, 0] - v0) < 0.02 * v0


def test_ate_adjustment_is_negative_and_att_has_both_terms():
    data = _data(_flat(slope=2.0))
    for estimand in ("ATT", "ATE"):
        nn = NearestNeighborMatching(k=1, replace=True, estimand=estimand)
        res = nn.fit(data, outcome="y", cov=AbadieImbens(ps_adjustment=True))
        unadj = nn.fit(data, outcome="y", cov=AbadieImbens())
        parts = res.extra["ps_adjustment"]
        np.testing.assert_allclose(parts["unadjusted_cov"], unadj.cov)
        np.testing.assert_allclose(res.estimate, unadj.estimate)
        assert "ps-adjusted" in res.cov_type
        if estimand == "ATE":
            assert res.cov[0, 0] < unadj.cov[0, 0]
        else:
            assert np.abs(parts["d"]).sum() > 0 and np.abs(parts["c"]).sum() > 0


def test_atc_equals_att_of_reversed_treatment():
    df = _flat(slope=1.5)
    rev = df.assign(d=1 - df["d"])
    ai = AbadieImbens(ps_adjustment=True)
    atc = NearestNeighborMatching(k=2, replace=True, estimand="ATC", distance="ps").fit(
        _data(df), outcome="y", cov=ai)
    att = NearestNeighborMatching(k=2, replace=True, estimand="ATT", distance="ps").fit(
        _data(rev), outcome="y", cov=ai)
    np.testing.assert_allclose(atc.estimate, -att.estimate, rtol=1e-10)
    np.testing.assert_allclose(atc.cov, att.cov, rtol=1e-8)


def test_multi_column_outcome_matches_columnwise_scalars():
    """The kernel on an (n, 2) outcome (a curve) gives the scalar corrections on its diagonal."""
    df = _flat(slope=1.0)
    y2 = df["y"].to_numpy() * 0.5 + np.random.default_rng(11).normal(size=len(df))
    base = EvaluationData.from_frame(df.assign(y2=y2), treatment="d",
                                     outcomes=["y", "y2"], covariates=["x1", "x2"])
    ai = AbadieImbens(ps_adjustment=True)
    nn = NearestNeighborMatching(k=1, replace=True, estimand="ATE")
    r1 = nn.fit(base, outcome="y", cov=ai)
    r2 = nn.fit(base, outcome="y2", cov=ai)
    m = r1.extra["propensity_model"]
    treat = np.asarray(base.treatment) == 1
    curve = np.column_stack([df["y"].to_numpy(), y2])
    delta, _ = ai2016_adjustment("ATE", r1.extra["distance"], m.design_matrix(base),
                                 r1.extra["ps"], m.information_, treat, curve, 2)
    d1 = r1.cov[0, 0] - r1.extra["ps_adjustment"]["unadjusted_cov"][0, 0]
    d2 = r2.cov[0, 0] - r2.extra["ps_adjustment"]["unadjusted_cov"][0, 0]
    np.testing.assert_allclose(np.diag(delta), [d1, d2], rtol=1e-10)
    np.testing.assert_allclose(delta, delta.T)
    assert np.all(np.linalg.eigvalsh(-delta) >= -1e-15)  # ATE: c' I^-1 c is p.s.d.


@pytest.mark.parametrize(
    "kwargs",
    [dict(caliper=Caliper(0.2)), dict(replace=False), dict(bias_correction=True)],
)
def test_unsupported_settings_raise(kwargs):
    opts = {"k": 1, "replace": True, **kwargs}
    nn = NearestNeighborMatching(**opts)
    with pytest.raises(ConfigurationError, match="ps_adjustment"):
        nn.fit(_data(_flat()), outcome="y", cov=AbadieImbens(ps_adjustment=True))


def test_external_ps_and_sample_att_raise():
    df = _flat()
    nn = NearestNeighborMatching(k=1, replace=True)
    with pytest.raises(ConfigurationError, match="ps="):
        nn.fit(_data(df), outcome="y", ps=np.full(len(df), 0.4),
               cov=AbadieImbens(ps_adjustment=True))
    with pytest.raises(ConfigurationError, match="population"):
        nn.fit(_data(df), outcome="y", cov=AbadieImbens(ps_adjustment=True, population=False))
    with pytest.raises(ConfigurationError, match="ps_neighbors"):
        AbadieImbens(ps_neighbors=1)


# ----------------------------------------------------------------------------- coverage
def _simulate(estimand: str, reps: int, n: int) -> np.ndarray:
    ai = AbadieImbens(ps_adjustment=True)
    nn = NearestNeighborMatching(k=1, replace=True, estimand=estimand, distance="ps")
    out = np.empty((reps, 3))
    for r in range(reps):
        res = nn.fit(_dgp_ai(r, n), outcome="y", cov=ai)
        v0 = res.extra["ps_adjustment"]["unadjusted_cov"][0, 0]
        out[r] = res.estimate[0], res.std_errors.iloc[0], np.sqrt(v0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_ai2016_coverage_of_population_effect(estimand):
    """Adjusted 95% intervals cover the *population* ATT / ATE in 93-97% of 1000 draws."""
    truth = _truth_ai()[estimand]
    sims = _simulate(estimand, reps=1000, n=1000)
    est, se, se0 = sims.T
    sd = est.std(ddof=1)
    cover = np.mean(np.abs(est - truth) <= 1.959964 * se)
    assert 0.93 <= cover <= 0.97, cover
    assert 0.9 <= se.mean() / sd <= 1.1, se.mean() / sd
    if estimand == "ATE":  # AI (2016): ignoring PS estimation is conservative for the ATE
        assert se0.mean() > 1.1 * sd and se0.mean() > se.mean()
        assert np.mean(np.abs(est - truth) <= 1.959964 * se0) > cover
