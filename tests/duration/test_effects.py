"""Treatment effects on durations (weighted KM / AJ differences, ΔRMST) and their SEs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import KaplanMeier
from mentor_impact.duration.effects import survival_effect
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.inference import IID


def confounded(n: int, seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Weekly durations with confounding by x; ATT weights e/(1-e) for controls.

    T ~ Exp(0.02 (1 + x) hr^d), administrative censoring at 200 weeks, durations = ceil(T).
    True treated-population curves: S_a(t) = sum_x P(x | d = 1) exp(-0.02 (1 + x) hr^a t).
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    e = 0.3 + 0.4 * x
    d = (rng.random(n) < e).astype(int)
    hr = 0.7
    rate = 0.02 * (1 + x) * np.where(d == 1, hr, 1.0)
    t = np.ceil(rng.exponential(1 / rate))
    c = rng.integers(60, 200, n).astype(float)
    df = pd.DataFrame(
        {
            "t": np.minimum(t, c),
            "e": (t <= c).astype(int),
            "d": d,
            "w": np.where(d == 1, 1.0, e / (1 - e)),
            "id": np.arange(n),
        }
    )
    px1 = 0.7  # P(x = 1 | d = 1)
    grid = np.arange(0, 400)

    def s(a: int) -> np.ndarray:
        h = hr**a
        return (1 - px1) * np.exp(-0.02 * h * grid) + px1 * np.exp(-0.04 * h * grid)

    return df, {"S1": s(1), "S0": s(0)}


def test_effect_estimates_equal_curve_differences() -> None:
    df, _ = confounded(1500, 1)
    res = survival_effect(df, duration="t", event="e", treatment="d", weights="w")
    km = KaplanMeier().fit(df, duration="t", event="e", weights="w", group="d")
    at = km.at([26, 52, 104, 156])
    s1 = at[at.arm == "d=1"].surv.to_numpy()
    s0 = at[at.arm == "d=0"].surv.to_numpy()
    np.testing.assert_allclose(res.estimate[:4], s1 - s0, rtol=1e-12)
    rm = km.rmst(156)
    assert res.estimate[4] == pytest.approx(rm.loc["d=1", "rmst"] - rm.loc["d=0", "rmst"])
    assert res.targets == (
        "S1-S0 at 26",
        "S1-S0 at 52",
        "S1-S0 at 104",
        "S1-S0 at 156",
        "dRMST(156)",
    )
    # IID covariance of the IJ influence = the IJ variances of the two arms added
    ij = KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="w", group="d")
    at = ij.at([52])
    want = np.hypot(*at.std_err.to_numpy())
    assert res.std_errors.iloc[1] == pytest.approx(want, rel=1e-10)
    d = ij.rmst_difference(156, arms=("d=1", "d=0"))
    assert res.std_errors.iloc[4] == pytest.approx(d["std_err"], rel=1e-10)


def test_effects_recover_truth() -> None:
    df, truth = confounded(6000, 2)
    res = survival_effect(
        df,
        duration="t",
        event="e",
        treatment="d",
        weights="w",
        times=(26, 52, 104),
        rmst_horizon=104,
    )
    true = [truth["S1"][t] - truth["S0"][t] for t in (26, 52, 104)]
    true.append(truth["S1"][:104].sum() - truth["S0"][:104].sum())
    z = (res.estimate - np.asarray(true)) / res.std_errors.to_numpy()
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(res.counterfactual_mean[:3], truth["S0"][[26, 52, 104]], atol=0.03)


def test_clustered_person_in_both_arms() -> None:
    """A person appearing as control and later as treated: cluster sums across arms."""
    df, _ = confounded(800, 3)
    rng = np.random.default_rng(0)
    df["person"] = rng.integers(0, 500, len(df))
    res = survival_effect(df, duration="t", event="e", treatment="d", weights="w", cluster="person")
    assert res.cov_type.lower().startswith("clustered")
    phi = res.influence
    codes = pd.factorize(df.person)[0]
    G = codes.max() + 1
    sums = np.stack(
        [np.bincount(codes, weights=phi[:, j], minlength=G) for j in range(phi.shape[1])], axis=1
    )
    want = G / (G - 1) * sums.T @ sums
    np.testing.assert_allclose(res.cov, want, rtol=1e-10)
    iid = res.with_cov(IID())
    np.testing.assert_allclose(np.diag(iid.cov), (phi**2).sum(axis=0), rtol=1e-10)


def test_cif_effect_single_cause_is_minus_survival_effect() -> None:
    df, _ = confounded(700, 4)
    a = survival_effect(df, duration="t", event="e", treatment="d", weights="w", rmst_horizon=None)
    b = survival_effect(df, duration="t", event="e", treatment="d", weights="w", cause="1")
    np.testing.assert_allclose(a.estimate, -b.estimate, atol=1e-12)
    np.testing.assert_allclose(a.std_errors.to_numpy(), b.std_errors.to_numpy(), rtol=1e-8)
    assert b.targets[0] == "F1-F0 at 26"


def test_row_order_changes_nothing() -> None:
    df, _ = confounded(500, 5)
    shuf = df.sample(frac=1, random_state=1)
    a = survival_effect(df, duration="t", event="e", treatment="d", weights="w")
    b = survival_effect(shuf, duration="t", event="e", treatment="d", weights="w")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-12)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-10)


def test_evaluation_data_input() -> None:
    from mentor_impact.design.evaluation_data import EvaluationData

    df, _ = confounded(400, 6)
    df["y"] = 0.0
    data = EvaluationData.from_frame(
        df,
        treatment="d",
        outcomes="y",
        covariates=[],
        weights="w",
        cluster="id",
        durations={"first_self_support": ("t", "e")},
    )
    a = survival_effect(data)
    b = survival_effect(df, duration="t", event="e", treatment="d", weights="w", cluster="id")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-12)
    km = KaplanMeier().fit(data)
    assert km.arms == ("treatment=0", "treatment=1")
    assert km.variance == "ij"


def test_bad_input() -> None:
    df, _ = confounded(100, 7)
    bad = df.assign(d=np.where(np.arange(len(df)) == 3, 2, df.d))
    with pytest.raises(DataValidationError, match=r"treatment: expected 0/1; found 1 .*rows 3"):
        survival_effect(bad, duration="t", event="e", treatment="d")
    with pytest.raises(DataValidationError, match="only one arm"):
        survival_effect(df.assign(d=1), duration="t", event="e", treatment="d")
    with pytest.raises(ConfigurationError, match="event, treatment"):
        survival_effect(df, duration="t")
    with pytest.raises(ConfigurationError, match="cause: expected one of"):
        survival_effect(df, duration="t", event="e", treatment="d", cause="nope")
