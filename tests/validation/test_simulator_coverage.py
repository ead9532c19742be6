"""Coverage of matching and IPW intervals against the simulator's exact truth (issues #4, #5).

Each replication draws a fresh ``simulate_mentor_study`` (6,000 persons), builds the default
``RiskSetDesign`` once and fits, on the same data:

* ``NearestNeighborMatching(k=5, replace=True, exact=["cell"])`` with its default variance
  (on risk-set data, where persons recur as controls: the matching influence function
  clustered by person), estimand A;
* ``IPW()`` estimand A;
* ``IPW()`` estimand B (``dynamic="B"``, censoring weights from the default hazard).

The outcome is employment or education in week 104 after the start. The truth is exact in
sample: ``true_effects(study, data, outcome, "A" | "B")`` averaged over the design's treated
rows (every estimator here keeps all of them, which is asserted). For each estimator the
tests assert that 95 % intervals cover the truth in 93–97 % of the replications, that the
mean standard error is within ±15 % of the Monte-Carlo SD of the estimates, that the bias is
small against that SD, and that fits raising a ``MentorImpactError`` (propensity scores at 0
or 1 by separation) are counted and rare.

Cost: the replications run once per session (module fixture), about 1 s each on one core:
the simulator ~45 %, the propensity logits ~30 %, the design build ~15 %. Two savings:
BLAS is limited to one thread (oversubscribed BLAS threads are ~3x slower on a busy 2-core
machine), and the matching reuses the propensity scores of the IPW A fit (the same logistic
MLE on the same covariates; the first replications check that this equals a plain
``fit(data, outcome=...)``), which saves the matching's own logit (~0.17 s).

Monte-Carlo precision: with 250 replications the standard error of a 95 % coverage is 1.4
points, so 93–97 % is about ±1.45 standard errors. Seeds are fixed: the tests are
deterministic. Reproduce: ``python -m pytest tests/validation -q -m slow -s``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import mentor_impact as mi

N_REPLICATIONS = 250
N_PERSONS = 6_000
SEED0 = 1000  # replication r uses seed SEED0 + r (as benchmarks/validation/coverage_simulator.py)
UNION = "employment_or_education"
TAU = 104
OUTCOME = f"{UNION}_w{TAU}"

COVERAGE_BOUNDS = (0.93, 0.97)
SE_SD_TOLERANCE = 0.15  # |mean SE / SD - 1|
BIAS_SD_BOUND = 0.25  # |bias| / SD
MAX_FAILED_SHARE = 0.03
N_PS_CHECKS = 2  # replications where the matching is also fitted with its own propensity model

ESTIMATORS = ("NN k=5 A", "IPW A", "IPW B")


def _nn() -> mi.NearestNeighborMatching:
    return mi.NearestNeighborMatching(k=5, replace=True, exact=["cell"])


def _replicate(r: int, ps_checks: list[tuple[float, float]]) -> list[dict[str, Any]]:
    seed = SEED0 + r
    study = mi.datasets.simulate_mentor_study(n_persons=N_PERSONS, seed=seed, outcomes=(UNION,))
    data = mi.RiskSetDesign(outcomes=[UNION]).build(
        study.register, study.spells, study.baseline, seed=seed
    )
    truth = {
        est: float(mi.true_effects(study, data, UNION, est).set_index("tau").loc[TAU, "effect"])
        for est in ("A", "B")
    }
    fits: dict[str, Any] = {}
    for name in ("IPW A", "IPW B"):
        try:
            fits[name] = mi.IPW().fit(
                data, outcome=OUTCOME, **({"dynamic": "B", "horizon": TAU} if name == "IPW B"
                                          else {})
            )
        except mi.MentorImpactError as exc:
            fits[name] = exc
    ipw_a = fits["IPW A"]
    ps = None if isinstance(ipw_a, Exception) else ipw_a.extra["ps"]
    try:
        fits["NN k=5 A"] = _nn().fit(data, outcome=OUTCOME, ps=ps)
        if ps is not None and len(ps_checks) < N_PS_CHECKS:
            own = _nn().fit(data, outcome=OUTCOME)
            ps_checks.append((
                abs(float(own.estimate[0]) - float(fits["NN k=5 A"].estimate[0])),
                abs(float(own.std_errors.iloc[0]) - float(fits["NN k=5 A"].std_errors.iloc[0])),
            ))
    except mi.MentorImpactError as exc:
        fits["NN k=5 A"] = exc
    rows: list[dict[str, Any]] = []
    for name in ESTIMATORS:
        res = fits[name]
        row: dict[str, Any] = {"estimator": name, "rep": r, "truth": truth[name[-1]]}
        if isinstance(res, Exception):
            row["failed"] = type(res).__name__
        else:
            ci = res.conf_int(level=0.95).iloc[0]
            row.update(
                failed="",
                estimate=float(res.estimate[0]),
                se=float(res.std_errors.iloc[0]),
                lower=float(ci["lower"]),
                upper=float(ci["upper"]),
                cov_type=res.cov_type,
                all_treated_used=res.n_treated == data.n_treated,
            )
        rows.append(row)
    return rows


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df["failed"] == ""].copy()
    ok["err"] = ok["estimate"] - ok["truth"]
    ok["covered"] = (ok["lower"] <= ok["truth"]) & (ok["truth"] <= ok["upper"])
    out = ok.groupby("estimator").agg(
        reps=("rep", "size"),
        coverage=("covered", "mean"),
        bias=("err", "mean"),
        sd=("err", "std"),
        mean_se=("se", "mean"),
        all_treated_used=("all_treated_used", "all"),
        cov_type=("cov_type", "first"),
    )
    out["se_over_sd"] = out["mean_se"] / out["sd"]
    out["failed"] = (df["failed"] != "").groupby(df["estimator"]).sum()
    return out.reindex(list(ESTIMATORS))


@pytest.fixture(scope="module")
def coverage_study() -> dict[str, Any]:
    """Run the replications once; return the summary table, the report text and checks."""
    t0, c0 = time.perf_counter(), time.process_time()
    rows: list[dict[str, Any]] = []
    ps_checks: list[tuple[float, float]] = []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # positivity / separation warnings of small samples
        for r in range(N_REPLICATIONS):
            rows.extend(_replicate(r, ps_checks))
    summary = _summary(pd.DataFrame(rows))
    report = (
        f"{N_REPLICATIONS} replications x {N_PERSONS} persons, outcome {OUTCOME}: "
        f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU\n"
        f"{summary.to_string(float_format=lambda v: f'{v:.4f}')}"
    )
    print(report)  # shown with -s; repeated in every failure message
    return {"summary": summary, "report": report, "ps_checks": ps_checks}


@pytest.mark.slow
def test_matching_with_given_ps_equals_own_ps_fit(coverage_study: dict[str, Any]) -> None:
    checks = coverage_study["ps_checks"]
    assert len(checks) == N_PS_CHECKS
    assert max(max(c) for c in checks) < 1e-6, checks


@pytest.mark.slow
@pytest.mark.parametrize("name", ESTIMATORS)
def test_intervals_cover_simulator_truth(coverage_study: dict[str, Any], name: str) -> None:
    s = coverage_study["summary"].loc[name]
    report = coverage_study["report"]
    problems = []
    lo, hi = COVERAGE_BOUNDS
    if s["failed"] > MAX_FAILED_SHARE * N_REPLICATIONS:
        problems.append(f"{int(s['failed'])} failed fits")
    if not bool(s["all_treated_used"]):
        problems.append("treated rows dropped (the truth is over all treated rows)")
    if not lo <= s["coverage"] <= hi:
        problems.append(f"coverage {s['coverage']:.3f} outside [{lo}, {hi}]")
    if not abs(s["se_over_sd"] - 1.0) <= SE_SD_TOLERANCE:
        problems.append(f"mean SE / SD = {s['se_over_sd']:.3f}")
    if not abs(s["bias"]) <= BIAS_SD_BOUND * s["sd"]:
        problems.append(f"bias {s['bias']:.4f} vs SD {s['sd']:.4f}")
    assert np.isfinite([s["coverage"], s["bias"], s["sd"], s["mean_se"]]).all(), report
    assert not problems, f"{name}: " + "; ".join(problems) + "\n" + report
