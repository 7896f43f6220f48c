"""The versioned safety-monitoring plan (``evaluation/plan.toml``): checks with thresholds and
their rationale, validated on load."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PLAN = Path(__file__).with_name("plan.toml")
COMPARATORS = ("<=", ">=", "==", "abs<=")
SEVERITIES = ("gate", "warn")


class PlanError(ValueError):
    """The plan file is malformed; the message names the check and the field."""


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    suites: tuple[str, ...]
    metric: str
    comparator: str
    threshold: float
    severity: str
    rationale: str


@dataclass(frozen=True, slots=True)
class Plan:
    version: str
    title: str
    checks: tuple[Check, ...]
    source: str


def _check(i: int, raw: Any) -> Check:
    if not isinstance(raw, dict):
        raise PlanError(f"check {i}: not a table")
    where = f"check {raw.get('id', i)!r}"
    fields = {"id": str, "metric": str, "comparator": str, "severity": str, "rationale": str}
    for name, kind in fields.items():
        if not isinstance(raw.get(name), kind) or not raw[name].strip():
            raise PlanError(f"{where}: '{name}' must be a non-empty string")
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise PlanError(f"{where}: 'threshold' must be a number")
    suites = raw.get("suites")
    if (not isinstance(suites, list) or not suites
            or not all(isinstance(s, str) and s for s in suites)):
        raise PlanError(f"{where}: 'suites' must be a non-empty list of suite names")
    if raw["comparator"] not in COMPARATORS:
        raise PlanError(f"{where}: comparator {raw['comparator']!r} not one of {COMPARATORS}")
    if raw["severity"] not in SEVERITIES:
        raise PlanError(f"{where}: severity {raw['severity']!r} not one of {SEVERITIES}")
    unknown = set(raw) - set(fields) - {"threshold", "suites"}
    if unknown:
        raise PlanError(f"{where}: unknown field(s) {sorted(unknown)}")
    return Check(raw["id"], tuple(suites), raw["metric"], raw["comparator"], float(threshold),
                 raw["severity"], raw["rationale"].strip())


def parse_plan(text: str, source: str = "<string>") -> Plan:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{source}: not valid TOML: {e}") from e
    version = data.get("plan_version")
    if not isinstance(version, str) or not version:
        raise PlanError(f"{source}: 'plan_version' must be a non-empty string")
    raw_checks = data.get("check")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PlanError(f"{source}: no [[check]] entries")
    checks = tuple(_check(i, c) for i, c in enumerate(raw_checks))
    ids = [c.id for c in checks]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise PlanError(f"{source}: duplicate check id(s) {dup}")
    return Plan(version, str(data.get("title", "")), checks, source)


def load_plan(path: Path = DEFAULT_PLAN) -> Plan:
    return parse_plan(path.read_text(encoding="utf-8"), str(path))
