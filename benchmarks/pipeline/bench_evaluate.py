"""``mentor-impact evaluate`` end to end on a simulated register, with the time of each stage.

Size: ``MI_BENCH_N`` persons (default 20,000; the issue's scale check is 1,000,000).
"""

from __future__ import annotations

import json
import os
import resource

import pytest

from mentor_impact.config import parse_study
from mentor_impact.pipeline import run_study

N = int(os.environ.get("MI_BENCH_N", "20000"))


@pytest.mark.parametrize("n_persons", [N])
def test_evaluate_end_to_end(benchmark, tmp_path, n_persons):
    spec = parse_study(
        {
            "study": {"name": f"benchmark {n_persons}", "seed": 1},
            "data": {"n_persons": n_persons},
            "aipw": {"n_folds": 2},
            "toe": {"enabled": False},
            "subgroups": {"variables": ["benefit_type"]},
        }
    )
    out = tmp_path / "out"
    outcome = benchmark.pedantic(
        run_study, args=(spec, out), kwargs={"quiet": True, "overwrite": True},
        rounds=1, iterations=1,
    )
    doc = json.loads((out / "results.json").read_text())
    ipw = doc["effects"]["employment_or_education"]["IPW A"]
    assert len(ipw["estimate"]) == 157
    benchmark.extra_info["stages_seconds"] = outcome.timings
    benchmark.extra_info["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    benchmark.extra_info["rows"] = doc["sample"]["n_rows"]
