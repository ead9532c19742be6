"""Propensity score models: logistic (exact MLE) or any scikit-learn classifier.

The default is an unpenalised logistic regression fitted by Newton-Raphson on standardised
covariates (the maximum-likelihood estimate R's ``glm(..., family = binomial)`` computes).
On risk-set data the model can add calendar-period and elapsed-duration-band effects,
which turns it into the pooled discrete-time start hazard of METHODS §5.1.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mentor_impact._kernels.logit import R_PROB_EPS, expit, fit_logit_newton
from mentor_impact.exceptions import (
    ConfigurationError,
    ConvergenceWarning,
    DataValidationError,
    NotFittedError,
    SeparationWarning,
)
from mentor_impact.propensity._checks import (
    as_float_matrix,
    check_binary,
    check_weights,
    format_rows,
)

__all__ = ["PropensityModel"]

FloatArray = NDArray[np.float64]


def _is_evaluation_data(obj: object) -> bool:
    return all(hasattr(obj, a) for a in ("X", "treatment", "weight", "covariate_names"))


class PropensityModel:
    """Propensity score model ``e(x) = P(D = 1 | X = x)``.

    Parameters
    ----------
    estimator : scikit-learn classifier or None, default=None
        Any classifier with ``fit(X, y, sample_weight=)`` and ``predict_proba``. It is cloned
        and fitted on the standardised (and, for the hazard, augmented) design matrix without
        the intercept column. ``None`` (default) fits an unpenalised logistic regression by
        Newton-Raphson (exact MLE, as R's ``glm``).
    standardize : bool, default=True
        Centre and scale the covariates before fitting (mean 0, SD 1, computed on the
        training rows). This only affects numerical conditioning for the default model;
        ``coef_`` is always reported on the original covariate scale.
    calendar_width : int or None, default=None
        Risk-set data only: add calendar-period fixed effects, one per block of
        ``calendar_width`` start weeks (e.g. 4 for months, 13 for quarters), the first
        period being the reference. Needs ``EvaluationData.start_week``.
    duration_column : str or None, default=None
        Risk-set data only: name of a covariate or frame column with the elapsed benefit
        duration at the start week; with ``duration_bands`` it becomes band fixed effects.
    duration_bands : sequence of float or None, default=None
        Interior cut points for the elapsed-duration bands (left-closed intervals
        ``[c_k, c_{k+1})``); the first band is the reference.
    max_iter : int, default=100
        Maximum Newton iterations of the default logistic fit.
    tol : float, default=1e-12
        Convergence tolerance on the relative change of the deviance.

    Attributes
    ----------
    ps_ : ndarray of shape (n,)
        Fitted propensity scores on the training rows.
    logit_ : ndarray of shape (n,)
        Fitted linear predictor ``log(ps / (1 - ps))`` (for a generic classifier the logit
        of its clipped probabilities).
    coef_ : ndarray of shape (p,) or None
        Coefficients on the original covariate scale (covariates, then calendar and
        duration dummies); ``None`` for a classifier without ``coef_``.
    intercept_ : float or None
        Intercept on the original covariate scale.
    coef_design_ : ndarray of shape (q,) or None
        Coefficients of ``design_matrix(X)`` (intercept first), so that
        ``design_matrix(X) @ coef_design_ == logit``.
    feature_names_ : tuple of str
        Names of the columns of ``coef_``.
    mean_, scale_ : ndarray of shape (p_x,)
        Centring and scaling of the covariates.
    information_ : ndarray of shape (q, q) or None
        Observed (= expected) Fisher information ``Z' diag(w p (1 - p)) Z`` of the logit on the
        design scale; the bread of a stacked M-estimation sandwich.
    n_iter_ : int
        Newton iterations used.
    converged_ : bool
        Whether the Newton iterations met the tolerance.
    separation_ : bool
        Whether (quasi-)separation was detected (see Notes).
    deviance_ : float
        Weighted binomial deviance at the solution.
    n_features_in_ : int
        Number of covariates.

    Notes
    -----
    * Unpenalised maximum likelihood; identical to R's ``glm(treat ~ ., binomial)`` up to
      R's own convergence tolerance (R stops at ``epsilon = 1e-8`` on the deviance, which
      leaves its coefficients about 1e-8 relative from the exact MLE computed here).
    * ``sample_weight`` enters the log-likelihood as frequency weights
      (``sum_i w_i l_i(beta)``), so integer weights give the same fit as duplicated rows
      (R's ``glm(weights = w)`` with a 0/1 response gives the same coefficients).
    * Separation: as R, a :class:`~mentor_impact.exceptions.SeparationWarning` is issued when
      fitted probabilities are within ``10 * machine epsilon`` of 0 or 1, and also when the
      linear predictor keeps growing across Newton steps. The warning gives the number and
      row positions of the affected rows.
    * Rank-deficient designs (collinear covariates) use the minimum-norm Newton step; the
      fitted probabilities stay unique, the coefficients of aliased columns are not.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2))
    >>> D = (rng.random(500) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    >>> pm = PropensityModel().fit(X, D)
    >>> pm.ps_.shape
    (500,)
    """

    coef_: FloatArray | None
    intercept_: float | None
    coef_design_: FloatArray | None
    information_: FloatArray | None
    estimator_: Any

    def __init__(
        self,
        estimator: Any = None,
        *,
        standardize: bool = True,
        calendar_width: int | None = None,
        duration_column: str | None = None,
        duration_bands: Sequence[float] | None = None,
        max_iter: int = 100,
        tol: float = 1e-12,
    ) -> None:
        self.estimator = estimator
        self.standardize = standardize
        self.calendar_width = calendar_width
        self.duration_column = duration_column
        self.duration_bands = duration_bands
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ helpers
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn protocol).

        Parameters
        ----------
        deep : bool, default=True
            Ignored; present for compatibility.

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        return {
            "estimator": self.estimator,
            "standardize": self.standardize,
            "calendar_width": self.calendar_width,
            "duration_column": self.duration_column,
            "duration_bands": self.duration_bands,
            "max_iter": self.max_iter,
            "tol": self.tol,
        }

    def set_params(self, **params: Any) -> PropensityModel:
        """Set constructor parameters (scikit-learn protocol).

        Parameters
        ----------
        **params
            New parameter values.

        Returns
        -------
        PropensityModel
            ``self``.
        """
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ConfigurationError(
                    f"PropensityModel has no parameter {k!r}; valid: {sorted(valid)}."
                )
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"PropensityModel({args})"

    def _check_params(self) -> None:
        if self.calendar_width is not None and (
            not isinstance(self.calendar_width, (int, np.integer)) or self.calendar_width < 1
        ):
            raise ConfigurationError(
                "The 'calendar_width' parameter of PropensityModel must be a positive int or "
                f"None. Got {self.calendar_width!r} instead."
            )
        if (self.duration_bands is None) != (self.duration_column is None):
            raise ConfigurationError(
                "PropensityModel: 'duration_column' and 'duration_bands' must be given together; "
                f"got duration_column={self.duration_column!r} and "
                f"duration_bands={'None' if self.duration_bands is None else 'a sequence'}. "
                "Hint: pass both or neither."
            )
        if self.duration_bands is not None:
            b = np.asarray(self.duration_bands, dtype=float)
            if b.ndim != 1 or b.size == 0 or np.any(np.diff(b) <= 0):
                raise ConfigurationError(
                    "The 'duration_bands' parameter of PropensityModel must be a non-empty "
                    "increasing sequence of cut points."
                )
        if self.max_iter < 1 or not self.tol > 0:
            raise ConfigurationError(
                "PropensityModel: 'max_iter' must be >= 1 and 'tol' > 0; "
                f"got max_iter={self.max_iter!r}, tol={self.tol!r}."
            )

    def _unpack(
        self, data: Any, D: ArrayLike | None, sample_weight: ArrayLike | None
    ) -> tuple[FloatArray, NDArray[np.int8] | None, FloatArray | None, tuple[str, ...], Any]:
        """Return (X, D, w, names, evaluation_data_or_None)."""
        if _is_evaluation_data(data):
            Xe = as_float_matrix(data.X, "data.X")
            De = check_binary(data.treatment, "data.treatment")
            if sample_weight is None:
                we = np.asarray(data.weight, dtype=np.float64)
            else:
                we = check_weights(sample_weight, Xe.shape[0])
            return Xe, De, we, tuple(data.covariate_names), data
        names: tuple[str, ...]
        if hasattr(data, "columns"):
            names = tuple(str(c) for c in data.columns)
        else:
            names = ()
        X = as_float_matrix(data, "X")
        if not names:
            names = tuple(f"x{j}" for j in range(X.shape[1]))
        Dv: NDArray[np.int8] | None = None
        w: FloatArray | None = None
        if D is not None:
            Dv = check_binary(D, "D")
            if Dv.size != X.shape[0]:
                raise DataValidationError(
                    f"D: expected {X.shape[0]} treatment values (one per row of X); found "
                    f"{Dv.size}. Hint: align X and D."
                )
            w = check_weights(sample_weight, X.shape[0])
        return X, Dv, w, names, None

    def _time_dummies(self, data: Any, n: int) -> tuple[FloatArray, tuple[str, ...]]:
        """Calendar-period and duration-band dummy columns (reference = first level)."""
        cols: list[FloatArray] = []
        names: list[str] = []
        if self.calendar_width is None and self.duration_bands is None:
            return np.empty((n, 0)), ()
        if data is None:
            raise ConfigurationError(
                "PropensityModel: calendar_width / duration_bands need an EvaluationData "
                "(start_week and the duration column); got a plain array. "
                "Hint: pass the EvaluationData to fit/predict."
            )
        if self.calendar_width is not None:
            sw = getattr(data, "start_week", None)
            if sw is None:
                raise DataValidationError(
                    "data.start_week: expected start weeks for calendar_width; found None. "
                    "Hint: build the data with RiskSetDesign or drop calendar_width."
                )
            period = np.asarray(sw, dtype=np.int64) // int(self.calendar_width)
            levels = self.calendar_levels_
            for lev in levels[1:]:
                cols.append((period == lev).astype(np.float64))
                names.append(f"calendar[{int(lev)}]")
        if self.duration_bands is not None:
            dur = np.asarray(data.column(self.duration_column), dtype=np.float64)
            cuts = np.asarray(self.duration_bands, dtype=np.float64)
            band = np.searchsorted(cuts, dur, side="right")
            for b in range(1, cuts.size + 1):
                cols.append((band == b).astype(np.float64))
                names.append(f"duration_band[{b}]")
        return (np.column_stack(cols) if cols else np.empty((n, 0))), tuple(names)

    # ------------------------------------------------------------------ API
    def fit(
        self,
        data: Any,
        D: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> PropensityModel:
        """Fit the propensity model.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (n, p)
            An ``EvaluationData`` (covariates ``X``, ``treatment``, ``weight`` are used) or a
            covariate matrix / DataFrame.
        D : array-like of shape (n,), optional
            Binary treatment; required when ``data`` is a matrix.
        sample_weight : array-like of shape (n,), optional
            Frequency or sampling weights; defaults to ``data.weight`` for EvaluationData
            and to ones otherwise.

        Returns
        -------
        PropensityModel
            The fitted model (``self``).

        Raises
        ------
        DataValidationError
            Missing covariates, non-binary treatment, bad weights, mismatched lengths.
        ConfigurationError
            Invalid parameters.
        """
        self._check_params()
        X, Dv, w, names, evd = self._unpack(data, D, sample_weight)
        if Dv is None:
            raise DataValidationError(
                "D: expected a treatment vector when fitting on a covariate matrix; found None. "
                "Hint: call fit(X, D) or fit(evaluation_data)."
            )
        assert w is not None
        n, p = X.shape
        self.n_features_in_ = p
        self.covariate_names_ = names
        if self.standardize:
            mean = X.mean(axis=0)
            sd = np.sqrt(np.einsum("ij,ij->j", X, X) / n - mean**2)  # one pass, no copy
            if np.any(sd < 1e-6 * np.maximum(np.abs(mean), 1.0)):  # cancellation: recompute
                sd = X.std(axis=0)
            const = sd <= 1e-12 * np.maximum(np.abs(mean), 1.0)
            sd = np.where(const, 1.0, sd)
            mean = np.where(const, 0.0, mean)
        else:
            mean = np.zeros(p)
            sd = np.ones(p)
        self.mean_ = mean
        self.scale_ = sd
        if self.calendar_width is not None and evd is not None and evd.start_week is not None:
            self.calendar_levels_ = np.unique(
                np.asarray(evd.start_week, dtype=np.int64) // int(self.calendar_width)
            )
        else:
            self.calendar_levels_ = np.empty(0, dtype=np.int64)
        T, tnames = self._time_dummies(evd, n)
        self.feature_names_ = names + tnames
        Z = self._assemble(X, T)
        y = Dv.astype(np.float64)
        self.separation_ = False
        if self.estimator is None:
            fit = fit_logit_newton(Z, y, w, tol=self.tol, max_iter=self.max_iter)
            self.coef_design_ = fit.beta
            self.information_ = fit.information
            self.n_iter_ = fit.n_iter
            self.converged_ = fit.converged
            self.deviance_ = fit.deviance
            self.rank_deficient_ = fit.rank_deficient
            ps, eta = fit.p, fit.eta
            self.estimator_ = None
            extreme = ((ps < R_PROB_EPS) | (ps > 1.0 - R_PROB_EPS)) & (w > 0)
            if extreme.any() or fit.diverging:
                self.separation_ = True
                warnings.warn(
                    "PropensityModel: (quasi-)complete separation; fitted probabilities "
                    f"numerically 0 or 1 for {int(extreme.sum())} of {n} rows"
                    + (f" ({format_rows(extreme)})" if extreme.any() else "")
                    + (
                        " and the linear predictor diverges across Newton steps"
                        if fit.diverging
                        else ""
                    )
                    + ". Coefficients may be infinite. Hint: coarsen or drop covariates that "
                    "predict treatment perfectly, or trim/exact-match these units.",
                    SeparationWarning,
                    stacklevel=2,
                )
            elif not fit.converged:
                warnings.warn(
                    f"PropensityModel: Newton-Raphson did not converge in {self.max_iter} "
                    f"iterations (deviance {fit.deviance:.6g}). Hint: raise max_iter or "
                    "check for collinear covariates.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
            self._set_original_scale_coef()
        else:
            from sklearn.base import clone

            est = clone(self.estimator)
            try:
                est.fit(Z[:, 1:], Dv, sample_weight=w)
            except TypeError:
                if not np.allclose(w, 1.0):
                    raise ConfigurationError(
                        "PropensityModel: the estimator does not accept sample_weight but "
                        "the data carry non-unit weights. Hint: use an estimator whose fit "
                        "takes sample_weight."
                    ) from None
                est.fit(Z[:, 1:], Dv)
            self.estimator_ = est
            ps = self._proba_from_estimator(Z)
            with np.errstate(divide="ignore"):
                eta = np.log(ps) - np.log1p(-ps)
            self.information_ = None
            self.n_iter_ = int(np.max(getattr(est, "n_iter_", [0])))
            self.converged_ = True
            self.deviance_ = float(
                -2.0 * np.dot(w, y * np.log(np.clip(ps, 1e-300, 1))
                              + (1 - y) * np.log(np.clip(1 - ps, 1e-300, 1)))
            )
            self.rank_deficient_ = False
            coef = getattr(est, "coef_", None)
            icpt = getattr(est, "intercept_", None)
            if coef is not None and icpt is not None and np.ndim(coef) <= 2:
                self.coef_design_ = np.concatenate(
                    [np.atleast_1d(np.asarray(icpt, float)).ravel()[:1],
                     np.asarray(coef, float).ravel()]
                )
                self._set_original_scale_coef()
            else:
                self.coef_design_ = None
                self.coef_ = None
                self.intercept_ = None
            extreme = (ps <= 0.0) | (ps >= 1.0)
            if extreme.any():
                self.separation_ = True
                warnings.warn(
                    f"PropensityModel: the classifier predicts probabilities of exactly 0 or 1 "
                    f"for {int(extreme.sum())} of {n} rows ({format_rows(extreme)}). "
                    "Hint: calibrate or regularise the classifier, or trim these units.",
                    SeparationWarning,
                    stacklevel=2,
                )
        self.ps_ = ps
        self.logit_ = eta
        self.n_ = n
        return self

    def _assemble(self, X: FloatArray, T: FloatArray) -> FloatArray:
        n = X.shape[0]
        Z = np.empty((n, 1 + X.shape[1] + T.shape[1]))
        Z[:, 0] = 1.0
        np.subtract(X, self.mean_, out=Z[:, 1 : 1 + X.shape[1]])
        Z[:, 1 : 1 + X.shape[1]] /= self.scale_
        Z[:, 1 + X.shape[1] :] = T
        return Z

    def _set_original_scale_coef(self) -> None:
        b = self.coef_design_
        assert b is not None
        p = self.n_features_in_
        bx = b[1 : 1 + p] / self.scale_
        self.intercept_ = float(b[0] - np.dot(bx, self.mean_))
        self.coef_ = np.concatenate([bx, b[1 + p :]])

    def _proba_from_estimator(self, Z: FloatArray) -> FloatArray:
        proba = np.asarray(self.estimator_.predict_proba(Z[:, 1:]))
        classes = list(getattr(self.estimator_, "classes_", [0, 1]))
        return np.asarray(proba[:, classes.index(1)], dtype=np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "ps_"):
            raise NotFittedError(
                "This PropensityModel instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )

    def design_matrix(self, data: Any) -> FloatArray:
        """Return the design matrix the model uses: intercept, standardised X, dummies.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (m, p)
            New rows (EvaluationData is required when time effects are used).

        Returns
        -------
        ndarray of shape (m, q)
            ``[1, (X - mean_) / scale_, calendar dummies, duration-band dummies]``; the
            linear predictor is ``design_matrix(data) @ coef_design_``.
        """
        self._check_fitted()
        X, _, _, _, evd = self._unpack(data, None, None)
        if X.shape[1] != self.n_features_in_:
            raise DataValidationError(
                f"X: expected {self.n_features_in_} covariates (as in fit); found {X.shape[1]}. "
                "Hint: pass the same covariate columns in the same order."
            )
        T, _ = self._time_dummies(evd, X.shape[0])
        return self._assemble(X, T)

    def decision_function(self, data: Any) -> FloatArray:
        """Return the logit of the propensity score for new rows.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (m, p)
            New rows.

        Returns
        -------
        ndarray of shape (m,)
            Linear predictor (log-odds of treatment).
        """
        Z = self.design_matrix(data)
        if self.estimator_ is None:
            assert self.coef_design_ is not None
            return np.asarray(Z @ self.coef_design_)
        ps = self._proba_from_estimator(Z)
        with np.errstate(divide="ignore"):
            return np.asarray(np.log(ps) - np.log1p(-ps))

    def predict_ps(self, data: Any) -> FloatArray:
        """Return propensity scores ``P(D = 1 | X)`` for new rows.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (m, p)
            New rows.

        Returns
        -------
        ndarray of shape (m,)
            Propensity scores.
        """
        Z = self.design_matrix(data)
        if self.estimator_ is None:
            assert self.coef_design_ is not None
            return expit(np.asarray(Z @ self.coef_design_))
        return self._proba_from_estimator(Z)

    def predict_proba(self, data: Any) -> FloatArray:
        """Return class probabilities as scikit-learn does: columns ``[P(D=0), P(D=1)]``.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (m, p)
            New rows.

        Returns
        -------
        ndarray of shape (m, 2)
            Probabilities of control and of treatment.
        """
        ps = self.predict_ps(data)
        return np.column_stack([1.0 - ps, ps])

    def score_contributions(self, data: Any, D: ArrayLike | None = None,
                            sample_weight: ArrayLike | None = None) -> FloatArray:
        """Per-row score of the logit log-likelihood on the design scale.

        Parameters
        ----------
        data : EvaluationData or array-like of shape (m, p)
            Rows (usually the training rows).
        D : array-like of shape (m,), optional
            Treatment (taken from ``data`` for EvaluationData).
        sample_weight : array-like of shape (m,), optional
            Weights (taken from ``data`` for EvaluationData; ones otherwise).

        Returns
        -------
        ndarray of shape (m, q)
            ``w_i (D_i - e(x_i)) z_i``; they sum to ~0 on the training rows and, with
            ``information_`` as bread, give the propensity block of a stacked sandwich.
        """
        X, Dv, w, _, evd = self._unpack(data, D, sample_weight)
        if Dv is None or w is None:
            raise DataValidationError(
                "D: expected a treatment vector; found None. Hint: pass D or EvaluationData."
            )
        Z = self.design_matrix(evd if evd is not None else X)
        ps = self.predict_ps(evd if evd is not None else X)
        return np.asarray(Z * (w * (Dv - ps))[:, None])
