"""Simulation checks that the weighted KM and RMST variances are valid (slow).

lifelines' RMST variance is known to be wrong; ours is checked here against the Monte Carlo
spread of the estimates over independent replications with IPW (ATT) weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import KaplanMeier


def one_sample(n: int, rng: np.random.Generator) -> pd.DataFrame:
    x = rng.integers(0, 2, n)
    e = 0.3 + 0.4 * x
    rate = 0.02 * (1 + x)
    t = np.ceil(rng.exponential(1 / rate))
    c = rng.integers(40, 200, n).astype(float)
    # control arm reweighted to the treated covariate distribution (ATT weights)
    return pd.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(int), "w": e / (1 - e)})


# weighted share of x = 1: w1 / (w0 + w1) with w = e / (1 - e) and P(x = 1) = 1/2
P1 = (0.7 / 0.3) / (0.7 / 0.3 + 0.3 / 0.7)
TRUE_S52 = (1 - P1) * np.exp(-0.02 * 52) + P1 * np.exp(-0.04 * 52)
TRUE_RMST104 = float(sum((1 - P1) * np.exp(-0.02 * k) + P1 * np.exp(-0.04 * k) for k in range(104)))


@pytest.mark.slow
@pytest.mark.parametrize("variance", ["ij", "xie-liu"])
def test_weighted_km_and_rmst_variances_match_monte_carlo(variance) -> None:
    rng = np.random.default_rng(20261128)
    reps, n = 1000, 500
    s_hat, s_se, r_hat, r_se = [], [], [], []
    for _ in range(reps):
        df = one_sample(n, rng)
        res = KaplanMeier(variance=variance).fit(df, duration="t", event="e", weights="w")
        at = res.at([52])
        s_hat.append(at.surv.iloc[0])
        s_se.append(at.std_err.iloc[0])
        rm = res.rmst(104)
        r_hat.append(rm.rmst.iloc[0])
        r_se.append(rm.std_err.iloc[0])
    s_hat, s_se, r_hat, r_se = map(np.asarray, (s_hat, s_se, r_hat, r_se))
    # unbiased (within Monte Carlo error)
    assert abs(s_hat.mean() - TRUE_S52) < 3 * s_hat.std() / np.sqrt(reps)
    assert abs(r_hat.mean() - TRUE_RMST104) < 3 * r_hat.std() / np.sqrt(reps)
    # mean estimated SE close to the Monte Carlo SD (MC error of an SD with 1000 reps ~ 2%)
    print(
        f"{variance}: SE/SD S(52) {s_se.mean() / s_hat.std():.3f}, "
        f"RMST(104) {r_se.mean() / r_hat.std():.3f}"
    )
    assert s_se.mean() / s_hat.std() == pytest.approx(1.0, abs=0.08)
    assert r_se.mean() / r_hat.std() == pytest.approx(1.0, abs=0.08)
    # 95% coverage
    cov_s = np.mean(np.abs(s_hat - TRUE_S52) <= 1.96 * s_se)
    cov_r = np.mean(np.abs(r_hat - TRUE_RMST104) <= 1.96 * r_se)
    print(f"{variance}: coverage S(52) {cov_s:.3f}, RMST(104) {cov_r:.3f}")
    assert 0.93 <= cov_s <= 0.97
    assert 0.93 <= cov_r <= 0.97


@pytest.mark.slow
def test_clustered_variance_with_repeated_persons_matches_monte_carlo() -> None:
    """Each person contributes two rows (e.g. two risk-set starts): naive IJ is too small."""
    rng = np.random.default_rng(7)
    reps, n = 1000, 300
    s_hat, se_cl, se_row = [], [], []
    for _ in range(reps):
        df = one_sample(n, rng)
        df = pd.concat([df, df.assign(t=np.maximum(df.t - 1, 1))], ignore_index=True)
        df["person"] = np.tile(np.arange(n), 2)
        a = KaplanMeier(variance="ij").fit(
            df, duration="t", event="e", weights="w", cluster="person"
        )
        b = KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="w")
        s_hat.append(a.at([52]).surv.iloc[0])
        se_cl.append(a.at([52]).std_err.iloc[0])
        se_row.append(b.at([52]).std_err.iloc[0])
    sd = np.std(s_hat)
    print(f"clustered SE/SD {np.mean(se_cl) / sd:.3f}, row-wise SE/SD {np.mean(se_row) / sd:.3f}")
    assert np.mean(se_cl) / sd == pytest.approx(1.0, abs=0.08)
    assert np.mean(se_row) / sd < 0.85
