"""Weighted Kaplan–Meier / Aalen–Johansen: plain-loop twins, equivalences, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentor_impact._kernels import survival as K
from mentor_impact.duration import AalenJohansen, KaplanMeier, SurvivalResults, logrank_test
from mentor_impact.exceptions import ConfigurationError, DataValidationError, DataWarning


# --------------------------------------------------------------------------- plain-loop twins
def loop_km(time, event, weight, entry=None):
    """Textbook weighted KM by looping over unique times and rows."""
    grid = sorted(set(time.tolist()))
    s = 1.0
    gw = xl = 0.0
    out = []
    for t in grid:
        y = y2 = d = 0.0
        for i in range(len(time)):
            e0 = -np.inf if entry is None else entry[i]
            if e0 < t <= time[i]:
                y += weight[i]
                y2 += weight[i] ** 2
                if time[i] == t and event[i] > 0:
                    d += weight[i]
        if y > 0:
            s *= 1 - d / y
        if d > 0 and y > d:
            gw += d / (y * (y - d))
            xl += d / ((y * y / y2) * (y - d))
        out.append((t, y, d, s, gw, xl))
    return pd.DataFrame(out, columns=["time", "y", "d", "surv", "gw", "xl"])


def loop_aj(time, event, weight, n_causes):
    """Aalen–Johansen CIFs by looping over times and rows."""
    grid = sorted(set(time.tolist()))
    s = 1.0
    f = np.zeros(n_causes)
    rows = []
    for t in grid:
        y = 0.0
        dc = np.zeros(n_causes)
        for i in range(len(time)):
            if time[i] >= t:
                y += weight[i]
                if time[i] == t and event[i] > 0:
                    dc[event[i] - 1] += weight[i]
        f = f + s * dc / y
        s *= 1 - dc.sum() / y
        rows.append(f.copy())
    return np.array(rows)


def loop_cinc(y_sorted, ic, icc):
    """Direct transcription of cmprsk's Fortran ``cinc`` (sorted data, unit weights)."""
    n = len(y_sorted)
    fk, v1, v2, v3 = 1.0, 0.0, 0.0, 0.0
    xs, fs, vs = [0.0], [0.0], [0.0]
    rs = n
    ll = 0
    while ll < n:
        lu = ll
        while lu + 1 < n and y_sorted[lu + 1] == y_sorted[ll]:
            lu += 1
        nd1 = sum(icc[ll : lu + 1])
        nd2 = sum(ic[ll : lu + 1]) - nd1
        nd = nd1 + nd2
        if nd > 0:
            fkn = fk * (rs - nd) / rs
            if nd1 > 0:
                fs += [fs[-1], fs[-1] + fk * nd1 / rs]
            f = fs[-1]
            if nd2 > 0 and fkn > 0:
                t5 = 1 - (nd2 - 1) / (rs - 1) if nd2 > 1 else 1.0
                t6 = fk * fk * t5 * nd2 / (rs * rs)
                t3, t4 = 1 / fkn, f / fkn
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if nd1 > 0:
                t5 = 1 - (nd1 - 1) / (rs - 1) if nd1 > 1 else 1.0
                t6 = fk * fk * t5 * nd1 / (rs * rs)
                t3 = 1 / fkn if fkn > 0 else 0.0
                t4 = 1 + t3 * f
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                xs += [y_sorted[lu], y_sorted[lu]]
                vs += [vs[-1], v1 + f * f * v3 - 2 * f * v2]
            fk = fkn
        rs = n - (lu + 1)
        ll = lu + 1
    return np.array(xs), np.array(fs), np.array(vs)


def make_data(n=60, seed=0, ties=True, n_causes=1):
    rng = np.random.default_rng(seed)
    t = rng.exponential(10, n)
    t = np.ceil(t) if ties else t + 0.01
    ev = rng.integers(0, n_causes + 1, n)
    w = rng.uniform(0.2, 3.0, n)
    g = rng.integers(0, 2, n)
    return pd.DataFrame({"t": t, "e": ev, "w": w, "g": g, "id": rng.integers(0, n // 3, n)})


# --------------------------------------------------------------------------- kernel twins
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_km_kernel_equals_loop(seed) -> None:
    df = make_data(seed=seed)
    res = KaplanMeier(variance="xie-liu").fit(df, duration="t", event="e", weights="w")
    ref = loop_km(df.t.to_numpy(), df.e.to_numpy(), df.w.to_numpy())
    c = res.curves["all"]
    np.testing.assert_allclose(c.time, ref.time)
    np.testing.assert_allclose(c.n_risk, ref.y, rtol=1e-12)
    np.testing.assert_allclose(c.surv, ref.surv, rtol=1e-12)
    fin = ref.surv > 0
    np.testing.assert_allclose(c.std_err[fin], (ref.surv * np.sqrt(ref.xl))[fin], rtol=1e-10)
    g = KaplanMeier(variance="greenwood").fit(df, duration="t", event="e", weights="w")
    np.testing.assert_allclose(
        g.curves["all"].std_err[fin], (ref.surv * np.sqrt(ref.gw))[fin], rtol=1e-10
    )


def test_delayed_entry_equals_loop() -> None:
    df = make_data(seed=4)
    rng = np.random.default_rng(1)
    entry = np.floor(df.t.to_numpy() * rng.uniform(0, 0.9, len(df)))
    res = KaplanMeier(variance="greenwood").fit(
        df.assign(en=entry), duration="t", event="e", weights="w", entry="en"
    )
    ref = loop_km(df.t.to_numpy(), df.e.to_numpy(), df.w.to_numpy(), entry=entry)
    np.testing.assert_allclose(res.curves["all"].n_risk, ref.y, rtol=1e-12)
    np.testing.assert_allclose(res.curves["all"].surv, ref.surv, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_aj_kernel_equals_loop(seed) -> None:
    df = make_data(seed=seed, n_causes=3)
    res = AalenJohansen().fit(df, duration="t", event="e", weights="w")
    ref = loop_aj(df.t.to_numpy(), df.e.to_numpy(), df.w.to_numpy(), 3)
    np.testing.assert_allclose(res.curves["all"].cif, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 5, 6])
def test_cmprsk_variance_equals_fortran_loop(seed) -> None:
    df = make_data(n=80, seed=seed, n_causes=2).sort_values("t", kind="stable")
    res = AalenJohansen(variance="cmprsk").fit(df, duration="t", event="e")
    for cause in (1, 2):
        xs, fs, vs = loop_cinc(
            df.t.to_numpy(),
            (df.e > 0).astype(int).to_numpy(),
            (df.e == cause).astype(int).to_numpy(),
        )
        tp = np.unique(xs[1:])
        got = res.at(tp, arm="all")
        got = got[got.cause == str(cause)]
        # timepoints(): value of the step function at each corner time
        idx = np.searchsorted(xs, tp, side="right") - 1
        np.testing.assert_allclose(got["cif"].to_numpy(), fs[idx], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got["var"].to_numpy(), vs[idx], rtol=1e-10, atol=1e-15)


def _weighted_km_at(df, k_time):
    c = KaplanMeier(variance="greenwood").fit(df, duration="t", event="e", weights="w")
    return float(c.at([k_time])["surv"].iloc[0])


def _weighted_cif_at(df, k_time, cause):
    c = AalenJohansen(variance="cmprsk").fit(
        df, duration="t", event="e", weights="w", causes=["a", "b"]
    )
    a = c.at([k_time])
    return float(a[a.cause == cause]["cif"].iloc[0])


@pytest.mark.parametrize("target", ["km", "aj"])
def test_influence_function_equals_numerical_derivative(target) -> None:
    """IJ influence = w_i * dtheta/dw_i, checked by finite differences row by row."""
    df = make_data(n=25, seed=7, n_causes=2 if target == "aj" else 1)
    t_eval = float(np.median(df.t))
    res = (
        KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="w")
        if target == "km"
        else AalenJohansen(variance="ij").fit(
            df, duration="t", event="e", weights="w", causes=["a", "b"]
        )
    )
    c = res.curves["all"]
    r = res._rows["all"]
    k = int(np.searchsorted(c.time, t_eval, side="right") - 1)
    if target == "km":
        infl = K.aj_influence(
            k, r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, None, None, 0
        )
    else:
        dc = np.bincount(
            r.stop[r.event == 1], weights=r.weight[r.event == 1], minlength=c.time.size
        )
        infl = K.aj_influence(
            k, r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, c.cif[:, 0], dc, 1
        )
    h = 1e-6
    for i in range(len(df)):  # plain loop twin: numerical derivative per row
        up, dn = df.copy(), df.copy()
        up.loc[up.index[i], "w"] += h
        dn.loc[dn.index[i], "w"] -= h
        if target == "km":
            der = (_weighted_km_at(up, t_eval) - _weighted_km_at(dn, t_eval)) / (2 * h)
        else:
            der = (_weighted_cif_at(up, t_eval, "a") - _weighted_cif_at(dn, t_eval, "a")) / (2 * h)
        assert infl[r.positions == i][0] == pytest.approx(df.w.iloc[i] * der, abs=1e-6)


def test_logrank_kernel_equals_loop() -> None:
    df = make_data(seed=8)
    res = logrank_test(df, duration="t", event="e", group="g", weights="w")
    t, e, w, g = (df[c].to_numpy() for c in ("t", "e", "w", "g"))
    u = v = 0.0
    for tt in np.unique(t):
        at = t >= tt
        y = w[at].sum()
        y1 = w[at & (g == 0)].sum()
        dd = w[(t == tt) & (e > 0)].sum()
        d1 = w[(t == tt) & (e > 0) & (g == 0)].sum()
        u += d1 - dd * y1 / y
        if y > 1:
            v += dd * (y - dd) / (y * y * (y - 1)) * y1 * (y - y1)
    assert res["stat"] == pytest.approx(u * u / v, rel=1e-10)


def test_gray_kernel_equals_loop_translation() -> None:
    """Gray's test from the vectorised kernel vs a per-time loop of cmprsk's ``crst``."""
    df = make_data(n=70, seed=11, n_causes=2)
    res = AalenJohansen().fit(df, duration="t", event="e", group="g")
    stat = _loop_crst(df.t.to_numpy(), df.e.to_numpy(), df.g.to_numpy(), cause=1)
    assert res.tests["gray[1]"]["stat"] == pytest.approx(stat, rel=1e-10)


def _loop_crst(time, event, group, cause, rho=0.0):
    order = np.argsort(time, kind="stable")
    y, ev, ig = time[order], event[order], group[order]
    m = np.where(ev == 0, 0, np.where(ev == cause, 1, 2))
    ng = 2
    rs = np.array([np.sum(ig == j) for j in range(ng)], dtype=float)
    f1m = np.zeros(ng)
    f1 = np.zeros(ng)
    skmm = np.ones(ng)
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng - 1, ng))
    c = np.zeros((ng, ng))
    s = np.zeros(ng - 1)
    v = np.zeros((ng - 1, ng - 1))
    fm = f = 0.0
    n = len(y)
    ll = 0
    while ll < n:
        lu = ll
        while lu + 1 < n and y[lu + 1] == y[ll]:
            lu += 1
        d = np.zeros((3, ng))
        for i in range(ll, lu + 1):
            d[m[i], ig[i]] += 1
        nd1, nd2 = d[1].sum(), d[2].sum()
        if nd1 > 0 or nd2 > 0:
            tr = tq = 0.0
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                td = d[1, i] + d[2, i]
                skm[i] = skmm[i] * (rs[i] - td) / rs[i]
                f1[i] = f1m[i] + skmm[i] * d[1, i] / rs[i]
                tr += rs[i] / skmm[i]
                tq += rs[i] * (1 - f1m[i]) / skmm[i]
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            a = np.zeros((ng, ng))
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                t1 = rs[i] / skmm[i]
                a[i, i] = fb * t1 * (1 - t1 / tr)
                c[i, i] += a[i, i] * nd1 / (tr * (1 - fm))
                for j in range(i + 1, ng):
                    if rs[j] <= 0:
                        continue
                    a[i, j] = -fb * t1 * rs[j] / (skmm[j] * tr)
                    c[i, j] += a[i, j] * nd1 / (tr * (1 - fm))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng - 1):
                if rs[i] > 0:
                    s[i] += fb * (d[1, i] - nd1 * rs[i] * (1 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for k in range(ng):
                    if rs[k] <= 0:
                        continue
                    t4 = 1 - (1 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[k] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * rs[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng - 1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * (a[j, k] - t4 * c[j, k]) * t3
            if nd2 > 0:
                for k in range(ng):
                    if skm[k] <= 0 or d[2, k] <= 0:
                        continue
                    t4 = (1 - f) / skm[k]
                    t5 = 1 - (d[2, k] - 1) / (rs[k] - 1) if d[2, k] > 1 else 1.0
                    t3 = t5 * skmm[k] ** 2 * d[2, k] / rs[k] ** 2
                    v3[k] += t4 * t4 * t3
                    for i in range(ng - 1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * t4 * c[j, k] * t3
        for i in range(ll, lu + 1):
            rs[ig[i]] -= 1
        fm = f
        f1m = f1.copy()
        skmm = skm.copy()
        ll = lu + 1
    for i in range(ng - 1):
        for j in range(i + 1):
            for k in range(ng):
                v[i, j] += c[i, k] * c[j, k] * v3[k] + c[i, k] * v2[j, k] + c[j, k] * v2[i, k]
    return float(s @ np.linalg.solve(v, s))


# --------------------------------------------------------------------------- equivalences
def test_frequency_weights_equal_duplicated_rows() -> None:
    df = make_data(n=50, seed=12, n_causes=2)
    df["fw"] = np.random.default_rng(3).integers(1, 4, len(df))
    df["e1"] = (df.e > 0).astype(int)
    dup = df.loc[df.index.repeat(df.fw)].reset_index(drop=True)
    a = KaplanMeier(variance="greenwood").fit(df, duration="t", event="e1", weights="fw", group="g")
    b = KaplanMeier().fit(dup, duration="t", event="e1", group="g")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-12)
    assert a.tests["logrank"]["stat"] == pytest.approx(b.tests["logrank"]["stat"], rel=1e-10)
    pd.testing.assert_frame_equal(a.rmst(20), b.rmst(20), rtol=1e-12)
    c = AalenJohansen(variance="cmprsk").fit(df, duration="t", event="e", weights="fw", group="g")
    d = AalenJohansen().fit(dup, duration="t", event="e", group="g")
    pd.testing.assert_frame_equal(c.to_frame(), d.to_frame(), rtol=1e-12)
    for k in c.tests:
        assert c.tests[k]["stat"] == pytest.approx(d.tests[k]["stat"], rel=1e-10)


def test_frequency_weights_equal_duplicated_rows_clustered() -> None:
    """With the IJ variance, duplicates of a row belong to the row's own cluster."""
    df = make_data(n=40, seed=13)
    df["fw"] = np.random.default_rng(4).integers(1, 4, len(df))
    df["row"] = np.arange(len(df))
    dup = df.loc[df.index.repeat(df.fw)].reset_index(drop=True)
    a = KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="fw", cluster="row")
    b = KaplanMeier(variance="ij").fit(dup, duration="t", event="e", cluster="row")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-10)


def test_row_order_changes_nothing() -> None:
    df = make_data(n=70, seed=14, n_causes=2)
    df["e1"] = (df.e > 0).astype(int)
    shuf = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = KaplanMeier().fit(df, duration="t", event="e1", weights="w", group="g", cluster="id")
    b = KaplanMeier().fit(shuf, duration="t", event="e1", weights="w", group="g", cluster="id")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-10)
    for est in (AalenJohansen(), AalenJohansen(variance="cmprsk")):
        a = est.fit(df, duration="t", event="e", weights="w", group="g", cluster="id")
        b = est.fit(shuf, duration="t", event="e", weights="w", group="g", cluster="id")
        pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-10)


def test_ij_without_cluster_equals_rowwise_cluster() -> None:
    df = make_data(seed=15)
    a = KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="w")
    b = KaplanMeier().fit(
        df.assign(r=np.arange(len(df))), duration="t", event="e", weights="w", cluster="r"
    )
    np.testing.assert_allclose(a.curves["all"].std_err, b.curves["all"].std_err, rtol=1e-12)


def test_unit_weights_ij_close_to_greenwood() -> None:
    df = make_data(n=400, seed=16)
    a = KaplanMeier(variance="ij").fit(df, duration="t", event="e")
    b = KaplanMeier(variance="greenwood").fit(df, duration="t", event="e")
    m = b.curves["all"].surv > 0.2
    np.testing.assert_allclose(a.curves["all"].std_err[m], b.curves["all"].std_err[m], rtol=0.05)


def test_rmst_difference_and_outputs(tmp_path) -> None:
    df = make_data(n=120, seed=17)
    res = KaplanMeier().fit(df, duration="t", event="e", group="g")
    d = res.rmst_difference(15)
    tab = res.rmst(15)
    assert d["estimate"] == pytest.approx(tab.loc["g=1", "rmst"] - tab.loc["g=0", "rmst"])
    assert d["std_err"] == pytest.approx(np.hypot(tab.std_err.iloc[0], tab.std_err.iloc[1]))
    assert isinstance(res, SurvivalResults)
    txt = res.to_json(tmp_path / "km.json")
    assert json.loads(txt)["estimator"] == "kaplan-meier"
    assert "kaplan-meier" in res.summary().as_text()
    ax = res.plot()
    assert ax.get_ylabel() == "survival"
    # integer weekly times: RMST(tau) = sum_{k=0}^{tau-1} S(k)
    s = res.at(np.arange(15), arm="g=0")["surv"].to_numpy()
    assert tab.loc["g=0", "rmst"] == pytest.approx(s.sum())


def test_aj_cifs_plus_survival_sum_to_one() -> None:
    df = make_data(n=90, seed=18, n_causes=3)
    res = AalenJohansen().fit(
        df,
        duration="t",
        event="e",
        weights="w",
        causes={1: "employment", 2: "education", 3: "other"},
    )
    c = res.curves["all"]
    np.testing.assert_allclose(c.cif.sum(axis=1) + c.surv, 1.0, atol=1e-12)
    assert res.causes == ("employment", "education", "other")
    assert res.plot(cause="education").get_ylabel() == "cumulative incidence"


# --------------------------------------------------------------------------- bad input
def test_negative_duration_raises() -> None:
    df = pd.DataFrame({"t": [1.0, -2.0, 3.0, -1.0], "e": [1, 0, 1, 1]})
    with pytest.raises(
        DataValidationError, match=r"duration: .*2 negative durations \(rows 1, 3\)"
    ):
        KaplanMeier().fit(df, duration="t", event="e")


def test_zero_duration_warns() -> None:
    df = pd.DataFrame({"t": [0.0, 2.0, 3.0], "e": [1, 0, 1]})
    with pytest.warns(DataWarning, match=r"1 zero durations \(row 0\)"):
        KaplanMeier().fit(df, duration="t", event="e")


def test_nan_raises_with_rows() -> None:
    df = pd.DataFrame({"t": [1.0, np.nan, 3.0], "e": [1, 0, 1]})
    with pytest.raises(
        DataValidationError, match=r"duration: .*1 missing or infinite values \(row 1\)"
    ):
        KaplanMeier().fit(df, duration="t", event="e")
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1], "w": [1.0, np.nan, 2]})
    with pytest.raises(DataValidationError, match=r"weights: .*row 1"):
        KaplanMeier().fit(df, duration="t", event="e", weights="w")


def test_event_codes_outside_declared_set() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [1, 2, 0, 3]})
    with pytest.raises(
        DataValidationError, match=r"event: expected 0 \(censored\) or 1.*2 rows.*rows 1, 3"
    ):
        KaplanMeier().fit(df, duration="t", event="e")
    with pytest.raises(
        DataValidationError, match=r"event: expected codes in \{0, \.\.\., 2\}.*1 rows.*row 3"
    ):
        AalenJohansen().fit(df, duration="t", event="e", causes=["employment", "education"])


def test_all_censored_warns() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 0, 0]})
    with pytest.warns(DataWarning, match=r"no events \(3 rows, all censored\)"):
        res = KaplanMeier().fit(df, duration="t", event="e")
    assert np.all(res.curves["all"].surv == 1.0)


def test_negative_weights_and_entry_after_exit() -> None:
    df = pd.DataFrame(
        {"t": [1.0, 2.0, 3.0], "e": [1, 0, 1], "w": [1.0, -1.0, 1.0], "en": [0.0, 2.0, 0.0]}
    )
    with pytest.raises(DataValidationError, match=r"weights: .*1 negative weights \(row 1\)"):
        KaplanMeier().fit(df, duration="t", event="e", weights="w")
    with pytest.raises(DataValidationError, match=r"entry: .*1 rows with entry >= exit \(row 1\)"):
        KaplanMeier().fit(df, duration="t", event="e", entry="en")


def test_bad_options_and_columns() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 0]})
    with pytest.raises(ConfigurationError, match="'variance' parameter of KaplanMeier"):
        KaplanMeier(variance="bogus").fit(df, duration="t", event="e")
    with pytest.raises(ConfigurationError, match="duration: expected a column"):
        KaplanMeier().fit(df, duration="time", event="e")
    with pytest.raises(ConfigurationError, match="conf_level"):
        KaplanMeier(conf_level=1.5).fit(df, duration="t", event="e")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KaplanMeier().fit(df, duration="t", event="e")


def test_messages_never_contain_values() -> None:
    df = pd.DataFrame({"t": [123456.0, -987654.0], "e": [1, 0]})
    with pytest.raises(DataValidationError) as info:
        KaplanMeier().fit(df, duration="t", event="e")
    assert "987654" not in str(info.value)


# --------------------------------------------------------------------------- small kernels
@pytest.mark.parametrize("kind", ["weekly", "continuous", "wide"])
def test_grid_codes_equals_unique(kind) -> None:
    rng = np.random.default_rng(21)
    t = {
        "weekly": np.ceil(rng.exponential(20, 500)),
        "continuous": rng.exponential(20, 500),
        "wide": np.ceil(rng.exponential(1e6, 50)),
    }[kind]
    grid, code = K.grid_codes(t)
    g2, c2 = np.unique(t, return_inverse=True)
    np.testing.assert_array_equal(grid, g2)
    np.testing.assert_array_equal(code, c2)
    for i in range(t.size):  # plain loop
        assert grid[code[i]] == t[i]


def test_risk_table_grouped_equals_loop() -> None:
    df = make_data(n=80, seed=22, n_causes=2)
    grid, code = K.grid_codes(df.t.to_numpy())
    entry = np.floor(df.t.to_numpy() * 0.5)
    start = np.searchsorted(grid, entry, side="right")
    n_ev, y, y2, present = K.risk_table_grouped(
        code, df.e.to_numpy(), df.w.to_numpy(), df.g.to_numpy(), 2, grid.size, 2, start, True
    )
    for g in range(2):
        for j, tj in enumerate(grid):
            at = (df.g == g) & (entry < tj) & (df.t >= tj)
            assert y[g, j] == pytest.approx(df.w[at].sum(), abs=1e-12)
            assert y2[g, j] == pytest.approx((df.w[at] ** 2).sum(), abs=1e-12)
            for k in range(3):
                m = (df.g == g) & (df.t == tj) & (df.e == k)
                assert n_ev[g, j, k] == pytest.approx(df.w[m].sum(), abs=1e-12)
            assert present[g, j] == bool(((df.g == g) & (df.t == tj)).any())


def test_influence_matrix_equals_columns() -> None:
    df = make_data(n=50, seed=23, n_causes=2)
    res = AalenJohansen(variance="ij").fit(df, duration="t", event="e", weights="w")
    c, r = res.curves["all"], res._rows["all"]
    dc = np.bincount(r.stop[r.event == 2], weights=r.weight[r.event == 2], minlength=c.time.size)
    ks = np.arange(c.time.size)
    for cif, d_c in ((None, None), (c.cif[:, 1], dc)):
        mat = K.aj_influence_matrix(
            ks, r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, cif, d_c, 2
        )
        for k in ks:
            col = K.aj_influence(
                int(k),
                r.stop,
                r.start,
                r.event,
                r.weight,
                c.n_risk,
                c.n_event,
                c.surv,
                cif,
                d_c,
                2,
            )
            np.testing.assert_allclose(mat[:, k], col, rtol=1e-12, atol=1e-15)


def test_aj_ij_cells_equal_rowwise_clusters() -> None:
    df = make_data(n=120, seed=24, n_causes=2)
    a = AalenJohansen(variance="ij").fit(df, duration="t", event="e", weights="w")
    b = AalenJohansen(variance="ij").fit(
        df.assign(r=np.arange(len(df))), duration="t", event="e", weights="w", cluster="r"
    )
    np.testing.assert_allclose(a.curves["all"].cif_std_err, b.curves["all"].cif_std_err, rtol=1e-10)


def test_evaluation_data_aalen_johansen_and_weights_override() -> None:
    from mentor_impact.design.evaluation_data import EvaluationData

    df = make_data(n=150, seed=25, n_causes=2)
    df["y"] = 0.0
    data = EvaluationData.from_frame(
        df,
        treatment="g",
        outcomes="y",
        covariates=[],
        weights="w",
        cluster="id",
        durations={"exit": ("t", "e", ("employment", "education"))},
    )
    a = AalenJohansen().fit(data, duration="exit")
    b = AalenJohansen(variance="ij").fit(
        df,
        duration="t",
        event="e",
        weights="w",
        group="g",
        cluster="id",
        causes=["employment", "education"],
    )
    assert a.causes == ("employment", "education")
    assert a.arms == ("treatment=0", "treatment=1")
    for x, y in zip(a.arms, b.arms, strict=True):
        np.testing.assert_allclose(a.curves[x].cif, b.curves[y].cif, rtol=1e-12)
        np.testing.assert_allclose(a.curves[x].cif_std_err, b.curves[y].cif_std_err, rtol=1e-10)
    # explicit weights replace data.weight
    c = KaplanMeier().fit(data, duration="exit", weights=np.ones(len(df)))
    d = KaplanMeier(variance="ij").fit(
        df, duration="t", event=(df.e > 0).astype(int), group="g", cluster="id"
    )
    np.testing.assert_allclose(c.curves["treatment=1"].surv, d.curves["g=1"].surv, rtol=1e-12)
    with pytest.raises(ConfigurationError, match=r"duration: expected a key of data\.durations"):
        KaplanMeier().fit(data, duration="nope")


def test_docstring_example() -> None:
    df = pd.DataFrame({"t": [1, 2, 2, 3, 5], "e": [1, 1, 0, 1, 0]})
    res = KaplanMeier().fit(df, duration="t", event="e")
    assert res.at([2])["surv"].iloc[0] == pytest.approx(0.6)


@pytest.mark.parametrize("tau", [0.5, 7.0, 15.5, 1000.0])
@pytest.mark.parametrize("entry", [False, True])
def test_rmst_influence_equals_loop_over_grid(tau, entry) -> None:
    """O(n) RMST influence = sum over grid steps of width x influence of S (plain loop)."""
    df = make_data(n=60, seed=26)
    kw = {}
    if entry:
        df["en"] = np.floor(df.t * 0.4)
        kw["entry"] = "en"
    res = KaplanMeier(variance="ij").fit(df, duration="t", event="e", weights="w", **kw)
    c, r = res.curves["all"], res._rows["all"]
    got = res._rmst_influence("all", tau)
    want = np.zeros(len(df))
    keep = np.flatnonzero(c.time <= tau)
    widths = np.diff(np.concatenate((c.time[keep], [tau])))
    for j, wdt in zip(keep, widths, strict=True):
        want += wdt * K.aj_influence(
            int(j), r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, None, None, 0
        )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("entry", [False, True])
def test_clustered_km_variance_equals_loop_over_times(entry) -> None:
    """Piecewise cluster-sum variance = per-time cluster sums of the influence (plain loop)."""
    df = make_data(n=90, seed=27)
    kw = {}
    if entry:
        df["en"] = np.floor(df.t * 0.5)
        kw["entry"] = "en"
    res = KaplanMeier(variance="ij").fit(
        df, duration="t", event="e", weights="w", cluster="id", **kw
    )
    c, r = res.curves["all"], res._rows["all"]
    want = np.zeros(c.time.size)
    for k in range(c.time.size):
        infl = K.aj_influence(
            k, r.stop, r.start, r.event, r.weight, c.n_risk, c.n_event, c.surv, None, None, 0
        )
        sums = {}
        for i, g in enumerate(r.cluster):  # plain loop over rows
            sums[g] = sums.get(g, 0.0) + infl[i]
        want[k] = sum(v * v for v in sums.values())
    np.testing.assert_allclose(c.std_err**2, want, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("entry", [False, True])
def test_clustered_aj_variance_equals_loop_over_times(entry) -> None:
    df = make_data(n=90, seed=28, n_causes=2)
    kw = {}
    if entry:
        df["en"] = np.floor(df.t * 0.5)
        kw["entry"] = "en"
    res = AalenJohansen(variance="ij").fit(
        df, duration="t", event="e", weights="w", cluster="id", **kw
    )
    c, r = res.curves["all"], res._rows["all"]
    for cause in (1, 2):
        m = r.event == cause
        d_c = np.bincount(r.stop[m], weights=r.weight[m], minlength=c.time.size)
        want = np.zeros(c.time.size)
        for k in range(c.time.size):
            infl = K.aj_influence(
                k,
                r.stop,
                r.start,
                r.event,
                r.weight,
                c.n_risk,
                c.n_event,
                c.surv,
                c.cif[:, cause - 1],
                d_c,
                cause,
            )
            sums = {}
            for i, g in enumerate(r.cluster):  # plain loop over rows
                sums[g] = sums.get(g, 0.0) + infl[i]
            want[k] = sum(v * v for v in sums.values())
        np.testing.assert_allclose(c.cif_std_err[:, cause - 1] ** 2, want, rtol=1e-8, atol=1e-14)


def test_more_bad_input() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, np.nan, 1], "g": ["a", None, "b"]})
    with pytest.raises(
        DataValidationError, match=r"event: .*1 missing or infinite values \(row 1\)"
    ):
        KaplanMeier().fit(df, duration="t", event="e")
    with pytest.raises(DataValidationError, match=r"group: expected no missing labels; .*row 1"):
        KaplanMeier().fit(df.assign(e=1), duration="t", event="e", group="g")
    with pytest.raises(DataValidationError, match=r"data: expected at least one row"):
        KaplanMeier().fit(df.iloc[:0], duration="t", event="e")
    with pytest.raises(DataValidationError, match=r"event: expected integer codes; .*row 0"):
        AalenJohansen().fit(df.assign(e=[0.5, 1, 1]), duration="t", event="e")
    with pytest.warns(DataWarning, match=r"cause 'b' \(code 2\) has no events in 3 rows"):
        AalenJohansen().fit(df.assign(e=[1, 0, 1]), duration="t", event="e", causes=["a", "b"])
    # boolean events are accepted
    res = KaplanMeier().fit(df.assign(e=[True, False, True]), duration="t", event="e")
    assert res.curves["all"].n_event.sum() == 2


@pytest.mark.parametrize("conf_type", ["plain", "log-log"])
def test_other_conf_types(conf_type) -> None:
    from scipy import stats

    df = make_data(n=80, seed=29)
    res = KaplanMeier(conf_type=conf_type, conf_level=0.9).fit(df, duration="t", event="e")
    tab = res.to_frame()
    z = stats.norm.ppf(0.95)
    s, se = tab.surv.to_numpy(), tab.std_err.to_numpy()
    for i in range(len(s)):  # plain loop over rows of the formula
        if conf_type == "plain":
            lo, hi = max(s[i] - z * se[i], 0.0), min(s[i] + z * se[i], 1.0)
        elif 0 < s[i] < 1:
            ll = np.log(-np.log(s[i]))
            k = z * (se[i] / s[i]) / np.log(s[i])
            lo, hi = np.exp(-np.exp(ll - k)), np.exp(-np.exp(ll + k))
        else:
            lo = hi = np.nan
        np.testing.assert_allclose([tab.lower.iloc[i], tab.upper.iloc[i]], [lo, hi], rtol=1e-12)
    assert np.all(tab.lower.dropna() <= tab.surv[tab.lower.notna()] + 1e-15)
    with pytest.raises(ConfigurationError, match="'conf_type' parameter of AalenJohansen"):
        AalenJohansen(conf_type="log-log").fit(df, duration="t", event="e")


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 12),  # weekly duration
            st.integers(0, 2),  # 0 = censored, 1..2 causes
            st.integers(1, 3),  # frequency weight
            st.integers(0, 1),  # arm
        ),
        min_size=2,
        max_size=30,
    )
)
def test_properties_random_data(rows) -> None:
    df = pd.DataFrame(rows, columns=["t", "e", "fw", "g"]).astype(float)
    df["e"] = df.e.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        aj = AalenJohansen(variance="cmprsk").fit(
            df, duration="t", event="e", weights="fw", causes=["a", "b"]
        )
        dup = df.loc[df.index.repeat(df.fw.astype(int))].reset_index(drop=True)
        aj2 = AalenJohansen().fit(dup, duration="t", event="e", causes=["a", "b"])
    c = aj.curves["all"]
    assert np.all(np.diff(c.surv) <= 1e-15)  # survival is non-increasing
    assert np.all(np.diff(c.cif, axis=0) >= -1e-15)  # CIFs are non-decreasing
    np.testing.assert_allclose(c.cif.sum(axis=1) + c.surv, 1.0, atol=1e-12)
    pd.testing.assert_frame_equal(aj.to_frame(), aj2.to_frame(), rtol=1e-10)
