"""History covariates X(s): plain-loop twin, no look-ahead, stable names."""

from __future__ import annotations

import numpy as np
import pytest

from mentor_impact._kernels import design as K
from mentor_impact.design.covariates import (
    DEFAULT_LAG_GROUPS,
    calendar_of_weeks,
    history_covariates,
)
from mentor_impact.registers.catalog import StateCatalog

CAT = StateCatalog.default()
STATES = CAT.STATES
NS = len(STATES)
ONB = CAT.unions["on_benefit"]
BINS = ((1, 1), (2, 2), (3, 4))
YEARS = (2005, 2006, 2007, 2008, 2009, 2010)


def sticky_states(n, w, seed):
    rng = np.random.default_rng(seed)
    x = np.empty((n, w), dtype=np.int8)
    x[:, 0] = rng.integers(0, NS, n)
    for t in range(1, w):
        move = rng.random(n) < 0.1
        x[:, t] = np.where(move, rng.integers(0, NS, n), x[:, t - 1])
    return x


def ref_row(states, r, s, ep_starts, quarter, year, lags=5):
    """Plain-loop twin of one row of history_covariates."""
    lookback = 52 * max(b for _, b in BINS)
    keep = [k for k, nm in enumerate(STATES) if nm != "passive_benefit"]
    vals = []
    for a, b in BINS:
        weeks = [s - u for u in range(52 * (a - 1) + 1, 52 * b + 1) if s - u >= 0]
        for k in keep:
            c = sum(1 for c_ in weeks if states[r, c_] == k)
            vals.append(c / len(weeks) if weeks else 0.0)
    vals.append(sum(1 for u in range(1, lookback + 1) if s - u >= 0))
    for j in range(1, lags + 1):
        st = STATES[states[r, s - j]] if s - j >= 0 else None
        for members in DEFAULT_LAG_GROUPS.values():
            vals.append(float(st in members and st != "passive_benefit"))
    el = 0
    while el < lookback and s - 1 - el >= 0 and STATES[states[r, s - 1 - el]] in ONB:
        el += 1
    # a run reaching the register start is capped by the weeks that exist (loop bound above)
    vals.append(el)
    vals.append(min(el, 156))
    runs, prev = 0, False
    for u in range(lookback, 0, -1):
        on = s - u >= 0 and STATES[states[r, s - u]] in ONB
        if on and not prev:
            runs += 1
        prev = on
    vals.append(runs)
    vals.append(sum(1 for a in ep_starts.get(r, []) if a < s))
    vals += [float(year[s] == y) for y in YEARS[1:]]
    vals += [float(quarter[s] == q) for q in (2, 3, 4)]
    return vals


@pytest.fixture(scope="module")
def world():
    n, w = 40, 300
    states = sticky_states(n, w, 2)
    rng = np.random.default_rng(3)
    m = 60
    rows = rng.integers(0, n, m).astype(np.int64)
    s = rng.integers(1, w, m).astype(np.int64)
    ep_row = np.sort(rng.integers(0, n, 30)).astype(np.int64)
    ep_start = rng.integers(0, w, 30).astype(np.int64)
    order = np.lexsort((ep_start, ep_row))
    ep_row, ep_start = ep_row[order], ep_start[order]
    key = ep_row * (w + 1) + ep_start
    weeks = np.array([(2005 + c // 52) * 100 + c % 52 + 1 for c in range(w)])
    cal = calendar_of_weeks(weeks)
    eps: dict[int, list[int]] = {}
    for r_, a in zip(ep_row.tolist(), ep_start.tolist(), strict=False):
        eps.setdefault(r_, []).append(a)
    return states, rows, s, key, cal, eps


def compute(states, rows, s, key, cal, chunk=7):
    return history_covariates(
        states, rows, s, state_names=STATES, on_benefit=ONB, year_bins=BINS, lags=5,
        episode_key=key, quarter=cal["quarter"], year=cal["year"], year_levels=YEARS,
        chunk=chunk,
    )


def test_matches_plain_loop(world):
    states, rows, s, key, cal, eps = world
    x, names, elapsed = compute(states, rows, s, key, cal)
    assert x.shape == (rows.size, len(names))
    for i, (r, t) in enumerate(zip(rows.tolist(), s.tolist(), strict=False)):
        np.testing.assert_allclose(x[i], ref_row(states, r, t, eps, cal["quarter"], cal["year"]),
                                   err_msg=f"row {i}")
    np.testing.assert_array_equal(elapsed, x[:, names.index("elapsed_benefit_weeks")])


def test_no_information_from_week_s_or_later(world):
    states, rows, s, key, cal, _ = world
    x, _, _ = compute(states, rows, s, key, cal)
    rng = np.random.default_rng(9)
    for i in range(0, rows.size, 6):
        pert = states.copy()
        r, t = rows[i], s[i]
        pert[r, t:] = rng.integers(0, NS, states.shape[1] - t)
        # later episodes of the same person do not matter either
        x2, _, _ = compute(pert, rows[i : i + 1], s[i : i + 1], key, cal)
        np.testing.assert_array_equal(x2[0], x[i])


def test_names_are_stable_and_unique(world):
    states, rows, s, key, cal, _ = world
    _, names, _ = compute(states, rows, s, key, cal)
    _, names2, _ = compute(states[:, ::-1].copy(), rows[:5], s[:5], key, cal)
    assert names == names2
    assert len(set(names)) == len(names)
    assert "share_employed_y1" in names and "share_employed_y3_4" in names
    assert "share_passive_benefit_y1" not in names  # reference state
    assert "lag1_activation" in names and "lag5_other" in names
    assert names[-8:] == ("year2006", "year2007", "year2008", "year2009", "year2010",
                          "quarter2", "quarter3", "quarter4")


def test_member_mask_contiguous_and_not():
    x = np.array([[-1, 0, 3, 4, 7, 9]], dtype=np.int8)
    for members in ([3, 4, 5, 6, 7], [0, 4, 9], [9]):
        lut = np.zeros(NS + 1, dtype=bool)
        lut[members] = True
        exp = [v >= 0 and v in members for v in x[0]]
        assert K.member_mask(x, lut)[0].tolist() == exp


def test_row_kernels_match_loops():
    rng = np.random.default_rng(1)
    ind = rng.random((50, 30)) < 0.6
    for i in range(50):
        run = 0
        for v in ind[i, ::-1]:
            if not v:
                break
            run += 1
        assert K.trailing_run(ind)[i] == run
        n_runs = sum(1 for j in range(30) if ind[i, j] and (j == 0 or not ind[i, j - 1]))
        assert K.count_runs(ind)[i] == n_runs
    h = rng.integers(-1, NS, (20, 40)).astype(np.int8)
    cnt, obs = K.history_counts(h, 5, 30, NS)
    for i in range(20):
        for k in range(NS):
            assert cnt[i, k] == (h[i, 5:30] == k).sum()
        assert obs[i] == (h[i, 5:30] >= 0).sum()


def test_calendar_of_weeks_iso_rules():
    cal = calendar_of_weeks([200901, 200953, 201001, 201514])
    assert cal["year"].tolist() == [2009, 2009, 2010, 2015]  # Thursday of 2009-W01 is 1 Jan
    assert cal["month"].tolist() == [1, 12, 1, 4]
    assert cal["quarter"].tolist() == [1, 4, 1, 2]


def test_design_covariates_ignore_register_from_s_on():
    """Perturb one person's register from week s on: that row's X(s) is unchanged."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_risk_set import CODES, make_world

    from mentor_impact.design.risk_set import RiskSetDesign
    from mentor_impact.registers import WeeklyRegister

    reg, sp, baseline = make_world()
    design = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=None,
                           year_bins=((1, 1), (2, 3)))
    data = design.build(reg, sp, baseline, seed=0)
    rng = np.random.default_rng(4)
    for j in rng.choice(data.n, 4, replace=False):
        i, s = int(data.cluster[j]), int(data.start_week[j])
        st = reg.states().copy()
        st[i, s:] = rng.integers(0, 8, reg.n_weeks - s)
        reg2 = WeeklyRegister(CODES[st], persons=reg.persons, weeks=reg.weeks,
                              catalog=reg.catalog)
        d2 = design.build(reg2, sp, baseline, seed=0)
        k = np.flatnonzero((d2.cluster == i) & (d2.start_week == s))
        assert k.size == 1
        np.testing.assert_array_equal(d2.X[k[0]], data.X[j])
