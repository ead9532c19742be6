"""The sample flow table of a risk-set design (METHODS §10.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["FLOW_COLUMNS", "sample_flow_table"]

FLOW_COLUMNS: tuple[str, ...] = ("section", "item", "count", "value")


def sample_flow_table(
    *,
    n_spells: int,
    n_episodes: int,
    gap: int,
    exclusions: Mapping[str, int],
    n_kept: int,
    episode_year: npt.NDArray[np.int64],
    kept_year: npt.NDArray[np.int64],
    n1: npt.NDArray[np.int64],
    n0: npt.NDArray[np.int64],
    k0: npt.NDArray[np.int64],
    pi: npt.NDArray[np.float64],
    later_start: npt.NDArray[np.int64],
    control_weight: npt.NDArray[np.float64],
    later_taus: Sequence[int] = (13, 26, 52, 104, 156),
) -> pd.DataFrame:
    """Assemble the sample flow table.

    Parameters
    ----------
    n_spells, n_episodes : int
        Spell records given and episodes after merging.
    gap : int
        Spells separated by fewer than ``gap`` weeks were merged into one episode.
    exclusions : mapping of str to int
        Excluded episode starts by rule, in the order the rules were applied.
    n_kept : int
        Treated starts kept in the design.
    episode_year, kept_year : ndarray of int
        ISO year of every episode start and of every kept treated start.
    n1, n0, k0, pi : ndarray of shape (W,)
        Per start week: treated, eligible controls, sampled controls, inclusion probability.
    later_start : ndarray of int
        For the sampled control rows: weeks from ``s`` to their own later start (-1: none).
    control_weight : ndarray of float
        Sampling weights of the same control rows.
    later_taus : sequence of int
        Horizons at which the share of controls treated later is reported.

    Returns
    -------
    pandas.DataFrame
        Columns ``section``, ``item``, ``count``, ``value`` (``value`` is ``NaN`` where not
        applicable). Sections: ``starts`` (spell records, episodes, kept treated starts),
        ``exclusions`` (one row per rule; episodes = exclusions + kept), ``episodes_by_year``,
        ``treated_by_year``, ``risk_sets`` (sizes) and ``controls_treated_later`` (``count``:
        sampled controls with ``0 < later_start <= tau``; ``value``: their weighted share).

    Notes
    -----
    Counts are counts of rows, never identifiers, so the table can be shown as it is
    (apply the reporting module's minimum-cell rule before publishing small counts).
    """
    recs: list[tuple[str, str, int, float]] = [
        ("starts", "spell records", int(n_spells), np.nan),
        ("starts", f"episodes (spells merged when the gap is < {gap} weeks)", int(n_episodes),
         np.nan),
    ]
    for rule, c in exclusions.items():
        recs.append(("exclusions", rule, int(c), np.nan))
    recs.append(("starts", "treated starts kept", int(n_kept), np.nan))
    ey, ec = np.unique(episode_year, return_counts=True)
    for y, c in zip(ey.tolist(), ec.tolist(), strict=True):
        recs.append(("episodes_by_year", str(y), int(c), np.nan))
    ky, kc = np.unique(kept_year, return_counts=True)
    for y, c in zip(ky.tolist(), kc.tolist(), strict=True):
        recs.append(("treated_by_year", str(y), int(c), np.nan))
    used = n1 > 0
    nz = int(used.sum())
    recs += [
        ("risk_sets", "risk sets (start weeks with treated)", nz, np.nan),
        ("risk_sets", "treated per risk set (median)", int(n1[used].sum()),
         float(np.median(n1[used])) if nz else np.nan),
        ("risk_sets", "eligible controls per risk set (median)", int(n0[used].sum()),
         float(np.median(n0[used])) if nz else np.nan),
        ("risk_sets", "sampled controls per risk set (median)", int(k0[used].sum()),
         float(np.median(k0[used])) if nz else np.nan),
        ("risk_sets", "control sampling probability (median)", nz,
         float(np.median(pi[used])) if nz else np.nan),
        ("risk_sets", "risk sets without eligible controls", int((used & (n0 == 0)).sum()),
         np.nan),
    ]
    wsum = float(control_weight.sum())
    for t in later_taus:
        hit = (later_start > 0) & (later_start <= t)
        share = float(control_weight[hit].sum() / wsum) if wsum > 0 else np.nan
        recs.append(("controls_treated_later", f"tau<={t}", int(hit.sum()), share))
    df = pd.DataFrame.from_records(recs, columns=list(FLOW_COLUMNS))
    df["count"] = df["count"].astype(np.int64)
    return df
