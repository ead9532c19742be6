"""The study pipeline behind ``mentor-impact evaluate`` and ``mentor-impact demo``.

One validated :class:`~mentor_impact.config.StudySpec` goes in; a folder comes out with
``results.json`` (every estimate with standard errors, intervals, counts, dropped counts,
config hash, data fingerprint and versions), tidy CSV tables, PNG figures and a
self-contained ``report.html``. Everything is written to a temporary folder first and moved
into place at the end, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mentor_impact._meta import fingerprint, to_jsonable, versions
from mentor_impact._progress import Progress
from mentor_impact.config import StudySpec
from mentor_impact.diagnostics.balance import weighted_column_means
from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.reporting.disclosure import suppress_counts
from mentor_impact.results import EffectResults
from mentor_impact.weighting.heterogeneity import _materialise_small

__all__ = ["StudyOutcome", "effects_table", "run_study"]


@dataclass
class StudyOutcome:
    """What a study run produced.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    document : dict
        The content of ``results.json``.
    effects : pandas.DataFrame
        The effects table (weeks 26/52/104/156 and accumulated weeks, A and B, truth where
        known).
    overview : pandas.DataFrame
        Sample overview (persons, starters, rows, controls).
    timings : dict of str to float
        Seconds per pipeline stage.
    """

    out_dir: Path
    document: dict[str, Any]
    effects: pd.DataFrame
    overview: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def toe_text(self) -> str:
        """Return the timing-of-events effects (empty when the model was not fitted)."""
        tab = self.tables.get("toe_effects")
        err = self.document.get("timing_of_events", {}).get("error")
        if err:
            return f"Timing-of-events model not fitted: {err}"
        if tab is None or tab.empty:
            return ""
        wide = tab.pivot_table(index="target", columns="exit", values="estimate", sort=False)
        se = tab.pivot_table(index="target", columns="exit", values="std_error", sort=False)
        out = wide.round(4).astype(str) + " (" + se.round(4).astype(str) + ")"
        out.index = [str(i).replace("tau=", "week ") for i in out.index]
        return ("Timing-of-events model: effect of the start on the probability of having left "
                "benefit by exit (and on still being in the spell), estimate (SE)\n"
                + out.to_string())

    def effects_text(self, outcomes: list[str] | None = None) -> str:
        """Return the effects table as text: estimators side by side, truth beside them.

        Parameters
        ----------
        outcomes : list of str, optional
            Outcomes to show (default all, headline first).

        Returns
        -------
        str
            One block per outcome; rows are weeks 26/52/104/156 and accumulated windows,
            columns ``estimator (estimand)`` estimates and, for simulated data, ``truth A`` and
            ``truth B``.
        """
        if self.effects.empty:
            return "No effect estimates."
        eff = self.effects
        names = outcomes or list(dict.fromkeys(eff["outcome"]))
        blocks = []
        for outcome in names:
            sub = eff[eff["outcome"] == outcome]
            order = list(dict.fromkeys(sub["target"]))
            wide = sub.pivot_table(index="target", columns=["estimator", "estimand"],
                                   values="estimate", sort=False)
            wide.columns = [f"{c[0]} {c[1]}" for c in list(wide.columns)]
            if "truth" in sub:
                for est in ("A", "B"):
                    t = sub[sub["estimand"] == est].groupby("target", sort=False)["truth"].first()
                    if not t.empty:
                        wide[f"truth {est}"] = t
            wide = wide.reindex(order)
            with pd.option_context("display.width", 200):
                blocks.append(f"Outcome: {outcome}\n" + wide.to_string(
                    float_format=lambda x: f"{x:8.4f}"))
        return ("Effects of starting mentor support (A: now vs not now; B: now vs not during "
                "follow-up)\nweeks = status in that week; weeks a-b = accumulated weeks\n\n"
                + "\n\n".join(blocks))

    def overview_text(self) -> str:
        """Return the sample overview as text."""
        tab = self.overview
        if "suppressed" in tab and not tab["suppressed"].any():
            tab = tab.drop(columns=["suppressed"])
        return "Sample overview\n" + tab.to_string(index=False)


# ----------------------------------------------------------------------------- helpers
def _slim(res: EffectResults) -> EffectResults:
    """Drop the per-row influence function (n x k) once the covariance is computed.

    The pipeline keeps many curve results; at register size each influence function is
    about 1 GB, so only the covariance, estimates and per-row weights are kept.
    """
    import dataclasses

    return dataclasses.replace(res, influence=None, cluster=None, frame=None)


def _load_data(spec: StudySpec, seed: int) -> tuple[Any, Any, pd.DataFrame, Any]:
    """Return register, spells, baseline and (for the simulator) the study object."""
    d = spec["data"]
    if d["source"] == "simulate":
        from mentor_impact.datasets import simulate_mentor_study

        study = simulate_mentor_study(
            n_persons=int(d["n_persons"]), seed=seed, confounding=float(d["confounding"])
        )
        return study.register, study.spells, study.baseline, study
    from mentor_impact.registers import TreatmentSpells, WeeklyRegister

    def read_table(key: str) -> pd.DataFrame:
        p = Path(d[key])
        if not p.is_file():
            raise DataValidationError(f"[data].{key}: file not found: {p}.")
        try:
            if p.suffix.lower() in (".parquet", ".pq"):
                return pd.read_parquet(p)
            return pd.read_csv(p)
        except Exception as exc:
            raise DataValidationError(
                f"[data].{key}: could not read {p.name} as "
                f"{'parquet' if p.suffix.lower() in ('.parquet', '.pq') else 'CSV'} "
                f"({type(exc).__name__})."
            ) from None

    register = WeeklyRegister.from_frame(read_table("register"))
    spells = TreatmentSpells.from_frame(read_table("spells"))
    baseline = read_table("baseline")
    return register, spells, baseline, None


def _truth(study: Any, data: Any, outcome: str, estimand: str) -> pd.DataFrame | None:
    if study is None:
        return None
    from mentor_impact.design.risk_set import true_effects

    try:
        return true_effects(study, data, outcome, estimand)
    except (DataValidationError, ConfigurationError, KeyError):
        return None


def effects_table(
    res: EffectResults,
    *,
    status_weeks: list[int],
    windows: list[list[int]],
    truth: pd.DataFrame | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Tabulate a curve at status weeks and accumulated windows.

    Parameters
    ----------
    res : EffectResults
        An effect curve over ``tau``.
    status_weeks : list of int
        Weeks for the status rows (``week 26``, ...).
    windows : list of [int, int]
        Accumulated-weeks windows.
    truth : pandas.DataFrame, optional
        True curve (``tau, effect, counterfactual_mean``) from the simulator.
    level : float, default=0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per target with estimate, standard error, interval, control mean, relative
        effect and (when given) the truth.
    """
    parts = [res.at(status_weeks)]
    parts += [res.accumulated(int(a), int(b)) for a, b in windows]
    rows = []
    for p in parts:
        f = p.to_frame(level)
        for i, r in f.iterrows():
            tgt = str(r["target"])
            row = {
                "outcome": res.outcome,
                "target": tgt.replace("tau=", "week "),
                "estimator": res.estimator,
                "estimand": res.estimand,
                "estimate": r["estimate"],
                "std_error": r["std_error"],
                "ci_lower": r["ci_lower"],
                "ci_upper": r["ci_upper"],
                "control_mean": r.get("counterfactual_mean", np.nan),
            }
            cm = row["control_mean"]
            row["relative_effect"] = row["estimate"] / cm if cm and np.isfinite(cm) else np.nan
            if truth is not None:
                eff = truth.set_index("tau")["effect"]
                if tgt.startswith("tau="):
                    row["truth"] = float(eff.loc[int(tgt[4:])])
                else:
                    a, b = (int(v) for v in tgt.replace("weeks ", "").split("-"))
                    row["truth"] = float(eff.loc[a:b].sum())
            rows.append(row)
            del i
    return pd.DataFrame(rows)


def _fig(fn: Any, height: float = 4.2) -> bytes:
    """Draw with ``fn(ax)`` on a new figure and return its PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mentor_impact.reporting.html import figure_png

    fig, ax = plt.subplots(figsize=(8, height))
    fn(ax)
    return figure_png(fig)


# ----------------------------------------------------------------------------- the run
def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    quiet: bool = False,
    overwrite: bool = False,
) -> StudyOutcome:
    """Run a whole evaluation from a study specification.

    Parameters
    ----------
    spec : StudySpec
        The validated specification (:func:`mentor_impact.config.load_study`).
    out_dir : str or Path
        Output folder; it must not exist unless ``overwrite``.
    quiet : bool, default=False
        No progress messages.
    overwrite : bool, default=False
        Replace an existing output folder.

    Returns
    -------
    StudyOutcome
        Paths, the results document and the main tables.

    Raises
    ------
    ConfigurationError
        If the output folder exists and ``overwrite`` is false.
    DataValidationError
        If the data cannot be read or fail validation (nothing is written then).
    """
    import mentor_impact as mi
    from mentor_impact.reporting.html import Report

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ConfigurationError(
            f"--out: the folder {out} exists. Hint: choose a new folder or pass --overwrite."
        )
    seed = spec.seed
    level = float(spec["inference"]["level"])
    cov: Any = mi.Clustered("person") if spec["inference"]["cov"] == "clustered" else mi.IID()
    min_cell = int(spec["report"]["min_cell"])
    status_weeks = [int(t) for t in spec["outcomes"]["status_weeks"]]
    windows = [list(map(int, w)) for w in spec["outcomes"]["accumulate"]]
    headline = spec["outcomes"]["headline"]
    curves = list(dict.fromkeys([headline, *spec["outcomes"]["curves"]]))
    n_steps = 10 + int(spec["toe"]["enabled"])
    prog = Progress(quiet=quiet, total=n_steps)
    doc: dict[str, Any] = {
        "study": spec["study"]["name"],
        "config": spec.to_dict(),
        "config_hash": spec.config_hash,
        "seed": seed,
        "versions": versions(),
    }
    figures: dict[str, bytes] = {}
    tables: dict[str, pd.DataFrame] = {}
    all_effects: list[pd.DataFrame] = []
    report = Report(spec["study"]["name"])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 1. data ------------------------------------------------------------------
        with prog.step("data"):
            register, spells, baseline, study = _load_data(spec, seed)
            doc["data_fingerprint"] = fingerprint(register.codes, register.weeks)
        # 2. design ----------------------------------------------------------------
        with prog.step("risk-set design"):
            dsg = spec["design"]
            design = mi.RiskSetDesign(
                horizon=int(dsg["horizon"]),
                controls_per_treated=float(dsg["controls_per_treated"]),
                washout=int(dsg["washout"]),
                sustain=int(dsg["sustained_weeks"]),
                follow_up=str(dsg["follow_up"]),
                # only the curves the study asks for (each is n x (H+1) bytes)
                outcomes=curves,
            )
            data = design.build(register, spells, baseline, seed=seed)
            missing = [c for c in curves if c not in data.outcomes]
            if missing:
                raise ConfigurationError(
                    f"[outcomes].curves: {missing} are not outcomes of the design; available: "
                    f"{sorted(k for k, v in data.outcomes.items() if v.ndim == 2)}."
                )
            flow = data.sample_flow
            overview = pd.DataFrame(
                {
                    "item": ["persons in register", "weeks in register", "rows (person, s)",
                             "treated starts", "sampled controls", "covariates"],
                    "n": [register.n_persons, register.n_weeks, data.n, data.n_treated,
                          data.n_control, len(data.covariate_names)],
                }
            )
            tables["sample_overview"] = overview
            if flow is not None:
                tables["sample_flow"] = flow
            doc["sample"] = {"n_rows": data.n, "n_treated": data.n_treated,
                             "n_control": data.n_control,
                             "data_fingerprint_design": data.fingerprint}
        # 3. propensity, overlap, balance -------------------------------------------
        with prog.step("propensity score and balance"):
            from mentor_impact.weighting import fit_propensity

            # one logit fit (exact MLE on [1, X] with the sampling weights), reused by the
            # matching (as fixed scores) and by every weighting estimator (whose stacked
            # sandwich still accounts for its estimation)
            pfit = fit_propensity(data)
            ps = np.asarray(pfit.ps, dtype=float)
            d1 = data.treatment == 1
            wts = np.asarray(data.weight, dtype=float)
            # weighted means by matrix-vector products (no copy of X by arm)
            desc = pd.DataFrame(
                {
                    "covariate": list(data.covariate_names),
                    "mean_treated": weighted_column_means(data.X, d1, wts),
                    "mean_controls": weighted_column_means(data.X, ~d1, wts),
                }
            )
            tables["descriptives"] = desc
            figures["ps_density"] = _fig(
                lambda ax: mi.ps_density_plot(ps, data.treatment, weights=data.weight,
                                              logit=True, ax=ax)
            )
            doc["propensity"] = {
                "n_ps_below_1e-6": int((ps < 1e-6).sum()),
                "treated_ps_max": float(ps[d1].max()),
                "control_ps_max": float(ps[~d1].max()),
            }
        # 4. estimators on the headline and the other curves -------------------------
        results: dict[str, dict[str, EffectResults]] = {}
        with prog.step("matching"):
            if spec["matching"]["enabled"]:
                m = spec["matching"]
                nn = mi.NearestNeighborMatching(
                    k=int(m["k"]), replace=bool(m["replace"]),
                    caliper=mi.Caliper(float(m["caliper"])) if m["caliper"] else None,
                    exact=list(m["exact"]) or None,
                )
                # slimmed at once: no reference to the full result (influence) is kept
                results.setdefault(headline, {})["NN matching A"] = _slim(
                    nn.fit(data, outcome=headline, ps=ps))
        with prog.step("inverse probability weighting (A and B)"):
            ipw = mi.IPW(estimand="ATT", truncate=float(spec["ipw"]["truncate"]) or None,
                         propensity=pfit)
            if spec["ipw"]["enabled"]:
                # all curves with one set of weights (estimand B shares its per-block
                # censoring weights across the outcomes)
                fits_a = ipw.fit_many(data, outcomes=curves, cov=cov)
                fits_b = (ipw.fit_many(data, outcomes=curves, cov=cov, dynamic="B")
                          if spec["ipw"]["estimand_b"] else {})
                for outcome in curves:
                    results.setdefault(outcome, {})["IPW A"] = _slim(fits_a[outcome])
                    if outcome in fits_b:
                        results[outcome]["IPW B"] = _slim(fits_b[outcome])
                # the full results' factored influence functions hold the shared propensity
                # design (n x q) and the estimand-B weights: only the slimmed ones are kept
                del fits_a, fits_b
        with prog.step("augmented IPW (cross-fitted)"):
            if spec["aipw"]["enabled"]:
                aipw = mi.AIPW(n_folds=int(spec["aipw"]["n_folds"]), estimand="ATT",
                               seed=seed, ps_clip=1e-3, design_from=pfit)
                results.setdefault(headline, {})["AIPW A"] = _slim(aipw.fit(
                    data, outcome=headline, cov=cov
                ))
        # effects table with truth
        for outcome, by_est in results.items():
            for name, res in by_est.items():
                est_b = name.endswith(" B")
                truth = _truth(study, data, outcome, "B" if est_b else "A")
                tab = effects_table(res, status_weeks=status_weeks, windows=windows,
                                    truth=truth, level=level)
                tab["estimator"] = name[:-2]
                tab["estimand"] = "B" if est_b else "A"
                all_effects.append(tab)
        effects = pd.concat(all_effects, ignore_index=True) if all_effects else pd.DataFrame()
        tables["effects"] = effects
        doc["effects"] = {o: {n: r.to_dict() for n, r in d.items()} for o, d in results.items()}

        # balance before/after
        with prog.step("balance diagnostics"):
            bal_res = results.get(headline, {})
            ipw_h = bal_res.get("IPW A")
            if ipw_h is not None:
                bal = mi.compare_balance(data, ipw_h, distance=ps)
                flat = bal.copy()
                flat.columns = [f"{c[0]}: {c[1]}" for c in list(bal.columns)]
                tables["balance_ipw"] = flat.reset_index().rename(
                    columns={"index": "covariate"})
                # the love plot shows the 30 covariates least balanced before weighting
                smd_col = [c for c in bal.columns if c[0] == "before" and "Std. Mean" in c[1]]
                top = bal
                if smd_col:
                    top = bal.loc[bal[smd_col[0]].abs().sort_values(ascending=False).index[:30]]
                figures["love_plot"] = _fig(lambda ax: mi.love_plot(top, ax=ax), height=7.5)
                doc["balance"] = {
                    "max_abs_smd_before": float(bal[smd_col[0]].abs().max()) if smd_col else None,
                    "max_abs_smd_after": float(bal[("after", smd_col[0][1])].abs().max())
                    if smd_col else None,
                }
            for name, res in bal_res.items():
                if res.tau is not None:
                    band = res.uniform_band(level, n_draws=int(spec["inference"]["band_draws"]),
                                            seed=seed)
                    doc["effects"][headline][name]["uniform_band"] = {
                        "critical_value": band.attrs["critical_value"], "level": level,
                    }

                    def draw(ax: Any, r: EffectResults = res, nm: str = name) -> None:
                        r.plot(ax=ax, level=level, label=nm)
                        tr = _truth(study, data, headline, "B" if nm.endswith("B") else "A")
                        if tr is not None:
                            ax.plot(tr["tau"], tr["effect"], "k--", lw=1, label="true effect")
                            ax.legend(loc="best", fontsize="small")

                    figures[f"effect_{name.replace(' ', '_')}"] = _fig(draw)
        # pre-start curves: balance of the weekly history (no anticipation / placebo check)
        with prog.step("pre-start curves and robustness panel"):
            ipw_h = results.get(headline, {}).get("IPW A")
            # int8 indicator curve (0.44 GB at 2.8 million rows), read in row blocks by
            # the weighted means; weeks before the register (-1) count as 0
            pre_tau, pre = mi.pre_start_curves(register, data, [headline], weeks=156,
                                               dtype=np.int8)
            curve = pre.pop(headline)
            np.maximum(curve, 0, out=curve)
            d1 = data.treatment == 1
            wts = np.asarray(data.weight, dtype=float)
            mean_t = weighted_column_means(curve, d1, wts)
            mean_c = weighted_column_means(curve, ~d1, wts)
            pre_tab = pd.DataFrame({"tau": pre_tau, "treated": mean_t, "controls_raw": mean_c})
            if ipw_h is not None and ipw_h.weights is not None:
                wi = np.asarray(ipw_h.weights, dtype=float)
                pre_tab["controls_ipw"] = weighted_column_means(curve, ~d1, wi)
                cb = mi.curve_balance(curve, data.treatment, weights=wi, weeks=pre_tau,
                                      sample_weight=wts)
                tables["prestart_balance"] = cb
            del pre, curve
            tables["prestart_curves"] = pre_tab

            def draw_pre(ax: Any) -> None:
                ax.plot(pre_tab["tau"], pre_tab["treated"], label="treated")
                ax.plot(pre_tab["tau"], pre_tab["controls_raw"], ":", label="controls (raw)")
                if "controls_ipw" in pre_tab:
                    ax.plot(pre_tab["tau"], pre_tab["controls_ipw"], "--",
                            label="controls (IPW)")
                ax.set_xlabel("weeks before (pseudo-)start")
                ax.set_ylabel(f"share {headline}")
                ax.legend(loc="best", fontsize="small")

            figures["prestart_curves"] = _fig(draw_pre)

            # robustness panel: one scalar summary of the headline outcome by estimator
            panel_rows: list[dict[str, Any]] = []
            # one scalar summary: accumulated weeks over the whole horizon
            scal = [f"{headline}_acc_1_{int(spec['design']['horizon'])}"]
            scal = [o for o in scal if o in data.outcomes and spec["report"]["robustness"]]
            candidates: list[tuple[str, Any, dict[str, Any]]] = [
                ("NN k=1, caliper 0.2", mi.NearestNeighborMatching(
                    k=1, replace=True, caliper=mi.Caliper(0.2), exact=["cell"]), {"ps": ps}),
                ("NN k=5, caliper 0.2", mi.NearestNeighborMatching(
                    k=5, replace=True, caliper=mi.Caliper(0.2), exact=["cell"]), {"ps": ps}),
                ("radius 0.2 SD", mi.RadiusMatching(mi.Caliper(0.2), exact=["cell"]),
                 {"ps": ps}),
                ("kernel (Epanechnikov)", mi.KernelMatching(exact=["cell"]), {"ps": ps}),
                ("IPW (Hajek)", mi.IPW(estimand="ATT", propensity=pfit), {"cov": cov}),
                ("IPW, weights truncated at p99",
                 mi.IPW(estimand="ATT", truncate=0.99, propensity=pfit), {"cov": cov}),
                ("IPW, common support",
                 mi.IPW(estimand="ATT", trim="common_support", propensity=pfit), {"cov": cov}),
            ]
            if spec["aipw"]["enabled"]:
                candidates.append(("AIPW (cross-fitted)", mi.AIPW(
                    n_folds=int(spec["aipw"]["n_folds"]), estimand="ATT", seed=seed,
                    ps_clip=1e-3, design_from=pfit),
                    {"cov": cov}))
            for label, est, kw in candidates:
                for outcome in scal:
                    try:
                        r = est.fit(data, outcome=outcome, **kw)
                    except mi.MentorImpactError as exc:
                        panel_rows.append({"estimator": label, "outcome": outcome,
                                           "note": str(exc)[:200]})
                        continue
                    ci = r.conf_int(level)
                    panel_rows.append({
                        "estimator": label, "outcome": outcome,
                        "estimate": float(r.estimate[0]),
                        "std_error": float(r.std_errors.iloc[0]),
                        "ci_lower": float(ci["lower"].iloc[0]),
                        "ci_upper": float(ci["upper"].iloc[0]),
                        "n_dropped": int(sum(r.dropped.values())),
                    })
                    doc.setdefault("robustness", {}).setdefault(label, {})[outcome] = r.to_dict()
                    del r  # its influence function may hold an (n x q) design
            if panel_rows:
                panel = pd.DataFrame(panel_rows)
                if study is not None:
                    tr = _truth(study, data, headline, "A")
                    if tr is not None:
                        eff = tr.set_index("tau")["effect"]
                        hz = int(spec["design"]["horizon"])
                        truth_map = {f"{headline}_acc_1_{hz}": float(eff.loc[1:hz].sum()),
                                     f"{headline}_w{hz}": float(eff.loc[hz])}
                        panel["truth"] = panel["outcome"].map(truth_map)
                tables["robustness"] = panel

            # E-values for the headline IPW curve at the status weeks
            if ipw_h is not None and ipw_h.counterfactual_mean is not None:
                from mentor_impact.sensitivity import e_value_risk_difference

                ev_rows = []
                sub_h = ipw_h.at(status_weeks)
                ci_h = sub_h.conf_int(level)
                for j, t in enumerate(status_weeks):
                    p0 = float(sub_h.counterfactual_mean[j])  # type: ignore[index]
                    if 0 < p0 < 1:
                        ev = e_value_risk_difference(
                            float(sub_h.estimate[j]), p0, float(ci_h["lower"].iloc[j]),
                            float(ci_h["upper"].iloc[j]))
                        ev_rows.append({"week": t, "effect": float(sub_h.estimate[j]),
                                        "control_mean": p0, **ev})
                if ev_rows:
                    tables["e_values"] = pd.DataFrame(ev_rows)

        # 5. durations ------------------------------------------------------------------
        with prog.step("duration outcomes"):
            if spec["duration"]["enabled"] and "first_self_support" in data.durations:
                w = results.get(headline, {}).get("IPW A")
                weights = w.weights if w is not None else None
                surv = mi.survival_effect(
                    data, duration="first_self_support", weights=weights,
                    times=status_weeks, rmst_horizon=int(spec["duration"]["rmst_horizon"]),
                    cov=cov,
                )
                doc["durations"] = {"first_self_support": surv.to_dict()}
                dur_tab = surv.to_frame(level)
                if study is not None:
                    from mentor_impact.datasets import true_duration_effects

                    truth_d = true_duration_effects(
                        study, data, estimand="A", sustain=int(dsg["sustained_weeks"]),
                        times=status_weeks,
                        rmst_horizon=int(spec["duration"]["rmst_horizon"]),
                    )
                    dur_tab["truth"] = truth_d["truth"].to_numpy()
                tables["duration_effects"] = dur_tab
                # marginal hazard ratio (Austin 2013): Cox model of the duration on the
                # treatment alone, with the same weights, person-clustered sandwich
                try:
                    hr = mi.marginal_hazard_ratio(data, duration="first_self_support",
                                                  weights=weights)
                except mi.MentorImpactError as exc:
                    doc["durations"]["marginal_hazard_ratio"] = {"error": str(exc)[:300]}
                else:
                    doc["durations"]["marginal_hazard_ratio"] = {
                        "targets": ["log hazard ratio"], "estimate": [float(hr.coef[0])],
                        "std_error": [float(hr.std_errors.iloc[0])], "model": hr.to_dict(),
                    }
                    hr_tab = hr.to_frame(level)
                    hr_tab.insert(0, "weights", "IPW (ATT)" if weights is not None else "none")
                    tables["duration_hazard_ratio"] = hr_tab
                km = mi.KaplanMeier().fit(data, duration="first_self_support", weights=weights)
                figures["km_first_self_support"] = _fig(lambda ax: km.plot(ax=ax))
                if "first_exit" in data.durations:
                    aj = mi.AalenJohansen().fit(data, duration="first_exit", weights=weights)
                    figures["cif_first_exit"] = _fig(lambda ax: aj.plot(ax=ax))
                    cif = aj.to_frame()
                    tables["cif_first_exit"] = cif
        # 6a. timing-of-events ----------------------------------------------------------
        toe: Any = None
        if spec["toe"]["enabled"]:
            with prog.step("timing-of-events model"):
                from types import SimpleNamespace

                from mentor_impact.duration import timing_of_events_demo

                source = study if study is not None else SimpleNamespace(
                    register=register, spells=spells, baseline=baseline)
                try:
                    toe = timing_of_events_demo(
                        source, seed=seed, taus=status_weeks,
                        max_support_points=int(spec["toe"]["max_support_points"]),
                    )
                except mi.MentorImpactError as exc:
                    # the model needs exits of every cause in every effect bin; on small
                    # samples it may not be identified: report it, do not fail the study
                    toe = None
                    doc["timing_of_events"] = {"error": str(exc)}
            if toe is not None:
                toe_tabs = []
                for name, r in toe.effects.items():
                    f = r.to_frame(level)
                    f.insert(0, "exit", name)
                    toe_tabs.append(f)
                tables["toe_effects"] = pd.concat(toe_tabs, ignore_index=True)
                tables["toe_k_search"] = toe.results.k_search.drop(
                    columns=["optimizer"], errors="ignore")
                tables["toe_hazard_ratios"] = toe.results.hazard_ratios().reset_index()
                doc["timing_of_events"] = {
                    "model": toe.results.to_dict(),
                    "effects": {k: r.to_dict() for k, r in toe.effects.items()},
                    "notes": toe.notes,
                }

        # the whole-sample fits of the subgroup analysis use the shared propensity fit (the
        # same default logit on the same rows, so the same numbers as a refit, without a
        # second n x q design); then the shared design is released before the subgroup refits
        sg_overall: dict[str, Any] = {}
        sg_est = mi.IPW(estimand="ATT", trim=(1e-6, 1 - 1e-6))
        if spec["subgroups"]["variables"]:
            sg_out = spec["subgroups"]["outcome"]
            sg_tau = int(spec["subgroups"]["tau"])
            scalar = f"{sg_out}_w{sg_tau}"
            sg_outcome = scalar if scalar in data.outcomes else sg_out
            try:
                sg_overall[sg_outcome] = _materialise_small(mi.IPW(
                    estimand="ATT", trim=(1e-6, 1 - 1e-6), propensity=pfit
                ).fit(data, outcome=sg_outcome))
            except mi.MentorImpactError:
                pass  # the subgroup analysis refits and reports the error itself
        pfit.design = None
        pfit.term = None

        # 6. subgroups ------------------------------------------------------------------
        with prog.step("subgroups"):
            sub_tabs = []
            frame = data.frame if data.frame is not None else pd.DataFrame()
            for var in spec["subgroups"]["variables"]:
                if var not in frame.columns:
                    raise ConfigurationError(
                        f"[subgroups].variables: {var!r} is not a column of the design's frame; "
                        f"available: {list(frame.columns)}."
                    )
                try:
                    # the full weighting pipeline within each subgroup (PS refitted there), with
                    # scores within 1e-6 of 0 or 1 trimmed, so that separation in a small subgroup
                    # trims (counted) rather than fails; the scalar status outcome is used
                    sg_out = spec["subgroups"]["outcome"]
                    sg_tau = int(spec["subgroups"]["tau"])
                    scalar = f"{sg_out}_w{sg_tau}"
                    sg = mi.subgroup_effects(
                        sg_est, data,
                        outcome=scalar if scalar in data.outcomes else sg_out, by=var,
                        target=None if scalar in data.outcomes else sg_tau,
                        overall=sg_overall.get(scalar if scalar in data.outcomes else sg_out),
                    )
                except mi.MentorImpactError as exc:
                    # a subgroup the estimator cannot handle is reported, not fatal
                    doc.setdefault("subgroup_errors", {})[var] = str(exc)
                    continue
                sg_tab = sg.table.copy()
                sg_tab.insert(0, "variable", var)
                sub_tabs.append(sg_tab)
                figures[f"subgroups_{var}"] = _fig(lambda ax, s=sg: s.plot(ax=ax))
            if sub_tabs:
                tables["subgroups"] = pd.concat(sub_tabs, ignore_index=True)
        doc["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:50]

    doc["timings_seconds"] = prog.timings
    doc["peak_memory_gb_after_stage"] = prog.peak_memory_gb
    doc["memory_gb_after_stage"] = prog.memory_gb  # resident at the end of each stage
    # ----------------------------------------------------------------------- write
    tables = {k: suppress_counts(v, min_cell=min_cell) for k, v in tables.items()}
    doc["disclosure"] = {"min_cell": min_cell,
                         "suppressed_cells": {k: int(v.attrs.get("n_suppressed", 0))
                                              for k, v in tables.items()}}
    _build_report(report, tables, figures, doc, headline)
    tmp = Path(tempfile.mkdtemp(prefix=".mentor-impact-", dir=out.parent if out.parent.exists()
                                else None))
    try:
        (tmp / "tables").mkdir()
        (tmp / "figures").mkdir()
        for name, table in tables.items():
            table.to_csv(tmp / "tables" / f"{name}.csv", index=False)
        for name, png in figures.items():
            (tmp / "figures" / f"{name}.png").write_bytes(png)
        (tmp / "results.json").write_text(json.dumps(to_jsonable(doc), indent=1))
        if spec["report"]["html"]:
            (tmp / "report.html").write_text(report.to_html(), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(tmp), str(out))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StudyOutcome(out, doc, tables.get("effects", pd.DataFrame()),
                        tables["sample_overview"], prog.timings, tables)


def _build_report(
    report: Any,
    tables: dict[str, pd.DataFrame],
    figures: dict[str, bytes],
    doc: dict[str, Any],
    headline: str,
) -> None:
    """Assemble the HTML report from the tables and figures."""
    s = report.section("Sample flow", "sample")
    s.text("Persons eligible in each start week s form a risk set; starters at s are treated, "
           "eligible persons not starting at s are controls (they may start later).")
    s.table(tables["sample_overview"], "Sample overview")
    if "sample_flow" in tables:
        s.table(tables["sample_flow"], "Sample flow: starters, exclusions by rule, risk sets")
    s = report.section("Descriptives and balance", "balance")
    if "descriptives" in tables:
        s.table(tables["descriptives"].head(40), "Covariate means, treated vs sampled controls "
                "(sampling-weighted); first 40 covariates")
    if "balance_ipw" in tables:
        s.table(tables["balance_ipw"],
                "Balance before/after IPW (MatchIt/cobalt conventions: SMD with the treated "
                "SD of the unweighted sample as denominator; variance ratios; eCDF statistics)")
    if "love_plot" in figures:
        s.figure(figures["love_plot"], "Love plot: |SMD| before and after weighting, the 30 "
                 "covariates least balanced before weighting")
    s = report.section("Propensity score diagnostics", "ps")
    if "ps_density" in figures:
        s.figure(figures["ps_density"], "Logit propensity score by arm")
    s.text(json.dumps(to_jsonable(doc.get("propensity", {}))))
    s = report.section(f"Effect curves: {headline}", "curves")
    for name, png in figures.items():
        if name.startswith("effect_"):
            s.figure(png, f"{name[7:].replace('_', ' ')}: effect on {headline} by week since "
                          "start, pointwise and uniform 95% bands; dashed: true effect")
    s = report.section("Effects table", "effects")
    if "effects" in tables and not tables["effects"].empty:
        s.table(tables["effects"], "Effects at weeks 26/52/104/156 and accumulated weeks; "
                "estimand A (start now vs not now) and B (start now vs not during follow-up)")
    s = report.section("Robustness and sensitivity", "robustness")
    if "robustness" in tables:
        s.table(tables["robustness"], f"Headline outcome ({headline}) across estimators: "
                "accumulated weeks over the horizon")
    if "e_values" in tables:
        s.table(tables["e_values"], "E-values (VanderWeele & Ding 2017) of the IPW effects: "
                "the risk-ratio association an unobserved confounder would need with both "
                "treatment and outcome to explain the effect (or its CI) away")
    if "prestart_curves" in figures:
        s.figure(figures["prestart_curves"], "Pre-start weekly curves (weeks -156..-1): "
                 "treated vs raw and IPW-weighted controls; overlap supports no anticipation "
                 "and balance on the history")
    s = report.section("Duration outcomes", "durations")
    if "duration_effects" in tables:
        s.table(tables["duration_effects"], "Time to first sustained self-support: survival "
                "differences and ΔRMST (IPW-weighted), beside the simulator's truth (estimand A) "
                "where known")
    if "duration_hazard_ratio" in tables:
        s.table(tables["duration_hazard_ratio"], "Marginal hazard ratio of first sustained "
                "self-support: Cox model on the treatment alone with the same weights, "
                "person-clustered sandwich (ignores the estimation of the weights)")
    for name in ("km_first_self_support", "cif_first_exit"):
        if name in figures:
            s.figure(figures[name], name.replace("_", " "))
    if "error" in doc.get("timing_of_events", {}):
        s = report.section("Timing-of-events model", "toe")
        s.text(f"The model could not be fitted on these data: {doc['timing_of_events']['error']}")
    if "toe_effects" in tables:
        s = report.section("Timing-of-events model", "toe")
        s.text("Mixed proportional hazards model (Abbring & van den Berg 2003) of the exit from "
               "the benefit spell and the mentor start with a discrete joint distribution of "
               "unobserved heterogeneity; effects by time since start (lock-in, post-programme) "
               "and, for the treated, on the probability of having exited by cause.")
        s.table(tables["toe_k_search"], "Support points K: likelihood and AIC")
        s.table(tables["toe_hazard_ratios"], "Treatment effects on the exit hazards")
        s.table(tables["toe_effects"], "Effects on exit probabilities at weeks after start")
    s = report.section("Heterogeneity", "subgroups")
    if "subgroups" in tables:
        s.table(tables["subgroups"], "Pre-specified subgroups (Holm and BH adjusted p-values)")
    for name, png in figures.items():
        if name.startswith("subgroups_"):
            s.figure(png, f"Forest plot: {name[10:]}")
    s = report.section("Reproducibility", "repro")
    s.table(pd.DataFrame({"item": ["config hash", "data fingerprint", "seed"],
                          "value": [doc["config_hash"], doc.get("data_fingerprint", ""),
                                    str(doc["seed"])]}))
    s.table(pd.DataFrame(sorted(doc["versions"].items()), columns=["package", "version"]))
    report.footer = (f"mentor_impact {doc['versions']['mentor_impact']} · config "
                     f"{doc['config_hash']} · data {doc.get('data_fingerprint', '')}")
