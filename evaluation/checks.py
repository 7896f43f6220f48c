"""Apply the plan's ``[[check]]`` tables to the suite reports of ``hypermarker evaluate``: a
pass/fail/skipped result per (check, suite), and whether any gate failed (the command's exit
status).

``skipped`` means the suite report holds an explicit null for the metric (no figure on these
data); a metric path the report does not have raises
:class:`~evaluation.plan.MetricPathError` (see :mod:`evaluation.plan`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evaluation.plan import Check, Plan, compare, number, resolve


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check judged on one suite report."""

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


def metric_value(report: dict[str, Any], path: str, where: str = "metric") -> float | None:
    """The number at a dotted path of a report, or None when the report holds null or
    something that is not a number there; raises
    :class:`~evaluation.plan.MetricPathError` when the path does not resolve."""
    return number(resolve(report, path, where))


def _one(check: Check, suite: str, report: dict[str, Any]) -> CheckResult:
    value = metric_value(report, check.metric, f"check {check.id!r} on suite {suite!r}")
    status = ("skipped" if value is None
              else "pass" if compare(value, check.comparator, check.threshold) else "fail")
    return CheckResult(check.id, suite, check.metric, check.comparator, check.threshold,
                       check.severity, value, status, check.rationale)


def run_checks(plan: Plan, reports: list[dict[str, Any]]) -> list[CheckResult]:
    """Every check against every suite report it names (by the report's ``suite`` field);
    raises :class:`~evaluation.plan.MetricPathError` when a check's metric is not in a
    report it applies to."""
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
