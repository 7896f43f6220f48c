"""The versioned safety-monitoring plan (``evaluation/plan.toml``), the one loader of it.

Both commands read the plan through :func:`load_plan`: ``hypermarker evaluate`` applies its
``[[check]]`` tables to the suite reports (:mod:`evaluation.checks`) and ``hypermarker
monitor`` its ``[[monitor.gate]]`` tables to the monitoring report
(:func:`evaluation.monitor.apply_gates`). One parser validates every table of the file, with
one comparator set (:data:`COMPARATORS`) and one comparison (:func:`compare`), whichever
command loads it; the plan is read when a command asks for it, never at import.

What a metric path may resolve to, and what each outcome means:

* a number (a boolean counts as 0 or 1): the check or gate is judged, ``pass`` or ``fail``;
* an estimate (a table with ``estimate``, ``lower``, ``upper`` and ``n``; see
  :mod:`evaluation.bootstrap`): an evaluate check reads the end of the interval its ``bound``
  names (``lower``, ``upper``; ``estimate`` for the point) and is ``insufficient`` when that
  value is null or ``n`` is below the check's ``min_n``. A check with ``each = true`` reads a
  table of such values (one per subgroup) and judges every member: it fails if any member
  fails, else is insufficient if any member is (or the table is empty), else passes;
* an explicit ``null`` in the report: the report says it has no figure, because the data are
  insufficient (a monitoring window with too few outcomes, a metric undefined on the rows).
  A monitor gate is then ``insufficient``, as it is when ``n_metric`` is below ``min_n``; an
  evaluate check of severity ``gate`` is ``insufficient`` too (a warning is ``skipped``).
  Neither ever counts as a pass: an insufficient gate makes the command exit 3 (when no gate
  failed), and this is the only way a check or gate goes unjudged;
* nothing: a key along the dotted path is absent from the report (a metric renamed or
  removed). That is a fault of the plan, not of the data: :func:`resolve` raises
  :class:`MetricPathError` (a :class:`PlanError`), so the command fails loudly instead of
  letting a gate vanish as "skipped".

Paths are resolved against the report each command produces, so a path that does not resolve
is found when the plan is applied (evaluate: for every suite a check names that was run;
monitor: for every gate on every run, an empty window included); the syntax of a path (non-empty
dot-separated names) is checked when the plan is loaded.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

DEFAULT_PLAN: Final = Path(__file__).with_name("plan.toml")
#: The comparators of both kinds of table: ``value <comparator> threshold``.
COMPARATORS: Final = ("<=", ">=", "<", ">", "==", "abs<=")
SEVERITIES: Final = ("gate", "warn")
#: What a check reads of an estimate: the point or one end of its confidence interval.
BOUNDS: Final = ("estimate", "lower", "upper")
#: The two kinds of table a plan holds: evaluate's checks and the monitor's gates.
Section = Literal["check", "monitor.gate"]

_PATH = re.compile(r"[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*")


class PlanError(ValueError):
    """The plan file is malformed or names a metric its report does not have; the message
    names the check or gate and the field."""


class MetricPathError(PlanError):
    """A metric path of the plan does not resolve in the report it is applied to."""


@dataclass(frozen=True, slots=True)
class Check:
    """One ``[[check]]`` of ``hypermarker evaluate``: ``metric`` (a dotted path in a suite
    report) ``comparator`` ``threshold``, applied to each suite report named in ``suites``."""

    id: str
    suites: tuple[str, ...]
    metric: str
    comparator: str
    threshold: float
    severity: str
    rationale: str
    bound: str | None = None
    """For an estimate: which of its values is compared (:data:`BOUNDS`); None for a plain
    number."""
    each: bool = False
    """The metric is a table of subgroup -> value, each member judged."""
    min_n: int | None = None
    """Fewest patients behind an estimate for it to be judged (else ``insufficient``)."""


@dataclass(frozen=True, slots=True)
class Gate:
    """One ``[[monitor.gate]]`` of ``hypermarker monitor``: ``metric`` (a path in the
    monitoring report) ``comparator`` ``threshold``, judged once ``n_metric`` reaches
    ``min_n``."""

    id: str
    metric: str
    comparator: str
    threshold: float
    severity: str
    min_n: int
    n_metric: str
    rationale: str


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated plan: evaluate's checks and the monitor's gates, from one file."""

    version: str
    title: str
    checks: tuple[Check, ...]
    source: str
    gates: tuple[Gate, ...] = ()


def compare(value: float, comparator: str, threshold: float) -> bool:
    """``value <comparator> threshold``; NaN never passes."""
    if math.isnan(value):
        return False
    if comparator == "<=":
        return value <= threshold
    if comparator == ">=":
        return value >= threshold
    if comparator == "<":
        return value < threshold
    if comparator == ">":
        return value > threshold
    if comparator == "==":
        return value == threshold
    if comparator == "abs<=":
        return abs(value) <= threshold
    raise ValueError(f"unknown comparator {comparator!r}")


def lookup(report: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a report (``"a.b.c"``), or None when absent (for
    display; a plan's metrics are read with :func:`resolve`)."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def resolve(report: Mapping[str, Any], path: str, where: str) -> Any:
    """The value at a dotted path of a report, ``None`` included; raises
    :class:`MetricPathError` naming ``where`` (the check or gate) when a key along the path
    is absent."""
    node: Any = report
    done: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            at = ".".join(done) or "the top level"
            raise MetricPathError(f"{where}: metric {path!r} does not resolve: no {part!r} "
                                  f"at {at} of the report")
        node = node[part]
        done.append(part)
    return node


def number(value: Any) -> float | None:
    """A resolved metric as a float (booleans as 0 or 1), or None when it is not a number."""
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def _strings(raw: dict[str, Any], where: str, names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise PlanError(f"{where}: '{name}' must be a non-empty string")


def _common(raw: Any, where: str, strings: tuple[str, ...], others: set[str]) -> float:
    """Validate the fields both kinds of table share; returns the threshold."""
    _strings(raw, where, strings)
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise PlanError(f"{where}: 'threshold' must be a number")
    for name in ("metric", "n_metric"):
        if name in strings and not _PATH.fullmatch(raw[name]):
            raise PlanError(f"{where}: '{name}' {raw[name]!r} is not a dotted metric path")
    if raw["comparator"] not in COMPARATORS:
        raise PlanError(f"{where}: comparator {raw['comparator']!r} not one of {COMPARATORS}")
    if raw["severity"] not in SEVERITIES:
        raise PlanError(f"{where}: severity {raw['severity']!r} not one of {SEVERITIES}")
    unknown = set(raw) - set(strings) - {"threshold"} - others
    if unknown:
        raise PlanError(f"{where}: unknown field(s) {sorted(unknown)}")
    return float(threshold)


def _check(i: int, raw: Any) -> Check:
    if not isinstance(raw, dict):
        raise PlanError(f"check {i}: not a table")
    where = f"check {raw.get('id', i)!r}"
    threshold = _common(raw, where, ("id", "metric", "comparator", "severity", "rationale"),
                        {"suites", "bound", "each", "min_n"})
    suites = raw.get("suites")
    if (not isinstance(suites, list) or not suites
            or not all(isinstance(s, str) and s for s in suites)):
        raise PlanError(f"{where}: 'suites' must be a non-empty list of suite names")
    bound = raw.get("bound")
    if bound is not None and bound not in BOUNDS:
        raise PlanError(f"{where}: bound {bound!r} not one of {BOUNDS}")
    each = raw.get("each", False)
    if not isinstance(each, bool):
        raise PlanError(f"{where}: 'each' must be true or false")
    min_n = raw.get("min_n")
    if min_n is not None and (isinstance(min_n, bool) or not isinstance(min_n, int)
                              or min_n < 1):
        raise PlanError(f"{where}: 'min_n' must be a positive integer")
    if min_n is not None and bound is None:
        raise PlanError(f"{where}: 'min_n' applies to an estimate: give its 'bound'")
    return Check(raw["id"], tuple(suites), raw["metric"], raw["comparator"], threshold,
                 raw["severity"], raw["rationale"].strip(), bound, each, min_n)


def _gate(i: int, raw: Any, source: str) -> Gate:
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: monitor gate {i}: not a table")
    where = f"{source}: monitor gate {raw.get('id', i)!r}"
    threshold = _common(raw, where, ("id", "metric", "comparator", "severity", "n_metric",
                                     "rationale"), {"min_n"})
    min_n = raw.get("min_n")
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 1:
        raise PlanError(f"{where}: 'min_n' must be a positive integer")
    return Gate(raw["id"], raw["metric"], raw["comparator"], threshold, raw["severity"],
                min_n, raw["n_metric"], raw["rationale"].strip())


def _unique(ids: list[str], what: str, source: str) -> None:
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise PlanError(f"{source}: duplicate {what} id(s) {dup}")


def parse_plan(text: str, source: str = "<string>",
               require: tuple[Section, ...] = ("check",)) -> Plan:
    """Validate every table of a plan; ``require`` names the sections that must not be empty
    (evaluate needs checks, the monitor gates)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{source}: not valid TOML: {e}") from e
    version = data.get("plan_version")
    if not isinstance(version, str) or not version:
        raise PlanError(f"{source}: 'plan_version' must be a non-empty string")
    raw_checks = data.get("check", [])
    if not isinstance(raw_checks, list) or ("check" in require and not raw_checks):
        raise PlanError(f"{source}: no [[check]] entries")
    monitor = data.get("monitor", {})
    raw_gates = monitor.get("gate", []) if isinstance(monitor, dict) else None
    if not isinstance(raw_gates, list) or ("monitor.gate" in require and not raw_gates):
        raise PlanError(f"{source}: no [[monitor.gate]] entries")
    checks = tuple(_check(i, c) for i, c in enumerate(raw_checks))
    gates = tuple(_gate(i, g, source) for i, g in enumerate(raw_gates))
    _unique([c.id for c in checks], "check", source)
    _unique([g.id for g in gates], "monitor gate", source)
    return Plan(version, str(data.get("title", "")), checks, source, gates)


def load_plan(path: Path = DEFAULT_PLAN, require: tuple[Section, ...] = ("check",)) -> Plan:
    """Read and validate the plan at ``path``; raises :class:`PlanError` when it cannot be
    read or is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PlanError(f"{path}: cannot read: {e}") from e
    return parse_plan(text, str(path), require)
