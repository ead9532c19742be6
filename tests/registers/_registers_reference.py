"""Plain-loop reference twins of the vectorised register kernels (slow, obviously correct)."""

from __future__ import annotations

import numpy as np


def prefix_sums_loop(states: np.ndarray, members: set[int]) -> np.ndarray:
    n, w = states.shape
    out = np.zeros((n, w + 1), dtype=np.int64)
    for i in range(n):
        total = 0
        for t in range(w):
            if int(states[i, t]) in members:
                total += 1
            out[i, t + 1] = total
    return out


def window_count_loop(states, members, rows, start, stop) -> np.ndarray:
    w = states.shape[1]
    out = []
    for r, a, b in zip(rows, start, stop, strict=True):
        a = min(max(int(a), 0), w)
        b = min(max(int(b), 0), w)
        out.append(sum(1 for t in range(a, b) if int(states[r, t]) in members))
    return np.array(out, dtype=np.int64)


def merge_episodes_loop(spells: list[tuple[object, int, int]], gap: int):
    """spells: (person, start_ordinal, end_ordinal). Returns sorted merged (person, s, e)."""
    by_person: dict[object, list[tuple[int, int]]] = {}
    for p, s, e in spells:
        by_person.setdefault(p, []).append((s, e))
    out = []
    for p in sorted(by_person):
        cur_s = cur_e = None
        for s, e in sorted(by_person[p]):
            if cur_s is None:
                cur_s, cur_e = s, e
            elif s - cur_e - 1 < gap:
                cur_e = max(cur_e, e)
            else:
                out.append((p, cur_s, cur_e))
                cur_s, cur_e = s, e
        out.append((p, cur_s, cur_e))
    return out


def washout_loop(spells: list[tuple[object, int, int]], weeks: int) -> list[bool]:
    ok = []
    for i, (p, s, _e) in enumerate(spells):
        good = True
        for j, (q, s2, e2) in enumerate(spells):
            if j == i or q != p or s2 > s or (s2 == s and j > i):
                continue
            # an earlier spell of the same person: any week in [s - weeks, s - 1]?
            if e2 >= s - weeks:
                good = False
        ok.append(good)
    return ok


def iso_label_loop(ordinal: int) -> int:
    import datetime

    monday = datetime.date(1969, 12, 29) + datetime.timedelta(weeks=int(ordinal))
    y, wk, _ = monday.isocalendar()
    return y * 100 + wk
