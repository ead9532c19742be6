"""Study specification: schema validation with errors naming the key."""

import pytest

from mentor_impact.config import DEFAULT_DEMO_SPEC, load_study, parse_study
from mentor_impact.exceptions import ConfigurationError


def test_defaults_filled_and_hash_stable(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(DEFAULT_DEMO_SPEC)
    spec = load_study(p)
    assert spec["design"]["horizon"] == 156
    assert spec["report"]["min_cell"] == 5
    assert spec.config_hash == load_study(p).config_hash
    other = parse_study({"study": {"seed": 2}})
    assert other.config_hash != spec.config_hash


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"estimatorz": {}}, r"unknown section \[estimatorz\]"),
        ({"ipw": {"trim": 0.1}}, r"unknown key \[ipw\]\.trim"),
        ({"design": {"horizon": "156"}}, r"\[design\]\.horizon must be integer"),
        ({"matching": {"enabled": 1}}, r"\[matching\]\.enabled must be true/false"),
        ({"design": {"horizon": True}}, r"\[design\]\.horizon must be integer"),
        ({"data": {"source": "files"}}, r"\[data\]\.register is required"),
        ({"outcomes": {"accumulate": [[1, 999]]}}, r"\[outcomes\]\.accumulate"),
        ({"inference": {"level": 1.5}}, r"\[inference\]\.level"),
    ],
)
def test_bad_specs_name_the_key(raw, match):
    with pytest.raises(ConfigurationError, match=match):
        parse_study(raw, source="study.toml")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        load_study(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nseed = 1")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_study(bad)
