"""Effect heterogeneity: pre-specified subgroups (Holm / BH) and CATE via econml (GATES, BLP)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from mentor_impact.exceptions import (
    ConfigurationError,
    DataValidationError,
    MissingDependencyError,
)
from mentor_impact.inference.covariance import cluster_sums
from mentor_impact.weighting._common import choice
from mentor_impact.weighting.aipw import AIPW, person_folds

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from mentor_impact.results import EffectResults

__all__ = [
    "CATESummary",
    "SubgroupEffects",
    "adjust_pvalues",
    "cate_summary",
    "subgroup_effects",
]

FloatArray = npt.NDArray[np.float64]


def adjust_pvalues(pvalues: npt.ArrayLike, method: str = "holm") -> FloatArray:
    """Multiplicity-adjusted p-values.

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        Unadjusted p-values (NaN entries are kept as NaN and not counted).
    method : {"holm", "bh"}, default="holm"
        Holm (1979) step-down family-wise error control, or Benjamini & Hochberg (1995)
        step-up false discovery rate control.

    Returns
    -------
    ndarray of shape (m,)
        Adjusted p-values, capped at 1; identical to R's ``p.adjust(p, "holm")`` /
        ``p.adjust(p, "BH")``.
    """
    choice("adjust_pvalues", "method", method, ("holm", "bh"))
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    if method == "holm":
        order = np.argsort(q, kind="stable")
        adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    else:
        order = np.argsort(q, kind="stable")[::-1]
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


@dataclass(frozen=True)
class SubgroupEffects:
    """Pre-specified subgroup effects with multiplicity adjustment.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per subgroup: ``subgroup``, ``estimate``, ``std_error``, ``ci_lower``,
        ``ci_upper``, ``p_value`` (H0: no effect), ``p_holm``, ``p_bh``, ``n``,
        ``n_treated``, ``diff_vs_overall`` and ``p_diff`` (difference from the whole-sample
        estimate and its p-value).
    cov : ndarray of shape (G, G)
        Joint covariance of the subgroup estimates (person-clustered, so persons appearing
        in several subgroups are accounted for).
    wald_stat, wald_df, wald_pvalue : float, int, float
        Wald test that all subgroup effects are equal.
    by : str
        Name of the subgroup variable.
    overall : pandas.Series
        The effect in the whole sample (``estimate``, ``std_error``).
    results : dict
        The per-subgroup :class:`~mentor_impact.results.EffectResults`.
    """

    table: pd.DataFrame
    cov: FloatArray
    wald_stat: float
    wald_df: int
    wald_pvalue: float
    by: str
    overall: pd.Series
    results: dict[str, Any] = field(default_factory=dict)

    def plot(self, ax: Axes | None = None, *, level: float = 0.95) -> Axes:
        """Forest plot: subgroup estimates with confidence intervals and the overall effect.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on (default: the current axes).
        level : float, default=0.95
            Confidence level of the bars.

        Returns
        -------
        matplotlib.axes.Axes
            The axes (``plt.show()`` is never called).
        """
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.gca()
        t = self.table
        z = stats.norm.ppf(0.5 + level / 2)
        ypos = np.arange(len(t))[::-1]
        ax.errorbar(t["estimate"], ypos, xerr=z * t["std_error"], fmt="s", color="black",
                    capsize=3)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.axvline(float(self.overall["estimate"]), color="tab:blue", ls="--", lw=1,
                   label="overall")
        labels = [f"{s}  (n={n})" for s, n in zip(t["subgroup"], t["n"], strict=True)]
        ax.set_yticks(ypos, labels)
        ax.set_xlabel(f"effect ({round(level * 100)}% CI)")
        ax.set_title(f"Effect by {self.by} (Holm/BH-adjusted p in table)")
        ax.legend(loc="best", frameon=False)
        return ax


def _column(data: Any, by: str) -> npt.NDArray[Any]:
    try:
        return np.asarray(data.column(by))
    except DataValidationError:
        raise DataValidationError(
            f"by: expected a covariate or frame column named {by!r}; found none. Hint: keep "
            "the subgroup variable in EvaluationData.frame (frame_columns=...)."
        ) from None


def _materialise_small(res: Any) -> Any:
    """Results whose factored influence function has few targets, with it as an ndarray.

    A factored (:class:`~mentor_impact.inference.influence.RowInfluence`) influence function
    keeps its factors alive (for IPW the ``n x q`` propensity design); with a handful of
    targets the dense ``n x k`` matrix is far smaller.
    """
    from mentor_impact.inference.influence import RowInfluence

    if isinstance(res.influence, RowInfluence) and res.influence.shape[1] <= 8:
        return replace(res, influence=np.asarray(res.influence))
    return res


def subgroup_effects(
    estimator: Any,
    data: Any,
    *,
    outcome: str,
    by: str,
    target: int | str | None = None,
    level: float = 0.95,
    min_rows: int = 10,
    overall: EffectResults | None = None,
) -> SubgroupEffects:
    """Estimate the effect within each level of a pre-specified subgroup variable.

    Each subgroup is estimated with the full pipeline (propensity score and weights refitted
    within the subgroup, controls from the same risk sets), as METHODS §8 asks.

    Parameters
    ----------
    estimator : IPW, AIPW or any estimator with ``fit(data, *, outcome)``
        Returning results with an influence function.
    data : EvaluationData
        The evaluation sample.
    outcome : str
        Outcome name.
    by : str
        Covariate or frame column defining the subgroups (its distinct values). It must be
        measured before the start (never mentor hours or other post-start variables).
    target : int or str, optional
        For a curve: the horizon week ``tau`` (int) or target label to compare; required
        for curves.
    level : float, default=0.95
        Confidence level of the intervals.
    min_rows : int, default=10
        Subgroups with fewer treated or control rows raise an error.
    overall : EffectResults, optional
        The whole-sample fit of ``estimator`` on ``data`` and ``outcome`` with its influence
        function, if already at hand (e.g. with a shared propensity fit); by default it is
        fitted here.

    Returns
    -------
    SubgroupEffects
        Table with Holm and Benjamini-Hochberg adjusted p-values, joint covariance, Wald
        test of equal effects and a forest plot.

    Raises
    ------
    DataValidationError
        Unknown column or a subgroup with too few treated or control rows.

    Notes
    -----
    The subgroup influence functions are embedded in the rows of the full sample and summed
    within persons, so the joint covariance is person-clustered with the ``G/(G-1)`` factor
    (``Clustered("person")``) for risk-set data, or ``sum_i phi_i phi_i'`` (IID) otherwise.
    ``diff_vs_overall``/``p_diff`` compare each subgroup with the whole-sample estimate,
    using the joint influence functions. p-values are two-sided normal; ``p_holm`` and
    ``p_bh`` adjust the subgroup p-values (H0: no effect) across the
    subgroups. Label the findings exploratory unless pre-registered.
    """
    col = _column(data, by)
    levels = np.asarray(pd.unique(pd.Series(col).dropna()))
    try:
        levels = np.sort(levels)
    except TypeError:  # mixed, unorderable labels: keep the order of first appearance
        levels = np.asarray(levels)
    if len(levels) < 2:
        raise DataValidationError(
            f"by: expected at least 2 subgroups in {by!r}; found {len(levels)}."
        )
    na = pd.isna(pd.Series(col)).to_numpy()
    clustered = data.start_week is not None
    n = data.n
    k_idx: int | None = None

    def pick(res: Any) -> int:
        if res.estimate.size == 1:
            return 0
        if target is None:
            raise ConfigurationError(
                "target: the outcome is a curve; expected the horizon week (int) or a target "
                "label to compare subgroups at; got None."
            )
        lab = f"tau={int(target)}" if isinstance(target, (int, np.integer)) else str(target)
        if lab not in res.targets:
            raise ConfigurationError(f"target: {lab!r} is not among the results' targets.")
        return res.targets.index(lab)

    if overall is None:
        overall = estimator.fit(data, outcome=outcome)
    elif overall.influence is None or overall.influence.shape[0] != data.n:
        raise ConfigurationError(
            f"overall: expected results on the same {data.n} rows with an influence function; "
            "got results without one or of another size. Hint: leave overall=None."
        )
    k_idx = pick(overall)
    # subgroups copy only what the fits read (the other outcomes and durations stay behind)
    lean = replace(data, outcomes={outcome: data.outcomes[outcome]}, durations={})
    ests, names, ns, nts = [], [], [], []
    phis = np.zeros((n, len(levels) + 1))
    assert overall.influence is not None
    phis[:, -1] = overall.influence[:, k_idx]
    # keep only what is read below: the factored influence function may hold the
    # propensity design (n x q) alive through the subgroup refits
    overall = replace(overall, influence=None, frame=None)
    results: dict[str, Any] = {}
    for j, lev in enumerate(levels):
        mask = (col == lev) & ~na
        rows_ = np.flatnonzero(mask)
        sub = lean.subset(rows_)
        if min(sub.n_treated, sub.n_control) < min_rows:
            raise DataValidationError(
                f"by: subgroup {j} of {by!r} has {sub.n_treated} treated and {sub.n_control} "
                f"control rows; expected at least {min_rows} of each. Hint: merge small "
                "subgroups or lower min_rows."
            )
        res = estimator.fit(sub, outcome=outcome)
        res = _materialise_small(res)
        results[str(lev)] = res
        ests.append(float(res.estimate[k_idx]))
        phis[rows_, j] = res.influence[:, k_idx]
        names.append(str(lev))
        ns.append(int(sub.n))
        nts.append(int(sub.n_treated))
    G = len(levels)
    sums, n_cl = cluster_sums(phis, data.cluster if clustered else np.arange(n))
    V = sums.T @ sums
    if clustered and n_cl > 1:
        V *= n_cl / (n_cl - 1)
    est = np.asarray(ests)
    se = np.sqrt(np.diag(V)[:G])
    z = stats.norm.ppf(0.5 + level / 2)
    p = 2 * stats.norm.sf(np.abs(est / se))
    diff = est - float(overall.estimate[k_idx])
    var_diff = np.diag(V)[:G] + V[-1, -1] - 2 * V[:G, -1]
    p_diff = 2 * stats.norm.sf(np.abs(diff / np.sqrt(var_diff)))
    # Wald test of equal effects: contrasts (est_j - est_0)
    C = np.hstack([-np.ones((G - 1, 1)), np.eye(G - 1)])
    cd = C @ est
    Vc = C @ V[:G, :G] @ C.T
    wald = float(cd @ np.linalg.pinv(Vc) @ cd)
    table = pd.DataFrame(
        {
            "subgroup": names,
            "estimate": est,
            "std_error": se,
            "ci_lower": est - z * se,
            "ci_upper": est + z * se,
            "p_value": p,
            "p_holm": adjust_pvalues(p, "holm"),
            "p_bh": adjust_pvalues(p, "bh"),
            "diff_vs_overall": diff,
            "p_diff": p_diff,
            "n": ns,
            "n_treated": nts,
        }
    )
    ov = pd.Series({"estimate": float(overall.estimate[k_idx]), "std_error": float(np.sqrt(
        V[-1, -1]))})
    return SubgroupEffects(
        table=table, cov=V[:G, :G], wald_stat=wald, wald_df=G - 1,
        wald_pvalue=float(stats.chi2.sf(wald, G - 1)), by=by, overall=ov, results=results,
    )


@dataclass(frozen=True)
class CATESummary:
    """Conditional average treatment effects summarised honestly (GATES and BLP).

    Attributes
    ----------
    cate : ndarray of shape (n,)
        Cross-fitted CATE predictions (each row predicted by a model fitted on the other
        half of the persons).
    gates : pandas.DataFrame
        Group average treatment effects by CATE quantile group: ``group`` (1 = lowest
        predicted effect), ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``,
        ``mean_cate``, ``n``.
    blp : pandas.DataFrame
        Best linear predictor: rows ``ate`` (beta_1) and ``heterogeneity`` (beta_2, the
        loading on the centred CATE; 0 = no detected heterogeneity, 1 = well calibrated),
        with ``estimate``, ``std_error``, ``p_value``.
    learner : str
        ``"drlearner"`` or ``"causal_forest"``.
    gates_top_minus_bottom : pandas.Series
        Difference of the top and bottom GATES with its standard error and p-value.
    """

    cate: FloatArray
    gates: pd.DataFrame
    blp: pd.DataFrame
    learner: str
    gates_top_minus_bottom: pd.Series


def _require_econml() -> Any:
    try:
        import econml  # noqa: F401
        from econml.dml import CausalForestDML
        from econml.dr import DRLearner
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching
        raise MissingDependencyError(
            "econml: CATE estimation needs the optional dependency econml, which is not "
            "installed. Hint: pip install 'mentor_impact[ml]' (or pip install econml)."
        ) from exc
    return DRLearner, CausalForestDML


def _weighted_quantile_groups(x: FloatArray, w: FloatArray, n_groups: int) -> npt.NDArray[
        np.int64]:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    cw = cw / cw[-1]
    grp_sorted = np.minimum((cw * n_groups - 1e-12).astype(np.int64), n_groups - 1)
    grp_sorted = np.maximum(grp_sorted, 0)
    out = np.empty(x.size, dtype=np.int64)
    out[order] = grp_sorted
    return out


def cate_summary(
    data: Any,
    *,
    outcome: str,
    learner: str = "drlearner",
    target: int | None = None,
    n_groups: int = 5,
    propensity_learner: Any = None,
    outcome_learner: Any = None,
    n_folds: int = 2,
    seed: int = 0,
    level: float = 0.95,
    **learner_options: Any,
) -> CATESummary:
    """CATE by econml (DRLearner or CausalForestDML), summarised as GATES and BLP.

    Run it on the control-subsampled stacked risk-set data with its sampling weights (METHODS
    §8: weekly propensities are tiny, so DR pseudo-outcomes explode on the full risk sets).

    Parameters
    ----------
    data : EvaluationData
        Stacked (person, s) rows with ``weight`` (sampling weights) and ``cluster`` (person).
    outcome : str
        Scalar outcome, or a curve with ``target`` the horizon week to analyse.
    learner : {"drlearner", "causal_forest"}, default="drlearner"
        ``econml.dr.DRLearner`` (final stage: a random forest unless
        ``model_final=...`` is given) or ``econml.dml.CausalForestDML``.
    target : int, optional
        Horizon week for curve outcomes.
    n_groups : int, default=5
        Number of CATE quantile groups for GATES (5 = quintiles).
    propensity_learner, outcome_learner : scikit-learn estimators, optional
        Nuisance models for econml and for the AIPW scores (default: logistic regression
        and gradient boosting for econml; logit / least squares for the scores).
    n_folds : int, default=2
        Cross-fitting folds of the AIPW scores.
    seed : int, default=0
        Seed of the person split, the econml learners and the folds.
    level : float, default=0.95
        Confidence level of the GATES intervals.
    **learner_options
        Passed to the econml constructor.

    Returns
    -------
    CATESummary
        Cross-fitted CATE predictions, GATES by quantile group and the BLP.

    Raises
    ------
    MissingDependencyError
        When econml is not installed (``pip install 'mentor_impact[ml]'``).

    Notes
    -----
    Honest two-way split by person: econml is fitted on one half of the persons and predicts
    the CATE of the other half, and vice versa. GATES and BLP use the cross-fitted AIPW (ATE)
    scores ``phi_i`` of :class:`~mentor_impact.AIPW` as the outcome (Chernozhukov, Demirer,
    Duflo & Fernandez-Val): ``GATES_g`` = weighted mean of ``phi`` in CATE group ``g``;
    BLP = weighted least squares of ``phi`` on ``[1, cate - mean(cate)]``. Standard errors
    are person-clustered (``G/(G-1)``) for risk-set data and HC0 otherwise. Everything here
    is exploratory and should be labelled so.
    """
    choice("cate_summary", "learner", learner, ("drlearner", "causal_forest"))
    if not isinstance(n_groups, (int, np.integer)) or n_groups < 2:
        raise ConfigurationError(f"n_groups: expected an int >= 2; got {n_groups!r}.")
    DRLearner, CausalForestDML = _require_econml()
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    y_all = np.asarray(data.outcome(outcome), dtype=np.float64)
    if y_all.ndim == 2:
        if target is None or data.tau is None or int(target) not in set(data.tau.tolist()):
            raise ConfigurationError(
                "target: the outcome is a curve; expected one of its horizon weeks; got "
                f"{target!r}."
            )
        col = int(np.flatnonzero(data.tau == int(target))[0])
        y = y_all[:, col]
        sub_name = f"{outcome}[tau={int(target)}]"
        data = _with_scalar(data, sub_name, y)
        outcome = sub_name
    else:
        y = y_all
    d = data.treatment.astype(np.int64)
    w = np.asarray(data.weight, dtype=np.float64)
    X = data.X
    half = person_folds(data.cluster, 2, seed)
    cate = np.empty(data.n)
    from sklearn.base import clone

    ps_l = propensity_learner if propensity_learner is not None else LogisticRegression(
        max_iter=2000)
    out_l = outcome_learner if outcome_learner is not None else GradientBoostingRegressor(
        random_state=seed)
    for h in (0, 1):
        tr = half != h
        if learner == "drlearner":
            opts = {"model_final": RandomForestRegressor(min_samples_leaf=20, random_state=seed)}
            opts.update(learner_options)
            model = DRLearner(model_propensity=clone(ps_l), model_regression=clone(out_l),
                              cv=2, random_state=seed, **opts)
        else:
            opts = {"n_estimators": 200, "n_jobs": 1}
            opts.update(learner_options)
            model = CausalForestDML(model_y=clone(out_l), model_t=clone(ps_l),
                                    discrete_treatment=True, cv=2, random_state=seed, **opts)
        model.fit(y[tr], d[tr], X=X[tr], sample_weight=w[tr], groups=data.cluster[tr])
        cate[~tr] = np.asarray(model.effect(X[~tr]), dtype=np.float64).ravel()
    aipw = AIPW(propensity_learner=propensity_learner, outcome_learner=outcome_learner,
                n_folds=n_folds, estimand="ATE", seed=seed)
    res = aipw.fit(data, outcome=outcome, cov="iid")
    W = float(w.sum())
    assert res.influence is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(w > 0, res.estimate[0] + res.influence[:, 0] * W / w, 0.0)
    clustered = data.start_week is not None
    cl = data.cluster if clustered else np.arange(data.n)
    grp = _weighted_quantile_groups(cate, w, n_groups)
    z = stats.norm.ppf(0.5 + level / 2)
    # GATES as a saturated weighted regression of phi on group dummies (joint covariance)
    D = (grp[:, None] == np.arange(n_groups)[None, :]).astype(np.float64)
    gates_est, gates_cov = _wls(D, phi, w, cl, clustered)
    gse = np.sqrt(np.diag(gates_cov))
    gates = pd.DataFrame(
        {
            "group": np.arange(1, n_groups + 1),
            "estimate": gates_est,
            "std_error": gse,
            "ci_lower": gates_est - z * gse,
            "ci_upper": gates_est + z * gse,
            "mean_cate": np.bincount(grp, weights=w * cate, minlength=n_groups)
            / np.maximum(np.bincount(grp, weights=w, minlength=n_groups), 1e-300),
            "n": np.bincount(grp, minlength=n_groups),
        }
    )
    diff = gates_est[-1] - gates_est[0]
    sd = float(np.sqrt(gates_cov[-1, -1] + gates_cov[0, 0] - 2 * gates_cov[0, -1]))
    tmb = pd.Series({"estimate": diff, "std_error": sd,
                     "p_value": float(2 * stats.norm.sf(abs(diff / sd)))})
    cbar = float(np.dot(w, cate) / W)
    B = np.column_stack([np.ones(data.n), cate - cbar])
    b_est, b_cov = _wls(B, phi, w, cl, clustered)
    bse = np.sqrt(np.diag(b_cov))
    blp = pd.DataFrame(
        {"estimate": b_est, "std_error": bse,
         "p_value": 2 * stats.norm.sf(np.abs(b_est / bse))},
        index=pd.Index(["ate", "heterogeneity"], name="term"),
    )
    return CATESummary(cate=cate, gates=gates, blp=blp, learner=learner,
                       gates_top_minus_bottom=tmb)


def _wls(A: FloatArray, y: FloatArray, w: FloatArray, cl: npt.NDArray[Any],
         clustered: bool) -> tuple[FloatArray, FloatArray]:
    """Weighted least squares with a cluster-robust (or HC0) sandwich."""
    Aw = A * w[:, None]
    bread = np.linalg.pinv(A.T @ Aw)
    beta = bread @ (Aw.T @ y)
    scores = Aw * (y - A @ beta)[:, None]
    sums, g = cluster_sums(scores, cl)
    meat = sums.T @ sums
    if clustered and g > 1:
        meat *= g / (g - 1)
    return beta, bread @ meat @ bread


def _with_scalar(data: Any, name: str, y: FloatArray) -> Any:
    import dataclasses

    outs = dict(data.outcomes)
    outs[name] = y
    return dataclasses.replace(data, outcomes=outs)
