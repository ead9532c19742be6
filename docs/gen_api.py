"""Generate docs/api.md from the docstrings of the public API.

Run ``python docs/gen_api.py`` after changing a public docstring; ``tests/test_api_docs.py``
fails when the committed page is out of date.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import mentor_impact as mi

SECTIONS = {
    "Data model": ["WeeklyRegister", "StateCatalog", "TreatmentSpells", "RiskSetDesign",
                   "EvaluationData", "DurationOutcome", "pre_start_curves", "true_effects"],
    "Propensity, overlap and balance": ["PropensityModel", "trim", "common_support",
                                        "crump_alpha", "balance_table", "compare_balance",
                                        "curve_balance", "effective_sample_size",
                                        "reuse_summary", "love_plot", "ps_density_plot"],
    "Matching": ["NearestNeighborMatching", "RadiusMatching", "KernelMatching", "Caliper",
                 "AbadieImbens", "MatchedSetRegression"],
    "Weighting and heterogeneity": ["IPW", "AIPW", "subgroup_effects", "cate_summary"],
    "Duration outcomes": ["KaplanMeier", "AalenJohansen", "logrank_test", "survival_effect",
                          "CoxPH", "CoxPHResults", "PiecewiseExponential",
                          "DiscreteTimeHazard", "FineGray", "FineGrayResults",
                          "marginal_hazard_ratio", "TimingOfEvents", "spells_from_register",
                          "start_gaps_from_register",
                          "SurvivalResults", "RegressionResults"],
    "Results and inference": ["EffectResults", "IID", "Clustered"],
}


def _doc_block(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip()


def render() -> str:
    """Return the Markdown of the API reference."""
    out = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py` (do not edit by hand).",
        f"Version {mi.__version__}. Every name below is importable as `mentor_impact.<name>`.",
        "",
    ]
    listed: set[str] = set()
    for title, names in SECTIONS.items():
        out += [f"## {title}", ""]
        for name in names:
            obj = getattr(mi, name)
            listed.add(name)
            try:
                sig = str(inspect.signature(obj))
            except (TypeError, ValueError):
                sig = ""
            kind = "class" if inspect.isclass(obj) else "function"
            out += [f"### `{name}`", "", f"*{kind}* `{name}{sig}`", "", "```text",
                    _doc_block(obj), "```", ""]
            if inspect.isclass(obj):
                for meth_name, meth in inspect.getmembers(obj):
                    if meth_name.startswith("_") or not callable(meth):
                        continue
                    if meth_name in ("fit", "summary", "to_frame", "to_json", "to_dict",
                                     "plot", "with_cov", "conf_int", "uniform_band",
                                     "accumulated", "at", "build", "from_frame", "subset",
                                     "states", "prefix_sums", "window_count", "episodes",
                                     "predict_survival", "adjusted_survival",
                                     "effects_on_probabilities", "from_wide", "from_long",
                                     "from_spells", "read_parquet", "read_csv", "default"):
                        doc = _doc_block(meth)
                        first = doc.split("\n\n")[0].replace("\n", " ") if doc else ""
                        try:
                            msig = str(inspect.signature(meth))
                        except (TypeError, ValueError):
                            msig = "(...)"
                        out += [f"- `{name}.{meth_name}{msig}`: {first}"]
                out.append("")
    others = sorted(n for n in mi.__all__ if n not in listed and not n.startswith("_"))
    out += ["## Other public names", "", ", ".join(f"`{n}`" for n in others), ""]
    return "\n".join(out)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "api.md"
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
