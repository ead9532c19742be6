"""Plain-loop reference twins of the timing-of-events kernels (person by person, week by week)."""

from __future__ import annotations

import math

import numpy as np


def _interval(cuts, t):
    q = 0
    for i in range(len(cuts)):
        if cuts[i] < t:
            q = i
    return q


def _eta_exit(P, x, z, r, t, tm, cuts, bins, with_effect=True):
    q = _interval(cuts, t)
    eta = P["alpha_e"][r, q] + float(np.dot(P["beta_e"][r], x))
    if with_effect and tm >= 0 and t > tm:
        j = _interval(bins, t - tm)
        eta += P["delta"][r, j]
        if len(z):
            eta += float(np.dot(P["gamma"][r, j], z))
    return eta


def _eta_start(P, x, t, cuts):
    return P["alpha_m"][_interval(cuts, t)] + float(np.dot(P["beta_m"], x))


def loglik_loop(P, T, cause, tm, t0, X, Z, w, exit_cuts, start_cuts, bins, truncated,
                start_before_entry=True, gaps=None):
    """Weighted log-likelihood of the grouped ToE model by explicit loops.

    ``start_before_entry=False``: the truncation term holds the exit hazards only (no
    start was possible before sample entry). ``gaps``: spell -> set of weeks not at risk
    of a start (skipped by the start hazard)."""
    gaps = gaps or {}
    lv, a = P["lv"], P["a"]
    K, R1 = lv.shape
    R = R1 - 1
    pi = np.exp(a) / np.exp(a).sum()
    total = 0.0
    for i in range(len(T)):
        num = 0.0
        den = 0.0
        for k in range(K):
            ell = 0.0
            for t in range(t0[i] + 1, T[i] + 1):
                th = [math.exp(_eta_exit(P, X[i], Z[i], r, t, tm[i], exit_cuts, bins) + lv[k, r])
                      for r in range(R)]
                Th = sum(th)
                if t == T[i] and cause[i] > 0:
                    ell += math.log(1 - math.exp(-Th)) + math.log(th[cause[i] - 1] / Th)
                else:
                    ell -= Th
            last = T[i] if tm[i] < 0 else tm[i]
            for t in range(t0[i] + 1, last + 1):
                if t in gaps.get(i, ()):
                    continue
                thm = math.exp(_eta_start(P, X[i], t, start_cuts) + lv[k, R])
                if t == tm[i]:
                    ell += math.log(1 - math.exp(-thm))
                else:
                    ell -= thm
            H = 0.0
            if truncated:
                for t in range(1, t0[i] + 1):
                    for r in range(R):
                        H += math.exp(_eta_exit(P, X[i], Z[i], r, t, -1, exit_cuts, bins)
                                      + lv[k, r])
                    if start_before_entry and t not in gaps.get(i, ()):
                        H += math.exp(_eta_start(P, X[i], t, start_cuts) + lv[k, R])
            num += pi[k] * math.exp(ell - H)
            den += pi[k] * math.exp(-H)
        total += w[i] * (math.log(num) - math.log(den))
    return total


def curves_loop(P, T, cause, tm, t0, X, Z, exit_cuts, start_cuts, bins, truncated, rows,
                horizon, with_effect, start_before_entry=True, gaps=None):
    """Posterior-integrated survival and CIF after the start for the given treated rows."""
    gaps = gaps or {}
    lv, a = P["lv"], P["a"]
    K, R1 = lv.shape
    R = R1 - 1
    pi = np.exp(a) / np.exp(a).sum()
    S_out = np.zeros((len(rows), horizon + 1))
    C_out = np.zeros((len(rows), R, horizon + 1))
    for m, i in enumerate(rows):
        lo = 1 if truncated else t0[i] + 1
        post = np.zeros(K)
        for k in range(K):
            ell = math.log(pi[k])
            for t in range(lo, tm[i]):
                for r in range(R):
                    ell -= math.exp(_eta_exit(P, X[i], Z[i], r, t, -1, exit_cuts, bins) + lv[k, r])
                if (t > t0[i] or start_before_entry) and t not in gaps.get(i, ()):
                    ell -= math.exp(_eta_start(P, X[i], t, start_cuts) + lv[k, R])
            thm = math.exp(_eta_start(P, X[i], tm[i], start_cuts) + lv[k, R])
            ell += math.log(1 - math.exp(-thm))
            post[k] = ell
        post = np.exp(post - post.max())
        post /= post.sum()
        for k in range(K):
            surv = 1.0
            cif = [0.0] * R
            for tau in range(horizon + 1):
                t = tm[i] + tau
                th = [math.exp(_eta_exit(P, X[i], Z[i], r, t, tm[i], exit_cuts, bins,
                                         with_effect) + lv[k, r]) for r in range(R)]
                Th = sum(th)
                for r in range(R):
                    cif[r] += surv * th[r] / Th * (1 - math.exp(-Th))
                surv *= math.exp(-Th)
                S_out[m, tau] += post[k] * surv
                for r in range(R):
                    C_out[m, r, tau] += post[k] * cif[r]
    return S_out, C_out


def _spell_end(B, states, exit_ids, i, b):
    """Length of the benefit spell of row ``i`` entered in column ``b`` and its exit cause
    (position in exit_ids + 1; 0 when it runs to the register end or exits elsewhere)."""
    W = B.shape[1]
    e = W
    for w in range(b, W):
        if not B[i, w]:
            e = w
            break
    cause = 0
    if e < W:
        for r, ids in enumerate(exit_ids):
            if states[i, e] in ids:
                cause = r + 1
                break
    return e - b, cause


def spells_loop(B, states, exit_ids, starts_by_row, max_weeks):
    """Inflow spells by explicit loops: first benefit inflow (not in week 0), its length,
    exit cause (position in exit_ids + 1, 0 = censored) and first start inside the spell."""
    n, W = B.shape
    out = {}
    for i in range(n):
        b = -1
        for w in range(1, W):
            if B[i, w] and not B[i, w - 1]:
                b = w
                break
        if b < 0:
            continue
        T, cause = _spell_end(B, states, exit_ids, i, b)
        if T > max_weeks:
            T, cause = max_weeks, 0
        start = -1
        for c in sorted(starts_by_row.get(i, [])):
            wk = c - b + 1
            if 1 <= wk <= T:
                start = wk
                break
        out[i] = (T, cause, start)
    return out


def stock_inflow_loop(B, states, exit_ids, starts_by_row, s0, max_weeks, hist_ind, entry_ind,
                      history_weeks=52):
    """Stock at column s0 plus later inflow, by explicit loops.

    Person on benefit at s0 whose spell began after column 0: that spell, entry = s0 - b.
    On benefit at s0 since column 0: dropped. Off benefit at s0: first spell entered after s0,
    entry 0. Returns row -> (T, cause, start, entry, history share, entry-state flag)."""
    n, W = B.shape
    out = {}
    for i in range(n):
        if B[i, s0]:
            b = s0
            while b > 0 and B[i, b - 1]:
                b -= 1
            if b == 0:
                continue
            t0 = s0 - b
        else:
            b = -1
            for w in range(s0 + 1, W):
                if B[i, w] and not B[i, w - 1]:
                    b = w
                    break
            if b < 0:
                continue
            t0 = 0
        T, cause = _spell_end(B, states, exit_ids, i, b)
        if T > t0 + max_weeks:
            T, cause = t0 + max_weeks, 0
        start = -1
        for c in sorted(starts_by_row.get(i, [])):
            wk = c - b + 1
            if t0 < wk <= T:
                start = wk
                break
        ec = b + t0
        cnt = 0
        lo = max(ec - history_weeks, 0)
        for w in range(lo, ec):
            cnt += int(hist_ind[i, w])
        share = cnt / (ec - lo) if ec > lo else 0.0
        out[i] = (T, cause, start, t0, share, int(entry_ind[i, ec]))
    return out


def assert_gradient_matches_fd(K_, theta, L, D):
    """The kernel's analytic gradient equals central finite differences of its
    log-likelihood, and the weighted per-person scores sum to it."""
    _, g = K_.loglik_grad(theta, L, D)
    num = np.empty_like(theta)
    h = 1e-6
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        num[i] = (K_.loglik(tp, L, D) - K_.loglik(tm, L, D)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-5)
    _, S = K_.loglik_grad(theta, L, D, per_person=True)
    np.testing.assert_allclose(D.w @ S, g, rtol=1e-10, atol=1e-10)


def start_gaps_loop(ok_state, week_ordinals, birth_ordinal, spells, lag=1, age_band=None,
                    force_start=True):
    """Runs of spell weeks not at risk of a start, by explicit loops.

    ``ok_state[i, c]``: person row i holds an eligible state in column c; a start in
    column c needs ``ok_state[i, c - lag]`` and, with ``age_band``, ``lo <= age(c) < hi``
    (age in years of 52.1775 weeks from the birth ordinal). Returns a list of
    (spell, first, last) and the list of spells whose start week fails the rules."""
    out = []
    bad_starts = []
    for s, (row, b, T, tm) in enumerate(spells):
        run = None
        for t in range(1, T + 1):
            c = b + t - 1
            ok = c - lag >= 0 and bool(ok_state[row, c - lag])
            if age_band is not None:
                age = (week_ordinals[c] - birth_ordinal[row]) / 52.1775
                ok = ok and age_band[0] <= age < age_band[1]
            if t == tm and not ok:
                bad_starts.append(s)
            if force_start and t == tm:
                ok = True
            if not ok:
                run = [t, t] if run is None else [run[0], t]
            elif run is not None:
                out.append((s, run[0], run[1]))
                run = None
        if run is not None:
            out.append((s, run[0], run[1]))
    return out, bad_starts


def assert_curves_match_loop(K_, theta, L, D, df, X, Z, horizon=15, **loop_kw):
    """The kernel's treated survival and CIF curves, with and without the effects, equal
    the plain-loop twin (left truncation on) for every treated spell."""
    rows = D.s_row
    assert rows.size > 3
    cols = [df[c].to_numpy() for c in ("duration", "exit", "start", "entry")]
    for eff in (True, False):
        S, C = K_.treated_curves(theta, L, D, cols[2], rows, horizon, with_effect=eff)
        Sr, Cr = curves_loop(L.unpack(theta), *cols, X, Z, D.exit_cuts, D.start_cuts, D.bins,
                             True, rows, horizon, eff, **loop_kw)
        np.testing.assert_allclose(S, Sr, rtol=1e-10)
        np.testing.assert_allclose(C, Cr, rtol=1e-10, atol=1e-14)


def z_vs_truth(res, sim, blocks=None):
    """Fitted parameters merged with the simulation truth (``value``), with
    ``z = (estimate - value) / std_error``; only the given blocks if any."""
    tab = res.params.merge(sim.truth, on=["equation", "block", "term"])
    if blocks is not None:
        tab = tab[tab.block.isin(list(blocks))]
    return tab.assign(z=(tab.estimate - tab.value) / tab.std_error)
