"""Cox regression benchmarks, side by side with lifelines / statsmodels and one Gram matrix.

Size from env ``MI_BENCH_N`` (rows, default 100_000) with 30 covariates and weekly (tied)
event times (at most ~300 distinct times).  Run e.g.::

    MI_BENCH_N=1000000 python -m pytest benchmarks/duration/bench_cox.py -q

statsmodels' PHReg is only timed when ``MI_BENCH_STATSMODELS=1`` (it is slow).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import CoxPH

N = int(os.environ.get("MI_BENCH_N", "100000"))
P = 30
COVS = [f"x{j}" for j in range(P)]
_CACHE: dict[str, np.ndarray] = {}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, P))
    beta = rng.normal(scale=0.1, size=P)
    t = rng.exponential(100 * np.exp(-x @ beta))
    c = rng.uniform(0, 300, size=N)
    df = pd.DataFrame(x, columns=COVS)
    df["time"] = np.ceil(np.minimum(t, c))  # weekly, heavily tied
    df["status"] = (t <= c).astype(np.int8)
    df["w"] = rng.uniform(0.5, 2.0, size=N)
    df["person"] = np.arange(N) // 4
    return df


def _lifelines_params(df: pd.DataFrame) -> np.ndarray:
    if "lifelines" not in _CACHE:
        from lifelines import CoxPHFitter

        cph = CoxPHFitter().fit(df[[*COVS, "time", "status"]], "time", "status")
        _CACHE["lifelines"] = cph.params_.to_numpy()
    return _CACHE["lifelines"]


def test_gram_matrix_floor(benchmark, data):
    x = data[COVS].to_numpy()
    w = data["w"].to_numpy()

    def gram() -> np.ndarray:
        xw = x * np.sqrt(w)[:, None]
        return xw.T @ xw

    g = benchmark.pedantic(gram, rounds=3, iterations=1)
    assert g.shape == (P, P)


def test_cox_efron(benchmark, data):
    res = benchmark.pedantic(
        lambda: CoxPH(ties="efron").fit(data, duration="time", event="status", covariates=COVS),
        rounds=3,
        iterations=1,
    )
    assert res.converged
    _CACHE["ours"] = res.coef
    # lifelines stops its Newton iterations at ~1e-8 absolute change, so near-zero
    # coefficients agree to that absolute precision rather than to 1e-6 relative
    np.testing.assert_allclose(res.coef, _lifelines_params(data), rtol=1e-6, atol=1e-7)


def test_lifelines_coxph(benchmark, data):
    from lifelines import CoxPHFitter

    cph = benchmark.pedantic(
        lambda: CoxPHFitter().fit(data[[*COVS, "time", "status"]], "time", "status"),
        rounds=1,
        iterations=1,
    )
    _CACHE["lifelines"] = cph.params_.to_numpy()
    if "ours" in _CACHE:
        np.testing.assert_allclose(_CACHE["ours"], _CACHE["lifelines"], rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(os.environ.get("MI_BENCH_STATSMODELS") != "1", reason="slow; opt in")
def test_statsmodels_phreg(benchmark, data):
    from statsmodels.duration.hazard_regression import PHReg

    res = benchmark.pedantic(
        lambda: PHReg(
            data["time"], data[COVS], status=data["status"], ties="efron"
        ).fit(),
        rounds=1,
        iterations=1,
    )
    np.testing.assert_allclose(res.params, _lifelines_params(data), rtol=1e-5, atol=1e-8)


def test_cox_weighted_robust(benchmark, data):
    res = benchmark.pedantic(
        lambda: CoxPH().fit(
            data, duration="time", event="status", covariates=COVS, weights="w", robust=True
        ),
        rounds=1,
        iterations=1,
    )
    assert res.converged and res.cov_type == "robust"
    assert np.all(np.isfinite(res.std_errors.to_numpy()))


def test_cox_weighted_person_clustered(benchmark, data):
    res = benchmark.pedantic(
        lambda: CoxPH().fit(
            data, duration="time", event="status", covariates=COVS, weights="w", cluster="person"
        ),
        rounds=1,
        iterations=1,
    )
    assert res.converged and res.n_clusters == data["person"].nunique()
