"""Disclosure control: a minimum-cell rule for every exported count.

Register data are confidential; statistics offices require that no exported table shows a
count of fewer than ``min_cell`` persons (default 5). Suppressed cells are *marked*
(``"<5"`` in rendered tables, ``None`` plus a ``suppressed`` flag in JSON), never silently
shown or silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mentor_impact.exceptions import ConfigurationError

__all__ = ["SUPPRESSED", "is_count_column", "suppress_counts"]

SUPPRESSED = "suppressed"

_COUNT_NAMES = ("n", "count", "starters", "persons", "rows", "events", "at_risk")
_COUNT_PREFIXES = ("n_", "count_", "starters_", "persons_", "rows_", "events_", "at_risk_")


def is_count_column(name: str) -> bool:
    """Whether a column name denotes a count of persons or rows (``n``, ``n_treated``, ...).

    Parameters
    ----------
    name : str
        Column name.

    Returns
    -------
    bool
        True for the names ``n``, ``count``, ``starters``, ``persons``, ``rows``,
        ``events``, ``at_risk`` and for names starting with one of them followed by ``_``
        (``n_treated``, ``n_risk``, ``starters_2013``); false otherwise (``counterfactual_mean``
        is not a count).
    """
    low = str(name).lower()
    return low in _COUNT_NAMES or low.startswith(_COUNT_PREFIXES)


def suppress_counts(
    table: pd.DataFrame,
    *,
    min_cell: int = 5,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Apply the minimum-cell rule to the count columns of a table.

    Counts ``0 < c < min_cell`` are replaced by missing values and the row is flagged in a
    boolean column ``suppressed``; the number of suppressed cells is stored in
    ``table.attrs["n_suppressed"]``. Zeros are kept (a structural zero discloses nothing
    about a person).

    Parameters
    ----------
    table : pandas.DataFrame
        The table to export.
    min_cell : int, default=5
        Smallest count that may be shown.
    columns : sequence of str, optional
        Count columns; by default every column for which :func:`is_count_column` is true.

    Returns
    -------
    pandas.DataFrame
        A copy with small counts suppressed and the ``suppressed`` flag column.

    Examples
    --------
    >>> import pandas as pd
    >>> out = suppress_counts(pd.DataFrame({"group": ["a", "b"], "n": [120, 3]}))
    >>> out["suppressed"].tolist()
    [False, True]
    """
    if min_cell < 1:
        raise ConfigurationError(f"min_cell: expected an integer >= 1; got {min_cell!r}.")
    out = table.copy()
    cols = [c for c in (columns if columns is not None else out.columns) if is_count_column(c)
            or columns is not None]
    flag = np.zeros(len(out), dtype=bool)
    n_supp = 0
    for c in cols:
        if c not in out.columns or not pd.api.types.is_numeric_dtype(out[c].dtype):
            continue
        v = out[c].to_numpy(dtype=float)
        small = (v > 0) & (v < min_cell)
        if small.any():
            n_supp += int(small.sum())
            flag |= small
            out[c] = out[c].astype(float).where(~small, np.nan)
    prior = out[SUPPRESSED].to_numpy(dtype=bool) if SUPPRESSED in out.columns else False
    out[SUPPRESSED] = flag | prior
    out.attrs["n_suppressed"] = n_supp + int(table.attrs.get("n_suppressed", 0))
    out.attrs["min_cell"] = min_cell
    return out
