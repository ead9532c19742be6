"""Weeks not at risk of a start (``start_gaps``) in the timing-of-events model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _toe_reference import (
    assert_curves_match_loop,
    assert_gradient_matches_fd,
    loglik_loop,
    z_vs_truth,
)
from test_toe import BINS, EC, SC, _small

from mentor_impact._kernels import toe as K_
from mentor_impact.datasets.toe_sim import simulate_toe
from mentor_impact.duration import TimingOfEvents
from mentor_impact.exceptions import DataValidationError


def _random_gaps(df, seed=0):
    """Up to two non-overlapping ranges per spell, some before entry or past the exit,
    never holding the start week. Returns the frame and spell -> set of weeks."""
    rng = np.random.default_rng(seed)
    rows, first, last = [], [], []
    weeks: dict[int, set[int]] = {}
    for i, (T, tm) in enumerate(zip(df.duration.to_numpy(), df.start.to_numpy(), strict=True)):
        lo = 1
        for _ in range(2):
            if rng.random() < 0.4 or lo > T + 3:
                continue
            f = int(rng.integers(lo, T + 4))
            g = int(f + rng.integers(0, 6))
            if tm >= 0 and f <= tm <= g:
                g = tm - 1
            if g < f:
                continue
            rows.append(i)
            first.append(f)
            last.append(g)
            weeks.setdefault(i, set()).update(range(f, g + 1))
            lo = g + 2
    gdf = pd.DataFrame({"spell": rows, "first": first, "last": last})
    return gdf, weeks


def _kernel(df, K, truncated, gdf, *, pz=1, start_before_entry=True, seed=0):
    rng = np.random.default_rng(seed)
    n = len(df)
    X = df[["x1", "x2"]].to_numpy()
    Z = X[:, :pz]
    w = rng.integers(1, 4, n).astype(float)
    gaps = (gdf.spell.to_numpy(), gdf["first"].to_numpy() - 1, gdf["last"].to_numpy())
    D = K_.build_toe_data(
        df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(), df.entry.to_numpy(),
        X, Z, w, EC, SC, BINS, 2, condition_on_entry=truncated,
        start_before_entry=start_before_entry, gaps=gaps,
    )
    L = K_.Layout(R=2, Qe=EC.size, Qm=SC.size, J=BINS.size, p=2, pz=pz, K=K)
    theta = rng.normal(0, 0.3, L.size)
    P = L.unpack(theta)
    theta = L.pack({**P, "alpha_e": P["alpha_e"] - 2.5, "alpha_m": P["alpha_m"] - 2.5})
    return D, L, theta, w, X, Z


def _loop_args(df, X, Z, w, truncated):
    return (df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(),
            df.entry.to_numpy(), X, Z, w, EC, SC, BINS, truncated)


@pytest.mark.parametrize(
    "truncated,before,K", [(False, True, 1), (True, True, 3), (True, False, 2)]
)
def test_loglik_with_gaps_matches_loop_twin(truncated, before, K):
    df = _small(30, max_entry=6 if truncated else 0)
    gdf, weeks = _random_gaps(df)
    assert len(gdf) > 10
    D, L, theta, w, X, Z = _kernel(df, K, truncated, gdf, start_before_entry=before)
    ref = loglik_loop(L.unpack(theta), *_loop_args(df, X, Z, w, truncated),
                      start_before_entry=before, gaps=weeks)
    assert K_.loglik(theta, L, D) == pytest.approx(ref, rel=1e-10)
    # the gaps matter: without them the likelihood differs
    ref0 = loglik_loop(L.unpack(theta), *_loop_args(df, X, Z, w, truncated),
                       start_before_entry=before)
    assert abs(ref - ref0) > 1e-3


def test_gradient_with_gaps_matches_finite_differences():
    df = _small(40, max_entry=6)
    gdf, _ = _random_gaps(df, seed=1)
    D, L, theta, *_ = _kernel(df, 3, True, gdf)
    assert_gradient_matches_fd(K_, theta, L, D)


@pytest.mark.parametrize("before", [True, False])
def test_curves_with_gaps_match_loop_twin(before):
    df = _small(40, max_entry=5)
    gdf, weeks = _random_gaps(df, seed=2)
    D, L, theta, _w, X, Z = _kernel(df, 2, True, gdf, start_before_entry=before)
    assert_curves_match_loop(K_, theta, L, D, df, X, Z, start_before_entry=before, gaps=weeks)


def test_gaps_past_the_spell_or_empty_change_nothing():
    df = _small(30)
    D0, L, theta, *_ = _kernel(df, 2, False, pd.DataFrame({"spell": [], "first": [],
                                                            "last": []}, dtype=np.int64))
    late = pd.DataFrame({"spell": np.arange(len(df)), "first": df.duration + 1,
                         "last": df.duration + 5})
    D1, *_ = _kernel(df, 2, False, late)
    assert K_.loglik(theta, L, D0) == pytest.approx(K_.loglik(theta, L, D1), rel=1e-14)


# ---------------------------------------------------------------------------- fit level


@pytest.fixture(scope="module")
def gap_sim():
    return simulate_toe(
        3000, n_support_points=2, start_gap_share=0.6, start_gap_weeks=(10, 40), seed=11,
    )


def _fit(sim, gaps, **kw):
    est = TimingOfEvents(
        exit_cuts=sim.config["exit_cuts"], start_cuts=sim.config["start_cuts"],
        effect_bins=sim.config["effect_bins"], support_points=2, **kw,
    )
    return est.fit(sim.data, duration="duration", exit="exit", start="start",
                   covariates=["x1", "x2"], start_gaps=gaps, seed=0)


def test_fit_with_gaps_recovers_the_start_hazard_and_ignoring_them_does_not(gap_sim):
    sim = gap_sim
    assert len(sim.start_gaps) > 1000
    res = _fit(sim, sim.start_gaps)
    tab = z_vs_truth(res, sim, ["baseline", "effect"])
    base = tab[tab.equation == "start"].set_index("term")
    assert (np.abs(base.z) < 3).all(), base
    eff = tab[tab.block == "effect"]
    assert (np.abs(eff.z) < 3.5).all(), eff
    g, d = sim.start_gaps, sim.data
    last = np.where(d.start >= 0, d.start - 1, d.duration)[g.spell]
    n_weeks = np.maximum(np.minimum(g["last"], last) - (g["first"] - 1), 0).sum()
    assert any(f"start hazard: {n_weeks} spell-weeks" in s for s in res.notes), res.notes
    assert res.config["start_gaps"] == len(sim.start_gaps)
    # ignoring the gaps counts weeks without any chance of a start as exposure
    res0 = _fit(sim, None)
    tab0 = z_vs_truth(res0, sim, ["baseline"])
    base0 = tab0[tab0.equation == "start"].set_index("term")
    assert (base0.estimate < base.estimate - 3 * base.std_error).all()
    assert (np.abs(base0.z) > 3).any()


def test_row_order_with_gaps_changes_nothing(gap_sim):
    sim = gap_sim
    df = sim.data.iloc[:800]
    g = sim.start_gaps[sim.start_gaps.spell < 800]
    perm = np.random.default_rng(3).permutation(len(df))
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    g2 = g.assign(spell=inv[g.spell.to_numpy()]).iloc[::-1]
    small = type(sim)(data=df, truth=sim.truth, mass_points=sim.mass_points,
                      config=sim.config)
    a = _fit(small, g)
    b = _fit(type(sim)(data=df.iloc[perm].reset_index(drop=True), truth=sim.truth,
                       mass_points=sim.mass_points, config=sim.config), g2)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-9)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "gaps,match",
    [
        (pd.DataFrame({"spell": [0], "first": [1]}), "columns spell, first, last"),
        (pd.DataFrame({"spell": [0], "first": [0], "last": [3]}), "1 <= first <= last"),
        (pd.DataFrame({"spell": [10**6], "first": [1], "last": [3]}), "spell positions"),
        (pd.DataFrame({"spell": [0, 0], "first": [1, 3], "last": [4, 6]}), "overlap"),
        (pd.DataFrame({"spell": [0], "first": [1.5], "last": [3]}), "integer"),
        ([(0, 1, 3)], "DataFrame"),
    ],
)
def test_bad_gaps_raise_clear_errors(gap_sim, gaps, match):
    with pytest.raises(DataValidationError, match=match):
        _fit(gap_sim, gaps)


def test_gap_holding_the_start_week_raises(gap_sim):
    df = gap_sim.data
    i = int(np.flatnonzero(df.start.to_numpy() > 2)[0])
    s = int(df.start.iloc[i])
    gaps = pd.DataFrame({"spell": [i], "first": [s - 1], "last": [s]})
    with pytest.raises(DataValidationError, match="start week to be at risk") as ei:
        _fit(gap_sim, gaps)
    assert str(s) not in str(ei.value).replace("1 ranges", "")


# ------------------------------------------------------------------- from the register


@pytest.mark.parametrize("age_band,chunk", [((18, 65), 4_000_000), (None, 997)])
def test_start_gaps_from_register_matches_loop_twin(age_band, chunk):
    from _toe_reference import start_gaps_loop

    from mentor_impact.datasets import simulate_mentor_study
    from mentor_impact.duration import spells_from_register, start_gaps_from_register
    from mentor_impact.duration._toe_demo import DEMO_BENEFIT_STATES, DEMO_EXITS
    from mentor_impact.registers.isoweek import iso_to_ordinal

    st = simulate_mentor_study(600, seed=4)
    reg = st.register
    sp = spells_from_register(
        reg, st.spells.episodes(gap=4), st.baseline, benefit=DEMO_BENEFIT_STATES,
        exits=DEMO_EXITS, sample="stock_inflow", stock_week=201201,
    )
    got = start_gaps_from_register(reg, sp, st.baseline, age_band=age_band,
                                   chunk_weeks=chunk)
    ok_state = reg.indicator("passive_benefit") | reg.indicator("activation")
    wk = iso_to_ordinal(np.asarray(reg.weeks))
    birth = iso_to_ordinal(st.baseline.birth_year.to_numpy() * 100 + 26)
    spells = list(zip(sp.row, sp.entry_col - sp.entry, sp.duration, sp.start, strict=True))
    ref, bad = start_gaps_loop(ok_state, wk, birth, spells, age_band=age_band)
    assert list(map(tuple, got[["spell", "first", "last"]].to_numpy().tolist())) == ref
    assert got.attrs["n_weeks"] == sum(b - a + 1 for _, a, b in ref)
    # the simulator's starts obey exactly these eligibility rules
    assert bad == []
    assert (sp.start > 0).sum() > 20


def test_start_gaps_from_register_bad_input():
    from mentor_impact.datasets import simulate_mentor_study
    from mentor_impact.duration import spells_from_register, start_gaps_from_register
    from mentor_impact.exceptions import ConfigurationError

    st = simulate_mentor_study(200, seed=1)
    sp = spells_from_register(st.register, st.spells, st.baseline)
    with pytest.raises(DataValidationError, match="columns of spells_from_register"):
        start_gaps_from_register(st.register, sp.drop(columns="entry_col"))
    with pytest.raises(ConfigurationError, match="states"):
        start_gaps_from_register(st.register, sp, states=())
    with pytest.raises(ConfigurationError, match="age_band"):
        start_gaps_from_register(st.register, sp, st.baseline.drop(columns="birth_year"),
                                 age_band=(18, 65))
    far = sp.assign(duration=sp.duration + 10_000)
    with pytest.raises(DataValidationError, match="inside the register"):
        start_gaps_from_register(st.register, far)


@pytest.mark.parametrize("kw", [{"start_gap_share": 1.5}, {"start_gap_share": 0.5,
                                                           "start_gap_weeks": (10, 5)}])
def test_simulate_toe_rejects_bad_gap_settings(kw):
    from mentor_impact.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="start_gap_share/start_gap_weeks"):
        simulate_toe(100, **kw)
