"""Timing-of-events (ToE) mixed proportional hazard model (Abbring & van den Berg 2003).

Grouped (weekly) competing-risks exit hazards and a mentor-start hazard, each with a
piecewise-constant baseline and time-constant covariates, treatment effects on the exit
hazards by time-since-start bin (lock-in and post-programme effects), and a discrete joint
distribution of the unobserved heterogeneity with K support points chosen by AIC. See
``METHODS.md`` section 5.7 and ``docs/timing_of_events.md``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, stats
from scipy.special import logsumexp

from mentor_impact._kernels import toe as K_
from mentor_impact._kernels.linalg import crossprod
from mentor_impact._rng import SeedLike, as_generator
from mentor_impact.exceptions import (
    ConfigurationError,
    ConvergenceError,
    ConvergenceWarning,
    DataValidationError,
    EstimationError,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from mentor_impact.results import EffectResults

__all__ = [
    "TimingOfEvents",
    "TimingOfEventsResults",
    "spells_from_register",
    "start_gaps_from_register",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LV_BOUND = 20.0


def _single_thread_blas() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _rows_text(mask: npt.NDArray[np.bool_], limit: int = 5) -> str:
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(int(p)) for p in pos[:limit])
    more = ", ..." if pos.size > limit else ""
    return f"{pos.size} (rows {shown}{more})"


def _check_cuts(name: str, cuts: Sequence[int]) -> IntArray:
    arr = np.asarray(cuts)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigurationError(
            f"{name}: expected a non-empty sequence of integer week cut points starting at 0; "
            f"found {arr.size} values. Hint: e.g. (0, 13, 26, 52)."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ConfigurationError(
            f"{name}: expected integer weeks; found non-integer values. Hint: round the cuts."
        )
    arr = arr.astype(np.int64)
    if arr[0] != 0:
        raise ConfigurationError(
            f"{name}: expected the first cut to be 0; found a first cut of another value. "
            "Hint: prepend 0."
        )
    if np.any(np.diff(arr) <= 0):
        bad = int(np.sum(np.diff(arr) <= 0))
        raise ConfigurationError(
            f"{name}: expected strictly increasing cuts; found {bad} non-increasing steps. "
            "Hint: sort and de-duplicate the cuts."
        )
    return arr


def _interval_labels(cuts: IntArray, prefix: str = "") -> tuple[str, ...]:
    out = []
    for q in range(cuts.size):
        hi = str(int(cuts[q + 1])) if q + 1 < cuts.size else "inf"
        out.append(f"{prefix}({int(cuts[q])},{hi}" + ("]" if hi != "inf" else ")"))
    return tuple(out)


# ----------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingOfEventsResults:
    """Fitted timing-of-events model.

    Attributes
    ----------
    params : pandas.DataFrame
        One row per parameter: ``equation`` (``exit:<cause>``, ``start``,
        ``heterogeneity``), ``block`` (``baseline``, ``covariate``, ``effect``,
        ``effect_x``, ``log_v``, ``logit_pi``), ``term``, ``estimate``, ``std_error``,
        ``statistic``, ``p_value``, ``ci_lower``, ``ci_upper`` (95 %), and
        ``std_error_hessian`` / ``std_error_sandwich``.
    k_search : pandas.DataFrame
        One row per number of support points tried: ``K``, ``loglik``, ``n_params``,
        ``aic``, ``bic``, ``improvement``, ``selected``.
    mass_points : pandas.DataFrame
        The selected support points: ``pi``, ``v_<hazard>`` and ``log_v_<hazard>``.
    loglik, aic, bic : float
        At the selected K.
    n_support_points : int
        The selected K.
    cov : ndarray
        Covariance of the flat parameter vector in use (``cov_type``).
    cov_type : str
        ``"hessian"`` (inverse of minus the Hessian) or ``"clustered(person)"`` /
        ``"sandwich"``.
    truncation : str
        ``"condition"`` (likelihood conditional on survival to sample entry),
        ``"inflow"`` (only spells observed from their first week) or ``"none"``.
    notes : list of str
        Fallbacks taken while selecting K (restarts, flat likelihoods).
    """

    params: pd.DataFrame
    k_search: pd.DataFrame
    mass_points: pd.DataFrame
    theta: FloatArray
    cov: FloatArray
    cov_hessian: FloatArray
    cov_sandwich: FloatArray
    cov_type: str
    loglik: float
    aic: float
    bic: float
    n_support_points: int
    n_spells: int
    n_treated: int
    n_events: dict[str, int]
    causes: tuple[str, ...]
    covariates: tuple[str, ...]
    truncation: str
    dropped: dict[str, int]
    converged: bool
    config: dict[str, Any]
    seed: int | None
    timings: dict[str, float]
    notes: list[str]
    _layout: K_.Layout = field(repr=False)
    _data: K_.ToeData = field(repr=False)
    _start: IntArray = field(repr=False)
    _cluster: npt.NDArray[Any] = field(repr=False)
    _scores: FloatArray = field(repr=False)
    _hess_inv: FloatArray = field(repr=False)
    _theta_std: FloatArray | None = field(default=None, repr=False)
    _cov_std: FloatArray | None = field(default=None, repr=False)
    _to_original: FloatArray | None = field(default=None, repr=False)
    _jac_cache: dict[tuple[int, ...], tuple[FloatArray, FloatArray]] = field(
        default_factory=dict, repr=False, compare=False)

    # -- tables -------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Return the parameter table (a copy of :attr:`params`).

        Returns
        -------
        pandas.DataFrame
            The parameter table.
        """
        return self.params.copy()

    def hazard_ratios(self, level: float = 0.95) -> pd.DataFrame:
        """Hazard ratios of the treatment-effect (and interaction) parameters.

        Parameters
        ----------
        level : float
            Confidence level of the intervals.

        Returns
        -------
        pandas.DataFrame
            ``equation, term, hazard_ratio, ci_lower, ci_upper`` for the effect rows.
        """
        z = stats.norm.ppf(0.5 + level / 2)
        sel = self.params[self.params["block"].isin(["effect", "effect_x"])]
        return pd.DataFrame(
            {
                "equation": sel["equation"].to_numpy(),
                "term": sel["term"].to_numpy(),
                "hazard_ratio": np.exp(sel["estimate"].to_numpy()),
                "ci_lower": np.exp(sel["estimate"].to_numpy() - z * sel["std_error"].to_numpy()),
                "ci_upper": np.exp(sel["estimate"].to_numpy() + z * sel["std_error"].to_numpy()),
            }
        )

    def summary(self) -> str:
        """Text summary: sample, K search, mass points, effect hazard ratios.

        Returns
        -------
        str
            A plain-text report.
        """
        lines = [
            "Timing-of-events MPH model (grouped weekly cloglog hazards)",
            f"spells: {self.n_spells}   treated spells: {self.n_treated}   "
            f"events: {self.n_events}",
            f"left truncation: {self.truncation}   dropped: {self.dropped}",
            f"selected K = {self.n_support_points} (AIC)   loglik = {self.loglik:.3f}   "
            f"AIC = {self.aic:.3f}   cov: {self.cov_type}",
            "",
            "K search:",
            self.k_search.to_string(index=False),
            "",
            "Mass points:",
            self.mass_points.to_string(index=False),
            "",
            "Effects on the exit hazards (hazard ratios):",
            self.hazard_ratios().to_string(index=False),
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary of the results.

        Returns
        -------
        dict
            Parameters, K search, mass points, sample counts, configuration and seed.
        """
        return {
            "estimator": "TimingOfEvents",
            "params": self.params.to_dict(orient="records"),
            "k_search": self.k_search.to_dict(orient="records"),
            "mass_points": self.mass_points.to_dict(orient="records"),
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
            "n_support_points": self.n_support_points,
            "n_spells": self.n_spells,
            "n_treated": self.n_treated,
            "n_events": dict(self.n_events),
            "truncation": self.truncation,
            "cov_type": self.cov_type,
            "dropped": dict(self.dropped),
            "converged": self.converged,
            "notes": list(self.notes),
            "config": self.config,
            "seed": self.seed,
        }

    def to_json(self, path: str | None = None) -> str:
        """Serialise :meth:`to_dict` to JSON.

        Parameters
        ----------
        path : str, optional
            File to write as well.

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=2, default=float)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot the effect hazard ratios by time-since-start bin with 95 % intervals.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib.axes.Axes
            The axes (``plt.show()`` is never called).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        hr = self.hazard_ratios()
        hr = hr[~hr["term"].str.contains(":")]
        for i, (eq, g) in enumerate(hr.groupby("equation", sort=False)):
            x = np.arange(len(g)) + 0.1 * i
            y = g["hazard_ratio"].to_numpy()
            ax.errorbar(
                x,
                y,
                yerr=[y - g["ci_lower"].to_numpy(), g["ci_upper"].to_numpy() - y],
                fmt="o",
                label=eq,
            )
            ax.set_xticks(np.arange(len(g)), list(g["term"]), rotation=30)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("hazard ratio")
        ax.legend()
        return ax

    # -- effects on probabilities -------------------------------------------------------

    @property
    def treated_rows(self) -> IntArray:
        """Row positions (in the fitted data) of spells with an observed mentor start."""
        return self._data.s_row

    @property
    def _th_std(self) -> FloatArray:
        """Parameters on the internal (standardised-covariate) scale of ``_data``."""
        return self.theta if self._theta_std is None else self._theta_std

    def _std_from_original(self, theta: FloatArray) -> FloatArray:
        if self._to_original is None:
            return np.asarray(theta, dtype=np.float64)
        return np.asarray(np.linalg.solve(self._to_original, theta), dtype=np.float64)

    def _curves(self, theta: FloatArray, horizon: int, with_effect: bool,
                ) -> tuple[FloatArray, FloatArray]:
        # theta on the internal (standardised) scale
        return K_.treated_curves(
            theta, self._layout, self._data, self._start, self._data.s_row, horizon,
            with_effect=with_effect,
        )

    def _effect_rows(self, theta: FloatArray, taus: IntArray, outcome_idx: int
                     ) -> tuple[FloatArray, FloatArray]:
        """Per-treated-spell levels with / without the effects.

        ``theta`` is on the original (reported) scale.
        """
        return self._effect_rows_std(self._std_from_original(theta), taus, outcome_idx)

    def _effect_rows_all_std(self, theta: FloatArray, taus: IntArray
                             ) -> tuple[FloatArray, FloatArray]:
        """Levels with / without the effects for every outcome at once.

        Arrays ``(n_treated, R + 1, len(taus))``; outcome ``R`` is survival.
        """
        H = int(taus.max())
        out = []
        for eff in (True, False):
            S, C = self._curves(theta, H, eff)
            out.append(np.concatenate([C[:, :, taus], S[:, None, taus]], axis=1))
        return out[0], out[1]

    def _effect_jacobian_std(self, taus: IntArray) -> tuple[FloatArray, FloatArray]:
        """Average effects and their forward-difference Jacobian for all outcomes.

        Shapes ``(R + 1, k)`` and ``(R + 1, k, P)`` in the internal parameters; cached
        per ``taus``, so one pass serves every outcome.
        """
        key = tuple(int(t) for t in taus)
        if key in self._jac_cache:
            return self._jac_cache[key]
        theta = self._th_std
        wt = self._data.w[self._data.s_row]
        W = wt.sum()
        A, B = self._effect_rows_all_std(theta, taus)
        est = np.einsum("i,iok->ok", wt, A - B) / W
        Jm = np.empty((*est.shape, theta.size))
        for p in range(theta.size):
            h = 1e-6 * max(1.0, abs(theta[p]))
            tp = theta.copy()
            tp[p] += h
            a2, b2 = self._effect_rows_all_std(tp, taus)
            Jm[:, :, p] = (np.einsum("i,iok->ok", wt, a2 - b2) / W - est) / h
        self._jac_cache[key] = (est, Jm)
        return est, Jm

    def _effect_rows_std(self, theta: FloatArray, taus: IntArray, outcome_idx: int
                         ) -> tuple[FloatArray, FloatArray]:
        H = int(taus.max())
        out = []
        for eff in (True, False):
            S, C = self._curves(theta, H, eff)
            cur = S if outcome_idx < 0 else C[:, outcome_idx, :]
            out.append(cur[:, taus])
        return out[0], out[1]

    def probability_curves(self, horizon: int = 156) -> pd.DataFrame:
        """Average model-implied curves for the treated, with and without the effects.

        Parameters
        ----------
        horizon : int
            Last week after the start (``tau = 0..horizon``).

        Returns
        -------
        pandas.DataFrame
            ``tau``, ``survival_treated``, ``survival_counterfactual`` and, per cause,
            ``cif_<cause>_treated`` / ``cif_<cause>_counterfactual`` (weighted means over
            the treated spells).
        """
        wt = self._data.w[self._data.s_row]
        wt = wt / wt.sum()
        res: dict[str, Any] = {"tau": np.arange(horizon + 1)}
        for eff, tag in ((True, "treated"), (False, "counterfactual")):
            S, C = self._curves(self._th_std, horizon, eff)
            res[f"survival_{tag}"] = wt @ S
            for r, c in enumerate(self.causes):
                res[f"cif_{c}_{tag}"] = wt @ C[:, r, :]
        return pd.DataFrame(res)

    def effects_on_probabilities(
        self,
        taus: Sequence[int] = (26, 52, 104, 156),
        *,
        outcome: str | None = None,
        method: Literal["delta", "bootstrap"] = "delta",
        n_boot: int = 200,
        seed: SeedLike = 0,
    ) -> EffectResults:
        """Effects of the mentor start on exit probabilities for the treated.

        For every treated spell (observed start in week ``tm``), the model-implied
        probability of having left benefit by cause ``outcome`` (cumulative incidence) or
        of still being in the spell (``outcome="survival"``) at week ``tm + tau`` is
        computed with the estimated effects and with all effects set to zero, integrated
        over the posterior of the mass point given the history up to the start; the
        weighted average difference over the treated is reported at ``taus``.

        Parameters
        ----------
        taus : sequence of int
            Weeks after the start (default 26, 52, 104, 156).
        outcome : str, optional
            ``"survival"`` or a cause label (default: the first cause).
        method : {"delta", "bootstrap"}
            ``"delta"``: influence function = numerical Jacobian times the parameter
            influence ``(-H)^{-1} s_i`` plus the treated-average term; covariance from it
            (clustered by person when ``cluster`` was given at fit, else per spell).
            ``"bootstrap"``: parametric bootstrap, ``n_boot`` draws of the parameters from
            ``N(theta_hat, cov)``, plus the treated-average variance.
        n_boot : int
            Number of parametric-bootstrap draws.
        seed : int, Generator or None
            Seed of the parametric bootstrap.

        Returns
        -------
        EffectResults
            Estimator ``"TimingOfEvents"``, estimand ``"ATT"``, targets ``tau=<k>``, with
            ``treated_mean`` / ``counterfactual_mean`` levels.

        Notes
        -----
        "Simulated" curves are computed exactly (forward recursion over weeks with the
        grouped hazards), so they carry no Monte Carlo noise. The counterfactual sets every
        effect parameter (bins and interactions) to zero and keeps the posterior weights,
        which use only pre-start information (no anticipation).
        """
        from mentor_impact.results import make_effect_results

        taus_arr = np.asarray(taus, dtype=np.int64).ravel()
        if taus_arr.size == 0 or np.any(taus_arr < 0):
            raise ConfigurationError(
                f"taus: expected non-negative weeks after the start; found {taus_arr.size} "
                "values with negatives or none. Hint: e.g. (26, 52, 104, 156)."
            )
        out_name = self.causes[0] if outcome is None else outcome
        if out_name == "survival":
            oi = -1
        elif out_name in self.causes:
            oi = self.causes.index(out_name)
        else:
            raise ConfigurationError(
                f"outcome: expected 'survival' or one of the {len(self.causes)} cause labels "
                f"{list(self.causes)}; found another value. Hint: check the spelling."
            )
        D = self._data
        rows = D.s_row
        wt = D.w[rows]
        W = wt.sum()
        A, B = self._effect_rows_std(self._th_std, taus_arr, oi)
        e_i = A - B
        est = wt @ e_i / W
        tmean = wt @ A / W
        cmean = wt @ B / W
        # treated-average part of the influence function
        psi = np.zeros((D.n, taus_arr.size))
        psi[rows] = wt[:, None] * (e_i - est[None, :]) / W
        extra: dict[str, Any] = {
            "truncation": self.truncation,
            "n_support_points": self.n_support_points,
            "outcome_kind": "survival" if oi < 0 else "cumulative_incidence",
            "method": method,
        }
        # the Jacobian, scores and inverse Hessian are on the internal (standardised)
        # scale: the delta-method influence is invariant to the parameterisation
        theta = self._th_std
        if method == "delta":
            _, J_all = self._effect_jacobian_std(taus_arr)
            Jm = J_all[oi if oi >= 0 else len(self.causes)]
            phi_theta = (self._scores * D.w[:, None]) @ self._hess_inv  # (n, P)
            psi = psi + phi_theta @ Jm.T
            res = make_effect_results(
                estimator="TimingOfEvents",
                estimand="ATT",
                outcome=out_name,
                estimate=est,
                influence=psi,
                cluster=self._cluster,
                tau=taus_arr,
                treated_mean=tmean,
                counterfactual_mean=cmean,
                n=D.n,
                n_treated=rows.size,
                n_control=D.n - rows.size,
                dropped=self.dropped,
                extra=extra,
                config=self.config,
                seed=self.seed,
            )
            return res
        if method != "bootstrap":
            raise ConfigurationError(
                f"method: expected 'delta' or 'bootstrap'; found {method!r}. Hint: use 'delta'."
            )
        rng = as_generator(seed)
        cov_std = self.cov if self._cov_std is None else self._cov_std
        draws = rng.multivariate_normal(theta, cov_std, size=int(n_boot), method="eigh")
        ests = np.empty((int(n_boot), taus_arr.size))
        for b in range(int(n_boot)):
            a2, b2 = self._effect_rows_std(draws[b], taus_arr, oi)
            ests[b] = wt @ (a2 - b2) / W
        from mentor_impact.inference.covariance import Clustered

        sums_cov = Clustered("person").cov(psi, cluster=self._cluster)
        cov = np.cov(ests, rowvar=False).reshape(taus_arr.size, taus_arr.size) + sums_cov
        extra["bootstrap_quantiles"] = {
            "q025": np.quantile(ests, 0.025, axis=0).tolist(),
            "q975": np.quantile(ests, 0.975, axis=0).tolist(),
        }
        return make_effect_results(
            estimator="TimingOfEvents",
            estimand="ATT",
            outcome=out_name,
            estimate=est,
            cov=cov,
            cov_type="parametric-bootstrap",
            tau=taus_arr,
            treated_mean=tmean,
            counterfactual_mean=cmean,
            n=D.n,
            n_treated=rows.size,
            n_control=D.n - rows.size,
            dropped=self.dropped,
            extra=extra,
            config=self.config,
            seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        )


# ----------------------------------------------------------------------------------------
# estimator
# ----------------------------------------------------------------------------------------


class TimingOfEvents:
    """Timing-of-events mixed proportional hazard model on weekly spell data.

    Parameters
    ----------
    exit_cuts : sequence of int
        Cut points (weeks since spell entry, first 0) of the piecewise-constant exit
        baselines: interval q holds weeks ``cuts[q] < t <= cuts[q+1]``, the last is open.
    start_cuts : sequence of int
        Cut points of the mentor-start baseline, same convention.
    effect_bins : sequence of int
        Time-since-start bins (first 0): bin j holds ``bins[j] < t - tm <= bins[j+1]``,
        the last is open; the default gives 1-13, 14-26, 27-52 and 53+ weeks.
    max_support_points : int
        Largest K tried in the search over the number of mass points.
    support_points : int, optional
        Fit exactly this K (no search). An EstimationError is raised if a mass point is
        not identified (probability ~ 0 or two points coincide).
    effect_interactions : sequence of str
        Covariates interacted with every effect bin (``effect_x`` rows).
    cause_labels : sequence of str, optional
        Labels of exit causes 1..R (default ``cause1..causeR``).
    truncation : {"condition", "condition_exits", "inflow", "none"}
        Left truncation of stock samples (``entry > 0``): ``"condition"`` divides each
        spell's likelihood by its model probability of surviving (no exit, no start) to
        entry, mixed over the mass points; ``"condition_exits"`` divides by the
        probability of no exit before entry only, for samples in which no start was
        possible before entry (a stock drawn when the programme began: conditioning on
        "no start yet" with a positive start hazard would tilt the heterogeneity towards
        slow starters); ``"inflow"`` keeps only spells with ``entry == 0`` (others counted
        in ``dropped``); ``"none"`` ignores the truncation (biased for stock samples; for
        comparison only).
    min_improvement : float, optional
        The search stops when adding a mass point raises the log-likelihood by less
        (default ``R + 2``, the number of parameters a point adds: the first K whose
        successor does not lower the AIC ends the search).
    trial_iter : int
        Iterations of a trial fit of the next K; if the log-likelihood gain is then
        below half of ``min_improvement`` the search stops without finishing that fit
        (reported as "trial stopped" in ``k_search``).
    n_random_starts : int
        Random candidate locations (drawn with the fit seed) added to the grid when a
        mass point is added.
    max_iter : int
        Iteration limit of the quasi-Newton optimiser per K.
    cov : {"auto", "hessian", "sandwich"}
        Covariance reported in ``params``: ``"auto"`` = person-clustered sandwich when
        ``cluster`` is given, else inverse Hessian.

    Notes
    -----
    Model (weeks t since spell entry, mass point k, cause r)::

        theta_r(t | k) = exp(alpha_r[q(t)] + x'beta_r + delta_r[j(t - tm)] 1{t > tm}
                             + log v_r^k)
        theta_m(t | k) = exp(alpha_m[q_m(t)] + x'beta_m + log v_m^k)

    Grouped likelihood (complementary log-log): no exit in week t has probability
    ``exp(-sum_r theta_r)``, exit by cause r ``theta_r / sum(theta) * (1 - exp(-sum
    theta))``; the start hazard contributes weeks ``t0 + 1 .. min(T, tm)`` with a start in
    week ``tm``. Exit and start in the same week are allowed; the effect applies from
    week ``tm + 1``. Mass point 1 is normalised (``log v^1 = 0`` for every hazard; the
    baselines carry the level) and ``pi_k = exp(a_k) / sum exp(a_l)`` with ``a_1 = 0``.
    Per person ``log L_i = logsumexp_k(log pi_k + l_ik)`` and, with left truncation,
    minus ``logsumexp_k(log pi_k + log S_k(t0))``. Frequency weights multiply the
    per-spell log-likelihood. Covariates are constant within a spell (measured at entry),
    which lets the likelihood run on constant-hazard episodes instead of person-weeks.

    Estimation: K = 1 from crude interval rates; each additional mass point starts from a
    grid (plus random candidates) over its location with probability 0.1, refined by EM on
    the heterogeneity distribution with the structural parameters fixed, then all
    parameters jointly by L-BFGS-B with analytic gradients; at the selected K (minimum
    AIC = -2 loglik + 2 n_params) a Newton polish started from a finite-difference Hessian
    of the analytic gradient, with BFGS secant updates between steps. Standard errors:
    inverse of minus the (finite-difference) Hessian, or the sandwich
    ``H^-1 B H^-1`` with ``B = G/(G-1) sum_g s_g s_g'`` over person clusters (the
    convention of ``mentor_impact.inference.Clustered``).
    """

    def __init__(
        self,
        *,
        exit_cuts: Sequence[int] = (0, 4, 13, 26, 52, 104),
        start_cuts: Sequence[int] = (0, 13, 26, 52, 104),
        effect_bins: Sequence[int] = (0, 13, 26, 52),
        max_support_points: int = 4,
        support_points: int | None = None,
        effect_interactions: Sequence[str] = (),
        cause_labels: Sequence[str] | None = None,
        truncation: Literal["condition", "condition_exits", "inflow", "none"] = "condition",
        min_improvement: float | None = None,
        trial_iter: int = 80,
        n_random_starts: int = 8,
        max_iter: int = 2000,
        cov: Literal["auto", "hessian", "sandwich"] = "auto",
    ) -> None:
        self.exit_cuts = exit_cuts
        self.start_cuts = start_cuts
        self.effect_bins = effect_bins
        self.max_support_points = max_support_points
        self.support_points = support_points
        self.effect_interactions = effect_interactions
        self.cause_labels = cause_labels
        self.truncation = truncation
        self.min_improvement = min_improvement
        self.trial_iter = trial_iter
        self.n_random_starts = n_random_starts
        self.max_iter = max_iter
        self.cov = cov

    def get_params(self) -> dict[str, Any]:
        """Return the hyper-parameters as given.

        Returns
        -------
        dict
            Constructor arguments.
        """
        keys = (
            "exit_cuts", "start_cuts", "effect_bins", "max_support_points", "support_points",
            "effect_interactions", "cause_labels", "truncation", "min_improvement",
            "trial_iter", "n_random_starts", "max_iter", "cov",
        )
        out = {}
        for k in keys:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, (tuple, list, np.ndarray)) else v
        return out

    # -- validation ---------------------------------------------------------------------

    def _validate_config(self) -> tuple[IntArray, IntArray, IntArray]:
        ec = _check_cuts("exit_cuts", self.exit_cuts)
        sc = _check_cuts("start_cuts", self.start_cuts)
        bins = _check_cuts("effect_bins", self.effect_bins)
        if int(self.max_support_points) < 1:
            raise ConfigurationError(
                f"max_support_points: expected an integer >= 1; found {self.max_support_points}."
                " Hint: use 1 for no unobserved heterogeneity."
            )
        if self.support_points is not None and int(self.support_points) < 1:
            raise ConfigurationError(
                f"support_points: expected None or an integer >= 1; found {self.support_points}."
                " Hint: leave None to search over K."
            )
        if self.truncation not in ("condition", "condition_exits", "inflow", "none"):
            raise ConfigurationError(
                f"truncation: expected 'condition', 'condition_exits', 'inflow' or 'none'; found "
                f"{self.truncation!r}. Hint: 'condition' for stock samples."
            )
        if self.cov not in ("auto", "hessian", "sandwich"):
            raise ConfigurationError(
                f"cov: expected 'auto', 'hessian' or 'sandwich'; found {self.cov!r}."
                " Hint: 'auto'."
            )
        return ec, sc, bins

    @staticmethod
    def _int_column(df: pd.DataFrame, col: str, arg: str, allow_missing: bool = False
                    ) -> IntArray:
        if col not in df.columns:
            raise DataValidationError(
                f"{arg}: expected a column named in spells_df; found no such column among "
                f"{df.shape[1]} columns. Hint: check the column name."
            )
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        miss = ~np.isfinite(v)
        if allow_missing:
            v = np.where(miss, -1.0, v)
        elif miss.any():
            raise DataValidationError(
                f"{arg}: expected finite numbers; found {_rows_text(miss)} missing or "
                "non-finite values. Hint: drop or impute those spells."
            )
        frac = v != np.round(v)
        if frac.any():
            raise DataValidationError(
                f"{arg}: expected integer weeks; found {_rows_text(frac)} non-integer values. "
                "Hint: measure durations in whole weeks."
            )
        return v.astype(np.int64)

    # -- fit ----------------------------------------------------------------------------

    def fit(
        self,
        spells_df: pd.DataFrame,
        *,
        duration: str,
        exit: str,
        start: str,
        covariates: Sequence[str] = (),
        entry: str | None = None,
        cluster: str | None = None,
        weights: str | None = None,
        start_gaps: pd.DataFrame | None = None,
        seed: SeedLike = 0,
    ) -> TimingOfEventsResults:
        """Fit the model to spell data.

        Parameters
        ----------
        spells_df : pandas.DataFrame
            One row per benefit spell.
        duration : str
            Column with the last week in the spell (exit or censoring week), >= 1, counted
            from spell entry.
        exit : str
            Column with the exit cause: 0 = censored, 1..R = cause.
        start : str
            Column with the mentor start week (same clock), NaN or -1 for none.
        covariates : sequence of str
            Numeric, time-constant covariates (measured at entry; used in all hazards).
        entry : str, optional
            Column with the sample-entry week ``t0`` (weeks already elapsed; 0 = inflow).
        cluster : str, optional
            Person column for the clustered sandwich (several spells per person).
        weights : str, optional
            Frequency weights (a spell with weight 2 counts as two identical spells).
        start_gaps : pandas.DataFrame, optional
            Weeks in which no mentor start was possible (the person was not eligible,
            e.g. in a state or at an age the programme does not serve), with integer
            columns ``spell`` (0-based position of the spell in ``spells_df``), ``first``
            and ``last`` (spell weeks, inclusive). These weeks are not at risk of a
            start: they are left out of the start hazard's likelihood (and of its
            left-truncation term), while the exit hazards run through them. Ranges must
            not overlap within a spell and must not hold the spell's start week. Build
            them from the register with :func:`start_gaps_from_register`.
        seed : int, Generator or None
            Seed of the random candidate locations in the search over K.

        Returns
        -------
        TimingOfEventsResults
            The fitted model.

        Notes
        -----
        BLAS is limited to one thread during the fit (``threadpoolctl``): the products are
        tall and skinny (persons x cells), where threading only adds contention.
        """
        with _single_thread_blas():
            return self._fit(
                spells_df, duration=duration, exit=exit, start=start, covariates=covariates,
                entry=entry, cluster=cluster, weights=weights, start_gaps=start_gaps,
                seed=seed,
            )

    def _fit(
        self,
        spells_df: pd.DataFrame,
        *,
        duration: str,
        exit: str,
        start: str,
        covariates: Sequence[str],
        entry: str | None,
        cluster: str | None,
        weights: str | None,
        seed: SeedLike,
        start_gaps: pd.DataFrame | None = None,
    ) -> TimingOfEventsResults:
        t_begin = time.perf_counter()
        ec, sc, bins = self._validate_config()
        if not isinstance(spells_df, pd.DataFrame):
            raise DataValidationError(
                f"spells_df: expected a pandas DataFrame; found {type(spells_df).__name__}. "
                "Hint: build it with spells_from_register or pandas."
            )
        n_in = len(spells_df)
        if n_in == 0:
            raise DataValidationError(
                "spells_df: expected at least one spell; found 0 rows. Hint: check filters."
            )
        T = self._int_column(spells_df, duration, "duration")
        cause = self._int_column(spells_df, exit, "exit")
        tm = self._int_column(spells_df, start, "start", allow_missing=True)
        t0 = (
            self._int_column(spells_df, entry, "entry")
            if entry is not None
            else np.zeros(n_in, dtype=np.int64)
        )
        bad = T <= 0
        if bad.any():
            raise DataValidationError(
                f"duration: expected spells of at least one week (duration >= 1); found "
                f"{_rows_text(bad)} spells of zero or negative length. Hint: drop them or "
                "count the entry week as week 1."
            )
        bad = (t0 < 0) | (t0 >= T)
        if bad.any():
            raise DataValidationError(
                f"entry: expected 0 <= entry < duration; found {_rows_text(bad)} spells "
                "entering the sample at or after their last week. Hint: drop them."
            )
        bad = cause < 0
        if bad.any():
            raise DataValidationError(
                f"exit: expected 0 (censored) or a cause code 1..R; found {_rows_text(bad)} "
                "negative codes. Hint: recode censoring as 0."
            )
        tm = np.where(tm < 0, -1, tm)
        bad = tm > T
        if bad.any():
            raise DataValidationError(
                f"start: expected a mentor start no later than the last week of the spell "
                f"(start <= duration); found {_rows_text(bad)} starts after exit. Hint: set "
                "start to NaN for starts after the spell ended."
            )
        bad = (tm >= 0) & (tm <= t0)
        if bad.any():
            raise DataValidationError(
                f"start: expected starts after sample entry (start > entry) and >= 1; found "
                f"{_rows_text(bad)} starts before or at entry. Hint: drop spells treated "
                "before entry (they are not at risk of a first start)."
            )
        dropped: dict[str, int] = {}
        keep = np.ones(n_in, dtype=bool)
        if self.truncation == "inflow":
            keep = t0 == 0
            dropped["not_inflow"] = int((~keep).sum())
        w = (
            pd.to_numeric(spells_df[weights], errors="coerce").to_numpy(dtype=np.float64)
            if weights is not None
            else np.ones(n_in)
        )
        if weights is not None:
            bad = ~np.isfinite(w) | (w < 0)
            if bad.any():
                raise DataValidationError(
                    f"weights: expected finite non-negative frequency weights; found "
                    f"{_rows_text(bad)} invalid weights. Hint: drop or fix those spells."
                )
            zero = w == 0
            dropped["zero_weight"] = int((zero & keep).sum())
            keep &= ~zero
        covs = tuple(covariates)
        zcovs = tuple(self.effect_interactions)
        for c in (*covs, *zcovs):
            if c not in spells_df.columns:
                raise DataValidationError(
                    f"covariates: expected columns of spells_df; found no column for one of the "
                    f"{len(covs) + len(zcovs)} names. Hint: check names and "
                    "effect_interactions."
                )
        Xall = (
            spells_df.loc[:, list(covs)].apply(pd.to_numeric, errors="coerce").to_numpy(
                dtype=np.float64)
            if covs
            else np.zeros((n_in, 0))
        )
        Zall = (
            spells_df.loc[:, list(zcovs)].apply(pd.to_numeric, errors="coerce").to_numpy(
                dtype=np.float64)
            if zcovs
            else np.zeros((n_in, 0))
        )
        bad = np.asarray(~np.isfinite(Xall).all(axis=1) | ~np.isfinite(Zall).all(axis=1))
        if bad.any():
            raise DataValidationError(
                f"covariates: expected finite numeric values; found {_rows_text(bad)} spells "
                "with missing or non-numeric covariates. Hint: impute, or encode categories "
                "as dummies."
            )
        if cluster is not None:
            if cluster not in spells_df.columns:
                raise DataValidationError(
                    "cluster: expected a column of spells_df; found none with that name. "
                    "Hint: pass the person-id column."
                )
            cl_all = pd.factorize(spells_df[cluster])[0].astype(np.int64)
        else:
            cl_all = np.arange(n_in, dtype=np.int64)
        idx = np.flatnonzero(keep)
        T, cause, tm, t0 = T[idx], cause[idx], tm[idx], t0[idx]
        X, Z, w, cl = Xall[idx], Zall[idx], w[idx], cl_all[idx]
        n = idx.size
        if n == 0:
            raise DataValidationError(
                f"spells_df: expected spells left after the sample rule; found 0 of {n_in}. "
                "Hint: truncation='condition' keeps stock spells."
            )
        # causes
        R = int(cause.max()) if self.cause_labels is None else len(self.cause_labels)
        if R < 1:
            raise DataValidationError(
                f"exit: expected at least one observed exit (codes 1..R); found 0 exits in "
                f"{n} spells. Hint: all spells are censored; nothing to estimate."
            )
        if (cause > R).any():
            raise DataValidationError(
                f"exit: expected codes 0..{R} (cause_labels has {R} labels); found "
                f"{_rows_text(cause > R)} larger codes. Hint: add labels or recode."
            )
        causes = (
            tuple(str(c) for c in self.cause_labels)
            if self.cause_labels is not None
            else tuple(f"cause{r + 1}" for r in range(R))
        )
        n_ev = np.bincount(cause, weights=None, minlength=R + 1)[1:]
        if (n_ev == 0).any():
            miss = [causes[r] for r in range(R) if n_ev[r] == 0]
            raise DataValidationError(
                f"exit: expected at least one exit of every cause 1..{R}; found {len(miss)} "
                f"causes without exits ({miss}). Hint: merge causes or recode."
            )
        treated = tm >= 0
        if not treated.any():
            raise DataValidationError(
                f"start: expected at least one spell with a mentor start; found 0 treated "
                f"spells among {n}. Hint: the treatment effects are not identified without "
                "starts; check the start column (NaN/-1 = none)."
            )
        # covariate checks: constant or collinear columns make the likelihood flat
        if X.shape[1]:
            sd = X.std(axis=0)
            const = sd == 0
            if const.any():
                names = [covs[i] for i in np.flatnonzero(const)]
                raise DataValidationError(
                    f"covariates: expected varying columns; found {int(const.sum())} constant "
                    f"columns {names} (collinear with the baseline). Hint: drop them."
                )
            Xc = np.column_stack([np.ones(n), (X - X.mean(0)) / sd])
            rank = np.linalg.matrix_rank(Xc)
            if rank < Xc.shape[1]:
                raise DataValidationError(
                    f"covariates: expected linearly independent columns; found rank {rank - 1} "
                    f"for {X.shape[1]} columns (with the baseline). Hint: drop a dummy per "
                    "categorical variable or remove duplicated columns."
                )
        if Z.shape[1] and (Z.std(axis=0) == 0).any():
            raise DataValidationError(
                "effect_interactions: expected varying columns; found constant ones. "
                "Hint: drop them."
            )
        # covariates are centred and scaled for the optimisation (an unscaled column such
        # as a birth year ~1970 makes the problem so ill-conditioned that L-BFGS-B stops
        # after one step); parameters and covariances are mapped back afterwards
        mx, sx = _centre_scale(X, w)
        mz, sz = _centre_scale(Z, w)
        Xs = (X - mx) / sx
        Zs = (Z - mz) / sz
        condition = self.truncation in ("condition", "condition_exits")
        gaps, n_gap_weeks = _check_start_gaps(start_gaps, n_in, idx, T, tm)
        if gaps is not None:
            notes_gaps = [f"start hazard: {n_gap_weeks} spell-weeks before the start or the "
                          f"end of the spell, in {gaps[0].size} ranges, not at risk of a "
                          "start (start_gaps)"]
        else:
            notes_gaps = []
        D = K_.build_toe_data(
            T, cause, tm, t0, Xs, Zs, w, ec, sc, bins, R, condition_on_entry=condition,
            start_before_entry=self.truncation != "condition_exits", gaps=gaps,
        )
        self._check_identification(D, causes, ec, sc, bins)
        L1 = K_.Layout(R=R, Qe=ec.size, Qm=sc.size, J=bins.size, p=X.shape[1],
                       pz=Z.shape[1], K=1)
        rng = as_generator(seed)
        t_prep = time.perf_counter()
        fits = self._search(D, L1, rng)
        t_search = time.perf_counter()
        # choose K by AIC among fitted; fall back to the next best K when the selected one
        # has a flat (singular) or indefinite Hessian after polishing
        aics = np.array([f["aic"] for f in fits])
        tried = ", ".join(
            f"K={f['K']}: loglik {f['loglik']:.3f} ({f['message']})" for f in fits
        )
        notes: list[str] = list(notes_gaps)
        for attempt, best in enumerate(np.argsort(aics, kind="stable")):
            best = int(best)
            fb = fits[best]
            L = fb["layout"]
            theta, ll, conv, Hs = self._polish(_canonical(fb["theta"], L), L, D)
            eig, vec = _scaled_eigh(Hs)
            if eig[0] < -1e-6:
                # a saddle or not yet a maximum: restart the quasi-Newton run tightly
                th_r, _, msg_r = self._optimize(theta, L, D, tight=True)
                theta, ll, conv, Hs = self._polish(th_r, L, D)
                eig, vec = _scaled_eigh(Hs)
                notes.append(f"K={L.K}: indefinite Hessian, restarted ({msg_r})")
            flat = bool(eig[0] <= 1e-8)
            if not flat or self.support_points is not None or attempt == len(fits) - 1:
                break
            notes.append(f"K={L.K}: flat likelihood (smallest eigenvalue {eig[0]:.2e}); "
                         "next best AIC used")
        if flat:
            names = L.names(covs, zcovs, causes, _interval_labels(ec), _interval_labels(sc),
                            _interval_labels(bins, "since_start"))
            worst = np.argsort(-np.abs(vec[:, 0]))[:3]
            which = ", ".join("/".join(names[i]) for i in worst)
            if self.support_points is not None and L.K > 1:
                raise EstimationError(
                    f"support_points: expected {L.K} identifiable mass points; found a flat "
                    f"likelihood (smallest eigenvalue of the scaled Hessian {eig[0]:.2e}) in "
                    f"the direction of {which}. Tried: {tried}. Hint: K is larger than "
                    "identifiable; use support_points=None to search over K."
                )
            raise ConvergenceError(
                f"likelihood: expected a strictly concave maximum; found a flat likelihood "
                f"(smallest eigenvalue of the scaled Hessian {eig[0]:.2e}) in the direction "
                f"of {which}. "
                f"Tried: L-BFGS-B with analytic gradients from EM/grid start values, {tried}, "
                "then Newton polishing. Hint: merge baseline intervals or effect bins with "
                "few events, or drop near-constant covariates."
            )
        if self.support_points is not None and L.K > 1:
            P_ = L.unpack(theta)
            pi = np.exp(P_["a"] - logsumexp(P_["a"]))
            lvk = P_["lv"]
            close = [
                (i, j)
                for i in range(L.K)
                for j in range(i + 1, L.K)
                if np.max(np.abs(lvk[i] - lvk[j])) < 1e-3
            ]
            if pi.min() < 1e-6 or close:
                raise EstimationError(
                    f"support_points: expected {L.K} identifiable mass points; found "
                    f"{int((pi < 1e-6).sum())} with probability ~0 and {len(close)} coinciding "
                    f"pairs. Tried: {tried}. Hint: use fewer support points or support_points="
                    "None to search over K."
                )
        kmax = int(self.max_support_points)
        if self.support_points is None and kmax > 1 and L.K == kmax == fits[-1]["K"]:
            notes.append(
                f"K search stopped at max_support_points={kmax} with the AIC still "
                "improving (the search adds points until it stops improving); consider a "
                "larger max_support_points"
            )
        # honest convergence report, independent of what the optimisers claimed
        W_tot = float(D.w.sum())
        ll_f, g_f = K_.loglik_grad(theta, L, D)
        gmax = float(np.max(np.abs(g_f)) / W_tot) if g_f.size else 0.0
        try:
            dec_f = float(g_f @ np.linalg.solve(-0.5 * (Hs + Hs.T), g_f))
        except np.linalg.LinAlgError:
            dec_f = np.inf
        conv = bool(
            np.isfinite(ll_f)
            and (gmax <= _GRAD_TOL or 0.0 <= dec_f <= max(_DEC_TOL, 1e-12 * abs(ll_f)))
        )
        H_inv = np.asarray(np.linalg.inv(-0.5 * (Hs + Hs.T)), dtype=np.float64)
        _, scores = K_.loglik_grad(theta, L, D, per_person=True)
        Bm = _cluster_meat(scores * D.w[:, None], cl)
        # back to the original covariate scale: theta = A theta_std (linear), so
        # cov = A cov_std A'
        A_map = _original_map(L, mx, sx, mz, sz)
        theta_std = theta
        theta = A_map @ theta_std
        cov_h_std = H_inv
        cov_s_std = H_inv @ Bm @ H_inv
        cov_h = A_map @ cov_h_std @ A_map.T
        cov_s = A_map @ cov_s_std @ A_map.T
        if self.cov == "hessian" or (self.cov == "auto" and cluster is None):
            cov, cov_type, cov_std = cov_h, "hessian", cov_h_std
        else:
            cov, cov_type, cov_std = (
                cov_s, "clustered(person)" if cluster is not None else "sandwich", cov_s_std
            )
        t_end = time.perf_counter()
        names = L.names(covs, zcovs, causes, _interval_labels(ec), _interval_labels(sc),
                        _interval_labels(bins, "since_start"))
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        z = theta / np.where(se > 0, se, np.nan)
        zc = stats.norm.ppf(0.975)
        params = pd.DataFrame(names, columns=["equation", "block", "term"])
        params["estimate"] = theta
        params["std_error"] = se
        params["statistic"] = z
        params["p_value"] = 2 * stats.norm.sf(np.abs(z))
        params["ci_lower"] = theta - zc * se
        params["ci_upper"] = theta + zc * se
        params["std_error_hessian"] = np.sqrt(np.maximum(np.diag(cov_h), 0.0))
        params["std_error_sandwich"] = np.sqrt(np.maximum(np.diag(cov_s), 0.0))
        ksearch = pd.DataFrame(
            {
                "K": [f["K"] for f in fits],
                "loglik": [f["loglik"] for f in fits],
                "n_params": [f["layout"].size for f in fits],
                "aic": [-2 * f["loglik"] + 2 * f["layout"].size for f in fits],
                "bic": [f["bic"] for f in fits],
                "improvement": [f["improvement"] for f in fits],
                "selected": [i == best for i in range(len(fits))],
                "max_grad": [f["max_grad"] for f in fits],
                "optimizer": [f["message"] for f in fits],
            }
        )
        ksearch.loc[best, "loglik"] = ll
        ksearch.loc[best, "aic"] = -2 * ll + 2 * L.size
        ksearch.loc[best, "bic"] = -2 * ll + np.log(D.w.sum()) * L.size
        ksearch.loc[best, "max_grad"] = gmax
        P_ = L.unpack(theta)
        pi = np.exp(P_["a"] - logsumexp(P_["a"]))
        mp = pd.DataFrame({"point": np.arange(1, L.K + 1), "pi": pi})
        hz = [*(f"exit:{c}" for c in causes), "start"]
        for i, h in enumerate(hz):
            mp[f"v_{h}"] = np.exp(P_["lv"][:, i])
        for i, h in enumerate(hz):
            mp[f"log_v_{h}"] = P_["lv"][:, i]
        n_events = {c: int(n_ev[r]) for r, c in enumerate(causes)}
        cfg = self.get_params()
        cfg.update({"duration": duration, "exit": exit, "start": start,
                    "covariates": list(covs), "entry": entry, "cluster": cluster,
                    "weights": weights,
                    "start_gaps": None if gaps is None else int(gaps[0].size)})
        if not conv:
            notes.append(f"K={L.K}: not converged (max |gradient| per unit weight {gmax:.2e}, "
                         f"Newton decrement {dec_f:.2e})")
            warnings.warn(
                f"TimingOfEvents: expected a converged maximum at K={L.K}; found max |gradient| "
                f"per unit weight {gmax:.2e} (tolerance {_GRAD_TOL:g}) and Newton decrement "
                f"{dec_f:.2e} (tolerance {_DEC_TOL:g}). Tried: L-BFGS-B with analytic "
                f"gradients on standardised covariates from EM/grid start values ({tried}), "
                "then up to 20 Newton steps from a finite-difference Hessian with BFGS "
                "updates. Estimates are "
                "from the last iterate. Hint: raise max_iter, merge sparse baseline intervals "
                "or effect bins, and check the K search table (max_grad).",
                ConvergenceWarning,
                stacklevel=3,
            )
        return TimingOfEventsResults(
            params=params,
            k_search=ksearch,
            mass_points=mp,
            theta=theta,
            cov=cov,
            cov_hessian=cov_h,
            cov_sandwich=cov_s,
            cov_type=cov_type,
            loglik=ll,
            aic=float(-2 * ll + 2 * L.size),
            bic=float(-2 * ll + np.log(D.w.sum()) * L.size),
            n_support_points=L.K,
            n_spells=n,
            n_treated=int(treated.sum()),
            n_events=n_events,
            causes=causes,
            covariates=covs,
            truncation=(
                self.truncation if (t0 > 0).any() or self.truncation == "inflow" else "inflow"
            ),
            dropped=dropped,
            converged=bool(conv),
            config=cfg,
            seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
            timings={
                "prepare_s": t_prep - t_begin,
                "search_s": t_search - t_prep,
                "polish_and_se_s": t_end - t_search,
            },
            notes=notes,
            _layout=L,
            _data=D,
            _start=tm,
            _cluster=cl,
            _scores=scores,
            _hess_inv=H_inv,
            _theta_std=theta_std,
            _cov_std=cov_std,
            _to_original=A_map,
        )

    # -- internals ----------------------------------------------------------------------

    def _check_identification(self, D: K_.ToeData, causes: tuple[str, ...], ec: IntArray,
                              sc: IntArray, bins: IntArray) -> None:
        R = D.n_causes
        ev = np.zeros((R, ec.size))
        for r in range(R):
            m = D.x_cause == r
            ev[r] = np.bincount(D.x_q[m], minlength=ec.size)
        labels = _interval_labels(ec)
        for r in range(R):
            zero = np.flatnonzero(ev[r] == 0)
            if zero.size:
                raise ConfigurationError(
                    f"exit_cuts: expected at least one exit of every cause in every baseline "
                    f"interval; found {zero.size} intervals without exits of cause "
                    f"'{causes[r]}' ({[labels[i] for i in zero]}). Hint: merge those "
                    "intervals (fewer cuts) or lower the last cut."
                )
        st = np.bincount(D.s_q, minlength=sc.size)
        zero = np.flatnonzero(st == 0)
        if zero.size:
            sl = _interval_labels(sc)
            raise ConfigurationError(
                f"start_cuts: expected at least one mentor start in every baseline interval; "
                f"found {zero.size} intervals without starts ({[sl[i] for i in zero]}). "
                "Hint: merge those intervals."
            )
        bl = _interval_labels(bins, "since_start")
        for r in range(R):
            m = (D.x_cause == r) & (D.x_j >= 0)
            cnt = np.bincount(D.x_j[m], minlength=bins.size)
            zero = np.flatnonzero(cnt == 0)
            if zero.size:
                raise ConfigurationError(
                    f"effect_bins: expected exits of every cause in every time-since-start "
                    f"bin; found {zero.size} bins without exits of cause '{causes[r]}' "
                    f"({[bl[i] for i in zero]}). Hint: merge bins (fewer edges)."
                )

    def _start_k1(self, D: K_.ToeData, L: K_.Layout) -> FloatArray:
        R = L.R
        expo_e = D.w @ D.NE.sum(axis=1)
        expo_e = expo_e + np.bincount(D.x_q, D.w[D.x_row], minlength=L.Qe)
        ae = np.zeros((R, L.Qe))
        for r in range(R):
            m = D.x_cause == r
            ev = np.bincount(D.x_q[m], D.w[D.x_row[m]], minlength=L.Qe)
            ae[r] = np.log(np.maximum(ev, 0.5) / np.maximum(expo_e, 1.0))
        expo_m = D.w @ D.NM
        evm = np.bincount(D.s_q, D.w[D.s_row], minlength=L.Qm)
        am = np.log(np.maximum(evm, 0.5) / np.maximum(expo_m + evm, 1.0))
        d = {
            "alpha_e": ae,
            "beta_e": np.zeros((R, L.p)),
            "delta": np.zeros((R, L.J)),
            "gamma": np.zeros((R, L.J, L.pz)),
            "alpha_m": am,
            "beta_m": np.zeros(L.p),
        }
        return L.pack(d)

    def _optimize(self, theta0: FloatArray, L: K_.Layout, D: K_.ToeData, *,
                  maxiter: int | None = None, tight: bool = False
                  ) -> tuple[FloatArray, float, str]:
        W = float(D.w.sum())

        def f(th: FloatArray) -> tuple[float, FloatArray]:
            ll, g = K_.loglik_grad(th, L, D)
            if not np.isfinite(ll):
                return 1e300, np.zeros_like(th)
            return -ll / W, -g / W

        bounds = [(None, None)] * L.n_structural + [(-_LV_BOUND, _LV_BOUND)] * (
            L.size - L.n_structural
        )
        res = optimize.minimize(
            f, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": int(self.max_iter if maxiter is None else maxiter),
                     "ftol": 1e-14 if tight else 1e-10, "gtol": 1e-9 if tight else 1e-5,
                     "maxcor": 30},
        )
        gmax = _projected_grad_max(res.x, res.jac, bounds)
        msg = f"{res.message} (nit={res.nit}, nfev={res.nfev}, max_grad={gmax:.1e})"
        if res.success and not tight and gmax > _LBFGS_CHECK:
            # "converged" by the relative-change rule with a large gradient: restart tightly
            res2 = optimize.minimize(
                f, res.x, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": int(self.max_iter if maxiter is None else maxiter),
                         "ftol": 1e-14, "gtol": 1e-9, "maxcor": 30},
            )
            g2 = _projected_grad_max(res2.x, res2.jac, bounds)
            msg += (f"; claimed convergence with a large gradient, restarted tightly: "
                    f"{res2.message} (nit={res2.nit}, nfev={res2.nfev}, max_grad={g2:.1e})")
            if np.isfinite(res2.fun) and res2.fun <= res.fun:
                res = res2
        return np.asarray(res.x), float(-res.fun * W), msg

    def _polish(self, theta: FloatArray, L: K_.Layout, D: K_.ToeData
                ) -> tuple[FloatArray, float, bool, FloatArray]:
        """Newton steps from one finite-difference Hessian with BFGS secant updates.

        The finite-difference Hessian at the L-BFGS-B solution starts the iteration; each
        accepted step updates it (BFGS on minus the Hessian, skipped when the curvature
        condition fails), so directions where the curvature changes between the start and
        the maximum are corrected without new finite differences (a plain chord iteration
        can crawl there). Stops at a decrement below 1e-12, or once the final convergence
        criterion holds while the decrement no longer falls tenfold per step (only a flat
        direction is left to follow). Returns the finite-difference Hessian, recomputed at
        the final point when the polish moved far relative to the standard errors.
        """
        ll, g = K_.loglik_grad(theta, L, D)
        W = float(D.w.sum())
        H = _num_hessian(theta, L, D)
        theta_h = theta.copy()
        negH = -H
        B = negH.copy()  # secant-updated approximation of minus the Hessian
        # keep the heterogeneity parameters inside the box of the L-BFGS-B search (a mass
        # point whose hazard tends to zero would otherwise drift along the flat direction)
        het = slice(L.n_structural, L.size)
        lim_het = max(_LV_BOUND, float(np.max(np.abs(theta[het]), initial=0.0)))
        conv = False
        dec = np.inf
        dec_prev = np.inf
        for _ in range(20):
            try:
                step = np.linalg.solve(B, g)
            except np.linalg.LinAlgError:
                break
            dec = float(g @ step)  # squared Newton decrement (log-likelihood units)
            if abs(dec) < 1e-12:
                conv = True
                break
            if dec < 0:  # not an ascent direction: the Hessian is indefinite here
                break
            if (dec > 0.1 * dec_prev
                    and (dec <= _DEC_TOL or float(np.max(np.abs(g))) / W <= _GRAD_TOL)):
                # converged by the final criterion and no longer in the fast (superlinear)
                # phase: further steps only drift along a flat direction (a hazard or
                # coefficient tending to zero / -inf), which buys nothing
                conv = True
                break
            dec_prev = dec
            s = 1.0
            moved = False
            for _ls in range(30):
                cand = theta + s * step
                cand[het] = np.clip(cand[het], -lim_het, lim_het)
                ll_c, g_c = K_.loglik_grad(cand, L, D)
                if np.isfinite(ll_c) and ll_c >= ll - 1e-12 * abs(ll):
                    moved = True
                    break
                s *= 0.5
            if not moved:
                break
            sk = cand - theta
            yk = g - g_c  # minus the change of the gradient
            sy = float(sk @ yk)
            if sy > 1e-12 * float(np.linalg.norm(sk) * np.linalg.norm(yk)):
                Bs = B @ sk
                B = B - np.outer(Bs, Bs) / float(sk @ Bs) + np.outer(yk, yk) / sy
                B = 0.5 * (B + B.T)
            theta, ll, g = cand, ll_c, g_c
        if not conv:
            try:
                dec = float(g @ np.linalg.solve(negH, g))
            except np.linalg.LinAlgError:
                dec = np.inf
            conv = bool(0 <= dec < 1e-6 or np.max(np.abs(g)) / W < 1e-9)
        # recompute the Hessian when the polish moved more than 1 % of a standard error (a
        # 50 % limit for large problems, on the grounds that the Hessian changes by
        # O(n^-1/2) per standard error moved, let the standard errors of a K = 3 fit on
        # 200,000 spells depend on where L-BFGS-B stopped: up to 2.7 % for a log v near
        # the flat ridge of the mixture)
        lim = 0.01
        try:
            se = np.sqrt(np.maximum(np.diag(np.linalg.inv(negH)), 1e-300))
            far = bool(np.max(np.abs(theta - theta_h) / se) > lim)
        except np.linalg.LinAlgError:
            far = True
        if far:
            H = _num_hessian(theta, L, D)
        return theta, ll, conv, H

    def _add_point(self, theta: FloatArray, L: K_.Layout, D: K_.ToeData,
                   rng: np.random.Generator) -> FloatArray:
        R = L.R
        P = L.unpack(theta)
        pc = K_.pieces(theta, L, D)
        lv, a = P["lv"], P["a"]
        pi = np.exp(a - logsumexp(a))
        center = pi @ lv
        grid1 = np.array([-2.5, -1.0, 1.0, 2.5])
        # grid over a common shift of all hazards plus shifts of exit vs start
        cands = []
        for s_e in grid1:
            for s_m in (*grid1, 0.0):
                c = center.copy()
                c[:R] += s_e
                c[R] += s_m
                cands.append(c)
        for c0 in grid1:
            c = center.copy()
            c[R] += c0
            cands.append(c)
        for _ in range(int(self.n_random_starts)):
            cands.append(center + rng.normal(0.0, 1.5, size=R + 1))
        new_pi = 0.1
        a_new = np.log(np.concatenate([pi * (1 - new_pi), [new_pi]]))
        a_new = a_new - a_new[0]
        best_ll, best = -np.inf, None
        for c in cands:
            lv_c = np.vstack([lv, np.clip(c, -_LV_BOUND + 1, _LV_BOUND - 1)])
            llc = K_.mixture_loglik(pc, lv_c, a_new, D)
            if llc > best_ll:
                best_ll, best = llc, lv_c
        assert best is not None
        lv2, a2, _ = K_.em_heterogeneity(pc, best, a_new, D, n_iter=12)
        L2 = L.with_k(L.K + 1)
        d = dict(P)
        d["lv"] = lv2
        d["a"] = a2
        return L2.pack(d)

    def _search(self, D: K_.ToeData, L1: K_.Layout, rng: np.random.Generator
                ) -> list[dict[str, Any]]:
        W = float(D.w.sum())
        fixed = self.support_points
        kmax = int(fixed) if fixed is not None else int(self.max_support_points)
        theta = self._start_k1(D, L1)
        theta, ll, msg = self._optimize(theta, L1, D)
        fits = [self._record(theta, L1, ll, msg, W, np.nan)]
        L = L1
        # AIC improves iff the log-likelihood gain exceeds the R + 2 added parameters
        thr = float(L1.R + 2) if self.min_improvement is None else float(self.min_improvement)
        while L.K < kmax:
            th2 = self._add_point(theta, L, D, rng)
            L2 = L.with_k(L.K + 1)
            if fixed is None:
                # trial run: give up on this K when, after `trial_iter` iterations, the gain
                # is below half the threshold (a non-improving point wanders in a flat
                # direction for many iterations)
                th2, ll2, msg2 = self._optimize(th2, L2, D, maxiter=int(self.trial_iter))
                if "ITERATIONS REACHED LIMIT" in msg2.upper() and ll2 - ll >= 0.5 * thr:
                    th2, ll2, msg2 = self._optimize(th2, L2, D)
                elif "LIMIT" in msg2.upper():
                    msg2 = f"trial stopped: gain {ll2 - ll:.3f} < {0.5 * thr:g} ({msg2})"
            else:
                th2, ll2, msg2 = self._optimize(th2, L2, D)
            imp = ll2 - ll
            fits.append(self._record(th2, L2, ll2, msg2, W, imp))
            if fixed is None and imp < thr:
                break
            theta, ll, L = th2, ll2, L2
        if fixed is not None:
            fits[-1]["aic"] = -np.inf  # force the requested K
        return fits

    @staticmethod
    def _record(theta: FloatArray, L: K_.Layout, ll: float, msg: str, W: float,
                imp: float) -> dict[str, Any]:
        return {
            "K": L.K,
            "theta": theta,
            "layout": L,
            "loglik": ll,
            "aic": -2 * ll + 2 * L.size,
            "bic": -2 * ll + np.log(W) * L.size,
            "improvement": imp,
            "message": msg,
            "max_grad": _msg_grad(msg),
        }


_GRAD_TOL = 1e-6  # max |gradient| of log L per unit weight at a converged maximum
_DEC_TOL = 1e-6  # Newton decrement g'(-H)^-1 g (log-likelihood units)
_LBFGS_CHECK = 1e-3  # L-BFGS-B "convergence" with a larger gradient triggers a restart


def _check_start_gaps(
    gaps_df: pd.DataFrame | None, n_in: int, idx: IntArray, T: IntArray, tm: IntArray
) -> tuple[tuple[IntArray, IntArray, IntArray] | None, int]:
    """Validate ``start_gaps`` and map them to the kept spells as ``(row, lo, hi)``."""
    if gaps_df is None:
        return None, 0
    if not isinstance(gaps_df, pd.DataFrame):
        raise DataValidationError(
            f"start_gaps: expected a pandas DataFrame with columns spell, first, last; found "
            f"{type(gaps_df).__name__}. Hint: build it with start_gaps_from_register."
        )
    miss = [c for c in ("spell", "first", "last") if c not in gaps_df.columns]
    if miss:
        raise DataValidationError(
            f"start_gaps: expected columns spell, first, last; found {len(miss)} missing "
            f"({miss}). Hint: build it with start_gaps_from_register."
        )
    sp, first, last = (
        TimingOfEvents._int_column(gaps_df, c, f"start_gaps: column {c!r}")
        for c in ("spell", "first", "last")
    )
    bad = (sp < 0) | (sp >= n_in)
    if bad.any():
        raise DataValidationError(
            f"start_gaps: expected spell positions 0..{n_in - 1}; found {_rows_text(bad)} "
            "outside that range. Hint: spell is the row position in spells_df, not an id."
        )
    bad = (first < 1) | (last < first)
    if bad.any():
        raise DataValidationError(
            f"start_gaps: expected 1 <= first <= last; found {_rows_text(bad)} invalid "
            "ranges. Hint: both ends are spell weeks, inclusive."
        )
    pos = np.full(n_in, -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    row = pos[sp]
    keep = row >= 0  # ranges of spells dropped by the sample rule go with them
    row, lo, hi = row[keep], first[keep] - 1, last[keep]
    order = np.lexsort((lo, row))
    row, lo, hi = row[order], lo[order], hi[order]
    overlap = np.zeros(row.size, dtype=bool)
    overlap[1:] = (row[1:] == row[:-1]) & (lo[1:] < hi[:-1])
    if overlap.any():
        raise DataValidationError(
            f"start_gaps: expected ranges that do not overlap within a spell; found "
            f"{int(overlap.sum())} overlapping ranges. Hint: merge them."
        )
    s_ = tm[row]
    bad = (s_ >= 0) & (lo < s_) & (s_ <= hi)
    if bad.any():
        raise DataValidationError(
            f"start_gaps: expected the start week to be at risk; found {int(bad.sum())} "
            "ranges holding their spell's start week. Hint: a registered start shows the "
            "person was eligible; shorten those ranges."
        )
    last = np.where(s_ >= 0, s_ - 1, T[row])  # weeks up to the start or the spell's end
    n_weeks = int(np.maximum(np.minimum(hi, last) - lo, 0).sum())
    return (row, lo, hi), n_weeks


def _cluster_meat(S_w: FloatArray, cl: npt.NDArray[Any]) -> FloatArray:
    """``G/(G-1) sum_g s_g s_g'`` of the weighted scores summed within clusters.

    One spell per cluster (the default) needs no summing; otherwise the rows are sorted by
    cluster and summed with ``np.add.reduceat``. The Gram matrix is a BLAS ``dsyrk``.
    """
    codes = np.unique(cl, return_inverse=True)[1].ravel()
    G = int(codes.max()) + 1 if codes.size else 0
    if G == codes.size:
        sums = S_w
    else:
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        sums = np.add.reduceat(S_w[order], starts, axis=0)
    return crossprod(sums) * (G / (G - 1) if G > 1 else 1.0)


def _centre_scale(X: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted column means and standard deviations (1 for constant or absent columns).

    Weighted, so that frequency weights and duplicated rows give the same internal scale.
    """
    if X.shape[1] == 0:
        return np.zeros(0), np.ones(0)
    ws = w / w.sum()
    m = ws @ X
    sd = np.sqrt(np.maximum(ws @ (X - m) ** 2, 0.0))
    return m, np.where(sd > 0, sd, 1.0)


def _original_map(L: K_.Layout, mx: FloatArray, sx: FloatArray, mz: FloatArray,
                  sz: FloatArray) -> FloatArray:
    """Matrix ``A`` with ``theta_original = A @ theta_standardised``.

    With ``x_s = (x - m) / s``: ``beta = beta_s / s`` and the baseline absorbs
    ``-m'beta``; likewise the effect bins absorb ``-m_z'gamma`` of the interactions.
    """

    def tr(th: FloatArray) -> FloatArray:
        P = {k: np.array(v, dtype=np.float64, copy=True) for k, v in L.unpack(th).items()}
        be = P["beta_e"] / sx[None, :]
        P["alpha_e"] = P["alpha_e"] - (be @ mx)[:, None]
        P["beta_e"] = be
        bm = P["beta_m"] / sx
        P["alpha_m"] = P["alpha_m"] - float(bm @ mx)
        P["beta_m"] = bm
        ga = P["gamma"] / sz[None, None, :]
        P["delta"] = P["delta"] - ga @ mz
        P["gamma"] = ga
        return L.pack(P)

    eye = np.eye(L.size)
    return np.column_stack([tr(eye[:, i]) for i in range(L.size)])


def _projected_grad_max(x: FloatArray, g: FloatArray,
                        bounds: Sequence[tuple[float | None, float | None]]) -> float:
    """Max |projected gradient| of the minimised objective (zero where a bound is active)."""
    gp = np.asarray(g, dtype=np.float64).copy()
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and x[i] <= lo and gp[i] > 0:
            gp[i] = 0.0
        if hi is not None and x[i] >= hi and gp[i] < 0:
            gp[i] = 0.0
    return float(np.max(np.abs(gp))) if gp.size else 0.0


def _msg_grad(msg: str) -> float:
    """Return the last ``max_grad=`` value in an optimiser message (NaN if none)."""
    i = msg.rfind("max_grad=")
    if i < 0:
        return float("nan")
    try:
        return float(msg[i + 9 :].split(")")[0].split(",")[0])
    except ValueError:
        return float("nan")


def _scaled_eigh(H: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigen-decomposition of minus the Hessian scaled to unit diagonal (scale-free checks).

    Eigenvalues lie in (0, P] for a strictly concave maximum; ~0 means a flat direction,
    negative an indefinite Hessian (not a maximum).
    """
    negH = -0.5 * (H + H.T)
    d = np.sqrt(np.abs(np.diag(negH)))
    d = np.where(d > 0, d, 1.0)
    return np.linalg.eigh(negH / np.outer(d, d))


def _canonical(theta: FloatArray, L: K_.Layout) -> FloatArray:
    """Reorder mass points by decreasing probability; the most probable is normalised to 0.

    The likelihood is invariant: the baselines absorb the level of the new first point.
    """
    if L.K == 1:
        return theta
    P = L.unpack(theta)
    lv, a = P["lv"].copy(), P["a"].copy()
    order = np.argsort(-a, kind="stable")
    ref = order[0]
    d = dict(P)
    d["alpha_e"] = P["alpha_e"] + lv[ref, : L.R][:, None]
    d["alpha_m"] = P["alpha_m"] + lv[ref, L.R]
    d["lv"] = (lv - lv[ref])[order]
    d["a"] = (a - a[ref])[order]
    return L.pack(d)


def _num_hessian(theta: FloatArray, L: K_.Layout, D: K_.ToeData) -> FloatArray:
    """Finite differences of the analytic gradient, symmetrised.

    Central differences (2 P gradient evaluations) for up to 200,000 spell-parameters
    (n * P), forward differences (P evaluations) above that.
    """
    P = theta.size
    H = np.empty((P, P))
    central = D.n * P <= 200_000
    g0 = None if central else K_.loglik_grad(theta, L, D)[1]
    for i in range(P):
        h = (1e-5 if central else 1e-6) * max(1.0, abs(theta[i]))
        tp = theta.copy()
        tp[i] += h
        _, gp = K_.loglik_grad(tp, L, D)
        if central:
            tm_ = theta.copy()
            tm_[i] -= h
            _, gm = K_.loglik_grad(tm_, L, D)
            H[:, i] = (gp - gm) / (2 * h)
        else:
            assert g0 is not None
            H[:, i] = (gp - g0) / h
    return 0.5 * (H + H.T)


# ----------------------------------------------------------------------------------------
# spells from the register
# ----------------------------------------------------------------------------------------


def _union_indicator(register: Any, names: Sequence[str]) -> npt.NDArray[np.bool_]:
    """(persons, weeks) indicator of being in any of the states or unions ``names``."""
    out = np.asarray(register.indicator(names[0]), dtype=bool)
    for nm in names[1:]:
        out = out | np.asarray(register.indicator(nm), dtype=bool)
    return out


def spells_from_register(
    register: Any,
    spells: Any,
    baseline: pd.DataFrame,
    *,
    benefit: str | Sequence[str] = "on_benefit",
    exits: Mapping[str, Sequence[str]] | None = None,
    covariates: Sequence[str] | None = None,
    sample: Literal["inflow", "stock", "stock_inflow"] = "inflow",
    stock_week: int | None = None,
    max_weeks: int | None = None,
    history_weeks: int = 52,
    history_states: Sequence[str] = (),
    entry_states: Sequence[str] = (),
) -> pd.DataFrame:
    """Build timing-of-events spell data from register objects.

    One spell per person: the first benefit spell entered inside the register window
    (``sample="inflow"``), the spell in progress at ``stock_week`` (``sample="stock"``,
    left-truncated: ``entry`` = weeks already elapsed at ``stock_week``), or both
    (``sample="stock_inflow"``: the spell in progress at ``stock_week`` and, for persons
    not on benefit then, the first spell entered after ``stock_week``; every spell at
    risk from ``stock_week`` on, e.g. from the launch of a programme).

    Parameters
    ----------
    register : WeeklyRegister
        The weekly register (``indicator``, ``catalog``, ``column``, ``weeks``).
    spells : TreatmentSpells
        Mentor spells; ``spells.locate(register)`` gives (row, start_col, end_col).
    baseline : pandas.DataFrame
        One row per register person in register row order, first column ``person``.
    benefit : str or sequence of str
        State or union name defining "on benefit" (default ``on_benefit``), or several
        whose union does (e.g. the benefit states without disability pension, which then
        ends a spell like any other destination).
    exits : mapping of str to sequence of str, optional
        Exit causes in order (codes 1..R) as state/union names; default
        ``{"employment": ("employed",), "education": ("education",),
        "other": ("self_support_other",)}``. Leaving benefit to any other state
        (e.g. ``dead_emigrated``, ``unknown``) is censoring.
    covariates : sequence of str, optional
        Numeric baseline columns to carry (default: all numeric columns but ``person``).
    sample : {"inflow", "stock", "stock_inflow"}
        Inflow (new spells, ``entry = 0``), stock sample at ``stock_week``, or the stock
        at ``stock_week`` plus the later inflow.
    stock_week : int, optional
        ISO week label ``YYYYWW`` of the stock sampling date (required for ``"stock"`` and
        ``"stock_inflow"``).
    max_weeks : int, optional
        Administrative censoring after this many weeks of follow-up after sample entry.
    history_weeks : int
        Window for ``prior_benefit_share``: share of the weeks before spell entry on
        benefit (window clipped at the register start).
    history_states : sequence of str
        States or unions ``name`` for which ``prior_<name>_share`` is added: the share of
        the ``history_weeks`` weeks before **sample** entry (register column
        ``entry_col``; the spell entry for inflow spells) spent in ``name`` (window
        clipped at the register start; 0 when empty). E.g. ``("employed",)`` for recent
        employment.
    entry_states : sequence of str
        States or unions ``name`` for which ``at_entry_<name>`` (0/1) is added: the state
        in the sample-entry week ``entry_col`` (spell week ``entry + 1``).

    Returns
    -------
    pandas.DataFrame
        ``person, row, duration, exit, start, entry, entry_col, prior_benefit_share``,
        the history and entry-state columns and the covariates; ``df.attrs`` holds
        ``causes`` and ``dropped`` counts.

    Notes
    -----
    Spell week ``t`` is register column ``b + t - 1`` where ``b`` is the first benefit
    week; ``duration`` is the number of benefit weeks (the exit is observed in the first
    week off benefit, recorded as happening in week ``duration``). The mentor start week
    is ``start_col - b + 1``; starts outside ``[b + entry, exit)`` do not belong to the
    spell (counted in ``dropped`` when before entry, since such spells are not at risk
    of a first start and are removed). Covariates are time-constant, measured at entry.
    """
    if exits is None:
        exits = {
            "employment": ("employed",),
            "education": ("education",),
            "other": ("self_support_other",),
        }
    names_b = [benefit] if isinstance(benefit, str) else list(benefit)
    if not names_b:
        raise ConfigurationError(
            "benefit: expected a state or union name or a non-empty sequence of them; found "
            "an empty sequence. Hint: 'on_benefit'."
        )
    Bm = _union_indicator(register, names_b)
    n, W = Bm.shape
    rows_all = np.arange(n)
    prev = np.zeros_like(Bm)
    prev[:, 1:] = Bm[:, :-1]
    inflow = Bm & ~prev
    inflow[:, 0] = False  # spells already running at the first week: start unknown
    dropped: dict[str, int] = {}
    if sample == "inflow":
        has = inflow.any(axis=1)
        b = np.argmax(inflow, axis=1)
        entry_w = np.zeros(n, dtype=np.int64)
        dropped["no_inflow_spell"] = int((~has).sum())
    elif sample in ("stock", "stock_inflow"):
        if stock_week is None:
            raise ConfigurationError(
                f"stock_week: expected an ISO week label YYYYWW for sample={sample!r}; found "
                "None. Hint: pass stock_week or use sample='inflow'."
            )
        s0 = int(np.asarray(register.column(np.array([stock_week])))[0])
        on = Bm[:, s0]
        # last inflow at or before s0
        cols = np.arange(W)
        mask = inflow & (cols[None, :] <= s0)
        has_in = mask.any(axis=1)
        b = W - 1 - np.argmax(mask[:, ::-1], axis=1)
        # continuous benefit from b to s0
        Cs = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(Bm, axis=1)], axis=1)
        cont = Cs[rows_all, s0 + 1] - Cs[rows_all, b] == (s0 - b + 1)
        has = on & has_in & cont
        dropped["not_on_benefit_at_stock_week"] = int((~on).sum())
        dropped["spell_start_unobserved"] = int((on & ~(has_in & cont)).sum())
        entry_w = np.where(has, s0 - b, 0).astype(np.int64)
        if sample == "stock_inflow":
            # persons off benefit at s0: their first spell entered after s0
            later = inflow & (cols[None, :] > s0)
            has_l = ~on & later.any(axis=1)
            b = np.where(has_l, np.argmax(later, axis=1), b)
            has = has | has_l
            del dropped["not_on_benefit_at_stock_week"]
            dropped["no_spell_at_or_after_stock_week"] = int((~on & ~has_l).sum())
    else:
        raise ConfigurationError(
            f"sample: expected 'inflow', 'stock' or 'stock_inflow'; found {sample!r}. "
            "Hint: 'inflow'."
        )
    rows = rows_all[has]
    b = b[has].astype(np.int64)
    entry_w = entry_w[has]
    # first week off benefit at or after b (chunked over rows to bound memory)
    e = np.full(rows.size, W, dtype=np.int64)
    cols = np.arange(W)
    chunk = max(1, 2_000_000 // max(W, 1))
    for lo in range(0, rows.size, chunk):
        r_ = rows[lo : lo + chunk]
        off = ~Bm[r_] & (cols[None, :] >= b[lo : lo + chunk, None])
        anyoff = off.any(axis=1)
        e[lo : lo + chunk] = np.where(anyoff, np.argmax(off, axis=1), W)
    T = e - b
    states = register.states() if e.size else None
    cause = np.zeros(rows.size, dtype=np.int64)
    ended = e < W
    if states is not None and ended.any():
        st_exit = np.asarray(states)[rows[ended], e[ended]]
        code = np.zeros(ended.sum(), dtype=np.int64)
        for r, (_label, names) in enumerate(exits.items()):
            ids: list[int] = []
            for nm in names:
                ids.extend(int(i) for i in register.catalog.members(nm))
            code = np.where((code == 0) & np.isin(st_exit, ids), r + 1, code)
        cause[ended] = code
    if max_weeks is not None:
        cap = entry_w + int(max_weeks)
        over = T > cap
        T = np.where(over, cap, T)
        cause = np.where(over, 0, cause)
    # mentor starts
    s_row, s_col, _ = spells.locate(register)
    s_row = np.asarray(s_row, dtype=np.int64)
    s_col = np.asarray(s_col, dtype=np.int64)
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    p_ = pos[s_row]
    ok = p_ >= 0
    s_row, s_col, p_ = s_row[ok], s_col[ok], p_[ok]
    wk = s_col - b[p_] + 1
    in_spell = (wk >= 1) & (wk <= T[p_])
    before_entry = in_spell & (wk <= entry_w[p_])
    bad_rows = np.zeros(rows.size, dtype=bool)
    bad_rows[p_[before_entry]] = True
    use = in_spell & ~before_entry
    order = np.lexsort((wk[use], p_[use]))
    pu, wu = p_[use][order], wk[use][order]
    first = np.unique(pu, return_index=True)[1]
    start = np.full(rows.size, -1, dtype=np.int64)
    start[pu[first]] = wu[first]
    # history covariate
    Cb = np.concatenate([np.zeros((n, 1), np.int32), np.cumsum(Bm, axis=1, dtype=np.int32)], 1)
    lo_h = np.maximum(b - int(history_weeks), 0)
    span = np.maximum(b - lo_h, 1)
    share = (Cb[rows, b] - Cb[rows, lo_h]) / span
    share = np.where(b - lo_h > 0, share, 0.0)
    ecol = b + entry_w
    extra: dict[str, npt.NDArray[Any]] = {}
    lo_e = np.maximum(ecol - int(history_weeks), 0)
    for nm in history_states:
        C = np.concatenate(
            [np.zeros((n, 1), np.int32),
             np.cumsum(np.asarray(register.indicator(nm), dtype=bool), axis=1, dtype=np.int32)],
            1,
        )
        h = (C[rows, ecol] - C[rows, lo_e]) / np.maximum(ecol - lo_e, 1)
        extra[f"prior_{nm}_share"] = np.where(ecol - lo_e > 0, h, 0.0)
    for nm in entry_states:
        extra[f"at_entry_{nm}"] = np.asarray(register.indicator(nm), dtype=bool)[
            rows, ecol].astype(np.int8)
    out = pd.DataFrame(
        {
            "person": baseline.iloc[rows, 0].to_numpy(),
            "row": rows,
            "duration": T,
            "exit": cause,
            "start": start,
            "entry": entry_w,
            "entry_col": ecol,
            "prior_benefit_share": share,
            **extra,
        }
    )
    if covariates is None:
        covariates = [
            c for c in baseline.columns[1:] if pd.api.types.is_numeric_dtype(baseline[c])
        ]
    for c in covariates:
        out[c] = baseline[c].to_numpy()[rows]
    keep = ~bad_rows & (T >= 1)
    dropped["treated_before_entry"] = int(bad_rows.sum())
    out = out.loc[keep].reset_index(drop=True)
    out.attrs["causes"] = tuple(exits.keys())
    out.attrs["dropped"] = dropped
    out.attrs["sample"] = sample
    return out


def start_gaps_from_register(
    register: Any,
    spells_df: pd.DataFrame,
    baseline: pd.DataFrame | None = None,
    *,
    states: Sequence[str] = ("passive_benefit", "activation"),
    lag: int = 1,
    age_band: tuple[float, float] | None = None,
    birth_column: str = "birth_year",
    chunk_weeks: int = 4_000_000,
) -> pd.DataFrame:
    """Weeks of each spell in which a mentor start was not possible (``start_gaps``).

    A start in spell week ``t`` (register column ``c``) is possible when the state in
    column ``c - lag`` is one of ``states`` and, with ``age_band = (lo, hi)``, the age at
    ``c`` is in ``[lo, hi)``: the eligibility rules of :class:`RiskSetDesign`
    (``target_states``, state held in week ``s - 1``, ``age_band``, ``birth_column``).
    The registered start week of a spell always counts as at risk. The design's washout
    after an earlier mentor episode is not applied: for the first start in a spell
    sampled from the launch of a programme there is no earlier episode.

    Parameters
    ----------
    register : WeeklyRegister
        The register the spells were built from.
    spells_df : pandas.DataFrame
        Output of :func:`spells_from_register` (columns ``row``, ``entry_col``,
        ``entry``, ``duration``, ``start``).
    baseline : pandas.DataFrame, optional
        One row per register person in register row order with ``birth_column``
        (needed with ``age_band``).
    states : sequence of str
        States or unions in which a person is eligible (held ``lag`` weeks before).
    lag : int
        Weeks between the eligible state and the start (1: the week before).
    age_band : (float, float), optional
        Eligible ages ``lo <= age < hi`` in years of 52.1775 weeks.
    birth_column : str
        Baseline column with the birth year (``YYYY``, taken as week 26) or ISO week.
    chunk_weeks : int
        Spell-weeks processed at a time (bounds the memory).

    Returns
    -------
    pandas.DataFrame
        ``spell`` (row position in ``spells_df``), ``first`` and ``last`` (inclusive spell
        weeks): the maximal runs of weeks not at risk of a start within ``1..duration``,
        the ``start_gaps`` argument of :meth:`TimingOfEvents.fit`. ``df.attrs`` holds
        ``n_weeks`` (weeks not at risk) and ``n_spells`` (spells with at least one).

    Raises
    ------
    DataValidationError
        ``spells_df`` lacks a column or a spell lies outside the register.
    ConfigurationError
        Empty ``states``, a negative ``lag``, or ``age_band`` without the birth column.

    Examples
    --------
    >>> sp = spells_from_register(study.register, study.spells, study.baseline,
    ...                           sample="stock_inflow", stock_week=201201)  # doctest: +SKIP
    >>> gaps = start_gaps_from_register(study.register, sp, study.baseline,
    ...                                 age_band=(18, 65))  # doctest: +SKIP
    >>> TimingOfEvents().fit(sp, duration="duration", exit="exit", start="start",
    ...                      entry="entry", start_gaps=gaps)  # doctest: +SKIP
    """
    from mentor_impact.design.risk_set import age_window_columns
    from mentor_impact.registers.isoweek import iso_to_ordinal

    need = ("row", "entry_col", "entry", "duration", "start")
    miss = [c for c in need if c not in spells_df.columns]
    if miss:
        raise DataValidationError(
            f"spells_df: expected the columns of spells_from_register {list(need)}; found "
            f"{len(miss)} missing ({miss}). Hint: build the spells with spells_from_register."
        )
    names = [states] if isinstance(states, str) else list(states)
    if not names:
        raise ConfigurationError(
            "states: expected at least one state or union name; found none. Hint: "
            "('passive_benefit', 'activation')."
        )
    if int(lag) < 0:
        raise ConfigurationError(
            f"lag: expected an integer >= 0; found {lag}. Hint: 1 (the week before)."
        )
    ok_state = _union_indicator(register, names)
    n_reg, W = ok_state.shape
    row = spells_df["row"].to_numpy(dtype=np.int64)
    T = spells_df["duration"].to_numpy(dtype=np.int64)
    tm = spells_df["start"].to_numpy(dtype=np.int64)
    b = spells_df["entry_col"].to_numpy(dtype=np.int64) - spells_df["entry"].to_numpy(
        dtype=np.int64)
    bad = (row < 0) | (row >= n_reg) | (b < 0) | (b + T > W) | (T < 1)
    if bad.any():
        raise DataValidationError(
            f"spells_df: expected spells inside the register ({n_reg} rows, {W} weeks); "
            f"found {_rows_text(bad)} outside it. Hint: build the spells from this register."
        )
    a_lo = a_hi = None
    if age_band is not None:
        wk0 = int(np.asarray(iso_to_ordinal(np.asarray(register.weeks)[:1],
                                            argument="register.weeks"))[0])
        a_lo, a_hi, _ = age_window_columns(baseline, wk0, age_band, birth_column)
    lag = int(lag)
    out_s: list[IntArray] = []
    out_f: list[IntArray] = []
    out_l: list[IntArray] = []
    n = T.size
    ends = np.cumsum(T)
    lo = 0
    while lo < n:  # chunks of spells (a few per register, not per person)
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + chunk_weeks,
                                 side="right"))
        hi = max(hi, lo + 1)
        cnt = T[lo:hi]
        sp = np.repeat(np.arange(lo, hi, dtype=np.int64), cnt)
        t = np.arange(sp.size, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
        col = b[sp] + t - 1
        r = row[sp]
        pc = col - lag
        ok = (pc >= 0) & ok_state[r, np.maximum(pc, 0)]
        if a_lo is not None and a_hi is not None:
            ok &= (col >= a_lo[r]) & (col < a_hi[r])
        ok |= t == tm[sp]
        gap = ~ok
        prev = np.zeros_like(gap)
        prev[1:] = gap[:-1]
        prev &= t > 1
        nxt = np.zeros_like(gap)
        nxt[:-1] = gap[1:]
        nxt &= t < T[sp]
        f = gap & ~prev
        la = gap & ~nxt
        out_s.append(sp[f])
        out_f.append(t[f])
        out_l.append(t[la])
        lo = hi
    s_ = np.concatenate(out_s) if out_s else np.zeros(0, np.int64)
    f_ = np.concatenate(out_f) if out_f else np.zeros(0, np.int64)
    l_ = np.concatenate(out_l) if out_l else np.zeros(0, np.int64)
    out = pd.DataFrame({"spell": s_, "first": f_, "last": l_})
    out.attrs["n_weeks"] = int((l_ - f_ + 1).sum())
    out.attrs["n_spells"] = int(np.unique(s_).size)
    return out
