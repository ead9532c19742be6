"""Shared loader for the lalonde reference data (MatchIt 4.7.2 / Matching 4.10.8 / R 4.2.2).

Provenance: ``data/lalonde.csv`` is MatchIt's ``data(lalonde)``; the values in
``reference.json`` were computed in R (see its ``call`` fields) and
copied from the project's shared reference set. No test needs R.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).parent / "data"
COVS = ["age", "educ", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"]


@lru_cache(maxsize=1)
def lalonde() -> pd.DataFrame:
    df = pd.read_csv(HERE / "lalonde.csv")
    df["raceblack"] = (df["race"] == "black").astype(float)
    df["racehispan"] = (df["race"] == "hispan").astype(float)
    df["racewhite"] = (df["race"] == "white").astype(float)
    return df


@lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    with open(HERE.parent / "reference.json") as fh:
        return json.load(fh)["entries"]


def values(key: str) -> dict[str, Any]:
    return reference()[key]["values"]


def X() -> np.ndarray:
    return lalonde()[COVS].to_numpy(float)


def D() -> np.ndarray:
    return lalonde()["treat"].to_numpy()
