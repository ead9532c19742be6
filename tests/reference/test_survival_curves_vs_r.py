"""Nonparametric curves against R (survival 3.5.3 ``survfit``, cmprsk 2.2.11 ``cuminc``).

Provenance: ``data/veteran.csv`` and ``data/mgus2.csv`` are survival's ``data(veteran)`` and
``data(mgus2)``; the values in ``reference.json`` (entries ``veteran.km_by_trt`` and
``mgus2.cuminc_by_sex``) were computed with R 4.2.2 by the calls quoted below and copied from
the project's shared reference set. No test needs R.

R code::

    vet <- read.csv("data/veteran.csv")
    fit <- survfit(Surv(time, status) ~ trt, data = vet)
    summary(fit, times = c(30, 90, 180, 365), extend = TRUE)
    summary(fit)$table ; summary(fit, rmean = 180)$table ; summary(fit, rmean = 365)$table

    mg <- read.csv("data/mgus2.csv")
    mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
    mg$event <- ifelse(mg$pstat == 0, 2 * mg$death, 1)
    ci <- cuminc(ftime = mg$etime, fstatus = mg$event, group = mg$sex, cencode = 0)
    timepoints(ci, c(60, 120, 240, 360)) ; ci$Tests
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import AalenJohansen, KaplanMeier

CURVE_RTOL = 1e-6
SE_RTOL = 1e-5
TIMES = [30, 90, 180, 365]


@pytest.fixture(scope="module")
def veteran(reference_dir: Path) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "data" / "veteran.csv")


@pytest.fixture(scope="module")
def mgus2(reference_dir: Path) -> pd.DataFrame:
    mg = pd.read_csv(reference_dir / "data" / "mgus2.csv")
    mg["etime"] = np.where(mg["pstat"] == 0, mg["futime"], mg["ptime"])
    mg["event"] = np.where(mg["pstat"] == 0, 2 * mg["death"], 1)
    return mg


@pytest.fixture(scope="module")
def km_ref(reference: dict) -> dict:
    return reference["entries"]["veteran.km_by_trt"]["values"]


@pytest.fixture(scope="module")
def cuminc_ref(reference: dict) -> dict:
    return reference["entries"]["mgus2.cuminc_by_sex"]["values"]


@pytest.fixture(scope="module")
def km(veteran: pd.DataFrame):
    return KaplanMeier().fit(veteran, duration="time", event="status", group="trt")


@pytest.fixture(scope="module")
def aj(mgus2: pd.DataFrame):
    return AalenJohansen().fit(mgus2, duration="etime", event="event", group="sex")


ARMS = ["trt=1", "trt=2"]


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize(
    ("ours", "theirs", "rtol"),
    [
        ("surv", "surv", CURVE_RTOL),
        ("cumhaz", "cumhaz", CURVE_RTOL),
        ("std_err", "std_err", SE_RTOL),
        ("lower", "lower95", SE_RTOL),
        ("upper", "upper95", SE_RTOL),
        ("std_chaz", "std_chaz", SE_RTOL),
        ("n_risk", "n_risk", 0),
        ("n_event", "n_event_cum_since_previous", 0),
    ],
)
def test_km_at_times(km, km_ref, arm, ours, theirs, rtol) -> None:
    got = km.at(TIMES, arm=arm)
    want = np.asarray(km_ref["at_times"][arm][theirs], dtype=float)
    np.testing.assert_allclose(got[ours].to_numpy(), want, rtol=rtol, atol=0)


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize(
    ("ours", "theirs"), [("median", "median"), ("lower", "0.95LCL"), ("upper", "0.95UCL")]
)
def test_km_median_and_ci(km, km_ref, arm, ours, theirs) -> None:
    # trt=2 has S == 0.5 on a flat: survfit's midpoint rule gives 52.5
    assert km.median().loc[arm, ours] == pytest.approx(km_ref["table"][arm][theirs], rel=1e-12)


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("tau", [180, 365])
def test_km_rmst(km, km_ref, arm, tau) -> None:
    tab = km.rmst(tau)
    ref = km_ref[f"rmst_tau_{tau}"][arm]
    assert tab.loc[arm, "rmst"] == pytest.approx(ref["rmean"], rel=CURVE_RTOL)
    assert tab.loc[arm, "std_err"] == pytest.approx(ref["se(rmean)"], rel=SE_RTOL)


def test_km_event_totals(km, km_ref) -> None:
    for arm in ARMS:
        assert km.curves[arm].n_rows == km_ref["table"][arm]["records"]
        assert km.curves[arm].n_event.sum() == km_ref["table"][arm]["events"]
        assert km.curves[arm].n_event_rows == km_ref["table"][arm]["events"]


def test_logrank_matches_survdiff_value(km) -> None:
    # survdiff(Surv(time, status) ~ trt, data = veteran): Chisq = 0.0 on 1 df, p = 0.9
    # (O/E: 64 / 64.5 and 64 / 63.5 in survival's printed output)
    t = km.tests["logrank"]
    assert t["expected"]["trt=1"] == pytest.approx(64.5, abs=0.01)
    assert t["p_value"] == pytest.approx(0.928, abs=0.001)


KEYS = ["F 1", "M 1", "F 2", "M 2"]


@pytest.mark.parametrize("key", KEYS)
def test_cuminc_estimates(aj, cuminc_ref, key) -> None:
    g, cause = key.split()
    times = cuminc_ref["times"]
    got = aj.at(times, arm=f"sex={g}")
    got = got[got["cause"] == cause]
    want = [cuminc_ref["est"][key][str(t)] for t in times]
    np.testing.assert_allclose(got["cif"].to_numpy(), want, rtol=CURVE_RTOL, atol=0)


@pytest.mark.parametrize("key", KEYS)
def test_cuminc_variances(aj, cuminc_ref, key) -> None:
    g, cause = key.split()
    times = cuminc_ref["times"]
    got = aj.at(times, arm=f"sex={g}")
    got = got[got["cause"] == cause]
    want = np.array([cuminc_ref["var"][key][str(t)] for t in times])
    np.testing.assert_allclose(got["var"].to_numpy(), want, rtol=SE_RTOL, atol=0)
    np.testing.assert_allclose(got["std_err"].to_numpy(), np.sqrt(want), rtol=SE_RTOL, atol=0)


@pytest.mark.parametrize("cause", ["1", "2"])
def test_gray_test(aj, cuminc_ref, cause) -> None:
    ref = cuminc_ref["gray_test"][cause]
    got = aj.tests[f"gray[{cause}]"]
    assert got["stat"] == pytest.approx(ref["stat"], rel=1e-8)
    assert got["p_value"] == pytest.approx(ref["pv"], rel=1e-8)
    assert got["df"] == ref["df"]


def test_cuminc_na_beyond_follow_up(aj) -> None:
    last = aj.curves["sex=F"].time[-1]
    got = aj.at([last + 1.0], arm="sex=F")
    assert got["cif"].isna().all()
