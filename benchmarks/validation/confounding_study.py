"""Unobserved confounding: matching and IPW versus the timing-of-events model.

Validation study for ``docs/confounding.md`` (a script, not collected by pytest)::

    python benchmarks/validation/confounding_study.py

Environment: ``MI_CONF_N`` (persons per study, default 40000), ``MI_CONF_SEEDS`` (comma
separated, default ``1,...,8``), ``MI_CONF_ON`` (value of the knob when on, default 1.0),
``MI_CONF_OUT`` (folder for the CSV, default ``<tmp>/mi_confounding``),
``MI_CONF_FIG`` (figure folder, default ``docs/figures``), ``MI_CONF_PARTS`` (any of
``riskset,toe,toe0,toe3,rich``, default all; ``toe`` is ``timing_of_events_demo`` with
its default stock + inflow design (K <= 5), ``toe3`` the same with K <= 3, ``toe0``
with K <= 3 and without the start-eligibility rule, ``rich`` the earlier inflow design;
optional: ``atrisk``, ``atriskh``, ``atriskf``, the intermediate designs of the search
described in the doc, and ``richk``, the rich design with trial fits run to
convergence; a partial run writes
``confounding_results_<parts>.csv``) and ``MI_CONF_FROM`` (comma-separated CSVs: only
tabulate and draw, e.g. after running parts separately). Every step is seeded, so parts
run separately give the same numbers as one run.

What is compared (see ``docs/confounding.md``): the outcome is **"has left benefit for
employment by week s + tau"**, i.e. the first week off the ``on_benefit`` union in
``s .. s + tau`` exists and its state is ``employed``. For the timing-of-events (ToE)
model this is its cumulative incidence of exit to employment at ``tm + tau - 1`` (its
curves include the exit in the start week ``tm``, recorded at the first week off benefit
``s + 1``), so both refer to the same register weeks. The truth is computed from the
simulator's per-start potential state paths with the same rule:

* ToE: estimand B (``never_followup`` path), over the treated spells whose start is a
  simulator treated start (first start in 2012-2014); the ToE point estimate is reported
  over all its treated spells (public API, with CI) and over exactly that subset (per-spell
  curves, point estimate only).
* IPW and matching: their risk-set design's treated, derived outcome added to the
  ``EvaluationData`` (``dataclasses.replace``); IPW estimand A and B, matching estimand A,
  each against the truth of its own estimand over the treated it kept.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mentor_impact as mi
from mentor_impact.datasets import simulate_mentor_study
from mentor_impact.duration import TimingOfEvents, spells_from_register, timing_of_events_demo
from mentor_impact.weighting import fit_propensity

TAUS = (26, 52, 104, 156)
TOE_NAME = "ToE (stock + inflow)"  # timing_of_events_demo with its default design (K <= 5)
# the same with K <= 3 and start_eligibility=False: the demo's default before this study
TOE0_NAME = "ToE (stock + inflow, K ≤ 3, no eligibility)"
TOE3_NAME = "ToE (stock + inflow, K ≤ 3)"  # the same, max_support_points=3
OUTCOME = "exit_employment"


def exit_to_employment(paths: np.ndarray, catalog: mi.StateCatalog) -> np.ndarray:
    """``Y[i, tau] = 1`` if the first week off benefit in ``0..tau`` exists and is employed.

    Parameters
    ----------
    paths : ndarray of int8, shape (m, H + 1)
        State ids over ``tau = 0..H``.
    catalog : StateCatalog
        To resolve ``on_benefit`` and ``employed``.

    Returns
    -------
    ndarray of int8, shape (m, H + 1)
    """
    ben = np.isin(paths, np.asarray(catalog.members("on_benefit")))
    off = ~ben
    anyoff = off.any(axis=1)
    first = np.where(anyoff, np.argmax(off, axis=1), paths.shape[1])
    dest = paths[np.arange(paths.shape[0]), np.minimum(first, paths.shape[1] - 1)]
    emp = anyoff & np.isin(dest, np.asarray(catalog.members("employed")))
    tau = np.arange(paths.shape[1])
    return (emp[:, None] & (tau[None, :] >= first[:, None])).astype(np.int8)


def truth_curves(study, rows, start_cols, weights=None) -> pd.DataFrame:
    """True effect of the start on the derived outcome over the given treated starts."""
    po = study.potential_outcomes
    pos = po.index(rows, start_cols)
    w = np.ones(pos.size) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    cat = po.catalog
    y1 = w @ exit_to_employment(po.treated[pos], cat)
    out = {"tau": np.arange(y1.size), "treated_mean": y1}
    for est, arr in (("A", po.never_now), ("B", po.never_followup)):
        y0 = w @ exit_to_employment(arr[pos], cat)
        out[f"counterfactual_{est}"] = y0
        out[f"effect_{est}"] = y1 - y0
    return pd.DataFrame(out)


def add_derived_outcome(study, data):
    """Return ``data`` with the derived curve outcome ``exit_employment`` added."""
    states = np.asarray(study.register.states())
    H = int(data.tau[-1])
    cols = data.start_week[:, None] + np.arange(H + 1)[None, :]
    paths = states[data.cluster[:, None], cols]
    y = exit_to_employment(paths, study.register.catalog)
    outs = dict(data.outcomes)
    outs[OUTCOME] = y
    return dataclasses.replace(data, outcomes=outs)


RICH_COVARIATES = (
    "female",
    "immigrant",
    "psychiatric_history",
    "prior_benefit_share",
    "educationvocational",
    "educationhigher",
    "age40_decades",
    "regionzealand",
    "regionsouth",
    "regioncentral",
    "regionnorth",
)


def toe_rich(study, seed: int, taus_toe: tuple[int, ...], trial_iter: int = 80):
    """ToE with every observed baseline term of the simulator plus entry-year dummies.

    Same model settings as :func:`timing_of_events_demo`; the covariates add education,
    region and birth year (the demo uses four) and the calendar year of spell entry (the
    simulator's start hazard is zero before 2012 and year-specific, which a spell-duration
    baseline cannot express).
    """
    base = study.baseline.copy()
    for col, ref in (("education", "basic"), ("region", "capital")):
        for lev in base[col].cat.categories:
            if lev != ref:
                base[f"{col}{lev}"] = (base[col] == lev).astype(np.int8)
    # centred and scaled: a raw birth year (~1970) stalls the optimiser at its first step
    base["age40_decades"] = (2012 - base["birth_year"] - 40) / 10.0
    base = base.drop(columns=["education", "region", "birth_year"])
    sp = spells_from_register(
        study.register, study.spells.episodes(gap=4), base, sample="inflow", max_weeks=156
    )
    year = np.asarray(study.register.weeks)[sp["entry_col"].to_numpy()] // 100
    years = sorted(set(year.tolist()))[1:]
    for y in years:
        sp[f"entry{y}"] = (year == y).astype(np.int8)
    covs = [*RICH_COVARIATES, *(f"entry{y}" for y in years)]
    est = TimingOfEvents(
        exit_cuts=(0, 13, 26, 52, 104),
        start_cuts=(0, 26, 52, 104),
        effect_bins=(0, 13, 26, 52),
        cause_labels=sp.attrs["causes"],
        max_support_points=3,
        truncation="inflow",
        trial_iter=trial_iter,
    )
    res = est.fit(
        sp,
        duration="duration",
        exit="exit",
        start="start",
        covariates=covs,
        cluster="person",
        seed=seed,
    )
    print(res.k_search.to_string(), flush=True)
    return res, res.effects_on_probabilities(taus_toe, outcome="employment"), sp


ENTRY_STATES = ("activation", "subsidised_job", "health_benefit", "retired_disabled")


def toe_at_risk(
    study, seed: int, taus_toe: tuple[int, ...], history: bool = True, fine: bool = False
):
    """ToE on the spells at risk of a start: stock at 2012-W01 plus the later inflow.

    Register information only: the programme (and so the start hazard) begins in
    2012-W01, so the sample is every benefit spell in progress at 2012-W01 (left-truncated,
    conditioned on survival in the spell only: no start was possible before,
    ``truncation="condition_exits"``) plus, for persons not on benefit then, the first
    spell entered later. Covariates: every observed baseline term, dummies for the
    calendar year of sample entry (2012 = reference, all years have starts), the age at
    sample entry and, with ``history``, the share of the 52 weeks before sample entry in
    employment and the benefit state at sample entry (activation, subsidised job, health
    benefit, disability pension; passive benefit = reference).
    """
    base = study.baseline.copy()
    for col, ref in (("education", "basic"), ("region", "capital")):
        for lev in base[col].cat.categories:
            if lev != ref:
                base[f"{col}{lev}"] = (base[col] == lev).astype(np.int8)
    base = base.drop(columns=["education", "region"])
    sp = spells_from_register(
        study.register,
        study.spells.episodes(gap=4),
        base,
        sample="stock_inflow",
        stock_week=201201,
        max_weeks=None if fine else 156,
        history_states=("employed",) if history else (),
        entry_states=ENTRY_STATES if history else (),
    )
    year = np.asarray(study.register.weeks)[sp["entry_col"].to_numpy()] // 100
    age = year - sp["birth_year"].to_numpy()
    sp["age_entry40_decades"] = (age - 40) / 10.0
    sp["age_entry_under30"] = (age < 30).astype(np.int8)
    years = sorted(set(year.tolist()))[1:]
    for y in years:
        sp[f"entry{y}"] = (year == y).astype(np.int8)
    covs = [
        c for c in RICH_COVARIATES if c != "age40_decades"
    ] + ["age_entry40_decades", "age_entry_under30", *(f"entry{y}" for y in years)]
    if history:
        covs += ["prior_employed_share", *(f"at_entry_{nm}" for nm in ENTRY_STATES)]
    est = TimingOfEvents(
        exit_cuts=(0, 13, 26, 52, 104, 156, 260) if fine else (0, 13, 26, 52, 104),
        start_cuts=(0, 26, 52, 104, 156) if fine else (0, 26, 52, 104),
        effect_bins=(0, 13, 26, 52, 104) if fine else (0, 13, 26, 52),
        cause_labels=sp.attrs["causes"],
        max_support_points=3,
        truncation="condition_exits",
    )
    res = est.fit(
        sp,
        duration="duration",
        exit="exit",
        start="start",
        entry="entry",
        covariates=covs,
        cluster="person",
        seed=seed,
    )
    print(res.k_search.to_string(), flush=True)
    for note in res.notes:
        print("  note:", note, flush=True)
    return res, res.effects_on_probabilities(taus_toe, outcome="employment"), sp


def toe_rows(study, res_toe, eff, sp, taus_toe, tag, name) -> tuple[list[dict], int]:
    """Rows of the results table for one ToE fit (truth over spells with a known start)."""
    trows = np.asarray(res_toe.treated_rows)
    assert len(sp) == res_toe.n_spells, "fitted data must be the spell table"
    # spell week t is register column (entry_col - entry) + t - 1
    start_col = (
        sp["entry_col"].to_numpy() - sp["entry"].to_numpy() + sp["start"].to_numpy() - 1
    )[trows]
    prow = sp["row"].to_numpy()[trows]
    known = pd.DataFrame({"row": prow, "start_col": start_col, "i": np.arange(trows.size)})
    known = known.merge(study.treated_starts[["row", "start_col"]], on=["row", "start_col"])
    truth = truth_curves(study, known["row"].to_numpy(), known["start_col"].to_numpy())
    # per-spell ToE effects, averaged over exactly the spells with a known truth
    oi = list(res_toe.causes).index("employment")
    a_, b_ = res_toe._effect_rows(res_toe.theta, np.asarray(taus_toe), oi)
    sub = (a_ - b_)[known["i"].to_numpy()].mean(axis=0)
    ci = eff.conf_int()
    rows = []
    for k, t in enumerate(TAUS):
        rows.append(
            dict(
                tag,
                method=name,
                estimand="B",
                tau=t,
                estimate=float(eff.estimate[k]),
                se=float(eff.std_errors.iloc[k]),
                ci_lower=float(ci.iloc[k, 0]),
                ci_upper=float(ci.iloc[k, 1]),
                truth=float(truth["effect_B"].iloc[t]),
                truth_other=float(truth["effect_A"].iloc[t]),
                n_treated=int(trows.size),
                estimate_known=float(sub[k]),
                n_known=len(known),
                K=int(res_toe.n_support_points),
            )
        )
    return rows, len(known)


def one_study(n: int, seed: int, confounding: float) -> list[dict]:
    t0 = time.perf_counter()
    study = simulate_mentor_study(n, seed=seed, confounding=confounding)
    t_sim = time.perf_counter() - t0
    rows: list[dict] = []
    tag = dict(seed=seed, confounding=confounding, n_persons=n)

    parts = os.environ.get("MI_CONF_PARTS", "riskset,toe,toe0,toe3,rich").split(",")
    if "riskset" in parts:
        rows.extend(riskset_rows(study, seed, tag))
    for part, name, kw in (
        ("toe", TOE_NAME, {}),  # the demo's default design
        # the default design without the start-eligibility rule (every spell week at risk
        # of a start) and K <= 3: the design before the last two steps of the search
        ("toe0", TOE0_NAME, {"start_eligibility": False, "max_support_points": 3}),
        # the default design with the K search capped at 3 mass points (the demo's
        # default before the validation showed that the cap was always reached)
        ("toe3", TOE3_NAME, {"max_support_points": 3}),
    ):
        if part in parts:
            t1 = time.perf_counter()
            taus_toe = tuple(t - 1 for t in TAUS)  # CIF at tm + tau - 1 <-> off benefit by s + tau
            demo = timing_of_events_demo(study, seed=seed, taus=taus_toe, **kw)
            res_toe = demo.results
            new, n_known = toe_rows(study, res_toe, demo.effects["employment"], demo.spells,
                                    taus_toe, tag, name)
            rows.extend(new)
            print(
                f"  {name} {time.perf_counter() - t1:.0f}s (K={res_toe.n_support_points}, "
                f"{res_toe.n_spells} spells, {res_toe.treated_rows.size} treated, "
                f"{n_known} with truth)",
                flush=True,
            )
    if "rich" in parts:
        t1 = time.perf_counter()
        taus_toe = tuple(t - 1 for t in TAUS)
        r2, e2, sp2 = toe_rich(study, seed, taus_toe)
        rows.extend(toe_rows(study, r2, e2, sp2, taus_toe, tag, "ToE (rich x)")[0])
        print(
            f"  ToE (rich x) {time.perf_counter() - t1:.0f}s, K={r2.n_support_points}", flush=True
        )
    for part, hist, fine, name in (
        ("atrisk", False, False, "ToE (at risk)"),
        ("atriskh", True, False, "ToE (at risk + history)"),
        ("atriskf", True, True, "ToE (at risk + history, fine)"),
    ):
        if part in parts:
            t1 = time.perf_counter()
            taus_toe = tuple(t - 1 for t in TAUS)
            r4, e4, sp4 = toe_at_risk(study, seed, taus_toe, history=hist, fine=fine)
            new4, nk4 = toe_rows(study, r4, e4, sp4, taus_toe, tag, name)
            rows.extend(new4)
            print(
                f"  {name} {time.perf_counter() - t1:.0f}s, K={r4.n_support_points}, "
                f"{r4.n_spells} spells, {r4.n_treated} treated, {nk4} with truth",
                flush=True,
            )
    if "richk" in parts:
        # same, but trial fits of the next K run to convergence (no early abandonment)
        t1 = time.perf_counter()
        taus_toe = tuple(t - 1 for t in TAUS)
        r3, e3, sp3 = toe_rich(study, seed, taus_toe, trial_iter=2000)
        rows.extend(toe_rows(study, r3, e3, sp3, taus_toe, tag, "ToE (rich x, full K search)")[0])
        print(
            f"  ToE (rich x, full K search) {time.perf_counter() - t1:.0f}s, "
            f"K={r3.n_support_points}",
            flush=True,
        )
    print(f"seed {seed} confounding {confounding}: simulation {t_sim:.0f}s", flush=True)
    return rows


def riskset_rows(study, seed: int, tag: dict) -> list[dict]:
    """IPW (A, B) and matching (A) on the risk-set design, against their own truths."""
    rows: list[dict] = []
    t0 = time.perf_counter()
    data = mi.RiskSetDesign(horizon=156, controls_per_treated=10).build(
        study.register, study.spells, study.baseline, seed=seed
    )
    data = add_derived_outcome(study, data)
    tr = data.treatment == 1
    # sanity: the derived outcome of the treated rows equals the simulator's treated path
    chk = truth_curves(study, data.cluster[tr], data.start_week[tr])
    obs = data.outcome(OUTCOME)[tr].mean(axis=0)
    assert np.allclose(chk["treated_mean"].to_numpy(), obs), "derived outcome mismatch"
    pfit = fit_propensity(data)
    fits = {
        "IPW (A)": (mi.IPW(estimand="ATT", propensity=pfit).fit(data, outcome=OUTCOME), "A"),
        "IPW (B)": (
            mi.IPW(estimand="ATT", propensity=pfit).fit(data, outcome=OUTCOME, dynamic="B"),
            "B",
        ),
        "matching (A)": (
            mi.NearestNeighborMatching(
                k=5, replace=True, caliper=mi.Caliper(0.2), exact=["cell"]
            ).fit(data, outcome=OUTCOME, ps=pfit.ps),
            "A",
        ),
    }
    for name, (res, est) in fits.items():
        w = res.weights
        keep = tr if w is None else tr & (np.asarray(w) > 0)
        truth = truth_curves(study, data.cluster[keep], data.start_week[keep])
        ci = res.conf_int()
        taus = np.asarray(res.tau)
        for t in TAUS:
            k = int(np.flatnonzero(taus == t)[0])
            rows.append(
                dict(
                    tag,
                    method=name,
                    estimand=est,
                    tau=t,
                    estimate=float(res.estimate[k]),
                    se=float(res.std_errors.iloc[k]),
                    ci_lower=float(ci.iloc[k, 0]),
                    ci_upper=float(ci.iloc[k, 1]),
                    truth=float(truth[f"effect_{est}"].iloc[t]),
                    truth_other=float(truth["effect_A" if est == "B" else "effect_B"].iloc[t]),
                    n_treated=int(keep.sum()),
                )
            )

    print(f"  risk-set design + IPW + matching {time.perf_counter() - t0:.0f}s", flush=True)
    return rows


METHOD_ORDER = (
    "IPW (A)",
    "IPW (B)",
    "matching (A)",
    "ToE (rich x)",
    "ToE (at risk)",
    "ToE (at risk + history)",
    "ToE (at risk + history, fine)",
    TOE0_NAME,
    TOE_NAME,
    TOE3_NAME,
    "ToE (rich x, full K search)",
)


def make_figures(df: pd.DataFrame, fig_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHOD_ORDER if m in set(df.method)]
    methods += sorted(set(df.method) - set(methods))
    paths = []
    n_seeds = df.seed.nunique()
    step = min(3.0, 16.0 / max(n_seeds, 1))
    for conf, g in df.groupby("confounding"):
        fig, axes = plt.subplots(
            1, len(methods), figsize=(3.3 * len(methods), 3.8), sharey=True, squeeze=False
        )
        axes = axes[0]
        for ax, m in zip(axes, methods, strict=True):
            h = g[g.method == m]
            for j, (_seed, hs) in enumerate(h.groupby("seed")):
                off = (j - (n_seeds - 1) / 2) * step
                ax.errorbar(
                    hs.tau + off,
                    hs.estimate,
                    yerr=[hs.estimate - hs.ci_lower, hs.ci_upper - hs.estimate],
                    fmt="o",
                    color="C0",
                    ms=3,
                    lw=0.8,
                    label="estimate (95 % CI)" if j == 0 else None,
                )
                ax.plot(
                    hs.tau + off, hs.truth, "x", color="C3", ms=5, label="truth" if j == 0 else None
                )
            ax.axhline(0, color="grey", lw=0.7)
            ax.set_title(f"{m}", fontsize=9)
            ax.set_xlabel("weeks after start (tau)")
            ax.set_xticks(list(TAUS))
        axes[0].set_ylabel("effect on P(left benefit for a job by tau)")
        axes[0].legend(fontsize=8)
        fig.suptitle(
            f"confounding = {conf:g}"
            + (
                " (selection on observables)"
                if conf == 0
                else " (unobserved u drives start and exits)"
            )
            + f"; {n_seeds} seeds side by side at each tau"
        )
        fig.tight_layout()
        p = fig_dir / f"confounding_{'off' if conf == 0 else 'on'}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    # bias summary: mean over seeds with +-1.96 Monte Carlo SE, knob off vs on
    confs = sorted(df.confounding.unique())
    fig, axes = plt.subplots(
        1, len(confs), figsize=(5.2 * len(confs), 4.4), sharey=True, squeeze=False
    )
    sm = summarise(df)
    for ax, conf in zip(axes[0], confs, strict=True):
        for i, m in enumerate(methods):
            h = sm[(sm.method == m) & (sm.confounding == conf)]
            off = (i - (len(methods) - 1) / 2) * 2.0
            ax.errorbar(
                h.tau + off,
                100 * h.bias,
                yerr=196 * h.mcse,
                fmt="-o",
                ms=4,
                lw=1,
                capsize=2,
                color=f"C{i}",
                label=m,
            )
            ps = df[(df.method == m) & (df.confounding == conf)]
            ax.plot(
                ps.tau + off, 100 * (ps.estimate - ps.truth), "_", color=f"C{i}", ms=6, alpha=0.6
            )
        ax.axhline(0, color="grey", lw=0.7)
        ax.set_title(f"confounding = {conf:g}")
        ax.set_xlabel("weeks after start (tau)")
        ax.set_xticks(list(TAUS))
    axes[0][0].set_ylabel("estimate - truth, pp (mean +- 1.96 MC SE; ticks: seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    p = fig_dir / "confounding_bias.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per method, knob and tau over seeds: mean truth, mean bias, its Monte Carlo SE
    (sd / sqrt(seeds)), sd of the bias, mean SE, mean z = bias / SE and the number of seeds
    whose 95 % interval covers the truth."""
    df = df.assign(
        bias=df.estimate - df.truth,
        covered=(df.ci_lower <= df.truth) & (df.truth <= df.ci_upper),
        z=(df.estimate - df.truth) / df.se,
    )
    g = df.groupby(["confounding", "method", "tau"], sort=False)
    out = g.agg(
        truth=("truth", "mean"),
        bias=("bias", "mean"),
        sd_bias=("bias", "std"),
        se=("se", "mean"),
        z=("z", "mean"),
        covered=("covered", "sum"),
        seeds=("seed", "nunique"),
    ).reset_index()
    out["mcse"] = out.sd_bias / np.sqrt(out.seeds)
    return out


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    n = int(os.environ.get("MI_CONF_N", "40000"))
    seeds = [int(s) for s in os.environ.get("MI_CONF_SEEDS", "1,2,3,4,5,6,7,8").split(",")]
    on = float(os.environ.get("MI_CONF_ON", "1.0"))
    out = Path(os.environ.get("MI_CONF_OUT", Path(tempfile.gettempdir()) / "mi_confounding"))
    fig_dir = Path(os.environ.get("MI_CONF_FIG", root / "docs/figures"))
    parts = os.environ.get("MI_CONF_PARTS", "riskset,toe,toe0,toe3,rich")
    out.mkdir(parents=True, exist_ok=True)
    fig_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("MI_CONF_FROM"):
        # figures and table from CSVs of earlier (partial) runs, e.g. parts run in parallel
        df = pd.concat(
            [pd.read_csv(f) for f in os.environ["MI_CONF_FROM"].split(",")], ignore_index=True
        )
    else:
        name = (
            "confounding_results"
            + ("" if parts == "riskset,toe,toe0,toe3,rich" else "_" + parts.replace(",", "_"))
            + ".csv"
        )
        rows: list[dict] = []
        for seed in seeds:
            for conf in (0.0, on):
                rows.extend(one_study(n, seed, conf))
                pd.DataFrame(rows).to_csv(out / name, index=False)
        df = pd.DataFrame(rows)
    df = df.assign(
        bias=df.estimate - df.truth, covered=(df.ci_lower <= df.truth) & (df.truth <= df.ci_upper)
    )
    pd.set_option("display.width", 200)
    print(
        df[["seed", "confounding", "method", "tau", "estimate", "se", "truth", "bias", "covered"]]
        .round(4)
        .to_string(index=False)
    )
    print(summarise(df).round(4).to_string(index=False))
    for p in make_figures(df, fig_dir):
        print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
