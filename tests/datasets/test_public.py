"""Shipped public datasets are the ones the R reference values were computed on."""

import hashlib
from importlib import resources

import pytest

from mentor_impact.datasets import load_lalonde, load_mgus2, load_veteran


@pytest.mark.parametrize("name", ["lalonde", "veteran", "mgus2"])
def test_files_match_reference_md5(name, reference):
    data = resources.files("mentor_impact.datasets").joinpath(f"data/{name}.csv").read_bytes()
    assert hashlib.md5(data).hexdigest() == reference["datasets"][name]["md5"]


def test_loaders_shapes_and_derived_columns():
    assert load_lalonde().shape == (614, 10)
    assert load_veteran().shape == (137, 8)
    mg = load_mgus2()
    assert len(mg) == 1384
    # R: event = ifelse(pstat == 0, 2 * death, 1); etime = ifelse(pstat == 0, futime, ptime)
    assert (mg.loc[mg.pstat == 1, "event"] == 1).all()
    assert (mg.loc[mg.pstat == 0, "event"] == 2 * mg.loc[mg.pstat == 0, "death"]).all()
    assert (mg.loc[mg.pstat == 0, "etime"] == mg.loc[mg.pstat == 0, "futime"]).all()
