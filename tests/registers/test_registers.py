from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
from _registers_reference import (
    iso_label_loop,
    merge_episodes_loop,
    prefix_sums_loop,
    washout_loop,
    window_count_loop,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from mentor_impact.exceptions import ConfigurationError, DataValidationError, DataWarning
from mentor_impact.registers import (
    StateCatalog,
    TreatmentSpells,
    WeeklyRegister,
    iso_range,
    iso_to_ordinal,
    iso_weeks_in_year,
    ordinal_to_iso,
    parse_week_column,
)

CAT = StateCatalog.default()
VALID_CODES = np.array([0, 111, 211, 231, 511, 651, 711, 781, 998, 1001, 999], dtype=np.uint16)


def random_register(n=30, w=60, seed=0, first=200850):
    rng = np.random.default_rng(seed)
    codes = VALID_CODES[rng.integers(0, VALID_CODES.size, size=(n, w))]
    persons = rng.permutation(10 * n)[:n] + 1
    weeks = ordinal_to_iso(iso_to_ordinal(first) + np.arange(w))
    return WeeklyRegister(codes, persons, weeks)


# ---------------------------------------------------------------- ISO weeks
def test_iso_roundtrip_matches_datetime():
    ords = np.arange(0, 3000, 7)
    labels = ordinal_to_iso(ords)
    assert labels.tolist() == [iso_label_loop(o) for o in ords]
    assert np.array_equal(iso_to_ordinal(labels), ords)


def test_week53_handled():
    assert iso_weeks_in_year([2008, 2009, 2015, 2020, 2021]).tolist() == [52, 53, 53, 53, 52]
    assert iso_range(200952, 201001).tolist() == [200952, 200953, 201001]
    d = datetime.date(2010, 1, 3).isocalendar()
    assert (d[0], d[1]) == (2009, 53)
    with pytest.raises(DataValidationError, match=r"labels: expected valid ISO week.*1 invalid"):
        iso_to_ordinal([201053])


def test_parse_week_column():
    assert parse_week_column("y_1201") == 201201
    assert parse_week_column("y_9953") == 199953
    assert parse_week_column(201301) == 201301
    assert parse_week_column("y_201301") == 201301
    assert parse_week_column("person") is None


# ---------------------------------------------------------------- catalogue
def test_catalog_default_and_unions():
    assert CAT.STATES[0] == "employed" and CAT.STATES[-1] == "unknown"
    assert CAT.members("employment_or_education") == (0, 1)
    assert CAT.members("self_support") == (0, 1, 2)
    assert CAT.members("on_benefit") == (3, 4, 5, 6, 7)
    assert CAT.state_id("activation") == 4
    assert set(CAT.codes_for("education")) >= {651, 652}
    with pytest.raises(ConfigurationError, match="name: expected a state or union"):
        CAT.members("nonsense")


def test_catalog_dated_mapping():
    # 215 (education benefit) only exists from 2014-W01
    codes = np.array([[215, 215]], dtype=np.uint16)
    states = CAT.map_codes(codes, [201401, 201402])
    assert states.tolist() == [[3, 3]]
    with pytest.raises(DataValidationError, match=r"codes: expected codes present.*1 person-weeks"):
        CAT.map_codes(codes, [201352, 201401])


def test_catalog_dated_versions_switch_state():
    table = pd.DataFrame(
        {
            "code": [5, 5],
            "state": ["passive_benefit", "activation"],
            "valid_from": [None, 201301],
            "valid_to": [201252, None],
        }
    )
    cat = StateCatalog(table, version="t1")
    states = cat.map_codes(np.array([[5, 5, 5]], dtype=np.uint16), [201251, 201252, 201301])
    assert states.tolist() == [[3, 3, 4]]


def test_catalog_bad_config():
    with pytest.raises(ConfigurationError, match=r"table.state: expected one of.*1 rows"):
        StateCatalog({1: "employed", 2: "holiday"})
    table = pd.DataFrame(
        {"code": [5, 5], "state": ["passive_benefit", "activation"],
         "valid_from": [None, 201250], "valid_to": [201252, None]}
    )
    with pytest.raises(ConfigurationError, match="overlapping periods with different states"):
        StateCatalog(table)
    with pytest.raises(ConfigurationError, match="reversed periods"):
        StateCatalog(pd.DataFrame({"code": [1], "state": ["employed"], "valid_from": [201301],
                                   "valid_to": [201201]}))


def test_unknown_codes_raise_or_warn():
    codes = np.array([[211, 4242], [211, 211], [4243, 0]], dtype=np.uint16)
    with pytest.raises(DataValidationError, match=r"2 person-weeks with unknown codes in 2 rows "
                       r"\(rows 0, 2; columns 0, 1\)") as exc:
        WeeklyRegister(codes, [11, 12, 13], [201301, 201302])
    assert "4242" not in str(exc.value) and "11" not in str(exc.value).split("rows")[0]
    with pytest.warns(DataWarning, match="2 person-weeks in 2 rows"):
        reg = WeeklyRegister(codes, [11, 12, 13], [201301, 201302], on_unknown="unknown")
    assert reg.states()[0, 1] == CAT.state_id("unknown")


# ---------------------------------------------------------------- kernels vs loops
@pytest.mark.parametrize("name", ["employed", "on_benefit", "self_support", "cash_benefit"])
def test_prefix_sums_match_loop(name):
    reg = random_register(seed=3)
    members = set(CAT.members(name))
    got = reg.prefix_sums(name)
    assert got.dtype == np.int16
    assert np.array_equal(got, prefix_sums_loop(reg.states(), members))
    assert reg.prefix_sums(name) is got  # cached


def test_prefix_sums_chunked(monkeypatch):
    import mentor_impact.registers.register as mod

    monkeypatch.setattr(mod, "_CHUNK_CELLS", 100)  # forces many row chunks
    reg = random_register(n=23, w=17, seed=4)
    assert np.array_equal(
        reg.prefix_sums("employed", dtype=np.int32), prefix_sums_loop(reg.states(), {0})
    )


def test_window_count_matches_loop():
    reg = random_register(seed=5)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, reg.n_persons, 200)
    start = rng.integers(-10, reg.n_weeks + 5, 200)
    stop = start + rng.integers(-3, 40, 200)
    members = set(CAT.members("on_benefit"))
    got = reg.window_count("on_benefit", rows, start, stop)
    assert got.dtype == np.int32
    assert np.array_equal(got, window_count_loop(reg.states(), members, rows, start, stop))


def test_indicator_and_states():
    reg = random_register(seed=6)
    ind = reg.indicator("employment_or_education")
    assert np.array_equal(ind, np.isin(reg.states(), [0, 1]))
    assert reg.states().dtype == np.int8


# ---------------------------------------------------------------- episodes / washout
spell_lists = st.lists(
    st.tuples(st.integers(1, 4), st.integers(2000, 2100), st.integers(0, 12)),
    min_size=1, max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(spell_lists, st.integers(0, 6))
def test_episode_merging_matches_loop(raw, gap):
    person = np.array([p for p, _, _ in raw])
    s = np.array([a for _, a, _ in raw])
    e = s + np.array([d for _, _, d in raw])
    sp = TreatmentSpells(person, ordinal_to_iso(s), ordinal_to_iso(e), on_overlap="merge")
    ep = sp.episodes(gap=gap)
    want = merge_episodes_loop(list(zip(person, s, e, strict=True)), gap)
    got = list(zip(ep.person.tolist(), ep.start_ordinal.tolist(), ep.end_ordinal.tolist(),
                   strict=True))
    assert got == [(int(p), int(a), int(b)) for p, a, b in want]


@settings(max_examples=60, deadline=None)
@given(spell_lists, st.integers(0, 30))
def test_washout_matches_loop(raw, weeks):
    person = np.array([p for p, _, _ in raw])
    s = np.array([a for _, a, _ in raw])
    e = s + np.array([d for _, _, d in raw])
    sp = TreatmentSpells(person, ordinal_to_iso(s), ordinal_to_iso(e), on_overlap="merge")
    triples = list(zip(sp.person.tolist(), sp.start_ordinal.tolist(), sp.end_ordinal.tolist(),
                       strict=True))
    assert sp.washout_ok(weeks).tolist() == washout_loop(triples, weeks)


def test_episodes_example_and_hours():
    sp = TreatmentSpells([1, 1, 2, 1], start=[201301, 201306, 201301, 201320],
                         end=[201303, 201310, 201302, 201325], hours=[2.0, 4.0, 3.0, 1.0])
    ep = sp.episodes(gap=4)
    # gap 201303 -> 201306 is 2 weeks (< 4): merged; 201310 -> 201320 is 9 weeks: separate
    assert ep.to_frame()[["start", "end"]].values.tolist() == [
        [201301, 201310], [201320, 201325], [201301, 201302]]
    assert np.allclose(ep.hours, [(2 * 3 + 4 * 5) / 10, 1.0, 3.0])
    assert ep.washout_ok(52).tolist() == [True, False, True]
    assert ep.washout_ok(5).tolist() == [True, True, True]
    assert ep.washout_ok(52, observed_from=201201).tolist() == [True, False, True]
    assert ep.washout_ok(52, observed_from=201202).tolist() == [False, False, False]


def test_episodes_ignore_row_order():
    rng = np.random.default_rng(0)
    p = rng.integers(0, 20, 200)
    s = rng.integers(2000, 2300, 200)
    e = s + rng.integers(0, 20, 200)
    a = TreatmentSpells(p, ordinal_to_iso(s), ordinal_to_iso(e), on_overlap="merge").episodes()
    perm = rng.permutation(200)
    b = TreatmentSpells(p[perm], ordinal_to_iso(s[perm]), ordinal_to_iso(e[perm]),
                        on_overlap="merge").episodes()
    assert a.to_frame().drop(columns="hours").equals(b.to_frame().drop(columns="hours"))


def test_spells_bad_input():
    with pytest.raises(DataValidationError, match=r"spells: expected end >= start; found 2 "
                       r"reversed spells \(rows 1, 2\)\. Hint"):
        TreatmentSpells([1, 2, 3], [201301, 201305, 201305], [201302, 201304, 201301])
    with pytest.raises(DataValidationError, match=r"found 1 spells overlapping.*rows 1"):
        TreatmentSpells([1, 1], [201301, 201302], [201305, 201306])
    with pytest.raises(DataValidationError, match=r"start: expected ISO week labels.*1 missing"):
        TreatmentSpells([1, 2], [201301, np.nan], [201302, 201303])
    with pytest.raises(DataValidationError, match=r"person: expected ids without missing"):
        TreatmentSpells(np.array([1, None], dtype=object), [201301, 201301], [201302, 201303])
    with pytest.raises(DataValidationError, match=r"start: expected valid ISO week.*1 invalid"):
        TreatmentSpells([1], [201354], [201360])
    with pytest.raises(DataValidationError, match=r"hours: expected non-negative"):
        TreatmentSpells([1], [201301], [201302], hours=[-1.0])
    with pytest.raises(DataValidationError, match="start: expected ISO week labels YYYYWW \\(int"):
        TreatmentSpells([1], ["a"], [201302])


def test_locate():
    reg = random_register(n=5, w=30, seed=1, first=201301)
    p = reg.persons
    sp = TreatmentSpells([p[3], p[0]], [201305, 201301], [201310, 201330])
    row, sc, ec = sp.locate(reg)
    assert row.tolist() == [3, 0] and sc.tolist() == [4, 0] and ec.tolist() == [9, 29]
    with pytest.raises(DataValidationError, match=r"spells: expected spells inside.*1 spells "
                       r"outside \(rows 1\)"):
        TreatmentSpells([p[3], p[0]], [201305, 201301], [201310, 201331]).locate(reg)
    with pytest.raises(DataValidationError, match=r"spells.person: expected persons present.*"
                       r"rows 0\)"):
        TreatmentSpells([-5], [201305], [201310]).locate(reg)


# ---------------------------------------------------------------- register bad input
def test_register_bad_input():
    weeks = [201301, 201302]
    with pytest.raises(DataValidationError, match=r"codes: expected integer codes in every "
                       r"person-week; found 1 missing values in 1 rows \(rows 1\)"):
        WeeklyRegister(np.array([[0, 211], [np.nan, 0]]), [1, 2], weeks)
    with pytest.raises(DataValidationError, match=r"codes: expected an integer code matrix"):
        WeeklyRegister(np.array([["a", "b"]]), [1], weeks)
    with pytest.raises(DataValidationError, match=r"codes: expected non-negative codes; found 1"):
        WeeklyRegister(np.array([[0, -1]]), [1], weeks)
    with pytest.raises(DataValidationError, match=r"persons: expected unique.*1 duplicated rows "
                       r"\(rows 2\)"):
        WeeklyRegister(np.zeros((3, 2), int), [1, 2, 1], weeks)
    with pytest.raises(DataValidationError, match=r"weeks: expected consecutive ISO weeks.*1 "
                       r"breaks"):
        WeeklyRegister(np.zeros((1, 2), int), [1], [201301, 201303])
    with pytest.raises(DataValidationError, match=r"weeks: expected one label per code column"):
        WeeklyRegister(np.zeros((1, 3), int), [1], weeks)
    with pytest.raises(DataValidationError, match=r"persons: expected ids without missing"):
        WeeklyRegister(np.zeros((2, 2), int), [1.0, np.nan], weeks)


def test_from_long_bad_input():
    df = pd.DataFrame({"person": [1, 1, 2, 2], "week": [201301, 201301, 201301, 201302],
                       "code": [211, 231, 0, 0]})
    with pytest.raises(DataValidationError, match=r"data: expected one code per person-week; "
                       r"found 1 duplicated person-weeks with conflicting codes \(rows 1\)"):
        WeeklyRegister.from_long(df)
    ok = df.copy()
    ok.loc[1, "code"] = 211  # exact duplicate: fine
    assert WeeklyRegister.from_long(ok).shape == (2, 2)
    with pytest.raises(DataValidationError, match=r"data.week: expected weeks inside.*1 rows "
                       r"outside \(rows 3\)"):
        WeeklyRegister.from_long(ok, weeks=[201301])
    bad = ok.astype({"code": float})
    bad.loc[2, "code"] = np.nan
    with pytest.raises(DataValidationError, match=r"data.code: expected register codes without "
                       r"missing values; found 1 missing \(rows 2\)"):
        WeeklyRegister.from_long(bad)
    with pytest.raises(DataValidationError, match="expected a column 'code'"):
        WeeklyRegister.from_long(ok.drop(columns="code"))


def test_from_spells_bad_input():
    df = pd.DataFrame({"person": [1, 1, 2], "start": [201301, 201303, 201301],
                       "end": [201304, 201305, 201301], "code": [211, 231, 0]})
    with pytest.raises(DataValidationError, match=r"1 overlapping spells \(rows 1\)"):
        WeeklyRegister.from_spells(df)
    df2 = df.copy()
    df2.loc[2, "end"] = 201252
    with pytest.raises(DataValidationError, match=r"1 reversed spells \(rows 2\)"):
        WeeklyRegister.from_spells(df2)


def test_from_wide_dataframe_dream_names():
    df = pd.DataFrame({"person": [5, 6], "y_1301": [211, 0], "y_1252": [231, 1001],
                       "age": [30, 40]})
    reg = WeeklyRegister.from_wide(df)
    assert reg.weeks.tolist() == [201252, 201301]
    assert reg.codes.tolist() == [[231, 211], [1001, 0]]
    df.loc[1, "y_1301"] = np.nan
    with pytest.raises(DataValidationError, match=r"1 missing values in 1 rows \(rows 1\)"):
        WeeklyRegister.from_wide(df)


# ---------------------------------------------------------------- round trips
@st.composite
def registers(draw):
    n = draw(st.integers(1, 6))
    w = draw(st.integers(1, 12))
    first = draw(st.sampled_from([200850, 200951, 201452, 201501]))
    idx = draw(st.lists(st.integers(0, VALID_CODES.size - 1), min_size=n * w, max_size=n * w))
    codes = VALID_CODES[np.array(idx)].reshape(n, w)
    persons = np.array(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n,
                                     unique=True)))
    weeks = ordinal_to_iso(iso_to_ordinal(first) + np.arange(w))
    return WeeklyRegister(codes, persons, weeks)


def _sorted(reg: WeeklyRegister) -> WeeklyRegister:
    return reg.subset(np.argsort(reg.persons))


@settings(max_examples=40, deadline=None)
@given(registers())
def test_roundtrip_long_wide_spells(reg):
    ref = _sorted(reg)
    assert WeeklyRegister.from_long(reg.to_long()).equals(ref)
    assert WeeklyRegister.from_spells(reg.to_spells()).equals(ref)
    assert WeeklyRegister.from_wide(reg.to_wide()).equals(reg)
    # dropping empty weeks from the long form and refilling gives the same register
    assert WeeklyRegister.from_long(reg.to_long(drop_code=0), weeks=reg.weeks).codes.shape[
        1] == reg.n_weeks


@settings(max_examples=10, deadline=None)
@given(registers(), st.sampled_from(["wide", "long", "spells"]))
def test_roundtrip_parquet_csv(tmp_path_factory, reg, layout):
    d = tmp_path_factory.mktemp("reg")
    reg.to_parquet(d / "r.parquet", layout=layout)
    back = WeeklyRegister.read_parquet(d / "r.parquet", weeks=reg.weeks)
    assert back.equals(_sorted(reg) if layout != "wide" else reg)
    reg.to_csv(d / "r.csv", layout=layout)
    back = WeeklyRegister.read_csv(d / "r.csv", weeks=reg.weeks)
    assert back.equals(_sorted(reg) if layout != "wide" else reg)


def test_row_order_changes_nothing():
    reg = random_register(seed=9)
    perm = np.random.default_rng(2).permutation(reg.n_persons)
    other = reg.subset(perm)
    assert np.array_equal(other.prefix_sums("employed"), reg.prefix_sums("employed")[perm])
    assert np.array_equal(other.row(reg.persons), np.argsort(perm)[np.arange(reg.n_persons)])


def test_column_and_repr_hide_ids():
    reg = random_register(seed=10, first=200950)
    assert reg.column([200953, 201001]).tolist() == [3, 4]
    with pytest.raises(DataValidationError, match=r"labels: expected weeks inside the register.*"
                       r"1 outside \(positions 1\)"):
        reg.column([200950, 200949])
    text = repr(reg)
    assert all(str(p) not in text for p in reg.persons if p > 9999)


def test_no_copy_for_unsigned_input():
    codes = np.zeros((4, 5), dtype=np.uint16)
    reg = WeeklyRegister(codes, np.arange(4), iso_range(201301, 201305))
    assert reg.codes is codes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WeeklyRegister(codes.astype(np.int64), np.arange(4), iso_range(201301, 201305))
