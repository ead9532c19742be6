"""Plain-loop reference twins of the vectorised matching kernels (slow, obviously correct)."""

from __future__ import annotations

import numpy as np


def sorted_layout(dist, treat, cell):
    """MatchIt layout: all units sorted by (cell, distance, row)."""
    n = len(dist)
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    return sorted(range(n), key=lambda i: (cellv[i], dist[i], i)), cellv


def _neighbours(i, order, pos, dist, treat, cellv, available, focal_is_treated=True):
    """Nearest available pool unit to the left and right of unit i in the sorted layout."""
    p = pos[i]
    left = right = None
    j = p - 1
    while j >= 0:
        u = order[j]
        if cellv[u] != cellv[i]:
            break
        if treat[u] != focal_is_treated and available[u]:
            left = u
            break
        j -= 1
    j = p + 1
    while j < len(order):
        u = order[j]
        if cellv[u] != cellv[i]:
            break
        if treat[u] != focal_is_treated and available[u]:
            right = u
            break
        j += 1
    return left, right


def _pick(i, left, right, dist):
    if left is None and right is None:
        return None, np.inf
    if right is None:
        return left, abs(dist[left] - dist[i])
    if left is None:
        return right, abs(dist[right] - dist[i])
    dl = abs(dist[left] - dist[i])
    dr = abs(dist[right] - dist[i])
    return (left, dl) if dl <= dr else (right, dr)


def sequential_greedy(dist, treat, cell, order_focal, k, caliper):
    """MatchIt's nn_matchC_vec: k passes, focal units in order, nearest unused control."""
    order, cellv = sorted_layout(dist, treat, cell)
    pos = {u: p for p, u in enumerate(order)}
    available = {u: True for u in range(len(dist))}
    matches = {int(i): [] for i in order_focal}
    for r in range(k):
        for i in order_focal:
            if r > 0 and len(matches[int(i)]) < r:
                continue
            left, right = _neighbours(i, order, pos, dist, treat, cellv, available)
            if caliper is not None:
                if left is not None and abs(dist[left] - dist[i]) > caliper:
                    left = None
                if right is not None and abs(dist[right] - dist[i]) > caliper:
                    right = None
            c, _ = _pick(i, left, right, dist)
            if c is None:
                continue
            matches[int(i)].append(int(c))
            available[c] = False
    return matches


def knn_replace(dist, treat, cell, k, caliper, ties):
    """k nearest controls with replacement (merge order, left wins ties); ties='all' extends."""
    n = len(dist)
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    out = {}
    for i in np.flatnonzero(treat):
        cands = [j for j in range(n) if not treat[j] and cellv[j] == cellv[i]]
        # MatchIt order: sort by (gap, side) where the left side (smaller sorted position) wins
        def key(j, i=i):
            left = (dist[j], j) < (dist[i], i)
            # left candidates: nearer in sorted order first; tie on gap -> left first
            return (abs(dist[j] - dist[i]), 0 if left else 1,
                    -(dist[j]) if left else dist[j], -j if left else j)
        cands.sort(key=key)
        chosen = []
        for j in cands[:k]:
            if caliper is not None and abs(dist[j] - dist[i]) > caliper:
                break
            chosen.append(int(j))
        if ties == "all" and chosen:
            r = abs(dist[chosen[-1]] - dist[i])
            chosen += [int(j) for j in cands[len(chosen):] if abs(dist[j] - dist[i]) <= r]
        out[int(i)] = chosen
    return out


def radius_loop(dist, treat, cell, radius):
    n = len(dist)
    cellv = np.zeros(n, dtype=np.int64) if cell is None else cell
    return {
        int(i): sorted(
            int(j) for j in range(n)
            if not treat[j] and cellv[j] == cellv[i] and abs(dist[j] - dist[i]) <= radius
        )
        for i in np.flatnonzero(treat)
    }


def ai_variance_loop(y, treat, matches, sigma2):
    """Abadie–Imbens population ATT variance by explicit loops (M matches, weights 1/m)."""
    n = len(y)
    K = np.zeros(n)
    KK = np.zeros(n)
    taus = []
    for t, cs in matches.items():
        if not cs:
            continue
        m = len(cs)
        for c in cs:
            K[c] += 1.0 / m
            KK[c] += 1.0 / m**2
        taus.append(y[t] - np.mean([y[c] for c in cs]))
    taus = np.array(taus)
    est = taus.mean()
    n1 = len(taus)
    v = sum((tt - est) ** 2 for tt in taus)
    for j in range(n):
        if not treat[j]:
            v += (K[j] ** 2 - KK[j]) * sigma2[j]
    return est, v / n1**2
