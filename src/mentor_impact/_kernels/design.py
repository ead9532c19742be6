"""Private, unchecked kernels of the risk-set design (plain ndarrays, no pandas, no validation).

Conventions shared by every function here:

* ``states`` is the ``(n, W)`` int8 state-id matrix of a register (C order), columns are
  consecutive ISO weeks; ``-1`` is used as the "outside the register" fill value of gathered
  windows.
* ``rows`` are register row indices (int64), ``s`` start columns (int64).
* A *lookup table* ``lut`` for a state or union is an int8 array of length ``n_states + 1``;
  ``lut[k]`` is 1 when state ``k`` belongs to the union and ``lut[-1]`` (the fill slot) is -1,
  so that ``lut[window]`` maps missing weeks to -1 and observed weeks to 0/1.

Every vectorised kernel has a plain-loop twin in ``tests/design/test_*.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RiskSetSweep",
    "binned_counts",
    "count_runs",
    "count_starts_before",
    "episode_eligibility",
    "first_exit",
    "first_sustained",
    "gather_windows",
    "history_counts",
    "make_lut",
    "member_mask",
    "next_start_after",
    "pair_uniforms",
    "risk_set_sweep",
    "trailing_run",
]

FILL = -1


def make_lut(member_ids: tuple[int, ...] | list[int], n_states: int) -> NDArray[np.int8]:
    lut = np.zeros(n_states + 1, dtype=np.int8)
    lut[list(member_ids)] = 1
    lut[-1] = FILL
    return lut


def gather_windows(
    states: NDArray[np.int8],
    rows: NDArray[np.int64],
    start: NDArray[np.int64],
    length: int,
    *,
    chunk: int = 65_536,
) -> NDArray[np.int8]:
    """Return ``out[r, j] = states[rows[r], start[r] + j]`` (``-1`` outside ``0..W-1``).

    Windows inside the register are copied row by row from a sliding-window view of the
    flattened matrix (no ``m x length`` index array); the few windows that cross the first
    or last register week take the indexed path with clipping and the fill value.
    """
    n_w = states.shape[1]
    m = rows.shape[0]
    out = np.empty((m, length), dtype=np.int8)
    if m == 0 or length == 0:
        return out
    flat = np.ascontiguousarray(states).reshape(-1)
    inside = (start >= 0) & (start + length <= n_w)
    idx_in = np.flatnonzero(inside)
    if idx_in.size:
        win = np.lib.stride_tricks.sliding_window_view(flat, length)
        for a in range(0, idx_in.size, chunk):
            sel = idx_in[a : a + chunk]
            out[sel] = win[rows[sel] * n_w + start[sel]]
    edge = np.flatnonzero(~inside)
    # windows crossing the register edges: copy the rows into a buffer padded with the
    # fill value on both sides, then take the windows from that buffer
    width = n_w + 2 * length
    step = max(1, min(chunk, (1 << 26) // width))
    for a in range(0, edge.size, step):
        sel = edge[a : a + step]
        pad = np.full((sel.size, width), FILL, dtype=np.int8)
        pad[:, length : length + n_w] = states[rows[sel]]
        pwin = np.lib.stride_tricks.sliding_window_view(pad.reshape(-1), length)
        st = np.clip(start[sel], -length, n_w) + length
        out[sel] = pwin[np.arange(sel.size) * width + st]
    return out


def first_sustained(ind: NDArray[np.int8], sustain: int, first: int = 1) -> NDArray[np.int64]:
    """First ``k >= first`` with ``ind[:, k:k+sustain]`` all equal to 1; ``-1`` when none.

    Missing weeks (-1) never count as 1, so a spell must be fully observed.
    """
    m, t = ind.shape
    nk = t - sustain - first + 1  # candidate k = first .. t - sustain
    if nk <= 0:
        return np.full(m, -1, dtype=np.int64)
    pos = ind == 1
    full = pos[:, first : first + nk].copy()
    for j in range(1, sustain):
        full &= pos[:, first + j : first + j + nk]
    hit = full.any(axis=1)
    k = np.argmax(full, axis=1).astype(np.int64) + first
    return np.where(hit, k, -1)


def first_exit(
    ids: NDArray[np.int8], origin_lut: NDArray[np.int8], first: int = 1
) -> tuple[NDArray[np.int64], NDArray[np.int8]]:
    """First column ``k >= first`` whose state is observed and outside the origin set.

    Returns ``(k, state_at_k)``; ``k = -1`` and state ``-1`` when no exit is observed.
    """
    sub = ids[:, first:]
    out = (sub >= 0) & (origin_lut[sub] == 0)
    hit = out.any(axis=1)
    j = np.argmax(out, axis=1)
    k = np.where(hit, j + first, -1).astype(np.int64)
    st = np.where(hit, sub[np.arange(sub.shape[0]), j], FILL).astype(np.int8)
    return k, st


def history_counts(
    hist: NDArray[np.int8], a: int, b: int, n_states: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per row, the number of weeks in each state in columns ``a..b-1`` of ``hist``.

    Returns ``(counts (m, n_states), observed (m,))``; missing weeks (-1) are not counted.
    """
    cnt = binned_counts(hist, [(a, b)], n_states)[:, 0, :]
    return cnt, cnt.sum(axis=1)


def binned_counts(
    hist: NDArray[np.int8], bins: list[tuple[int, int]], n_states: int
) -> NDArray[np.int64]:
    """Counts ``(m, n_bins, n_states)`` of each state in column ranges ``[a, b)`` of ``hist``.

    One ``bincount`` over all bins; missing weeks (-1) are not counted.
    """
    m = hist.shape[0]
    ns1 = n_states + 1
    nb = len(bins)
    total = sum(b - a for a, b in bins)
    out = np.empty((m, nb, n_states), dtype=np.int64)
    step = 2048  # keeps the key block and the counts in cache
    for r0 in range(0, m, step):
        r1 = min(r0 + step, m)
        key = np.empty((r1 - r0, total), dtype=np.intp)
        col = 0
        for j, (a, b) in enumerate(bins):
            np.add(hist[r0:r1, a:b], 1 + j * ns1, out=key[:, col : col + b - a],
                   casting="unsafe")
            col += b - a
        key += (np.arange(r1 - r0, dtype=np.intp) * (nb * ns1))[:, None]
        cnt = np.bincount(key.ravel(), minlength=(r1 - r0) * nb * ns1)
        out[r0:r1] = cnt.reshape(r1 - r0, nb, ns1)[:, :, 1:]
    return out


def member_mask(x: NDArray[np.int8], member_ids: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``member_ids[x]`` for int8 state ids (``-1`` = missing -> False).

    Uses two comparisons when the member ids form one contiguous range (no index
    conversion of ``x``), else a lookup.
    """
    ids = np.flatnonzero(member_ids[:-1])
    if ids.size and ids[-1] - ids[0] + 1 == ids.size:
        return (x >= ids[0]) & (x <= ids[-1])
    idx = x.astype(np.intp)
    idx[idx < 0] = member_ids.shape[0] - 1
    return member_ids.take(idx)


def trailing_run(ind: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Length of the run of True values that ends in the last column (capped at the width)."""
    rev = ind[:, ::-1]
    allon = rev.all(axis=1)
    first_off = np.argmin(rev, axis=1)
    return np.where(allon, ind.shape[1], first_off).astype(np.int64)


def count_runs(ind: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Number of maximal runs of True per row (a run open at the left edge counts)."""
    starts = ind[:, 1:] > ind[:, :-1]
    return (np.count_nonzero(starts, axis=1) + ind[:, 0]).astype(np.int64)


def next_start_after(
    ep_key: NDArray[np.int64], ep_row: NDArray[np.int64], ep_start: NDArray[np.int64],
    rows: NDArray[np.int64], s: NDArray[np.int64], n_w: int,
) -> NDArray[np.int64]:
    """Weeks from ``s`` to the row's first episode start strictly after ``s``; -1 if none.

    ``ep_key = ep_row * (n_w + 1) + ep_start`` must be sorted ascending.
    """
    q = np.searchsorted(ep_key, rows * (n_w + 1) + s, side="right")
    qc = np.minimum(q, max(len(ep_key) - 1, 0))
    if len(ep_key) == 0:
        return np.full(rows.shape[0], -1, dtype=np.int64)
    ok = (q < len(ep_key)) & (ep_row[qc] == rows)
    return np.where(ok, ep_start[qc] - s, -1).astype(np.int64)


def count_starts_before(
    ep_key: NDArray[np.int64], rows: NDArray[np.int64], before: NDArray[np.int64], n_w: int
) -> NDArray[np.int64]:
    """Number of the row's episodes that start in a column ``< before``."""
    lo = np.searchsorted(ep_key, rows * (n_w + 1), side="left")
    hi = np.searchsorted(ep_key, rows * (n_w + 1) + np.maximum(before, 0), side="left")
    return (hi - lo).astype(np.int64)


# reasons an episode start is not a treated row (checked in this order)
REASON_KEPT = 0
REASON_STATE = 1  # not in a target state in week s - 1 (or s = 0)
REASON_WASHOUT = 2  # a previous episode active within `washout` weeks before s
REASON_AGE = 3  # outside the age band at s
REASON_NOT_FIRST = 4  # an earlier eligible start exists (first-start rule)


def episode_eligibility(
    states: NDArray[np.int8],
    target_lut: NDArray[np.int8],
    ep_row: NDArray[np.int64],
    ep_start: NDArray[np.int64],
    ep_end: NDArray[np.int64],
    *,
    washout: int,
    age_lo: NDArray[np.int64] | None,
    age_hi: NDArray[np.int64] | None,
    first_only: bool,
) -> NDArray[np.int8]:
    """Reason code per episode (episodes sorted by (row, start), non-overlapping per row)."""
    m = ep_row.shape[0]
    reason = np.zeros(m, dtype=np.int8)
    if m == 0:
        return reason
    prev_col = ep_start - 1
    st = np.where(prev_col >= 0, states[ep_row, np.maximum(prev_col, 0)], FILL)
    ok_state = (prev_col >= 0) & (target_lut[st] == 1)
    # washout: the previous episode of the same row ends at or after s - washout
    same_prev = np.zeros(m, dtype=bool)
    same_prev[1:] = ep_row[1:] == ep_row[:-1]
    # episodes of a row are sorted and non-overlapping, so the previous one ends last
    prev_end = np.full(m, -(10**9), dtype=np.int64)
    prev_end[1:] = ep_end[:-1]
    prev_end = np.where(same_prev, prev_end, -(10**9))
    ok_wash = prev_end < ep_start - washout
    if age_lo is not None and age_hi is not None:
        ok_age = (age_lo[ep_row] <= ep_start) & (ep_start < age_hi[ep_row])
    else:
        ok_age = np.ones(m, dtype=bool)
    reason[~ok_age] = REASON_AGE
    reason[~ok_wash] = REASON_WASHOUT
    reason[~ok_state] = REASON_STATE
    if first_only:
        elig = reason == REASON_KEPT
        idx = np.flatnonzero(elig)
        r = ep_row[idx]
        first_mask = np.ones(idx.shape[0], dtype=bool)
        first_mask[1:] = r[1:] != r[:-1]
        reason[idx[~first_mask]] = REASON_NOT_FIRST
    return reason


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def pair_uniforms(person_key: NDArray[np.uint64], seed_key: int, s: int) -> NDArray[np.float64]:
    """Uniforms in [0, 1) that depend only on (seed, person key, start week).

    A counter-based generator (splitmix64 finaliser): the draw of a (person, s) pair does
    not depend on the row order of the register or on which other persons are present.
    """
    k = np.uint64((seed_key + (s + 1) * _GOLDEN) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = _splitmix(person_key ^ _splitmix(np.asarray(k, dtype=np.uint64)))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


@dataclass
class RiskSetSweep:
    """Output of :func:`risk_set_sweep` (one entry per design row, plus per-week counts)."""

    rows: NDArray[np.int64]
    s: NDArray[np.int64]
    treatment: NDArray[np.int8]
    weight: NDArray[np.float64]
    n1: NDArray[np.int64]  # (W,) treated per start week
    n0: NDArray[np.int64]  # (W,) eligible controls per start week
    k0: NDArray[np.int64]  # (W,) sampled controls per start week
    pi: NDArray[np.float64]  # (W,) control inclusion probability


def risk_set_sweep(
    states: NDArray[np.int8],
    target_lut: NDArray[np.int8],
    ep_row: NDArray[np.int64],
    ep_start: NDArray[np.int64],
    ep_end: NDArray[np.int64],
    treated_ep: NDArray[np.bool_],
    *,
    washout: int,
    s_lo: int,
    s_hi: int,
    age_lo: NDArray[np.int64] | None,
    age_hi: NDArray[np.int64] | None,
    first_start: NDArray[np.int64] | None,
    controls_per_treated: float | None,
    control_share: float | None,
    sampling: str,
    person_key: NDArray[np.uint64],
    seed_key: int,
    block: int = 64,
) -> RiskSetSweep:
    """Sweep start weeks ``s_lo..s_hi-1``: eligible controls, treated rows and sampling.

    A person is an eligible control at ``s`` when: state at ``s-1`` is a target state; no
    episode is active in ``[s - washout, s - 1]`` and none starts at ``s``; ``age_lo <= s <
    age_hi``; and (first-start rule) the person's first eligible start is after ``s``.
    """
    n, n_w = states.shape
    excl = np.zeros(n, dtype=np.int16)
    # exclusion interval of an episode for controls: [start, end + washout + 1)
    ev_on = ep_start
    ev_off = ep_end + washout + 1
    on_order = np.argsort(ev_on, kind="stable")
    off_order = np.argsort(ev_off, kind="stable")
    on_sorted = ev_on[on_order]
    off_sorted = ev_off[off_order]
    # apply everything before s_lo at once
    i_on = int(np.searchsorted(on_sorted, s_lo, side="right"))
    i_off = int(np.searchsorted(off_sorted, s_lo, side="right"))
    np.add.at(excl, ep_row[on_order[:i_on]], 1)
    np.add.at(excl, ep_row[off_order[:i_off]], -1)
    tr_idx = np.flatnonzero(treated_ep)
    tr_s = ep_start[tr_idx]
    tr_order = tr_idx[np.argsort(tr_s, kind="stable")]
    tr_s_sorted = ep_start[tr_order]

    n1 = np.zeros(n_w, dtype=np.int64)
    n0 = np.zeros(n_w, dtype=np.int64)
    k0 = np.zeros(n_w, dtype=np.int64)
    pi_w = np.zeros(n_w, dtype=np.float64)
    out_rows: list[NDArray[np.int64]] = []
    out_s: list[NDArray[np.int64]] = []
    out_d: list[NDArray[np.int8]] = []
    out_w: list[NDArray[np.float64]] = []
    tlut = target_lut == 1
    for a in range(s_lo, s_hi, block):
        b = min(a + block, s_hi)
        blk = np.ascontiguousarray(states[:, a - 1 : b - 1].T)
        for s in range(a, b):
            if s > s_lo:
                j_on = int(np.searchsorted(on_sorted, s, side="right"))
                if j_on > i_on:
                    np.add.at(excl, ep_row[on_order[i_on:j_on]], 1)
                    i_on = j_on
                j_off = int(np.searchsorted(off_sorted, s, side="right"))
                if j_off > i_off:
                    np.add.at(excl, ep_row[off_order[i_off:j_off]], -1)
                    i_off = j_off
            t0 = int(np.searchsorted(tr_s_sorted, s, side="left"))
            t1 = int(np.searchsorted(tr_s_sorted, s, side="right"))
            trows = np.sort(ep_row[tr_order[t0:t1]])
            n1[s] = trows.shape[0]
            if n1[s] == 0:
                continue
            ok = tlut[blk[s - a]]
            ok &= excl == 0
            if age_lo is not None and age_hi is not None:
                ok &= (age_lo <= s) & (s < age_hi)
            if first_start is not None:
                ok &= first_start > s
            cand = np.flatnonzero(ok)
            n0[s] = cand.shape[0]
            if controls_per_treated is None and control_share is None:
                sel = cand
                pi = 1.0
            else:
                if controls_per_treated is not None:
                    target = controls_per_treated * n1[s]
                else:
                    target = float(control_share) * n0[s]  # type: ignore[arg-type]
                pi = min(1.0, target / n0[s]) if n0[s] > 0 else 0.0
                if pi >= 1.0:
                    sel = cand
                elif sampling == "bernoulli":
                    sel = cand[pair_uniforms(person_key[cand], seed_key, s) < pi]
                else:
                    k = int(np.floor(target + 0.5))
                    k = min(max(k, 0), int(n0[s]))
                    pi = k / n0[s] if n0[s] > 0 else 0.0
                    u = pair_uniforms(person_key[cand], seed_key, s)
                    sel = np.sort(cand[np.argpartition(u, k - 1)[:k]]) if k > 0 else cand[:0]
            k0[s] = sel.shape[0]
            pi_w[s] = pi
            out_rows += [trows, sel.astype(np.int64)]
            out_s += [np.full(n1[s] + k0[s], s, dtype=np.int64)]
            out_d += [np.ones(n1[s], np.int8), np.zeros(k0[s], np.int8)]
            w0 = 1.0 / pi if pi > 0 else 0.0
            out_w += [np.ones(n1[s]), np.full(k0[s], w0)]
    if out_rows:
        rows = np.concatenate(out_rows)
        s_arr = np.concatenate(out_s)
        d = np.concatenate(out_d)
        w = np.concatenate(out_w)
    else:
        rows = np.zeros(0, np.int64)
        s_arr = np.zeros(0, np.int64)
        d = np.zeros(0, np.int8)
        w = np.zeros(0, np.float64)
    return RiskSetSweep(rows, s_arr, d, w, n1, n0, k0, pi_w)
