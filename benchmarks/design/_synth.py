"""Fast synthetic register + spells for the design benchmarks (not a known-truth simulator)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mentor_impact.registers import StateCatalog, TreatmentSpells, WeeklyRegister
from mentor_impact.registers.isoweek import iso_to_ordinal, ordinal_to_iso

CAT = StateCatalog.default()
_CODE = {"employed": 1001, "education": 651, "self_support_other": 0, "passive_benefit": 211,
         "activation": 231, "subsidised_job": 511, "health_benefit": 711,
         "retired_disabled": 781, "dead_emigrated": 998, "unknown": 999}
CODES = np.array([_CODE[s] for s in CAT.STATES], dtype=np.uint16)


def synth(n: int, w: int = 520, starts_per_person: float = 0.07, seed: int = 0):
    """Sticky weekly states (mostly benefit), one mentor spell for a share of persons."""
    rng = np.random.default_rng(seed)
    probs = np.array([0.12, 0.05, 0.05, 0.35, 0.25, 0.05, 0.08, 0.04, 0.0, 0.01])
    probs = probs / probs.sum()
    st_t = np.empty((w, n), dtype=np.int8)  # week-major while simulating (contiguous writes)
    cur = rng.choice(10, n, p=probs).astype(np.int8)
    st_t[0] = cur
    for t in range(1, w):
        move = np.flatnonzero(rng.random(n) < 0.04)
        cur[move] = rng.choice(10, move.size, p=probs)
        st_t[t] = cur
    codes = np.ascontiguousarray(CODES[st_t].T)
    del st_t
    weeks = ordinal_to_iso(iso_to_ordinal(200601) + np.arange(w))
    persons = np.arange(n, dtype=np.int64) + 1
    reg = WeeklyRegister(codes, persons=persons, weeks=weeks, catalog=CAT)
    # ~80 % of the spells start inside the default design's start weeks (156 .. W-157),
    # ~60 % of those in a target state: about `starts_per_person * n` treated starts
    k = min(round(starts_per_person * n * 2.1), n)
    who = rng.choice(n, size=k, replace=False)
    inside = rng.random(k) < 0.8
    st = np.where(inside, rng.integers(156, max(w - 156, 157), k), rng.integers(1, w, k))
    ln = rng.integers(5, 30, k)
    en = np.minimum(st + ln, w - 1)
    sp = TreatmentSpells(persons[who], weeks[st], weeks[en])
    baseline = pd.DataFrame({
        "person": persons,
        "birth_year": rng.integers(1950, 1992, n),
        "sex": rng.choice(np.array(["female", "male"]), n),
    })
    return reg, sp, baseline
