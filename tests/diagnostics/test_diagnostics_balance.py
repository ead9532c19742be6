from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.diagnostics import (
    balance_table,
    compare_balance,
    curve_balance,
    effective_sample_size,
    love_plot,
    ps_density_plot,
    reuse_summary,
)
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.matching import NearestNeighborMatching


def _df(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    b = (rng.random(n) < 0.4).astype(float)
    d = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    return pd.DataFrame({"x": x, "b": b, "d": d, "y": x + d + rng.normal(size=n)})


def _loop_smd(x, d, w):
    t = [i for i in range(len(x)) if d[i] == 1]
    c = [i for i in range(len(x)) if d[i] == 0]
    mt = sum(w[i] * x[i] for i in t) / sum(w[i] for i in t)
    mc = sum(w[i] * x[i] for i in c) / sum(w[i] for i in c)
    xt = [x[i] for i in t]
    sd = np.std(xt, ddof=1)
    return (mt - mc) / sd


def test_smd_equals_loop_and_weights_equal_duplicates():
    df = _df()
    w = np.random.default_rng(1).integers(0, 4, size=len(df)).astype(float)
    w[df["d"] == 1] = 1.0
    bt = balance_table(df[["x"]], df["d"], weights=w)
    np.testing.assert_allclose(bt.loc["x", "Std. Mean Diff."],
                               _loop_smd(df["x"].to_numpy(), df["d"].to_numpy(), w), rtol=1e-12)
    # weighted means/eCDFs equal those of duplicated rows (SD denominators from full sample)
    rep = np.repeat(np.arange(len(df)), w.astype(int))
    bd = balance_table(df[["x"]].iloc[rep], df["d"].iloc[rep])
    for col in ["Means Treated", "Means Control", "eCDF Max"]:
        np.testing.assert_allclose(bt.loc["x", col], bd.loc["x", col], rtol=1e-12)


def test_row_order_changes_nothing():
    df = _df()
    perm = np.random.default_rng(2).permutation(len(df))
    a = balance_table(df[["x", "b"]], df["d"])
    b = balance_table(df[["x", "b"]].iloc[perm], df["d"].iloc[perm])
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_compare_balance_and_plots():
    df = _df()
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x", "b"])
    res = NearestNeighborMatching(replace=True).fit(data, outcome="y")
    cb = compare_balance(data, res)
    assert set(cb.columns.get_level_values(0)) == {"before", "after"}
    assert abs(cb.loc["distance", ("after", "Std. Mean Diff.")]) < abs(
        cb.loc["distance", ("before", "Std. Mean Diff.")])
    ax = love_plot(cb)
    assert ax is not None
    ax2 = ps_density_plot(res.extra["ps"], df["d"], weights=res.weights, logit=True)
    assert ax2 is not None
    rs = reuse_summary(res, cluster=np.arange(len(df)) // 2)
    assert rs["units"].sum() == (res.extra["reuse_counts"] > 0).sum()


def test_curve_balance_vectorised_equals_columns():
    df = _df()
    rng = np.random.default_rng(4)
    C = (rng.random((len(df), 5)) < 0.3).astype(float)
    w = rng.uniform(0.5, 2, size=len(df))
    cb = curve_balance(C, df["d"], weights=w)
    for j in range(5):
        bt = balance_table(pd.DataFrame({"c": C[:, j]}), df["d"], weights=w)
        np.testing.assert_allclose(cb["smd"].iloc[j], bt.loc["c", "Std. Mean Diff."], rtol=1e-10)


def test_ess_and_bad_input():
    assert effective_sample_size(np.ones(10)) == 10
    np.testing.assert_allclose(effective_sample_size([1, 1, 2]), 16 / 6)
    df = _df()
    X = df[["x"]].copy()
    X.iloc[[2, 5], 0] = np.nan
    with pytest.raises(DataValidationError, match=r"2 rows with missing values \(rows 2, 5\)"):
        balance_table(X, df["d"])
    with pytest.raises(ConfigurationError, match="'estimand' parameter"):
        balance_table(df[["x"]], df["d"], estimand="ATX")
    with pytest.raises(ConfigurationError, match="both arms need positive"):
        balance_table(df[["x"]], df["d"], weights=np.where(df["d"] == 1, 0.0, 1.0))
    with pytest.raises(DataValidationError, match="treatment"):
        balance_table(df[["x"]], None)


# --------------------------------------------------------------------------- reference twins
def _loop_ecdf(x, d, w):
    """eCDF mean / max |F_t - F_c| over the distinct values, by plain loops (MatchIt qqsum)."""
    vals = sorted(set(x.tolist()))
    st = sum(w[i] for i in range(len(x)) if d[i] == 1)
    sc = sum(w[i] for i in range(len(x)) if d[i] == 0)
    diffs = []
    for v in vals:
        ft = sum(w[i] for i in range(len(x)) if d[i] == 1 and x[i] <= v) / st
        fc = sum(w[i] for i in range(len(x)) if d[i] == 0 and x[i] <= v) / sc
        diffs.append(abs(ft - fc))
    return float(np.mean(diffs)), float(max(diffs))


@pytest.mark.parametrize("kind", ["continuous", "ties"])
def test_ecdf_statistics_equal_loop(kind):
    rng = np.random.default_rng(11)
    n = 240
    x = rng.normal(size=n) if kind == "continuous" else rng.integers(0, 6, size=n).astype(float)
    d = (rng.random(n) < 0.35).astype(int)
    w = rng.exponential(size=n) * (rng.random(n) < 0.8)  # zeros: outside the matched sample
    bt = balance_table(pd.DataFrame({"x": x}), d, weights=w)
    em, ex = _loop_ecdf(x, d, w)
    np.testing.assert_allclose(bt.loc["x", "eCDF Mean"], em, rtol=1e-12)
    np.testing.assert_allclose(bt.loc["x", "eCDF Max"], ex, rtol=1e-12)


def test_compare_balance_equals_two_balance_tables():
    df = _df(400, seed=2)
    df["k"] = np.round(df["x"] * 2)
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x", "b", "k"])
    w = np.random.default_rng(5).exponential(size=len(df))
    both = compare_balance(data, weights=w)
    pd.testing.assert_frame_equal(both["before"], balance_table(data))
    pd.testing.assert_frame_equal(both["after"], balance_table(data, weights=w))


def test_block_sums_equal_loop(monkeypatch):
    """Curve balance and weighted column means read the rows in blocks: same as loops."""
    import mentor_impact.diagnostics.balance as B

    monkeypatch.setattr(B, "_BLOCK_ELEMS", 37)  # many small blocks
    rng = np.random.default_rng(8)
    n, k = 150, 6
    C = (rng.random((n, k)) < 0.4).astype(np.int8)
    Cf = C * rng.normal(size=(n, k))  # not 0/1: second pass for the variances
    d = (rng.random(n) < 0.3).astype(int)
    w = rng.uniform(0.2, 3, size=n)
    s = rng.uniform(0.5, 2, size=n)
    rows = d == 0
    tot = sum(w[i] for i in range(n) if rows[i])
    loop = [sum(w[i] * C[i, j] for i in range(n) if rows[i]) / tot for j in range(k)]
    np.testing.assert_allclose(B.weighted_column_means(C, rows, w), loop, rtol=1e-12)
    for M in (C, Cf):
        cb = curve_balance(M, d, weights=w, sample_weight=s)
        for j in range(k):
            bt = balance_table(pd.DataFrame({"c": M[:, j].astype(float)}), d, weights=w,
                               sample_weight=s)
            np.testing.assert_allclose(cb["mean_treated"].iloc[j], bt.loc["c", "Means Treated"],
                                       rtol=1e-12)
            np.testing.assert_allclose(cb["mean_control"].iloc[j], bt.loc["c", "Means Control"],
                                       rtol=1e-12)
            np.testing.assert_allclose(cb["smd"].iloc[j], bt.loc["c", "Std. Mean Diff."],
                                       rtol=1e-10)
