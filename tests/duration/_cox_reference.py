"""Plain-loop reference twins of the vectorised Cox kernels (slow, for small data only)."""

from __future__ import annotations

import numpy as np


def loop_cox(beta, x, stop, event, w, start=None, strata=None, ties="efron"):
    """Log partial likelihood, score and information by explicit loops over event times."""
    n, p = x.shape
    start = np.full(n, -np.inf) if start is None else start
    strata = np.zeros(n, int) if strata is None else strata
    eta = x @ beta
    e = np.exp(eta)
    ll = 0.0
    u = np.zeros(p)
    info = np.zeros((p, p))
    for s in np.unique(strata):
        for t in np.unique(stop[(strata == s) & (event == 1)]):
            risk = [i for i in range(n) if strata[i] == s and start[i] < t <= stop[i]]
            dead = [i for i in risk if stop[i] == t and event[i] == 1]
            d = len(dead)
            dw = sum(w[i] for i in dead)
            s0 = sum(w[i] * e[i] for i in risk)
            s1 = sum(w[i] * e[i] * x[i] for i in risk)
            s2 = sum(w[i] * e[i] * np.outer(x[i], x[i]) for i in risk)
            s0d = sum(w[i] * e[i] for i in dead)
            s1d = sum(w[i] * e[i] * x[i] for i in dead)
            s2d = sum(w[i] * e[i] * np.outer(x[i], x[i]) for i in dead)
            for i in dead:
                ll += w[i] * eta[i]
                u += w[i] * x[i]
            if ties == "breslow":
                ll -= dw * np.log(s0)
                u -= dw * s1 / s0
                info += dw * (s2 / s0 - np.outer(s1, s1) / s0**2)
            else:
                mw = dw / d
                for r in range(d):
                    f = r / d
                    den = s0 - f * s0d
                    a = (s1 - f * s1d) / den
                    ll -= mw * np.log(den)
                    u -= mw * a
                    info += mw * ((s2 - f * s2d) / den - np.outer(a, a))
    return ll, u, info


def loop_score_residuals(beta, x, stop, event, w, start=None, strata=None, ties="efron"):
    """Score residuals (R ``residuals(fit, 'score')``) by loops over rows and event times."""
    n, p = x.shape
    start = np.full(n, -np.inf) if start is None else start
    strata = np.zeros(n, int) if strata is None else strata
    e = np.exp(x @ beta)
    res = np.zeros((n, p))
    for s in np.unique(strata):
        for t in np.unique(stop[(strata == s) & (event == 1)]):
            risk = [i for i in range(n) if strata[i] == s and start[i] < t <= stop[i]]
            dead = [i for i in risk if stop[i] == t and event[i] == 1]
            d = len(dead)
            dw = sum(w[i] for i in dead)
            s0 = sum(w[i] * e[i] for i in risk)
            s1 = sum(w[i] * e[i] * x[i] for i in risk)
            s0d = sum(w[i] * e[i] for i in dead)
            s1d = sum(w[i] * e[i] * x[i] for i in dead)
            terms = (
                [(0.0, s0, s1)]
                if ties == "breslow"
                else [(r / d, s0 - r / d * s0d, s1 - r / d * s1d) for r in range(d)]
            )
            mw = dw if ties == "breslow" else dw / d
            xbars = [s1_ / s0_ for _, s0_, s1_ in terms]
            for i in risk:
                for (f, s0_, _), xb in zip(terms, xbars, strict=True):
                    c = (1 - f) if (i in dead and ties == "efron") else 1.0
                    res[i] -= c * e[i] * (x[i] - xb) * mw / s0_
            for i in dead:
                res[i] += x[i] - np.mean(xbars, axis=0)
    return res


def loop_concordance(eta, stop, event, w, start=None, strata=None):
    """Weighted concordance counts by a loop over all pairs."""
    n = eta.size
    start = np.full(n, -np.inf) if start is None else start
    strata = np.zeros(n, int) if strata is None else strata
    out = {"concordant": 0.0, "discordant": 0.0, "tied_x": 0.0, "tied_y": 0.0}
    d_agree = np.zeros(n)
    d_pairs = np.zeros(n)
    for i in range(n):
        if event[i] != 1:
            continue
        t = stop[i]
        for j in range(n):
            if j == i or strata[j] != strata[i] or not (start[j] < t <= stop[j]):
                continue
            ww = w[i] * w[j]
            if stop[j] == t and event[j] == 1:
                out["tied_y"] += ww / 2
                continue
            a = 1.0 if eta[i] > eta[j] else (0.5 if eta[i] == eta[j] else 0.0)
            if eta[i] > eta[j]:
                out["concordant"] += ww
            elif eta[i] < eta[j]:
                out["discordant"] += ww
            else:
                out["tied_x"] += ww
            d_agree[i] += w[j] * a
            d_agree[j] += w[i] * a
            d_pairs[i] += w[j]
            d_pairs[j] += w[i]
    agree = out["concordant"] + out["tied_x"] / 2
    pairs = out["concordant"] + out["discordant"] + out["tied_x"]
    infl = (d_agree * pairs - agree * d_pairs) / pairs**2
    out["variance"] = float(np.sum(w * infl**2))  # infinitesimal jackknife (R concordance)
    return out
