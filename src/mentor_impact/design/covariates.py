"""History covariates ``X(s)`` of the risk-set design, from weeks before ``s`` only.

Every column is a function of the register in weeks ``s - lookback .. s - 1``, the mentor
episodes that started before ``s`` and the calendar week ``s`` itself (a design variable
known at ``s``). Nothing at or after week ``s`` enters (tested by perturbing the register
from ``s`` on). Column names are fixed by the options, never by the data.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from mentor_impact._kernels import design as K

__all__ = [
    "DEFAULT_LAG_GROUPS",
    "DEFAULT_YEAR_BINS",
    "calendar_of_weeks",
    "history_covariates",
]

DEFAULT_YEAR_BINS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10))
DEFAULT_LAG_GROUPS: dict[str, tuple[str, ...]] = {
    "self_support": ("employed", "education", "self_support_other"),
    "activation": ("activation", "subsidised_job"),
    "health": ("health_benefit", "retired_disabled"),
    "other": ("dead_emigrated", "unknown"),
}


def calendar_of_weeks(weeks: npt.ArrayLike) -> dict[str, npt.NDArray[np.int64]]:
    """Calendar year, quarter and month of ISO week labels ``YYYYWW``.

    Parameters
    ----------
    weeks : array-like of int
        ISO week labels (one per register column).

    Returns
    -------
    dict of str to ndarray
        ``iso_year``, ``month`` (1..12) and ``quarter`` (1..4) of each week, and ``year``
        (calendar year); month and quarter are those of the week's Thursday (the ISO rule
        that assigns a week to a year).
    """
    labels = np.asarray(weeks, dtype=np.int64)
    iso_year = labels // 100
    month = np.empty(labels.shape, dtype=np.int64)
    year = np.empty(labels.shape, dtype=np.int64)
    for j, lab in enumerate(labels.tolist()):  # loop over calendar weeks (<= ~1000)
        d = _dt.date.fromisocalendar(int(lab) // 100, int(lab) % 100, 4)
        month[j] = d.month
        year[j] = d.year
    return {
        "iso_year": iso_year,
        "year": year,
        "month": month,
        "quarter": (month - 1) // 3 + 1,
    }


def _bin_name(a: int, b: int) -> str:
    return f"y{a}" if a == b else f"y{a}_{b}"


def history_covariates(
    states: npt.NDArray[np.int8],
    rows: npt.NDArray[np.int64],
    s: npt.NDArray[np.int64],
    *,
    state_names: Sequence[str],
    on_benefit: Sequence[str],
    year_bins: Sequence[tuple[int, int]] = DEFAULT_YEAR_BINS,
    reference_state: str = "passive_benefit",
    lags: int = 13,
    lag_groups: Mapping[str, Sequence[str]] | None = None,
    episode_key: npt.NDArray[np.int64] | None = None,
    quarter: npt.NDArray[np.int64] | None = None,
    year: npt.NDArray[np.int64] | None = None,
    year_levels: Sequence[int] | None = None,
    duration_cap: int = 156,
    chunk: int = 16_384,
    lead_columns: int = 0,
) -> tuple[npt.NDArray[np.float64], tuple[str, ...], npt.NDArray[np.int64]]:
    """History covariates for design rows ``(rows, s)`` from weeks before ``s``.

    Parameters
    ----------
    states : ndarray of shape (N, W), int8
        State-id matrix of the register.
    rows, s : ndarray of shape (n,), int64
        Register row and start column of each design row.
    state_names : sequence of str
        Names of the state ids (the catalogue's ``STATES``).
    on_benefit : sequence of str
        States that count as benefit receipt (for the elapsed benefit duration).
    year_bins : sequence of (int, int), default=((1, 1), (2, 2), (3, 3), (4, 5), (6, 10))
        Inclusive ranges of years before ``s``; year ``k`` is weeks ``s - 52k .. s - 52k + 51``.
    reference_state : str, default="passive_benefit"
        State whose share is left out (the shares of all states sum to one).
    lags : int, default=13
        Number of single weeks ``s - 1 .. s - lags`` described by state-group indicators.
    lag_groups : mapping of str to sequence of str, optional
        Groups of states for the lag indicators (the reference state and any state in no
        group form the reference category); default :data:`DEFAULT_LAG_GROUPS`.
    episode_key : ndarray, optional
        Sorted ``row * (W + 1) + start`` keys of the mentor episodes.
    quarter, year : ndarray of shape (W,), optional
        Calendar quarter and year of each register column.
    year_levels : sequence of int, optional
        Calendar years of the design's start weeks; with ``year`` they become indicator
        columns (first year the reference). Default: the years of ``year[s]``.
    duration_cap : int, default=156
        Top-coding of ``elapsed_benefit_weeks_capped`` (3 years).
    chunk : int
        Rows per block (memory about ``chunk * lookback * 10`` bytes).
    lead_columns : int, default=0
        Zero columns placed before the history covariates, for the caller to fill (so the
        design's covariate matrix is allocated once, never stacked from copies).

    Returns
    -------
    X : ndarray of shape (n, lead_columns + p), float64
        The covariates (after ``lead_columns`` zero columns).
    names : tuple of str
        Column names (see Notes).
    elapsed : ndarray of shape (n,), int64
        The elapsed benefit duration (also a column of ``X``), for duration bands.

    Notes
    -----
    Columns, in this order:

    * ``share_{state}_{bin}``: share of the observed weeks of the bin spent in ``state``,
      for every state except ``reference_state``; bins are named ``y1``, ``y2``, ``y3``,
      ``y4_5``, ``y6_10``. Weeks before the first register week are not observed; a bin with
      no observed week has share 0 (and ``history_weeks`` tells how much was observed).
    * ``history_weeks``: observed weeks in the whole lookback (``52 * max bin``).
    * ``lag{j}_{group}``: 1 when the state in week ``s - j`` belongs to ``group``
      (``j = 1..lags``); all zero means the reference category (``passive_benefit`` and
      ungrouped states, or an unobserved week).
    * ``elapsed_benefit_weeks``: length of the run of ``on_benefit`` weeks that ends in week
      ``s - 1`` (capped at the lookback, and left-censored at the first register week);
      ``elapsed_benefit_weeks_capped``: the same top-coded at ``duration_cap``.
    * ``benefit_spells``: number of runs of ``on_benefit`` weeks in the lookback (a run open
      at the start of the lookback counts; the current spell counts).
    * ``prev_mentor_episodes``: mentor episodes (merged) that started before ``s``; for
      eligible rows they all ended before the washout window.
    * ``year{YYYY}`` for each calendar year of ``year_levels`` but the first, and
      ``quarter2``, ``quarter3``, ``quarter4``: calendar period of ``s`` as treatment
      contrasts (first year / first quarter the reference, R's naming ``factor(year)2013``
      shortened to ``year2013``). The calendar year is the year of the week's Thursday,
      which is also its ISO year.
    """
    state_names = tuple(state_names)
    ns = len(state_names)
    groups = dict(DEFAULT_LAG_GROUPS if lag_groups is None else lag_groups)
    lookback = 52 * max(b for _, b in year_bins)
    keep_states = [k for k, nm in enumerate(state_names) if nm != reference_state]
    group_lut = np.zeros((len(groups), ns + 1), dtype=bool)
    for g, members in enumerate(groups.values()):
        for nm in members:
            if nm in state_names and nm != reference_state:
                group_lut[g, state_names.index(nm)] = True
    onb_lut = np.zeros(ns + 1, dtype=bool)
    onb_lut[[state_names.index(x) for x in on_benefit]] = True

    names: list[str] = []
    for a, b in year_bins:
        names += [f"share_{state_names[k]}_{_bin_name(a, b)}" for k in keep_states]
    names.append("history_weeks")
    for j in range(1, lags + 1):
        names += [f"lag{j}_{g}" for g in groups]
    names += ["elapsed_benefit_weeks", "elapsed_benefit_weeks_capped", "benefit_spells"]
    if episode_key is not None:
        names.append("prev_mentor_episodes")
    ylev: list[int] = []
    if year is not None:
        ylev = sorted({int(y) for y in (np.unique(year[s]) if year_levels is None
                                        else year_levels)})
        names += [f"year{y}" for y in ylev[1:]]
    if quarter is not None:
        names += ["quarter2", "quarter3", "quarter4"]

    n = rows.shape[0]
    n_w = states.shape[1]
    x = np.zeros((n, lead_columns + len(names)), dtype=np.float64)
    elapsed = np.zeros(n, dtype=np.int64)
    for a0 in range(0, n, chunk):
        b0 = min(a0 + chunk, n)
        hist = K.gather_windows(states, rows[a0:b0], s[a0:b0] - lookback, lookback)
        col = lead_columns
        cnts = K.binned_counts(
            hist, [(lookback - 52 * b, lookback - 52 * (a - 1)) for a, b in year_bins], ns
        )
        for j in range(len(year_bins)):
            obs = cnts[:, j, :].sum(axis=1)
            share = cnts[:, j, keep_states] / np.maximum(obs, 1)[:, None]
            x[a0:b0, col : col + len(keep_states)] = share
            col += len(keep_states)
        # only weeks before the first register column are unobserved
        x[a0:b0, col] = np.clip(s[a0:b0], 0, lookback)
        col += 1
        for j in range(1, lags + 1):
            st = hist[:, lookback - j]
            x[a0:b0, col : col + len(groups)] = group_lut[:, st].T
            col += len(groups)
        onb = K.member_mask(hist, onb_lut)
        el = K.trailing_run(onb)
        elapsed[a0:b0] = el
        x[a0:b0, col] = el
        x[a0:b0, col + 1] = np.minimum(el, duration_cap)
        x[a0:b0, col + 2] = K.count_runs(onb)
        col += 3
        if episode_key is not None:
            x[a0:b0, col] = K.count_starts_before(episode_key, rows[a0:b0], s[a0:b0], n_w)
            col += 1
        if year is not None:
            ys = year[s[a0:b0]]
            for y in ylev[1:]:
                x[a0:b0, col] = ys == y
                col += 1
        if quarter is not None:
            q = quarter[s[a0:b0]]
            for qq in (2, 3, 4):
                x[a0:b0, col] = q == qq
                col += 1
    return x, tuple(names), elapsed
