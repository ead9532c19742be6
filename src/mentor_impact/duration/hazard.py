"""Hazard regressions on aggregated data: piecewise-constant exponential and discrete time.

Both models are GLMs on a person-period table.  Because the likelihood only depends on the
sums of events and exposure (or at-risk counts) per (covariate pattern, baseline level), the
table is built directly in that aggregated form from one row per subject (or interval): each
row is expanded only to the baseline levels it is at risk in, covariates are never
replicated, and the level dummies are never built (blocked IRLS,
:func:`mentor_impact._kernels.glm.glm_fit_blocked`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact._kernels.glm import BlockedGLMFit, glm_fit_blocked, glm_loglik
from mentor_impact._kernels.glm import _link as _link_eval
from mentor_impact.duration._inputs import common_inputs
from mentor_impact.duration._regression_results import (
    RegressionResults,
    _positions,
)
from mentor_impact.exceptions import (
    ConfigurationError,
    ConvergenceWarning,
    DataValidationError,
    SeparationWarning,
)
from mentor_impact.inference.covariance import cluster_sums

__all__ = ["DiscreteTimeHazard", "PiecewiseExponential"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def covariate_patterns(x: FloatArray) -> tuple[IntArray, IntArray]:
    """Distinct rows of ``x``: (first row of each pattern, pattern index of every row).

    Aggregation is only an optimisation: when an evenly spaced sample shows mostly distinct
    rows (continuous covariates), every row is its own pattern and the sort is skipped.
    """
    n, p = x.shape
    if p == 0:
        return np.zeros(1, np.int64), np.zeros(n, np.int64)
    xc = np.ascontiguousarray(x + 0.0)  # -0.0 -> 0.0
    view = xc.view(np.dtype((np.void, xc.dtype.itemsize * p))).ravel()
    if n > 4000:
        sample = view[np.linspace(0, n - 1, 2000).astype(np.int64)]
        if np.unique(sample).size > 1000:
            rows = np.arange(n, dtype=np.int64)
            return rows, rows
    _, first, inv = np.unique(view, return_index=True, return_inverse=True)
    return first.astype(np.int64), inv.astype(np.int64).ravel()


def _sandwich(
    scores: FloatArray, bread: FloatArray, cluster: IntArray | None
) -> tuple[FloatArray, int | None]:
    """``bread (S'S) bread`` with scores summed within clusters (no small-sample factor)."""
    n_cl = None
    if cluster is not None:
        scores, n_cl = cluster_sums(scores, cluster)
    from mentor_impact._kernels.cox import weighted_gram

    meat = weighted_gram(np.ascontiguousarray(scores), np.ones(scores.shape[0]))
    return bread @ meat @ bread, n_cl


def _poisson_fit_r(
    cell_int: IntArray,
    cell_pat: IntArray,
    x_pat: FloatArray,
    y: FloatArray,
    expo: FloatArray,
    n_rows: FloatArray,
    t_log: FloatArray,
    c_ev: float,
    n_int: int,
    tol: float,
    max_iter: int,
) -> BlockedGLMFit:
    """R's ``glm.fit`` path for the split Poisson data, computed on aggregated cells.

    Cell sums: events ``y``, exposure ``expo``, split rows ``n_rows``, ``t_log = sum w (y +
    0.1) log e``; ``c_ev = sum_events w log e_own``.  The split-data deviance is
    ``2 (-sum_c y_c lin_c - c_ev - sum y + sum mu)``; the first step uses R's
    ``mustart = y + 0.1`` on every split row.
    """
    y_tot = float(y.sum())

    def split_dev(lin: FloatArray, mu: FloatArray) -> float:
        return float(2.0 * (-(y @ lin) - c_ev - y_tot + mu.sum()))

    sw = y + 0.1 * n_rows
    swz = 1.1 * np.log(1.1) * y + 0.1 * np.log(0.1) * (n_rows - y) - t_log - 0.1 * n_rows
    return glm_fit_blocked(
        cell_int,
        cell_pat,
        x_pat,
        y,
        np.ones(y.size),
        n_levels=n_int,
        family="poisson",
        offset=np.log(expo),
        deviance=split_dev,
        first=(sw, swz),
        max_iter=max_iter,
        tol=tol,
    )


class PiecewiseExponential:
    """Piecewise-constant exponential (proportional hazards) model.

    Equivalent to R's ``survSplit(..., cut = cuts)`` followed by
    ``glm(status ~ factor(interval) + x + offset(log(exposure)), family = poisson)``, fitted
    on exposure aggregated by (covariate pattern, interval).

    Parameters
    ----------
    cuts : sequence of float
        Interior cut points ``c_1 < ... < c_K`` (> 0).  Intervals ``(0, c_1], (c_1, c_2], ...,
        (c_K, inf)`` are numbered ``1..K+1`` as ``survSplit``'s ``episode``.
    max_iter : int, default 25
        IRLS iterations (R's ``glm.control(maxit = 25)``).
    tol : float, default 1e-8
        Relative deviance change for convergence (R's ``epsilon``).

    Notes
    -----
    - The IRLS iterations are R's ``glm.fit`` on the split data, reproduced exactly on the
      aggregated cells: starting values ``mu = y + 0.1`` per split row, convergence when
      ``|dev - dev_old| / (|dev| + 0.1) < tol`` on the split-data deviance, and the
      covariance from the working weights of the last iteration (one step behind the
      returned coefficients).  So coefficients and SEs agree with R to rounding; lower
      ``tol`` to get closer to the exact MLE.
    - Coefficients are named like R: ``"(Intercept)"``, ``"factor(interval)2"``, ...,
      then the covariates (``"celltypesmallcell"``).  ``exp(coef)`` of covariates are hazard
      (rate) ratios; the intercept is the log hazard of interval 1 at ``x = 0``.
    - A subject's event at a time equal to a cut point falls in the interval that ends there.
    - Log-likelihood and deviance are those of R's split (person-interval, 0/1) data, so they
      match ``logLik(fit)`` and ``deviance(fit)``: ``deviance = -2 loglik - 2 sum(w y)``.
    - Weights are case weights (frequency weights: duplicating rows gives the same fit).
      ``robust=True`` / ``cluster`` give the sandwich ``A^-1 (S'S) A^-1`` with per-subject
      scores summed within clusters, no small-sample factor.
    - ``entry`` gives delayed entry (exposure counted from ``entry``).
    """

    def __init__(self, *, cuts: Sequence[float], max_iter: int = 25, tol: float = 1e-8) -> None:
        self.cuts = cuts
        self.max_iter = max_iter
        self.tol = tol

    def __repr__(self) -> str:
        return f"PiecewiseExponential(cuts={list(np.asarray(self.cuts, dtype=float))})"

    def _check_cuts(self) -> FloatArray:
        c = np.asarray(self.cuts, dtype=float).ravel()
        if c.size and (not np.all(np.isfinite(c)) or np.any(c <= 0) or np.any(np.diff(c) <= 0)):
            raise ConfigurationError(
                f"cuts: expected strictly increasing finite positive cut points; found {c.size} "
                "values that are not. Hint: e.g. cuts=[13, 26, 52]."
            )
        return c

    def fit(
        self,
        df: pd.DataFrame,
        *,
        duration: str,
        event: str,
        covariates: Sequence[str],
        weights: str | None = None,
        strata: str | None = None,
        cluster: str | None = None,
        entry: str | None = None,
        robust: bool = False,
        reference_levels: Mapping[str, Any] | None = None,
    ) -> RegressionResults:
        """Fit the model.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per subject (or counting-process interval with ``entry``).
        duration, event : str
            Follow-up time (> 0) and event indicator (0/1).
        covariates : sequence of str
            Covariates (categoricals get treatment contrasts named like R).
        weights : str, optional
            Case weights (> 0).
        strata : None
            Not supported (use a categorical covariate); must be None.
        cluster : str, optional
            Cluster ids for the cluster-robust variance.
        entry : str, optional
            Delayed entry time.
        robust : bool, default False
            Robust (sandwich) variance.
        reference_levels : mapping, optional
            Reference levels of categorical covariates.

        Returns
        -------
        RegressionResults
            Coefficients with ``exp_label = "rate_ratio"``; ``extra`` holds ``deviance``,
            ``events_by_interval`` and ``exposure_by_interval``.

        Raises
        ------
        DataValidationError
            Bad durations, event codes, missing values, collinear covariates, or an interval
            with no exposure.
        """
        cuts = self._check_cuts()
        if strata is not None:
            raise ConfigurationError(
                "strata: not supported by PiecewiseExponential; add the column as a categorical "
                "covariate (or interact it with the intervals)."
            )
        stop, ev, start, w, x, frame, clus = common_inputs(
            df, duration, event, covariates, weights, entry, cluster, reference_levels
        )
        n = stop.size
        bounds = np.concatenate(([0.0], cuts, [np.inf]))
        n_int = bounds.size - 1
        first, pat = covariate_patterns(x)
        n_pat = first.size
        # exposure per (row, interval) is computed interval by interval, aggregated at once
        event_int = np.searchsorted(bounds, stop, side="left") - 1  # c_{k-1} < t <= c_k
        expo = np.zeros(n_pat * n_int)
        events = np.zeros(n_pat * n_int)
        n_rows = np.zeros(n_pat * n_int)  # weighted split rows per cell (for R's first step)
        t_log = np.zeros(n_pat * n_int)  # sum w (y + 0.1) log(e) per cell
        evw = (ev == 1).astype(float) * w
        for k in range(n_int):
            e_k = np.clip(np.minimum(stop, bounds[k + 1]) - np.maximum(start, bounds[k]), 0, None)
            key = pat * n_int + k
            pos = e_k > 0
            y_k = (ev == 1) & (event_int == k)
            expo += np.bincount(key, weights=w * e_k, minlength=n_pat * n_int)
            events += np.bincount(key, weights=evw * y_k, minlength=n_pat * n_int)
            n_rows += np.bincount(key, weights=w * pos, minlength=n_pat * n_int)
            t_log += np.bincount(
                key[pos],
                weights=(w * (y_k + 0.1))[pos] * np.log(e_k[pos]),
                minlength=n_pat * n_int,
            )
        expo_int = expo.reshape(n_pat, n_int).sum(axis=0)
        ev_int = events.reshape(n_pat, n_int).sum(axis=0)
        empty = expo_int <= 0
        if empty.any():
            raise DataValidationError(
                f"cuts: expected exposure in every interval; {int(empty.sum())} interval(s) "
                f"(numbers {[int(i) + 1 for i in np.flatnonzero(empty)]}) have none. Hint: "
                "remove cut points beyond the follow-up."
            )
        keep = expo > 0
        cell_pat = np.repeat(np.arange(n_pat), n_int)[keep]
        cell_int = np.tile(np.arange(n_int), n_pat)[keep]
        names = ("(Intercept)", *tuple(f"factor(interval){k}" for k in range(2, n_int + 1)))
        names += frame.names
        y = events[keep]
        is_ev0 = ev == 1
        e_own0 = stop[is_ev0] - np.maximum(start[is_ev0], bounds[event_int[is_ev0]])
        c_ev = float(np.sum(w[is_ev0] * np.log(e_own0)))
        fit = _poisson_fit_r(
            cell_int,
            cell_pat,
            x[first],
            y,
            expo[keep],
            n_rows[keep],
            t_log[keep],
            c_ev,
            n_int,
            self.tol,
            self.max_iter,
        )
        _warn_glm(fit.converged, fit.iterations, ev_int, "interval")
        # R's split-data log-likelihood: events contribute log(mu) with their own exposure
        lin = x @ fit.beta[n_int:] + fit.beta[0]
        alpha = np.concatenate(([0.0], fit.beta[1:n_int]))
        is_ev = ev == 1
        e_own = stop[is_ev] - np.maximum(start[is_ev], bounds[event_int[is_ev]])
        log_mu_ev = lin[is_ev] + alpha[event_int[is_ev]] + np.log(e_own)
        mu_total = float(np.sum(fit.mu))
        loglik = float(np.sum(w[is_ev] * log_mu_ev)) - mu_total
        deviance = -2.0 * loglik - 2.0 * float(np.sum(w[is_ev]))
        cov_robust, n_cl, cov_type = None, None, "model"
        if robust or clus is not None:
            scores = np.zeros((n, fit.beta.size))
            resid_total = np.zeros(n)
            for k in range(n_int):
                e_k = np.clip(
                    np.minimum(stop, bounds[k + 1]) - np.maximum(start, bounds[k]), 0, None
                )
                r_k = (is_ev & (event_int == k)).astype(float) - np.exp(lin + alpha[k]) * e_k
                resid_total += r_k
                if k > 0:
                    scores[:, k] = r_k
            scores[:, 0] = resid_total
            scores[:, n_int:] = x * resid_total[:, None]
            scores *= w[:, None]
            cov_robust, n_cl = _sandwich(scores, fit.cov, clus)
            cov_type = "clustered" if clus is not None else "robust"
        return RegressionResults(
            model=repr(self),
            names=names,
            coef=fit.beta,
            cov=cov_robust if cov_robust is not None else fit.cov,
            cov_model=fit.cov,
            cov_robust=cov_robust,
            cov_type=cov_type,
            loglik=loglik,
            loglik_null=None,
            n=int(n),
            n_events=float(np.sum(w[is_ev])),
            iterations=fit.iterations,
            converged=fit.converged,
            exp_label="rate_ratio",
            n_clusters=n_cl,
            config={
                "cuts": cuts.tolist(),
                "duration": duration,
                "event": event,
                "covariates": list(covariates),
                "weights": weights,
                "cluster": cluster,
                "entry": entry,
                "robust": robust,
            },
            extra={
                "deviance": deviance,
                "events_by_interval": ev_int,
                "exposure_by_interval": expo_int,
                "n_cells": int(y.size),
            },
        )


def _warn_glm(converged: bool, iterations: int, ev_level: FloatArray, what: str) -> None:
    if not converged:
        warnings.warn(
            f"IRLS did not converge in {iterations} iterations; results may be unreliable. "
            "Hint: raise max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    zero = ev_level <= 0
    if zero.any():
        warnings.warn(
            f"{int(zero.sum())} baseline {what}(s) have no events; their coefficients diverge "
            "to -inf (separation). Hint: merge them with neighbouring periods via cuts.",
            SeparationWarning,
            stacklevel=3,
        )


class DiscreteTimeHazard:
    """Discrete-time hazard model (grouped-time proportional hazards or logistic hazard).

    Durations are integer periods (e.g. weeks) ``1, 2, ...``; a subject with entry ``e``
    (default 0) and duration ``d`` is at risk in periods ``e+1..d`` and has the event in
    period ``d`` when ``event == 1``.  The hazard in period ``t`` is
    ``h(t | x) = F(alpha_t + x' beta)`` with ``F`` the inverse cloglog (the grouped-time
    version of the Cox model: ``exp(beta)`` are hazard ratios; METHODS §5.7) or logit link
    (``exp(beta)`` are odds ratios of the discrete hazard).

    Parameters
    ----------
    link : {"cloglog", "logit"}, default "cloglog"
        Link function.
    cuts : sequence of int, optional
        Group periods into baseline intervals ``(0, c_1], (c_1, c_2], ...`` with one
        baseline parameter each; default one parameter per observed period.
    max_iter : int, default 50
        IRLS iterations.
    tol : float, default 1e-10
        Relative deviance change for convergence.

    Notes
    -----
    - Equals ``glm(y ~ factor(period) + x, family = binomial(link))`` on the person-period
      table (R), computed from counts aggregated by (covariate pattern, baseline level);
      coefficient names ``"(Intercept)"``, ``"factor(period)t"`` (or
      ``"factor(interval)k"`` with ``cuts``), then the covariates.
    - IRLS (Fisher scoring) as R's ``glm`` on the person-period data: starting values
      ``(y + 0.5) / 2`` per binary row (R's ``mustart`` with unit weights), deviance
      ``-2 loglik`` of the binary rows, standard errors from the expected information of the
      last iteration.  Because Fisher scoring converges linearly for cloglog, convergence also
      requires a relative step below 1e-9 (default ``tol = 1e-10``): estimates are the MLE.
    - The level dummies are never built: the normal equations are solved by blocks
      (:func:`mentor_impact._kernels.glm.glm_fit_blocked`); memory is O(cells + patterns x p)
      where cells are the (covariate pattern, baseline level) pairs with subjects at risk.
    - Robust / clustered variance: ``A^-1 (S'S) A^-1`` with the expected information ``A``
      (R ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``).
    - Non-integer durations are an error (round to periods first).
    """

    def __init__(
        self,
        *,
        link: str = "cloglog",
        cuts: Sequence[int] | None = None,
        max_iter: int = 50,
        tol: float = 1e-10,
    ) -> None:
        self.link = link
        self.cuts = cuts
        self.max_iter = max_iter
        self.tol = tol

    def __repr__(self) -> str:
        return f"DiscreteTimeHazard(link={self.link!r})"

    def fit(
        self,
        df: pd.DataFrame,
        *,
        duration: str,
        event: str,
        covariates: Sequence[str],
        weights: str | None = None,
        strata: str | None = None,
        cluster: str | None = None,
        entry: str | None = None,
        robust: bool = False,
        reference_levels: Mapping[str, Any] | None = None,
    ) -> RegressionResults:
        """Fit the model.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per subject (or spell with ``entry``).
        duration : str
            Last period observed (integer >= 1).
        event : str
            1 = event in the last period, 0 = censored after it.
        covariates : sequence of str
            Covariates.
        weights : str, optional
            Case weights (> 0).
        strata : None
            Not supported; must be None.
        cluster : str, optional
            Cluster ids for the cluster-robust variance.
        entry : str, optional
            Periods already survived before observation (integer >= 0).
        robust : bool, default False
            Robust (sandwich) variance.
        reference_levels : mapping, optional
            Reference levels of categorical covariates.

        Returns
        -------
        RegressionResults
            ``extra`` holds the aggregated table size and events / at-risk by level.

        Raises
        ------
        DataValidationError
            Non-integer or non-positive durations, bad event codes, missing values, collinear
            covariates.
        """
        if self.link not in ("cloglog", "logit"):
            raise ConfigurationError(f"link: expected 'cloglog' or 'logit'; found {self.link!r}.")
        if strata is not None:
            raise ConfigurationError(
                "strata: not supported by DiscreteTimeHazard; add it as a categorical covariate."
            )
        stop, ev, start, w, x, frame, clus = common_inputs(
            df, duration, event, covariates, weights, entry, cluster, reference_levels
        )
        for arr, nm in ((stop, "duration"), (start, "entry")):
            frac = arr != np.round(arr)
            if frac.any():
                raise DataValidationError(
                    f"{nm}: expected integer periods; found {int(frac.sum())} non-integer values "
                    f"({_positions(frac)}). Hint: round up to the period of the event."
                )
        d = stop.astype(np.int64)
        e = start.astype(np.int64)
        n = d.size
        t_max = int(d.max())
        if self.cuts is None:
            periods = np.unique(np.concatenate([np.arange(int(e.min()) + 1, t_max + 1)]))
            level_of_period = np.full(t_max + 2, -1, dtype=np.int64)
            level_of_period[periods] = np.arange(periods.size)
            labels = [f"factor(period){int(t)}" for t in periods]
        else:
            c = np.asarray(self.cuts, dtype=float)
            if c.size and (np.any(np.diff(c) <= 0) or np.any(c <= 0)):
                raise ConfigurationError(
                    f"cuts: expected strictly increasing positive cut points; found {c.size} "
                    "values that are not."
                )
            bounds = np.concatenate(([0.0], c, [np.inf]))
            level_of_period = np.searchsorted(bounds, np.arange(t_max + 2), side="left") - 1
            level_of_period[0] = -1
            used = np.unique(level_of_period[int(e.min()) + 1 : t_max + 1])
            remap = np.full(bounds.size, -1, np.int64)
            remap[used] = np.arange(used.size)
            level_of_period = np.where(level_of_period >= 0, remap[level_of_period], -1)
            labels = [f"factor(interval){int(k) + 1}" for k in used]
        n_lev = len(labels)
        first_row, pat = covariate_patterns(x)
        n_pat = first_row.size
        # at-risk and event counts per (pattern, level) without a person-period table:
        # cumulative counts over periods per level: risk(t) = #{e < t <= d}
        # (row, level) pairs with the number of the row's at-risk periods in each level, then
        # summed by (pattern, level): no person-period rows, no replicated covariates
        per = np.arange(t_max + 2)
        lop = level_of_period[: t_max + 1]
        valid = lop >= 0
        lev_first = np.full(n_lev, t_max + 1)
        lev_last = np.zeros(n_lev, dtype=np.int64)
        np.minimum.at(lev_first, lop[valid], per[: t_max + 1][valid])
        np.maximum.at(lev_last, lop[valid], per[: t_max + 1][valid])
        lev_lo = level_of_period[e + 1]
        lev_hi = level_of_period[d]
        n_pairs = lev_hi - lev_lo + 1
        rep = np.repeat(np.arange(n), n_pairs)
        j = lev_lo[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs))
        cnt = np.minimum(d[rep], lev_last[j]) - np.maximum(e[rep] + 1, lev_first[j]) + 1
        key = pat[rep] * n_lev + j
        is_ev = ev == 1
        ev_lev = level_of_period[d]
        if n_pat == n:  # every row its own pattern: the pairs are the cells
            cell_key, inv = key, np.arange(key.size)
        else:
            cell_key, inv = np.unique(key, return_inverse=True)
            inv = inv.ravel()
        atrisk = np.bincount(inv, weights=w[rep] * cnt, minlength=cell_key.size)
        if n_pat == n:
            ev_cell = (np.cumsum(n_pairs) - 1)[is_ev]  # a row's last pair holds its event
        else:
            ev_cell = np.searchsorted(cell_key, pat[is_ev] * n_lev + ev_lev[is_ev])
        events = np.bincount(ev_cell, weights=w[is_ev], minlength=cell_key.size)
        keep = atrisk > 0
        cell_pat = (cell_key // n_lev)[keep]
        cell_lev = (cell_key % n_lev)[keep]
        names = ("(Intercept)", *tuple(labels[1:]), *frame.names)
        n_trials = atrisk[keep]
        ev_k = events[keep]
        y = ev_k / n_trials
        # R's mustart on the binary person-period rows: (y + 0.5) / 2, i.e. 0.75 / 0.25
        first_sums = []
        for m0 in (0.75, 0.25):
            eta0 = np.log(m0 / (1 - m0)) if self.link == "logit" else np.log(-np.log1p(-m0))
            _, dmu0 = _link_eval("binomial", self.link, np.array([eta0]))
            w0 = float(dmu0[0] ** 2 / (m0 * (1 - m0)))
            z0 = eta0 + ((1.0 if m0 == 0.75 else 0.0) - m0) / float(dmu0[0])
            first_sums.append((w0, z0))
        (w1, z1), (w0_, z0_) = first_sums
        first = (
            w1 * ev_k + w0_ * (n_trials - ev_k),
            w1 * z1 * ev_k + w0_ * z0_ * (n_trials - ev_k),
        )

        def bin_dev(lin: FloatArray, mu: FloatArray) -> float:
            return -2.0 * glm_loglik("binomial", y, mu, n_trials)

        fit = glm_fit_blocked(
            cell_lev,
            cell_pat,
            x[first_row],
            y,
            n_trials,
            n_levels=n_lev,
            family="binomial",
            link=self.link,
            deviance=bin_dev,
            first=first,
            max_iter=self.max_iter,
            tol=self.tol,
            step_tol=1e-9,
        )
        ev_by_level = np.bincount(cell_lev, weights=events[keep], minlength=n_lev).astype(float)
        _warn_glm(fit.converged, fit.iterations, ev_by_level, "period")
        loglik = glm_loglik("binomial", y, fit.mu, n_trials)
        cov_robust, n_cl, cov_type = None, None, "model"
        if robust or clus is not None:
            scores = self._row_scores(fit.beta, x, d, e, is_ev, level_of_period, n_lev)
            scores *= w[:, None]
            cov_robust, n_cl = _sandwich(scores, fit.cov, clus)
            cov_type = "clustered" if clus is not None else "robust"
        return RegressionResults(
            model=repr(self),
            names=names,
            coef=fit.beta,
            cov=cov_robust if cov_robust is not None else fit.cov,
            cov_model=fit.cov,
            cov_robust=cov_robust,
            cov_type=cov_type,
            loglik=loglik,
            loglik_null=None,
            n=int(n),
            n_events=float(np.sum(w[is_ev])),
            iterations=fit.iterations,
            converged=fit.converged,
            exp_label="hazard_ratio" if self.link == "cloglog" else "odds_ratio",
            n_clusters=n_cl,
            config={
                "link": self.link,
                "cuts": None if self.cuts is None else list(self.cuts),
                "duration": duration,
                "event": event,
                "covariates": list(covariates),
                "weights": weights,
                "cluster": cluster,
                "entry": entry,
                "robust": robust,
            },
            extra={
                "n_cells": int(y.size),
                "deviance": -2.0 * loglik,
                "events_by_level": dict(zip(labels, ev_by_level.tolist(), strict=True)),
            },
        )

    def _row_scores(
        self,
        beta: FloatArray,
        x: FloatArray,
        d: IntArray,
        e: IntArray,
        is_ev: npt.NDArray[np.bool_],
        level_of_period: IntArray,
        n_lev: int,
    ) -> FloatArray:
        """Per-subject scores summed over its periods (loop over baseline levels)."""
        n = d.size
        k = beta.size
        alpha = np.concatenate(([0.0], beta[1:n_lev])) + beta[0]
        lin = x @ beta[n_lev:]
        scores = np.zeros((n, k))
        t_max = int(d.max())
        lop = level_of_period[: t_max + 1]
        total = np.zeros(n)
        ev_lev = level_of_period[d]
        for j in range(n_lev):
            cnt_before = np.cumsum(lop == j)  # periods <= t in level j
            cnt = (cnt_before[d] - cnt_before[e]).astype(float)
            eta = lin + alpha[j]
            if self.link == "logit":
                mu = 1.0 / (1.0 + np.exp(-eta))
                c_y = np.ones(n)  # d loglik / d eta = y - mu
                c_0 = -mu
            else:
                mu = -np.expm1(-np.exp(eta))
                g = np.exp(eta - np.exp(eta)) / np.maximum(mu * (1 - mu), 1e-300)
                c_y = g
                c_0 = -g * mu
            y_j = (is_ev & (ev_lev == j)).astype(float)
            s_j = cnt * c_0 + y_j * c_y
            total += s_j
            if j > 0:
                scores[:, j] = s_j
        scores[:, 0] = total
        scores[:, n_lev:] = x * total[:, None]
        return scores
