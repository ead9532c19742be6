"""Nearest-neighbour matching kernels on a scalar distance (private; no validation).

Layout shared by every function here
------------------------------------
All units are sorted once by ``(cell, distance, row)`` (``np.lexsort``); the controls in that
order form the *sorted control array* (``ctrl_rows``, ``ctrl_dist``, ``ctrl_cell``). Each
treated unit gets

- ``split``: the number of controls that precede it in the global order (so its left
  neighbours are ``split - 1, split - 2, ...`` and its right neighbours ``split, split + 1,
  ...``), which reproduces MatchIt's ``sort.list(distance)`` layout where a control with the
  same distance and a smaller row number lies to the left;
- ``lo``, ``hi``: the bounds of its exact cell in the sorted control array.

Neighbour rule (MatchIt ``nn_matchC_vec``): the nearest available control to the left and to
the right are compared with ``abs(d_c - d_t)``; the left one wins ties.

Matches are returned in CSR form: ``ptr`` (n1 + 1,) offsets into ``pos`` (sorted-control
positions) per treated unit, in the order the matches were made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

__all__ = [
    "SortedDesign",
    "greedy_without_replacement",
    "knn_with_replacement",
    "prepare",
    "range_max",
    "sparse_table",
]

NEG = np.iinfo(np.int64).min
POS = np.iinfo(np.int64).max


@dataclass
class SortedDesign:
    ctrl_rows: IntArray  # (n0,) row indices of controls in sorted order
    ctrl_dist: FloatArray  # (n0,)
    ctrl_cell: IntArray  # (n0,)
    treat_rows: IntArray  # (n1,) row indices of treated (in the caller's order)
    treat_dist: FloatArray  # (n1,)
    split: IntArray  # (n1,)
    lo: IntArray  # (n1,)
    hi: IntArray  # (n1,)
    treat_cell: IntArray  # (n1,)
    keys: NDArray[np.complex128]  # (n0,) cell + 1j * distance, sorted lexicographically


def prepare(
    dist: FloatArray, treat: NDArray[np.bool_], cell: IntArray | None, treat_rows: IntArray
) -> SortedDesign:
    """Sort units by (cell, distance, row) and locate every treated unit among the controls."""
    n = dist.shape[0]
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    order = np.lexsort((np.arange(n), dist, cellv))
    is_c = ~treat[order]
    ctrl_rows = order[is_c]
    # controls strictly before each sorted position
    nbefore: IntArray = np.cumsum(is_c).astype(np.int64) - is_c
    split_all = np.empty(n, dtype=np.int64)
    split_all[order] = nbefore
    ctrl_cell = cellv[ctrl_rows]
    tcell = cellv[treat_rows]
    lo = np.searchsorted(ctrl_cell, tcell, side="left").astype(np.int64)
    hi = np.searchsorted(ctrl_cell, tcell, side="right").astype(np.int64)
    return SortedDesign(
        ctrl_rows=ctrl_rows,
        ctrl_dist=dist[ctrl_rows],
        ctrl_cell=ctrl_cell,
        treat_rows=treat_rows,
        treat_dist=dist[treat_rows],
        split=split_all[treat_rows].astype(np.int64),
        lo=lo,
        hi=hi,
        treat_cell=tcell,
        keys=ctrl_cell.astype(np.float64) + 1j * dist[ctrl_rows],
    )


def knn_with_replacement(
    sd: SortedDesign,
    k: int,
    caliper: float | None,
    ties: str,
) -> tuple[IntArray, IntArray]:
    """k nearest controls per treated unit, with replacement (MatchIt merge order).

    Returns ``(ptr, pos)``: CSR offsets per treated unit and sorted-control positions.
    ``ties="all"`` adds every control at exactly the distance of the k-th match.
    """
    n1 = sd.treat_dist.shape[0]
    L = sd.split - 1
    R = sd.split.copy()
    dt = sd.treat_dist
    cd = sd.ctrl_dist
    picks = np.full((n1, k), -1, dtype=np.int64)
    gapk = np.full(n1, np.nan)
    active = np.ones(n1, dtype=bool)
    for r in range(k):
        vL = active & (L >= sd.lo)
        vR = active & (R < sd.hi)
        dL = np.full(n1, np.inf)
        dR = np.full(n1, np.inf)
        dL[vL] = np.abs(cd[L[vL]] - dt[vL])
        dR[vR] = np.abs(cd[R[vR]] - dt[vR])
        takeL = vL & (~vR | (dL <= dR))
        takeR = vR & ~takeL
        ok = takeL | takeR
        dmin = np.where(takeL, dL, dR)
        if caliper is not None:
            ok &= dmin <= caliper
        chosen = np.where(takeL, L, R)
        picks[ok, r] = chosen[ok]
        gapk[ok] = dmin[ok]
        L = L - (takeL & ok)
        R = R + (takeR & ok)
        active = ok
    counts = (picks >= 0).sum(axis=1)
    if ties == "all":
        has = counts > 0
        idx = np.flatnonzero(has)
        radius = gapk[idx]
        # first position inside on the left / last position inside on the right
        left_end = _extend_pred(sd, idx, L[idx], sd.lo[idx], radius, strict=False, step=-1)
        right_end = _extend_pred(sd, idx, R[idx], sd.hi[idx], radius, strict=False, step=+1)
        # assemble: the k picks plus the extra tied controls beyond the pointers
        extra_left = np.zeros(n1, dtype=np.int64)
        extra_right = np.zeros(n1, dtype=np.int64)
        extra_left[idx] = L[idx] - left_end + 1
        extra_right[idx] = right_end - R[idx] + 1
        extra_left = np.maximum(extra_left, 0)
        extra_right = np.maximum(extra_right, 0)
        tot = counts + extra_left + extra_right
        ptr = np.zeros(n1 + 1, dtype=np.int64)
        np.cumsum(tot, out=ptr[1:])
        pos = np.empty(int(ptr[-1]), dtype=np.int64)
        # the k picks
        rr, cc = np.nonzero(picks >= 0)
        pos[ptr[rr] + cc] = picks[rr, cc]
        # extra left: positions L, L-1, ..., left_end
        _fill_runs(pos, ptr[:-1] + counts, L, extra_left, -1)
        _fill_runs(pos, ptr[:-1] + counts + extra_left, R, extra_right, +1)
        return ptr, pos
    ptr = np.zeros(n1 + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    rr, cc = np.nonzero(picks >= 0)
    pos = np.empty(int(ptr[-1]), dtype=np.int64)
    pos[ptr[rr] + cc] = picks[rr, cc]
    return ptr, pos


def _fill_runs(out: IntArray, at: IntArray, start: IntArray, length: IntArray, step: int) -> None:
    """out[at[i] + j] = start[i] + step * j for j < length[i] (vectorised)."""
    tot = int(length.sum())
    if tot == 0:
        return
    owner = np.repeat(np.arange(length.size), length)
    offs = np.arange(tot) - np.repeat(np.cumsum(length) - length, length)
    out[at[owner] + offs] = start[owner] + step * offs


# ----------------------------------------------------------------------------- range max
def sparse_table(v: IntArray) -> list[IntArray]:
    """Sparse table for O(1) range-maximum queries (levels of 2^j window maxima)."""
    table = [v.copy()]
    j = 1
    while (1 << j) <= v.size:
        prev = table[-1]
        half = 1 << (j - 1)
        table.append(np.maximum(prev[: prev.size - half], prev[half:]))
        j += 1
    return table


def range_max(table: list[IntArray], a: IntArray, b: IntArray) -> IntArray:
    """Maximum of v[a:b] (half-open) for many ranges; NEG for empty ranges."""
    out = np.full(a.shape, NEG, dtype=np.int64)
    length = b - a
    ok = length > 0
    if not ok.any():
        return out
    ln = length[ok]
    j = np.floor(np.log2(ln)).astype(np.int64)
    # guard floating log2 at exact powers of two
    j = np.where((1 << (j + 1)) <= ln, j + 1, j)
    j = np.where((1 << j) > ln, j - 1, j)
    aa = a[ok]
    bb = b[ok]
    res = np.empty(ln.size, dtype=np.int64)
    for lev in np.unique(j):
        m = j == lev
        t = table[int(lev)]
        res[m] = np.maximum(t[aa[m]], t[bb[m] - (1 << int(lev))])
    out[ok] = res
    return out


# ----------------------------------------------------------------------------- greedy
def _propose(
    sd: SortedDesign,
    idx: IntArray,
    taken: NDArray[np.bool_],
    nxt_left: IntArray,
    nxt_right: IntArray,
) -> tuple[IntArray, FloatArray]:
    """Nearest available control (MatchIt rule) for treated ``idx``; -1 when none left."""
    dt = sd.treat_dist[idx]
    L = _find_avail(nxt_left, sd.split[idx] - 1)
    R = _find_avail_right(nxt_right, sd.split[idx])
    vL = L >= sd.lo[idx]
    vR = R < sd.hi[idx]
    cd = sd.ctrl_dist
    dL = np.full(idx.size, np.inf)
    dR = np.full(idx.size, np.inf)
    dL[vL] = np.abs(cd[L[vL]] - dt[vL])
    dR[vR] = np.abs(cd[R[vR]] - dt[vR])
    takeL = vL & (~vR | (dL <= dR))
    takeR = vR & ~takeL
    chosen = np.where(takeL, L, np.where(takeR, R, -1))
    gap = np.where(takeL, dL, np.where(takeR, dR, np.inf))
    return chosen, gap


def _find_avail(nxt_left: IntArray, start: IntArray) -> IntArray:
    """Nearest available position <= start (-1 if none); links are fully compressed."""
    out = np.full(start.shape, -1, dtype=np.int64)
    ok = start >= 0
    out[ok] = nxt_left[start[ok]]
    return out


def _find_avail_right(nxt_right: IntArray, start: IntArray) -> IntArray:
    """Nearest available position >= start (n if none)."""
    n = nxt_right.size
    out = np.full(start.shape, n, dtype=np.int64)
    ok = start < n
    out[ok] = nxt_right[start[ok]]
    return out


def _compress_links(taken: NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """For each position: nearest available position to the left (<=) / right (>=)."""
    n = taken.size
    pos = np.arange(n)
    left = np.where(~taken, pos, -1)
    left = np.maximum.accumulate(left)
    right = np.where(~taken, pos, n)
    right = np.minimum.accumulate(right[::-1])[::-1]
    return left.astype(np.int64), right.astype(np.int64)


def greedy_without_replacement(
    sd: SortedDesign,
    priority: IntArray,
    k: int,
    caliper: float | None,
    taken0: NDArray[np.bool_] | None = None,
    max_restarts: int = 10_000,
) -> tuple[IntArray, IntArray]:
    """Greedy matching without replacement, identical to MatchIt's sequential algorithm.

    ``priority[i]`` is the rank of treated ``i`` in the matching order (0 = first). MatchIt
    makes ``k`` passes; in each pass every treated unit, in priority order, takes its nearest
    still-unused control. Each pass is computed in parallel rounds: every unsettled treated
    unit proposes its nearest available control, the highest-priority proposer of each
    control wins it; the result is then verified against the sequential characterisation
    with range-maximum queries, and the pass is recomputed from the first violation (the
    prefix before it is provably identical to the sequential result).
    """
    n1 = sd.treat_dist.shape[0]
    n0 = sd.ctrl_dist.shape[0]
    taken = np.zeros(n0, dtype=bool) if taken0 is None else taken0.copy()
    picks = np.full((n1, k), -1, dtype=np.int64)
    by_prio = np.argsort(priority, kind="stable")
    rank = np.empty(n1, dtype=np.int64)
    rank[by_prio] = np.arange(n1)
    for r in range(k):
        eligible = np.ones(n1, dtype=bool) if r == 0 else picks[:, r - 1] >= 0
        fixed_before = -1  # ranks <= fixed_before are final in this pass
        base_taken = taken.copy()
        match = np.full(n1, -1, dtype=np.int64)
        settled_prefix = np.zeros(n1, dtype=bool)
        for _ in range(max_restarts):
            match = np.where(settled_prefix, match, -1)
            tk = base_taken.copy()
            tk[match[settled_prefix & (match >= 0)]] = True
            unsettled = eligible & ~settled_prefix
            while unsettled.any():
                idx = np.flatnonzero(unsettled)
                nl, nr = _compress_links(tk)
                ch, gap = _propose(sd, idx, tk, nl, nr)
                none = ch < 0
                if caliper is not None:
                    none |= gap > caliper
                # treated with nothing available (or outside caliper) settle unmatched
                unsettled[idx[none]] = False
                idx2 = idx[~none]
                ch2 = ch[~none]
                if idx2.size == 0:
                    break
                # winner per control: highest priority (smallest rank)
                o = np.lexsort((rank[idx2], ch2))
                ch_s = ch2[o]
                first = np.ones(ch_s.size, dtype=bool)
                first[1:] = ch_s[1:] != ch_s[:-1]
                win = idx2[o][first]
                wc = ch_s[first]
                match[win] = wc
                tk[wc] = True
                unsettled[win] = False
            # verification against the sequential characterisation
            bad_rank = _first_violation(sd, match, eligible, rank, base_taken, caliper)
            if bad_rank < 0:
                break
            fixed_before = bad_rank - 1
            settled_prefix = eligible & (rank <= fixed_before)
        else:  # pragma: no cover - safety net
            raise RuntimeError("greedy matching did not stabilise")
        picks[:, r] = match
        taken = base_taken
        taken[match[match >= 0]] = True
    counts = (picks >= 0).sum(axis=1)
    ptr = np.zeros(n1 + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    rr, cc = np.nonzero(picks >= 0)
    pos = np.empty(int(ptr[-1]), dtype=np.int64)
    pos[ptr[rr] + cc] = picks[rr, cc]
    return ptr, pos


def _first_violation(
    sd: SortedDesign,
    match: IntArray,
    eligible: NDArray[np.bool_],
    rank: IntArray,
    base_taken: NDArray[np.bool_],
    caliper: float | None,
) -> int:
    """Smallest rank whose assignment differs from the sequential rule (-1 if none)."""
    n0 = sd.ctrl_dist.shape[0]
    # time at which each control became unavailable: -1 before this pass, rank when taken
    when = np.full(n0, POS, dtype=np.int64)
    when[base_taken] = -1
    m = match >= 0
    when[match[m]] = rank[m]
    table = sparse_table(when)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return -1
    dt = sd.treat_dist[idx]
    s = sd.split[idx]
    lo = sd.lo[idx]
    hi = sd.hi[idx]
    c = match[idx]
    rk = rank[idx]
    cd = sd.ctrl_dist
    bad = np.zeros(idx.size, dtype=bool)
    matched = c >= 0
    # --- matched units
    if matched.any():
        j = np.flatnonzero(matched)
        cj = c[j]
        r = np.abs(cd[cj] - dt[j])
        left = cj < s[j]
        # controls strictly between the match and the split must be gone before rank
        a = np.where(left, cj + 1, s[j])
        b = np.where(left, s[j], cj)
        bad[j] |= range_max(table, a, b) >= rk[j]
        # other side: on the right (match on the left) controls with gap < r must be gone;
        # on the left (match on the right) controls with gap <= r must be gone
        jl = j[left]
        if jl.size:
            rr = _extend_pred(sd, idx[jl], s[jl], hi[jl], r[left], strict=True, step=+1)
            bad[jl] |= range_max(table, s[jl], rr + 1) >= rk[jl]
        jr = j[~left]
        if jr.size:
            ll = _extend_pred(sd, idx[jr], s[jr] - 1, lo[jr], r[~left], strict=False, step=-1)
            bad[jr] |= range_max(table, ll, s[jr]) >= rk[jr]
        if caliper is not None:
            bad[j] |= r > caliper
    # --- unmatched units: every control within reach must be gone before rank
    um = np.flatnonzero(~matched)
    if um.size:
        if caliper is None:
            a = lo[um]
            b = hi[um]
        else:
            cal = np.full(um.size, caliper)
            a = _extend_pred(sd, idx[um], s[um] - 1, lo[um], cal, strict=False, step=-1)
            b = _extend_pred(sd, idx[um], s[um], hi[um], cal, strict=False, step=+1) + 1
        bad[um] |= range_max(table, a, b) >= rk[um]
    if not bad.any():
        return -1
    return int(rk[bad].min())


def _extend_pred(
    sd: SortedDesign,
    idx: IntArray,
    start: IntArray,
    bound: IntArray,
    radius: FloatArray,
    *,
    strict: bool,
    step: int,
) -> IntArray:
    """Furthest position from ``start`` (towards ``bound``) whose gap is < (or <=) radius.

    For ``step=+1`` returns the last position p in [start, bound) inside (start - 1 if none);
    for ``step=-1`` returns the first position p in [bound, start] inside (start + 1 if none).
    The gap is ``abs(d_c - d_t)`` exactly as in the matching rule; a lexicographic
    (cell, distance) ``searchsorted`` gives the guess, exact fix-ups the answer.
    """
    cd = sd.ctrl_dist
    dt = sd.treat_dist[idx]
    cellf = sd.treat_cell[idx].astype(np.float64)
    if step > 0:
        q = cellf + 1j * (dt + radius)
        g = np.searchsorted(sd.keys, q, side="right").astype(np.int64) - 1
        g = np.clip(g, start - 1, bound - 1)
    else:
        q = cellf + 1j * (dt - radius)
        g = np.searchsorted(sd.keys, q, side="left").astype(np.int64)
        g = np.clip(g, bound, start + 1)

    def inside(p: IntArray, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        out = np.zeros(p.size, dtype=bool)
        gap = np.abs(cd[p[mask]] - dt[mask])
        out[mask] = gap < radius[mask] if strict else gap <= radius[mask]
        return out

    if step > 0:
        while True:  # grow while next is inside
            nx = g + 1
            ok = (nx < bound) & (nx >= start)
            mv = inside(np.where(ok, nx, 0), ok)
            if not mv.any():
                break
            g[mv] += 1
        while True:  # shrink while current is outside
            ok = g >= start
            mv = np.zeros(g.size, dtype=bool)
            mv[ok] = ~inside(np.where(ok, g, 0), ok)[ok]
            if not mv.any():
                break
            g[mv] -= 1
        return g
    while True:
        nx = g - 1
        ok = (nx >= bound) & (nx <= start)
        mv = inside(np.where(ok, nx, 0), ok)
        if not mv.any():
            break
        g[mv] -= 1
    while True:
        ok = g <= start
        mv = np.zeros(g.size, dtype=bool)
        mv[ok] = ~inside(np.where(ok, g, 0), ok)[ok]
        if not mv.any():
            break
        g[mv] += 1
    return g
