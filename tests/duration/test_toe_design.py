"""Sample designs of the timing-of-events model: truncation on exits only, stock + inflow."""

from __future__ import annotations

import numpy as np
import pytest
from _toe_reference import (
    assert_curves_match_loop,
    assert_gradient_matches_fd,
    loglik_loop,
    stock_inflow_loop,
    z_vs_truth,
)
from test_toe import BINS, EC, SC, _arrays, _small

from mentor_impact._kernels import toe as K_
from mentor_impact.datasets.toe_sim import simulate_toe
from mentor_impact.duration import TimingOfEvents, spells_from_register
from mentor_impact.exceptions import ConfigurationError


def _arrays_exits_only(df, K, pz=1, seed=0):
    """Kernel arrays for a stock whose truncation conditions on no exit only."""
    return _arrays(df, K, True, pz, seed, start_before_entry=False)


@pytest.mark.parametrize("K", [1, 3])
def test_exits_only_truncation_matches_loop_twin(K):
    df = _small(30, max_entry=6)
    assert (df.entry > 0).any()
    D, L, theta, w, X, Z = _arrays_exits_only(df, K)
    assert D.truncated and not D.AM.any() and D.AE.any()
    args = (df.duration.to_numpy(), df.exit.to_numpy(), df.start.to_numpy(),
            df.entry.to_numpy(), X, Z, w, EC, SC, BINS, True)
    ref = loglik_loop(L.unpack(theta), *args, start_before_entry=False)
    assert K_.loglik(theta, L, D) == pytest.approx(ref, rel=1e-10)
    # with K > 1 it differs from the full conditioning (with K = 1 both cancel)
    if K > 1:
        assert abs(loglik_loop(L.unpack(theta), *args) - ref) > 1e-3


def test_exits_only_truncation_gradient_matches_finite_differences():
    df = _small(40, max_entry=6)
    D, L, theta, *_ = _arrays_exits_only(df, 3)
    # analytic gradient = finite differences; weighted per-person scores sum to it
    assert_gradient_matches_fd(K_, theta, L, D)


def test_exits_only_truncation_curves_match_loop_twin():
    df = _small(40, max_entry=5)
    D, L, theta, _w, X, Z = _arrays_exits_only(df, 2)
    assert_curves_match_loop(K_, theta, L, D, df, X, Z, start_before_entry=False)


def test_condition_exits_recovers_parameters_of_a_stock_sampled_at_programme_launch():
    # stock sample in which no start was possible before entry (programme launch)
    sim = simulate_toe(3000, n_support_points=2, max_entry=40, start_after_entry=True, seed=8)
    df = sim.data
    assert (df.entry > 0).mean() > 0.5
    kw = dict(exit_cuts=(0, 13, 52), start_cuts=(0, 26), support_points=2)
    res = TimingOfEvents(truncation="condition_exits", **kw).fit(
        df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
        entry="entry")
    assert res.truncation == "condition_exits"
    eff = z_vs_truth(res, sim, ["effect", "covariate"])
    assert np.all(np.abs(eff.z) < 3.5), eff
    # the full conditioning ("no start before entry" too) fits worse on these data
    full = TimingOfEvents(truncation="condition", **kw).fit(
        df, duration="duration", exit="exit", start="start", covariates=["x1", "x2"],
        entry="entry")
    assert full.loglik < res.loglik


def test_condition_exits_is_a_valid_option_and_reported():
    with pytest.raises(ConfigurationError, match="condition_exits"):
        TimingOfEvents(truncation="bogus").fit(
            _small(30), duration="duration", exit="exit", start="start")


@pytest.mark.parametrize("demo_states", [False, True])
def test_stock_inflow_sample_matches_loop_twin(demo_states):
    from mentor_impact.datasets import simulate_mentor_study
    from mentor_impact.duration._toe_demo import DEMO_BENEFIT_STATES, DEMO_EXITS

    st = simulate_mentor_study(800, seed=5)
    reg = st.register
    sp_obj = st.spells.episodes(gap=4)
    kw = dict(benefit=DEMO_BENEFIT_STATES, exits=DEMO_EXITS) if demo_states else {}
    sp = spells_from_register(
        reg, sp_obj, st.baseline, sample="stock_inflow", stock_week=201201, max_weeks=156,
        history_states=("employed",), entry_states=("activation",), **kw,
    )
    assert {"prior_employed_share", "at_entry_activation"} <= set(sp.columns)
    assert (sp.entry > 0).any() and (sp.entry == 0).any() and (sp.start > 0).any()
    if demo_states:
        B = np.zeros(reg.states().shape, dtype=bool)
        for nm in DEMO_BENEFIT_STATES:
            B |= reg.indicator(nm)
        exit_ids = [
            [i for nm in names for i in reg.catalog.members(nm)] for names in DEMO_EXITS.values()
        ]
    else:
        B = reg.indicator("on_benefit")
        exit_ids = [
            reg.catalog.members(n) for n in ("employed", "education", "self_support_other")
        ]
    rows, cols, _ = sp_obj.locate(reg)
    by_row: dict[int, list[int]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        by_row.setdefault(r, []).append(c)
    s0 = int(reg.column(np.array([201201]))[0])
    ref = stock_inflow_loop(B, reg.states(), exit_ids, by_row, s0, 156,
                            reg.indicator("employed"), reg.indicator("activation"))
    assert sorted(ref) == sp.row.tolist()
    got = {
        int(r.row): (int(r.duration), int(r.exit), int(r.start), int(r.entry),
                     float(r.prior_employed_share), int(r.at_entry_activation))
        for r in sp.itertuples()
    }
    for k, v in ref.items():
        assert got[k][:4] == v[:4]
        assert got[k][4] == pytest.approx(v[4], abs=1e-12)
        assert got[k][5] == v[5]
    assert (sp.entry_col >= s0).all()
    d = sp.attrs["dropped"]
    assert d["spell_start_unobserved"] + d["no_spell_at_or_after_stock_week"] + len(sp) == 800
    if demo_states:  # disability pension ends a spell with cause "other"
        assert (sp.exit == 3).any()


def test_stock_inflow_needs_stock_week():
    from mentor_impact.datasets import simulate_mentor_study

    st = simulate_mentor_study(100, seed=1)
    with pytest.raises(ConfigurationError, match="stock_week"):
        spells_from_register(st.register, st.spells, st.baseline, sample="stock_inflow")
