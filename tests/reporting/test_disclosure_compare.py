"""Disclosure control and the reproducibility comparison."""

import json

import numpy as np
import pandas as pd

from mentor_impact.reporting.compare import compare_results, flatten_estimates
from mentor_impact.reporting.disclosure import is_count_column, suppress_counts
from mentor_impact.results import make_effect_results


def test_small_counts_are_suppressed_and_flagged():
    t = pd.DataFrame({"group": list("abcd"), "n": [0, 3, 5, 100], "share": [0.0, 0.1, 0.2, 0.7],
                      "n_treated": [4, 50, 1, 9]})
    out = suppress_counts(t, min_cell=5)
    assert out["suppressed"].tolist() == [True, True, True, False]
    assert np.isnan(out.loc[1, "n"]) and out.loc[0, "n"] == 0 and out.loc[2, "n"] == 5
    assert np.isnan(out.loc[0, "n_treated"]) and np.isnan(out.loc[2, "n_treated"])
    assert out.loc[1, "share"] == 0.1  # shares are not counts
    assert out.attrs["n_suppressed"] == 3
    assert is_count_column("n_control") and not is_count_column("estimate")


def _doc(shift=0.0):
    r = make_effect_results(estimator="IPW", estimand="ATT", outcome="employed",
                            estimate=np.array([0.01, 0.02]) + shift, cov=np.eye(2) * 1e-4,
                            tau=[0, 1])
    return {"effects": {"ipw": {"employed": r.to_dict()}}, "versions": {"numpy": "x"}}


def test_compare_identical_and_different(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc()))
    b.write_text(json.dumps(_doc()))
    df = compare_results(a, b)
    assert len(df) == 4 and df["match"].all()
    b.write_text(json.dumps(_doc(shift=1e-3)))
    df = compare_results(a, b, rtol=1e-6)
    assert (~df["match"]).sum() == 2
    assert compare_results(a, b, atol=1e-2)["match"].all()


def test_compare_missing_entry_is_mismatch():
    da, db = _doc(), _doc()
    del db["effects"]["ipw"]
    df = compare_results(da, db)
    assert not df["match"].any()
    assert len(flatten_estimates(da)) == 4


def test_count_column_names():
    for name in ("n", "n_treated", "n_risk", "count", "count_2013", "starters_2012", "events"):
        assert is_count_column(name), name
    for name in ("counterfactual_mean", "estimate", "nodegree", "share", "rowsum_x"):
        assert not is_count_column(name), name
