"""Influence functions held in factored form and produced in row blocks.

A curve estimator at register size has an influence function of ``n x k`` float64 values
(1,000,000 rows x 157 horizon weeks = 1.26 GB). Estimators whose influence function has a
cheap closed form per row (IPW: a per-row scale of the outcome row, a few per-row terms
from small tables, and the propensity term ``z_i r_i M``) return a :class:`RowInfluence`
instead: it stores only the factors and computes any set of rows on demand. The covariance
estimators of :mod:`mentor_impact.inference.covariance` consume it block by block
(:func:`influence_gram`), so the ``n x k`` matrix is never formed; ``np.asarray`` on it
gives the full matrix when a caller really needs it.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from itertools import pairwise
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.linalg.blas import dsyrk

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RowIndex: TypeAlias = "slice | IntArray"

__all__ = [
    "InfluenceLike",
    "RowInfluence",
    "add_gram",
    "block_rows",
    "gram_blocks",
    "influence_gram",
    "influence_rows",
    "summing_matrix",
    "symmetrize",
]

#: float64 elements of one row block (about 32 MB)
BLOCK_ELEMS = 4_000_000


class RowInfluence(ABC):
    """An ``(n, k)`` scaled influence function computed block by block.

    Subclasses implement :meth:`_rows`; an optional right factor ``post`` (``k0 x k``)
    applies linear combinations lazily (``phi @ L.T`` in
    :meth:`mentor_impact.EffectResults.linear_combination`).

    Parameters
    ----------
    n : int
        Number of rows.
    k : int
        Number of targets before ``post``.

    Notes
    -----
    The object behaves like a read-only float64 array where the library needs one:
    ``shape``, ``ndim``, ``dtype``, ``np.asarray(phi)`` (materialises the whole matrix),
    ``phi[rows, cols]`` and ``phi @ L``.
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, n: int, k: int) -> None:
        self._n = int(n)
        self._k0 = int(k)
        self._post: FloatArray | None = None

    # ------------------------------------------------------------------ interface
    @abstractmethod
    def _rows(self, idx: RowIndex) -> FloatArray:
        """Return the rows ``idx`` of the base matrix, shape ``(len(idx), k0)``, float64."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, k)``."""
        k = self._k0 if self._post is None else int(self._post.shape[1])
        return (self._n, k)

    def rows(self, idx: RowIndex) -> FloatArray:
        """Return the rows ``idx`` (a slice or integer positions) as an ndarray.

        Parameters
        ----------
        idx : slice or ndarray of int
            Row positions.

        Returns
        -------
        ndarray of shape (len(idx), k)
            The influence-function rows.
        """
        out = self._rows(idx)
        return out if self._post is None else np.asarray(out @ self._post)

    def summed_rows(self, idx: RowIndex, seg: IntArray, n_seg: int) -> FloatArray:
        """Return the sums of the rows ``idx`` within segments (clusters).

        Parameters
        ----------
        idx : slice or ndarray of int
            Row positions.
        seg : ndarray of int of shape (len(idx),)
            Segment of each row, ``0 .. n_seg - 1``.
        n_seg : int
            Number of segments.

        Returns
        -------
        ndarray of shape (n_seg, k)
            ``sum_{j: seg_j = s} phi[idx_j]`` for each segment ``s``.
        """
        out = self._summed(idx, seg, n_seg)
        return out if self._post is None else np.asarray(out @ self._post)

    def _summed(self, idx: RowIndex, seg: IntArray, n_seg: int) -> FloatArray:
        """Segment sums of the base rows; subclasses may sum factors before expanding."""
        return np.asarray(summing_matrix(seg, n_seg) @ self._rows(idx))

    def _fast_gram(self, codes: IntArray | None, block_elems: int | None) -> FloatArray | None:
        """Return the Gram of the base matrix by a cheaper route, if the subclass has one.

        Returns ``None`` (the default) to let :func:`influence_gram` visit the rows.
        """
        return None

    # ------------------------------------------------------------------ array protocol
    def __len__(self) -> int:
        return self._n

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> FloatArray:
        n, k = self.shape
        out = np.empty((n, k), dtype=np.float64)
        for sl in block_rows(n, k):
            out[sl] = self.rows(sl)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __matmul__(self, other: npt.ArrayLike) -> RowInfluence:
        mat = np.asarray(other, dtype=np.float64)
        if mat.ndim != 2 or mat.shape[0] != self.shape[1]:
            raise ValueError(
                f"influence @ L: expected L of shape ({self.shape[1]}, m); got {mat.shape}."
            )
        new = copy.copy(self)
        new._post = mat if self._post is None else np.asarray(self._post @ mat)
        return new

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and len(key) == 2:
            rows_key, cols_key = key
            sel = np.eye(self.shape[1])[:, cols_key]
            sub = self @ (sel if sel.ndim == 2 else sel[:, None])
            full = sub.rows(rows_key) if isinstance(rows_key, slice) else np.asarray(sub)[rows_key]
            return full if sel.ndim == 2 else full[:, 0]
        return np.asarray(self)[key]

    def sum(self, axis: int = 0) -> FloatArray:
        """Column sums (``axis=0`` only), computed block by block."""
        if axis != 0:
            raise ValueError("RowInfluence.sum: only axis=0 is supported.")
        n, k = self.shape
        out = np.zeros(k)
        for sl in block_rows(n, k):
            out += self.rows(sl).sum(axis=0)
        return out


InfluenceLike: TypeAlias = "FloatArray | RowInfluence"


def block_rows(n: int, k: int, block_elems: int | None = None) -> list[slice]:
    """Row slices covering ``0..n`` with about ``block_elems`` elements each.

    The default is the module's :data:`BLOCK_ELEMS`, read at call time.
    """
    step = max(1, (BLOCK_ELEMS if block_elems is None else block_elems) // max(k, 1))
    return [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]


def summing_matrix(seg: IntArray, n_seg: int, weights: FloatArray | None = None) -> sp.csc_matrix:
    """Sparse ``(n_seg, len(seg))`` matrix whose product with rows sums them by segment.

    One entry per column, so the CSC arrays are given directly; ``weights`` (default 1)
    scale the rows. Much faster than ``np.add.reduceat`` or per-column ``bincount``.
    """
    m = seg.size
    data = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    return sp.csc_matrix((data, seg, np.arange(m + 1)), shape=(n_seg, m))


def influence_rows(phi: InfluenceLike, idx: RowIndex) -> FloatArray:
    """Rows ``idx`` of an ndarray or :class:`RowInfluence`, as a float64 ndarray."""
    if isinstance(phi, RowInfluence):
        return phi.rows(idx)
    return np.asarray(phi[idx], dtype=np.float64)


def _syrk_add(out: FloatArray, block: FloatArray) -> None:
    """``out += block.T @ block`` (upper triangle only; BLAS ``dsyrk``)."""
    b = np.ascontiguousarray(block, dtype=np.float64)
    if b.shape[0]:
        out += dsyrk(1.0, b.T, trans=0, lower=0)


def gram_blocks(
    n: int, k: int, codes: IntArray | None = None, block_elems: int | None = None
) -> Iterator[tuple[RowIndex, IntArray | None, int]]:
    """Blocks of rows for a (clustered) Gram pass: ``(rows, segment of each row, n_seg)``.

    Without ``codes`` the blocks are consecutive slices and the segments ``None``. With
    cluster codes the rows are visited in the stable order of their codes, each block
    starting at a cluster boundary; ``seg`` numbers the clusters within the block.
    """
    if codes is None:
        for sl in block_rows(n, k, block_elems):
            yield sl, None, 0
        return
    if n == 0:
        return
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    new_cluster = np.r_[True, sc[1:] != sc[:-1]]
    starts = np.flatnonzero(new_cluster)
    step = max(1, (BLOCK_ELEMS if block_elems is None else block_elems) // max(k, 1))
    # blocks of about `step` rows, each starting at a cluster boundary
    cut = np.unique(starts[np.searchsorted(starts, np.arange(0, n, step), side="right") - 1])
    for a, b in pairwise(np.r_[cut, n]):
        seg = np.cumsum(new_cluster[a:b]) - 1  # cluster of each row within the block
        yield order[a:b], seg, int(seg[-1]) + 1


def add_gram(out: FloatArray, block: FloatArray) -> None:
    """``out += block' block`` in the upper triangle (BLAS ``dsyrk``); see :func:`symmetrize`."""
    _syrk_add(out, block)


def symmetrize(upper: FloatArray) -> FloatArray:
    """Return the symmetric matrix whose upper triangle is ``upper``'s."""
    return np.triu(upper) + np.triu(upper, 1).T


def influence_gram(
    phi: InfluenceLike, codes: IntArray | None = None, block_elems: int | None = None
) -> FloatArray:
    """Return ``sum_g S_g S_g'`` with ``S_g`` the sum of the rows of cluster ``g``.

    Parameters
    ----------
    phi : ndarray or RowInfluence of shape (n, k)
        Scaled influence function.
    codes : ndarray of int of shape (n,), optional
        Cluster codes; ``None`` makes every row its own cluster (``phi' phi``).
    block_elems : int, optional
        Elements per row block (default :data:`BLOCK_ELEMS`).

    Returns
    -------
    ndarray of shape (k, k)
        The symmetric sum of outer products.

    Notes
    -----
    Rows are visited in blocks; with clusters, in the stable order of their codes, each
    block ending at a cluster boundary, and summed within clusters with
    a sparse summing matrix before the rank-k update. Memory stays at one block, whatever
    ``n``; an ndarray input is never copied whole.
    """
    n, k = phi.shape
    if isinstance(phi, RowInfluence):
        fast = phi._fast_gram(codes, block_elems)
        if fast is not None:
            post = phi._post
            return fast if post is None else symmetrize(np.triu(post.T @ fast @ post))
    out = np.zeros((k, k), dtype=np.float64)
    for idx, seg, n_seg in gram_blocks(n, k, codes, block_elems):
        if seg is None:
            _syrk_add(out, influence_rows(phi, idx))
        elif isinstance(phi, RowInfluence):
            _syrk_add(out, phi.summed_rows(idx, seg, n_seg))
        else:
            rows_ = np.asarray(phi[idx], dtype=np.float64)
            _syrk_add(out, np.asarray(summing_matrix(seg, n_seg) @ rows_))
    return symmetrize(out)
