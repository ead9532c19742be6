"""Provenance for serialised results: library and dependency versions, data fingerprints."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

import numpy as np

from mentor_impact._version import __version__

__all__ = ["fingerprint", "to_jsonable", "versions"]

_DEPENDENCIES = ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "pyarrow")


def versions() -> dict[str, str]:
    """Return the versions of Python, mentor_impact and its core dependencies.

    Returns
    -------
    dict of str to str
        ``{"python": ..., "mentor_impact": ..., "numpy": ..., ...}``; a missing package is
        reported as ``"not installed"``.
    """
    out = {"python": platform.python_version(), "mentor_impact": __version__}
    for name in _DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def fingerprint(*arrays: Any) -> str:
    """Return a SHA-256 fingerprint of arrays (shape, dtype and bytes).

    Parameters
    ----------
    *arrays : array-like
        Arrays to hash, in order; ``None`` entries are skipped.

    Returns
    -------
    str
        The hex digest (first 16 characters); it identifies the data without revealing it.
    """
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            continue
        arr = np.ascontiguousarray(np.asarray(a))
        h.update(str(arr.shape).encode())
        h.update(str(arr.dtype).encode())
        if arr.dtype == object:
            h.update(json.dumps([str(x) for x in arr.ravel().tolist()]).encode())
        else:
            # the bytes through the buffer protocol: no copy of a register-size array
            h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()[:16]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and NaN recursively into JSON-safe objects.

    Parameters
    ----------
    obj : object
        Nested dicts, lists, tuples, numpy arrays and scalars.

    Returns
    -------
    object
        The same structure with lists, Python floats/ints/strings; NaN and infinities
        become ``None``.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    return str(obj)
