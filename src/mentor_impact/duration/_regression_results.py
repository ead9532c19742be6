"""Results of the duration regression models and the shared input handling.

:class:`RegressionResults` is the common, immutable result of
:class:`~mentor_impact.duration.CoxPH`, :class:`~mentor_impact.duration.PiecewiseExponential`,
:class:`~mentor_impact.duration.DiscreteTimeHazard` and :class:`~mentor_impact.duration.FineGray`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact._meta import to_jsonable, versions
from mentor_impact.exceptions import DataValidationError

__all__ = ["RegressionResults"]

FloatArray = npt.NDArray[np.float64]


def _positions(mask: npt.NDArray[np.bool_], limit: int = 5) -> str:
    """Describe the first row positions where ``mask`` holds (never values)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(int(p)) for p in pos[:limit])
    return f"rows {shown}{', ...' if pos.size > limit else ''}"


@dataclass(frozen=True, eq=False)
class RegressionResults:
    """Fitted duration regression: coefficients, covariances, hazard ratios, fit statistics.

    Returned by ``fit`` of the duration regression models (model/results split as in
    linearmodels: the model object only holds options; every ``fit`` returns a new results
    object, so one model can give several results).

    Parameters
    ----------
    model : str
        Model label, e.g. ``"CoxPH(ties='efron')"``.
    names : tuple of str
        Coefficient names (R model-matrix style, e.g. ``"celltypesmallcell"``).
    coef : ndarray of shape (k,)
        Estimates.
    cov : ndarray of shape (k, k)
        Covariance in use (robust when requested, else model-based).
    cov_model : ndarray of shape (k, k)
        Model-based covariance (inverse information).
    cov_robust : ndarray of shape (k, k) or None
        Robust (sandwich) or cluster-robust covariance, when computed.
    cov_type : str
        ``"model"``, ``"robust"`` or ``"clustered"``.
    loglik : float
        Log (partial) likelihood at the estimate.
    loglik_null : float or None
        At all coefficients 0 (Cox, Fine-Gray); ``None`` where undefined.
    n : int
        Rows used.
    n_events : float
        Number of events (weighted where weights are given).
    iterations : int
        Newton / IRLS iterations.
    converged : bool
        Whether the convergence criterion was met.
    score_test : float or None
        Score (log-rank type) test of all coefficients = 0.
    exp_label : str
        Label of ``exp(coef)`` in tables (``"hazard_ratio"``, ``"rate_ratio"``, ...).
    n_clusters : int or None
        Clusters used by the clustered covariance.
    dropped : dict of str to int
        Rows dropped, by reason (empty: nothing is dropped silently).
    config : dict
        Options of the model and the ``fit`` call.
    extra : dict
        Model-specific values (deviance, interval tables, Fine-Gray weights summary ...).

    Notes
    -----
    Wald statistics are ``coef / se`` with normal p-values and confidence intervals
    ``coef ± z_{1-α/2} se`` (R's ``summary.coxph`` / ``summary.glm`` for known dispersion);
    hazard-ratio intervals are the exponentiated coefficient intervals.
    """

    model: str
    names: tuple[str, ...]
    coef: FloatArray
    cov: FloatArray
    cov_model: FloatArray
    cov_robust: FloatArray | None
    cov_type: str
    loglik: float
    loglik_null: float | None
    n: int
    n_events: float
    iterations: int
    converged: bool
    score_test: float | None = None
    exp_label: str = "hazard_ratio"
    n_clusters: int | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _lazy: dict[str, Callable[[], Any]] = field(default_factory=dict, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------------------- statistics
    @property
    def params(self) -> pd.Series:
        """Coefficients as a labelled Series."""
        return pd.Series(self.coef, index=list(self.names), name="coef")

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors from the covariance in use (:attr:`cov`)."""
        return pd.Series(np.sqrt(np.diag(self.cov)), index=list(self.names), name="std_error")

    @property
    def std_errors_model(self) -> pd.Series:
        """Model-based standard errors (inverse information)."""
        return pd.Series(np.sqrt(np.diag(self.cov_model)), index=list(self.names), name="se")

    @property
    def std_errors_robust(self) -> pd.Series | None:
        """Robust / clustered standard errors, or ``None`` when not computed."""
        if self.cov_robust is None:
            return None
        return pd.Series(
            np.sqrt(np.diag(self.cov_robust)), index=list(self.names), name="robust_se"
        )

    @property
    def exp_coef(self) -> pd.Series:
        """``exp(coef)``: hazard ratios (Cox, Fine-Gray: subdistribution HR), rate ratios."""
        return pd.Series(np.exp(self.coef), index=list(self.names), name=self.exp_label)

    @property
    def hazard_ratios(self) -> pd.Series:
        """Alias of :attr:`exp_coef`."""
        return self.exp_coef

    @property
    def tstats(self) -> pd.Series:
        """Wald z statistics ``coef / se``."""
        return pd.Series(self.coef / np.sqrt(np.diag(self.cov)), index=list(self.names), name="z")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of :attr:`tstats`."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tstats.to_numpy())), index=list(self.names))

    def conf_int(self, level: float = 0.95, *, exponentiate: bool = False) -> pd.DataFrame:
        """Wald confidence intervals.

        Parameters
        ----------
        level : float, default 0.95
            Coverage.
        exponentiate : bool, default False
            Return intervals for ``exp(coef)``.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower``, ``upper``, indexed by coefficient name.
        """
        if not 0 < level < 1:
            raise DataValidationError(f"level: expected a number in (0, 1); found {level}.")
        z = stats.norm.ppf(0.5 + level / 2)
        se = np.sqrt(np.diag(self.cov))
        lo, hi = self.coef - z * se, self.coef + z * se
        if exponentiate:
            lo, hi = np.exp(lo), np.exp(hi)
        return pd.DataFrame({"lower": lo, "upper": hi}, index=list(self.names))

    @property
    def lr_test(self) -> float | None:
        """Likelihood-ratio statistic ``2 (loglik - loglik_null)``."""
        return None if self.loglik_null is None else 2.0 * (self.loglik - self.loglik_null)

    @property
    def wald_test(self) -> float:
        """Wald statistic ``coef' cov^-1 coef`` of all coefficients = 0 (covariance in use)."""
        return float(self.coef @ np.linalg.solve(self.cov, self.coef)) if self.coef.size else 0.0

    @property
    def aic(self) -> float:
        """``-2 loglik + 2 k``."""
        return -2.0 * self.loglik + 2.0 * self.coef.size

    @property
    def concordance(self) -> float | None:
        """Harrell's C (survival's ``concordance``; ties in the predictor count 1/2).

        Computed on first access (it costs a sort and a Fenwick-tree pass).
        """
        counts = self.concordance_counts
        if counts is None:
            return None
        den = counts["concordant"] + counts["discordant"] + counts["tied_x"]
        return float((counts["concordant"] + 0.5 * counts["tied_x"]) / den) if den > 0 else None

    @property
    def concordance_se(self) -> float | None:
        """Standard error of :attr:`concordance` (R's infinitesimal jackknife).

        ``var = sum_k w_k (dC/dw_k)^2`` with ``C = (concordant + tied_x/2) / (concordant +
        discordant + tied_x)`` differentiated with respect to each row's case weight.
        """
        counts = self.concordance_counts
        if counts is None or not np.isfinite(counts.get("variance", np.nan)):
            return None
        return float(np.sqrt(counts["variance"]))

    @property
    def concordance_counts(self) -> dict[str, float] | None:
        """Weighted pair counts (concordant, discordant, tied_x, tied_y) and the C variance."""
        if "concordance" not in self._lazy:
            return None
        if "concordance" not in self._cache:
            self._cache["concordance"] = self._lazy["concordance"]()
        out: dict[str, float] = self._cache["concordance"]
        return out

    # ----------------------------------------------------------------------------- output
    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Tidy coefficient table.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level.

        Returns
        -------
        pandas.DataFrame
            Columns ``term, coef, exp_coef, std_error, std_error_model, statistic, p_value,
            ci_lower, ci_upper, exp_ci_lower, exp_ci_upper``.
        """
        ci = self.conf_int(level)
        return pd.DataFrame(
            {
                "term": list(self.names),
                "coef": self.coef,
                "exp_coef": np.exp(self.coef),
                "std_error": np.sqrt(np.diag(self.cov)),
                "std_error_model": np.sqrt(np.diag(self.cov_model)),
                "statistic": self.tstats.to_numpy(),
                "p_value": self.pvalues.to_numpy(),
                "ci_lower": ci["lower"].to_numpy(),
                "ci_upper": ci["upper"].to_numpy(),
                "exp_ci_lower": np.exp(ci["lower"].to_numpy()),
                "exp_ci_upper": np.exp(ci["upper"].to_numpy()),
            }
        )

    def summary(self, level: float = 0.95, decimals: int = 4) -> str:
        """Plain-text summary (coefficient table and fit statistics).

        Parameters
        ----------
        level : float, default 0.95
            Confidence level.
        decimals : int, default 4
            Rounding of the table.

        Returns
        -------
        str
            The summary.
        """
        tab = self.to_frame(level).set_index("term").round(decimals)
        lines = [
            f"{self.model}   n = {self.n}, events = {self.n_events:g}, cov = {self.cov_type}"
            + (f" ({self.n_clusters} clusters)" if self.n_clusters else ""),
            tab.to_string(),
            f"log-likelihood = {self.loglik:.6g}"
            + (f", LR test = {self.lr_test:.4g} on {self.coef.size} df" if self.lr_test else ""),
            f"iterations = {self.iterations}, converged = {self.converged}",
        ]
        if self.dropped:
            lines.append("dropped rows: " + ", ".join(f"{k}={v}" for k, v in self.dropped.items()))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (coefficients, covariances, fit statistics, config, versions).

        Returns
        -------
        dict
            Plain Python objects only.
        """
        out = {
            "model": self.model,
            "names": list(self.names),
            "coef": self.coef,
            "std_error": np.sqrt(np.diag(self.cov)),
            "cov": self.cov,
            "cov_model": self.cov_model,
            "cov_robust": self.cov_robust,
            "cov_type": self.cov_type,
            "loglik": self.loglik,
            "loglik_null": self.loglik_null,
            "score_test": self.score_test,
            "n": self.n,
            "n_events": self.n_events,
            "n_clusters": self.n_clusters,
            "iterations": self.iterations,
            "converged": self.converged,
            "dropped": self.dropped,
            "config": self.config,
            "extra": {k: v for k, v in self.extra.items() if not isinstance(v, pd.DataFrame)},
            "versions": versions(),
        }
        return dict(to_jsonable(out))

    def to_json(self, path: str | None = None) -> str:
        """Serialise :meth:`to_dict` as JSON; write it to ``path`` when given.

        Parameters
        ----------
        path : str, optional
            File to write.

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def plot(self, ax: Any = None, level: float = 0.95) -> Any:
        """Forest plot of ``exp(coef)`` with confidence intervals (log scale).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on (default: current axes).
        level : float, default 0.95
            Confidence level.

        Returns
        -------
        matplotlib.axes.Axes
            The axes (``plt.show()`` is never called).
        """
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        ci = self.conf_int(level, exponentiate=True)
        y = np.arange(len(self.names))[::-1]
        hr = np.exp(self.coef)
        ax.errorbar(
            hr,
            y,
            xerr=[hr - ci["lower"].to_numpy(), ci["upper"].to_numpy() - hr],
            fmt="o",
            capsize=3,
        )
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yticks(y)
        ax.set_yticklabels(list(self.names))
        ax.set_xlabel(self.exp_label.replace("_", " "))
        return ax


# --------------------------------------------------------------------------------- model frame


@dataclass(frozen=True)
class ModelFrame:
    """How covariates were encoded, so that new data are encoded the same way."""

    covariates: tuple[str, ...]
    names: tuple[str, ...]
    levels: dict[str, list[Any]]

    @property
    def factor_columns(self) -> npt.NDArray[np.bool_]:
        """Which encoded columns are factor (categorical) indicators."""
        fac = {f"{c}{lv}" for c, lvs in self.levels.items() for lv in lvs[1:]}
        return np.array([nm in fac for nm in self.names], dtype=bool)

    def transform(self, df: pd.DataFrame) -> FloatArray:
        """Encode new data with the fitted levels.

        Parameters
        ----------
        df : pandas.DataFrame
            Must hold every covariate column.

        Returns
        -------
        ndarray of shape (n, p)
            The encoded matrix.
        """
        missing = [c for c in self.covariates if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"df: expected the covariate columns used in the fit; {len(missing)} missing: "
                f"{missing}."
            )
        blocks: list[FloatArray] = []
        for col in self.covariates:
            s = df[col]
            na = s.isna().to_numpy()
            if na.any():
                raise DataValidationError(
                    f"df: column {col!r} has {int(na.sum())} missing values ({_positions(na)}). "
                    "Hint: drop or impute them."
                )
            if col in self.levels:
                lv = self.levels[col]
                vals = s.to_numpy()
                known = np.isin(vals, np.asarray(lv, dtype=object))
                if not known.all():
                    raise DataValidationError(
                        f"df: column {col!r} has {int((~known).sum())} values outside the "
                        f"{len(lv)} levels seen in the fit ({_positions(~known)})."
                    )
                for level in lv[1:]:
                    blocks.append((vals == level).astype(np.float64)[:, None])
            else:
                blocks.append(s.to_numpy(dtype=np.float64)[:, None])
        return np.hstack(blocks) if blocks else np.empty((len(df), 0))


def build_model_frame(
    df: pd.DataFrame,
    covariates: Sequence[str],
    reference_levels: Mapping[str, Any] | None,
) -> tuple[FloatArray, ModelFrame]:
    """Encode covariates (treatment contrasts, R names) via ``design.encode_covariates``.

    All-numeric covariates take a fast path (one ``to_numpy`` copy) with the same result.
    """
    from mentor_impact.design.evaluation_data import encode_covariates

    if isinstance(covariates, str):
        covariates = [covariates]
    cols = list(covariates)
    if (
        cols
        and not reference_levels
        and all(c in df.columns for c in cols)
        and len(set(cols)) == len(cols)
        and all(
            pd.api.types.is_numeric_dtype(df[c].dtype) or pd.api.types.is_bool_dtype(df[c].dtype)
            for c in cols
        )
    ):
        x = np.ascontiguousarray(df[cols].to_numpy(dtype=np.float64, na_value=np.nan))
        if np.isfinite(x).all():
            return x, ModelFrame(tuple(cols), tuple(cols), {})
    x, names, levels = encode_covariates(df, list(covariates), reference_levels=reference_levels)
    return x, ModelFrame(tuple(covariates), tuple(names), dict(levels))


def check_rank(x: FloatArray, names: Sequence[str], w: FloatArray, argument: str) -> None:
    """Raise when the (weighted, centred) design is rank deficient, naming the columns."""
    if x.shape[1] == 0:
        return
    from mentor_impact._kernels.cox import weighted_gram

    sw = float(w.sum())
    mean = np.einsum("i,ij->j", w, x) / sw
    cov = weighted_gram(x, w) / sw - np.outer(mean, mean)  # weighted covariance
    var = np.maximum(np.diag(cov), 0.0)
    scale = np.sqrt(var)
    const = scale <= 1e-7 * np.maximum(1.0, np.abs(mean))
    if const.any():
        bad = [names[int(i)] for i in np.flatnonzero(const)]
        raise DataValidationError(
            f"{argument}: expected covariates that vary; found {len(bad)} constant column(s) "
            f"{bad}. Hint: drop them (a Cox model has no intercept; a level may be empty)."
        )
    g = cov / np.outer(scale, scale)
    ev, vec = np.linalg.eigh(g)
    tol = 1e-9 * max(float(ev.max()), 1.0)
    if ev.min() <= tol:
        v = vec[:, ev <= tol]
        involved = np.flatnonzero(np.abs(v).max(axis=1) > 1e-6)
        bad = [names[int(i)] for i in involved]
        raise DataValidationError(
            f"{argument}: expected linearly independent covariates; found an exact collinearity "
            f"among {len(bad)} columns {bad}. Hint: drop one of them."
        )


def as_float_column(df: pd.DataFrame, col: str, argument: str) -> FloatArray:
    """Return a numeric column as float64; missing or infinite values are an error."""
    if col not in df.columns:
        raise DataValidationError(
            f"{argument}: expected a column of the data frame; {col!r} not found among "
            f"{df.shape[1]} columns. Hint: check the spelling."
        )
    s = df[col]
    if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
        raise DataValidationError(
            f"{argument}: expected a numeric column; {col!r} has dtype {s.dtype}."
        )
    x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        raise DataValidationError(
            f"{argument}: column {col!r} has {int(bad.sum())} missing or infinite values "
            f"({_positions(bad)}). Hint: drop those rows (df.dropna(subset=[{col!r}])) and "
            "report the count."
        )
    return x


def group_codes(
    df: pd.DataFrame, cols: str | Sequence[str], argument: str
) -> npt.NDArray[np.int64]:
    """Integer codes of one or more grouping columns (strata, cluster); NaN is an error."""
    cols = [cols] if isinstance(cols, str) else list(cols)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{argument}: expected columns of the data frame; {len(missing)} not found: {missing}."
        )
    na = df[cols].isna().any(axis=1).to_numpy()
    if na.any():
        raise DataValidationError(
            f"{argument}: {int(na.sum())} rows have missing group labels ({_positions(na)}). "
            "Hint: give them their own label or drop them."
        )
    if len(cols) == 1:
        return np.asarray(pd.factorize(df[cols[0]], sort=True)[0], dtype=np.int64)
    return np.asarray(df.groupby(cols, sort=True, observed=True).ngroup().to_numpy(), np.int64)


def weights_column(df: pd.DataFrame, weights: str | None, argument: str = "weights") -> FloatArray:
    """Case / frequency weights (strictly positive), ones when ``None``."""
    if weights is None:
        return np.ones(len(df))
    w = as_float_column(df, weights, argument)
    bad = w <= 0
    if bad.any():
        raise DataValidationError(
            f"{argument}: expected strictly positive weights; found {int(bad.sum())} zero or "
            f"negative ({_positions(bad)}). Hint: drop rows with zero weight before fitting."
        )
    return w
