"""Covariance estimators computed from per-row influence functions.

An estimator returns a ``(n, k)`` matrix ``phi`` of *scaled* influence-function values,
scaled so that ``theta_hat - theta ~= phi.sum(axis=0)`` to first order (for a mean,
``phi_i = (y_i - ybar) / n``). The covariance estimators here turn ``phi`` into a ``k x k``
covariance matrix without refitting; :meth:`EffectResults.with_cov` swaps them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mentor_impact.exceptions import ConfigurationError, DataValidationError
from mentor_impact.inference.influence import InfluenceLike, RowInfluence, influence_gram

__all__ = ["IID", "Clustered", "CovarianceEstimator", "cluster_sums", "resolve_cov"]


def cluster_sums(
    phi: npt.NDArray[np.float64], cluster: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], int]:
    """Sum rows of ``phi`` within clusters.

    Parameters
    ----------
    phi : ndarray of shape (n, k)
        Scaled influence-function values.
    cluster : array-like of shape (n,)
        Cluster labels (any hashable numpy dtype).

    Returns
    -------
    sums : ndarray of shape (G, k)
        Per-cluster sums, clusters in sorted label order.
    n_clusters : int
        Number of distinct clusters ``G``.
    """
    cl = np.asarray(cluster)
    if cl.shape[0] != phi.shape[0]:
        raise DataValidationError(
            f"cluster: expected {phi.shape[0]} labels (one per row of the influence function); "
            f"found {cl.shape[0]}. Hint: pass the cluster column of the data the estimator used."
        )
    _, codes = np.unique(cl, return_inverse=True)
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    n = codes.size
    # a sparse (clusters x rows) summing matrix with one entry per column
    summer = sp.csc_matrix((np.ones(n), codes, np.arange(n + 1)), shape=(n_clusters, n))
    sums = np.asarray(summer @ np.asarray(phi, dtype=np.float64), dtype=np.float64)
    return sums, n_clusters


class CovarianceEstimator(ABC):
    """Base class: a rule turning scaled influence functions into a covariance matrix."""

    name: str = "base"

    @abstractmethod
    def cov(
        self,
        phi: InfluenceLike,
        *,
        cluster: npt.ArrayLike | None = None,
        frame: Any = None,
    ) -> npt.NDArray[np.float64]:
        """Return the ``k x k`` covariance of ``theta_hat``.

        Parameters
        ----------
        phi : ndarray or RowInfluence of shape (n, k)
            Scaled influence-function values (a :class:`RowInfluence` is consumed block by
            block, never formed whole).
        cluster : array-like of shape (n,), optional
            Default cluster labels (the person index for risk-set data).
        frame : pandas.DataFrame, optional
            Per-row columns to look up a named clustering variable in.

        Returns
        -------
        ndarray of shape (k, k)
            The covariance matrix.
        """

    def describe(self) -> str:
        """Return a short label for tables, e.g. ``"clustered(person)"``."""
        return self.name

    def grouping(
        self, n: int, *, cluster: npt.ArrayLike | None = None, frame: Any = None
    ) -> tuple[npt.NDArray[np.int64] | None, float]:
        """Return the cluster codes of the rows (None: independent rows) and the factor.

        Estimators that compute several covariances in one pass over their rows use it;
        the covariance is ``factor * sum_g S_g S_g'`` over the clusters ``g``.

        Raises
        ------
        ConfigurationError
            For covariances that are not a (clustered) sum of influence-function outer
            products.
        """
        raise ConfigurationError(
            f"cov: {type(self).__name__} is not a sum over clusters of influence functions. "
            "Hint: use IID() or Clustered(by)."
        )


@dataclass(frozen=True)
class IID(CovarianceEstimator):
    """Heteroskedasticity-robust covariance treating rows as independent.

    ``V = sum_i phi_i phi_i'``. With ``small_sample=True`` the result is multiplied by
    ``n / (n - 1)``.

    Parameters
    ----------
    small_sample : bool, default=False
        Apply the ``n / (n - 1)`` factor.

    Notes
    -----
    For the sample mean this is the plug-in variance ``sum (y_i - ybar)^2 / n^2``, the
    convention of Stata's ``teffects`` and statsmodels' ``TreatmentEffect``.
    """

    small_sample: bool = False
    name: str = "iid"

    def cov(
        self,
        phi: InfluenceLike,
        *,
        cluster: npt.ArrayLike | None = None,
        frame: Any = None,
    ) -> npt.NDArray[np.float64]:
        """Return ``sum_i phi_i phi_i'`` (see class docstring)."""
        return _grouped_cov(self, phi, cluster, frame)

    def grouping(
        self, n: int, *, cluster: npt.ArrayLike | None = None, frame: Any = None
    ) -> tuple[npt.NDArray[np.int64] | None, float]:
        """Return ``(None, factor)``: rows are independent; see :meth:`Clustered.grouping`."""
        return None, (n / (n - 1) if self.small_sample and n > 1 else 1.0)


@dataclass(frozen=True)
class Clustered(CovarianceEstimator):
    """Cluster-robust covariance: influence functions summed within clusters.

    ``V = c * sum_g (sum_{i in g} phi_i)(sum_{i in g} phi_i)'`` with ``c = G / (G - 1)``
    when ``small_sample`` (the default, as Stata and ``sandwich::vcovCL``'s cluster
    adjustment) and ``c = 1`` otherwise.

    Parameters
    ----------
    by : str, default="person"
        Clustering variable. ``"person"`` (or ``"cluster"``) uses the data's cluster column
        (the person index); any other name is looked up in the per-row frame stored on the
        results.
    small_sample : bool, default=True
        Apply the ``G / (G - 1)`` factor.

    Notes
    -----
    Risk-set data repeat a person in many risk sets, as treated and as control; clustering
    by person is the default inference for them (METHODS §6).
    """

    by: str = "person"
    small_sample: bool = True
    name: str = "clustered"

    def cov(
        self,
        phi: InfluenceLike,
        *,
        cluster: npt.ArrayLike | None = None,
        frame: Any = None,
    ) -> npt.NDArray[np.float64]:
        """Return the cluster-robust covariance (see class docstring)."""
        return _grouped_cov(self, phi, cluster, frame)

    def grouping(
        self, n: int, *, cluster: npt.ArrayLike | None = None, frame: Any = None
    ) -> tuple[npt.NDArray[np.int64] | None, float]:
        """Return the cluster codes of the ``n`` rows and the small-sample factor.

        Parameters
        ----------
        n : int
            Rows of the influence function.
        cluster : array-like of shape (n,), optional
            Default cluster labels (used for ``by="person"``).
        frame : pandas.DataFrame, optional
            Per-row columns (for another ``by``).

        Returns
        -------
        codes : ndarray of int of shape (n,)
            Cluster codes ``0 .. G - 1`` in sorted label order.
        factor : float
            ``G / (G - 1)`` when ``small_sample``, else 1.
        """
        if self.by in ("person", "cluster"):
            labels = cluster
        else:
            if frame is None or self.by not in getattr(frame, "columns", ()):
                raise ConfigurationError(
                    f"Clustered(by={self.by!r}): expected a per-row column named {self.by!r} "
                    "in the results' frame; none found. Hint: use by='person' or keep the "
                    "column in EvaluationData.frame."
                )
            labels = np.asarray(frame[self.by])
        if labels is None:
            labels = np.arange(n)
        cl = np.asarray(labels)
        if cl.shape[0] != n:
            raise DataValidationError(
                f"cluster: expected {n} labels (one per row of the influence "
                f"function); found {cl.shape[0]}. Hint: pass the cluster column of the data "
                "the estimator used."
            )
        _, codes = np.unique(cl, return_inverse=True)
        g = int(codes.max()) + 1 if codes.size else 0
        factor = g / (g - 1) if self.small_sample and g > 1 else 1.0
        return codes.astype(np.int64, copy=False).ravel(), factor

    def describe(self) -> str:
        """Return e.g. ``"clustered(person)"``."""
        return f"clustered({self.by})"


def _grouped_cov(
    est: CovarianceEstimator, phi: InfluenceLike, cluster: npt.ArrayLike | None, frame: Any
) -> npt.NDArray[np.float64]:
    """``factor * sum_g S_g S_g'`` over the clusters of ``est.grouping``."""
    phi = _as_influence(phi)
    codes, scale = est.grouping(phi.shape[0], cluster=cluster, frame=frame)
    return influence_gram(phi, codes) * scale


def _as_influence(phi: InfluenceLike) -> InfluenceLike:
    """Pass a :class:`RowInfluence` through; make anything else a 2-D float64 array."""
    if isinstance(phi, RowInfluence):
        return phi
    a = np.asarray(phi, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def resolve_cov(
    cov: CovarianceEstimator | str | None, default: CovarianceEstimator
) -> CovarianceEstimator:
    """Turn a covariance option into an estimator.

    Parameters
    ----------
    cov : CovarianceEstimator, str or None
        ``None`` gives ``default``; strings ``"iid"``, ``"robust"``, ``"clustered"`` and
        ``"person"`` are accepted aliases.
    default : CovarianceEstimator
        The estimator's default.

    Returns
    -------
    CovarianceEstimator
        The estimator to use.
    """
    if cov is None:
        return default
    if isinstance(cov, CovarianceEstimator):
        return cov
    if isinstance(cov, str):
        key = cov.lower()
        if key in ("iid", "robust", "heteroskedastic"):
            return IID()
        if key in ("clustered", "person", "cluster"):
            return Clustered("person")
    raise ConfigurationError(
        f"cov: expected IID(), Clustered(by) or one of 'iid', 'robust', 'clustered'; "
        f"got an object of type {type(cov).__name__}."
    )
