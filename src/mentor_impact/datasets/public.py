"""Small public example datasets shipped with the package (for examples and docs).

The files are the ones the R reference values were computed on (see
``tests/reference/PROVENANCE.md``): ``lalonde`` from R's MatchIt, ``veteran`` and ``mgus2``
from R's survival package.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_lalonde", "load_mgus2", "load_veteran"]


def _read(name: str) -> pd.DataFrame:
    with resources.files("mentor_impact.datasets").joinpath(f"data/{name}.csv").open("rb") as f:
        return pd.read_csv(f)


def load_lalonde() -> pd.DataFrame:
    """Load the Dehejia–Wahba subset of LaLonde's NSW data (R: ``MatchIt::lalonde``).

    Returns
    -------
    pandas.DataFrame
        614 rows: ``id, treat, age, educ, race`` (black, hispan, white), ``married,
        nodegree, re74, re75, re78`` (real earnings, 1982 USD; ``re78`` is the outcome).

    Examples
    --------
    >>> load_lalonde().shape
    (614, 10)
    """
    return _read("lalonde")


def load_veteran() -> pd.DataFrame:
    """Load the Veterans' Administration lung cancer trial (R: ``survival::veteran``).

    Returns
    -------
    pandas.DataFrame
        137 rows: ``trt`` (1 standard, 2 test), ``celltype``, ``time`` (days), ``status``
        (1 dead), ``karno``, ``diagtime``, ``age``, ``prior`` (0 or 10).
    """
    return _read("veteran")


def load_mgus2() -> pd.DataFrame:
    """Load the MGUS natural-history data (R: ``survival::mgus2``) with competing exits.

    Returns
    -------
    pandas.DataFrame
        1,384 rows: ``id, age, sex, dxyr, hgb, creat, mspike, ptime, pstat, futime, death``
        plus ``etime`` and ``event`` (0 censored, 1 progression, 2 death before
        progression), derived as in the R reference script.
    """
    df = _read("mgus2")
    df["etime"] = df["ptime"].where(df["pstat"] == 1, df["futime"])
    df["event"] = (2 * df["death"]).where(df["pstat"] == 0, 1).astype(int)
    return df
