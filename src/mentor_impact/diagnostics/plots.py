"""Diagnostic plots: Love plot of standardised mean differences, propensity score densities.

matplotlib is imported inside the functions; every function returns the Axes and never calls
``plt.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from mentor_impact.exceptions import ConfigurationError
from mentor_impact.propensity._checks import check_binary

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["love_plot", "ps_density_plot"]


def love_plot(
    balance: pd.DataFrame,
    *,
    threshold: float = 0.1,
    absolute: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Love plot: standardised mean differences before and after adjustment.

    Parameters
    ----------
    balance : pandas.DataFrame
        Output of :func:`~mentor_impact.diagnostics.compare_balance` (columns
        ``("before"|"after", "Std. Mean Diff.")``) or of
        :func:`~mentor_impact.diagnostics.balance_table` (one sample).
    threshold : float, default=0.1
        Reference line (|SMD| < 0.1, Austin 2009).
    absolute : bool, default=True
        Plot absolute SMDs.
    ax : matplotlib Axes, optional
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(balance) + 1.5))
    if isinstance(balance.columns, pd.MultiIndex):
        series = {k: balance[(k, "Std. Mean Diff.")] for k in balance.columns.levels[0]
                  if (k, "Std. Mean Diff.") in balance.columns}
    elif "Std. Mean Diff." in balance.columns:
        series = {"sample": balance["Std. Mean Diff."]}
    else:
        raise ConfigurationError(
            "love_plot: expected a balance table with a 'Std. Mean Diff.' column."
        )
    y = np.arange(len(balance))
    markers = {"before": "o", "after": "s"}
    for name, v in series.items():
        vals = np.abs(v.to_numpy(float)) if absolute else v.to_numpy(float)
        ax.scatter(vals, y, label=str(name), marker=markers.get(str(name), "o"))
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    if not absolute:
        ax.axvline(-threshold, color="grey", linestyle="--", linewidth=1)
        ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([str(i) for i in balance.index])
    ax.invert_yaxis()
    ax.set_xlabel("Absolute standardised mean difference" if absolute else "SMD")
    ax.legend(frameon=False)
    return ax


def ps_density_plot(
    ps: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    logit: bool = False,
    bins: int = 40,
    ax: Axes | None = None,
) -> Axes:
    """Densities (histograms) of the propensity score by treatment group.

    Parameters
    ----------
    ps : array-like of shape (n,)
        Propensity scores.
    treatment : array-like of shape (n,)
        0/1 treatment.
    weights : array-like of shape (n,), optional
        Matching or balancing weights (e.g. ``results.weights``) to show the adjusted
        distributions.
    logit : bool, default=False
        Plot the logit of the score.
    bins : int, default=40
        Histogram bins (shared by both groups).
    ax : matplotlib Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.
    """
    import matplotlib.pyplot as plt

    e = np.asarray(ps, dtype=np.float64)
    D = check_binary(treatment, "treatment") == 1
    w = np.ones(e.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if logit:
        with np.errstate(divide="ignore"):
            e = np.log(e) - np.log1p(-e)
    fin = np.isfinite(e)
    edges = np.histogram_bin_edges(e[fin], bins=bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for arm, lab in ((True, "treated"), (False, "control")):
        sel = (D == arm) & fin & (w > 0)
        ax.hist(e[sel], bins=edges.tolist(), weights=w[sel], density=True, alpha=0.5, label=lab)
    ax.set_xlabel("logit propensity score" if logit else "propensity score")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    return ax
