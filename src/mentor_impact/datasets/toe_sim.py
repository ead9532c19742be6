"""Simulate spell data from the timing-of-events model itself (a test generator).

The generator draws benefit spells week by week from the grouped mixed proportional hazard
model that :class:`mentor_impact.duration.TimingOfEvents` estimates, with correlated
unobserved heterogeneity (discrete mass points shared by the exit and the mentor-start
hazards), so that the estimator's parameters are known exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._rng import SeedLike, as_generator
from mentor_impact.exceptions import ConfigurationError

__all__ = ["ToeSimulation", "simulate_toe"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ToeSimulation:
    """Simulated spells and the parameters that generated them.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per spell: ``id``, ``duration`` (last week in the spell, >= 1), ``exit``
        (0 = censored, 1..R = cause), ``start`` (mentor start week, -1 = none), ``entry``
        (sample-entry week, 0 for an inflow sample) and covariates ``x1..xp``.
    truth : pandas.DataFrame
        True parameters with columns ``equation, block, term, value`` in the naming of
        :meth:`TimingOfEventsResults.params`.
    mass_points : pandas.DataFrame
        True support points: ``pi`` and ``v_<hazard>`` per point.
    config : dict
        The arguments used.
    start_gaps : pandas.DataFrame or None
        With ``start_gap_share > 0``: the weeks in which no start was possible, columns
        ``spell`` (row position in ``data``), ``first``, ``last`` (inclusive), the
        ``start_gaps`` argument of :meth:`TimingOfEvents.fit`.
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    mass_points: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    start_gaps: pd.DataFrame | None = None


def _default_lv(K: int, R: int) -> tuple[FloatArray, FloatArray]:
    if K == 1:
        return np.zeros((1, R + 1)), np.ones(1)
    if K == 2:
        lv = np.array([[0.0] * (R + 1), [-1.2] * R + [-1.0]])
        return lv, np.array([0.6, 0.4])
    if K == 3:
        lv = np.array([[0.0] * (R + 1), [-1.2] * R + [-1.0], [0.9] * R + [-1.5]])
        return lv, np.array([0.45, 0.35, 0.2])
    raise ConfigurationError(
        f"n_support_points: expected 1, 2 or 3 without explicit log_v/probs; found {K}. "
        "Hint: pass log_v and probs."
    )


def simulate_toe(
    n_spells: int = 2000,
    *,
    n_covariates: int = 2,
    n_causes: int = 2,
    n_support_points: int = 2,
    exit_cuts: Sequence[int] = (0, 13, 52),
    start_cuts: Sequence[int] = (0, 26),
    effect_bins: Sequence[int] = (0, 13, 26, 52),
    alpha_exit: npt.ArrayLike | None = None,
    beta_exit: npt.ArrayLike | None = None,
    delta: npt.ArrayLike | None = None,
    alpha_start: npt.ArrayLike | None = None,
    beta_start: npt.ArrayLike | None = None,
    log_v: npt.ArrayLike | None = None,
    probs: npt.ArrayLike | None = None,
    max_weeks: int = 156,
    min_followup: int = 52,
    max_entry: int = 0,
    start_after_entry: bool = False,
    start_gap_share: float = 0.0,
    start_gap_weeks: tuple[int, int] = (8, 26),
    seed: SeedLike = 0,
) -> ToeSimulation:
    """Simulate spells from the grouped timing-of-events MPH model.

    Parameters
    ----------
    n_spells : int
        Number of spells in the returned sample (after left truncation).
    n_covariates : int
        Number of standard-normal, time-constant covariates ``x1..xp``.
    n_causes : int
        Number of competing exit causes R.
    n_support_points : int
        K, the number of mass points of the heterogeneity distribution.
    exit_cuts, start_cuts : sequence of int
        Baseline cut points (weeks, first 0) of the exit and start hazards.
    effect_bins : sequence of int
        Time-since-start bin edges (first 0); bin j holds ``bins[j] < t - tm <= bins[j+1]``.
    alpha_exit, beta_exit, delta : array-like, optional
        ``(R, Qe)`` log baselines, ``(R, p)`` coefficients and ``(R, J)`` effects of the exit
        hazards (defaults are illustrative: a lock-in dip then a positive effect).
    alpha_start, beta_start : array-like, optional
        ``(Qm,)`` log baselines and ``(p,)`` coefficients of the mentor-start hazard.
    log_v : array-like, optional
        ``(K, R + 1)`` log mass points (columns: exit causes, then start); row 0 must be 0.
    probs : array-like, optional
        ``(K,)`` mass-point probabilities.
    max_weeks : int
        Longest follow-up (administrative censoring) in weeks since spell entry.
    min_followup : int
        Censoring weeks are uniform on ``min_followup..max_weeks`` after entry.
    max_entry : int
        0 gives an inflow sample; > 0 draws sample-entry weeks uniformly on ``0..max_entry``
        and keeps only spells still running and not yet treated at entry (a stock sample,
        left-truncated).
    start_after_entry : bool
        With ``max_entry > 0``: no start is possible before sample entry (the stock is
        drawn when the programme begins); the matching estimator option is
        ``TimingOfEvents(truncation="condition_exits")``. Default False (starts possible
        from week 1, spells treated before entry are not sampled).
    start_gap_share : float
        Share of spells with one window of weeks in which no start is possible (not
        eligible); it begins in a week uniform on ``1..start_gap_weeks[1]`` and lasts a
        number of weeks uniform on ``start_gap_weeks``. The windows are returned as ``start_gaps``.
    start_gap_weeks : (int, int)
        Shortest and longest window.
    seed : int, Generator or None
        Random seed.

    Returns
    -------
    ToeSimulation
        Spells, true parameters and mass points.

    Notes
    -----
    Within week ``t`` the exit (with competing causes, ``P(exit r) = theta_r / sum(theta)
    * (1 - exp(-sum(theta)))``) and the start are drawn independently, exactly as in the
    grouped likelihood; a start in the exit week is recorded (``start == duration``) and
    the effect applies from week ``start + 1``. Loops run over weeks only.
    """
    rng = as_generator(seed)
    R, p = int(n_causes), int(n_covariates)
    ec = np.asarray(exit_cuts, dtype=np.int64)
    sc = np.asarray(start_cuts, dtype=np.int64)
    bins = np.asarray(effect_bins, dtype=np.int64)
    Qe, Qm, J = ec.size, sc.size, bins.size
    K = int(n_support_points)
    ae = (
        np.asarray(alpha_exit, dtype=float).reshape(R, Qe)
        if alpha_exit is not None
        else np.tile(np.linspace(-3.2, -4.0, Qe), (R, 1)) - 0.3 * np.arange(R)[:, None]
    )
    be = (
        np.asarray(beta_exit, dtype=float).reshape(R, p)
        if beta_exit is not None
        else np.tile(0.3 * (-1.0) ** np.arange(p), (R, 1)) * (1 + 0.5 * np.arange(R)[:, None])
    )
    de = (
        np.asarray(delta, dtype=float).reshape(R, J)
        if delta is not None
        else np.tile(np.linspace(-0.6, 0.4, J), (R, 1))
    )
    am = (
        np.asarray(alpha_start, dtype=float).reshape(Qm)
        if alpha_start is not None
        else np.linspace(-3.3, -3.8, Qm)
    )
    bm = (
        np.asarray(beta_start, dtype=float).reshape(p)
        if beta_start is not None
        else 0.25 * np.ones(p)
    )
    if log_v is None or probs is None:
        lv, pi = _default_lv(K, R)
    else:
        lv = np.asarray(log_v, dtype=float).reshape(K, R + 1)
        pi = np.asarray(probs, dtype=float).reshape(K)
    if not np.allclose(lv[0], 0.0) or not np.isclose(pi.sum(), 1.0):
        raise ConfigurationError(
            "log_v/probs: expected log_v[0] == 0 and probs summing to 1; found otherwise. "
            "Hint: normalise the first mass point to 0."
        )

    lo_g, hi_g = (int(x) for x in start_gap_weeks)
    if not 0.0 <= float(start_gap_share) <= 1.0 or not 1 <= lo_g <= hi_g:
        raise ConfigurationError(
            f"start_gap_share/start_gap_weeks: expected a share in [0, 1] and 1 <= shortest "
            f"<= longest; found {start_gap_share} and {tuple(start_gap_weeks)}. Hint: e.g. "
            "start_gap_share=0.5, start_gap_weeks=(8, 26)."
        )

    # oversample when left-truncating
    n_draw = int(n_spells) if max_entry <= 0 else int(n_spells) * 6 + 100
    X = rng.standard_normal((n_draw, p))
    k = rng.choice(K, size=n_draw, p=pi)
    entry = (
        np.zeros(n_draw, dtype=np.int64)
        if max_entry <= 0
        else rng.integers(0, max_entry + 1, size=n_draw).astype(np.int64)
    )
    cens = entry + rng.integers(min_followup, max_weeks + 1, size=n_draw)
    has_gap = np.zeros(n_draw, dtype=bool)
    g_first = g_last = np.zeros(n_draw, dtype=np.int64)
    if start_gap_share > 0:  # drawn only when asked: other seeds' samples stay unchanged
        has_gap = rng.random(n_draw) < float(start_gap_share)
        g_first = rng.integers(1, hi_g + 1, size=n_draw).astype(np.int64)
        g_last = g_first + rng.integers(lo_g, hi_g + 1, size=n_draw) - 1
    xb_e = X @ be.T + lv[k, :R]
    xb_m = X @ bm + lv[k, R]
    T = np.zeros(n_draw, dtype=np.int64)
    cause = np.zeros(n_draw, dtype=np.int64)
    tm = np.full(n_draw, -1, dtype=np.int64)
    alive = np.ones(n_draw, dtype=bool)
    t_max = int(cens.max())
    for t in range(1, t_max + 1):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        qe = int(np.searchsorted(ec, t, side="left") - 1)
        qm = int(np.searchsorted(sc, t, side="left") - 1)
        eta = xb_e[idx] + ae[:, qe][None, :]
        tmi = tm[idx]
        u = t - tmi
        on = (tmi >= 0) & (u >= 1)
        if on.any():
            j = np.searchsorted(bins, np.maximum(u[on], 1), side="left") - 1
            eta[on] += de[:, j].T
        th = np.exp(eta)
        Th = th.sum(axis=1)
        pex = -np.expm1(-Th)
        ex = rng.random(idx.size) < pex
        # cause given exit: proportional to theta_r
        cum = np.cumsum(th / Th[:, None], axis=1)
        rc = (rng.random(idx.size)[:, None] > cum).sum(axis=1) + 1
        # mentor start among not yet treated
        untr = tmi < 0
        if start_after_entry:
            untr &= t > entry[idx]
        if start_gap_share > 0:
            gi = idx[has_gap[idx]]
            untr[has_gap[idx]] &= (t < g_first[gi]) | (t > g_last[gi])
        ps = -np.expm1(-np.exp(xb_m[idx] + am[qm]))
        st = untr & (rng.random(idx.size) < ps)
        tm[idx[st]] = t
        exi = idx[ex]
        T[exi] = t
        cause[exi] = np.minimum(rc[ex], R)
        alive[exi] = False
        # administrative censoring at the end of week cens
        done = idx[~ex & (t >= cens[idx])]
        T[done] = t
        alive[done] = False
    keep = (T > entry) & ((tm < 0) | (tm > entry))
    if max_entry <= 0:
        keep[:] = True
    sel = np.flatnonzero(keep)[: int(n_spells)]
    df = pd.DataFrame(
        {
            "id": np.arange(sel.size, dtype=np.int64),
            "duration": T[sel],
            "exit": cause[sel],
            "start": tm[sel],
            "entry": entry[sel],
        }
    )
    for c in range(p):
        df[f"x{c + 1}"] = X[sel, c]
    causes = [f"cause{r + 1}" for r in range(R)]
    rows: list[tuple[str, str, str, float]] = []
    exit_labels = [f"({ec[q]},{ec[q + 1]}]" if q + 1 < Qe else f"({ec[q]},inf)" for q in range(Qe)]
    start_labels = [f"({sc[q]},{sc[q + 1]}]" if q + 1 < Qm else f"({sc[q]},inf)" for q in range(Qm)]
    bin_labels = [
        f"since_start({bins[q]},{bins[q + 1]}]" if q + 1 < J else f"since_start({bins[q]},inf)"
        for q in range(J)
    ]
    for r in range(R):
        eq = f"exit:{causes[r]}"
        rows += [(eq, "baseline", exit_labels[q], ae[r, q]) for q in range(Qe)]
        rows += [(eq, "covariate", f"x{c + 1}", be[r, c]) for c in range(p)]
        rows += [(eq, "effect", bin_labels[q], de[r, q]) for q in range(J)]
    rows += [("start", "baseline", start_labels[q], am[q]) for q in range(Qm)]
    rows += [("start", "covariate", f"x{c + 1}", bm[c]) for c in range(p)]
    hz = [*(f"exit:{c}" for c in causes), "start"]
    for kk in range(1, K):
        rows += [("heterogeneity", "log_v", f"{h}[{kk + 1}]", lv[kk, i]) for i, h in enumerate(hz)]
    rows += [
        ("heterogeneity", "logit_pi", f"pi[{kk + 1}]", float(np.log(pi[kk] / pi[0])))
        for kk in range(1, K)
    ]
    truth = pd.DataFrame(rows, columns=["equation", "block", "term", "value"])
    mp = pd.DataFrame({"pi": pi})
    for i, h in enumerate(hz):
        mp[f"v_{h}"] = np.exp(lv[:, i])
    cfg = {
        "n_spells": int(n_spells),
        "n_covariates": p,
        "n_causes": R,
        "n_support_points": K,
        "exit_cuts": ec.tolist(),
        "start_cuts": sc.tolist(),
        "effect_bins": bins.tolist(),
        "max_weeks": int(max_weeks),
        "max_entry": int(max_entry),
    }
    gaps = None
    if start_gap_share > 0:
        pos = np.flatnonzero(has_gap[sel])
        gaps = pd.DataFrame({"spell": pos, "first": g_first[sel][pos],
                             "last": g_last[sel][pos]})
        cfg["start_gap_share"] = float(start_gap_share)
        cfg["start_gap_weeks"] = [lo_g, hi_g]
    return ToeSimulation(data=df, truth=truth, mass_points=mp, config=cfg, start_gaps=gaps)
