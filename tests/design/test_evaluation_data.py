"""EvaluationData: validation, encoding, subset."""

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design import DurationOutcome, EvaluationData
from mentor_impact.exceptions import DataValidationError

LALONDE = "/work/shared/reference/data/lalonde.csv"


@pytest.fixture(scope="module")
def lalonde(reference_dir):
    return pd.read_csv(reference_dir / "data" / "lalonde.csv")


def test_from_frame_encodes_like_r(lalonde):
    data = EvaluationData.from_frame(
        lalonde, treatment="treat", outcomes="re78",
        covariates=["age", "educ", "race", "married", "nodegree", "re74", "re75"],
    )
    assert data.covariate_names == (
        "age", "educ", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"
    )
    assert data.n == 614 and data.n_treated == 185 and data.n_control == 429
    hisp = data.column("racehispan")
    assert hisp.sum() == (lalonde.race == "hispan").sum()
    np.testing.assert_array_equal(data.weight, np.ones(614))
    np.testing.assert_array_equal(data.cluster, np.arange(614))


def test_reference_level_and_categorical_order(lalonde):
    data = EvaluationData.from_frame(
        lalonde, treatment="treat", outcomes="re78", covariates=["race"],
        reference_levels={"race": "white"},
    )
    assert data.covariate_names == ("raceblack", "racehispan")
    df = lalonde.assign(race=pd.Categorical(lalonde.race, categories=["white", "black", "hispan"]))
    d2 = EvaluationData.from_frame(df, treatment="treat", outcomes="re78", covariates=["race"])
    assert d2.covariate_names == ("raceblack", "racehispan")


def test_subset_and_cells(lalonde):
    data = EvaluationData.from_frame(
        lalonde, treatment="treat", outcomes=["re78", "re75"], covariates=["age"],
        cell="married", durations={"t": ("age", "nodegree")},
    )
    sub = data.subset(data.column("age") > 30)
    assert sub.n == int((lalonde.age > 30).sum())
    assert sub.durations["t"].time.shape == (sub.n,)
    assert sub.frame.shape[0] == sub.n
    assert set(np.unique(data.cell)) == {0, 1}
    np.testing.assert_array_equal(sub.meta["parent_rows"], np.flatnonzero(lalonde.age > 30))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.assign(treat=d.treat.replace({1: 2})), "binary 0/1"),
        (lambda d: d.assign(age=d.age.where(d.index != 3)), "1 missing values"),
        (lambda d: d.assign(re78=d.re78.where(d.index % 100 != 0)), "7 missing values"),
        (lambda d: d.assign(treat=0), "no treated"),
        (lambda d: d.drop(columns="re78"), "re78"),
    ],
)
def test_bad_input_messages(lalonde, mutate, match):
    with pytest.raises(DataValidationError, match=match):
        EvaluationData.from_frame(
            mutate(lalonde), treatment="treat", outcomes="re78", covariates=["age"]
        )


def test_messages_never_contain_values(lalonde):
    df = lalonde.assign(age=lalonde.age.astype(float).where(lalonde.index != 5))
    with pytest.raises(DataValidationError) as err:
        EvaluationData.from_frame(df, treatment="treat", outcomes="re78", covariates=["age"])
    msg = str(err.value)
    assert "rows 5" in msg
    assert "NSW" not in msg and "PSID" not in msg


def test_curve_needs_tau():
    x = np.zeros((4, 1))
    with pytest.raises(DataValidationError, match="tau"):
        EvaluationData(X=x, covariate_names=("x",), treatment=np.array([1, 0, 1, 0]),
                       outcomes={"employed": np.zeros((4, 3))})
    data = EvaluationData(X=x, covariate_names=("x",), treatment=np.array([1, 0, 1, 0]),
                          outcomes={"employed": np.zeros((4, 3), dtype=np.int8)},
                          tau=np.arange(3))
    assert data.is_curve("employed") and data.horizon == 2


def test_duration_outcome_validation():
    with pytest.raises(DataValidationError, match=r"codes in 0\.\.2"):
        DurationOutcome(np.array([1.0, 2.0]), np.array([0, 3]), ("job", "education"))
    with pytest.raises(DataValidationError, match="finite"):
        DurationOutcome(np.array([1.0, np.nan]), np.array([0, 1]))
