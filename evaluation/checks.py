"""Apply the safety-monitoring plan to the suite reports: a pass/fail/skipped result per
(check, suite), and whether any gate failed (the command's exit status)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from evaluation.plan import Check, Plan


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    suite: str
    metric: str
    comparator: str
    threshold: float
    severity: str
    value: float | None
    status: str  # "pass" | "fail" | "skipped"
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lookup(report: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a report (``"a.b.c"``), or None when absent."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def metric_value(report: dict[str, Any], path: str) -> float | None:
    """The number at a dotted path of a report, or None when absent or not a number."""
    node = lookup(report, path)
    if isinstance(node, bool):
        return float(node)
    return float(node) if isinstance(node, int | float) else None


def compare(value: float, comparator: str, threshold: float) -> bool:
    if math.isnan(value):
        return False
    if comparator == "<=":
        return value <= threshold
    if comparator == ">=":
        return value >= threshold
    if comparator == "==":
        return value == threshold
    if comparator == "abs<=":
        return abs(value) <= threshold
    raise ValueError(f"unknown comparator {comparator!r}")


def _one(check: Check, suite: str, report: dict[str, Any]) -> CheckResult:
    value = metric_value(report, check.metric)
    status = ("skipped" if value is None
              else "pass" if compare(value, check.comparator, check.threshold) else "fail")
    return CheckResult(check.id, suite, check.metric, check.comparator, check.threshold,
                       check.severity, value, status, check.rationale)


def run_checks(plan: Plan, reports: list[dict[str, Any]]) -> list[CheckResult]:
    """Every check against every suite report it names (by the report's ``suite`` field)."""
    out = []
    for check in plan.checks:
        for r in reports:
            if r.get("suite") in check.suites:
                out.append(_one(check, str(r["suite"]), r))
    return out


def gates_failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "gate" and r.status == "fail"]


def summary(plan: Plan, results: list[CheckResult]) -> dict[str, Any]:
    failed = gates_failed(results)
    return {
        "plan_version": plan.version,
        "plan_source": plan.source,
        "gate_passed": not failed,
        "gates_failed": [f"{r.id} ({r.suite})" for r in failed],
        "warnings": [f"{r.id} ({r.suite})" for r in results
                     if r.severity == "warn" and r.status == "fail"],
        "counts": {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skipped")},
        "results": [r.to_dict() for r in results],
    }
