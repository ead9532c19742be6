from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.datasets import OUTCOMES, simulate_mentor_study
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.registers import TreatmentSpells, WeeklyRegister, iso_to_ordinal

N = 10_000
SCALE = 200_000 / N


@pytest.fixture(scope="module")
def study():
    return simulate_mentor_study(n_persons=N, seed=11)


# ---------------------------------------------------------------- structure
def test_structure(study):
    reg = study.register
    assert isinstance(reg, WeeklyRegister) and isinstance(study.spells, TreatmentSpells)
    assert reg.n_persons == N and reg.n_weeks == 521
    assert reg.weeks[0] == 200801 and reg.weeks[-1] == 201751
    assert 200953 in reg.weeks and 201553 in reg.weeks  # long ISO years
    b = study.baseline
    assert b.columns[0] == "person" and len(b) == N
    assert np.array_equal(b["person"].to_numpy(), reg.persons)
    assert set(b.columns) >= {"birth_year", "female", "immigrant", "education",
                              "psychiatric_history", "region"}
    t = study.truth
    assert list(t.columns) == ["outcome", "estimand", "tau", "treated_mean",
                               "counterfactual_mean", "effect"]
    assert set(t["outcome"]) == set(OUTCOMES) and set(t["estimand"]) == {"A", "B"}
    assert t.groupby(["outcome", "estimand"]).size().eq(157).all()
    assert np.allclose(t["effect"], t["treated_mean"] - t["counterfactual_mean"])
    po = study.potential_outcomes
    assert po.treated.dtype == np.int8 and po.treated.shape == (po.n_starts, 157)


def test_treated_paths_are_register_states(study):
    po = study.potential_outcomes
    states = study.register.states()
    taus = np.arange(157)
    assert np.array_equal(po.treated, states[po.rows[:, None], po.start_cols[:, None] + taus])


def test_spells_inside_register_and_episodes(study):
    reg, sp = study.register, study.spells
    _row, sc, ec = sp.locate(reg)  # raises if outside
    assert (ec >= sc).all()
    ep = sp.episodes(gap=4)
    assert len(ep) < len(sp)  # some registrations are fragmented
    assert ep.washout_ok(52).all()  # every episode respects the washout by construction
    # treated starts = first episode start per person inside the window
    er, es, _ = ep.locate(reg)
    w0, w1 = reg.column([201201, 201452])
    inwin = (es >= w0) & (es <= w1)
    first = pd.DataFrame({"r": er[inwin], "s": es[inwin]}).groupby("r")["s"].min()
    po = study.potential_outcomes
    assert np.array_equal(first.index.to_numpy(), po.rows)
    assert np.array_equal(first.to_numpy(), po.start_cols)


def test_eligibility_at_every_start_loop(study):
    """Plain-loop twin of the eligibility rule applied by the simulator's vectorised hazard."""
    reg = study.register
    states = reg.states()
    ep = study.spells.episodes(gap=4)
    rows, sc, ec = ep.locate(reg)
    birth = study.baseline["birth_year"].to_numpy()
    ords = iso_to_ordinal(reg.weeks)
    last_end: dict[int, int] = {}
    order = np.lexsort((sc, rows))
    for k in order[:3000]:
        r, s = int(rows[k]), int(sc[k])
        assert states[r, s - 1] in (3, 4)  # passive_benefit or activation in s - 1
        assert s - last_end.get(r, -(10**6)) > 52  # no episode in s-52..s-1
        age = (ords[s] - iso_to_ordinal(int(birth[r]) * 100 + 26)) / 52.1775
        assert 18 <= age < 65
        last_end[r] = int(ec[k])


# ---------------------------------------------------------------- calibration (METHODS §1)
def test_calibration_facts(study):
    s = study.summary()
    for y in (2012, 2013, 2014):
        assert 14_000 <= s[f"starters_{y}"] * SCALE <= 26_000, y
    assert 18.0 <= s["mean_episode_weeks"] <= 22.0  # just under 5 months
    assert 0.33 <= s["share_activation_at_start"] <= 0.47  # about 40% active
    assert 0.50 <= s["share_passive_at_start"] <= 0.67  # about half passive
    assert 120 <= s["mean_benefit_weeks_at_start"] <= 200  # about 3 years on benefit
    assert 3.0 <= s["mean_hours_per_week"] <= 3.8  # 3.4 mentor hours per week


def test_truth_lock_in_then_rise(study):
    t = study.truth.set_index(["outcome", "estimand", "tau"])["effect"].sort_index()
    for outcome in ("employed", "employment_or_education"):
        for est in ("A", "B"):
            curve = t.loc[(outcome, est)]
            dip = curve.loc[5:25].mean()
            late = curve.loc[130:156].mean()
            assert dip < -0.003, (outcome, est, dip)
            assert late > 0.005, (outcome, est, late)
            assert curve.loc[104:156].mean() > curve.loc[52:103].mean()
    # B's counterfactual forbids later starts, so its late effect is at least A's (on average)
    a = t.loc[("employed", "A")].loc[104:156].mean()
    b = t.loc[("employed", "B")].loc[104:156].mean()
    assert b >= a - 0.002


# ---------------------------------------------------------------- exactness of the truth
def test_no_effect_means_identical_potential_paths():
    st = simulate_mentor_study(n_persons=3_000, seed=5, effect_scale=0.0)
    po = st.potential_outcomes
    assert po.n_starts > 100
    assert np.array_equal(po.treated, po.never_now)
    assert np.array_equal(po.treated, po.never_followup)
    assert (st.truth["effect"] == 0).all()


def test_determinism_same_seed_identical():
    a = simulate_mentor_study(n_persons=2_000, seed=3)
    b = simulate_mentor_study(n_persons=2_000, seed=3)
    assert np.array_equal(a.register.codes, b.register.codes)
    assert np.array_equal(a.register.persons, b.register.persons)
    pd.testing.assert_frame_equal(a.spells.to_frame(), b.spells.to_frame())
    pd.testing.assert_frame_equal(a.baseline, b.baseline)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert np.array_equal(a.potential_outcomes.never_now, b.potential_outcomes.never_now)
    c = simulate_mentor_study(n_persons=2_000, seed=4)
    assert not np.array_equal(a.register.codes, c.register.codes)
    g = simulate_mentor_study(n_persons=2_000, seed=np.random.default_rng(3))
    assert g.register.codes.shape == a.register.codes.shape


def test_selection_on_observables_and_confounding_knob():
    base = simulate_mentor_study(n_persons=6_000, seed=8)
    conf = simulate_mentor_study(n_persons=6_000, seed=8, confounding=1.0)
    u0 = base.latent["u"].to_numpy()[base.potential_outcomes.rows]
    u1 = conf.latent["u"].to_numpy()[conf.potential_outcomes.rows]
    assert abs(u0.mean()) < 4 / np.sqrt(u0.size)  # u plays no role without the knob
    assert u1.mean() > 0.2  # with the knob the treated have higher u


# ---------------------------------------------------------------- truth_for
def test_truth_for_all_equals_truth(study):
    po = study.potential_outcomes
    got = study.truth_for(po.rows, po.start_cols, "employed", "B")
    want = study.truth.query("outcome == 'employed' and estimand == 'B'")
    assert np.allclose(got["effect"].to_numpy(), want["effect"].to_numpy(), rtol=0, atol=1e-12)


def test_truth_for_subset_order_and_weights(study):
    po = study.potential_outcomes
    rng = np.random.default_rng(0)
    pick = rng.choice(po.n_starts, 300, replace=False)
    a = study.truth_for(po.rows[pick], po.start_cols[pick], "education", "A")
    perm = rng.permutation(300)
    b = study.truth_for(po.rows[pick][perm], po.start_cols[pick][perm], "education", "A")
    pd.testing.assert_frame_equal(a, b)
    # frequency weight 2 == duplicated rows
    dup = np.r_[pick, pick[:50]]
    c = study.truth_for(po.rows[dup], po.start_cols[dup], "education", "A")
    w = np.ones(300)
    w[:50] = 2.0
    d = study.truth_for(po.rows[pick], po.start_cols[pick], "education", "A", weights=w)
    assert np.allclose(c["effect"], d["effect"], atol=1e-12)
    # loop twin of the average
    y1, y0 = po.curves("education", "A")
    loop = [sum(int(y1[i, 10]) - int(y0[i, 10]) for i in pick) / 300]
    assert np.isclose(a["effect"].iloc[10], loop[0])


def test_truth_for_bad_input(study):
    po = study.potential_outcomes
    rows = po.rows[:4].copy()
    cols = po.start_cols[:4].copy()
    cols[2] += 1
    with pytest.raises(DataValidationError, match=r"rows, start_cols: expected treated starts.*"
                       r"found 1 pairs that are not \(positions 2\)"):
        study.truth_for(rows, cols, "employed")
    with pytest.raises(ConfigurationError, match="estimand: expected 'A'"):
        study.truth_for(po.rows[:2], po.start_cols[:2], "employed", "C")
    with pytest.raises(ConfigurationError, match="name: expected a state or union"):
        study.truth_for(po.rows[:2], po.start_cols[:2], "wealth")
    with pytest.raises(DataValidationError, match="weights: expected 2 finite non-negative"):
        study.truth_for(po.rows[:2], po.start_cols[:2], "employed", weights=[1.0, -1.0])


def test_bad_config():
    with pytest.raises(ConfigurationError, match="n_persons: expected a positive integer"):
        simulate_mentor_study(n_persons=0)
    with pytest.raises(ConfigurationError, match="start_window: expected a first week at least"):
        simulate_mentor_study(n_persons=100, start_window=(200901, 201001))
    with pytest.raises(DataValidationError, match="start_window: expected valid ISO week"):
        simulate_mentor_study(n_persons=100, start_window=(201254, 201301))
    with pytest.raises(ConfigurationError, match="start_rate: expected a positive number"):
        simulate_mentor_study(n_persons=100, start_rate=0.0)


def test_summary_is_series(study):
    s = study.summary()
    assert s["persons"] == N and s["treated_starts"] == study.potential_outcomes.n_starts


# ---------------------------------------------------------------- kernel twins
def _draw_destination_loop(prev, unif, p_e, p_u):
    from mentor_impact.datasets.simulate import _P0

    out = []
    for o, x, pe, pu in zip(prev, unif, p_e, p_u, strict=True):
        probs = [pe, pu, *list(_P0[int(o), 2:])]
        acc = 0.0
        dest = int(o)
        for d, p in enumerate(probs):
            acc += p
            if float(x) < acc:
                dest = d
                break
        out.append(dest)
    return np.array(out, dtype=np.int8)


def test_draw_destination_matches_loop():
    from mentor_impact.datasets.simulate import _draw_destination

    rng = np.random.default_rng(0)
    n = 5_000
    prev = rng.integers(0, 9, n).astype(np.int8)
    unif = (rng.random(n) * 0.05).astype(np.float32)  # many movers
    p_e = rng.random(n) * 0.01
    p_u = rng.random(n) * 0.01
    got = _draw_destination(prev, unif, p_e, p_u)
    assert np.array_equal(got, _draw_destination_loop(prev, unif, p_e, p_u))
    assert (got != prev).mean() > 0.2


def test_spell_length_distribution():
    from mentor_impact.datasets.simulate import _spell_length

    q = np.random.default_rng(1).random(20_000).astype(np.float32)
    L = _spell_length(q, 21.0, 2.5)
    assert L.min() >= 1 and abs(L.mean() - 21.0) < 0.5
    assert np.array_equal(_spell_length(q, 21.0, 2.5), L)  # a function of the uniform only


def test_design_rebuilds_exactly_the_treated_starts():
    """Contract with the risk-set design: its treated rows are the simulator's treated starts."""
    design_mod = pytest.importorskip("mentor_impact.design.risk_set")
    st = simulate_mentor_study(n_persons=3_000, seed=2)
    data = design_mod.RiskSetDesign(horizon=156, controls_per_treated=2,
                                    start_weeks=(201201, 201452)).build(
        st.register, st.spells, st.baseline, seed=1)
    tr = np.asarray(data.treatment) == 1
    rows, cols = np.asarray(data.cluster)[tr], np.asarray(data.start_week)[tr]
    po = st.potential_outcomes
    assert tr.sum() == po.n_starts
    key = np.sort(rows * 10_000 + cols)
    assert np.array_equal(key, np.sort(po.rows * 10_000 + po.start_cols))
    # the design's observed treated curves are the treated potential outcomes
    t = st.truth_for(rows, cols, "employed", "A")
    y = np.asarray(data.outcome("employed"))[tr]
    assert np.allclose(y.mean(axis=0), t["treated_mean"].to_numpy())
