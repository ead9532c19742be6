"""Sensitivity analysis: E-values and Rosenbaum bounds for matched pairs.

Matching and weighting assume selection on observables. These tools say how strong an
unobserved confounder would have to be to explain an estimate away.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact.exceptions import ConfigurationError, DataValidationError

__all__ = ["e_value", "e_value_risk_difference", "rosenbaum_mcnemar", "rosenbaum_signed_rank"]


def e_value(rr: float, lower: float | None = None, upper: float | None = None) -> dict[str, float]:
    """Compute the E-value of a risk ratio and of its confidence limit closest to 1.

    ``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1``; for ``RR < 1`` the formula is applied to
    ``1 / RR``. For the interval, the limit closest to 1 is used, and ``E = 1`` when the
    interval contains 1 (VanderWeele & Ding 2017).

    Parameters
    ----------
    rr : float
        Point estimate of the risk ratio (> 0).
    lower, upper : float, optional
        Confidence limits of the risk ratio.

    Returns
    -------
    dict
        ``{"e_value": ..., "e_value_ci": ...}`` (the latter NaN without limits).

    References
    ----------
    VanderWeele, T. J., Ding, P. (2017). Sensitivity analysis in observational research:
    introducing the E-value. *Ann Intern Med* 167(4): 268–274.

    Examples
    --------
    >>> round(e_value(3.9)["e_value"], 2)
    7.26
    """
    if not rr > 0:
        raise ConfigurationError(f"rr: expected a positive risk ratio; got {rr!r}.")

    def ev(r: float) -> float:
        r = 1.0 / r if r < 1 else r
        return float(r + np.sqrt(r * (r - 1.0)))

    out = {"e_value": ev(rr), "e_value_ci": float("nan")}
    if lower is not None and upper is not None:
        if lower <= 1.0 <= upper:
            out["e_value_ci"] = 1.0
        else:
            out["e_value_ci"] = ev(lower if rr >= 1 else upper)
    return out


def e_value_risk_difference(
    effect: float, control_mean: float, lower: float | None = None, upper: float | None = None
) -> dict[str, float]:
    """Compute the E-value of a risk difference via the control mean, ``RR = (p0 + RD) / p0``.

    Parameters
    ----------
    effect : float
        Risk difference (treated minus counterfactual).
    control_mean : float
        Counterfactual (control) risk ``p0`` in (0, 1).
    lower, upper : float, optional
        Confidence limits of the risk difference.

    Returns
    -------
    dict
        As :func:`e_value`, plus ``"risk_ratio"``.
    """
    if not 0 < control_mean < 1:
        raise ConfigurationError(
            f"control_mean: expected a risk in (0, 1); got {control_mean!r}."
        )

    def to_rr(rd: float) -> float:
        return max((control_mean + rd) / control_mean, 1e-12)

    lo = None if lower is None else to_rr(lower)
    hi = None if upper is None else to_rr(upper)
    res = e_value(to_rr(effect), lo, hi)
    res["risk_ratio"] = to_rr(effect)
    return res


def rosenbaum_mcnemar(
    treated_outcome: npt.ArrayLike,
    control_outcome: npt.ArrayLike,
    gammas: npt.ArrayLike = (1.0, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0),
) -> pd.DataFrame:
    """Rosenbaum bounds for a binary outcome in 1:1 matched pairs (McNemar).

    With ``D`` discordant pairs of which ``T`` favour the treated, the upper bound of the
    one-sided p-value at sensitivity ``Γ`` is ``P(Bin(D, Γ/(1+Γ)) >= T)`` and the lower
    bound ``P(Bin(D, 1/(1+Γ)) >= T)``.

    Parameters
    ----------
    treated_outcome, control_outcome : array-like of 0/1
        Outcomes of the treated unit and its matched control, pair by pair.
    gammas : array-like of float
        Values of ``Γ >= 1``.

    Returns
    -------
    pandas.DataFrame
        Columns ``gamma, p_upper, p_lower``; ``attrs["discordant"]`` and
        ``attrs["favouring_treated"]`` hold ``D`` and ``T``.

    References
    ----------
    Rosenbaum, P. R. (2002). *Observational Studies*, 2nd ed., Springer, ch. 4.
    """
    yt = np.asarray(treated_outcome, dtype=float)
    yc = np.asarray(control_outcome, dtype=float)
    if yt.shape != yc.shape or yt.ndim != 1:
        raise DataValidationError(
            f"treated_outcome, control_outcome: expected equal-length 1-D arrays; found "
            f"{yt.shape} and {yc.shape}."
        )
    if not (np.isin(yt, (0.0, 1.0)).all() and np.isin(yc, (0.0, 1.0)).all()):
        raise DataValidationError("outcomes: expected binary 0/1 values in every pair.")
    g = np.asarray(gammas, dtype=float)
    if (g < 1).any():
        raise ConfigurationError("gammas: expected values >= 1.")
    d = int((yt != yc).sum())
    t = int(((yt == 1) & (yc == 0)).sum())
    p_up = stats.binom.sf(t - 1, d, g / (1 + g))
    p_lo = stats.binom.sf(t - 1, d, 1 / (1 + g))
    out = pd.DataFrame({"gamma": g, "p_upper": p_up, "p_lower": p_lo})
    out.attrs.update(discordant=d, favouring_treated=t)
    return out


def rosenbaum_signed_rank(
    differences: npt.ArrayLike,
    gammas: npt.ArrayLike = (1.0, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0),
) -> pd.DataFrame:
    """Rosenbaum bounds for the Wilcoxon signed-rank test on matched-pair differences.

    Uses the large-sample normal approximation: with ranks ``r_i`` of ``|d_i|`` (zero
    differences dropped, average ranks for ties) and ``p⁺ = Γ/(1+Γ)``, the upper bound has
    mean ``p⁺ Σ r_i`` and variance ``p⁺(1−p⁺) Σ r_i²`` (DiPrete & Gangl 2004, ``rbounds``).

    Parameters
    ----------
    differences : array-like
        Treated-minus-control outcome differences, one per pair (e.g. accumulated weeks).
    gammas : array-like of float
        Values of ``Γ >= 1``.

    Returns
    -------
    pandas.DataFrame
        Columns ``gamma, p_upper, p_lower`` (one-sided, for a positive effect).
    """
    dlt = np.asarray(differences, dtype=float)
    if dlt.ndim != 1 or not np.isfinite(dlt).all():
        raise DataValidationError("differences: expected a 1-D array of finite numbers.")
    dlt = dlt[dlt != 0]
    g = np.asarray(gammas, dtype=float)
    if (g < 1).any():
        raise ConfigurationError("gammas: expected values >= 1.")
    ranks = stats.rankdata(np.abs(dlt))
    t_plus = ranks[dlt > 0].sum()
    out = []
    for gamma in g:  # loop over a handful of Γ values
        rows = []
        for p in (gamma / (1 + gamma), 1 / (1 + gamma)):
            mean = p * ranks.sum()
            var = p * (1 - p) * (ranks**2).sum()
            rows.append(float(stats.norm.sf((t_plus - mean) / np.sqrt(var))) if var > 0 else 1.0)
        out.append((gamma, rows[0], rows[1]))
    return pd.DataFrame(out, columns=["gamma", "p_upper", "p_lower"])
