"""Plain-loop reference twins of the weighting kernels (slow, obvious, for tests only)."""

from __future__ import annotations

import math

import numpy as np


def ref_logit(Z, d, w, n_iter=50):
    """Newton-Raphson for the weighted logit, written out with loops over rows."""
    n, q = Z.shape
    beta = np.zeros(q)
    for _ in range(n_iter):
        grad = np.zeros(q)
        H = np.zeros((q, q))
        for i in range(n):
            eta = sum(Z[i, j] * beta[j] for j in range(q))
            p = 1.0 / (1.0 + math.exp(-eta))
            grad += w[i] * (d[i] - p) * Z[i]
            H += w[i] * p * (1 - p) * np.outer(Z[i], Z[i])
        step = np.linalg.solve(H, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-13:
            break
    return np.array([1.0 / (1.0 + math.exp(-float(Z[i] @ beta))) for i in range(n)])


def arm_weight(e, treated, estimand):
    if estimand == "ATT":
        return (1.0, None) if treated else (e / (1 - e), None)
    if estimand == "ATE":
        return (1 / e, None) if treated else (1 / (1 - e), None)
    if estimand == "ATC":
        return ((1 - e) / e, None) if treated else (1.0, None)
    return (1 - e, None) if treated else (e, None)


def target(e, treated, estimand):
    return {"ATT": float(treated), "ATE": 1.0, "ATC": float(not treated), "ATO": e * (1 - e)}[
        estimand
    ]


def ref_ipw(Y, d, w, X, *, groups=None, estimand="ATT", normalized=True, later_start=None,
            tau=None, dynamic="A"):
    """IPW effect for every column of Y, loops over groups, rows and weeks.

    The logit is fitted on [1, X] with weights w; estimand B censors controls at their later
    start and divides by (1 - e)^(weeks at risk) computed as a product over weeks.
    """
    n, K = Y.shape
    Z = np.column_stack([np.ones(n), X])
    e = ref_logit(Z, d, w)
    g = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    out = np.zeros(K)
    for k in range(K):
        if not normalized:
            num = 0.0
            den = 0.0
            for i in range(n):
                om, _ = arm_weight(e[i], d[i] == 1, estimand)
                sign = 1.0 if d[i] == 1 else -1.0
                num += sign * w[i] * om * Y[i, k]
                den += w[i] * target(e[i], d[i] == 1, estimand)
            out[k] = num / den
            continue
        total_t = 0.0
        acc = 0.0
        for s in sorted(set(g.tolist())):
            s1 = s0 = a1 = a0 = ts = 0.0
            for i in range(n):
                if g[i] != s:
                    continue
                ts += w[i] * target(e[i], d[i] == 1, estimand)
                om, _ = arm_weight(e[i], d[i] == 1, estimand)
                if d[i] == 1:
                    s1 += w[i] * om
                    a1 += w[i] * om * Y[i, k]
                else:
                    if dynamic == "B":
                        L = later_start[i]
                        if L >= 0 and L <= tau[k]:
                            continue
                        surv = 1.0
                        for _r in range(1, tau[k] + 1):
                            surv *= 1.0 - e[i]
                        om = om / surv
                    s0 += w[i] * om
                    a0 += w[i] * om * Y[i, k]
            if ts > 0 and s1 > 0 and s0 > 0:
                acc += ts * (a1 / s1 - a0 / s0)
                total_t += ts
        out[k] = acc / total_t
    return out
