from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import EvaluationData
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.matching import NearestNeighborMatching
from mentor_impact.propensity import common_support, crump_alpha, trim


def _loop_common_support(ps, D, cells):
    keep = np.ones(len(ps), dtype=bool)
    for i in range(len(ps)):
        if D[i] == 1:
            pc = [ps[j] for j in range(len(ps)) if D[j] == 0 and cells[j] == cells[i]]
            keep[i] = bool(pc) and min(pc) <= ps[i] <= max(pc)
    return keep


def test_common_support_equals_loop():
    rng = np.random.default_rng(0)
    ps = rng.uniform(size=200)
    D = (rng.random(200) < ps).astype(int)
    cells = rng.integers(0, 4, size=200)
    np.testing.assert_array_equal(common_support(ps, D, cells=cells),
                                  _loop_common_support(ps, D, cells))


def test_crump_alpha_solves_its_equation_and_rule_of_thumb():
    rng = np.random.default_rng(1)
    e = rng.beta(0.5, 0.5, size=20_000)
    a = crump_alpha(e)
    g = 1 / (e * (1 - e))
    gam = 1 / (a * (1 - a))
    np.testing.assert_allclose(gam, 2 * g[g <= gam].mean(), rtol=1e-10)
    assert 0.05 < a < 0.15
    assert crump_alpha(rng.uniform(0.3, 0.7, size=100)) == 0.0


def test_trim_counts_and_bounds():
    rng = np.random.default_rng(2)
    e = rng.uniform(0.01, 0.99, size=500)
    D = (rng.random(500) < e).astype(int)
    t = trim(e, D, (0.1, 0.9))
    out = (e < 0.1) | (e > 0.9)
    assert t.dropped == {"treated": int((out & (D == 1)).sum()),
                         "control": int((out & (D == 0)).sum())}
    assert "estimand" in t.note
    with pytest.raises(ConfigurationError, match="lo < hi"):
        trim(e, D, (0.9, 0.1))
    with pytest.raises(ConfigurationError, match="'rule' parameter"):
        trim(e, D, "nope")
    with pytest.raises(DataValidationError, match="drops all treated"):
        trim(e, D, (0.995, 1.0))


def test_matching_with_support_counts_trimmed_rows():
    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=n) * 2
    d = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    df = pd.DataFrame({"x": x, "d": d, "y": x + d + rng.normal(size=n)})
    data = EvaluationData.from_frame(df, treatment="d", outcomes="y", covariates=["x"])
    res = NearestNeighborMatching(replace=True, support="minmax").fit(data, outcome="y")
    tr = res.extra["trim"]
    assert res.dropped.get("trimmed_treated", 0) == tr.dropped["treated"]
    assert res.weights.shape == (n,)
    assert np.all(res.weights[~tr.keep] == 0)
    m = res.extra["matches"]
    assert np.all(d[m.focal] == 1) and np.all(d[m.matched] == 0)
    if tr.dropped["treated"]:
        assert "trimming dropped" in res.extra["estimand_note"]
