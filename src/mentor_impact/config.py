"""Option dataclasses and the study specification (TOML).

Options are frozen dataclasses: they are values, compare equal by content, hash, and print
their settings. The study specification read by ``mentor-impact evaluate`` is validated
against a declared schema; unknown keys and wrong types give a :class:`ConfigurationError`
that names the key and its place in the file (``[estimators.ipw].trim``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mentor_impact.exceptions import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_DEMO_SPEC",
    "STUDY_SCHEMA",
    "StudySpec",
    "load_study",
    "parse_study",
]

# --------------------------------------------------------------------------------------
# schema: section -> key -> (allowed python types, default, description)
# --------------------------------------------------------------------------------------
_Num = (int, float)

STUDY_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any, str]]] = {
    "study": {
        "name": ((str,), "mentor study", "title used in the report"),
        "seed": ((int,), 1, "seed of every random step (simulation, subsampling, bands)"),
    },
    "data": {
        "source": ((str,), "simulate", "'simulate' (built-in simulator) or 'files'"),
        "n_persons": ((int,), 20_000, "simulated persons (source = 'simulate')"),
        "confounding": (_Num, 0.0, "unobserved-confounding knob of the simulator"),
        "register": ((str,), "", "register file (parquet/CSV, wide: person + one column per week)"),
        "spells": ((str,), "", "mentor spells file (person, start, end[, hours])"),
        "baseline": ((str,), "", "baseline file (person + fixed characteristics)"),
    },
    "design": {
        "horizon": ((int,), 156, "follow-up weeks H"),
        "controls_per_treated": (_Num, 10, "controls sampled per treated in each risk set"),
        "washout": ((int,), 52, "weeks without a mentor spell before an eligible start"),
        "sustained_weeks": ((int,), 4, "L: weeks of a sustained self-support spell"),
        "follow_up": ((str,), "complete", "'complete' (drop incomplete follow-up) or 'censor'"),
    },
    "outcomes": {
        "curves": (
            (list,),
            ["employed", "education", "employment_or_education", "self_support", "on_benefit"],
            "weekly outcome curves to estimate",
        ),
        "headline": ((str,), "employment_or_education", "outcome of the headline figure"),
        "status_weeks": ((list,), [26, 52, 104, 156], "weeks of the effects table"),
        "accumulate": (
            (list,),
            [[1, 52], [1, 104], [1, 156], [105, 156]],
            "windows [a, b] of accumulated weeks",
        ),
    },
    "matching": {
        "enabled": ((bool,), True, "run nearest-neighbour matching"),
        "k": ((int,), 5, "neighbours per treated"),
        "caliper": (_Num, 0.2, "caliper in SD of the logit PS (0 = none)"),
        "exact": ((list,), ["cell"], "exact-matching columns"),
        "replace": ((bool,), True, "match with replacement"),
    },
    "ipw": {
        "enabled": ((bool,), True, "run Hajek IPW (estimand A)"),
        "truncate": (_Num, 0.0, "upper percentile for weight truncation (0 = none)"),
        "estimand_b": ((bool,), True, "also estimate estimand B (censoring weights)"),
    },
    "aipw": {
        "enabled": ((bool,), True, "run cross-fitted AIPW"),
        "n_folds": ((int,), 5, "cross-fitting folds (split by person)"),
    },
    "duration": {
        "enabled": ((bool,), True, "weighted KM / Aalen–Johansen / RMST / marginal Cox HR"),
        "rmst_horizon": ((int,), 156, "RMST horizon in weeks"),
    },
    "toe": {
        "enabled": ((bool,), False, "fit the timing-of-events model"),
        "max_support_points": ((int,), 3, "largest K tried"),
    },
    "inference": {
        "cov": ((str,), "clustered", "'clustered' (by person) or 'iid'"),
        "level": (_Num, 0.95, "confidence level"),
        "band_draws": ((int,), 5000, "draws for the uniform band"),
    },
    "subgroups": {
        "variables": ((list,), [], "pre-specified subgroup variables (frame columns)"),
        "outcome": ((str,), "employment_or_education", "outcome of the subgroup analysis"),
        "tau": ((int,), 104, "horizon week of the subgroup effects"),
    },
    "report": {
        "min_cell": ((int,), 5, "smallest count shown in exported tables"),
        "html": ((bool,), True, "write report.html"),
        "robustness": ((bool,), True, "robustness panel across estimators (headline outcome)"),
        "figures": ((bool,), True, "write PNG figures"),
    },
}


@dataclass(frozen=True)
class StudySpec:
    """A validated study specification.

    Parameters
    ----------
    sections : dict
        ``{section: {key: value}}`` with every key of :data:`STUDY_SCHEMA` filled (defaults
        where the file was silent).
    source : str
        Where it came from (file path or ``"<defaults>"``), for messages and provenance.
    """

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<defaults>"

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    @property
    def seed(self) -> int:
        """The study seed."""
        return int(self.sections["study"]["seed"])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the specification as plain dicts."""
        return json.loads(json.dumps(asdict(self)["sections"]))

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the specification."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "true/false", list: "array"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def parse_study(raw: Mapping[str, Any], *, source: str = "<dict>") -> StudySpec:
    """Validate a parsed specification and fill defaults.

    Parameters
    ----------
    raw : mapping
        ``{section: {key: value}}`` as read from TOML.
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    StudySpec
        The validated specification.

    Raises
    ------
    ConfigurationError
        On an unknown section or key, or a value of the wrong type, naming ``[section].key``.
    """
    sections: dict[str, dict[str, Any]] = {}
    for name in raw:
        if name not in STUDY_SCHEMA:
            raise ConfigurationError(
                f"{source}: unknown section [{name}]; expected one of "
                f"{sorted(STUDY_SCHEMA)}."
            )
        if not isinstance(raw[name], Mapping):
            raise ConfigurationError(f"{source}: [{name}] must be a table of keys.")
    for name, schema in STUDY_SCHEMA.items():
        given = dict(raw.get(name, {}))
        out: dict[str, Any] = {}
        for key, value in given.items():
            if key not in schema:
                raise ConfigurationError(
                    f"{source}: unknown key [{name}].{key}; expected one of {sorted(schema)}."
                )
            types, _, _ = schema[key]
            ok = isinstance(value, types) and not (
                isinstance(value, bool) and bool not in types
            )
            if not ok:
                raise ConfigurationError(
                    f"{source}: [{name}].{key} must be {_type_name(types)}; found "
                    f"{type(value).__name__}."
                )
            out[key] = value
        for key, (_, default, _) in schema.items():
            out.setdefault(key, default)
        sections[name] = out
    _check_values(sections, source)
    return StudySpec(sections=sections, source=source)


def _check_values(s: dict[str, dict[str, Any]], source: str) -> None:
    def bad(where: str, expected: str, found: Any) -> ConfigurationError:
        return ConfigurationError(f"{source}: {where} must be {expected}; found {found!r}.")

    if s["data"]["source"] not in ("simulate", "files"):
        raise bad("[data].source", "'simulate' or 'files'", s["data"]["source"])
    if s["data"]["source"] == "files":
        for key in ("register", "spells", "baseline"):
            if not s["data"][key]:
                raise ConfigurationError(
                    f"{source}: [data].{key} is required when [data].source = 'files'."
                )
    if s["data"]["n_persons"] < 100:
        raise bad("[data].n_persons", "at least 100", s["data"]["n_persons"])
    if not 1 <= s["design"]["horizon"] <= 520:
        raise bad("[design].horizon", "in 1..520", s["design"]["horizon"])
    if s["design"]["follow_up"] not in ("complete", "censor"):
        raise bad("[design].follow_up", "'complete' or 'censor'", s["design"]["follow_up"])
    if s["inference"]["cov"] not in ("clustered", "iid"):
        raise bad("[inference].cov", "'clustered' or 'iid'", s["inference"]["cov"])
    if not 0 < float(s["inference"]["level"]) < 1:
        raise bad("[inference].level", "in (0, 1)", s["inference"]["level"])
    if s["report"]["min_cell"] < 1:
        raise bad("[report].min_cell", "at least 1", s["report"]["min_cell"])
    for a_b in s["outcomes"]["accumulate"]:
        if not (isinstance(a_b, list) and len(a_b) == 2 and all(isinstance(v, int) for v in a_b)):
            raise bad("[outcomes].accumulate", "a list of [first, last] week pairs", a_b)
        if not 0 <= a_b[0] <= a_b[1] <= s["design"]["horizon"]:
            raise bad("[outcomes].accumulate", "windows inside 0..horizon", a_b)
    for t in s["outcomes"]["status_weeks"]:
        if not isinstance(t, int) or not 0 <= t <= s["design"]["horizon"]:
            raise bad("[outcomes].status_weeks", "weeks inside 0..horizon", t)


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a TOML study specification.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file.

    Returns
    -------
    StudySpec
        The validated specification.

    Raises
    ------
    ConfigurationError
        If the file is missing, is not valid TOML, or fails validation.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigurationError(f"study: specification file not found: {p}.")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{p.name}: not valid TOML ({exc}).") from None
    return parse_study(raw, source=p.name)


DEFAULT_DEMO_SPEC = """\
# Bundled specification of `mentor-impact demo`: the built-in simulated study.
[study]
name = "Mentor support: simulated demonstration study"
seed = 20130101

[data]
source = "simulate"
n_persons = 20000
confounding = 0.0

[design]
horizon = 156
controls_per_treated = 10

[matching]
k = 5
caliper = 0.2

[aipw]
n_folds = 2

[toe]
enabled = true
max_support_points = 2

[subgroups]
variables = ["benefit_type", "age_band"]
"""
