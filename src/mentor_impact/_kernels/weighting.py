"""Private kernels of the weighting estimators (IPW, estimand B, AIPW); no validation.

Conventions
-----------
- ``Z`` (n, q) is the propensity design *with* the intercept column, float64.
- ``d`` (n,) is the 0/1 treatment as float64, ``w`` (n,) the sampling / frequency weights.
- ``Y`` is always 2-D (n, K): a scalar outcome is a curve with ``K = 1``.
- Influence functions are *scaled*: ``theta_hat - theta ~= phi.sum(axis=0)``.
- ``PSTerm`` carries the logit estimation term: ``gamma_hat - gamma ~=
  sum_i w_i (d_i - e_i) z_i @ inv(Z' diag(w e (1 - e)) Z)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg.blas import dgemm

from mentor_impact._kernels.linalg import weighted_gram
from mentor_impact._kernels.logit import fit_logit_newton
from mentor_impact.inference.influence import (
    RowIndex,
    RowInfluence,
    add_gram,
    block_rows,
    gram_blocks,
    summing_matrix,
    symmetrize,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "HajekInfluence",
    "HajekVaryingInfluence",
    "LogitResult",
    "PSTerm",
    "VaryingArmWeights",
    "arm_weights",
    "crossfit_logit",
    "crossfit_ols",
    "expit",
    "fold_grams",
    "group_matrix",
    "hajek_if",
    "hajek_rows",
    "hajek_rows_varying",
    "hajek_rows_varying_multi",
    "horvitz_thompson_if",
    "independent_columns",
    "logit_fit",
    "ols_fit",
    "varying_grams",
    "with_intercept",
]


def expit(eta: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


@dataclass
class LogitResult:
    coef: FloatArray
    ps: FloatArray
    hessian: FloatArray  # Z' diag(w e (1 - e)) Z
    n_iter: int
    converged: bool
    max_abs_eta: float


def _tmul(A: FloatArray, B: FloatArray) -> FloatArray:
    """``A.T @ B`` for tall ``A`` (n, q) and ``B`` (n, K), computed as ``(B.T @ A).T``.

    Same numbers; OpenBLAS's threaded kernel for the transposed-left orientation with a
    long inner dimension was measured up to 30x slower on a shared 2-core machine.
    """
    return np.asarray((B.T @ A).T)


def _gram(Z: FloatArray, v: FloatArray, chunk: int = 262_144) -> FloatArray:
    """``Z' diag(v) Z`` (BLAS ``dsyrk``, see :mod:`mentor_impact._kernels.linalg`)."""
    return weighted_gram(Z, v, chunk)


def logit_fit(
    Z: FloatArray,
    d: FloatArray,
    w: FloatArray,
    *,
    tol: float = 1e-12,
    max_iter: int = 60,
    beta0: FloatArray | None = None,
    hessian: bool = True,
) -> LogitResult:
    """Weighted logit MLE (the Newton-Raphson kernel of :mod:`mentor_impact._kernels.logit`).

    Start: ``beta0``, or zeros (from 100,000 rows on: the fit on an evenly strided
    subsample; the likelihood is concave, so the solution does not depend on it). Stop:
    relative deviance change below ``tol`` (R's glm rule with a tighter epsilon).
    ``hessian=False`` skips the final information matrix (returned as zeros).
    """
    q = Z.shape[1]
    fit = fit_logit_newton(Z, d, w, tol=tol, max_iter=max_iter, beta0=beta0,
                           warm_start_rows=100_000, information=False)
    p = expit(fit.eta)
    H = _gram(Z, w * p * (1.0 - p)) if hessian else np.zeros((q, q))
    max_abs_eta = float(np.max(np.abs(fit.eta))) if fit.eta.size else 0.0
    return LogitResult(fit.beta, p, H, fit.n_iter, fit.converged, max_abs_eta)


def with_intercept(X: FloatArray, cols: IntArray | None = None) -> FloatArray:
    """Return the design ``[1, X[:, cols]]`` (a leading intercept column), float64.

    One allocation of ``(n, len(cols) + 1)``: the selected columns are written straight
    into it (no intermediate copy of ``X[:, cols]``).
    """
    if cols is None or (cols.size == X.shape[1] and np.array_equal(cols, np.arange(X.shape[1]))):
        Z = np.empty((X.shape[0], X.shape[1] + 1))
        Z[:, 1:] = X
    else:
        Z = np.empty((X.shape[0], cols.size + 1))
        for lo in range(0, X.shape[0], 65_536):  # row blocks: the gather stays in cache
            Z[lo : lo + 65_536, 1:] = X[lo : lo + 65_536][:, cols]
    Z[:, 0] = 1.0
    return Z


def independent_columns(X: FloatArray, w: FloatArray, tol: float = 1e-10) -> IntArray:
    """Columns of ``X`` that are non-constant and linearly independent given an intercept.

    One weighted Gram pass over ``[1, X]``; constant columns (zero weighted variance) are
    dropped, then a pivoted QR of the correlation matrix keeps a maximal independent set
    (aliased columns are dropped, as R's ``lm``/``glm`` give them ``NA``). Fitted values of
    the logit / least squares are unchanged by dropping aliased columns.
    """
    import scipy.linalg as sla

    p = X.shape[1]
    if p == 0:
        return np.arange(0, dtype=np.int64)
    # Gram of [1, X] without forming it: weighted sums and the (chunked) Gram of X
    ww = np.asarray(w, dtype=np.float64)
    G = np.empty((p + 1, p + 1))
    G[0, 0] = ww.sum()
    G[0, 1:] = G[1:, 0] = ww @ X
    G[1:, 1:] = _gram(X, ww)
    W = G[0, 0]
    if W <= 0:
        return np.arange(p, dtype=np.int64)
    m = G[0, 1:] / W
    cov = G[1:, 1:] / W - np.outer(m, m)
    var = np.diag(cov).copy()
    scale = np.maximum(np.abs(np.diag(G[1:, 1:]) / W), 1e-300)
    nonconst = np.flatnonzero(var > 1e-12 * scale)
    if nonconst.size == 0:
        return nonconst.astype(np.int64)
    sd = np.sqrt(var[nonconst])
    corr = cov[np.ix_(nonconst, nonconst)] / np.outer(sd, sd)
    _, R, piv = sla.qr(corr, pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int((diag > tol * max(diag[0], 1e-300)).sum())
    return np.sort(nonconst[piv[:rank]]).astype(np.int64)


class PSTerm:
    """Propensity-estimation term of an influence function.

    ``gamma_hat - gamma ~= sum_i resid_i z_i @ hinv`` with ``resid = w (d - e)``; for a
    derivative ``Dg = d theta / d gamma`` (q, K) the term is ``resid * (Z @ (hinv @ Dg))``,
    computed without forming the (n, q) influence matrix.
    """

    def __init__(self, Z: FloatArray, resid: FloatArray, hinv: FloatArray) -> None:
        self.Z = Z
        self.resid = resid
        self.hinv = hinv
        self._zr: FloatArray | None = None

    def apply(self, Dg: FloatArray) -> FloatArray:
        if self._zr is None:
            self._zr = self.Z * self.resid[:, None]
        return np.asarray(self._zr @ (self.hinv @ Dg))


def ols_fit(Z: FloatArray, Y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted least squares coefficients (q, K) via the normal equations (lstsq fallback)."""
    sw = w[:, None]
    A = _gram(Z, w)
    b = _tmul(Z, Y * sw)
    try:
        return np.asarray(np.linalg.solve(A, b))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(A, b, rcond=None)[0])


def fold_grams(
    Z: FloatArray, w: FloatArray, arm: NDArray[np.bool_], folds: IntArray, n_folds: int,
) -> FloatArray:
    """Per-fold weighted Gram matrices ``Z_k' W_k Z_k`` of the rows of ``arm`` (n_folds, q, q)."""
    q = Z.shape[1]
    grams = np.zeros((n_folds, q, q))
    for k in range(n_folds):
        idx = np.flatnonzero(arm & (folds == k))
        if idx.size:
            grams[k] = _gram(Z[idx], w[idx])
    return grams


def crossfit_ols(
    Z: FloatArray, Y: FloatArray, w: FloatArray, arm: NDArray[np.bool_],
    folds: IntArray, n_folds: int, grams: FloatArray | None = None,
    coef_out: FloatArray | None = None,
) -> FloatArray:
    """Cross-fitted weighted least squares predictions of ``Y`` (n, K) for every row.

    The model of fold ``k`` is fitted on the rows of ``arm`` outside fold ``k``; with
    ``n_folds == 1`` on all rows of ``arm``. Per-fold Gram matrices are computed once (or
    passed in ``grams``, from :func:`fold_grams`, when several blocks of targets share them)
    and the training Gram is the total minus the held-out fold (one pass over the data).
    ``coef_out`` (n_folds, q, K), if given, receives the coefficients of every fold.
    """
    q = Z.shape[1]
    K = Y.shape[1]
    if grams is None:
        grams = fold_grams(Z, w, arm, folds, n_folds)
    rhs = np.zeros((n_folds, q, K))
    for k in range(n_folds):
        idx = np.flatnonzero(arm & (folds == k))
        if idx.size:
            rhs[k] = _tmul(Z[idx], Y[idx] * w[idx, None])
    Gt = grams.sum(axis=0)
    Bt = rhs.sum(axis=0)
    out = np.empty((Z.shape[0], K))
    for k in range(n_folds):
        A = Gt - grams[k] if n_folds > 1 else Gt
        b = Bt - rhs[k] if n_folds > 1 else Bt
        try:
            beta = np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(A, b, rcond=None)[0]
        if coef_out is not None:
            coef_out[k] = beta
        test = np.flatnonzero(folds == k)
        out[test] = Z[test] @ beta
    return out


def crossfit_logit(
    Z: FloatArray, d: FloatArray, w: FloatArray, folds: IntArray, n_folds: int,
    beta: FloatArray, ps: FloatArray,
) -> FloatArray:
    """Cross-fitted logit scores by one Newton step per fold from the full-sample MLE.

    At the full-sample MLE ``beta`` the score of the training rows of fold ``k`` is
    ``-g_k`` (the scores sum to zero) and their information is ``H - G_k``; one Newton step
    ``beta + (H - G_k)^{-1} (-g_k)`` gives the fold-``k`` MLE up to ``O_p(1/n)`` (a one-step
    estimator, first-order equivalent). All folds cost one pass over the data. Returns the
    held-out predictions for every row.
    """
    q = Z.shape[1]
    grams = np.zeros((n_folds, q, q))
    scores = np.zeros((n_folds, q))
    members = [np.flatnonzero(folds == k) for k in range(n_folds)]
    v = w * ps * (1.0 - ps)
    r = w * (d - ps)
    for k, idx in enumerate(members):
        Zk = Z[idx]
        grams[k] = _gram(Zk, v[idx])
        scores[k] = Zk.T @ r[idx]
    H = grams.sum(axis=0)
    g = scores.sum(axis=0)
    out = np.empty(Z.shape[0])
    for k, idx in enumerate(members):
        A = H - grams[k]
        b = g - scores[k]
        try:
            bk = beta + np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            bk = beta + np.linalg.lstsq(A, b, rcond=None)[0]
        out[idx] = expit(Z[idx] @ bk)
    return out


def arm_weights(
    ps: FloatArray, d: FloatArray, estimand: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Balancing weights and their logit derivatives.

    Returns ``omega`` (the weight of each row within its arm), ``g`` with
    ``d omega / d gamma = g * z``, the target-population density ``t`` (whose weighted sum
    defines the estimand's population) and ``t_prime`` with ``d t / d gamma = t_prime * z``.
    """
    e = ps
    treated = d > 0.5
    if estimand == "ATT":
        omega = np.where(treated, 1.0, e / (1.0 - e))
        g = np.where(treated, 0.0, omega)
        t = d.copy()
        tp = np.zeros_like(e)
    elif estimand == "ATE":
        omega = np.where(treated, 1.0 / e, 1.0 / (1.0 - e))
        g = np.where(treated, -(1.0 - e) / e, e / (1.0 - e))
        t = np.ones_like(e)
        tp = np.zeros_like(e)
    elif estimand == "ATC":
        omega = np.where(treated, (1.0 - e) / e, 1.0)
        g = np.where(treated, -omega, 0.0)
        t = 1.0 - d
        tp = np.zeros_like(e)
    elif estimand == "ATO":
        omega = np.where(treated, 1.0 - e, e)
        g = np.where(treated, -e * (1.0 - e), e * (1.0 - e))
        t = e * (1.0 - e)
        tp = e * (1.0 - e) * (1.0 - 2.0 * e)
    else:  # pragma: no cover - validated by the caller
        raise ValueError(estimand)
    return omega, g, t, tp


def group_matrix(groups: IntArray, n_groups: int) -> sp.csr_matrix:
    """Sparse (G, n) indicator matrix: ``M @ A`` sums the rows of ``A`` within groups."""
    n = groups.size
    return sp.csr_matrix(
        sp.csc_matrix((np.ones(n), groups, np.arange(n + 1)), shape=(n_groups, n))
    )


def _gsum(M: sp.csr_matrix | None, A: FloatArray) -> FloatArray:
    """Group sums of the rows of ``A`` (n, K) -> (G, K); a single group when ``M`` is None."""
    if M is None:
        return A.sum(axis=0, keepdims=True)
    return np.asarray(M @ A)


def hajek_if(
    Y: FloatArray,
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    omega0: FloatArray,
    g1: FloatArray,
    g0: FloatArray,
    t: FloatArray,
    tp: FloatArray,
    ps: PSTerm | None,
    groups: IntArray | None = None,
    n_groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Hajek contrast normalised within groups (risk sets) and aggregated over groups.

    ``theta = sum_s pi_s (m1_s - m0_s)``, ``m_as = sum_{i in s, arm a} w omega_a Y /
    sum w omega_a`` and ``pi_s = sum_{i in s} w t / sum w t``.

    ``omega1``/``g1`` are (n,) weights of treated rows (ignored elsewhere), ``omega0``/``g0``
    (n,) or (n, K) weights of control rows; a (n, K) control weight gives a per-target
    weight (estimand B). The PS terms are added when ``ps`` is given.

    A risk set where one arm has no weight at target ``k`` (e.g. every control censored
    under estimand B) is left out at that target and ``pi`` renormalised over the others.

    Returns ``(theta, m1, m0, phi, n_dropped)`` with ``m1 = sum_s pi_s m1_s`` etc. and the
    number of risk sets left out per target.
    """
    n, K = Y.shape
    G = 1 if groups is None else n_groups
    gi = np.zeros(n, dtype=np.int64) if groups is None else groups
    treated = d > 0.5
    a1 = np.where(treated, w * omega1, 0.0)  # (n,)
    per_target = omega0.ndim == 2
    ctrl_w = np.where(treated, 0.0, w)
    a0 = ctrl_w[:, None] * omega0 if per_target else ctrl_w * omega0  # (n, K) or (n,)

    def gsum_vec(v: FloatArray) -> FloatArray:  # (n,) -> (G, 1)
        return np.asarray(np.bincount(gi, weights=v, minlength=G), dtype=np.float64)[:, None]

    def gsum_wy(v: FloatArray) -> FloatArray:  # sum_i v_i Y_i within groups -> (G, K)
        if groups is None:
            return (v @ Y)[None, :]
        Mv = sp.csc_matrix((v, gi, np.arange(n + 1)), shape=(G, n))
        return np.asarray(Mv @ Y)

    S1 = gsum_vec(a1)
    A1 = gsum_wy(a1)
    if per_target:
        S0 = _gsum(None if groups is None else group_matrix(gi, G), a0)
        A0 = _gsum(None if groups is None else group_matrix(gi, G), a0 * Y)
    else:
        S0 = gsum_vec(a0)
        A0 = gsum_wy(a0)
    tw = w * t
    T_s = gsum_vec(tw)  # (G, 1)
    # a risk set contributes at target k only when both arms have weight there
    valid = (S1 > 0) & (S0 > 0) & (T_s > 0)  # (G, 1 | K)
    valid = np.broadcast_to(valid, (G, K))
    Tv = np.where(valid, T_s, 0.0)
    T = Tv.sum(axis=0)  # (K,)
    pi = Tv / np.where(T > 0, T, 1.0)  # (G, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1s = np.where(valid, A1 / S1, 0.0)
        m0s = np.where(valid, A0 / S0, 0.0)
        f1 = np.where(valid, pi / S1, 0.0)  # (G, K)
        f0 = np.where(valid, pi / S0, 0.0)
    delta_s = m1s - m0s
    theta = (pi * delta_s).sum(axis=0)
    m1 = (pi * m1s).sum(axis=0)
    m0 = (pi * m0s).sum(axis=0)
    n_dropped = (~valid & (T_s > 0)).sum(axis=0)
    arm_row = gi + G * (~treated)  # (n,) index into the stacked (2G, K) tables
    if not per_target:
        # estimand A: the normalising factors pi_s / S_as do not vary by target, so
        # phi = c * Y + E @ table with c (n,) and a sparse E holding two entries per row
        # (its (risk set, arm) mean and its risk-set share term); no (n, K) gathers.
        fac_g = np.concatenate([f1[:, :1], -f0[:, :1]])[:, 0]  # (2G,)
        c = np.where(treated, a1, a0) * fac_g[arm_row]  # (n,)
        means = np.concatenate([m1s, m0s])  # (2G, K)
        dv = np.where(valid, delta_s - theta, 0.0) / T  # (G, K)
        # exactly two entries per row: build the CSR arrays directly (no COO sort)
        data_e = np.empty(2 * n)
        data_e[0::2] = -c
        data_e[1::2] = tw
        idx_e = np.empty(2 * n, dtype=np.int64)
        idx_e[0::2] = arm_row
        idx_e[1::2] = 2 * G + gi
        E = sp.csr_matrix((data_e, idx_e, np.arange(0, 2 * n + 1, 2)), shape=(n, 3 * G))
        phi = c[:, None] * Y
        phi += np.asarray(E @ np.concatenate([means, dv]))
        if ps is not None:
            gc = np.where(treated, w * g1, ctrl_w * g0) * fac_g[arm_row]  # (n,)
            Zg = ps.Z * gc[:, None]
            # Z' C with C = gc (Y - mean_arm) (+ ATO share term), without forming C
            Dg = _tmul(Zg, Y)
            cols_ = np.arange(n + 1)  # one entry per column: CSC arrays directly
            grp = sp.csc_matrix((np.ones(n), arm_row, cols_), shape=(2 * G, n))
            Dg -= np.asarray(grp @ Zg).T @ means
            if np.any(tp != 0):
                Et = sp.csc_matrix(((w * tp), gi, cols_), shape=(G, n))
                Dg += np.asarray(Et @ ps.Z).T @ dv
            phi += ps.apply(Dg)
        return theta, m1, m0, phi, n_dropped
    # estimand B: one gather per (n, K) quantity (row i reads its (risk set, arm) row)
    means = np.concatenate([m1s, m0s])  # (2G, K)
    fac = np.concatenate([f1, -f0])  # (2G, K): +pi/S1 for treated, -pi/S0 for controls
    R = Y - means[arm_row]
    F = fac[arm_row]
    a_arm = (np.where(treated[:, None], a1[:, None], a0) if per_target
             else np.where(treated, a1, a0)[:, None])
    phi = (a_arm * F) * R
    dv = np.where(valid, delta_s - theta, 0.0) / T  # (G, K)
    if groups is not None or not valid.all():
        phi += tw[:, None] * dv[gi]
    if ps is not None:
        # d theta / d gamma: sum_s pi_s (d m1_s - d m0_s) + sum_s (d pi_s) delta_s
        g_arm = (np.where(treated[:, None], (w * g1)[:, None], ctrl_w[:, None] * g0)
                 if per_target else np.where(treated, w * g1, ctrl_w * g0)[:, None])
        C = (g_arm * F) * R
        if np.any(tp != 0):
            C += (w * tp)[:, None] * dv[gi]
        phi += ps.apply(_tmul(ps.Z, C))
    return theta, m1, m0, phi, n_dropped


class HajekInfluence(RowInfluence):
    """Influence function of the Hajek contrast with weights constant over targets.

    Row ``i`` (risk set ``s``, arm ``a``) is
    ``c_i (Y_i - m_as) + t_i dv_s + r_i z_i' M`` with ``c_i = +-w_i omega_i pi_s / S_as``,
    the risk-set share term ``t_i dv_s`` (``t_i = w_i t(e_i)``,
    ``dv_s = (delta_s - theta) / T``) and the propensity term (``r_i = w_i (d_i - e_i)``,
    ``M = H^{-1} d theta / d gamma``). Only these factors are stored; ``Y`` is the caller's
    outcome matrix (any numeric dtype, not copied).
    """

    def __init__(
        self,
        Y: NDArray[np.generic],
        c: FloatArray,
        means: FloatArray,
        arm_row: IntArray,
        tw: FloatArray,
        dv: FloatArray | None,
        gi: IntArray,
        ps: PSTerm | None,
        M: FloatArray | None,
        used: NDArray[np.bool_] | None,
    ) -> None:
        super().__init__(Y.shape[0], Y.shape[1])
        self.Y, self.c, self.means, self.arm_row = Y, c, means, arm_row
        self.tw, self.dv, self.gi, self.ps, self.M, self.used = tw, dv, gi, ps, M, used

    def _y(self, idx: RowIndex) -> NDArray[np.generic]:
        Yb = self.Y[idx]
        if self.used is not None:  # missing outcomes in rows without weight count as 0
            Yb = np.where(self.used[idx][:, None], Yb, 0.0)
        return Yb

    def _table_terms(self, idx: RowIndex, seg: IntArray | None, n_out: int) -> FloatArray:
        """``-c_i m_as + t_i dv_s`` per row (``seg`` None) or summed by segment."""
        cb = self.c[idx]
        m = cb.size
        G2 = self.means.shape[0]
        ar = self.arm_row[idx]
        if self.dv is None:
            data, cols, table = -cb, ar, self.means
            rows_ = np.arange(m) if seg is None else seg
        else:
            data = np.concatenate([-cb, self.tw[idx]])
            cols = np.concatenate([ar, G2 + self.gi[idx]])
            table = np.concatenate([self.means, self.dv])
            rows_ = np.tile(np.arange(m) if seg is None else seg, 2)
        E = sp.csr_matrix((data, (rows_, cols)), shape=(n_out, table.shape[0]))
        return np.asarray(E @ table)

    def _rows(self, idx: RowIndex) -> FloatArray:
        cb = self.c[idx]
        out = self._table_terms(idx, None, cb.size)
        out += np.multiply(self._y(idx), cb[:, None], dtype=np.float64)
        if self.ps is not None and self.M is not None:
            _add_product(out, self.ps.Z[idx] * self.ps.resid[idx][:, None], self.M)
        return out

    def _fast_gram(self, codes: IntArray | None, block_elems: int | None) -> FloatArray | None:
        """``phi' phi`` without clusters and with few risk sets, as one wider rank-k update.

        ``phi = [c (Y - mu) | table indicators | z r] @ U`` with ``U`` stacking the identity,
        the (shifted) table rows and ``M``: the Gram of the augmented rows (one ``dsyrk``
        per block, no table gathers or propensity GEMM) is mapped through ``U``. ``mu``
        (the mean of the table rows) keeps the columns centred for float outcomes.
        """
        G2 = self.means.shape[0]
        G = 0 if self.dv is None else self.dv.shape[0]
        if codes is not None or G2 + G > _AUG_TABLE_ROWS:
            return None
        n, K = self.Y.shape
        has_ps = self.ps is not None and self.M is not None
        q = self.ps.Z.shape[1] if has_ps and self.ps is not None else 0
        width = K + G2 + G + q
        centre = not _finite_dtype(self.Y)
        mu = self.means.mean(axis=0) if centre else np.zeros(K)
        U = np.zeros((width, K))
        U[:K] = np.eye(K)
        U[K : K + G2] = self.means - mu
        if G:
            assert self.dv is not None
            U[K + G2 : K + G2 + G] = self.dv
        if has_ps:
            assert self.M is not None
            U[K + G2 + G :] = self.M
        out = np.zeros((width, width))
        for sl in block_rows(n, width, block_elems):
            m = sl.stop - sl.start
            cb = self.c[sl]
            B = np.zeros((m, width))
            Yb = self._y(sl)
            if centre:
                np.subtract(Yb, mu, out=B[:, :K])
                B[:, :K] *= cb[:, None]
            else:
                np.multiply(Yb, cb[:, None], out=B[:, :K])
            r = np.arange(m)
            B[r, K + self.arm_row[sl]] = -cb
            if G:
                B[r, K + G2 + self.gi[sl]] = self.tw[sl]
            if has_ps and self.ps is not None:
                np.multiply(self.ps.Z[sl], self.ps.resid[sl][:, None], out=B[:, K + G2 + G :])
            add_gram(out, B)
        full = symmetrize(out)
        return np.asarray(U.T @ full @ U)

    def _summed(self, idx: RowIndex, seg: IntArray, n_seg: int) -> FloatArray:
        # sum the factors within segments first: c * Y through a weighted summing matrix,
        # the table terms through their sparse map, and z r before the product with M
        Yb = np.asarray(self._y(idx), dtype=np.float64)
        out = np.asarray(summing_matrix(seg, n_seg, self.c[idx]) @ Yb)
        out += self._table_terms(idx, seg, n_seg)
        if self.ps is not None and self.M is not None:
            zr = summing_matrix(seg, n_seg, self.ps.resid[idx]) @ self.ps.Z[idx]
            _add_product(out, np.asarray(zr), self.M)
        return out


#: table rows (risk sets x arms, plus risk sets) up to which the IID Gram of a
#: HajekInfluence is one augmented rank-k update (HajekInfluence._fast_gram)
_AUG_TABLE_ROWS = 24


def _add_product(out: FloatArray, a: FloatArray, b: FloatArray) -> None:
    """``out += a @ b`` without a temporary: BLAS GEMM with ``beta = 1`` on ``out'``."""
    if out.flags.c_contiguous and out.dtype == np.float64:
        # out' (Fortran-ordered view of a C-ordered out) += b' a', written in place
        res = dgemm(1.0, b.T, a.T, beta=1.0, c=out.T, overwrite_c=True)
        if not np.shares_memory(res, out):  # pragma: no cover - BLAS made a copy
            out[...] = res.T
    else:  # pragma: no cover - the callers pass fresh C-ordered arrays
        out += a @ b


def hajek_rows(
    Y: NDArray[np.generic],
    d: FloatArray,
    w: FloatArray,
    omega: FloatArray,
    g: FloatArray,
    t: FloatArray,
    tp: FloatArray,
    ps: PSTerm | None,
    groups: IntArray | None = None,
    n_groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray, HajekInfluence, IntArray]:
    """:func:`hajek_if` for weights constant over targets, in row blocks.

    Same estimator and influence function as :func:`hajek_if` with (n,) control weights,
    but ``Y`` (n, K) of any numeric dtype is read in row blocks (never converted whole to
    float64) and the influence function is returned as a :class:`HajekInfluence`, which
    the covariance estimators consume block by block. One pass over ``Y`` gives the
    arm means within risk sets and ``d theta / d gamma``; the covariance pass is the
    second. Non-finite outcomes in rows without weight (``w == 0``) count as 0.
    """
    n, K = Y.shape
    G = 1 if groups is None else n_groups
    gi = np.zeros(n, dtype=np.int64) if groups is None else groups
    treated = d > 0.5
    a = w * omega  # (n,) weight of each row within its own arm
    arm_row = gi + G * (~treated)  # row of the stacked (2G, K) tables
    S = np.bincount(arm_row, weights=a, minlength=2 * G)
    S1, S0 = S[:G, None], S[G:, None]
    tw = w * t
    T_s = np.bincount(gi, weights=tw, minlength=G).astype(np.float64)[:, None]
    valid1 = (S1 > 0) & (S0 > 0) & (T_s > 0)  # (G, 1): weights do not vary by target
    Tv = np.where(valid1, T_s, 0.0)
    T = float(Tv.sum())
    pi = Tv / (T if T > 0 else 1.0)  # (G, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(valid1, pi / S1, 0.0)
        f0 = np.where(valid1, pi / S0, 0.0)
    fac_g = np.concatenate([f1, -f0])[:, 0]  # (2G,)
    c = a * fac_g[arm_row]
    gc = None
    if ps is not None:
        gc = w * g * fac_g[arm_row]
    finite_y = bool(np.issubdtype(Y.dtype, np.integer) or Y.dtype == bool)
    used = None if finite_y else (w > 0)
    # pass 1: arm sums of a * Y within risk sets and Zg' Y (one read of Y)
    q = 0 if ps is None else ps.Z.shape[1]
    A = np.zeros((2 * G, K))
    ZgY = np.zeros((q, K))
    ZgS = np.zeros((2 * G, q))
    for sl in block_rows(n, K):
        m = sl.stop - sl.start
        Yc = np.asarray(Y[sl], dtype=np.float64)
        if used is not None and not np.isfinite(Yc).all():
            Yc = np.where(used[sl][:, None], Yc, 0.0)
        ptr = np.arange(m + 1)
        A += np.asarray(sp.csc_matrix((a[sl], arm_row[sl], ptr), shape=(2 * G, m)) @ Yc)
        if ps is not None and gc is not None:
            Zg = ps.Z[sl] * gc[sl, None]
            ZgY += dgemm(1.0, Zg.T, Yc.T, trans_b=1)
            ZgS += np.asarray(sp.csc_matrix((np.ones(m), arm_row[sl], ptr),
                                            shape=(2 * G, m)) @ Zg)
    valid = np.broadcast_to(valid1, (G, K))
    with np.errstate(invalid="ignore", divide="ignore"):
        m1s = np.where(valid, A[:G] / S1, 0.0)
        m0s = np.where(valid, A[G:] / S0, 0.0)
    delta_s = m1s - m0s
    theta = (pi * delta_s).sum(axis=0)
    m1 = (pi * m1s).sum(axis=0)
    m0 = (pi * m0s).sum(axis=0)
    n_dropped = np.broadcast_to(((~valid1) & (T_s > 0)).sum(axis=0), (K,)).astype(np.int64)
    means = np.concatenate([m1s, m0s])  # (2G, K)
    dv = np.where(valid, delta_s - theta, 0.0) / (T if T > 0 else 1.0)  # (G, K)
    M = None
    if ps is not None:
        Dg = ZgY - ZgS.T @ means
        if np.any(tp != 0):
            Et = sp.csc_matrix(((w * tp), gi, np.arange(n + 1)), shape=(G, n))
            Dg += np.asarray(Et @ ps.Z).T @ dv
        M = np.asarray(ps.hinv @ Dg)
    phi = HajekInfluence(Y, c, means, arm_row, tw, dv if np.any(dv != 0) else None, gi, ps, M,
                         used)
    return theta, m1, m0, phi, np.array(n_dropped)


#: ``weights0(rows, need_g, need_kept) -> (omega0, g0, kept)``, each (len(rows), K): control
#: weights by target, their logit derivative weights (None unless ``need_g``) and the mask of
#: controls still uncensored (None unless ``need_kept``)
WeightRows = Callable[
    [RowIndex, bool, bool],
    tuple[FloatArray, FloatArray | None, NDArray[np.bool_] | None],
]


class VaryingArmWeights:
    """Per-row, per-target arm weights of the Hajek contrast with varying control weights.

    ``a_i(k)`` is ``w_i omega1_i`` for treated rows and ``w_i omega0_i(k)`` for controls (and
    ``g`` likewise for the logit derivative), produced for any block of rows by
    ``weights0``. Shared by all outcomes of one fit, so a block's weights are computed once.
    """

    def __init__(
        self,
        treated: NDArray[np.bool_],
        w: FloatArray,
        omega1: FloatArray,
        g1: FloatArray,
        weights0: WeightRows,
    ) -> None:
        self.treated = treated
        self.w = w
        self.a1 = np.where(treated, w * omega1, 0.0)
        self.g1w = np.where(treated, w * g1, 0.0)
        self.weights0 = weights0

    def block(
        self, idx: RowIndex, need_g: bool = False, need_kept: bool = False
    ) -> tuple[FloatArray, FloatArray | None, NDArray[np.bool_] | None]:
        """Return ``(a, g, kept)`` of the rows ``idx``, each (len(idx), K)."""
        om0, g0, kept = self.weights0(idx, need_g, need_kept)
        wb = self.w[idx][:, None]
        tsel = np.flatnonzero(self.treated[idx])
        a = om0 * wb
        a[tsel] = self.a1[idx][tsel][:, None]
        g = None
        if need_g and g0 is not None:
            g = g0 * wb
            g[tsel] = self.g1w[idx][tsel][:, None]
        if kept is not None:
            kept[tsel] = True
        return a, g, kept


class HajekVaryingInfluence(RowInfluence):
    """Influence function of the Hajek contrast with control weights varying by target.

    Row ``i`` (risk set ``s``, arm ``a``) is ``a_i(k) f_as(k) (Y_ik - m_as(k)) +
    t_i dv_s(k) + r_i z_i' M`` with the arm weights ``a_i(k)`` of a shared
    :class:`VaryingArmWeights` (estimand B: censoring and inverse probability of remaining
    untreated). Only per-row vectors and (risk set x target) tables are stored.
    """

    def __init__(
        self,
        Y: NDArray[np.generic],
        weights: VaryingArmWeights,
        fac: FloatArray,
        means: FloatArray,
        arm_row: IntArray,
        tw: FloatArray,
        dv: FloatArray | None,
        gi: IntArray,
        ps: PSTerm | None,
        M: FloatArray | None,
    ) -> None:
        super().__init__(Y.shape[0], Y.shape[1])
        self.Y, self.weights, self.fac, self.means = Y, weights, fac, means
        self.arm_row, self.tw, self.dv, self.gi, self.ps, self.M = arm_row, tw, dv, gi, ps, M
        self.finite_y = _finite_dtype(Y)

    def y_block(self, idx: RowIndex, kept: NDArray[np.bool_] | None) -> NDArray[np.generic]:
        """Outcomes of the rows ``idx``; 0 outside the rows in use if they may be missing."""
        Yb = self.Y[idx]
        if not self.finite_y:
            assert kept is not None
            uses = (self.weights.w[idx] > 0)[:, None] & kept
            Yb = np.where(uses, Yb, 0.0)
        return Yb

    def nonps_rows(self, idx: RowIndex, a: FloatArray, kept: NDArray[np.bool_] | None
                   ) -> FloatArray:
        """Rows without the propensity term, given the block's arm weights."""
        ar = self.arm_row[idx]
        out = np.subtract(self.y_block(idx, kept), self.means[ar], dtype=np.float64)
        out *= a
        out *= self.fac[ar]
        if self.dv is not None:
            out += self.tw[idx][:, None] * self.dv[self.gi[idx]]
        return out

    def rows_given(self, idx: RowIndex, a: FloatArray, kept: NDArray[np.bool_] | None
                   ) -> FloatArray:
        """Rows ``idx`` given the block's arm weights (shared across outcomes)."""
        out = self.nonps_rows(idx, a, kept)
        if self.ps is not None and self.M is not None:
            _add_product(out, self.ps.Z[idx] * self.ps.resid[idx][:, None], self.M)
        return out

    def summed_given(self, idx: RowIndex, seg: IntArray, n_seg: int, a: FloatArray,
                     kept: NDArray[np.bool_] | None) -> FloatArray:
        """Segment sums of the rows ``idx`` given the block's arm weights."""
        out = np.asarray(summing_matrix(seg, n_seg) @ self.nonps_rows(idx, a, kept))
        if self.ps is not None and self.M is not None:
            zr = summing_matrix(seg, n_seg, self.ps.resid[idx]) @ self.ps.Z[idx]
            _add_product(out, np.asarray(zr), self.M)
        return out

    def _rows(self, idx: RowIndex) -> FloatArray:
        a, _, kept = self.weights.block(idx, need_kept=not self.finite_y)
        return self.rows_given(idx, a, kept)

    def _summed(self, idx: RowIndex, seg: IntArray, n_seg: int) -> FloatArray:
        a, _, kept = self.weights.block(idx, need_kept=not self.finite_y)
        return self.summed_given(idx, seg, n_seg, a, kept)


def _finite_dtype(Y: NDArray[np.generic]) -> bool:
    """Integer and boolean outcomes cannot be missing."""
    return bool(np.issubdtype(Y.dtype, np.integer) or Y.dtype == bool)


def hajek_rows_varying(
    Y: NDArray[np.generic],
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    g1: FloatArray,
    weights0: WeightRows,
    t: FloatArray,
    tp: FloatArray,
    ps: PSTerm | None,
    groups: IntArray | None = None,
    n_groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray, HajekVaryingInfluence, IntArray,
           dict[str, NDArray[Any]]]:
    """:func:`hajek_if` with per-target control weights (estimand B), in row blocks.

    One outcome of :func:`hajek_rows_varying_multi`; returns ``(theta, m1, m0, phi,
    n_dropped, control_stats)``.
    """
    fits, stats = hajek_rows_varying_multi([Y], d, w, omega1, g1, weights0, t, tp, ps,
                                           groups, n_groups)
    theta, m1, m0, phi, n_dropped = fits[0]
    st = dict(stats)
    if "n_bad" in st:
        st["n_bad"] = np.asarray(st["n_bad"][0])
        st["bad_rows"] = st["bad_rows"][:, 0]
    return theta, m1, m0, phi, n_dropped, st


def hajek_rows_varying_multi(
    Ys: list[NDArray[np.generic]],
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    g1: FloatArray,
    weights0: WeightRows,
    t: FloatArray,
    tp: FloatArray,
    ps: PSTerm | None,
    groups: IntArray | None = None,
    n_groups: int = 1,
) -> tuple[list[tuple[FloatArray, FloatArray, FloatArray, HajekVaryingInfluence, IntArray]],
           dict[str, NDArray[Any]]]:
    """:func:`hajek_if` with per-target control weights for several outcomes at once.

    Same estimator and influence function as :func:`hajek_if` with (n, K) control weights
    ``omega0``/``g0``, which ``weights0`` produces for any block of rows, so no (n, K)
    matrix is formed. The outcomes (each (n, K), same targets) share the weights: each
    block's weights are computed once per pass for all of them. One pass gives the arm
    means within risk sets, a second (with a propensity term) ``d theta / d gamma``; each
    influence function is returned as a :class:`HajekVaryingInfluence` (see
    :func:`varying_grams` for their covariances in one more pass). Non-finite outcomes
    outside the rows in use (no weight, or a control censored at that target) count as 0.

    Returns ``([(theta, m1, m0, phi, n_dropped) per outcome], control_stats)``;
    ``control_stats`` holds the per-target sum, sum of squares and maximum of the control
    weights ``w omega0`` and, when some outcome may be missing, ``bad_rows`` (n, outcomes:
    rows with a missing outcome where it is used) and ``n_bad`` (per outcome).
    """
    n, K = Ys[0].shape
    J = len(Ys)
    G = 1 if groups is None else n_groups
    gi = np.zeros(n, dtype=np.int64) if groups is None else groups
    treated = d > 0.5
    W = VaryingArmWeights(treated, w, omega1, g1, weights0)
    arm_row = gi + G * (~treated)
    finite = [_finite_dtype(Y) for Y in Ys]
    need_kept = not all(finite)
    S = np.zeros((2 * G, K))
    A = np.zeros((J, 2 * G, K))
    s0 = np.zeros(K)
    s0sq = np.zeros(K)
    s0max = np.zeros(K)
    bad_rows = np.zeros((n, J), dtype=bool)
    n_bad = np.zeros(J, dtype=np.int64)
    for sl in block_rows(n, K):
        a, _, kept = W.block(sl, need_kept=need_kept)
        onehot = summing_matrix(arm_row[sl], 2 * G)
        S += np.asarray(onehot @ a)
        for j, Y in enumerate(Ys):
            Yb = Y[sl]
            if not finite[j]:
                assert kept is not None
                uses = (w[sl] > 0)[:, None] & kept
                Yf = np.asarray(Yb, dtype=np.float64)
                bad = ~np.isfinite(Yf) & uses
                if bad.any():
                    bad_rows[sl, j] = bad.any(axis=1)
                    n_bad[j] += int(bad.sum())
                Yb = np.where(uses, Yf, 0.0)
            A[j] += np.asarray(onehot @ np.multiply(a, Yb, dtype=np.float64))
        tsel = np.flatnonzero(treated[sl])
        a[tsel] = 0.0  # control weights only from here on
        s0 += a.sum(axis=0)
        s0sq += np.einsum("ij,ij->j", a, a)
        np.maximum(s0max, a.max(axis=0, initial=0.0), out=s0max)
    S1, S0 = S[:G], S[G:]
    tw = w * t
    T_s = np.bincount(gi, weights=tw, minlength=G).astype(np.float64)[:, None]
    valid = (S1 > 0) & (S0 > 0) & (T_s > 0)  # (G, K)
    Tv = np.where(valid, T_s, 0.0)
    T = Tv.sum(axis=0)
    pi = Tv / np.where(T > 0, T, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(valid, pi / S1, 0.0)
        f0 = np.where(valid, pi / S0, 0.0)
    fac = np.concatenate([f1, -f0])
    n_dropped = (~valid & (T_s > 0)).sum(axis=0).astype(np.int64)
    tables = []
    for j in range(J):
        with np.errstate(invalid="ignore", divide="ignore"):
            m1s = np.where(valid, A[j, :G] / S1, 0.0)
            m0s = np.where(valid, A[j, G:] / S0, 0.0)
        delta_s = m1s - m0s
        theta = (pi * delta_s).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            dv = np.where(valid, delta_s - theta, 0.0) / np.where(T > 0, T, 1.0)
        tables.append((theta, (pi * m1s).sum(axis=0), (pi * m0s).sum(axis=0),
                       np.concatenate([m1s, m0s]), dv))
    Ms: list[FloatArray | None] = [None] * J
    if ps is not None:
        q = ps.Z.shape[1]
        Dg = np.zeros((J, q, K))
        for sl in block_rows(n, K):
            _, g, kept = W.block(sl, need_g=True, need_kept=need_kept)
            assert g is not None
            ar = arm_row[sl]
            gf = g * fac[ar]
            Zt = ps.Z[sl].T
            for j, Y in enumerate(Ys):
                means, dv = tables[j][3], tables[j][4]
                Yb = Y[sl]
                if not finite[j]:
                    assert kept is not None
                    Yb = np.where((w[sl] > 0)[:, None] & kept, Yb, 0.0)
                C = np.subtract(Yb, means[ar], dtype=np.float64)
                C *= gf
                if np.any(tp != 0):
                    C += (w[sl] * tp[sl])[:, None] * dv[gi[sl]]
                Dg[j] += dgemm(1.0, Zt, C.T, trans_b=1)
        Ms = [np.asarray(ps.hinv @ Dg[j]) for j in range(J)]
    fits = []
    for j, Y in enumerate(Ys):
        theta, m1, m0, means, dv = tables[j]
        phi = HajekVaryingInfluence(Y, W, fac, means, arm_row, tw,
                                    dv if np.any(dv != 0) else None, gi, ps, Ms[j])
        fits.append((theta, m1, m0, phi, n_dropped))
    stats: dict[str, NDArray[Any]] = {"sum": s0, "sumsq": s0sq, "max": s0max}
    if need_kept:
        stats["bad_rows"] = bad_rows
        stats["n_bad"] = n_bad
    return fits, stats


def varying_grams(
    phis: list[HajekVaryingInfluence], codes: IntArray | None = None
) -> list[FloatArray]:
    """:func:`mentor_impact.inference.influence.influence_gram` of several outcomes' influence
    functions sharing one :class:`VaryingArmWeights`, in one pass (weights computed once
    per block)."""
    n, K = phis[0].shape
    W = phis[0].weights
    need_kept = not all(p.finite_y for p in phis)
    outs = [np.zeros((K, K)) for _ in phis]
    for idx, seg, n_seg in gram_blocks(n, K, codes):
        a, _, kept = W.block(idx, need_kept=need_kept)
        for phi, out in zip(phis, outs, strict=True):
            blk = (phi.rows_given(idx, a, kept) if seg is None
                   else phi.summed_given(idx, seg, n_seg, a, kept))
            add_gram(out, blk if phi._post is None else np.asarray(blk @ phi._post))
    return [symmetrize(o) for o in outs]


def horvitz_thompson_if(
    Y: FloatArray,
    d: FloatArray,
    w: FloatArray,
    omega1: FloatArray,
    omega0: FloatArray,
    g1: FloatArray,
    g0: FloatArray,
    t: FloatArray,
    tp: FloatArray,
    ps: PSTerm | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Horvitz-Thompson contrast ``sum w (d omega1 - (1-d) omega0) Y / sum w t``.

    Normalising within risk sets by the target count of each risk set and aggregating with
    the target shares gives the same number, so no groups are needed.
    """
    treated = d > 0.5

    def col(a: FloatArray) -> FloatArray:
        return a if a.ndim == 2 else a[:, None]

    tw = w * t
    T = float(tw.sum())
    a1 = np.where(treated, w * omega1, 0.0)[:, None]
    a0 = np.where(treated, 0.0, w)[:, None] * col(omega0)
    A1 = (a1 * Y).sum(axis=0) / T
    A0 = (a0 * Y).sum(axis=0) / T
    theta = A1 - A0
    phi = (a1 * Y - a0 * Y - tw[:, None] * theta[None, :]) / T
    if ps is not None:
        C = (np.where(treated, w * g1, 0.0)[:, None] * Y
             - np.where(treated, 0.0, w)[:, None] * col(g0) * Y) / T
        if np.any(tp != 0):
            C = C - (w * tp)[:, None] * theta[None, :] / T
        phi = phi + ps.apply(_tmul(ps.Z, C))
    return theta, A1, A0, phi
