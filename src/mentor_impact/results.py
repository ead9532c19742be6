"""The results protocol shared by every effect estimator.

An estimator returns an :class:`EffectResults`: an immutable record of the estimates for
``k`` targets (one scalar outcome, or one horizon week per target for a curve), their
covariance, and, where available, the per-row influence function from which any other
covariance (``IID()``, ``Clustered("person")``) can be computed without refitting.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact._meta import to_jsonable, versions
from mentor_impact.exceptions import ConfigurationError, EstimationError
from mentor_impact.inference.bands import sup_t_critical_value
from mentor_impact.inference.covariance import IID, CovarianceEstimator, resolve_cov
from mentor_impact.inference.influence import InfluenceLike, RowInfluence

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["EffectResults", "Summary", "curve_targets", "make_effect_results"]

FloatArray = npt.NDArray[np.float64]


def curve_targets(tau: npt.ArrayLike) -> tuple[str, ...]:
    """Return the target labels of an effect curve, ``("tau=0", "tau=1", ...)``.

    Parameters
    ----------
    tau : array-like of int
        Horizon weeks.

    Returns
    -------
    tuple of str
        One label per horizon week.
    """
    return tuple(f"tau={int(t)}" for t in np.asarray(tau).ravel())


class Summary:
    """A printable summary table with text, HTML and LaTeX renderings.

    Parameters
    ----------
    title : str
        First line of the summary.
    header : list of (str, str)
        Key–value pairs shown above the table (estimator, estimand, n, dropped, ...).
    table : pandas.DataFrame
        The coefficient-style table.
    notes : list of str
        Lines shown below the table.
    """

    def __init__(
        self,
        title: str,
        header: list[tuple[str, str]],
        table: pd.DataFrame,
        notes: list[str] | None = None,
    ) -> None:
        self.title = title
        self.header = header
        self.table = table
        self.notes = list(notes or [])

    def as_text(self) -> str:
        """Return the summary as plain text."""
        lines = [self.title, "=" * max(len(self.title), 40)]
        width = max((len(k) for k, _ in self.header), default=0)
        lines += [f"{k:<{width}} : {v}" for k, v in self.header]
        lines.append("-" * 40)
        lines.append(self.table.to_string(float_format=lambda x: f"{x:.4g}"))
        if self.notes:
            lines.append("-" * 40)
            lines += self.notes
        return "\n".join(lines)

    def as_html(self) -> str:
        """Return the summary as an HTML fragment."""
        head = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in self.header)
        notes = "".join(f"<p>{n}</p>" for n in self.notes)
        return (
            f"<div class='mi-summary'><h4>{self.title}</h4><table>{head}</table>"
            f"{self.table.to_html(float_format=lambda x: f'{x:.4g}')}{notes}</div>"
        )

    def as_latex(self) -> str:
        """Return the table as LaTeX (``tabular``), with the title as a comment."""
        return f"% {self.title}\n" + self.table.to_latex(float_format="%.4g")

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        return self.as_html()


@dataclass(frozen=True, eq=False)
class EffectResults:
    """Estimates of a treatment effect for one scalar outcome or a whole curve.

    Instances are immutable. Derived quantities (standard errors, intervals, tables) are
    computed from ``estimate`` and ``cov``; :meth:`with_cov` gives a new object with another
    covariance computed from the stored influence function.

    Parameters
    ----------
    estimator : str
        Name of the estimator (``"IPW"``, ``"NearestNeighborMatching"``, ...).
    estimand : str
        ``"ATT"``, ``"ATE"``, ``"ATC"``, ``"ATO"``, or a design estimand such as ``"ATT-B"``.
    outcome : str
        Name of the outcome.
    targets : tuple of str
        One label per estimate (``("re78",)`` or ``("tau=0", ..., "tau=156")``).
    estimate : ndarray of shape (k,)
        Point estimates.
    cov : ndarray of shape (k, k)
        Covariance matrix in use.
    cov_type : str
        Label of the covariance (``"iid"``, ``"clustered(person)"``, ``"abadie-imbens"``).
    influence : ndarray or RowInfluence of shape (n, k), optional
        Scaled influence function, ``theta_hat - theta ~= influence.sum(axis=0)``. Curve
        estimators at register size may store a
        :class:`mentor_impact.inference.influence.RowInfluence`, which computes rows on
        demand (``np.asarray`` gives the full matrix).
    cluster : ndarray of shape (n,), optional
        Default cluster labels (person) aligned with ``influence``.
    tau : ndarray of shape (k,), optional
        Horizon weeks when the targets form a curve.
    treated_mean, counterfactual_mean : ndarray of shape (k,), optional
        Mean outcome of the treated and the estimated counterfactual mean.
    n, n_treated, n_control : int
        Rows used by the estimator (after any drop).
    dropped : dict of str to int
        Rows dropped by the estimator, by reason (``{"outside_caliper": 12}``).
    weights : ndarray of shape (n_input,), optional
        Per-row weights for reuse by other estimators (rows of the input data).
    extra : dict
        Estimator-specific information (matches, effective sample size by tau, notes).
    config : dict
        The estimator's options, for provenance.
    seed : int, optional
        Seed used by any random step.
    frame : pandas.DataFrame, optional
        Per-row columns aligned with ``influence`` (for ``Clustered(by=...)``).

    Examples
    --------
    >>> import numpy as np
    >>> from mentor_impact.results import make_effect_results
    >>> y = np.array([1.0, 2.0, 3.0, 4.0])
    >>> phi = ((y - y.mean()) / y.size)[:, None]
    >>> res = make_effect_results(estimator="mean", estimand="ATE", outcome="y",
    ...                           targets=("y",), estimate=[y.mean()], influence=phi)
    >>> float(res.std_errors.iloc[0]) ** 2 == float((phi ** 2).sum())
    True
    """

    estimator: str
    estimand: str
    outcome: str
    targets: tuple[str, ...]
    estimate: FloatArray
    cov: FloatArray
    cov_type: str = "iid"
    influence: InfluenceLike | None = None
    cluster: npt.NDArray[Any] | None = None
    tau: npt.NDArray[np.int64] | None = None
    treated_mean: FloatArray | None = None
    counterfactual_mean: FloatArray | None = None
    n: int = 0
    n_treated: int = 0
    n_control: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    weights: FloatArray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    frame: pd.DataFrame | None = None

    # ------------------------------------------------------------------ derived statistics
    @property
    def index(self) -> pd.Index:
        """Target labels as a :class:`pandas.Index`."""
        return pd.Index(list(self.targets), name="target")

    @property
    def params(self) -> pd.Series:
        """Point estimates as a labelled Series (alias of :attr:`estimates`)."""
        return pd.Series(self.estimate, index=self.index, name="estimate")

    @property
    def estimates(self) -> pd.Series:
        """Point estimates as a labelled Series."""
        return self.params

    @cached_property
    def std_errors(self) -> pd.Series:
        """Standard errors, the square roots of the diagonal of :attr:`cov`."""
        se = np.sqrt(np.clip(np.diag(self.cov), 0.0, None))
        return pd.Series(se, index=self.index, name="std_error")

    @property
    def tstats(self) -> pd.Series:
        """Wald statistics ``estimate / std_error``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return pd.Series(
                self.estimate / self.std_errors.to_numpy(), index=self.index, name="statistic"
            )

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from the normal approximation."""
        p = 2.0 * stats.norm.sf(np.abs(self.tstats.to_numpy()))
        return pd.Series(p, index=self.index, name="p_value")

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Pointwise normal confidence intervals.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of each interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper`` indexed by target.
        """
        if not 0.0 < level < 1.0:
            raise ConfigurationError(f"level: expected a number in (0, 1); got {level!r}.")
        z = stats.norm.ppf(0.5 + level / 2.0)
        se = self.std_errors.to_numpy()
        return pd.DataFrame(
            {"lower": self.estimate - z * se, "upper": self.estimate + z * se}, index=self.index
        )

    def uniform_band(
        self, level: float = 0.95, *, n_draws: int = 10_000, seed: int = 0
    ) -> pd.DataFrame:
        """Simultaneous (sup-t) confidence band over all targets.

        The critical value is the ``level`` quantile of ``max_j |Z_j|`` with ``Z`` Gaussian
        with the correlation matrix of the estimates (see
        :func:`mentor_impact.inference.sup_t_critical_value`).

        Parameters
        ----------
        level : float, default=0.95
            Simultaneous coverage.
        n_draws : int, default=10000
            Gaussian draws for the critical value.
        seed : int, default=0
            Seed of the draws.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, indexed by target; the critical value is in
            ``df.attrs["critical_value"]``.
        """
        c = sup_t_critical_value(self.cov, level, n_draws=n_draws, seed=seed)
        se = self.std_errors.to_numpy()
        out = pd.DataFrame(
            {"lower": self.estimate - c * se, "upper": self.estimate + c * se}, index=self.index
        )
        out.attrs["critical_value"] = c
        out.attrs["level"] = level
        return out

    # ------------------------------------------------------------------ tables
    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Tidy table: one row per target.

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the pointwise intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``target, tau, estimate, std_error, statistic, p_value, ci_lower,
            ci_upper, treated_mean, counterfactual_mean, n`` (``tau`` and the means only
            when known).
        """
        ci = self.conf_int(level)
        df = pd.DataFrame(
            {
                "target": list(self.targets),
                "estimate": self.estimate,
                "std_error": self.std_errors.to_numpy(),
                "statistic": self.tstats.to_numpy(),
                "p_value": self.pvalues.to_numpy(),
                "ci_lower": ci["lower"].to_numpy(),
                "ci_upper": ci["upper"].to_numpy(),
            }
        )
        if self.tau is not None:
            df.insert(1, "tau", np.asarray(self.tau))
        if self.treated_mean is not None:
            df["treated_mean"] = self.treated_mean
        if self.counterfactual_mean is not None:
            df["counterfactual_mean"] = self.counterfactual_mean
        df["n"] = self.n
        df.insert(0, "outcome", self.outcome)
        df.insert(1, "estimator", self.estimator)
        df.insert(2, "estimand", self.estimand)
        return df

    def summary(self, level: float = 0.95, max_rows: int = 12) -> Summary:
        """Printable summary (``str``, ``_repr_html_``, ``as_latex``).

        Parameters
        ----------
        level : float, default=0.95
            Coverage of the intervals.
        max_rows : int, default=12
            For curves, show at most this many targets (weeks 0, 26, 52, 104, 156 first).

        Returns
        -------
        Summary
            The summary object.
        """
        tab = self.to_frame(level).set_index("target")
        cols = ["estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"]
        tab = tab[cols]
        if len(tab) > max_rows and self.tau is not None:
            want = [t for t in (0, 13, 26, 52, 78, 104, 130, 156) if t in set(self.tau.tolist())]
            tab = tab.loc[[f"tau={t}" for t in want]]
        header = [
            ("Estimator", self.estimator),
            ("Estimand", self.estimand),
            ("Outcome", self.outcome),
            ("Covariance", self.cov_type),
            ("Rows used", f"{self.n} (treated {self.n_treated}, control {self.n_control})"),
        ]
        dropped = {k: v for k, v in self.dropped.items() if v}
        header.append(
            ("Dropped", ", ".join(f"{k}: {v}" for k, v in dropped.items()) if dropped else "none")
        )
        notes = [str(n) for n in self.extra.get("notes", [])]
        return Summary(f"{self.estimator} estimate of the {self.estimand}", header, tab, notes)

    def __str__(self) -> str:
        return self.summary().as_text()

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with estimates, inference, counts and provenance.

        Returns
        -------
        dict
            Keys ``estimator, estimand, outcome, cov_type, targets, tau, estimate, std_error,
            ci_lower, ci_upper, treated_mean, counterfactual_mean, n, n_treated, n_control,
            dropped, config, seed, extra, versions``. Influence functions and weights are not
            included (they are per-row data).
        """
        ci = self.conf_int()
        extra = {k: v for k, v in self.extra.items() if _is_small(v)}
        return to_jsonable(
            {
                "estimator": self.estimator,
                "estimand": self.estimand,
                "outcome": self.outcome,
                "cov_type": self.cov_type,
                "targets": list(self.targets),
                "tau": None if self.tau is None else np.asarray(self.tau),
                "estimate": self.estimate,
                "std_error": self.std_errors.to_numpy(),
                "ci_lower": ci["lower"].to_numpy(),
                "ci_upper": ci["upper"].to_numpy(),
                "treated_mean": self.treated_mean,
                "counterfactual_mean": self.counterfactual_mean,
                "n": self.n,
                "n_treated": self.n_treated,
                "n_control": self.n_control,
                "dropped": dict(self.dropped),
                "config": self.config,
                "seed": self.seed,
                "extra": extra,
                "versions": versions(),
            }
        )

    def to_json(self, path: str | Path | None = None, *, indent: int = 1) -> str:
        """Serialise :meth:`to_dict` to JSON, optionally writing it to ``path``.

        Parameters
        ----------
        path : str or Path, optional
            File to write.
        indent : int, default=1
            JSON indentation.

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ transformations
    def with_cov(self, cov: CovarianceEstimator | str) -> EffectResults:
        """Return a copy with another covariance computed from the influence function.

        Parameters
        ----------
        cov : CovarianceEstimator or str
            ``IID()``, ``Clustered("person")``, or an alias string.

        Returns
        -------
        EffectResults
            New results; the point estimates are unchanged.

        Raises
        ------
        EstimationError
            If this estimator stored no influence function (e.g. Abadie–Imbens matching).
        """
        if self.influence is None:
            raise EstimationError(
                f"with_cov: {self.estimator} results carry no influence function, so the "
                "covariance cannot be recomputed. Hint: refit with the wanted covariance option."
            )
        est = resolve_cov(cov, IID())
        v = est.cov(self.influence, cluster=self.cluster, frame=self.frame)
        return dataclasses.replace(self, cov=v, cov_type=est.describe())

    def linear_combination(
        self, matrix: npt.ArrayLike, targets: Sequence[str], *, tau: npt.ArrayLike | None = None
    ) -> EffectResults:
        """Return results for ``L @ theta`` (e.g. accumulated effects, contrasts).

        Parameters
        ----------
        matrix : array-like of shape (m, k)
            The linear map ``L``.
        targets : sequence of str
            Labels of the ``m`` new targets.
        tau : array-like of shape (m,), optional
            Horizon weeks of the new targets, if they form a curve.

        Returns
        -------
        EffectResults
            Estimates ``L theta``, covariance ``L V L'`` and influence ``phi L'``.
        """
        lmat = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        if lmat.shape[1] != self.estimate.size or lmat.shape[0] != len(targets):
            raise ConfigurationError(
                f"matrix: expected shape ({len(targets)}, {self.estimate.size}); "
                f"got {lmat.shape}."
            )

        def lin(v: FloatArray | None) -> FloatArray | None:
            return None if v is None else lmat @ v

        return dataclasses.replace(
            self,
            targets=tuple(targets),
            estimate=lmat @ self.estimate,
            cov=lmat @ self.cov @ lmat.T,
            influence=None if self.influence is None else self.influence @ lmat.T,
            tau=None if tau is None else np.asarray(tau, dtype=np.int64),
            treated_mean=lin(self.treated_mean),
            counterfactual_mean=lin(self.counterfactual_mean),
        )

    def accumulated(self, a: int, b: int) -> EffectResults:
        """Accumulated effect ``sum_{tau=a}^{b} theta(tau)`` in weeks.

        Parameters
        ----------
        a, b : int
            First and last horizon week (inclusive).

        Returns
        -------
        EffectResults
            One target, ``"weeks {a}-{b}"``, with its standard error from the same
            covariance (or influence function).
        """
        if self.tau is None:
            raise ConfigurationError(
                "accumulated: these results are not a curve over horizon weeks (tau is None)."
            )
        tau = np.asarray(self.tau)
        sel = (tau >= a) & (tau <= b)
        if not sel.any() or sel.sum() != b - a + 1:
            raise ConfigurationError(
                f"accumulated: expected horizon weeks {a}..{b} to be estimated; "
                f"the curve covers {int(tau.min())}..{int(tau.max())}."
            )
        return self.linear_combination(sel[None, :].astype(float), [f"weeks {a}-{b}"])

    def at(self, taus: Sequence[int] | npt.ArrayLike) -> EffectResults:
        """Return the subset of a curve at the given horizon weeks.

        Parameters
        ----------
        taus : sequence of int
            Horizon weeks to keep, in the order given.

        Returns
        -------
        EffectResults
            Results with one target per requested week.
        """
        if self.tau is None:
            raise ConfigurationError("at: these results are not a curve (tau is None).")
        tau = np.asarray(self.tau).tolist()
        want = [int(t) for t in np.asarray(taus).ravel()]
        missing = [t for t in want if t not in tau]
        if missing:
            raise ConfigurationError(
                f"taus: expected weeks within the estimated curve; {len(missing)} requested "
                f"week(s) are not estimated (first: {missing[0]})."
            )
        idx = [tau.index(t) for t in want]
        lmat = np.zeros((len(idx), len(tau)))
        lmat[np.arange(len(idx)), idx] = 1.0
        return self.linear_combination(lmat, [self.targets[i] for i in idx], tau=want)

    # ------------------------------------------------------------------ plotting
    def plot(
        self,
        ax: Axes | None = None,
        *,
        level: float = 0.95,
        uniform: bool = True,
        label: str | None = None,
    ) -> Axes:
        """Plot the estimates with pointwise intervals (and the uniform band for curves).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; the current axes when omitted.
        level : float, default=0.95
            Coverage of the intervals.
        uniform : bool, default=True
            Draw the sup-t band for curves.
        label : str, optional
            Legend label of the estimate.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on (``plt.show()`` is never called).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            ax = plt.gca()
        ci = self.conf_int(level)
        name = label or f"{self.estimator} ({self.estimand})"
        if self.tau is not None and len(self.targets) > 1:
            x = np.asarray(self.tau)
            if uniform:
                band = self.uniform_band(level)
                ax.fill_between(x, band["lower"], band["upper"], alpha=0.15, label="uniform band")
            ax.fill_between(x, ci["lower"], ci["upper"], alpha=0.3, label=f"{level:.0%} pointwise")
            ax.plot(x, self.estimate, lw=1.5, label=name)
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_xlabel("weeks since (pseudo-)start, τ")
            ax.set_ylabel(f"effect on {self.outcome}")
        else:
            y = np.arange(len(self.targets))
            err = np.vstack([self.estimate - ci["lower"], ci["upper"] - self.estimate])
            ax.errorbar(self.estimate, y, xerr=err, fmt="o", label=name)
            ax.set_yticks(y, list(self.targets))
            ax.axvline(0.0, color="grey", lw=0.8)
            ax.set_xlabel(f"effect on {self.outcome}")
        ax.legend(loc="best", fontsize="small")
        return ax


def _is_small(v: Any) -> bool:
    """Whether an ``extra`` entry is small enough to serialise (no per-row arrays)."""
    if isinstance(v, np.ndarray):
        return v.size <= 1000
    if isinstance(v, (pd.DataFrame, pd.Series)):
        return len(v) <= 1000
    if isinstance(v, Mapping):
        return all(_is_small(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return len(v) <= 1000
    return True


def make_effect_results(
    *,
    estimator: str,
    estimand: str,
    outcome: str,
    targets: Sequence[str] | None = None,
    estimate: npt.ArrayLike,
    influence: npt.ArrayLike | RowInfluence | None = None,
    cov: npt.ArrayLike | CovarianceEstimator | str | None = None,
    cluster: npt.ArrayLike | None = None,
    tau: npt.ArrayLike | None = None,
    treated_mean: npt.ArrayLike | None = None,
    counterfactual_mean: npt.ArrayLike | None = None,
    n: int | None = None,
    n_treated: int = 0,
    n_control: int = 0,
    dropped: Mapping[str, int] | None = None,
    weights: npt.ArrayLike | None = None,
    extra: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    frame: pd.DataFrame | None = None,
    cov_type: str | None = None,
) -> EffectResults:
    """Build an :class:`EffectResults`, computing the covariance where needed.

    Parameters
    ----------
    estimator, estimand, outcome : str
        Names for tables.
    targets : sequence of str, optional
        Target labels; defaults to ``curve_targets(tau)`` for curves or ``(outcome,)``.
    estimate : array-like of shape (k,)
        Point estimates.
    influence : array-like or RowInfluence of shape (n, k), optional
        Scaled influence function (``theta_hat - theta ~= sum_i phi_i``); a
        :class:`~mentor_impact.inference.influence.RowInfluence` is kept as it is.
    cov : array-like of shape (k, k), CovarianceEstimator or str, optional
        A ready covariance matrix, or the estimator to apply to ``influence``
        (default ``Clustered("person")`` when ``cluster`` is given, else ``IID()``).
    cluster : array-like of shape (n,), optional
        Cluster labels aligned with ``influence`` rows.
    tau : array-like of shape (k,), optional
        Horizon weeks of a curve.
    treated_mean, counterfactual_mean : array-like of shape (k,), optional
        Levels behind the effect.
    n : int, optional
        Rows used; defaults to the number of influence rows.
    n_treated, n_control : int
        Rows used per arm.
    dropped : mapping of str to int, optional
        Rows dropped by reason.
    weights : array-like, optional
        Per-row weights for reuse.
    extra, config : mapping, optional
        Estimator-specific information and options.
    seed : int, optional
        Seed of random steps.
    frame : pandas.DataFrame, optional
        Per-row columns for ``Clustered(by=...)``.
    cov_type : str, optional
        Label for a ready covariance matrix.

    Returns
    -------
    EffectResults
        The results object.
    """
    from mentor_impact.inference.covariance import Clustered

    est = np.atleast_1d(np.asarray(estimate, dtype=np.float64))
    k = est.size
    tau_arr = None if tau is None else np.asarray(tau, dtype=np.int64).ravel()
    if targets is None:
        if tau_arr is not None and k > 1:
            targets = curve_targets(tau_arr)
        else:
            targets = (outcome,) if k == 1 else tuple(f"{outcome}[{j}]" for j in range(k))
    if len(targets) != k:
        raise ConfigurationError(f"targets: expected {k} labels; got {len(targets)}.")
    phi: InfluenceLike | None = None
    if isinstance(influence, RowInfluence):
        phi = influence
        if phi.shape[1] != k:
            raise ConfigurationError(
                f"influence: expected {k} columns (one per target); got {phi.shape[1]}."
            )
    elif influence is not None:
        phi = np.asarray(influence, dtype=np.float64)
        if phi.ndim == 1:
            phi = phi[:, None]
        if phi.shape[1] != k:
            raise ConfigurationError(
                f"influence: expected {k} columns (one per target); got {phi.shape[1]}."
            )
    cl = None if cluster is None else np.asarray(cluster)
    if isinstance(cov, (CovarianceEstimator, str)) or cov is None:
        if phi is None:
            raise ConfigurationError(
                "cov: a covariance matrix is required when no influence function is given."
            )
        default: CovarianceEstimator = Clustered("person") if cl is not None else IID()
        cov_est = resolve_cov(cov, default)
        v = cov_est.cov(phi, cluster=cl, frame=frame)
        label = cov_est.describe()
    else:
        v = np.atleast_2d(np.asarray(cov, dtype=np.float64))
        if v.shape != (k, k):
            raise ConfigurationError(f"cov: expected shape ({k}, {k}); got {v.shape}.")
        label = cov_type or "model"

    def arr(x: npt.ArrayLike | None) -> FloatArray | None:
        return None if x is None else np.atleast_1d(np.asarray(x, dtype=np.float64))

    return EffectResults(
        estimator=estimator,
        estimand=estimand,
        outcome=outcome,
        targets=tuple(str(t) for t in targets),
        estimate=est,
        cov=v,
        cov_type=label,
        influence=phi,
        cluster=cl,
        tau=tau_arr,
        treated_mean=arr(treated_mean),
        counterfactual_mean=arr(counterfactual_mean),
        n=int(n if n is not None else (phi.shape[0] if phi is not None else 0)),
        n_treated=int(n_treated),
        n_control=int(n_control),
        dropped={str(k_): int(v_) for k_, v_ in (dropped or {}).items()},
        weights=arr(weights),
        extra=dict(extra or {}),
        config=dict(config or {}),
        seed=seed,
        frame=frame,
    )
