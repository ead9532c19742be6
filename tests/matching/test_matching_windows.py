"""Radius and Epanechnikov kernel matching in window form against plain loops over pairs.

``WindowMatches`` never lists the pairs: sums over a focal unit's matches and over the
focal units that use a pool unit come from (segment-restarted, moment-shifted) prefix
sums. Every sum is checked here against a loop over the explicit pairs.
"""

from __future__ import annotations

import numpy as np
import pytest

import mentor_impact.matching._core as C
from mentor_impact.design import EvaluationData
from mentor_impact.matching import KernelMatching, RadiusMatching
from mentor_impact.matching._core import OutcomeRows, WindowMatches


def _data(n=300, seed=0, k=3, cells=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(x - 0.5)))).astype(np.int8)
    Y = (x[:, None] + rng.normal(size=(n, k)) > 0).astype(np.int8)
    return EvaluationData(
        X=x[:, None], covariate_names=("x",), treatment=d,
        outcomes={"c": Y, "y": Y[:, 0].astype(float) + rng.normal(size=n)},
        tau=np.arange(k), cell=rng.integers(0, 3, size=n) if cells else None,
        weight=rng.uniform(0.5, 2.0, size=n),
    )


def _loop_pairs(dist, focal, pool, cell, r, strict, kernel):
    """Explicit pairs by brute force: (focal index, pool row, weight)."""
    out = []
    for i, f in enumerate(focal):
        js = [j for j in pool if cell[j] == cell[f]
              and (abs(dist[j] - dist[f]) < r if strict else abs(dist[j] - dist[f]) <= r)]
        if kernel:
            kv = [0.75 * (1 - ((dist[j] - dist[f]) / r) ** 2) for j in js]
            tot = sum(kv)
            out += [(i, j, w / tot) for j, w in zip(js, kv, strict=True)]
        else:
            out += [(i, j, 1.0 / len(js)) for j in js]
    return out


@pytest.mark.parametrize("kind", ["radius", "kernel"])
@pytest.mark.parametrize("estimand", ["ATT", "ATC"])
def test_window_sums_equal_pair_loops(kind, estimand, monkeypatch):
    monkeypatch.setattr(C, "BLOCK_ELEMS", 50)  # several column blocks
    data = _data(seed=1)
    est = (RadiusMatching(0.3, exact=["cell"], estimand=estimand) if kind == "radius"
           else KernelMatching(0.4, exact=["cell"], estimand=estimand))
    res = est.fit(data, outcome="c")
    m = res.extra["matches"]
    assert isinstance(m, WindowMatches)
    dist = res.extra["distance"]
    r = res.extra["caliper"]
    treat = data.treatment == (1 if estimand == "ATT" else 0)
    focal, pool = np.flatnonzero(treat), np.flatnonzero(~treat)
    pairs = _loop_pairs(dist, focal, pool, data.cell, r, kind == "kernel", kind == "kernel")
    n, nf = data.n, focal.size
    # windows: sizes, reuse counts and the pair lists
    cnt = np.bincount([p[0] for p in pairs], minlength=nf)
    np.testing.assert_array_equal(m.n_matches, cnt)
    np.testing.assert_array_equal(m.reuse_counts(),
                                  np.bincount([p[1] for p in pairs], minlength=n))
    got = sorted(zip(np.repeat(np.arange(nf), m.n_matches).tolist(), m.matched.tolist(),
                     m.pair_weight.tolist(), strict=True))
    want = sorted(pairs)
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-12)
    # column sums (K_j and sum_i c_i w_ij^2) and weighted sums of rows
    c = np.random.default_rng(2).uniform(0.5, 2.0, size=nf)
    for power in (1, 2):
        loop = np.zeros(n)
        for i, j, w in pairs:
            loop[j] += c[i] * w**power
        np.testing.assert_allclose(m.column_sums(c, power), loop, rtol=1e-10, atol=1e-14)
    Y = data.outcome("c")
    sign = 1.0 if estimand == "ATT" else -1.0
    loop = np.zeros((nf, Y.shape[1]))
    for i, j, w in pairs:
        loop[i] += w * sign * Y[j]
    np.testing.assert_allclose(m.weighted_sums(OutcomeRows(Y, sign), Y.shape[1]), loop,
                               rtol=1e-11, atol=1e-14)
    # pair-level sum of squares (homoskedastic variance) by the identity
    s = data.weight
    e = np.full(Y.shape[1], 0.1)
    num = np.zeros((Y.shape[1], Y.shape[1]))
    for i, j, w in pairs:
        t = sign * (Y[focal[i]] - Y[j]).astype(float) - e
        num += s[focal[i]] * w * np.outer(t, t)
    got_num, got_w = m.pair_sigma(Y, sign, e, s)
    np.testing.assert_allclose(got_num, num, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_w, sum(s[focal[i]] * w for i, j, w in pairs), rtol=1e-12)


@pytest.mark.parametrize("kind", ["radius", "kernel"])
def test_window_fit_equals_pair_fit(kind):
    """The estimator on windows equals the same estimator on the listed pairs."""
    data = _data(n=400, seed=3, cells=False)
    est = (RadiusMatching(0.25) if kind == "radius" else KernelMatching(0.3))
    res = est.fit(data, outcome="c")
    pairs = res.extra["matches"].as_matches()

    class Listed(type(est)):  # the pair-based path of the base class
        def _match_sets(self, *args):
            return C.Matches(focal=pairs.focal, ptr=pairs.ptr, matched=pairs.matched,
                             pair_weight=pairs.pair_weight, n_rows=pairs.n_rows)

    ref = Listed(**est.get_params()).fit(data, outcome="c")
    np.testing.assert_allclose(res.estimate, ref.estimate, rtol=1e-12)
    np.testing.assert_allclose(res.cov, ref.cov, rtol=1e-10)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=1e-11)
    np.testing.assert_allclose(np.asarray(res.influence), np.asarray(ref.influence),
                               rtol=1e-10, atol=1e-15)
