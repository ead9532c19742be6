"""CoxPH with zero follow-up times against R (survival 3.5.3).

R's ``coxph`` keeps right-censored rows with time 0 (they are at risk from the start and
ordered before every positive time). Weekly register durations have such rows: an exit in
the week of the start. Values in ``cox_zero_times.json`` come from ``cox_zero_times.R``
(the veteran data with time in whole weeks, ``floor(time / 7)``)::

    coxph(Surv(week, status) ~ trt + karno + celltype, data = vet, ties = ties)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import CoxPH


@pytest.fixture(scope="module")
def ref(reference_dir):
    return json.loads((reference_dir / "cox_zero_times.json").read_text())


@pytest.fixture(scope="module")
def vet_weeks(reference_dir):
    df = pd.read_csv(reference_dir / "data" / "veteran.csv")
    df["celltype"] = pd.Categorical(
        df["celltype"], categories=["squamous", "smallcell", "adeno", "large"]
    )
    df["week"] = np.floor(df["time"] / 7)
    return df


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_zero_times_match_r(vet_weeks, ref, ties):
    r = ref[ties]
    assert int((vet_weeks.week == 0).sum()) == r["n_time0"] > 0
    assert int(((vet_weeks.week == 0) & (vet_weeks.status == 1)).sum()) == r["n_time0_events"]
    res = CoxPH(ties=ties).fit(
        vet_weeks, duration="week", event="status", covariates=["trt", "karno", "celltype"]
    )
    assert list(res.params.index) == ref["names"]
    np.testing.assert_allclose(res.params.to_numpy(), r["coef"], rtol=1e-6)
    k = len(ref["names"])
    np.testing.assert_allclose(
        np.asarray(res.cov), np.asarray(r["var"]).reshape(k, k, order="F"), rtol=1e-6
    )
    assert res.loglik_null == pytest.approx(r["loglik"][0], rel=1e-9)
    assert res.loglik == pytest.approx(r["loglik"][1], rel=1e-9)
