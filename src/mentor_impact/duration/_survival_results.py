"""``SurvivalResults``: nonparametric survival / cumulative-incidence curves by arm."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact._kernels import survival as K
from mentor_impact._meta import to_jsonable, versions
from mentor_impact.exceptions import ConfigurationError
from mentor_impact.results import Summary

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["ArmCurve", "SurvivalResults"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_MEDIAN_TOL = float(np.finfo(float).eps ** 0.5)


@dataclass(frozen=True, eq=False)
class _ArmRows:
    """Row-level inputs of one arm kept for influence functions (never printed)."""

    positions: IntArray  # row positions in the input
    stop: IntArray
    start: IntArray
    event: IntArray
    weight: FloatArray
    cluster: IntArray  # dense cluster codes shared across arms
    n_clusters: int
    clustered: bool = True  # False: each row its own cluster


@dataclass(frozen=True, eq=False)
class ArmCurve:
    """Curve of one arm on its own time grid (all unique times of the arm).

    Attributes
    ----------
    label : str
        Arm label (``"trt=1"``; ``"all"`` without groups).
    time : ndarray of shape (T,)
        Sorted unique event and censoring times of the arm.
    n_risk, n_event, n_censor : ndarray of shape (T,)
        Weighted number at risk (``entry < t <= stop``), all-cause events and censorings.
    surv, std_err : ndarray of shape (T,)
        All-cause Kaplan–Meier survival and its standard error (survival scale).
    cumhaz, std_chaz : ndarray of shape (T,)
        Nelson–Aalen cumulative hazard and its Aalen standard error ``sqrt(sum d/Y^2)``.
    cif, cif_std_err : ndarray of shape (T, K) or None
        Aalen–Johansen cumulative incidences by cause and their standard errors.
    rmst_inc : ndarray of shape (T,) or None
        Per-time variance increments ``d/(Y (Y - d))`` (Greenwood) or ``d/(M (Y - d))``
        (Xie–Liu) used for the RMST variance; ``None`` with the influence-function variance.
    n_rows : int
        Rows in the arm.
    n_event_rows : int
        Rows of the arm with an event (unweighted).
    """

    label: str
    time: FloatArray
    n_risk: FloatArray
    n_event: FloatArray
    n_censor: FloatArray
    surv: FloatArray
    std_err: FloatArray
    cumhaz: FloatArray
    std_chaz: FloatArray
    cif: FloatArray | None = None
    cif_std_err: FloatArray | None = None
    rmst_inc: FloatArray | None = None
    n_rows: int = 0
    n_event_rows: int = 0


def _ci(
    est: FloatArray, se: FloatArray, z: float, conf_type: str = "log"
) -> tuple[FloatArray, FloatArray]:
    """Pointwise intervals as ``survival``'s ``survfit_confint`` (``se`` on the estimate scale).

    ``"log"``: ``exp(log p -+ z se/p)``, upper capped at 1, NaN where ``p == 0``;
    ``"plain"``: ``p -+ z se`` clipped to [0, 1]; ``"log-log"``:
    ``exp(-exp(log(-log p) -+ z (se/p)/log p))``, NaN where ``p`` is 0 or 1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sl = se / est  # SE of log(p)
        if conf_type == "plain":
            lo = np.maximum(est - z * se, 0.0)
            hi = np.minimum(est + z * se, 1.0)
        elif conf_type == "log-log":
            ok = (est > 0) & (est < 1)
            se2 = z * sl / np.log(est)
            lo = np.where(ok, np.exp(-np.exp(np.log(-np.log(est)) - se2)), np.nan)
            hi = np.where(ok, np.exp(-np.exp(np.log(-np.log(est)) + se2)), np.nan)
        else:
            lo = np.where(est > 0, est * np.exp(-z * sl), np.nan)
            hi = np.where(est > 0, np.minimum(est * np.exp(z * sl), 1.0), np.nan)
            # se == 0 (e.g. before the first event): the interval collapses on the estimate
            lo = np.where((se == 0) & (est > 0), est, lo)
            hi = np.where((se == 0) & (est > 0), est, hi)
    return lo, hi


def _minmin(y: FloatArray, x: FloatArray) -> float:
    """Survival's median rule (``survmean``'s ``minmin``).

    First ``x`` with ``y < 0.5 + tol``; when that ``y`` equals 0.5 (within ``tol``) and the
    curve drops further later, the midpoint of that time and the next time of a drop.
    """
    keep = ~np.isnan(y) & (y < 0.5 + _MEDIAN_TOL)
    if not keep.any():
        return float("nan")
    xk = x[keep]
    yk = y[keep]
    if abs(yk[0] - 0.5) < _MEDIAN_TOL and np.any(yk < yk[0]):
        return float((xk[0] + xk[np.argmax(yk < yk[0])]) / 2.0)
    return float(xk[0])


@dataclass(frozen=True, eq=False)
class SurvivalResults:
    """Nonparametric survival (Kaplan–Meier) or cumulative-incidence (Aalen–Johansen) curves.

    Returned by :class:`~mentor_impact.duration.KaplanMeier` and
    :class:`~mentor_impact.duration.AalenJohansen`; immutable.

    Attributes
    ----------
    estimator : str
        ``"kaplan-meier"`` or ``"aalen-johansen"``.
    group : str or None
        Name of the grouping variable (arms), ``None`` for one curve.
    arms : tuple of str
        Arm labels in sorted level order, ``f"{group}={level}"`` as survfit.
    causes : tuple of str
        Cause labels (``("event",)`` for Kaplan–Meier).
    curves : dict of str to ArmCurve
        One curve per arm.
    variance : str
        ``"greenwood"``, ``"xie-liu"``, ``"ij"`` (influence function / infinitesimal
        jackknife, clustered) or ``"cmprsk"``.
    conf_level : float
        Level of the pointwise intervals.
    conf_type : str
        ``"log"`` (survfit's default), ``"plain"`` or ``"log-log"`` (survival only).
    n : int
        Rows used.
    tests : dict
        Log-rank (Kaplan–Meier) or Gray (Aalen–Johansen) tests between arms.
    dropped : dict of str to int
        Rows dropped by reason.
    config : dict
        Options of the fit.

    Notes
    -----
    ``at`` follows ``summary.survfit(..., extend = TRUE)`` for survival (the curve is
    carried beyond the last time) and ``cmprsk::timepoints`` for cumulative incidences
    (``NaN`` beyond an arm's last follow-up time).
    """

    estimator: str
    group: str | None
    arms: tuple[str, ...]
    causes: tuple[str, ...]
    curves: dict[str, ArmCurve]
    variance: str
    conf_level: float = 0.95
    conf_type: str = "log"
    n: int = 0
    tests: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    _rows: dict[str, _ArmRows] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ helpers
    @property
    def _z(self) -> float:
        return float(stats.norm.ppf(0.5 + self.conf_level / 2.0))

    def _arm_list(self, arm: str | Sequence[str] | None) -> list[str]:
        if arm is None:
            return list(self.arms)
        arms = [arm] if isinstance(arm, str) else list(arm)
        bad = [a for a in arms if a not in self.curves]
        if bad:
            raise ConfigurationError(
                f"arm: expected one of {list(self.arms)}; found {len(bad)} unknown label(s). "
                "Hint: use SurvivalResults.arms."
            )
        return arms

    # ------------------------------------------------------------------ evaluation
    def at(self, times: npt.ArrayLike, arm: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Evaluate the curves at given times (right-continuous step functions).

        Parameters
        ----------
        times : array-like of float
            Times at which to evaluate (sorted and de-duplicated).
        arm : str or sequence of str, optional
            Arms to include (default all).

        Returns
        -------
        pandas.DataFrame
            Kaplan–Meier: one row per (arm, time) with ``n_risk``, ``n_event`` (events in
            (previous requested time, time], as ``summary.survfit``), ``surv``, ``std_err``,
            ``lower``, ``upper``, ``cumhaz``, ``std_chaz``. Aalen–Johansen: additionally one
            row per cause with ``cause``, ``cif``, ``std_err``, ``var``, ``lower``, ``upper``.

        Notes
        -----
        ``n_risk`` at a time between grid points is the number at risk at the next grid time
        (rows with ``stop >= t``), 0 beyond the last time.
        """
        t = np.unique(np.asarray(times, dtype=np.float64).ravel())
        z = self._z
        frames = []
        for a in self._arm_list(arm):
            c = self.curves[a]
            j = K.step_index(c.time, t)
            ok = j >= 0
            jj = np.maximum(j, 0)
            nxt = np.searchsorted(c.time, t, side="left")
            n_risk = np.where(nxt < c.time.size, c.n_risk[np.minimum(nxt, c.time.size - 1)], 0.0)
            cum_ev = np.concatenate(([0.0], np.cumsum(c.n_event)))
            ev_at = cum_ev[j + 1]
            n_ev = np.diff(np.concatenate(([0.0], ev_at)))
            base = {"arm": a, "time": t, "n_risk": n_risk, "n_event": n_ev}
            if self.estimator == "kaplan-meier":
                s = np.where(ok, c.surv[jj], 1.0)
                se = np.where(ok, c.std_err[jj], 0.0)
                lo, hi = _ci(s, se, z, self.conf_type)
                frames.append(
                    pd.DataFrame(
                        {
                            **base,
                            "surv": s,
                            "std_err": se,
                            "lower": lo,
                            "upper": hi,
                            "cumhaz": np.where(ok, c.cumhaz[jj], 0.0),
                            "std_chaz": np.where(ok, c.std_chaz[jj], 0.0),
                        }
                    )
                )
            else:
                assert c.cif is not None and c.cif_std_err is not None
                beyond = t > c.time[-1]
                for k, cause in enumerate(self.causes):
                    f = np.where(ok, c.cif[jj, k], 0.0)
                    se = np.where(ok, c.cif_std_err[jj, k], 0.0)
                    f = np.where(beyond, np.nan, f)
                    se = np.where(beyond, np.nan, se)
                    lo, hi = _ci(f, se, z, self.conf_type)
                    frames.append(
                        pd.DataFrame(
                            {
                                **base,
                                "cause": cause,
                                "cif": f,
                                "std_err": se,
                                "var": se * se,
                                "lower": lo,
                                "upper": hi,
                            }
                        )
                    )
        return pd.concat(frames, ignore_index=True)

    def to_frame(self) -> pd.DataFrame:
        """Return the full curves as a tidy table (one row per arm and grid time).

        Returns
        -------
        pandas.DataFrame
            Columns ``arm, time, n_risk, n_event, n_censor, surv, std_err, lower, upper,
            cumhaz, std_chaz`` and, for Aalen–Johansen, ``cif[<cause>]``,
            ``std_err[<cause>]``, ``lower[<cause>]``, ``upper[<cause>]``.
        """
        z = self._z
        frames = []
        for a in self.arms:
            c = self.curves[a]
            lo, hi = _ci(c.surv, c.std_err, z, self.conf_type)
            d: dict[str, Any] = {
                "arm": a,
                "time": c.time,
                "n_risk": c.n_risk,
                "n_event": c.n_event,
                "n_censor": c.n_censor,
                "surv": c.surv,
                "std_err": c.std_err,
                "lower": lo,
                "upper": hi,
                "cumhaz": c.cumhaz,
                "std_chaz": c.std_chaz,
            }
            if c.cif is not None and c.cif_std_err is not None:
                for k, cause in enumerate(self.causes):
                    flo, fhi = _ci(c.cif[:, k], c.cif_std_err[:, k], z, self.conf_type)
                    d[f"cif[{cause}]"] = c.cif[:, k]
                    d[f"std_err[{cause}]"] = c.cif_std_err[:, k]
                    d[f"lower[{cause}]"] = flo
                    d[f"upper[{cause}]"] = fhi
            frames.append(pd.DataFrame(d))
        return pd.concat(frames, ignore_index=True)

    def median(self) -> pd.DataFrame:
        """Median survival time with confidence limits, per arm.

        Returns
        -------
        pandas.DataFrame
            Indexed by arm with ``median``, ``lower``, ``upper`` (NaN = not reached).

        Notes
        -----
        survfit's rule (``survmean``): the median is the first time with ``S(t) < 0.5 + tol``
        (``tol = sqrt(machine eps)``); when ``S`` equals 0.5 there and drops later, the
        midpoint between that time and the next drop. The limits apply the same rule to the
        lower and upper ("log") confidence curves, i.e. where they cross 0.5.
        For Aalen–Johansen results this is the median of the all-cause survival.
        """
        z = self._z
        rows = []
        for a in self.arms:
            c = self.curves[a]
            lo, hi = _ci(c.surv, c.std_err, z, self.conf_type)
            rows.append(
                {
                    "arm": a,
                    "median": _minmin(c.surv, c.time),
                    "lower": _minmin(lo, c.time),
                    "upper": _minmin(hi, c.time),
                }
            )
        return pd.DataFrame(rows).set_index("arm")

    # ------------------------------------------------------------------ RMST
    def _rmst_weights(self, c: ArmCurve, tau: float) -> tuple[float, FloatArray, FloatArray]:
        """RMST, the area ``A_j`` from each grid time to ``tau`` and the step widths."""
        keep = c.time <= tau
        tk = c.time[keep]
        sk = c.surv[keep]
        # rectangles: [0, t1) at S = 1, then [t_j, t_{j+1}) at S(t_j), last up to tau
        widths = np.diff(np.concatenate((tk, [tau])))
        first = tk[0] if tk.size else tau
        area_after = np.cumsum((widths * sk)[::-1])[::-1]  # area from t_j to tau
        rmst = float(min(first, tau) + np.sum(widths * sk))
        return rmst, area_after, widths

    def _rmst_influence(self, arm: str, tau: float) -> FloatArray:
        """Per-row influence of RMST(tau) of one arm (aligned with ``_rows[arm]``)."""
        c = self.curves[arm]
        r = self._rows[arm]
        return K.km_rmst_influence(
            r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, c.time, tau
        )

    def rmst(self, tau: float) -> pd.DataFrame:
        """Restricted mean survival time up to ``tau``, per arm.

        Parameters
        ----------
        tau : float
            Restriction time (same unit as the durations).

        Returns
        -------
        pandas.DataFrame
            Indexed by arm with ``rmst``, ``std_err``, ``lower``, ``upper`` (normal CI).

        Notes
        -----
        ``RMST(tau) = integral_0^tau S(t) dt`` of the step function (survfit's
        ``rmean``; with weekly integer times this is ``sum_{k=0}^{tau-1} S(k)``). The
        variance is survfit's ``sum_j A_j^2 d_j/(Y_j (Y_j - d_j))`` with ``A_j`` the area
        from event time ``t_j`` to ``tau`` (Greenwood), the same with the Kish effective size
        ``M_j`` in place of ``Y_j`` (Xie–Liu), or ``sum_g (sum_{i in g} IF_i)^2`` of the
        exact influence function (``"ij"``; cluster sums, no small-sample factor).
        """
        z = self._z
        rows = []
        for a in self.arms:
            c = self.curves[a]
            val, area_after, _ = self._rmst_weights(c, float(tau))
            if self.variance == "ij" and a in self._rows:
                r = self._rows[a]
                infl = self._rmst_influence(a, float(tau))
                var = K.cluster_sum_squares(infl, r.cluster, r.n_clusters)
            else:
                inc = c.rmst_inc
                if inc is None:
                    inc = np.zeros_like(c.time)
                keep = c.time <= tau
                var = float(np.sum(area_after**2 * np.where(np.isfinite(inc[keep]), inc[keep], 0)))
            se = float(np.sqrt(var))
            rows.append(
                {"arm": a, "rmst": val, "std_err": se, "lower": val - z * se, "upper": val + z * se}
            )
        return pd.DataFrame(rows).set_index("arm")

    def rmst_difference(self, tau: float, arms: tuple[str, str] | None = None) -> pd.Series:
        """Difference in RMST between two arms (``arms[0] - arms[1]``) with its SE.

        Parameters
        ----------
        tau : float
            Restriction time.
        arms : tuple of two str, optional
            Arms to compare; default the last minus the first arm.

        Returns
        -------
        pandas.Series
            ``estimate``, ``std_err``, ``statistic``, ``p_value``, ``lower``, ``upper``.

        Notes
        -----
        Arms are independent samples unless rows of the same cluster (person) appear in
        both; with the ``"ij"`` variance the cluster sums run over both arms, so that
        covariance is included.
        """
        if len(self.arms) < 2:
            raise ConfigurationError(
                "arms: expected at least two arms for a difference; found 1. "
                "Hint: fit with group=..."
            )
        a1, a0 = arms if arms is not None else (self.arms[-1], self.arms[0])
        self._arm_list([a1, a0])
        tab = self.rmst(tau)
        rm = tab["rmst"].to_dict()
        sd = tab["std_err"].to_dict()
        est = float(rm[a1]) - float(rm[a0])
        if self.variance == "ij" and a1 in self._rows and a0 in self._rows:
            r1, r0 = self._rows[a1], self._rows[a0]
            i1 = self._rmst_influence(a1, float(tau))
            i0 = self._rmst_influence(a0, float(tau))
            infl = np.concatenate((i1, -i0))
            cl = np.concatenate((r1.cluster, r0.cluster))
            var = K.cluster_sum_squares(infl, cl, r1.n_clusters)
        else:
            var = float(sd[a1]) ** 2 + float(sd[a0]) ** 2
        se = float(np.sqrt(var))
        z = self._z
        stat = est / se if se > 0 else float("nan")
        return pd.Series(
            {
                "estimate": est,
                "std_err": se,
                "statistic": stat,
                "p_value": float(2 * stats.norm.sf(abs(stat))),
                "lower": est - z * se,
                "upper": est + z * se,
            },
            name=f"dRMST({tau:g})",
        )

    # ------------------------------------------------------------------ reporting
    def summary(self) -> Summary:
        """Return a printable summary (per arm: rows, events, median with CI, tests).

        Returns
        -------
        Summary
            Text/HTML/LaTeX renderable summary.
        """
        med = self.median()
        tab = pd.DataFrame(
            {
                "n": [self.curves[a].n_rows for a in self.arms],
                "events": [self.curves[a].n_event_rows for a in self.arms],
                "weighted events": [float(self.curves[a].n_event.sum()) for a in self.arms],
                "median": med["median"].to_numpy(),
                f"{self.conf_level:.0%} lower": med["lower"].to_numpy(),
                f"{self.conf_level:.0%} upper": med["upper"].to_numpy(),
            },
            index=list(self.arms),
        )
        header = [
            ("Estimator", self.estimator),
            ("Variance", self.variance),
            ("CI", f"{self.conf_type}, level {self.conf_level}"),
            ("Rows", str(self.n)),
        ]
        if self.dropped:
            header.append(("Dropped", ", ".join(f"{k}: {v}" for k, v in self.dropped.items())))
        notes = []
        for name, t in self.tests.items():
            notes.append(f"{name}: chisq = {t['stat']:.4g} on {t['df']} df, p = {t['p_value']:.4g}")
        notes += [str(n) for n in self.config.get("notes", [])]
        return Summary(f"{self.estimator} curves", header, tab, notes)

    def __str__(self) -> str:
        return self.summary().as_text()

    def __repr__(self) -> str:
        return self.summary().as_text()

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (curves, tests, config, versions).

        Returns
        -------
        dict
            Plain Python types only.
        """
        out: dict[str, Any] = {
            "estimator": self.estimator,
            "group": self.group,
            "arms": list(self.arms),
            "causes": list(self.causes),
            "variance": self.variance,
            "conf_level": self.conf_level,
            "conf_type": self.conf_type,
            "n": self.n,
            "dropped": dict(self.dropped),
            "tests": self.tests,
            "config": self.config,
            "versions": versions(),
            "curves": {
                a: {k: v for k, v in self.to_frame().query("arm == @a").items() if k != "arm"}
                for a in self.arms
            },
        }
        return dict(to_jsonable(out))

    def to_json(self, path: str | Path | None = None, *, indent: int = 1) -> str:
        """Serialise :meth:`to_dict` to JSON (and write it to ``path`` if given).

        Parameters
        ----------
        path : str or Path, optional
            File to write.
        indent : int
            JSON indentation.

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=True)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, ax: Axes | None = None, *, cause: str | None = None, ci: bool = True) -> Axes:
        """Plot the step curves by arm (matplotlib imported lazily; never shows).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default ``plt.gca()``).
        cause : str, optional
            For Aalen–Johansen results, the cause to plot (default the first).
        ci : bool
            Draw the pointwise confidence band.

        Returns
        -------
        matplotlib.axes.Axes
            The axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            ax = plt.gca()
        frame = self.to_frame()
        for a in self.arms:
            f = frame[frame["arm"] == a]
            t = np.concatenate(([0.0], f["time"].to_numpy()))
            if self.estimator == "kaplan-meier":
                y, lo, hi = (f[k].to_numpy() for k in ("surv", "lower", "upper"))
                start = 1.0
            else:
                cz = cause if cause is not None else self.causes[0]
                if cz not in self.causes:
                    raise ConfigurationError(
                        f"cause: expected one of {list(self.causes)}; found an unknown label."
                    )
                y, lo, hi = (f[f"{k}[{cz}]"].to_numpy() for k in ("cif", "lower", "upper"))
                start = 0.0
            line = ax.step(t, np.concatenate(([start], y)), where="post", label=a)[0]
            if ci:
                ax.fill_between(
                    t,
                    np.concatenate(([start], lo)),
                    np.concatenate(([start], hi)),
                    step="post",
                    alpha=0.2,
                    color=line.get_color(),
                )
        ax.set_xlabel("time")
        ax.set_ylabel("survival" if self.estimator == "kaplan-meier" else "cumulative incidence")
        ax.legend()
        return ax
