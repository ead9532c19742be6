"""Command line: ``mentor-impact {demo, simulate, evaluate, compare}``.

The CLI is thin: arguments or a TOML specification become options, the public API does the
work, and the reporting layer writes the outputs. Exit codes: 0 success, 1 a comparison found
differences, 2 bad input (missing files, invalid specification, data the estimators cannot
handle).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mentor_impact._version import __version__
from mentor_impact.exceptions import MentorImpactError

__all__ = ["main"]


def _cmd_simulate(args: argparse.Namespace) -> int:
    from mentor_impact.datasets import simulate_mentor_study

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    study = simulate_mentor_study(
        n_persons=args.n_persons, seed=args.seed, confounding=args.confounding
    )
    study.register.to_parquet(out / "register.parquet")
    study.spells.to_frame().to_parquet(out / "spells.parquet", index=False)
    study.baseline.to_parquet(out / "baseline.parquet", index=False)
    study.truth.to_csv(out / "truth.csv", index=False)
    print(
        f"wrote register ({study.register.n_persons} persons x {study.register.n_weeks} weeks), "
        f"spells ({len(study.spells)}), baseline and truth.csv to {out}"
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mentor_impact.config import load_study
    from mentor_impact.pipeline import run_study

    spec = load_study(args.spec)
    outcome = run_study(spec, args.out, quiet=args.quiet, overwrite=args.overwrite)
    print(outcome.effects_text())
    print(f"\nwrote {outcome.out_dir} (results.json, tables/, figures/, report.html)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mentor_impact.config import DEFAULT_DEMO_SPEC, parse_study
    from mentor_impact.pipeline import run_study

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    raw = tomllib.loads(DEFAULT_DEMO_SPEC)
    if args.n_persons is not None:
        raw.setdefault("data", {})["n_persons"] = args.n_persons
    if args.seed is not None:
        raw.setdefault("study", {})["seed"] = args.seed
    spec = parse_study(raw, source="<bundled demo specification>")
    outcome = run_study(spec, args.out, quiet=args.quiet, overwrite=True)
    print(outcome.overview_text())
    print()
    print(outcome.effects_text())
    toe = outcome.toe_text()
    if toe:
        print()
        print(toe)
    print(f"\nFull report: {Path(outcome.out_dir) / 'report.html'}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from mentor_impact.reporting.compare import compare_results

    df = compare_results(args.a, args.b, rtol=args.rtol, atol=args.atol)
    bad = df[~df["match"]]
    if bad.empty:
        print(f"all {len(df)} estimates and standard errors match (rtol={args.rtol}, "
              f"atol={args.atol})")
        return 0
    print(f"{len(bad)} of {len(df)} numbers differ (rtol={args.rtol}, atol={args.atol}):")
    print(bad.to_string(index=False, max_rows=200))
    return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mentor-impact",
        description="Causal effects of mentor support from weekly register data.",
    )
    p.add_argument("--version", action="version", version=f"mentor_impact {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="evaluate the built-in simulated study and print the effects")
    d.add_argument("--out", default="mentor-impact-demo", help="output folder")
    d.add_argument("--n-persons", type=int, default=None, help="simulated persons")
    d.add_argument("--seed", type=int, default=None, help="seed of the whole run")
    d.add_argument("--quiet", action="store_true", help="no progress messages")
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("simulate", help="write a simulated register, spells and baseline")
    s.add_argument("--out", default="simulated", help="output folder")
    s.add_argument("--n-persons", type=int, default=20_000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--confounding", type=float, default=0.0)
    s.set_defaults(func=_cmd_simulate)

    e = sub.add_parser("evaluate", help="run a study specification (TOML)")
    e.add_argument("spec", help="study specification (.toml)")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    e.add_argument("--quiet", action="store_true", help="no progress messages")
    e.set_defaults(func=_cmd_evaluate)

    c = sub.add_parser("compare", help="compare two results.json (reproducibility check)")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--rtol", type=float, default=1e-7)
    c.add_argument("--atol", type=float, default=0.0)
    c.set_defaults(func=_cmd_compare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 success, 1 differences found by ``compare``, 2 bad input.
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MentorImpactError as exc:
        print(f"mentor-impact: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mentor-impact: error: {exc.strerror or exc} ({type(exc).__name__})",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
