"""Coverage of 95 % intervals by simulation (slow)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mentor_impact.weighting import IPW, multiplier_band

from ._sim import simulate, truth

COEF = np.array([-2.8, 0.5, -0.3])  # weekly start hazards around 6 %
TAUS = (0, 4, 12)


@pytest.mark.slow
def test_pointwise_coverage_estimands_a_and_b():
    """95 % intervals (person-clustered stacked sandwich) cover the truth in 93-97 %."""
    ta, tb = truth(taus=TAUS, coef=COEF)
    reps = 1000
    hits = {"A": np.zeros((reps, 3), bool), "B": np.zeros((reps, 3), bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(reps):
            d = simulate(n_persons=2000, seed=1000 + r, coef=COEF, taus=TAUS, control_keep=0.3)
            both = IPW().fit_ab(d, outcome="y")
            for key, tr in (("A", ta), ("B", tb)):
                ci = both[key].conf_int()
                hits[key][r] = (ci["lower"].to_numpy() <= tr) & (tr <= ci["upper"].to_numpy())
    for key in ("A", "B"):
        cov = hits[key].mean(axis=0)
        assert np.all((cov >= 0.93) & (cov <= 0.97)), (key, cov)


@pytest.mark.slow
def test_uniform_band_coverage_estimand_a():
    ta, _ = truth(taus=TAUS, coef=COEF)
    reps = 300
    hit = np.zeros(reps, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(reps):
            d = simulate(n_persons=2000, seed=5000 + r, coef=COEF, taus=TAUS, control_keep=0.3)
            band = multiplier_band(IPW().fit(d, outcome="y"), n_draws=500, seed=r)
            hit[r] = bool(np.all((band["lower"] <= ta) & (ta <= band["upper"])))
    assert 0.91 <= hit.mean() <= 0.99
