"""Cox proportional hazards regression and the marginal (weighted) hazard ratio.

Reproduces R's ``survival::coxph`` (Efron / Breslow ties, case weights, strata, counting-process
data, model-based and robust / cluster variances, ``basehaz``) with vectorised kernels from
:mod:`mentor_impact._kernels.cox`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from mentor_impact._kernels.cox import (
    aeq_times,
    cox_baseline_increments,
    cox_concordance,
    cox_newton,
    cox_score_residuals,
    prepare_cox,
    take_rows,
    weighted_gram,
)
from mentor_impact.duration._inputs import (
    check_frame,
    check_has_events,
    check_positive_durations,
    covariate_matrix,
    event_indicator,
)
from mentor_impact.duration._regression_results import (
    ModelFrame,
    RegressionResults,
    _positions,
    as_float_column,
    group_codes,
    weights_column,
)
from mentor_impact.exceptions import (
    ConfigurationError,
    ConvergenceWarning,
    DataValidationError,
    SeparationWarning,
)

__all__ = ["CoxPH", "CoxPHResults", "marginal_hazard_ratio"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class CoxPHResults(RegressionResults):
    """:class:`RegressionResults` of a Cox model, plus baseline hazard and predictions.

    Parameters
    ----------
    frame : ModelFrame
        Encoding of the covariates (levels), to encode new data identically.
    means : ndarray of shape (p,)
        R's ``fit$means``: weighted means of numeric covariates, 0 for factor indicators.
    slot_time, slot_stratum : ndarray
        Distinct event times and their stratum codes.
    dh0 : ndarray
        Baseline hazard increments at ``x = 0`` at those times (Efron-adjusted for Efron fits).
    strata_columns : tuple of str
        Strata columns (empty when unstratified).
    strata_labels : pandas.Index or None
        Stratum labels in code order.

    Notes
    -----
    See :class:`CoxPH` for the estimation conventions.
    """

    frame: ModelFrame | None = None
    means: FloatArray = field(default_factory=lambda: np.zeros(0))
    slot_time: FloatArray = field(default_factory=lambda: np.zeros(0))
    slot_stratum: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    dh0: FloatArray = field(default_factory=lambda: np.zeros(0))
    strata_columns: tuple[str, ...] = ()
    strata_labels: pd.Index | None = None

    def baseline_cumulative_hazard(
        self, times: npt.ArrayLike | None = None, *, centered: bool = False
    ) -> pd.DataFrame:
        """Baseline cumulative hazard ``H0(t)`` (R's ``basehaz``).

        Parameters
        ----------
        times : array-like, optional
            Evaluate the right-continuous step function at these times; default: at each
            distinct event time.
        centered : bool, default False
            ``False``: at ``x = 0``.  ``True``: at ``x = means`` (numeric covariates at their
            mean, factor indicators at 0, i.e. the reference level), as survival >= 3.0.

        Returns
        -------
        pandas.DataFrame
            Columns ``time, hazard`` (and ``strata`` when stratified).
        """
        scale = float(np.exp(self.means @ self.coef)) if centered else 1.0
        rows = []
        n_strata = 1 if self.strata_labels is None else len(self.strata_labels)
        for s in range(n_strata):
            sel = self.slot_stratum == s
            t = self.slot_time[sel]
            h = np.cumsum(self.dh0[sel]) * scale
            if times is None:
                tt, hh = t, h
            else:
                tt = np.asarray(times, dtype=float)
                hh = np.concatenate(([0.0], h))[np.searchsorted(t, tt, side="right")]
            part = pd.DataFrame({"time": tt, "hazard": hh})
            if self.strata_labels is not None:
                part["strata"] = [self.strata_labels[s]] * len(part)
            rows.append(part)
        return pd.concat(rows, ignore_index=True)

    def _strata_of(self, df: pd.DataFrame) -> npt.NDArray[np.int64]:
        if self.strata_labels is None:
            return np.zeros(len(df), dtype=np.int64)
        cols = list(self.strata_columns)
        key = pd.MultiIndex.from_frame(df[cols]) if len(cols) > 1 else pd.Index(df[cols[0]])
        codes = np.asarray(self.strata_labels.get_indexer(key), dtype=np.int64)
        bad = codes < 0
        if bad.any():
            raise DataValidationError(
                f"df: {int(bad.sum())} rows belong to strata not seen in the fit "
                f"({_positions(bad)})."
            )
        return codes

    def predict_linear(self, df: pd.DataFrame) -> FloatArray:
        """Linear predictor ``x' beta`` (uncentred) for the rows of ``df``.

        Parameters
        ----------
        df : pandas.DataFrame
            Holds the covariate columns.

        Returns
        -------
        ndarray of shape (n,)
            The linear predictor.
        """
        assert self.frame is not None
        return np.asarray(self.frame.transform(df) @ self.coef)

    def predict_cumulative_hazard(self, df: pd.DataFrame, times: npt.ArrayLike) -> pd.DataFrame:
        """Cumulative hazard ``H0_s(t) exp(x' beta)`` per row (columns) at ``times`` (rows).

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and strata columns when stratified).
        times : array-like
            Evaluation times.

        Returns
        -------
        pandas.DataFrame
            Shape ``(len(times), len(df))``, indexed by time.
        """
        tt = np.asarray(times, dtype=float)
        risk = np.exp(self.predict_linear(df))
        strata = self._strata_of(df)
        n_strata = 1 if self.strata_labels is None else len(self.strata_labels)
        h = np.zeros((tt.size, n_strata))
        for s in range(n_strata):
            sel = self.slot_stratum == s
            cum = np.concatenate(([0.0], np.cumsum(self.dh0[sel])))  # stratum may lack events
            idx = np.searchsorted(self.slot_time[sel], tt, side="right")
            h[:, s] = cum[idx]
        return pd.DataFrame(h[:, strata] * risk[None, :], index=pd.Index(tt, name="time"))

    def predict_survival(self, df: pd.DataFrame, times: npt.ArrayLike) -> pd.DataFrame:
        """Predicted survival ``exp(-H0_s(t) exp(x' beta))`` (R's ``survfit.coxph`` curve).

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and strata columns when stratified).
        times : array-like
            Evaluation times.

        Returns
        -------
        pandas.DataFrame
            Shape ``(len(times), len(df))``, indexed by time.
        """
        h = self.predict_cumulative_hazard(df, times)
        return pd.DataFrame(np.exp(-h.to_numpy()), index=h.index, columns=h.columns)

    def adjusted_survival(
        self,
        df: pd.DataFrame,
        *,
        column: str,
        values: Sequence[Any],
        times: npt.ArrayLike,
        weights: str | None = None,
    ) -> pd.DataFrame:
        """G-formula (direct-adjusted) survival curves: set ``column`` to each value for all rows.

        Parameters
        ----------
        df : pandas.DataFrame
            Standardisation population.
        column : str
            Covariate to set (e.g. the treatment).
        values : sequence
            Values to set it to.
        times : array-like
            Evaluation times.
        weights : str, optional
            Column of weights for the population average.

        Returns
        -------
        pandas.DataFrame
            Index ``time``, one column per value: ``sum_i w_i S(t | x_i, column = v) / sum w``.

        Notes
        -----
        This is the marginal (standardised) survival of Makuch (1982) / ``adjustedCurves``
        ``method = "direct"``; no standard errors are given (use a person-level bootstrap).
        """
        w = weights_column(df, weights)
        out = {}
        for v in values:
            d2 = df.copy()
            d2[column] = v
            s = self.predict_survival(d2, times).to_numpy()
            out[v] = s @ w / w.sum()
        return pd.DataFrame(out, index=pd.Index(np.asarray(times, dtype=float), name="time"))


class CoxPH:
    """Cox proportional hazards model (``survival::coxph`` conventions).

    Parameters
    ----------
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times.
    max_iter : int, default 20
        Newton-Raphson iterations (R's ``iter.max``).
    eps : float, default 1e-9
        Convergence: ``|1 - loglik_old / loglik_new| <= eps`` (R's ``eps``).
    timefix : bool, default True
        Merge times closer than ``sqrt(machine eps)`` (relative) as R's ``aeqSurv``.
    frequency_weights : bool, default False
        Treat (integer) weights as frequency weights also in Efron's tie correction, so that a
        row of weight ``k`` equals ``k`` duplicated rows.  Default ``False`` follows R and
        lifelines (the correction counts tied event *rows* and uses their mean weight).

    See Also
    --------
    marginal_hazard_ratio : a weighted one-covariate Cox model with a robust SE.

    Notes
    -----
    Conventions (R ``survival`` 3.5):

    - Covariates are centred at their weighted means internally (coefficients unaffected).
    - Newton-Raphson from ``beta = 0`` with step halving when the log-likelihood decreases;
      the iteration count matches R's ``fit$iter``.  If the final Newton step is still
      large relative to a coefficient (``|step| > eps`` and ``> sqrt(eps) |beta|``), a
      :class:`~mentor_impact.exceptions.SeparationWarning` reports monotone likelihood (an
      infinite coefficient), as R's "Loglik converged before variable ..." warning.
    - Efron ties with case weights: the ``r``-th of ``d`` tied deaths uses the denominator
      ``S0 - (r/d) S0_deaths`` and the mean death weight (R's ``coxfit6``/``agfit4``).
    - Case weights: with Breslow ties (or no tied event times) integer weights give exactly
      the fit of duplicated rows.  With Efron ties R counts tied event rows, so a weight-2
      death is one event in the correction, not two; ``frequency_weights=True`` counts
      weights instead (then equal to duplicated rows).  The model-based variance is the
      inverse weighted information; with sampling / IPW weights use ``robust=True`` or
      ``cluster``.
    - Robust variance (``robust=True``, or any ``cluster``): ``D'D`` with ``D`` the dfbeta
      residuals ``w_i r_i V`` summed within cluster (Lin & Wei 1989); no small-sample
      factor (R, unlike the project's ``Clustered`` default with ``G/(G-1)``).
    - ``entry`` gives counting-process data ``(entry, duration]``: delayed entry and
      time-varying covariates; rows are at risk at event times ``t`` with
      ``entry < t <= duration``.
    - Strata: separate baseline hazards, common coefficients.
    - Baseline hazard: Breslow increments ``dw / S0``; for Efron fits the Efron-adjusted
      increment ``sum_r (dw/d) / (S0 - (r/d) S0_deaths)`` (``survfit.coxph``, ``ctype = 2``).
    - Concordance: Harrell's C as ``survival::concordance`` (pairs within strata; ties in
      the risk score count 1/2; tied event times are not comparable); ``concordance_se`` is
      R's infinitesimal-jackknife standard error.
    """

    def __init__(
        self,
        *,
        ties: str = "efron",
        max_iter: int = 20,
        eps: float = 1e-9,
        timefix: bool = True,
        frequency_weights: bool = False,
    ) -> None:
        self.ties = ties
        self.max_iter = max_iter
        self.eps = eps
        self.timefix = timefix
        self.frequency_weights = frequency_weights

    def __repr__(self) -> str:
        extra = ", frequency_weights=True" if self.frequency_weights else ""
        return f"CoxPH(ties={self.ties!r}{extra})"

    def _check_params(self) -> None:
        if self.ties not in ("efron", "breslow"):
            raise ConfigurationError(
                f"ties: expected 'efron' or 'breslow'; found {self.ties!r}. Hint: R's 'exact' "
                "is not implemented."
            )
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 0):
            raise ConfigurationError(f"max_iter: expected an integer >= 0; found {self.max_iter}.")
        if not (0 < float(self.eps) < 1):
            raise ConfigurationError(f"eps: expected a number in (0, 1); found {self.eps}.")

    def fit(
        self,
        df: pd.DataFrame,
        *,
        duration: str,
        event: str,
        covariates: Sequence[str],
        weights: str | None = None,
        strata: str | Sequence[str] | None = None,
        cluster: str | None = None,
        entry: str | None = None,
        robust: bool = False,
        reference_levels: Mapping[str, Any] | None = None,
    ) -> CoxPHResults:
        """Fit the model on a DataFrame by column roles.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per subject, or per counting-process interval when ``entry`` is given.
        duration : str
            Follow-up time (the ``stop`` of the interval); must be >= 0 (R convention: zero
            times are kept and ordered first; negative ones raise), or > entry.
        event : str
            1 = event at ``duration``, 0 = censored (booleans allowed).
        covariates : sequence of str
            Covariate columns; categorical / string columns get treatment contrasts named
            like R (``"celltypesmallcell"``) with the first level (or ``reference_levels``)
            as reference.
        weights : str, optional
            Case (frequency / sampling) weights, strictly positive.
        strata : str or sequence of str, optional
            Strata columns.
        cluster : str, optional
            Cluster ids (e.g. person) for the cluster-robust variance.
        entry : str, optional
            Start of the counting-process interval (delayed entry).
        robust : bool, default False
            Robust (sandwich) variance, each row its own cluster when ``cluster`` is None.
        reference_levels : mapping, optional
            ``{column: level}`` reference levels of categorical covariates.

        Returns
        -------
        CoxPHResults
            Coefficients, variances, hazard ratios, baseline hazard, concordance.

        Raises
        ------
        DataValidationError
            Missing values, negative durations, ``duration <= entry``, event codes other
            than 0/1, no events, constant or collinear covariates, non-positive weights.
        ConfigurationError
            Invalid options.
        """
        self._check_params()
        check_frame(df)
        stop = as_float_column(df, duration, "duration")
        ev = event_indicator(df, event) == 1
        start = None if entry is None else as_float_column(df, entry, "entry")
        if start is None:
            # zero times are allowed, as in R's coxph (an event in the week of the start);
            # negative ones are data errors here (R would accept them as well)
            check_positive_durations(
                stop, "check the duration column; intervals need an entry column.",
                allow_zero=True,
            )
        else:
            bad = stop <= start
            if bad.any():
                raise DataValidationError(
                    f"duration: expected duration > entry (intervals (entry, duration]); found "
                    f"{int(bad.sum())} rows with duration <= entry ({_positions(bad)}). "
                    "Hint: drop empty intervals or swap the columns."
                )
        w = weights_column(df, weights)
        if self.frequency_weights:
            frac = w != np.round(w)
            if frac.any():
                raise DataValidationError(
                    f"weights: expected integer weights with frequency_weights=True; found "
                    f"{int(frac.sum())} non-integer ({_positions(frac)}). Hint: use "
                    "frequency_weights=False for sampling / IPW weights."
                )
        check_has_events(ev, len(df))
        x, frame = covariate_matrix(df, covariates, w, reference_levels)
        strata_codes = None
        strata_labels = None
        strata_cols: tuple[str, ...] = ()
        if strata is not None:
            strata_cols = (strata,) if isinstance(strata, str) else tuple(strata)
            strata_codes = group_codes(df, list(strata_cols), "strata")
            sub = df[list(strata_cols)]
            if len(strata_cols) == 1:
                strata_labels = pd.Index(pd.unique(sub.iloc[:, 0])).sort_values()
            else:
                strata_labels = pd.MultiIndex.from_frame(sub.drop_duplicates()).sort_values()
        clus = None if cluster is None else group_codes(df, cluster, "cluster")
        if self.timefix:
            tt = aeq_times(stop if start is None else np.concatenate([stop, start]))
            stop = tt[: len(stop)]
            start = None if start is None else tt[len(stop) :]
        res = fit_cox_arrays(
            x,
            stop,
            ev,
            w,
            start=start,
            strata=strata_codes,
            cluster=clus,
            robust=robust,
            ties=self.ties,
            max_iter=self.max_iter,
            eps=self.eps,
            names=frame.names,
            factor_columns=frame.factor_columns,
            frequency_ties=self.frequency_weights,
        )
        return CoxPHResults(
            **res["base"],
            model=repr(self),
            config={
                "ties": self.ties,
                "max_iter": self.max_iter,
                "eps": self.eps,
                "timefix": self.timefix,
                "frequency_weights": self.frequency_weights,
                "duration": duration,
                "event": event,
                "covariates": list(covariates),
                "weights": weights,
                "strata": list(strata_cols),
                "cluster": cluster,
                "entry": entry,
                "robust": robust,
            },
            frame=frame,
            means=res["means"],
            slot_time=res["slot_time"],
            slot_stratum=res["slot_stratum"],
            dh0=res["dh0"],
            strata_columns=strata_cols,
            strata_labels=strata_labels,
        )


class _LazyConcordance:
    """Picklable deferred concordance computation (results stay picklable)."""

    def __init__(self, eta: FloatArray, setup: Any) -> None:
        self.eta = eta
        self.setup = setup

    def __call__(self) -> dict[str, float]:
        return cox_concordance(self.eta, self.setup)


def _dense_codes(codes: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], int]:
    """Map cluster ids to 0..G-1 (O(n) for small non-negative integers, else via unique)."""
    if np.issubdtype(codes.dtype, np.integer) and codes.size and codes.min() >= 0:
        if int(codes.max()) < 4 * codes.size + 1024:
            present = np.bincount(codes) > 0
            remap = np.cumsum(present) - 1
            return remap[codes].astype(np.int64), int(present.sum())
    uniq, inv = np.unique(codes, return_inverse=True)
    return inv.ravel().astype(np.int64), int(uniq.size)


def fit_cox_arrays(
    x: FloatArray,
    stop: FloatArray,
    event: npt.NDArray[np.bool_],
    w: FloatArray,
    *,
    start: FloatArray | None = None,
    strata: npt.NDArray[np.int64] | None = None,
    cluster: npt.NDArray[np.int64] | None = None,
    robust: bool = False,
    ties: str = "efron",
    max_iter: int = 20,
    eps: float = 1e-9,
    names: Sequence[str] = (),
    factor_columns: npt.NDArray[np.bool_] | None = None,
    frequency_ties: bool = False,
) -> dict[str, Any]:
    """Core Cox fit on validated arrays (no checks); reused by the bootstrap and Fine-Gray."""
    n, p = x.shape
    mean = np.einsum("i,ij->j", w, x) / w.sum() if p else np.zeros(0)
    setup = prepare_cox(stop, event, w, start=start, strata=strata, frequency_ties=frequency_ties)
    xs = take_rows(x, setup.order, mean)  # centred, sorted by last event slot
    nr = cox_newton(xs, setup, ties, max_iter=max_iter, eps=eps)
    beta = nr.beta
    try:
        v_model = np.linalg.inv(nr.info) if p else np.zeros((0, 0))
    except np.linalg.LinAlgError:
        v_model = np.linalg.pinv(nr.info)
    names = tuple(names) if names else tuple(f"x{j}" for j in range(p))
    if not nr.converged:
        warnings.warn(
            f"CoxPH: ran out of iterations ({nr.iterations}) and did not converge; results may "
            "be unreliable. Hint: raise max_iter or check for separation.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if p:
        step = np.abs(v_model @ nr.score)
        inf = (step > eps) & (step > np.sqrt(eps) * np.abs(beta))
        if inf.any():
            bad = [names[j] for j in np.flatnonzero(inf)]
            warnings.warn(
                f"CoxPH: monotone likelihood: the log-likelihood converged before {len(bad)} "
                f"coefficient(s) {bad}; they may be infinite (an event pattern is perfectly "
                "predicted). Hint: merge sparse levels or use a penalised model.",
                SeparationWarning,
                stacklevel=3,
            )
    cov_robust = None
    cov_type = "model"
    n_clusters = None
    if (robust or cluster is not None) and p:
        resid = cox_score_residuals(beta, xs, setup, ties)
        resid *= setup.weight[:, None]
        if cluster is not None:
            inv, n_clusters = _dense_codes(np.asarray(cluster)[setup.order])
            agg = sp.csr_matrix((np.ones(n), (inv, np.arange(n))), shape=(n_clusters, n))
            resid = np.asarray(agg @ resid)
            cov_type = "clustered"
        else:
            cov_type = "robust"
        # D'D with D = resid V the dfbeta residuals: V (R'R) V, R'R by chunked syrk
        meat = weighted_gram(resid, np.ones(resid.shape[0]))
        cov_robust = v_model @ meat @ v_model
    cov = cov_robust if cov_robust is not None else v_model
    score_test = float(nr.score0 @ np.linalg.solve(nr.info0, nr.score0)) if p else 0.0
    dh0, _ = cox_baseline_increments(beta, xs, setup, ties)
    dh0 = dh0 * float(np.exp(-mean @ beta)) if p else dh0
    fac = np.zeros(p, bool) if factor_columns is None else factor_columns
    r_means = np.where(fac, 0.0, mean) if p else mean
    eta_c = np.einsum("ij,j->i", xs, beta)
    _conc = _LazyConcordance(eta_c, setup)

    base = {
        "names": names,
        "coef": beta,
        "cov": cov,
        "cov_model": v_model,
        "cov_robust": cov_robust,
        "cov_type": cov_type,
        "loglik": nr.loglik,
        "loglik_null": nr.loglik_null,
        "n": int(n),
        "n_events": float(np.sum(w[event])),
        "iterations": nr.iterations,
        "converged": nr.converged,
        "score_test": score_test,
        "exp_label": "hazard_ratio",
        "n_clusters": n_clusters,
        "_lazy": {"concordance": _conc},
        "extra": {
            "step_halvings": nr.halvings,
            "n_event_times": int(setup.n_slots),
            "max_abs_score": float(np.max(np.abs(nr.score))) if p else 0.0,
        },
    }
    return {
        "base": base,
        "means": r_means,
        "slot_time": setup.slot_time,
        "slot_stratum": setup.slot_stratum,
        "dh0": dh0,
    }


def marginal_hazard_ratio(
    data: Any,
    *,
    duration: str,
    event: str | None = None,
    treatment: str | None = None,
    weights: str | npt.ArrayLike | None = None,
    cluster: str | npt.ArrayLike | None = None,
    strata: str | None = None,
    ties: str = "efron",
) -> RegressionResults:
    """Marginal hazard ratio of treatment from a weighted Cox model with a robust SE.

    Fits ``coxph(Surv(duration, event) ~ treatment, weights = w, cluster = id)``: the
    marginal HR in the population the matching or IPW weights target (Austin 2013).

    Parameters
    ----------
    data : pandas.DataFrame or EvaluationData
        Either a flat table (then ``event`` and ``treatment`` name columns) or an
        ``EvaluationData`` whose ``durations[duration]`` holds time and event (``event > 0``
        counts as the event) and whose treatment, weight and cluster (person) are used by
        default.
    duration : str
        Duration column, or the duration outcome name of an ``EvaluationData``.
    event : str, optional
        Event column (DataFrame input).
    treatment : str, optional
        Treatment column (DataFrame input; 0/1).
    weights : str or array-like, optional
        Matching / IPW weights (column name or array aligned with the rows).
    cluster : str or array-like, optional
        Cluster ids (persons); default the ``EvaluationData`` cluster, else each row its own.
    strata : str, optional
        Strata column (e.g. matched sets) for DataFrame input.
    ties : {"efron", "breslow"}, default "efron"
        Tie handling.

    Returns
    -------
    RegressionResults
        One coefficient named after the treatment; ``exp_coef`` is the marginal HR and the
        covariance is the cluster-robust (or row-robust) sandwich ``D'D`` (R convention, no
        small-sample factor).

    Notes
    -----
    The robust SE ignores estimation of the propensity score (conservative for the ATE,
    either direction for the ATT); prefer a person-level bootstrap for final inference.
    """
    from mentor_impact.design.evaluation_data import EvaluationData

    w_arr: Any
    c_arr: Any
    if isinstance(data, EvaluationData):
        dur = data.duration(duration)
        df = pd.DataFrame(
            {
                "time": dur.time,
                "event": (np.asarray(dur.event) > 0).astype(int),
                "treatment": np.asarray(data.treatment, dtype=float),
            }
        )
        w_arr = np.asarray(data.weight, float) if weights is None else weights
        c_arr = np.asarray(data.cluster) if cluster is None else cluster
        tname = "treatment"
        dcol, ecol = "time", "event"
    else:
        if event is None or treatment is None:
            raise ConfigurationError(
                "marginal_hazard_ratio: expected event= and treatment= column names for "
                "DataFrame input."
            )
        df = data.copy()
        w_arr, c_arr, tname, dcol, ecol = weights, cluster, treatment, duration, event
    wcol = None
    if w_arr is not None:
        if isinstance(w_arr, str):
            wcol = w_arr
        else:
            df["__w"] = np.asarray(w_arr, dtype=float)
            wcol = "__w"
    ccol = None
    if c_arr is not None:
        if isinstance(c_arr, str):
            ccol = c_arr
        else:
            df["__cluster"] = np.asarray(c_arr)
            ccol = "__cluster"
    trt = as_float_column(df, tname, "treatment")
    bad = ~np.isin(trt, [0.0, 1.0])
    if bad.any():
        raise DataValidationError(
            f"treatment: expected 0/1; found {int(bad.sum())} other values ({_positions(bad)})."
        )
    res = CoxPH(ties=ties).fit(
        df,
        duration=dcol,
        event=ecol,
        covariates=[tname],
        weights=wcol,
        strata=strata,
        cluster=ccol,
        robust=True,
    )
    return res
