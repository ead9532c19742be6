from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    EstimationError,
    PositivityWarning,
)
from mentor_impact.matching import (
    AbadieImbens,
    Caliper,
    KernelMatching,
    NearestNeighborMatching,
    RadiusMatching,
)

sys.path.insert(0, str(Path(__file__).parent))
import _matching_reference as ref


def _frame(n=300, seed=0, H=None):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.8 * x1 - 0.5 * x2)))).astype(int)
    y = 1.0 + x1 + 0.5 * x2 + 2.0 * d + rng.normal(size=n)
    df = pd.DataFrame({"x1": x1, "x2": x2, "d": d, "y": y, "g": rng.integers(0, 3, size=n)})
    return df


def _data(df, **kw):
    return EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x1", "x2"],
                                     frame_columns=["g"], **kw)


def test_ai_variance_equals_loop():
    df = _frame()
    data = _data(df)
    res = NearestNeighborMatching(k=2, replace=True).fit(
        data, outcome="y", cov=AbadieImbens(n_neighbors=1)
    )
    m = res.extra["matches"].as_dict()
    y = df["y"].to_numpy()
    D = df["d"].to_numpy() == 1
    # sigma^2 by loops: nearest same-arm unit on the logit PS (J = 1): (y_i - y_l)^2 / 2
    lg = res.extra["distance"]
    s2 = np.zeros(len(y))
    order = sorted(range(len(y)), key=lambda i: (lg[i], i))
    for i in range(len(y)):
        same = [j for j in order if D[j] == D[i] and j != i]
        best = min(same, key=lambda j: (abs(lg[j] - lg[i]), 0 if (lg[j], j) < (lg[i], i) else 1))
        s2[i] = 0.5 * (y[i] - y[best]) ** 2
    est, v = ref.ai_variance_loop(y, D, m, s2)
    np.testing.assert_allclose(res.estimate[0], est, rtol=1e-12)
    np.testing.assert_allclose(res.cov[0, 0], v, rtol=1e-10)


def test_curve_equals_columnwise_scalars():
    df = _frame()
    rng = np.random.default_rng(3)
    Yc = df["y"].to_numpy()[:, None] + rng.normal(size=(len(df), 4))
    data = _data(df)
    curve = EvaluationData(
        X=data.X, covariate_names=data.covariate_names, treatment=data.treatment,
        outcomes={"c": Yc}, tau=np.arange(4),
    )
    res = NearestNeighborMatching(k=3, replace=True).fit(curve, outcome="c",
                                                          cov=AbadieImbens())
    assert res.estimate.shape == (4,)
    for j in range(4):
        one = EvaluationData(X=data.X, covariate_names=data.covariate_names,
                             treatment=data.treatment, outcomes={"c": Yc[:, j]})
        r1 = NearestNeighborMatching(k=3, replace=True).fit(one, outcome="c",
                                                             cov=AbadieImbens())
        np.testing.assert_allclose(res.estimate[j], r1.estimate[0], rtol=1e-12)
        np.testing.assert_allclose(res.cov[j, j], r1.cov[0, 0], rtol=1e-10)


@pytest.mark.parametrize("replace", [True, False])
def test_row_order_changes_nothing(replace):
    df = _frame(seed=1)
    perm = np.random.default_rng(5).permutation(len(df))
    a = NearestNeighborMatching(replace=replace, caliper=0.5).fit(_data(df), outcome="y")
    b = NearestNeighborMatching(replace=replace, caliper=0.5).fit(
        _data(df.iloc[perm].reset_index(drop=True)), outcome="y")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-10)
    np.testing.assert_allclose(a.weights[perm], b.weights, rtol=1e-10)


def test_frequency_weights_of_treated_equal_duplicated_rows():
    df = _frame(seed=2)
    ps = NearestNeighborMatching(replace=True).fit(_data(df), outcome="y").extra["ps"]
    w = np.where(df["d"] == 1, np.random.default_rng(0).integers(1, 4, len(df)), 1)
    dfw = df.assign(w=w.astype(float))
    a = NearestNeighborMatching(replace=True, k=2).fit(_data(dfw, weights="w"), outcome="y",
                                                       ps=ps)
    rep = np.repeat(np.arange(len(df)), w)
    b = NearestNeighborMatching(replace=True, k=2).fit(
        _data(df.iloc[rep].reset_index(drop=True)), outcome="y", ps=ps[rep])
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-10)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-8)


def test_atc_is_mirror_of_att():
    df = _frame(seed=4)
    ps = NearestNeighborMatching().fit(_data(df), outcome="y").extra["ps"]
    atc = NearestNeighborMatching(replace=True, estimand="ATC").fit(_data(df), outcome="y",
                                                                    ps=ps)
    flipped = df.assign(d=1 - df["d"])
    att = NearestNeighborMatching(replace=True).fit(_data(flipped), outcome="y", ps=1 - ps)
    np.testing.assert_allclose(atc.estimate, -att.estimate, rtol=1e-10)
    ate = NearestNeighborMatching(replace=True, estimand="ATE").fit(_data(df), outcome="y",
                                                                    ps=ps)
    n1 = df["d"].sum()
    att1 = NearestNeighborMatching(replace=True).fit(_data(df), outcome="y", ps=ps)
    np.testing.assert_allclose(
        ate.estimate[0], (n1 * att1.estimate[0] + (len(df) - n1) * atc.estimate[0]) / len(df)
    )


def test_exact_cells_respected_and_counted():
    df = _frame(seed=6)
    df.loc[(df["g"] == 2) & (df["d"] == 0), "g"] = 1  # cell 2: treated only
    n_bad = int(((df["g"] == 2) & (df["d"] == 1)).sum())
    with pytest.warns(PositivityWarning, match=rf"{n_bad} of \d+ treated units are in exact"):
        res = NearestNeighborMatching(replace=True, k=2, exact=["g"]).fit(_data(df),
                                                                          outcome="y")
    m = res.extra["matches"]
    g = df["g"].to_numpy()
    assert np.all(g[m.pair_focal] == g[m.matched])
    assert res.dropped["treated_no_pool_in_cell"] == n_bad
    assert "restricted" in res.extra["estimand_note"]


def test_caliper_counts_unmatched():
    df = _frame(seed=7)
    with pytest.warns(PositivityWarning, match="no acceptable match"):
        res = NearestNeighborMatching(caliper=Caliper(0.001)).fit(_data(df), outcome="y")
    assert res.dropped["treated_outside_caliper"] > 0
    assert res.n_treated + res.dropped["treated_outside_caliper"] == df["d"].sum()


def test_radius_and_kernel_run_and_are_close_to_truth():
    df = _frame(n=2000, seed=8)
    for est in (RadiusMatching(0.2), KernelMatching(0.2), KernelMatching(0.2, kernel="gaussian"),
                NearestNeighborMatching(k=5, replace=True, bias_correction=True),
                NearestNeighborMatching(distance="mahalanobis", replace=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PositivityWarning)
            res = est.fit(_data(df), outcome="y")
        assert abs(res.estimate[0] - 2.0) < 4 * res.std_errors.iloc[0] + 0.2, est


def test_bad_inputs():
    df = _frame(seed=9)
    data = _data(df)
    with pytest.raises(EstimationError, match=r"none of the \d+ treated units"):
        NearestNeighborMatching(caliper=Caliper(1e-12, "absolute")).fit(data, outcome="y")
    with pytest.raises(ConfigurationError, match="k=1000 matches without replacement"):
        NearestNeighborMatching(k=1000).fit(data, outcome="y")
    with pytest.raises(ConfigurationError, match="k=1000 exceeds"):
        NearestNeighborMatching(k=1000, replace=True).fit(data, outcome="y")
    ps = np.full(len(df), 0.5)
    ps[[3, 8]] = 1.0
    with pytest.raises(EstimationError, match=r"infinite for 2 rows.*rows 3, 8"):
        NearestNeighborMatching().fit(data, outcome="y", ps=ps)
    with pytest.warns(PositivityWarning, match=r"2 rows have a propensity score of exactly"):
        NearestNeighborMatching(distance="ps", replace=True).fit(data, outcome="y", ps=ps)
    with pytest.raises(DataValidationError, match="expected one of"):
        NearestNeighborMatching().fit(data, outcome="nope")
    with pytest.raises(ConfigurationError, match="'order' parameter"):
        NearestNeighborMatching(order="biggest").fit(data, outcome="y")
    with pytest.raises(ConfigurationError, match="ties='all' needs replace=True"):
        NearestNeighborMatching(ties="all").fit(data, outcome="y")
    sing = df.assign(x3=df["x1"] * 2.0)
    dsing = EvaluationData.from_frame(sing, treatment="d", outcomes="y",
                                      covariates=["x1", "x2", "x3"])
    with pytest.raises(DataValidationError, match="singular"):
        NearestNeighborMatching(distance="mahalanobis", replace=True).fit(
            dsing, outcome="y", ps=np.full(len(df), 0.3))
    with pytest.raises(ConfigurationError, match="positive finite width"):
        Caliper(-1)
    with pytest.raises(ConfigurationError, match="'n_neighbors' parameter"):
        AbadieImbens(n_neighbors=-1)


def test_fit_leaves_estimator_unchanged():
    df = _frame(seed=10)
    for est in (NearestNeighborMatching(replace=True, caliper=0.3), RadiusMatching(0.3),
                KernelMatching(0.3)):
        before = dict(vars(est))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PositivityWarning)
            est.fit(_data(df), outcome="y")
        assert vars(est) == before


def test_kernel_matching_equals_loop():
    df = _frame(n=150, seed=11)
    data = _data(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PositivityWarning)
        res = KernelMatching(0.5).fit(data, outcome="y")
    lg = res.extra["distance"]
    h = res.extra["caliper"]
    np.testing.assert_allclose(h, 0.5 * np.std(lg, ddof=1))
    y = df["y"].to_numpy()
    d = df["d"].to_numpy()
    effs = []
    for i in np.flatnonzero(d == 1):
        num = den = 0.0
        for j in np.flatnonzero(d == 0):
            u = (lg[j] - lg[i]) / h
            if abs(u) <= 1:
                k = 0.75 * (1 - u * u)
                num += k * y[j]
                den += k
        if den > 0:
            effs.append(y[i] - num / den)
    np.testing.assert_allclose(res.estimate[0], np.mean(effs), rtol=1e-10)


def test_mahalanobis_equals_brute_force_loop():
    df = _frame(n=120, seed=12)
    data = _data(df)
    X = df[["x1", "x2"]].to_numpy()
    d = df["d"].to_numpy()
    xc = X.copy()
    for arm in (0, 1):
        xc[d == arm] -= X[d == arm].mean(axis=0)
    S_inv = np.linalg.inv(xc.T @ xc / (len(X) - 2))
    res = NearestNeighborMatching(distance="mahalanobis", replace=True).fit(data, outcome="y")
    got = res.extra["matches"].as_dict()
    for t in np.flatnonzero(d == 1):
        dist = [(X[t] - X[c]) @ S_inv @ (X[t] - X[c]) for c in np.flatnonzero(d == 0)]
        assert got[int(t)] == [int(np.flatnonzero(d == 0)[int(np.argmin(dist))])]


def test_bias_correction_removes_linear_bias_exactly():
    rng = np.random.default_rng(13)
    n = 300
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-2 * x1))).astype(int)
    y = 1.0 + 3.0 * x1 - 2.0 * x2 + 0.7 * d  # linear, no noise: exact after correction
    df = pd.DataFrame({"x1": x1, "x2": x2, "d": d, "y": y, "g": 0})
    data = _data(df)
    plain = NearestNeighborMatching(replace=True, k=2).fit(data, outcome="y")
    bc = NearestNeighborMatching(replace=True, k=2, bias_correction=True).fit(data, outcome="y")
    assert abs(plain.estimate[0] - 0.7) > 1e-3
    np.testing.assert_allclose(bc.estimate[0], 0.7, atol=1e-10)


def test_ate_ai_variance_equals_loop():
    df = _frame(n=200, seed=14)
    data = _data(df)
    res = NearestNeighborMatching(k=2, replace=True, estimand="ATE").fit(
        data, outcome="y", cov=AbadieImbens(n_neighbors=1))
    y = df["y"].to_numpy()
    d = df["d"].to_numpy()
    lg = res.extra["distance"]
    n = len(y)
    K = np.zeros(n)
    KK = np.zeros(n)
    tau = np.zeros(n)
    for m in res.extra["matches"]:
        for f, cs in m.as_dict().items():
            for c in cs:
                K[c] += 1 / len(cs)
                KK[c] += 1 / len(cs) ** 2
            imp = np.mean(y[cs])
            tau[f] = y[f] - imp if d[f] == 1 else imp - y[f]
    s2 = np.zeros(n)
    for i in range(n):
        same = [j for j in range(n) if d[j] == d[i] and j != i]
        best = min(same, key=lambda j: (abs(lg[j] - lg[i]), 0 if (lg[j], j) < (lg[i], i) else 1))
        s2[i] = 0.5 * (y[i] - y[best]) ** 2
    est = tau.mean()
    v = (np.sum((K**2 + 2 * K - KK) * s2) + np.sum((tau - est) ** 2)) / n**2
    np.testing.assert_allclose(res.estimate[0], est, rtol=1e-12)
    np.testing.assert_allclose(res.cov[0, 0], v, rtol=1e-10)


def test_ps_adjustment_rejects_settings_outside_the_theory():
    df = _frame(seed=15)
    with pytest.raises(ConfigurationError):
        NearestNeighborMatching(replace=True, caliper=0.2).fit(
            _data(df), outcome="y", cov=AbadieImbens(ps_adjustment=True))


def test_random_order_is_seeded():
    df = _frame(seed=16)
    a = NearestNeighborMatching(order="random", seed=3).fit(_data(df), outcome="y")
    b = NearestNeighborMatching(order="random", seed=3).fit(_data(df), outcome="y")
    np.testing.assert_array_equal(a.extra["matches"].matched, b.extra["matches"].matched)
    assert a.seed == 3
