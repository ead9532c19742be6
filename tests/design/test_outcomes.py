"""Event-time outcomes: vectorised kernels against plain-loop twins."""

from __future__ import annotations

import numpy as np
import pytest

from mentor_impact._kernels import design as K
from mentor_impact.design.outcomes import EXIT_CAUSES, event_time_outcomes, outcome_luts
from mentor_impact.exceptions import DataValidationError
from mentor_impact.registers.catalog import StateCatalog

CAT = StateCatalog.default()
STATES = CAT.STATES
NS = len(STATES)
DEAD = STATES.index("dead_emigrated")


def random_states(n: int, w: int, seed: int, stay: float = 0.9) -> np.ndarray:
    """Markov-like state paths (sticky), with rare deaths that are absorbing."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, w), dtype=np.int8)
    x[:, 0] = rng.integers(0, 8, n)
    for t in range(1, w):
        move = rng.random(n) > stay
        new = rng.integers(0, 8, n)
        x[:, t] = np.where(move, new, x[:, t - 1])
        die = rng.random(n) < 0.0015
        x[:, t] = np.where(die | (x[:, t - 1] == DEAD), DEAD, x[:, t])
    return x


# ---------------------------------------------------------------- plain-loop twins
def ref_curve(states, r, s, h, members):
    w = states.shape[1]
    out = []
    for tau in range(h + 1):
        c = s + tau
        out.append(-1 if c >= w else int(states[r, c] in members))
    return out


def ref_first_sustained(states, r, s, h, members, length):
    w = states.shape[1]
    tau_max = min(h, w - 1 - s)
    death = None
    for tau in range(0, tau_max + 1):
        if states[r, s + tau] == DEAD:
            death = tau
            break
    for k in range(1, tau_max - length + 2):
        if death is not None and death <= k:
            break
        if all(states[r, s + k + j] in members for j in range(length)):
            return k, 1
    admin = max(tau_max - length + 1, 0)
    if death is not None and death < admin:
        return death, 0
    return admin, 0


def ref_first_exit(states, r, s, h, origin):
    w = states.shape[1]
    tau_max = min(h, w - 1 - s)
    cause_of = {"employed": 1, "education": 2, "health_benefit": 3, "retired_disabled": 3,
                "dead_emigrated": 0}
    for k in range(1, tau_max + 1):
        st = STATES[states[r, s + k]]
        if st not in origin:
            return k, cause_of.get(st, 4)
    return tau_max, 0


@pytest.fixture(scope="module")
def world():
    states = random_states(60, 130, seed=3)
    rng = np.random.default_rng(4)
    m = 80
    rows = rng.integers(0, 60, m).astype(np.int64)
    s = rng.integers(1, 129, m).astype(np.int64)
    return states, rows, s


@pytest.mark.parametrize("censor", [False, True])
def test_curves_and_scalars_match_loop(world, censor):
    states, rows, s = world
    h = 40
    if not censor:
        keep = s + h <= states.shape[1] - 1
        rows, s = rows[keep], s[keep]
    outs, _, _ = event_time_outcomes(
        states, rows, s, catalog=CAT, horizon=h, windows=((1, 20), (5, 40)),
        status_weeks=(10, 40), censor_missing=censor, chunk=7,
    )
    for name in ("employed", "self_support", "on_benefit", "employment_or_education"):
        members = CAT.members(name)
        ref = np.array(
            [ref_curve(states, r, t, h, members) for r, t in zip(rows, s, strict=True)], float
        )
        got = outs[name].astype(float)
        if censor:
            assert outs[name].dtype == np.float32
            np.testing.assert_array_equal(np.isnan(got), ref < 0)
            got = np.where(np.isnan(got), -1, got)
        else:
            assert outs[name].dtype == np.int8
        np.testing.assert_array_equal(got, ref)
        acc = np.where(ref[:, 1:21] < 0, np.nan, ref[:, 1:21]).sum(axis=1)
        np.testing.assert_array_equal(outs[f"{name}_acc_1_20"].astype(float), acc)
        st = np.where(ref[:, 40] < 0, np.nan, ref[:, 40])
        np.testing.assert_array_equal(outs[f"{name}_w40"].astype(float), st)
    assert "employed_acc_1_52" not in outs  # windows beyond H are skipped


def test_durations_match_loop(world):
    states, rows, s = world
    h = 40
    _, durs, elig = event_time_outcomes(
        states, rows, s, catalog=CAT, horizon=h, sustain=3, censor_missing=True, chunk=11,
    )
    ss_members = CAT.members("self_support")
    origin = ("passive_benefit", "activation", "subsidised_job")
    target = (STATES.index("passive_benefit"), STATES.index("activation"))
    for i, (r, t) in enumerate(zip(rows, s, strict=False)):
        assert (durs["first_self_support"].time[i], durs["first_self_support"].event[i]) == \
            ref_first_sustained(states, r, t, h, ss_members, 3), i
        assert (durs["first_exit"].time[i], durs["first_exit"].event[i]) == \
            ref_first_exit(states, r, t, h, origin), i
        # eligible_until: weeks s+1.. that stay eligible (state the week before in target)
        eu = 0
        while eu < h + 1:
            c = t + eu  # week s + eu + 1 is eligible iff the state in week s + eu is a target
            if c >= states.shape[1] or states[r, c] not in target:
                break
            eu += 1
        assert elig[i] == eu
    assert durs["first_exit"].causes == EXIT_CAUSES


def test_gather_windows_matches_loop(world):
    states, rows, s = world
    got = K.gather_windows(states, rows, s - 20, 35, chunk=9)
    for i, (r, t) in enumerate(zip(rows, s, strict=False)):
        for j in range(35):
            c = t - 20 + j
            exp = states[r, c] if 0 <= c < states.shape[1] else -1
            assert got[i, j] == exp


def test_gather_windows_far_outside():
    states = random_states(5, 12, seed=1)
    rows = np.array([0, 1, 2, 3, 4, 0], dtype=np.int64)
    start = np.array([-30, 20, -4, 10, 0, 3], dtype=np.int64)
    got = K.gather_windows(states, rows, start, 6, chunk=2)
    for i in range(6):
        for j in range(6):
            c = start[i] + j
            assert got[i, j] == (states[rows[i], c] if 0 <= c < 12 else -1)
    assert K.gather_windows(states, rows, start, 20).shape == (6, 20)


def test_first_sustained_edge_cases():
    ind = np.array([[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, -1, 1], [0, 0, 0, 1, 1]],
                   dtype=np.int8)
    assert K.first_sustained(ind, 3).tolist() == [1, 1, -1, -1]
    assert K.first_sustained(ind, 2).tolist() == [1, 1, 1, 3]
    assert K.first_sustained(ind, 6).tolist() == [-1, -1, -1, -1]


def test_unknown_outcome_name_is_rejected():
    with pytest.raises(DataValidationError,
                       match=r"outcomes: expected state or union names.*1 unknown"):
        outcome_luts(CAT, ["employed", "jobs"])


def test_row_order_does_not_change_outcomes(world):
    states, rows, s = world
    keep = s + 30 <= states.shape[1] - 1
    rows, s = rows[keep], s[keep]
    perm = np.random.default_rng(0).permutation(rows.size)
    a, da, ea = event_time_outcomes(states, rows, s, catalog=CAT, horizon=30)
    b, db, eb = event_time_outcomes(states, rows[perm], s[perm], catalog=CAT, horizon=30)
    for k in a:
        np.testing.assert_array_equal(a[k][perm], b[k])
    np.testing.assert_array_equal(ea[perm], eb)
    np.testing.assert_array_equal(da["first_exit"].time[perm], db["first_exit"].time)


def test_pre_start_curves_match_loop():
    import pandas as pd

    from mentor_impact.design.evaluation_data import EvaluationData
    from mentor_impact.design.outcomes import pre_start_curves
    from mentor_impact.registers import WeeklyRegister
    from mentor_impact.registers.isoweek import iso_to_ordinal, ordinal_to_iso

    codes = np.array([1001, 651, 0, 211, 231, 511, 711, 781, 998, 999], dtype=np.uint16)
    states = random_states(30, 80, seed=8)
    weeks = ordinal_to_iso(iso_to_ordinal(201001) + np.arange(80))
    reg = WeeklyRegister(codes[states], persons=np.arange(30), weeks=weeks, catalog=CAT)
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 30, 25)
    s = rng.integers(0, 80, 25)
    df = pd.DataFrame({"d": np.arange(25) % 2, "y": 0.0})
    data = EvaluationData(X=np.zeros((25, 0)), covariate_names=(), treatment=df["d"].to_numpy(),
                          cluster=rows, start_week=s)
    tau, curves = pre_start_curves(reg, data, ["employed", "on_benefit"], weeks=20)
    assert tau.tolist() == list(range(-20, 0))
    for name in ("employed", "on_benefit"):
        members = CAT.members(name)
        for i in range(25):
            for j, t in enumerate(tau):
                c = s[i] + t
                exp = np.nan if c < 0 else float(states[rows[i], c] in members)
                np.testing.assert_equal(curves[name][i, j], exp)
    sub = data.subset(np.arange(25) < 10)
    _, c2 = pre_start_curves(reg, sub, ["employed"], weeks=20)
    np.testing.assert_array_equal(c2["employed"], curves["employed"][:10])
    with pytest.raises(DataValidationError, match="expected a risk-set design"):
        pre_start_curves(reg, EvaluationData(X=np.zeros((2, 0)), covariate_names=(),
                                             treatment=np.array([0, 1])))


def _ref_first_run(row, length, first):
    for k in range(first, len(row) - length + 1):
        if all(row[k + j] == 1 for j in range(length)):
            return k
    return -1


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:

    @settings(max_examples=60, deadline=None)
    @given(
        ind=arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 20)),
                   elements=st.integers(-1, 1)),
        length=st.integers(1, 6),
        first=st.integers(0, 3),
    )
    def test_first_sustained_property(ind, length, first):
        got = K.first_sustained(ind, length, first=first)
        assert got.tolist() == [_ref_first_run(r.tolist(), length, first) for r in ind]

    @settings(max_examples=60, deadline=None)
    @given(
        w=st.integers(1, 15),
        length=st.integers(0, 25),
        starts=st.lists(st.integers(-30, 30), min_size=1, max_size=8),
    )
    def test_gather_windows_property(w, length, starts):
        states = np.arange(3 * w, dtype=np.int8).reshape(3, w) % 9
        rows = np.arange(len(starts), dtype=np.int64) % 3
        start = np.array(starts, dtype=np.int64)
        got = K.gather_windows(states, rows, start, length, chunk=3)
        for i in range(len(starts)):
            for j in range(length):
                c = start[i] + j
                assert got[i, j] == (states[rows[i], c] if 0 <= c < w else -1)


def test_later_start_at_risk_matches_loop(world):
    from mentor_impact.design.outcomes import later_start_at_risk

    states, rows, s = world
    targets = ("passive_benefit", "activation")
    members = {STATES.index(x) for x in targets}
    h = 30
    packed = later_start_at_risk(states, rows, s, catalog=CAT, horizon=h,
                                 eligible_states=targets, chunk=7)
    got = np.unpackbits(packed, axis=1, count=h + 1).astype(bool)
    w = states.shape[1]
    for i, (r, s0) in enumerate(zip(rows, s, strict=True)):
        ref = [False] + [bool(s0 + t - 1 < w and states[r, s0 + t - 1] in members)
                         for t in range(1, h + 1)]
        assert got[i].tolist() == ref, i
    # re-entry: some rows leave the target states and come back within the horizon
    runs = np.diff(got[:, 1:].astype(np.int8), axis=1)
    assert ((runs == -1).any(axis=1) & (runs == 1).any(axis=1)).any()
