"""E-values and Rosenbaum bounds."""

import numpy as np
import pytest
from scipy import stats

from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.sensitivity import (
    e_value,
    e_value_risk_difference,
    rosenbaum_mcnemar,
    rosenbaum_signed_rank,
)


def test_e_value_published_example():
    # VanderWeele & Ding (2017): RR 3.9 (95% CI 1.8-8.7) -> E = 7.26, CI 3.00
    out = e_value(3.9, 1.8, 8.7)
    assert out["e_value"] == pytest.approx(7.26, abs=0.01)
    assert out["e_value_ci"] == pytest.approx(3.00, abs=0.01)
    assert e_value(0.5)["e_value"] == pytest.approx(e_value(2.0)["e_value"])
    assert e_value(1.3, 0.9, 1.8)["e_value_ci"] == 1.0
    with pytest.raises(ConfigurationError):
        e_value(-1.0)


def test_e_value_risk_difference_conversion():
    out = e_value_risk_difference(0.05, 0.10)
    assert out["risk_ratio"] == pytest.approx(1.5)
    assert out["e_value"] == pytest.approx(1.5 + np.sqrt(1.5 * 0.5))


def test_mcnemar_gamma_one_is_binomial_test():
    rng = np.random.default_rng(0)
    yt = rng.integers(0, 2, 300)
    yc = (rng.random(300) < 0.4).astype(int)
    tab = rosenbaum_mcnemar(yt, yc, gammas=[1.0, 2.0])
    d, t = tab.attrs["discordant"], tab.attrs["favouring_treated"]
    exact = stats.binomtest(t, d, 0.5, alternative="greater").pvalue
    assert tab.p_upper.iloc[0] == pytest.approx(exact)
    assert tab.p_lower.iloc[0] == pytest.approx(exact)
    assert tab.p_upper.iloc[1] > tab.p_upper.iloc[0] > tab.p_lower.iloc[1]
    with pytest.raises(DataValidationError, match="binary"):
        rosenbaum_mcnemar([0, 2], [1, 0])


def test_signed_rank_gamma_one_matches_scipy():
    rng = np.random.default_rng(1)
    dlt = rng.normal(0.2, 1, 200)
    tab = rosenbaum_signed_rank(dlt, gammas=[1.0, 1.5])
    ref = stats.wilcoxon(dlt, alternative="greater", correction=False, method="approx").pvalue
    assert tab.p_upper.iloc[0] == pytest.approx(ref, rel=1e-6)
    assert tab.p_upper.iloc[1] > tab.p_upper.iloc[0]
