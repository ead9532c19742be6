"""RiskSetDesign: risk sets against a plain-loop twin, sampling, flow table, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.design.risk_set import RiskSetDesign
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.registers import StateCatalog, TreatmentSpells, WeeklyRegister
from mentor_impact.registers.isoweek import iso_to_ordinal, ordinal_to_iso

CAT = StateCatalog.default()
STATES = CAT.STATES
CODE_OF_STATE = {"employed": 1001, "education": 651, "self_support_other": 0,
                 "passive_benefit": 211, "activation": 231, "subsidised_job": 511,
                 "health_benefit": 711, "retired_disabled": 781, "dead_emigrated": 998,
                 "unknown": 999}
CODES = np.array([CODE_OF_STATE[s] for s in STATES], dtype=np.uint16)
TARGET = (STATES.index("passive_benefit"), STATES.index("activation"))
DEAD = STATES.index("dead_emigrated")
FIRST_WEEK = 201001


def make_world(n=240, w=220, seed=5):
    rng = np.random.default_rng(seed)
    # sticky paths, most time in the target states so that risk sets are large
    st = np.empty((n, w), dtype=np.int8)
    st[:, 0] = rng.choice([3, 4, 0, 6], n)
    for t in range(1, w):
        move = rng.random(n) < 0.06
        new = rng.choice([0, 1, 2, 3, 3, 4, 4, 5, 6, 7], n)
        st[:, t] = np.where(move, new, st[:, t - 1])
        die = rng.random(n) < 0.0005
        st[:, t] = np.where(die | (st[:, t - 1] == DEAD), DEAD, st[:, t])
    weeks = ordinal_to_iso(iso_to_ordinal(FIRST_WEEK) + np.arange(w))
    persons = np.arange(n) * 7 + 1000
    reg = WeeklyRegister(CODES[st], persons=persons, weeks=weeks, catalog=CAT)
    # spells: up to 3 per person, non-overlapping, some with short gaps (merged)
    p_, s_, e_ = [], [], []
    for i in range(n):
        t = int(rng.integers(0, 60))
        for _ in range(int(rng.integers(0, 4))):
            t += int(rng.integers(1, 70))
            if t >= w:
                break
            length = int(rng.integers(2, 15))
            p_.append(persons[i])
            s_.append(t)
            e_.append(min(t + length - 1, w + 10))
            t += length
    ord0 = iso_to_ordinal(FIRST_WEEK)
    sp = TreatmentSpells(np.array(p_), ordinal_to_iso(ord0 + np.array(s_)),
                         ordinal_to_iso(ord0 + np.array(e_)))
    baseline = pd.DataFrame({
        "person": persons,
        "birth_year": rng.integers(1940, 1995, n),
        "sex": rng.choice(["female", "male"], n),
        "x1": rng.normal(size=n),
    })
    return reg, sp, baseline


@pytest.fixture(scope="module")
def world():
    return make_world()


def episodes_cols(reg, sp, gap=4):
    """Plain-loop episode merge and location (twin of spells.episodes + locate)."""
    ord0 = int(iso_to_ordinal(reg.weeks[0]))
    rows = {p: i for i, p in enumerate(reg.persons.tolist())}
    by = {}
    for p, a, b in zip(sp.person.tolist(), iso_to_ordinal(sp.start).tolist(),
                       iso_to_ordinal(sp.end).tolist(), strict=False):
        by.setdefault(rows[p], []).append([a - ord0, min(b - ord0, reg.n_weeks - 1)])
    out = {}
    for r, lst in by.items():
        lst.sort()
        merged = [lst[0]]
        for a, b in lst[1:]:
            if a - merged[-1][1] - 1 < gap:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out[r] = merged
    return out


def ref_design(reg, sp, baseline, *, horizon, min_history, washout, age_band, starts="first"):
    """Plain-loop twin of the risk sets (all controls kept)."""
    st = reg.states()
    n, w = st.shape
    eps = episodes_cols(reg, sp)
    ord0 = int(iso_to_ordinal(reg.weeks[0]))
    birth = iso_to_ordinal(baseline["birth_year"].to_numpy() * 100 + 26)

    def age_ok(i, s):
        if age_band is None:
            return True
        age = (ord0 + s - birth[i]) / 52.1775
        return age_band[0] <= age < age_band[1]

    def elig(i, s):
        if s < 1 or st[i, s - 1] not in TARGET or not age_ok(i, s):
            return False
        return all(not (a <= s - 1 and b >= s - washout) for a, b in eps.get(i, []))

    first = {}
    for i, lst in eps.items():
        for a, _ in lst:
            if elig(i, a):
                first[i] = a
                break
    lo, hi = max(1, min_history), w - horizon
    out = []
    for s in range(lo, hi):
        tr, co = [], []
        for i in range(n):
            if not elig(i, s):
                continue
            starts_now = any(a == s for a, _ in eps.get(i, []))
            if starts == "first":
                f = first.get(i, 10**9)
                if f == s:
                    tr.append(i)
                elif f > s and not starts_now:
                    co.append(i)
            else:
                if starts_now:
                    tr.append(i)
                else:
                    co.append(i)
        if tr and co:
            out += [(i, s, 1) for i in tr] + [(i, s, 0) for i in co]
    return out


@pytest.mark.parametrize("starts", ["first", "all"])
def test_risk_sets_match_plain_loop(world, starts):
    reg, sp, baseline = world
    kw = {"horizon": 30, "min_history": 40, "washout": 26, "age_band": (20, 60)}
    data = RiskSetDesign(controls_per_treated=None, starts=starts, year_bins=((1, 1),),
                         **kw).build(reg, sp, baseline, seed=1)
    got = sorted(zip(data.cluster.tolist(), data.start_week.tolist(),
                     data.treatment.tolist(), strict=False))
    exp = sorted(ref_design(reg, sp, baseline, starts=starts, **kw))
    assert len(exp) > 500 and sum(d for *_, d in exp) > 10
    assert got == exp
    np.testing.assert_array_equal(data.weight, 1.0)


def test_later_start_and_outcomes_alignment(world):
    reg, sp, baseline = world
    data = RiskSetDesign(horizon=30, min_history=40, washout=26, controls_per_treated=None,
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=1)
    eps = episodes_cols(reg, sp)
    st = reg.states()
    rng = np.random.default_rng(0)
    for j in rng.choice(data.n, 200, replace=False):
        i, s = int(data.cluster[j]), int(data.start_week[j])
        later = [a for a, _ in eps.get(i, []) if a > s]
        exp = 0 if data.treatment[j] == 1 else (min(later) - s if later else -1)
        assert data.later_start[j] == exp
        assert data.frame["later_start"].iloc[j] == exp
        emp = [int(st[i, s + t] == 0) for t in range(31)]
        assert data.outcome("employed")[j].tolist() == emp
        assert data.outcome("employed_acc_1_52") is not None if False else True
    assert data.frame["start_iso_week"].tolist() == reg.weeks[data.start_week].tolist()


@pytest.mark.parametrize("sampling", ["exact", "bernoulli"])
def test_control_sampling_weights(world, sampling):
    reg, sp, baseline = world
    kw = {"horizon": 30, "min_history": 40, "washout": 26, "year_bins": ((1, 1),)}
    full = RiskSetDesign(controls_per_treated=None, **kw).build(reg, sp, baseline, seed=1)
    sub = RiskSetDesign(controls_per_treated=3, sampling=sampling, **kw).build(
        reg, sp, baseline, seed=2)
    fk = set(zip(full.cluster.tolist(), full.start_week.tolist(), full.treatment.tolist(),
                 strict=True))
    sk = list(zip(sub.cluster.tolist(), sub.start_week.tolist(), sub.treatment.tolist(),
                  strict=True))
    assert set(sk) <= fk
    # all treated kept, weight 1
    assert sub.n_treated == full.n_treated
    np.testing.assert_array_equal(sub.weight[sub.treatment == 1], 1.0)
    # per risk set: weights are N0(s) / k_s (exact) or 1 / pi_s (Bernoulli)
    for s in np.unique(full.start_week)[:40]:
        n0 = int(((full.start_week == s) & (full.treatment == 0)).sum())
        n1 = int(((full.start_week == s) & (full.treatment == 1)).sum())
        c = (sub.start_week == s) & (sub.treatment == 0)
        if sampling == "exact":
            k = min(3 * n1, n0)
            assert c.sum() == k
            np.testing.assert_allclose(sub.weight[c], n0 / k)
        else:
            pi = min(1.0, 3 * n1 / n0)
            np.testing.assert_allclose(sub.weight[c], 1 / pi)
    # the weighted control count estimates the full count
    ratio = sub.weight[sub.treatment == 0].sum() / full.n_control
    assert abs(ratio - 1) < (1e-12 if sampling == "exact" else 0.05)


def test_seed_reproducible_and_row_order_of_persons(world):
    reg, sp, baseline = world
    d = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=2, year_bins=((1, 1),))
    a = d.build(reg, sp, baseline, seed=11)
    b = d.build(reg, sp, baseline, seed=11)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.cluster, b.cluster)
    # permuting the register rows (all controls kept) gives the same pairs
    perm = np.random.default_rng(1).permutation(reg.n_persons)
    reg2 = WeeklyRegister(reg.codes[perm], persons=reg.persons[perm], weeks=reg.weeks,
                          catalog=CAT)
    full = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=None,
                         year_bins=((1, 1),))
    x = full.build(reg, sp, baseline, seed=0)
    y = full.build(reg2, sp, baseline.iloc[perm].reset_index(drop=True), seed=0)
    kx = pd.DataFrame(x.X, columns=x.covariate_names)
    kx["p"] = reg.persons[x.cluster]
    kx["s"] = x.start_week
    ky = pd.DataFrame(y.X, columns=y.covariate_names)
    ky["p"] = reg2.persons[y.cluster]
    ky["s"] = y.start_week
    kx = kx.sort_values(["s", "p"]).reset_index(drop=True)
    ky = ky.sort_values(["s", "p"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(kx, ky)


def test_sample_flow_counts_every_episode(world):
    reg, sp, baseline = world
    data = RiskSetDesign(horizon=30, min_history=40, washout=26, controls_per_treated=4,
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=3)
    flow = data.sample_flow
    assert list(flow.columns) == ["section", "item", "count", "value"]
    n_ep = int(flow.query("item.str.startswith('episodes')", engine="python")["count"].iloc[0])
    excl = int(flow.loc[flow.section == "exclusions", "count"].sum())
    kept = int(flow.loc[flow.item == "treated starts kept", "count"].iloc[0])
    assert kept == data.n_treated
    assert n_ep == excl + kept
    assert int(flow.loc[flow.section == "episodes_by_year", "count"].sum()) == n_ep
    assert int(flow.loc[flow.section == "treated_by_year", "count"].sum()) == kept
    later = flow[flow.section == "controls_treated_later"]
    assert (np.diff(later["value"].to_numpy()) >= 0).all()
    assert (later["value"] <= 1).all()


def test_frame_cells_and_metadata(world):
    reg, sp, baseline = world
    data = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=4,
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=3)
    fr = data.frame
    for c in ("person_row", "start_iso_week", "benefit_type", "activity", "start_year",
              "calendar_period", "duration_band", "later_start", "eligible_until",
              "sampling_prob", "age_band", "sex"):
        assert c in fr.columns, c
    assert set(fr["benefit_type"]) <= {"passive_benefit", "activation"}
    # one cell code per (benefit, period, band) combination
    combo = (fr["benefit_type"].astype(str) + "|" + fr["calendar_period"].astype(str) + "|"
             + fr["duration_band"].astype(str))
    assert fr["calendar_period"].astype(str).str.fullmatch(r"\d{4}Q[1-4]").all()
    assert set(fr["age_band"].astype(str)) <= {"<18", "18-29", "30-39", "40-49", "50-64", "65+"}
    assert pd.Series(data.cell).groupby(combo.to_numpy()).nunique().max() == 1
    assert combo.groupby(data.cell).nunique().max() == 1
    assert "age" in data.covariate_names and "sexmale" in data.covariate_names
    assert "birth_year" not in data.covariate_names
    assert set(data.durations) == {"first_self_support", "first_exit"}
    assert data.outcome("self_support").shape == (data.n, 31)
    assert data.meta["design"]["horizon"] == 30


# ---------------------------------------------------------------- bad input
def test_spells_for_unknown_persons(world):
    reg, sp, baseline = world
    bad = TreatmentSpells(np.r_[sp.person[:5], [-1, -2]], np.r_[sp.start[:5], [201101, 201102]],
                          np.r_[sp.end[:5], [201103, 201104]])
    with pytest.raises(DataValidationError, match=r"spells: expected persons of the register; "
                       r"found 2 of 7 spells .*rows 5, 6"):
        RiskSetDesign(horizon=30, min_history=40).build(reg, bad, baseline, seed=0)


def test_spells_starting_outside_register(world):
    reg, sp, baseline = world
    p = sp.person[:3]
    bad = TreatmentSpells(p, [200801, 201101, 203001], [200805, 201105, 203005])
    with pytest.raises(DataValidationError, match=r"found 2 of 3 spells starting outside "
                       r"\(rows 0, 2\)"):
        RiskSetDesign(horizon=30, min_history=40).build(reg, bad, baseline, seed=0)


def test_horizon_beyond_data(world):
    reg, sp, baseline = world
    with pytest.raises(DataValidationError, match=r"horizon: expected min_history \(156\) \+ "
                       r"horizon \(156\).*220 weeks"):
        RiskSetDesign().build(reg, sp, baseline, seed=0)


def test_empty_risk_sets(world):
    reg, sp, baseline = world
    with pytest.raises(DataValidationError, match=r"expected at least one treated start.*"
                       r"found 0 treated.*age outside \[90, 99\): \d+"):
        RiskSetDesign(horizon=30, min_history=40, age_band=(90, 99)).build(
            reg, sp, baseline, seed=0)


def test_baseline_must_match_register(world):
    reg, sp, baseline = world
    with pytest.raises(DataValidationError, match=r"baseline: expected the first column.*"
                       r"2 rows differ \(rows 0, 1\)"):
        RiskSetDesign(horizon=30, min_history=40).build(
            reg, sp, baseline.iloc[[1, 0, *range(2, len(baseline))]], seed=0)
    strid = baseline.assign(person=baseline["person"].astype(str))
    with pytest.raises(DataValidationError, match=r"240 rows differ \(rows 0, 1, 2, 3, 4, "):
        RiskSetDesign(horizon=30, min_history=40).build(reg, sp, strid, seed=0)
    with pytest.raises(DataValidationError, match=r"one row per register row \(240\); found 10"):
        RiskSetDesign(horizon=30, min_history=40).build(reg, sp, baseline.iloc[:10], seed=0)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"controls_per_treated": -1}, "controls_per_treated: expected a positive number"),
        ({"sampling": "poisson"}, "sampling: expected 'exact' or 'bernoulli'"),
        ({"target_states": ("cash",)}, r"target_states: expected state names.*1 unknown"),
        ({"follow_up": "maybe"}, "follow_up: expected 'complete' or 'censor'"),
        ({"duration_bands": (5, 3)}, "duration_bands: expected increasing"),
        ({"age_band": (60, 20)}, r"age_band: expected \(lo, hi\)"),
    ],
)
def test_bad_configuration(world, kw, msg):
    reg, sp, baseline = world
    with pytest.raises(ConfigurationError, match=msg):
        RiskSetDesign(**kw).build(reg, sp, baseline, seed=0)


def test_age_band_needs_birth_column(world):
    reg, sp, baseline = world
    with pytest.raises(ConfigurationError, match="age_band: needs the baseline column 'born'"):
        RiskSetDesign(horizon=30, min_history=40, birth_column="born").build(
            reg, sp, baseline, seed=0)


def test_censor_follow_up_keeps_late_starts(world):
    reg, sp, baseline = world
    data = RiskSetDesign(horizon=30, min_history=40, follow_up="censor", controls_per_treated=2,
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=0)
    assert data.start_week.max() > reg.n_weeks - 31
    late = data.start_week > reg.n_weeks - 31
    y = data.outcome("employed")
    assert y.dtype == np.float32 and np.isnan(y[late]).any() and not np.isnan(y[~late]).any()
    t = data.durations["first_exit"].time
    assert (t <= np.minimum(30, reg.n_weeks - 1 - data.start_week)).all()


def test_monthly_cells_and_bands(world):
    reg, sp, baseline = world
    data = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=2,
                         cell_period="month", duration_bands=(0, 10, 40),
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=3)
    fr = data.frame
    assert fr["calendar_period"].astype(str).str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])").all()
    el = data.column("elapsed_benefit_weeks")
    exp = np.where(el < 10, "0-9", np.where(el < 40, "10-39", "40+"))
    assert (fr["duration_band"].astype(str).to_numpy() == exp).all()


@pytest.mark.parametrize("sampling", ["exact", "bernoulli"])
def test_control_share(world, sampling):
    reg, sp, baseline = world
    kw = {"horizon": 30, "min_history": 40, "year_bins": ((1, 1),)}
    full = RiskSetDesign(controls_per_treated=None, **kw).build(reg, sp, baseline, seed=1)
    sub = RiskSetDesign(control_share=0.25, sampling=sampling, **kw).build(
        reg, sp, baseline, seed=4)
    assert sub.n_treated == full.n_treated
    for s in np.unique(full.start_week)[:30]:
        n0 = int(((full.start_week == s) & (full.treatment == 0)).sum())
        c = (sub.start_week == s) & (sub.treatment == 0)
        if sampling == "exact":
            k = int(np.floor(0.25 * n0 + 0.5))
            assert c.sum() == k
            np.testing.assert_allclose(sub.weight[c], n0 / k)
        else:
            np.testing.assert_allclose(sub.weight[c], 4.0)
    np.testing.assert_allclose(sub.frame["sampling_prob"], 1 / sub.weight)


def test_wrong_input_types(world):
    reg, sp, baseline = world
    with pytest.raises(DataValidationError, match=r"spells: expected a TreatmentSpells; got "
                       r"DataFrame without"):
        RiskSetDesign().build(reg, sp.to_frame(), baseline, seed=0)
    with pytest.raises(DataValidationError, match=r"register: expected a WeeklyRegister"):
        RiskSetDesign().build(reg.codes, sp, baseline, seed=0)


def test_sampling_does_not_depend_on_register_row_order(world):
    reg, sp, baseline = world
    perm = np.random.default_rng(7).permutation(reg.n_persons)
    reg2 = WeeklyRegister(reg.codes[perm], persons=reg.persons[perm], weeks=reg.weeks,
                          catalog=CAT)
    design = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=2,
                           year_bins=((1, 1),))
    for sampling in ("exact", "bernoulli"):
        design.sampling = sampling
        a = design.build(reg, sp, baseline, seed=5)
        b = design.build(reg2, sp, baseline.iloc[perm].reset_index(drop=True), seed=5)
        ka = sorted(zip(reg.persons[a.cluster].tolist(), a.start_week.tolist(),
                        a.weight.tolist(), strict=True))
        kb = sorted(zip(reg2.persons[b.cluster].tolist(), b.start_week.tolist(),
                        b.weight.tolist(), strict=True))
        assert ka == kb
        c = design.build(reg, sp, baseline, seed=6)
        assert not np.array_equal(a.cluster, c.cluster)


def test_pair_uniforms_are_uniform_and_keyed():
    from scipy import stats

    from mentor_impact._kernels.design import pair_uniforms

    keys = np.arange(20_000, dtype=np.uint64) * np.uint64(2654435761)
    u = pair_uniforms(keys, 123, 7)
    assert ((u >= 0) & (u < 1)).all()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    np.testing.assert_array_equal(u[::-1], pair_uniforms(keys[::-1], 123, 7))
    assert abs(np.corrcoef(u, pair_uniforms(keys, 123, 8))[0, 1]) < 0.05
    assert abs(np.corrcoef(u, pair_uniforms(keys, 124, 7))[0, 1]) < 0.05


def test_exclusion_reasons_match_plain_loop(world):
    """Every episode start is attributed to exactly the first rule it fails (loop twin)."""
    reg, sp, baseline = world
    h, mh, wash, band = 30, 40, 26, (20, 60)
    lo_lab, hi_lab = int(reg.weeks[60]), int(reg.weeks[150])
    data = RiskSetDesign(horizon=h, min_history=mh, washout=wash, age_band=band,
                         start_weeks=(lo_lab, hi_lab), controls_per_treated=3,
                         year_bins=((1, 1),)).build(reg, sp, baseline, seed=0)
    st = reg.states()
    w = reg.n_weeks
    eps = episodes_cols(reg, sp)
    ord0 = int(iso_to_ordinal(reg.weeks[0]))
    birth = iso_to_ordinal(baseline["birth_year"].to_numpy() * 100 + 26)
    counts = dict.fromkeys(["hist", "fu", "window", "state", "wash", "age", "first", "kept"], 0)
    for i, lst in eps.items():
        first_found = False
        for e, (a, _) in enumerate(lst):
            age = (ord0 + a - birth[i]) / 52.1775
            ok_state = a >= 1 and st[i, a - 1] in TARGET
            ok_wash = all(b < a - wash for _, b in lst[:e])
            ok_age = band[0] <= age < band[1]
            elig = ok_state and ok_wash and ok_age
            was_first = elig and not first_found
            first_found = first_found or elig
            if a < mh:
                counts["hist"] += 1
            elif a >= w - h:
                counts["fu"] += 1
            elif not 60 <= a <= 150:
                counts["window"] += 1
            elif not ok_state:
                counts["state"] += 1
            elif not ok_wash:
                counts["wash"] += 1
            elif not ok_age:
                counts["age"] += 1
            elif not was_first:
                counts["first"] += 1
            else:
                counts["kept"] += 1
    flow = data.sample_flow
    got = flow.loc[flow.section == "exclusions", "count"].tolist()
    exp = [counts[k] for k in ("hist", "fu", "window", "state", "wash", "age", "first")]
    assert got[:7] == exp
    assert min(exp) > 0  # every rule is exercised
    assert got[7] == 0  # no risk set without controls here
    assert data.n_treated == counts["kept"]
    assert data.start_week.min() >= 60 and data.start_week.max() <= 150


def test_benefit_type_column_and_missing_baseline(world):
    reg, sp, baseline = world
    bl = baseline.assign(btype=np.where(np.arange(len(baseline)) % 3 == 0, "insured", "cash"))
    data = RiskSetDesign(horizon=30, min_history=40, controls_per_treated=2,
                         benefit_type_column="btype", baseline_covariates=["x1"],
                         year_bins=((1, 1),)).build(reg, sp, bl, seed=0)
    fr = data.frame
    exp = np.where(data.cluster % 3 == 0, "insured", "cash")
    assert (fr["benefit_type"].astype(str).to_numpy() == exp).all()
    combo = fr["benefit_type"].astype(str) + fr["calendar_period"].astype(str) \
        + fr["duration_band"].astype(str)
    assert combo.groupby(data.cell).nunique().max() == 1
    assert pd.Series(data.cell).groupby(combo.to_numpy()).nunique().max() == 1
    assert data.covariate_names[0] == "x1" and "sexmale" not in data.covariate_names
    bad = baseline.copy()
    bad.loc[[3, 8], "x1"] = np.nan
    with pytest.raises(DataValidationError, match=r"baseline: column 'x1' has 2 missing values "
                       r"\(baseline rows 3, 8\)"):
        RiskSetDesign(horizon=30, min_history=40).build(reg, sp, bad, seed=0)
    with pytest.raises(ConfigurationError, match=r"baseline_covariates: expected baseline "
                       r"columns; 1 not found"):
        RiskSetDesign(horizon=30, min_history=40, baseline_covariates=["nope"]).build(
            reg, sp, baseline, seed=0)
    with pytest.raises(ConfigurationError, match="benefit_type_column: expected a baseline"):
        RiskSetDesign(horizon=30, min_history=40, benefit_type_column="nope").build(
            reg, sp, baseline, seed=0)
