"""The public API is documented, and docs/api.md is generated from the current docstrings."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import mentor_impact as mi

ROOT = Path(__file__).resolve().parent.parent


def _gen():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_public_name_has_a_numpydoc_docstring():
    missing = []
    for name in mi.__all__:
        obj = getattr(mi, name)
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        if not doc.strip():
            missing.append(name)
        elif inspect.isclass(obj) and not issubclass(obj, Exception):
            if "Parameters" not in doc and "Attributes" not in doc:
                missing.append(f"{name}: no Parameters/Attributes section")
        elif inspect.isfunction(obj) and "Returns" not in doc and "Parameters" not in doc:
            missing.append(f"{name}: no Parameters/Returns section")
    assert not missing, missing


def test_api_reference_is_up_to_date():
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == _gen().render(), "docs/api.md is stale: run `python docs/gen_api.py`"
