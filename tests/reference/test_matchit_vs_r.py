"""Matching and balance vs MatchIt 4.7.2 and Matching 4.10.8 on lalonde (R 4.2.2).

Entries: ``lalonde.matchit.nn_1to1_noreplace``, ``nn_1to1_replace``, ``nn_1to3_replace``,
``lalonde.ai_ps_m1_att`` and ``lalonde.balance_unmatched`` of ``reference.json``. MatchIt
matches on the PS (``distance = "glm"``, probability scale), so ``distance="ps"``.

Tolerances: estimates, weights, SEs and balance statistics 1e-6 relative (with an absolute
floor of 1e-10 for statistics that are exactly 0 in R); match matrices exactly. Each test runs
twice: with R's fitted PS (``ps`` of ``lalonde.ps_logit``) and with our own logistic fit.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.diagnostics import balance_table, effective_sample_size
from mentor_impact.matching import AbadieImbens, MatchedSetRegression, NearestNeighborMatching

sys.path.insert(0, str(Path(__file__).parent))
from _lalonde_ref import lalonde, values

BAL_COLS = ["age", "educ", "raceblack", "racehispan", "racewhite", "married", "nodegree",
            "re74", "re75"]
CASES = {
    "lalonde.matchit.nn_1to1_noreplace": dict(k=1, replace=False),
    "lalonde.matchit.nn_1to1_replace": dict(k=1, replace=True),
    "lalonde.matchit.nn_1to3_replace": dict(k=3, replace=True),
}


@pytest.fixture(scope="module")
def data() -> EvaluationData:
    return EvaluationData.from_frame(
        lalonde(), treatment="treat", outcomes="re78",
        covariates=["age", "educ", "race", "married", "nodegree", "re74", "re75"],
    )


@pytest.fixture(scope="module", params=["r_ps", "own_ps"])
def ps(request) -> np.ndarray | None:
    return np.array(values("lalonde.ps_logit")["ps"]) if request.param == "r_ps" else None


def _fit(data, ps, key, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected on these data
        return NearestNeighborMatching(distance="ps", **CASES[key]).fit(
            data, outcome="re78", ps=ps, **kw
        )


@pytest.mark.parametrize("key", list(CASES))
def test_match_matrix(data, ps, key):
    res = _fit(data, ps, key)
    ids = lalonde()["id"].to_numpy()
    got = {ids[f]: [ids[c] for c in cs] for f, cs in res.extra["matches"].as_dict().items()}
    ref = values(key)["match_matrix"]
    assert set(got) == set(ref)
    for t, cs in ref.items():
        if CASES[key]["k"] == 1:
            assert got[t] == cs, t
        else:  # MatchIt orders exact-distance ties differently within a row for ratio > 1
            assert sorted(got[t]) == sorted(cs), t


@pytest.mark.parametrize("key", list(CASES))
def test_att_weights_means(data, ps, key):
    res = _fit(data, ps, key)
    ref = values(key)
    np.testing.assert_allclose(res.estimate[0], ref["att"], rtol=1e-6)
    np.testing.assert_allclose(res.weights, ref["weights"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.treated_mean[0], ref["mean_treated"], rtol=1e-9)
    np.testing.assert_allclose(res.counterfactual_mean[0], ref["mean_control_weighted"],
                               rtol=1e-6)


@pytest.mark.parametrize("key", list(CASES))
def test_sample_sizes_and_ess(data, ps, key):
    res = _fit(data, ps, key)
    nn = values(key)["n"]
    assert res.n_treated == nn["Matched"]["Treated"]
    assert res.n_control == nn["Matched"]["Control"]
    D = lalonde()["treat"].to_numpy() == 1
    np.testing.assert_allclose(effective_sample_size(res.weights[~D]),
                               nn["Matched (ESS)"]["Control"], rtol=1e-9)
    np.testing.assert_allclose(res.extra["ess"]["control"], nn["Matched (ESS)"]["Control"],
                               rtol=1e-9)


@pytest.mark.parametrize("hc1", [True, False])
@pytest.mark.parametrize("key", list(CASES))
def test_matched_set_cluster_se(data, ps, key, hc1):
    """vcovCL(cluster = ~subclass) without, ~subclass + unit_id (get_matches) with replacement."""
    res = _fit(data, ps, key, cov=MatchedSetRegression(hc1=hc1))
    ref = values(key)
    name = "se_cluster_subclass" + ("" if not CASES[key]["replace"] else "_unit")
    name += "_HC1" if hc1 else "_HC0"
    np.testing.assert_allclose(res.std_errors.iloc[0], ref[name], rtol=1e-6)


@pytest.mark.parametrize("key", list(CASES))
def test_balance_matched(data, ps, key):
    res = _fit(data, ps, key)
    df = lalonde()
    psr = np.array(values("lalonde.ps_logit")["ps"])
    got = balance_table(df[BAL_COLS], df["treat"], weights=res.weights, distance=psr,
                        matches=res.extra["matches"])
    ref = pd.DataFrame(values(key)["balance_matched"]).T.astype(float).loc[got.index]
    np.testing.assert_allclose(got.to_numpy(), ref[got.columns].to_numpy(), rtol=1e-6,
                               atol=1e-10)


def test_balance_unmatched():
    df = lalonde()
    psr = np.array(values("lalonde.ps_logit")["ps"])
    got = balance_table(df[BAL_COLS], df["treat"], distance=psr)
    ref = pd.DataFrame(values("lalonde.balance_unmatched")["sum_all"]).T.astype(float)
    ref = ref.loc[got.index, got.columns]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-12)


def test_abadie_imbens_matching_package(data, ps):
    """Matching::Match(ties = TRUE, distance.tolerance = 0), AI SE with Var.calc = 0."""
    ref = values("lalonde.ai_ps_m1_att")
    res = NearestNeighborMatching(distance="ps", replace=True, ties="all").fit(
        data, outcome="re78", ps=ps, cov=AbadieImbens(n_neighbors=0)
    )
    np.testing.assert_allclose(res.estimate[0], ref["est"], rtol=1e-6)
    np.testing.assert_allclose(res.std_errors.iloc[0], ref["se_ai"], rtol=1e-6)
    assert res.extra["matches"].matched.size == ref["n_match_rows"]
    assert res.n_treated == ref["wnobs"]
