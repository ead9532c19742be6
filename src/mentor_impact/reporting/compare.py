"""Reproducibility check: compare two ``results.json`` files estimate by estimate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from mentor_impact.exceptions import DataValidationError

__all__ = ["compare_results", "flatten_estimates"]

_COMPARED = ("estimate", "std_error")


def flatten_estimates(doc: dict[str, Any]) -> dict[tuple[str, ...], float | None]:
    """Collect every estimate and standard error of a results document.

    A results document holds, anywhere in its tree, result records: dicts with ``targets``
    and ``estimate`` lists (the shape of :meth:`EffectResults.to_dict`). Each number is
    keyed by its path in the tree, the target label and the field name.

    Parameters
    ----------
    doc : dict
        Parsed ``results.json``.

    Returns
    -------
    dict
        ``{(path..., target, field): value}``.
    """
    out: dict[tuple[str, ...], float | None] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            if "targets" in node and "estimate" in node and isinstance(node["targets"], list):
                for fld in _COMPARED:
                    vals = node.get(fld)
                    if isinstance(vals, list):
                        for t, v in zip(node["targets"], vals, strict=False):
                            out[(*path, str(t), fld)] = v
                return
            for k, v in node.items():
                if k not in ("versions", "config", "provenance"):
                    walk(v, (*path, str(k)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, str(i)))

    walk(doc, ())
    return out


def _load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"compare: results file not found: {p}.")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"compare: {p.name} is not valid JSON ({exc.msg}).") from None


def compare_results(
    a: str | Path | dict[str, Any],
    b: str | Path | dict[str, Any],
    *,
    rtol: float = 1e-7,
    atol: float = 0.0,
) -> pd.DataFrame:
    """Compare every estimate and standard error of two results documents.

    Two numbers match when ``|x - y| <= atol + rtol * |y|`` (``numpy.isclose``'s rule) or
    both are missing. An entry present in only one document is a mismatch.

    Parameters
    ----------
    a, b : str, Path or dict
        Results files (``results.json``) or parsed documents.
    rtol, atol : float
        Relative and absolute tolerances.

    Returns
    -------
    pandas.DataFrame
        One row per compared number with columns ``key, a, b, abs_diff, match``; the
        number of mismatches is ``(~df.match).sum()``.
    """
    da = a if isinstance(a, dict) else _load(a)
    db = b if isinstance(b, dict) else _load(b)
    fa, fb = flatten_estimates(da), flatten_estimates(db)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        x, y = fa.get(key, "absent"), fb.get(key, "absent")
        if x == "absent" or y == "absent":
            rows.append((" / ".join(key), x, y, math.nan, False))
            continue
        if x is None or y is None:
            rows.append((" / ".join(key), x, y, math.nan, x is None and y is None))
            continue
        diff = abs(float(x) - float(y))  # type: ignore[arg-type]
        rows.append((" / ".join(key), x, y, diff, diff <= atol + rtol * abs(float(y))))  # type: ignore[arg-type]
    return pd.DataFrame(rows, columns=["key", "a", "b", "abs_diff", "match"])
