"""Estimand B on the design's weeks at risk (re-entry counted, METHODS §5.4)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mentor_impact as mi
from mentor_impact.weighting import IPW


@pytest.fixture(scope="module")
def data():
    study = mi.datasets.simulate_mentor_study(n_persons=6000, seed=1000)
    return mi.RiskSetDesign(outcomes=["employed"]).build(
        study.register, study.spells, study.baseline, seed=5)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def test_design_marks_weeks_at_risk_with_reentry(data):
    at = data.at_risk_weeks()
    assert at.shape == (data.n, data.tau.size)
    assert not at[:, 0].any()
    # some controls leave the target states and come back within the horizon
    d = np.diff(at[:, 1:].astype(np.int8), axis=1)
    assert ((d == -1).any(axis=1) & (d == 1).any(axis=1)).sum() > 10
    # rows keep their indicators when the data are subset
    mask = np.arange(data.n) % 3 == 0
    np.testing.assert_array_equal(data.subset(mask).at_risk, data.at_risk[mask])


def test_b_weights_multiply_over_the_weeks_at_risk(data):
    res = _quiet(lambda: IPW().fit(data, outcome="employed", dynamic="B"))
    assert res.extra["weeks_at_risk"].startswith("design at_risk")
    e = res.extra["ps"]
    cnt = np.cumsum(data.at_risk_weeks(), axis=1)
    surv = np.exp(cnt * np.log1p(-e)[:, None])  # P(no start over the weeks at risk)
    surv[data.treatment > 0] = 1.0
    given = _quiet(lambda: IPW().fit(data, outcome="employed", dynamic="B", hazard=surv))
    np.testing.assert_allclose(res.estimate, given.estimate, rtol=1e-10, atol=1e-13)
    # a scalar outcome at a horizon week equals the curve there
    scal = _quiet(lambda: IPW().fit(data, outcome="employed_w52", dynamic="B", horizon=52))
    np.testing.assert_allclose(scal.estimate[0], res.estimate[52], rtol=1e-10)
    # the old rule (weeks until first leaving eligibility) is still available explicitly
    old = _quiet(lambda: IPW().fit(data, outcome="employed", dynamic="B",
                                   eligible_weeks="eligible_until"))
    assert old.extra["weeks_at_risk"] == "eligible_until"
    assert np.abs(old.estimate - res.estimate).max() > 1e-4


def test_horizon_outside_tau_is_refused(data):
    with pytest.raises(mi.ConfigurationError, match="horizon"):
        _quiet(lambda: IPW().fit(data, outcome="employed_w52", dynamic="B", horizon=500))
