"""RiskSetDesign on the known-truth simulator: treated rows, truth helper, bias of naive."""

from __future__ import annotations

import numpy as np
import pytest

from mentor_impact.datasets.simulate import simulate_mentor_study
from mentor_impact.design.risk_set import RiskSetDesign, true_effects
from mentor_impact.exceptions import DataValidationError

# every term of the simulator's start hazard (docs/simulator.md), as design covariates
HAZARD_COLUMNS = [
    "female", "immigrant", "educationvocational", "educationhigher", "psychiatric_history",
    "regionzealand", "regionsouth", "regioncentral", "regionnorth", "age", "lag1_activation",
    "elapsed_benefit_weeks_capped", "share_employed_y1", "year2013", "year2014",
]


@pytest.fixture(scope="module")
def small():
    study = simulate_mentor_study(n_persons=3_000, seed=2)
    data = RiskSetDesign(horizon=156, controls_per_treated=5).build(
        study.register, study.spells, study.baseline, seed=1)
    return study, data


def test_treated_rows_are_the_simulators_treated_starts(small):
    study, data = small
    po = study.potential_outcomes
    tr = data.treatment == 1
    got = sorted(zip(data.cluster[tr].tolist(), data.start_week[tr].tolist(), strict=True))
    exp = sorted(zip(po.rows.tolist(), po.start_cols.tolist(), strict=True))
    assert got == exp and len(exp) > 100
    flow = data.sample_flow
    assert int(flow.loc[flow.item == "treated starts kept", "count"].iloc[0]) == len(exp)
    assert set(HAZARD_COLUMNS) <= set(data.covariate_names)


def test_true_effects_over_kept_rows(small):
    study, data = small
    tr = true_effects(study, data, "employed", "A")
    ref = study.truth.query("outcome == 'employed' and estimand == 'A'")
    np.testing.assert_allclose(tr["effect"].to_numpy(), ref["effect"].to_numpy(), rtol=1e-12)
    # a subset of the treated rows gives the truth of exactly those rows
    sub = data.subset((data.treatment == 0) | (data.frame["activity"] == "passive").to_numpy())
    part = true_effects(study, sub, "employed", "B")
    m = sub.treatment == 1
    direct = study.truth_for(sub.cluster[m], sub.start_week[m], "employed", "B")
    np.testing.assert_allclose(part["effect"], direct["effect"])
    assert part.shape[0] == 157


def test_true_effects_needs_a_design(small):
    from mentor_impact.design.evaluation_data import EvaluationData

    study, _ = small
    flat = EvaluationData(X=np.zeros((2, 0)), covariate_names=(), treatment=np.array([0, 1]))
    with pytest.raises(DataValidationError, match="expected a risk-set design"):
        true_effects(study, flat, "employed")


def _logit(x, y, w, iters=30):
    """Weighted logistic MLE by Newton (intercept first)."""
    z = np.column_stack([np.ones(len(y)), x])
    b = np.zeros(z.shape[1])
    b[0] = np.log(y.mean() / (1 - y.mean()))
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ b)))
        g = z.T @ (w * (y - p))
        h = (z * (w * p * (1 - p))[:, None]).T @ z
        step = np.linalg.solve(h, g)
        b += step
        if np.abs(step).max() < 1e-10:
            break
    return b, np.linalg.inv(h)


@pytest.mark.slow
def test_naive_is_biased_and_the_hazard_covariates_remove_it():
    study = simulate_mentor_study(n_persons=20_000, seed=3)
    data = RiskSetDesign(horizon=156, controls_per_treated=10).build(
        study.register, study.spells, study.baseline, seed=1)
    d = data.treatment == 1
    w = data.weight
    x = np.column_stack([data.column(c) for c in HAZARD_COLUMNS])
    b, cov = _logit(x, d.astype(float), w)
    # the weekly start hazard is recovered (selection on observables by construction):
    # the design exposes every term the simulator uses
    se = np.sqrt(np.diag(cov))
    lag1 = 1 + HAZARD_COLUMNS.index("lag1_activation")
    emp = 1 + HAZARD_COLUMNS.index("share_employed_y1")
    assert abs(b[lag1] - 0.4) < 4 * se[lag1]
    assert abs(b[emp] + 1.5) < 4 * se[emp]
    # ATT weights within risk sets (Hajek, normalised per start week)
    e = 1 / (1 + np.exp(-(np.column_stack([np.ones(len(d)), x]) @ b)))
    s = data.start_week
    wc = np.where(d, 0.0, w * e / (1 - e))
    n1 = np.bincount(s, weights=d.astype(float))
    sc = np.bincount(s, weights=wc)
    wn = np.where(d, 1.0, wc * n1[s] / np.maximum(sc[s], 1e-300))
    truth = true_effects(study, data, "employed", "A")["effect"].to_numpy()
    y = data.outcome("employed").astype(float)
    naive = y[d].mean(0) - (w[~d] @ y[~d]) / w[~d].sum()
    ipw = y[d].mean(0) - (wn[~d] @ y[~d]) / wn[~d].sum()
    acc = slice(1, 157)
    bias_naive = abs(naive[acc].sum() - truth[acc].sum())
    bias_ipw = abs(ipw[acc].sum() - truth[acc].sum())
    assert bias_naive > 1.0  # weeks of employment over three years: visibly biased
    assert bias_ipw < 0.5 * bias_naive
