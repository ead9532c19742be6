"""Tests of the results protocol (EffectResults)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mentor_impact.exceptions import ConfigurationError, EstimationError
from mentor_impact.inference import IID, Clustered
from mentor_impact.results import EffectResults, make_effect_results


def _mean_results(y, cluster=None):
    phi = ((y - y.mean()) / y.size)[:, None]
    return make_effect_results(
        estimator="mean", estimand="ATE", outcome="y", estimate=[y.mean()], influence=phi,
        cluster=cluster, cov=IID(),
    )


def test_iid_se_is_plugin_variance_of_mean():
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    res = _mean_results(y)
    assert res.std_errors.iloc[0] == pytest.approx(np.sqrt(y.var(ddof=0) / y.size))
    ci = res.conf_int(0.9)
    z = stats.norm.ppf(0.95)
    assert ci["lower"].iloc[0] == pytest.approx(y.mean() - z * res.std_errors.iloc[0])
    assert res.pvalues.iloc[0] == pytest.approx(2 * stats.norm.sf(abs(res.tstats.iloc[0])))


def test_with_cov_clustered_matches_hand_computation():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    g = np.repeat(np.arange(10), 4)
    res = _mean_results(y, cluster=g).with_cov(Clustered("person"))
    phi = (y - y.mean()) / y.size
    sums = np.array([phi[g == k].sum() for k in range(10)])
    assert res.cov[0, 0] == pytest.approx(10 / 9 * (sums**2).sum())
    assert res.cov_type == "clustered(person)"
    # singleton clusters without small-sample factor = IID
    res2 = _mean_results(y, cluster=np.arange(40)).with_cov(Clustered(small_sample=False))
    assert res2.cov[0, 0] == pytest.approx(_mean_results(y).cov[0, 0])


def test_with_cov_by_frame_column():
    y = np.arange(6.0)
    phi = ((y - y.mean()) / 6)[:, None]
    frame = pd.DataFrame({"region": [0, 0, 1, 1, 2, 2]})
    res = make_effect_results(estimator="m", estimand="ATE", outcome="y", estimate=[y.mean()],
                              influence=phi, frame=frame)
    v = res.with_cov(Clustered("region", small_sample=False)).cov[0, 0]
    sums = np.array([phi[frame.region == k, 0].sum() for k in range(3)])
    assert v == pytest.approx((sums**2).sum())
    with pytest.raises(ConfigurationError, match="municipality"):
        res.with_cov(Clustered("municipality"))


def test_with_cov_without_influence_raises():
    res = make_effect_results(estimator="m", estimand="ATT", outcome="y", estimate=[1.0],
                              cov=[[0.25]], cov_type="abadie-imbens")
    assert res.std_errors.iloc[0] == pytest.approx(0.5)
    with pytest.raises(EstimationError, match="influence"):
        res.with_cov(IID())


def _curve(k=6, n=200, seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(n, k)) / n
    return make_effect_results(estimator="c", estimand="ATT", outcome="employed",
                               estimate=np.linspace(-0.02, 0.03, k), influence=phi,
                               tau=np.arange(k), cluster=np.arange(n) // 2,
                               treated_mean=np.full(k, 0.2), counterfactual_mean=np.full(k, 0.19))


def test_accumulated_and_at_are_linear_combinations():
    res = _curve()
    acc = res.accumulated(1, 3)
    assert acc.estimate[0] == pytest.approx(res.estimate[1:4].sum())
    assert acc.cov[0, 0] == pytest.approx(res.cov[1:4, 1:4].sum())
    assert acc.targets == ("weeks 1-3",)
    sub = res.at([4, 0])
    assert list(sub.tau) == [4, 0]
    assert sub.estimate[0] == res.estimate[4]
    assert sub.std_errors.iloc[1] == pytest.approx(res.std_errors.iloc[0])
    with pytest.raises(ConfigurationError, match="not estimated"):
        res.at([99])
    with pytest.raises(ConfigurationError, match=r"1\.\.9"):
        res.accumulated(1, 9)


def test_uniform_band_wider_than_pointwise_and_reproducible():
    res = _curve(k=20)
    band = res.uniform_band(0.95, seed=3)
    ci = res.conf_int(0.95)
    assert (band["upper"] > ci["upper"]).all()
    assert band.attrs["critical_value"] > stats.norm.ppf(0.975)
    band2 = res.uniform_band(0.95, seed=3)
    pd.testing.assert_frame_equal(band, band2)


def test_uniform_band_single_target_equals_pointwise():
    res = _mean_results(np.random.default_rng(0).normal(size=500))
    c = res.uniform_band(0.95, n_draws=200_000, seed=1).attrs["critical_value"]
    assert c == pytest.approx(stats.norm.ppf(0.975), abs=0.02)


def test_to_frame_summary_json_roundtrip():
    res = _curve(k=157)
    df = res.to_frame()
    assert list(df.columns[:5]) == ["outcome", "estimator", "estimand", "target", "tau"]
    assert len(df) == 157
    text = str(res.summary())
    assert "tau=156" in text and "tau=52" in text and "tau=7 " not in text
    d = json.loads(res.to_json())
    assert d["estimate"] == pytest.approx(res.estimate.tolist())
    assert "numpy" in d["versions"] and "mentor_impact" in d["versions"]
    assert "<table" in res._repr_html_()
    assert "tabular" in res.summary().as_latex()


def test_frozen():
    res = _curve()
    with pytest.raises(AttributeError):
        res.estimator = "other"  # type: ignore[misc]
    assert isinstance(res, EffectResults)


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = _curve(k=10).plot(ax=ax)
    assert out is ax
    _, ax2 = plt.subplots()
    assert _mean_results(np.arange(5.0)).plot(ax=ax2) is ax2
    plt.close("all")


def test_bad_shapes():
    with pytest.raises(ConfigurationError, match="targets"):
        make_effect_results(estimator="m", estimand="ATT", outcome="y", estimate=[1.0, 2.0],
                            targets=("a",), cov=np.eye(2))
    with pytest.raises(ConfigurationError, match="columns"):
        make_effect_results(estimator="m", estimand="ATT", outcome="y", estimate=[1.0, 2.0],
                            influence=np.zeros((5, 3)))
    with pytest.raises(ConfigurationError, match="level"):
        _mean_results(np.arange(3.0)).conf_int(1.5)
