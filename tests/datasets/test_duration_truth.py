"""True duration effects from the simulator's potential paths, and their recovery by IPW."""

import numpy as np
import pytest

import mentor_impact as mi
from mentor_impact.datasets.duration_truth import potential_durations, true_duration_effects
from mentor_impact.weighting import fit_propensity


@pytest.fixture(scope="module")
def study_and_data():
    study = mi.datasets.simulate_mentor_study(n_persons=12_000, seed=5)
    data = mi.RiskSetDesign().build(study.register, study.spells, study.baseline, seed=5)
    return study, data


def test_treated_potential_durations_equal_the_design(study_and_data):
    study, data = study_and_data
    tr = data.treatment == 1
    pot = potential_durations(study, data.cluster[tr], data.start_week[tr])
    dur = data.durations["first_self_support"]
    np.testing.assert_array_equal(pot["treated"][0], dur.time[tr])
    np.testing.assert_array_equal(pot["treated"][1], dur.event[tr])


def test_truth_labels_match_survival_effect(study_and_data):
    study, data = study_and_data
    truth = true_duration_effects(study, data, estimand="B")
    res = mi.survival_effect(data, duration="first_self_support")
    assert list(truth["target"]) == list(res.targets)
    assert np.allclose(truth["truth"], truth["treated"] - truth["counterfactual"])


@pytest.mark.slow
def test_ipw_weighted_survival_effects_recover_the_truth(study_and_data):
    study, data = study_and_data
    pf = fit_propensity(data)
    w = mi.IPW(propensity=pf).fit(data, outcome="employed_w26").weights
    res = mi.survival_effect(data, duration="first_self_support", weights=w)
    truth = true_duration_effects(study, data, estimand="A")["truth"].to_numpy()
    z = (res.estimate - truth) / res.std_errors.to_numpy()
    assert np.all(np.abs(z) < 3.5), z
