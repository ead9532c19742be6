"""Command line and study pipeline end to end (small simulated study)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _browser import SKIP_WITHOUT_BROWSER, dump_dom

from mentor_impact.cli import main

SPEC = """
[study]
name = "CLI test study"
seed = 7

[data]
source = "simulate"
n_persons = 4000

[design]
horizon = 156
controls_per_treated = 5

[outcomes]
curves = ["employment_or_education", "employed"]

[matching]
k = 3

[aipw]
n_folds = 2

[subgroups]
variables = ["benefit_type"]

[report]
min_cell = 5
"""


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    spec = root / "study.toml"
    spec.write_text(SPEC)
    out = root / "out"
    assert main(["evaluate", str(spec), "--out", str(out), "--quiet"]) == 0
    return spec, out


@pytest.mark.slow
def test_evaluate_writes_every_output(study_run):
    _, out = study_run
    doc = json.loads((out / "results.json").read_text())
    for key in ("config_hash", "data_fingerprint", "versions", "effects", "sample",
                "disclosure", "timings_seconds", "durations", "robustness"):
        assert key in doc, key
    ipw = doc["effects"]["employment_or_education"]["IPW A"]
    assert len(ipw["estimate"]) == 157 and len(ipw["std_error"]) == 157
    assert ipw["n_treated"] > 0 and "dropped" in ipw
    for name in ("effects", "sample_flow", "robustness", "prestart_curves", "e_values",
                 "duration_effects", "duration_hazard_ratio"):
        assert (out / "tables" / f"{name}.csv").exists(), name
    # the marginal hazard ratio is a compared estimate and agrees with its table
    hr = doc["durations"]["marginal_hazard_ratio"]
    assert hr["targets"] == ["log hazard ratio"] and hr["std_error"][0] > 0
    tab = pd.read_csv(out / "tables" / "duration_hazard_ratio.csv")
    assert tab["coef"].iloc[0] == pytest.approx(hr["estimate"][0], rel=1e-12)
    assert tab["exp_coef"].iloc[0] == pytest.approx(np.exp(hr["estimate"][0]), rel=1e-12)
    assert any(p.suffix == ".png" for p in (out / "figures").iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".mentor-impact-")]


@pytest.mark.slow
def test_rerun_reproduces_and_compare_detects_changes(study_run, tmp_path, capsys):
    spec, out = study_run
    again = tmp_path / "again"
    assert main(["evaluate", str(spec), "--out", str(again), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(out / "results.json"), str(again / "results.json"),
                 "--rtol", "0"]) == 0
    assert "match" in capsys.readouterr().out
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace("seed = 7", "seed = 8"))
    third = tmp_path / "third"
    assert main(["evaluate", str(other), "--out", str(third), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(out / "results.json"), str(third / "results.json")]) == 1
    assert "differ" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.browser
@SKIP_WITHOUT_BROWSER
def test_report_figures_and_tables_render_in_chromium(study_run):
    _, out = study_run
    html = (out / "report.html").read_text()
    n_img = html.count("<img")
    assert n_img >= 6
    dom = dump_dom(out / "report.html")
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom).group(1))
    tables = int(re.search(r'data-tables="(\d+)"', dom).group(1))
    assert loaded == n_img
    assert tables >= 8
    for section in ("Sample flow", "Effect curves", "Effects table", "Duration outcomes",
                    "Robustness", "Heterogeneity", "Reproducibility"):
        assert section in dom


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[design]\nhorizon = 156\nwashot = 52\n")
    assert main(["evaluate", str(bad), "--out", str(out)]) == 2
    assert "[design].washot" in capsys.readouterr().err
    files = tmp_path / "files.toml"
    files.write_text('[data]\nsource = "files"\nregister = "nope.parquet"\n'
                     'spells = "s.csv"\nbaseline = "b.csv"\n')
    assert main(["evaluate", str(files), "--out", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_parquet_is_one_clear_error(tmp_path, capsys):
    reg = tmp_path / "register.parquet"
    reg.write_bytes(b"not a parquet file")
    for name in ("spells.csv", "baseline.csv"):
        (tmp_path / name).write_text("person\n1\n")
    spec = tmp_path / "s.toml"
    spells, base = tmp_path / "spells.csv", tmp_path / "baseline.csv"
    spec.write_text(f'[data]\nsource = "files"\nregister = "{reg}"\n'
                    f'spells = "{spells}"\nbaseline = "{base}"\n')
    out = tmp_path / "out"
    assert main(["evaluate", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "could not read register.parquet as parquet" in err
    assert not out.exists()


def test_existing_output_folder_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    spec = tmp_path / "s.toml"
    spec.write_text("[study]\nseed = 1\n")
    assert main(["evaluate", str(spec), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_compare_missing_file_exit_2(tmp_path, capsys):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({}))
    assert main(["compare", str(a), str(tmp_path / "b.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert re.match(r"mentor_impact \d", capsys.readouterr().out)


def test_simulate_writes_parquet(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--n-persons", "500", "--seed", "3"]) == 0
    for name in ("register.parquet", "spells.parquet", "baseline.parquet", "truth.csv"):
        assert (Path(tmp_path) / name).exists()
