"""Matched sets, weights, effects and variances shared by the matching estimators."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.linalg.blas import dsyrk

from mentor_impact.inference.covariance import cluster_sums
from mentor_impact.inference.influence import BLOCK_ELEMS, RowIndex, RowInfluence

__all__ = [
    "Matches",
    "MatchingInfluence",
    "SameArmResiduals",
    "ai_covariance",
    "layout",
    "matched_set_covariance",
    "same_arm_neighbors",
    "same_arm_residuals",
    "sorted_order",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Matches:
    """Matched sets: focal row -> matched rows with pair weights.

    Attributes
    ----------
    focal : ndarray of shape (n_focal,)
        Row positions of the focal units (treated for the ATT), in data order.
    ptr : ndarray of shape (n_focal + 1,)
        CSR offsets: the matches of ``focal[i]`` are ``matched[ptr[i]:ptr[i + 1]]``.
    matched : ndarray of shape (n_pairs,)
        Row positions of the matched units, in the order they were matched.
    pair_weight : ndarray of shape (n_pairs,)
        ``1 / m_i`` for each of the ``m_i`` matches of focal unit ``i`` (kernel matching:
        the normalised kernel weights).
    n_rows : int
        Rows of the data the positions refer to.
    """

    focal: IntArray
    ptr: IntArray
    matched: IntArray
    pair_weight: FloatArray
    n_rows: int

    @property
    def n_matches(self) -> IntArray:
        """Number of matches per focal unit (0 = unmatched)."""
        return np.diff(self.ptr)

    @property
    def pair_focal(self) -> IntArray:
        """Focal row of each pair (aligned with ``matched``)."""
        return np.repeat(self.focal, self.n_matches)

    def reuse_counts(self) -> IntArray:
        """Return how often each row is used as a match (``np.bincount``), length ``n_rows``."""
        return np.bincount(self.matched, minlength=self.n_rows).astype(np.int64)

    def column_sums(self, c: FloatArray, power: int = 1) -> FloatArray:
        """Return ``sum_i c_i w_ij^power`` for every row ``j`` (length ``n_rows``).

        ``c`` holds one coefficient per focal unit (e.g. its sampling weight: ``K_j``).
        """
        wts = np.repeat(c, self.n_matches) * (self.pair_weight if power == 1
                                              else self.pair_weight**power)
        return np.bincount(self.matched, weights=wts, minlength=self.n_rows).astype(
            np.float64, copy=False)

    def weighted_sums(self, values: Any, k: int) -> FloatArray:
        """Return ``sum_j w_ij v_j`` per focal unit (n_focal, k), summed in pair order.

        ``values.rows(idx)`` gives the float64 values of data rows ``idx``.
        """
        return pair_sums(self, lambda sl: values.rows(self.matched[sl]), k, weighted=True)

    def weighted_row_sums(self, values: Any, k: int) -> FloatArray:
        """As :meth:`weighted_sums`, reading each used row once (costly values)."""
        return matched_row_sums(self, values, k)

    def pair_sigma(
        self, Y: npt.NDArray[Any], sign: float, est: FloatArray, s: FloatArray
    ) -> tuple[FloatArray, float]:
        """Return ``sum_r w_r t_r t_r'`` and ``sum_r w_r`` over pairs ``r``.

        ``w_r = s_focal(r) * pair_weight(r)`` and
        ``t_r = sign * (Y_focal(r) - Y_matched(r)) - est``, computed in pair blocks.
        """
        k = Y.shape[1]
        num = np.zeros((k, k))
        pf = self.pair_focal
        wts = s[pf] * self.pair_weight
        for b in _blocks(np.arange(self.matched.size), k):
            tau_r = rows_f64(Y, pf[b], sign) - rows_f64(Y, self.matched[b], sign) - est
            num += (tau_r * wts[b, None]).T @ tau_r
        return num, float(wts.sum())

    def remap(self, rows: IntArray, n_rows: int) -> Matches:
        """Return the matched sets with row positions mapped through ``rows``."""
        return Matches(focal=rows[self.focal], ptr=self.ptr, matched=rows[self.matched],
                       pair_weight=self.pair_weight, n_rows=n_rows)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one line per pair (``focal_row``, ``matched_row``, ``rank``, ``weight``).

        Returns
        -------
        pandas.DataFrame
            Row positions only (never identifiers).
        """
        nm = self.n_matches
        rank = np.arange(self.matched.size) - np.repeat(self.ptr[:-1], nm)
        return pd.DataFrame(
            {
                "focal_row": self.pair_focal,
                "matched_row": self.matched,
                "rank": rank,
                "weight": self.pair_weight,
            }
        )

    def as_dict(self) -> dict[int, list[int]]:
        """Focal row -> list of matched rows (MatchIt's ``match.matrix`` as a dict).

        Returns
        -------
        dict of int to list of int
            Unmatched focal units map to an empty list.
        """
        out: dict[int, list[int]] = {}
        m = self.matched.tolist()
        p = self.ptr.tolist()
        for i, f in enumerate(self.focal.tolist()):
            out[int(f)] = m[p[i] : p[i + 1]]
        return out


def _segment_cumsum(v: FloatArray, bounds: IntArray) -> FloatArray:
    """Cumulative sums of ``v`` along axis 0, restarting at every segment bound.

    ``bounds`` are the segment starts plus the end (``0 = b_0 < b_1 < ... = len(v)``); one
    ``cumsum`` per segment (a loop over exact-matching cells), so a window sum inside a
    segment carries no rounding from the other segments.
    """
    out = np.empty_like(v)
    for a, b in pairwise(bounds.tolist()):  # loop over cells
        np.cumsum(v[a:b], axis=0, out=out[a:b])
    return out


def _window_sums(S: FloatArray, seg_lo: IntArray, a: IntArray, cnt: IntArray) -> FloatArray:
    """Return the sums over the windows ``[a, a + cnt)`` from segment cumulative sums ``S``.

    ``seg_lo`` is, per position, the start of its segment; every window lies in one
    segment; empty windows give 0.
    """
    has = cnt > 0
    b = np.where(has, a + cnt - 1, 0)
    out = np.where(has[:, None] if S.ndim == 2 else has, S[b], 0.0)
    prev = has & (a > seg_lo[np.minimum(a, len(seg_lo) - 1)])
    out[prev] -= S[a[prev] - 1]
    return np.asarray(out)


def _bounds(codes: IntArray) -> IntArray:
    """Segment bounds of a sorted code array: starts of the runs of equal codes, and end."""
    n = codes.size
    return np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1, n].astype(np.int64)


def _seg_lo(bounds: IntArray) -> IntArray:
    """Per position, the start of its segment."""
    return np.repeat(bounds[:-1], np.diff(bounds))


class _Segments:
    """Segments of a sorted array (cells, cut every ``width`` of distance) and window moments.

    ``moments(v, a, cnt, t, qmax)`` returns ``D_q = sum_{p in [a, a + cnt)} v_p (x_p - t)^q``
    for ``q = 0..qmax`` (each (n_windows, k)): per-segment prefix sums of
    ``v (x - c)^r`` around the segment centre ``c``, window pieces (at most two segments
    per window when windows are narrower than ``width``), shifted to ``t`` binomially.
    """

    def __init__(self, cell: IntArray, x: FloatArray, width: float | None) -> None:
        n = x.size
        self.x = x
        bounds = _bounds(cell)
        if width is None or n == 0:
            self.bounds = bounds
            self.center = np.zeros(n)
        else:
            origin = np.repeat(x[bounds[:-1]], np.diff(bounds))  # cell minimum (sorted)
            k = np.floor((x - origin) / width).astype(np.int64)
            new = np.r_[True, (cell[1:] != cell[:-1]) | (k[1:] != k[:-1])] if n else np.r_[True]
            self.bounds = np.r_[np.flatnonzero(new), n].astype(np.int64)
            self.center = origin + (k + 0.5) * width
        self.seg_lo = _seg_lo(self.bounds)
        self.seg_last = np.repeat(self.bounds[1:] - 1, np.diff(self.bounds))

    def moments(
        self, v: FloatArray, a: IntArray, cnt: IntArray, t: FloatArray, qmax: int
    ) -> list[FloatArray]:
        """Return ``[D_0, ..., D_qmax]`` (see the class docstring)."""
        kc = v.shape[1]
        y = self.x - self.center
        stack = np.hstack([v * (y**r)[:, None] for r in range(qmax + 1)])
        S = _segment_cumsum(stack, self.bounds)
        n_w = a.size
        out = [np.zeros((n_w, kc)) for _ in range(qmax + 1)]
        has = cnt > 0
        b = a + cnt - 1
        last = np.where(has, self.seg_last[np.minimum(a, max(self.x.size - 1, 0))], -1)
        len_a = np.where(has, np.minimum(b, last) - a + 1, 0)
        len_b = np.where(has & (b > last), b - last, 0)
        for start, length in ((a, len_a), (last + 1, len_b)):
            use = length > 0
            if not use.any():
                continue
            m = _window_sums(S, self.seg_lo, np.where(use, start, 0), length)
            moms = [m[:, r * kc : (r + 1) * kc] for r in range(qmax + 1)]
            delta = np.where(use, self.center[np.where(use, start, 0)] - t, 0.0)[:, None]
            for q in range(qmax + 1):
                for r in range(q + 1):
                    out[q] += math.comb(q, r) * delta ** (q - r) * moms[r]
        return out


class WindowMatches:
    """Matched sets that are windows of a sorted pool: radius and Epanechnikov kernel matching.

    The pool units are sorted by (cell, distance, row); focal unit ``i`` is matched to the
    pool positions ``a_i .. a_i + m_i - 1`` (``|d_j - d_i| <= r``, or ``< h`` for the
    kernel), with uniform weights ``1 / m_i`` or Epanechnikov weights
    ``w_ij = (1 - u_ij^2) / T_i``, ``u_ij = (d_j - d_i) / h``, ``T_i = sum_j (1 - u_ij^2)``.
    The pairs are never enumerated for the estimates: sums over a focal unit's matches
    are differences of prefix sums, and sums over the focal units that use a pool unit
    (``K_j``, ``sum_i w_ij^2``) run over the reverse windows (the rule
    ``|d_j - d_i| <= r`` is symmetric, so these are windows of the focal units sorted the
    same way). Kernel weights are polynomials in the distance: the prefix sums hold the
    moments ``sum v (d - c)^r`` around the centre ``c`` of a segment of width ``8 h`` (the
    sums restart at every segment; a window meets at most two segments) and are shifted
    to ``d_i`` binomially, which keeps the rounding at about ``1e-13`` relative. Time and
    memory are linear in the number of units, while the number of pairs grows with the
    square of the cell sizes. The pair lists (``matched``, ``pair_weight``, ``to_frame``)
    are built on first access only.

    Parameters
    ----------
    focal : ndarray of shape (n_focal,)
        Rows of the focal units (ascending).
    n_rows : int
        Rows of the data.
    pool_rows : ndarray of shape (n_pool,)
        Rows of the pool units sorted by (cell, distance, row).
    pool_dist, focal_dist : ndarray
        Matching distances of the sorted pool units and of the focal units.
    pool_cell : ndarray of shape (n_pool,)
        Cell codes of the sorted pool units.
    a, cnt : ndarray of shape (n_focal,)
        Window start (sorted pool position) and size of each focal unit.
    rev_order : ndarray of shape (n_focal,)
        Indices into ``focal`` of the focal units sorted by (cell, distance, row).
    rev_cell : ndarray of shape (n_focal,)
        Cell codes in that order.
    ra, rcnt : ndarray of shape (n_pool,)
        Reverse window (positions in ``rev_order``) of each sorted pool unit.
    bandwidth : float or None
        ``h`` of the Epanechnikov kernel; ``None`` for uniform (radius) weights.
    """

    def __init__(
        self,
        *,
        focal: IntArray,
        n_rows: int,
        pool_rows: IntArray,
        pool_dist: FloatArray,
        focal_dist: FloatArray,
        pool_cell: IntArray,
        a: IntArray,
        cnt: IntArray,
        rev_order: IntArray,
        rev_cell: IntArray,
        ra: IntArray,
        rcnt: IntArray,
        bandwidth: float | None = None,
    ) -> None:
        self.focal = focal
        self.n_rows = int(n_rows)
        self.pool_rows = pool_rows
        self.pool_dist = pool_dist
        self.focal_dist = focal_dist
        self.a = a
        self.cnt = cnt
        self.rev_order = rev_order
        self.ra = ra
        self.rcnt = rcnt
        self.bandwidth = bandwidth
        width = None if bandwidth is None else 8.0 * bandwidth
        self._pool_seg = _Segments(pool_cell, pool_dist, width)
        self._rev_seg = _Segments(rev_cell, focal_dist[rev_order], width)
        self._pairs: Matches | None = None
        if bandwidth is None:
            self._T = cnt.astype(np.float64)
        else:
            self._T = self._forward(np.ones((pool_rows.size, 1)))[:, 0]

    # ------------------------------------------------------------------ structure
    @property
    def n_matches(self) -> IntArray:
        """Number of matches per focal unit (0 = unmatched)."""
        return self.cnt

    @property
    def ptr(self) -> IntArray:
        """CSR offsets of the pairs (as :class:`Matches`)."""
        return np.r_[0, np.cumsum(self.cnt)].astype(np.int64)

    def reuse_counts(self) -> IntArray:
        """Return how often each row is used as a match, length ``n_rows``."""
        out = np.zeros(self.n_rows, dtype=np.int64)
        out[self.pool_rows] = self.rcnt
        return out

    def as_matches(self) -> Matches:
        """Return the explicit pair lists (:class:`Matches`; built once, then cached).

        Pairs in window order; weights computed per pair as the pair-based matchers do.
        """
        if self._pairs is None:
            nf = self.focal.size
            owner = np.repeat(np.arange(nf), self.cnt)
            offs = np.arange(owner.size) - np.repeat(self.ptr[:-1], self.cnt)
            pos = self.a[owner] + offs
            if self.bandwidth is None:
                pw = pair_weights_uniform(self.ptr)
            else:
                u = (self.pool_dist[pos] - self.focal_dist[owner]) / self.bandwidth
                kv = np.maximum(0.75 * (1 - u**2), 0.0)
                tot = np.bincount(owner, weights=kv, minlength=nf)
                with np.errstate(invalid="ignore", divide="ignore"):
                    pw = np.nan_to_num(kv / tot[owner])
            self._pairs = Matches(focal=self.focal, ptr=self.ptr,
                                  matched=self.pool_rows[pos], pair_weight=pw,
                                  n_rows=self.n_rows)
        return self._pairs

    @property
    def matched(self) -> IntArray:
        """Matched rows of every pair (builds the pair lists)."""
        return self.as_matches().matched

    @property
    def pair_weight(self) -> FloatArray:
        """Weight of every pair (builds the pair lists)."""
        return self.as_matches().pair_weight

    @property
    def pair_focal(self) -> IntArray:
        """Focal row of every pair."""
        return np.repeat(self.focal, self.cnt)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the pairs (see :meth:`Matches.to_frame`)."""
        return self.as_matches().to_frame()

    def as_dict(self) -> dict[int, list[int]]:
        """Focal row -> list of matched rows (see :meth:`Matches.as_dict`)."""
        return self.as_matches().as_dict()

    def remap(self, rows: IntArray, n_rows: int) -> WindowMatches:
        """Return the matched sets with row positions mapped through ``rows``."""
        new = WindowMatches.__new__(WindowMatches)
        new.__dict__.update(self.__dict__)
        new.focal = rows[self.focal]
        new.pool_rows = rows[self.pool_rows]
        new.n_rows = int(n_rows)
        new._pairs = None
        return new

    # ------------------------------------------------------------------ sums
    def _forward(self, v: FloatArray) -> FloatArray:
        """``sum_j k_ij v_j`` over each focal window, ``v`` (n_pool, k) in pool order.

        ``k_ij`` is 1 (uniform) or ``1 - (d_j - d_i)^2 / h^2`` (kernel).
        """
        if self.bandwidth is None:
            return self._pool_seg.moments(v, self.a, self.cnt, self.focal_dist, 0)[0]
        d = self._pool_seg.moments(v, self.a, self.cnt, self.focal_dist, 2)
        return np.asarray(d[0] - d[2] / self.bandwidth**2)

    def _reverse(self, g: FloatArray, power: int) -> FloatArray:
        """``sum_i g_i k_ij^power`` over the focal units using each pool unit (n_pool,).

        ``g`` is per focal unit (focal order).
        """
        gr = g[self.rev_order][:, None]
        if self.bandwidth is None:
            return self._rev_seg.moments(gr, self.ra, self.rcnt, self.pool_dist, 0)[0][:, 0]
        h2 = self.bandwidth**2
        d = self._rev_seg.moments(gr, self.ra, self.rcnt, self.pool_dist, 2 * power)
        if power == 1:
            return np.asarray(d[0] - d[2] / h2)[:, 0]
        # (1 - q)^2 = 1 - 2 q + q^2 with q = (d_j - d_i)^2 / h^2
        return np.asarray(d[0] - 2.0 * d[2] / h2 + d[4] / (h2 * h2))[:, 0]

    def column_sums(self, c: FloatArray, power: int = 1) -> FloatArray:
        """Return ``sum_i c_i w_ij^power`` for every row ``j`` (length ``n_rows``)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(self.cnt > 0, c / self._T**power, 0.0)
        vals = self._reverse(g, power)
        # rows no focal unit uses are exactly 0; rounding never makes a used row negative
        vals = np.where(self.rcnt > 0, np.maximum(vals, 0.0), 0.0)
        out = np.zeros(self.n_rows)
        out[self.pool_rows] = vals
        return out

    def weighted_sums(self, values: Any, k: int) -> FloatArray:
        """Return ``sum_j w_ij v_j`` per focal unit (n_focal, k); rows of unmatched are 0.

        ``values.rows(idx, cols)`` gives the float64 values of data rows ``idx`` (columns
        ``cols``); the pool is read once per block of columns.
        """
        n0 = max(self.pool_rows.size, 1)
        n_pow = 1 if self.bandwidth is None else 4
        step = max(1, 8 * BLOCK_ELEMS // (n0 * n_pow))
        out = np.zeros((self.focal.size, k))
        has = self.cnt > 0
        for c0 in range(0, k, step):
            cols = slice(c0, min(k, c0 + step))
            v = values.rows(self.pool_rows, cols)
            num = self._forward(v)
            out[has, cols] = num[has] / self._T[has, None]
        return out

    def weighted_row_sums(self, values: Any, k: int) -> FloatArray:
        """Return :meth:`weighted_sums` (every pool unit is read once anyway)."""
        return self.weighted_sums(values, k)

    def pair_sigma(
        self, Y: npt.NDArray[Any], sign: float, est: FloatArray, s: FloatArray
    ) -> tuple[FloatArray, float]:
        """Return ``sum_r w_r t_r t_r'`` and ``sum_r w_r`` over the pairs (never listed).

        With ``y`` on the sign scale, ``c_i`` the counterfactual and ``K_j`` the reuse
        weights: ``sum_i s_i [(y_i - est)(y_i - est)' - (y_i - est) c_i' - c_i (y_i -
        est)'] + sum_j K_j y_j y_j'`` over matched focal units ``i`` (their weights sum
        to 1).
        """
        k = Y.shape[1]
        ok = self.cnt > 0
        sf = s[self.focal][ok]
        dy = rows_f64(Y, self.focal[ok], sign) - est
        cf = self.weighted_sums(OutcomeRows(Y, sign), k)[ok]
        num = (dy * sf[:, None]).T @ dy
        cross = (dy * sf[:, None]).T @ cf
        num -= cross + cross.T
        Kc = self.column_sums(s[self.focal])
        used = np.flatnonzero(Kc > 0)
        num += _gram_rows(OutcomeRows(Y, sign), used, np.sqrt(Kc), k)
        return num, float(sf.sum())


def pair_weights_uniform(ptr: IntArray) -> FloatArray:
    """``1 / m_i`` for each match of focal unit ``i``."""
    nm = np.diff(ptr)
    return np.repeat(1.0 / np.maximum(nm, 1), nm)


def matchit_weights(m: Any, s: FloatArray) -> FloatArray:
    """Per-row weights in MatchIt's convention (focal weight = sampling weight).

    Focal units with a match get their sampling weight ``s_i``, unmatched focal units 0;
    each matched unit gets ``sum_i s_i w_ij`` over the focal units it serves, rescaled so
    that the matched units' weights average 1 (MatchIt ``weights.matrix``).
    """
    w = np.zeros(m.n_rows)
    nm = m.n_matches
    w[m.focal[nm > 0]] = s[m.focal[nm > 0]]
    cw = m.column_sums(s[m.focal])
    used = cw > 0
    if used.any():
        cw *= used.sum() / cw.sum()
    w[used] = cw[used]
    return w


def rows_f64(Y: npt.NDArray[Any], idx: RowIndex, sign: float = 1.0) -> FloatArray:
    """Rows ``idx`` of ``Y`` as a new float64 array, times ``sign``.

    Equal, element by element, to ``(Y.astype(float64) * sign)[idx]``: the outcome is never
    converted whole (an int8 curve of register size stays int8; only the rows asked for are
    widened).
    """
    out = np.asarray(Y[idx], dtype=np.float64)
    if np.may_share_memory(out, Y):  # a slice of a float64 outcome: a view
        out = out.copy()
    if sign != 1.0:
        out *= sign
    return out


class OutcomeRows:
    """Rows of an outcome (any dtype) as float64 times ``sign``, read on demand."""

    def __init__(self, Y: npt.NDArray[Any], sign: float = 1.0) -> None:
        self.Y = Y
        self.sign = float(sign)

    def rows(self, idx: RowIndex, cols: slice | None = None) -> FloatArray:
        """Return rows ``idx`` (optionally columns ``cols``) as float64."""
        Y = self.Y if cols is None else self.Y[:, cols]
        return rows_f64(Y, idx, self.sign)


class LinearRows:
    """Rows of ``X @ B`` computed on demand (``X`` (n, p), ``B`` (p, k))."""

    def __init__(self, X: FloatArray, B: FloatArray) -> None:
        self.X = X
        self.B = B

    def rows(self, idx: RowIndex, cols: slice | None = None) -> FloatArray:
        """Return rows ``idx`` (optionally columns ``cols``) of ``X @ B``."""
        B = self.B if cols is None else self.B[:, cols]
        return np.asarray(self.X[idx] @ B)


def _as_index(idx: RowIndex, n: int) -> IntArray:
    return np.arange(n, dtype=np.int64)[idx] if isinstance(idx, slice) else np.asarray(idx)


def _blocks(idx: IntArray, k: int) -> list[IntArray]:
    """Split row positions into blocks of about :data:`BLOCK_ELEMS` float64 elements."""
    step = max(1, BLOCK_ELEMS // max(k, 1))
    return [idx[a : a + step] for a in range(0, idx.size, step)]


def pair_sums(
    m: Matches, values: Any, k: int, weighted: bool = False
) -> FloatArray:
    """``out[i] = sum over the pairs p of focal unit i of values(p)``, shape (n_focal, k).

    ``values(sl)`` returns the ``(len(sl), k)`` float64 values of the pairs in the slice
    ``sl`` of ``m.matched``; with ``weighted`` they are multiplied by the pair weights.
    Pairs are visited in blocks of about :data:`BLOCK_ELEMS` elements (whole focal units
    per block) and summed in pair order by a sparse (focal units x pairs) product (one
    entry per pair); rows of unmatched focal units are 0.
    """
    nf = m.focal.size
    out = np.zeros((nf, k))
    ptr = m.ptr
    n_pairs = int(ptr[-1]) if ptr.size else 0
    if nf == 0 or n_pairs == 0:
        return out
    step = max(1, BLOCK_ELEMS // max(k, 1))
    cuts = np.searchsorted(ptr, np.arange(0, n_pairs, step), side="right") - 1
    bounds = np.unique(np.r_[cuts, nf])
    nm = np.diff(ptr)
    for fa, fb in pairwise(bounds.tolist()):
        pa, pb = int(ptr[fa]), int(ptr[fb])
        if pb == pa:
            continue
        owner = np.repeat(np.arange(fb - fa), nm[fa:fb])
        coef = m.pair_weight[pa:pb] if weighted else np.ones(pb - pa)
        summer = sp.csc_matrix((coef, owner, np.arange(pb - pa + 1)), shape=(fb - fa, pb - pa))
        out[fa:fb] = summer @ values(slice(pa, pb))
    return out


def matched_row_sums(m: Matches, values: Any, k: int) -> FloatArray:
    """``out[i] = sum_j w_ij v_j`` over the matches ``j`` of focal unit ``i``, (n_focal, k).

    ``values.rows(idx)`` returns the ``(len(idx), k)`` float64 values of data rows ``idx``;
    it is called once for each row used as a match (in blocks of about
    :data:`BLOCK_ELEMS` elements), however often the row is reused, and the sums are
    sparse (focal units x rows) products. Use it when the values cost more than a gather
    (same-arm residuals) or rows are reused many times (radius and kernel matching).
    """
    nf = m.focal.size
    out = np.zeros((nf, k))
    if m.matched.size == 0:
        return out
    owner = np.repeat(np.arange(nf), m.n_matches)
    W = sp.csc_matrix((m.pair_weight, (owner, m.matched)), shape=(nf, m.n_rows))
    used = np.flatnonzero(np.diff(W.indptr))
    for b in _blocks(used, k):
        out += W[:, b] @ values.rows(b)
    return out


def focal_effects(
    m: Any, Y: npt.NDArray[Any], sign: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Per-focal-unit outcome ``Y_i`` and imputed counterfactual ``sum_j w_ij Y_j``.

    ``Y`` has shape (n, k), any numeric dtype (it is read row block by row block, never
    converted whole); both are multiplied by ``sign``. Returns two (n_focal, k) float64
    arrays (rows of unmatched focal units are NaN in the counterfactual).
    """
    k = Y.shape[1]
    nm = m.n_matches
    acc = m.weighted_sums(OutcomeRows(Y, sign), k)
    acc[nm == 0] = np.nan
    return rows_f64(Y, m.focal, sign), acc


def same_arm_neighbors(
    dist: FloatArray | None,
    X: FloatArray | None,
    treat: npt.NDArray[np.bool_],
    cell: IntArray | None,
    J: int,
) -> IntArray:
    """Return the ``J`` nearest same-arm units of every unit (rows, ``-1`` = none), (n, J).

    Neighbours on the scalar ``dist`` (MatchIt neighbour order, within cells), or on the
    rows of ``X`` (Euclidean, for already-whitened covariates) when ``dist`` is None. Arms
    with fewer than two units get no neighbours.
    """
    n = treat.size
    out = np.full((n, J), -1, dtype=np.int64)
    order = None if dist is None else sorted_order(dist, cell)
    local = np.empty(n, dtype=np.int64)
    for arm in (True, False):
        rows = np.flatnonzero(treat == arm)
        if rows.size < 2:
            continue
        if dist is not None:
            assert order is not None
            local[rows] = np.arange(rows.size)
            arm_order = local[order[treat[order] == arm]]  # the arm's units, same order
            nbr = _knn_self(dist[rows], None if cell is None else cell[rows], J, arm_order)
        else:
            assert X is not None
            nbr = _knn_self_multi(X[rows], None if cell is None else cell[rows], J)
        out[rows] = np.where(nbr >= 0, rows[np.maximum(nbr, 0)], -1)
    return out


class SameArmResiduals:
    """``sqrt(c_i / (c_i + 1)) * (Y_i - mean of its c_i <= J same-arm neighbours)``, by rows.

    The ``(n, k)`` residual matrix of the Abadie–Imbens conditional variance, computed for
    any set of rows on demand from the outcome (any dtype, never converted whole) and the
    neighbour table of :func:`same_arm_neighbors`; rows without neighbours are 0.
    ``np.asarray`` gives the whole matrix.

    Parameters
    ----------
    Y : ndarray of shape (n, k)
        Outcome.
    nbr : ndarray of shape (n, J)
        Neighbour rows (``-1`` = none).
    sign : float, default=1.0
        Multiplies the outcome (``-1`` for the ATC scale).
    """

    def __init__(self, Y: npt.NDArray[Any], nbr: IntArray, sign: float = 1.0) -> None:
        self.Y = Y
        self.nbr = nbr
        self.sign = float(sign)
        self.shape = (int(Y.shape[0]), int(Y.shape[1]))

    def with_sign(self, sign: float) -> SameArmResiduals:
        """Return the residuals of ``sign * Y`` (same neighbours)."""
        return SameArmResiduals(self.Y, self.nbr, sign)

    def rows(self, idx: RowIndex, cols: slice | None = None) -> FloatArray:
        """Return the residual rows ``idx`` (slice or positions), float64 (len, k).

        ``cols`` restricts the result to a slice of the outcome's columns.
        """
        Y = self.Y if cols is None else self.Y[:, cols]
        nb = self.nbr[idx]
        J = nb.shape[1]
        cnt = (nb >= 0).sum(axis=1)
        if Y.dtype.itemsize == 1 and J <= 255 and bool(np.all(cnt == J)):
            # one-byte integer outcome (an indicator curve), every row with J neighbours:
            # the neighbour sum is exact in int16, so the residual equals the float64
            # computation below
            acc = Y[nb[:, 0]].astype(np.int16)
            for jj in range(1, J):
                acc += Y[nb[:, jj]]
            res = rows_f64(Y, idx) - acc / float(J)
            res *= self.sign * float(np.sqrt(J / (J + 1.0)))
            return res
        y = rows_f64(Y, idx, self.sign)
        mean = np.zeros_like(y)
        for jj in range(J):  # loop over the J neighbours, vectorised over rows
            ok = nb[:, jj] >= 0
            mean[ok] += rows_f64(Y, nb[ok, jj], self.sign)
        has = cnt > 0
        mean[has] /= cnt[has, None]
        fac = np.sqrt(cnt / (cnt + 1.0))
        res = (y - mean) * fac[:, None]
        res[~has] = 0.0
        return res

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> FloatArray:
        n, k = self.shape
        out = np.empty((n, k))
        for b in _blocks(np.arange(n), k):
            out[b[0] : b[-1] + 1] = self.rows(slice(int(b[0]), int(b[-1]) + 1))
        return out if dtype is None else out.astype(dtype, copy=False)


def same_arm_residuals(
    dist: FloatArray | None,
    X: FloatArray | None,
    Y: FloatArray,
    treat: npt.NDArray[np.bool_],
    cell: IntArray | None,
    J: int,
) -> FloatArray:
    """``sqrt(J / (J + 1)) * (Y_i - mean of its J nearest same-arm units)``, shape (n, k).

    The whole matrix (see :class:`SameArmResiduals` for the row-block form the estimators
    use). Neighbours on the scalar ``dist`` (MatchIt neighbour order, within cells), or on
    the rows of ``X`` (Euclidean, for already-whitened covariates) when ``dist`` is None.
    """
    return np.asarray(SameArmResiduals(Y, same_arm_neighbors(dist, X, treat, cell, J)))


def _cell_bounds(cs: IntArray, cellv: IntArray) -> tuple[IntArray, IntArray]:
    """Per unit, the first and one-past-last sorted position of its cell.

    ``cs`` are the cell codes in sorted order; small non-negative codes use counts (O(n)),
    others a binary search.
    """
    n = cellv.size
    if n and cellv.dtype.kind in "iu" and cellv.min() >= 0 and cellv.max() < 4 * n + 1024:
        cnt = np.bincount(cellv)
        start = np.r_[0, np.cumsum(cnt)[:-1]]
        return start[cellv], start[cellv] + cnt[cellv]
    return (np.searchsorted(cs, cellv, side="left"), np.searchsorted(cs, cellv, side="right"))


def _knn_self(
    d: FloatArray, cell: IntArray | None, J: int, order: IntArray | None = None
) -> IntArray:
    """J nearest other units of the same set (local indices), MatchIt merge order.

    ``order`` may give the stable (cell, distance, row) order of the units (computed
    otherwise).
    """
    n = d.size
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    if order is None:
        order = sorted_order(d, cell, cache=False)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    ds = d[order]
    cs = cellv[order]
    lo, hi = _cell_bounds(cs, cellv)
    L = pos - 1
    R = pos + 1
    out = np.full((n, J), -1, dtype=np.int64)
    for r in range(J):
        vL = L >= lo
        vR = R < hi
        dL = np.full(n, np.inf)
        dR = np.full(n, np.inf)
        dL[vL] = np.abs(ds[L[vL]] - d[vL])
        dR[vR] = np.abs(ds[R[vR]] - d[vR])
        takeL = vL & (~vR | (dL <= dR))
        takeR = vR & ~takeL
        ch = np.where(takeL, L, np.where(takeR, R, -1))
        ok = ch >= 0
        out[ok, r] = order[ch[ok]]
        L = L - takeL
        R = R + takeR
    return out


#: the last stable (cell, distance, row) order, keyed by a digest of its inputs: the
#: matchers of one study (main fit, robustness panel) share one sort of the units
_ORDER_CACHE: dict[bytes, IntArray] = {}


def sorted_order(dist: FloatArray, cell: IntArray | None, *, cache: bool = True) -> IntArray:
    """Stable order of the units by (cell, distance, row) (``np.lexsort((dist, cell))``).

    Two stable passes (the distance, then small cell codes by radix sort). With ``cache``
    the result is kept for the next call with equal inputs (one entry, keyed by a
    BLAKE2 digest of the bytes), so repeated matchings on one sample sort once.
    """
    key = b""
    if cache:
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{np.size(dist)}:{cell is None}".encode())
        parts: list[Any] = [np.ascontiguousarray(dist, dtype=np.float64).reshape(-1)]
        if cell is not None:
            parts.append(np.ascontiguousarray(cell, dtype=np.int64).reshape(-1))
        for buf in parts:  # the bytes through the buffer protocol (no copy)
            h.update(buf)
        key = h.digest()
        hit = _ORDER_CACHE.get(key)
        if hit is not None:
            return hit
    order = np.argsort(dist, kind="stable")
    if cell is not None and order.size:
        cs = cell[order]
        if cs.min() >= 0 and cs.max() < 2**16:
            cs = cs.astype(np.uint16)  # radix sort
        order = order[np.argsort(cs, kind="stable")]
    order = order.astype(np.int64, copy=False)
    if cache:
        _ORDER_CACHE.clear()
        _ORDER_CACHE[key] = order
    return order


def layout(
    dist: FloatArray,
    treat: npt.NDArray[np.bool_],
    cell: IntArray | None,
    treat_rows: IntArray,
    order: IntArray,
) -> Any:
    """Return the kernels' sorted layout (``_kernels.matching.prepare``) for an order.

    ``order`` is :func:`sorted_order` of ``(dist, cell)``; ``treat_rows`` must be
    ``np.flatnonzero(treat)``. Equal, field by field, to ``prepare(dist, treat, cell,
    treat_rows)``, without sorting again.
    """
    from mentor_impact._kernels.matching import prepare

    return prepare(dist, treat, cell, treat_rows, order=order)


def _knn_self_multi(X: FloatArray, cell: IntArray | None, J: int) -> IntArray:
    from scipy.spatial import cKDTree

    n = X.shape[0]
    out = np.full((n, J), -1, dtype=np.int64)
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    for c in np.unique(cellv):  # loop over cells
        rows = np.flatnonzero(cellv == c)
        if rows.size < 2:
            continue
        kk = min(J + 1, rows.size)
        _, nb = cKDTree(X[rows]).query(X[rows], k=kk)
        nb = np.atleast_2d(nb).reshape(rows.size, kk)
        # drop self (first column for distinct points; search otherwise)
        is_self = nb == np.arange(rows.size)[:, None]
        keep = np.where(is_self.any(axis=1)[:, None], ~is_self, np.arange(kk) < kk - 1)
        sel = nb[keep].reshape(rows.size, kk - 1)
        out[rows, : kk - 1] = rows[sel]
    return out


def _gram_rows(
    resid: Any, rows: IntArray, scale: FloatArray, k: int
) -> FloatArray:
    """``sum_{i in rows} scale_i^2 e_i e_i'`` with ``e_i = resid.rows(i)``, by row blocks.

    Rank-k updates of the upper triangle (BLAS ``dsyrk``), symmetrised at the end.
    """
    v = np.zeros((k, k))
    for b in _blocks(rows, k):
        ew = resid.rows(b) * scale[b, None]
        v += dsyrk(1.0, ew.T, trans=0, lower=0)
    return np.triu(v) + np.triu(v, 1).T


def ai_covariance(
    m: Any,
    Y: npt.NDArray[Any],
    dev: FloatArray,
    est: FloatArray,
    s: FloatArray,
    resid: SameArmResiduals | None,
    population: bool,
    resid_phi: SameArmResiduals,
    sign: float = 1.0,
) -> tuple[FloatArray, MatchingInfluence]:
    """Abadie–Imbens covariance (see ``AbadieImbens``) and an influence function.

    ``Y`` is the outcome (n, k) on its own scale (any dtype; multiplied by ``sign`` where
    read), ``dev`` the (n_matched_focal, k) deviations ``Y_i - cf_i - est`` of the matched
    focal units (from :func:`focal_effects`), ``est`` the estimate.
    ``resid`` gives the same-arm residuals (or None for the homoskedastic estimate);
    ``resid_phi`` the residuals used in the influence function (always given).
    Returns ``(cov, phi)`` with ``phi`` (n, k) the linear representation used for clustering:
    ``phi_i = [D_i s_i (tau_i - tau + e_i - sum_j w_ij e_j) - (1 - D_i) K_i e_i] / S_1``
    (``e`` the conditional residual estimate; exactly AI's structure without the
    ``K(K - 1)`` correction), held in row-block form (:class:`MatchingInfluence`).
    Only the rows that enter a term are read: focal units, used matches and (sample
    variance) their residuals; no (n, k) matrix is formed.
    """
    n, k = Y.shape
    nm = m.n_matches
    ok = nm > 0
    sf = s[m.focal]
    S1 = float(sf[ok].sum())
    Kc = m.column_sums(sf)
    KK = m.column_sums(sf, 2)
    if resid is None:
        # homoskedastic (Matching Var.calc = 0): 0.5 * weighted mean of pair-level squares
        num, swts = m.pair_sigma(Y, sign, est, s)
        sig = 0.5 * num / swts
        coef_sample = np.zeros(n, dtype=np.float64)
        coef_sample[m.focal[ok]] = sf[ok]
        coef_sample += Kc
        if population:
            v = sig * float(np.sum(Kc**2 - KK)) + (dev * sf[ok, None]).T @ dev
        else:
            v = sig * float(np.sum(coef_sample**2))
        v = v / S1**2
        return v, _phi(m, resid_phi, dev, sf, ok, Kc, S1, n, k)
    e = resid
    if population:
        fac = np.sqrt(np.maximum(Kc**2 - KK, 0.0))
        v = _gram_rows(e, np.flatnonzero(fac), fac, k) + (dev * sf[ok, None]).T @ dev
    else:
        c = Kc.copy()
        c[m.focal[ok]] += sf[ok]
        v = _gram_rows(e, np.flatnonzero(c), c, k)
    v = v / S1**2
    return v, _phi(m, resid_phi, dev, sf, ok, Kc, S1, n, k)


class MatchingInfluence(RowInfluence):
    """Influence function of a matching estimate, rows computed on demand.

    ``phi_i = (F_i - K_i e_i) / S_1`` with ``F_i = s_i h_i`` for matched focal units
    (stored, (n_focal, k)), ``K_i`` the weighted reuse count and ``e_i`` the same-arm
    residual (computed from the outcome for the rows asked for). The ``(n, k)`` matrix is
    never formed unless ``np.asarray`` asks for it.

    Parameters
    ----------
    n : int
        Rows of the data.
    focal_rows : ndarray of shape (n_ok,)
        Rows of the matched focal units.
    focal_part : ndarray of shape (n_ok, k)
        ``s_i h_i`` of those units.
    Kc : ndarray of shape (n,)
        Weighted number of times each row is used as a match.
    resid : SameArmResiduals
        Residuals ``e``.
    S1 : float
        Sum of the sampling weights of the matched focal units.
    """

    def __init__(
        self,
        n: int,
        focal_rows: IntArray,
        focal_part: FloatArray,
        Kc: FloatArray,
        resid: SameArmResiduals,
        S1: float,
    ) -> None:
        super().__init__(n, focal_part.shape[1])
        self._pos = np.full(n, -1, dtype=np.int64)
        self._pos[focal_rows] = np.arange(focal_rows.size)
        self._focal_part = focal_part
        self._Kc = Kc
        self._resid = resid
        self._S1 = float(S1)

    def _rows(self, idx: RowIndex) -> FloatArray:
        rows = _as_index(idx, self._n)
        out = np.zeros((rows.size, self._k0))
        p = self._pos[rows]
        f = p >= 0
        out[f] += self._focal_part[p[f]]
        kc = self._Kc[rows]
        u = np.flatnonzero(kc != 0)
        if u.size:
            out[u] -= kc[u, None] * self._resid.rows(rows[u])
        out /= self._S1
        return out


def _phi(
    m: Any,
    e: SameArmResiduals,
    dev: FloatArray,
    sf: FloatArray,
    ok: npt.NDArray[np.bool_],
    Kc: npt.NDArray[Any],
    S1: float,
    n: int,
    k: int,
) -> MatchingInfluence:
    emean = m.weighted_row_sums(e, k)
    # h = dev + emean, then s_i h: in place (equal values, no extra (n_focal, k) copies)
    h = emean if bool(ok.all()) else emean[ok]
    h += dev
    h *= sf[ok, None]
    return MatchingInfluence(n, m.focal[ok], h, Kc, e, S1)


def matched_set_covariance(
    m: Matches,
    Y: FloatArray,
    weights: FloatArray,
    treat: npt.NDArray[np.bool_],
    replace: bool,
    hc1: bool,
) -> FloatArray:
    """``sandwich::vcovCL`` of the treatment coefficient in the weighted matched regression.

    Without replacement: rows = matched units, clusters = matched sets (focal unit and its
    matches). With replacement: rows of ``get_matches`` (the focal unit once per set and
    each match with weight ``w_ij`` rescaled as MatchIt does), two-way clustered by set and
    unit (``V_set + V_unit - V_set&unit``).
    """
    k = Y.shape[1]
    nm = m.n_matches
    ok = nm > 0
    if not replace:
        rows = np.flatnonzero(weights > 0)
        setid = np.full(m.n_rows, -1, dtype=np.int64)
        setid[m.focal[ok]] = np.arange(ok.sum())
        sid_ok = np.repeat(np.arange(m.focal.size), nm)
        remap = np.cumsum(ok) - 1
        setid[m.matched] = remap[sid_ok]
        y = Y[rows]
        w = weights[rows]
        d = treat[rows].astype(float)
        phi = _wls_treat_influence(y, w, d)
        groups = [setid[rows]]
        signs = [1.0]
    else:
        # get_matches(): focal row (weight 1) + each match; matched weight within set = w_ij
        fidx = np.flatnonzero(ok)
        n_sets = fidx.size
        f_rows = m.focal[fidx]
        pf_set = np.repeat(np.arange(m.focal.size), nm)
        remap = np.cumsum(ok) - 1
        c_rows = m.matched
        c_set = remap[pf_set]
        unit = np.concatenate([f_rows, c_rows])
        sets = np.concatenate([np.arange(n_sets), c_set])
        w_c = m.pair_weight.copy()
        # MatchIt get_matches: control weights rescaled to mean 1 among control rows
        w_c *= w_c.size / w_c.sum()
        w = np.concatenate([np.ones(n_sets), w_c])
        d = np.concatenate([np.ones(n_sets), np.zeros(c_rows.size)])
        y = Y[unit]
        phi = _wls_treat_influence(y, w, d)
        inter = sets * (m.n_rows + 1) + unit
        groups = [sets, unit, inter]
        signs = [1.0, 1.0, -1.0]
    nobs = phi.shape[0]
    adj = (nobs - 1) / (nobs - 2) if hc1 else 1.0
    v = np.zeros((k, k))
    for g, sg in zip(groups, signs, strict=True):
        sums, G = cluster_sums(phi, g)
        v += sg * (G / (G - 1) if G > 1 else 1.0) * (sums.T @ sums)
    return v * adj


def _wls_treat_influence(y: FloatArray, w: FloatArray, d: FloatArray) -> FloatArray:
    """Influence of the treat coefficient in WLS of y on (1, d): rows x targets."""
    sw1 = w[d == 1].sum()
    sw0 = w[d == 0].sum()
    m1 = (w[d == 1, None] * y[d == 1]).sum(axis=0) / sw1
    m0 = (w[d == 0, None] * y[d == 0]).sum(axis=0) / sw0
    resid = y - np.where(d[:, None] == 1, m1, m0)
    # coefficient = m1 - m0; influence of row i: w_i e_i / sw_arm with sign
    scale = np.where(d == 1, 1.0 / sw1, -1.0 / sw0)
    return np.asarray(resid * (w * scale)[:, None])


def bias_correction(
    m: Any, Y: npt.NDArray[Any], X: FloatArray, s: FloatArray, sign: float = 1.0
) -> FloatArray:
    """Abadie–Imbens (2011) regression bias correction of the imputed counterfactuals.

    Fits ``mu_0`` by weighted least squares of the matched units' outcomes (``sign * Y``)
    on ``X`` (with an intercept) using the reuse weights ``K_j`` (as
    ``Matching::Match(BiasAdjust = TRUE)``) and returns, per focal unit,
    ``sum_j w_ij (mu_0(X_i) - mu_0(X_j))`` (n_focal, k).
    """
    Kc = m.column_sums(s[m.focal])
    used = np.flatnonzero(Kc > 0)
    Z = np.column_stack([np.ones(used.size), X[used]])
    sw = np.sqrt(Kc[used])
    beta, *_ = np.linalg.lstsq(Z * sw[:, None], rows_f64(Y, used, sign) * sw[:, None],
                               rcond=None)
    slope = beta[1:]
    if isinstance(m, Matches):
        pf = m.pair_focal
        return pair_sums(
            m, lambda sl: (X[pf[sl]] - X[m.matched[sl]]) @ slope, int(Y.shape[1]),
            weighted=True,
        )
    # windows: sum_j w_ij (X_i - X_j) b = (sum_j w_ij) X_i b - sum_j w_ij X_j b
    lin = LinearRows(X, slope)
    own = (m.n_matches > 0).astype(np.float64)[:, None] * lin.rows(m.focal)
    return np.asarray(own - m.weighted_sums(lin, int(Y.shape[1])))


def ai_covariance_ate(
    parts: list[tuple[Any, FloatArray, float]],
    Y: npt.NDArray[Any],
    s: FloatArray,
    resid: SameArmResiduals | None,
    population: bool,
) -> tuple[FloatArray, FloatArray]:
    """Abadie–Imbens covariance of the ATE (Matching's ``estimand = "ATE"`` formulas).

    ``parts`` holds, for the ATT and the ATC matching, ``(matches, tau_focal, sign)`` with
    ``tau_focal`` (n_focal, k) the unit-level effects ``Y(1) - Y(0)`` imputed for each focal
    unit and ``sign`` the scale of that matching (``sign * Y``). ``resid`` gives the
    same-arm residuals of ``Y`` (None: homoskedastic). With ``K_i`` the (weighted)
    times unit ``i`` is used as a match in either direction, ``KK_i`` the sum of its squared
    pair weights and ``N = sum s``:
    ``V_sample = sum (s_i + K_i)^2 sigma_i^2 / N^2`` and
    ``V_pop = [sum (K_i^2 + 2 s_i K_i - KK_i) sigma_i^2 + sum s_i (tau_i - tau)^2] / N^2``.
    Returns ``(cov, estimate)``.
    """
    n = s.size
    k = parts[0][1].shape[1]
    Kc = np.zeros(n)
    KK = np.zeros(n)
    taus = []
    sws = []
    for m, tau_f, _ in parts:
        ok = m.n_matches > 0
        Kc += m.column_sums(s[m.focal])
        KK += m.column_sums(s[m.focal], 2)
        taus.append(tau_f[ok])
        sws.append(s[m.focal[ok]])
    tau = np.concatenate(taus)
    sw = np.concatenate(sws)
    S = float(sw.sum())
    est = (sw[:, None] * tau).sum(axis=0) / S
    dev = tau - est
    het = (dev * sw[:, None]).T @ dev
    if resid is None:
        num = np.zeros((k, k))
        den = 0.0
        for m, _, sign in parts:
            nu, de = m.pair_sigma(Y, sign, est, s)
            num += nu
            den += de
        sig = 0.5 * num / den
        used = np.zeros(n, dtype=bool)
        for m, _, _ in parts:
            used[m.focal[m.n_matches > 0]] = True
        if population:
            v = sig * float(np.sum((Kc**2 + 2 * s * Kc - KK)[used | (Kc > 0)])) + het
        else:
            v = sig * float(np.sum(((s * used) + Kc) ** 2))
        return v / S**2, est
    if population:
        fac = np.sqrt(np.maximum(Kc**2 + 2 * s * Kc - KK, 0.0))
        v = _gram_rows(resid, np.flatnonzero(fac), fac, k) + het
    else:
        used_f = np.zeros(n)
        for m, _, _ in parts:
            used_f[m.focal[m.n_matches > 0]] = 1.0
        c = s * used_f + Kc
        v = _gram_rows(resid, np.flatnonzero(c), c, k)
    return v / S**2, est


# --------------------------------------------------------------------------- AI (2016)
def knn_points(query: FloatArray, pool: FloatArray, L: int) -> IntArray:
    """Return indices (into ``pool``) of the ``L`` pool values nearest to each ``query``.

    A pool unit at distance 0 (the query unit itself when it belongs to the pool) counts as
    a neighbour; ties in distance go to the smaller pool value. Vectorised over queries
    (loop over the ``L`` ranks only). ``L`` must not exceed ``pool.size``.
    """
    order = np.argsort(pool, kind="stable")
    ps = pool[order]
    m = ps.size
    lo = np.searchsorted(ps, query, side="left")
    left = lo - 1
    right = lo.copy()
    out = np.empty((query.size, L), dtype=np.int64)
    for r in range(L):
        vl = left >= 0
        vr = right < m
        dl = np.where(vl, query - ps[np.clip(left, 0, m - 1)], np.inf)
        dr = np.where(vr, ps[np.clip(right, 0, m - 1)] - query, np.inf)
        take_l = vl & (dl <= dr)
        out[:, r] = order[np.where(take_l, np.clip(left, 0, m - 1), np.clip(right, 0, m - 1))]
        left = left - take_l
        right = right + ~take_l
    return out


def ps_conditional_cov_sum(
    dist: FloatArray,
    Z: FloatArray,
    Y: FloatArray,
    arm: npt.NDArray[np.bool_],
    a: FloatArray,
    L: int,
) -> FloatArray:
    """``sum_i a_i cov(Z, Y | e(X_i), arm)``, shape (q, k), without storing per-unit covariances.

    For every unit ``i`` (of either arm) the conditional covariance is the sample covariance
    (divisor ``L - 1``) of ``(Z_l, Y_l)`` over the ``L`` units ``l`` of ``arm`` whose matching
    distance ``dist`` is nearest to ``dist_i`` (unit ``i`` itself included when it belongs to
    ``arm``).
    """
    rows = np.flatnonzero(arm)
    nbr = rows[knn_points(dist, dist[rows], L)]  # (n, L) data rows
    Zn = Z[nbr]  # (n, L, q)
    Zc = Zn - Zn.mean(axis=1, keepdims=True)
    Zc *= (a / (L - 1.0))[:, None, None]
    q = Z.shape[1]
    # sum_l Zc_l (Y_l - Ybar) = sum_l Zc_l Y_l because sum_l Zc_l = 0
    return np.asarray(Zc.reshape(-1, q).T @ Y[nbr.ravel()])


def ai2016_adjustment(
    estimand: str,
    dist: FloatArray,
    Z: FloatArray,
    ps: FloatArray,
    info: FloatArray,
    treat: npt.NDArray[np.bool_],
    Y: FloatArray,
    L: int,
    tau_unit: FloatArray | None = None,
    est: FloatArray | None = None,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Abadie–Imbens (2016) correction of the matching variance for an estimated logit PS.

    Parameters
    ----------
    estimand : {"ATE", "ATT", "ATC"}
    dist : (n,) matching distance (PS or logit PS) used to find the ``L`` same-arm neighbours.
    Z : (n, q) logit design (intercept included); ``ps = expit(Z @ theta_hat)``.
    info : (q, q) logit information ``sum_i e_i (1 - e_i) Z_i Z_i'``.
    treat : (n,) treatment.  Y : (n, k) outcome(s), original scale.
    tau_unit : (n, k) imputed unit effects ``Y_i(1) - Y_i(0)`` for every unit (ATT/ATC).
    est : (k,) the ATT / ATC estimate (original scale).

    Returns
    -------
    (delta, parts)
        ``delta`` (k, k) is **added** to the Abadie–Imbens (2006) covariance of the estimate:
        ATE ``- c' I^-1 c``; ATT/ATC ``- c_t' I^-1 c_t + d' I^-1 d``. ``parts`` holds ``c`` and
        (ATT/ATC) ``d``, both (q, k).
    """
    n = ps.size
    f = ps * (1.0 - ps)  # logistic density at X'theta
    Iinv = np.linalg.pinv(info)
    if estimand == "ATE":
        c = ps_conditional_cov_sum(dist, Z, Y, treat, f / ps / n, L)
        c += ps_conditional_cov_sum(dist, Z, Y, ~treat, f / (1.0 - ps) / n, L)
        return -(c.T @ Iinv @ c), {"c": c}
    assert tau_unit is not None and est is not None
    if estimand == "ATT":
        focal, odds = treat, ps / (1.0 - ps)
    else:  # ATC: the ATT of the reversed treatment (theta -> -theta, e -> 1 - e)
        focal, odds = ~treat, (1.0 - ps) / ps
    nf = float(focal.sum())
    c = ps_conditional_cov_sum(dist, Z, Y, focal, f / nf, L)
    c += ps_conditional_cov_sum(dist, Z, Y, ~focal, f * odds / nf, L)
    d = (Z * (f / nf)[:, None]).T @ (tau_unit - est)
    return -(c.T @ Iinv @ c) + d.T @ Iinv @ d, {"c": c, "d": d}
