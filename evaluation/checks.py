"""Apply the plan's ``[[check]]`` tables to the suite reports of ``hypermarker evaluate``: a
pass/fail/insufficient/skipped result per (check, suite), and the run's status (the command's
exit status: :data:`EXIT_CODES`).

A check reads a number, or one end of an estimate's confidence interval (``bound``), or, with
``each``, every member of a table of subgroup estimates (see :mod:`evaluation.plan`).
``insufficient`` means the report has no figure for a gate (an explicit null, or fewer patients
than the check's ``min_n``); a warning without a figure is ``skipped``. Neither is a pass. A
metric path the report does not have raises :class:`~evaluation.plan.MetricPathError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from evaluation.plan import Check, MetricPathError, Plan, compare, number, resolve

Status = Literal["pass", "fail", "insufficient", "skipped"]
#: Exit status of ``hypermarker evaluate`` by the run's status (2: usage or plan error).
EXIT_CODES: Final[dict[str, int]] = {"pass": 0, "fail": 1, "insufficient": 3}


@dataclass(frozen=True, slots=True)
class Member:
    """One subgroup of a check with ``each``: its estimate and status."""

    member: str
    value: float | None
    estimate: float | None
    lower: float | None
    upper: float | None
    n: int | None
    status: Status


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check judged on one suite report. ``value`` is what was compared with the
    threshold (for ``each``: the member furthest on the wrong side, or the closest to it);
    ``estimate``/``lower``/``upper``/``n`` describe that estimate where it is one."""

    id: str
    suite: str
    metric: str
    comparator: str
    threshold: float
    severity: str
    value: float | None
    status: Status
    rationale: str
    bound: str | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    n: int | None = None
    level: float | None = None
    member: str | None = None
    members: list[Member] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_value(report: dict[str, Any], path: str, where: str = "metric") -> float | None:
    """The number at a dotted path of a report, or None when the report holds null or
    something that is not a number there; raises
    :class:`~evaluation.plan.MetricPathError` when the path does not resolve."""
    return number(resolve(report, path, where))


def _is_estimate(value: Any) -> bool:
    return isinstance(value, Mapping) and "estimate" in value


def _judge(check: Check, raw: Any, where: str) -> tuple[float | None, dict[str, Any], Status]:
    """(compared value, the estimate's fields, status) of one value of a report."""
    missing: Status = "insufficient" if check.severity == "gate" else "skipped"
    info: dict[str, Any] = {}
    if check.bound is not None:
        if raw is None:
            return None, info, missing
        if not _is_estimate(raw):
            raise MetricPathError(f"{where}: bound {check.bound!r} needs an estimate (a table "
                                  f"with estimate, lower, upper, n), got {type(raw).__name__}")
        info = {k: raw.get(k) for k in ("estimate", "lower", "upper", "n", "level")}
        value = number(raw.get(check.bound))
        n = raw.get("n")
        if value is None or (check.min_n is not None
                             and (not isinstance(n, int) or n < check.min_n)):
            return value, info, missing
    else:
        value = number(raw)
        if value is None:
            return None, info, missing
    return value, info, "pass" if compare(value, check.comparator, check.threshold) else "fail"


def _margin(check: Check, value: float | None) -> float:
    """How far a value sits on the passing side of the threshold (smaller is worse)."""
    if value is None:
        return float("inf")
    c, t = check.comparator, check.threshold
    if c in (">=", ">"):
        return value - t
    if c in ("<=", "<"):
        return t - value
    if c == "abs<=":
        return t - abs(value)
    return -abs(value - t)


_ORDER: Final[dict[str, int]] = {"fail": 0, "insufficient": 1, "skipped": 2, "pass": 3}


def _one(check: Check, suite: str, report: dict[str, Any]) -> CheckResult:
    where = f"check {check.id!r} on suite {suite!r}"
    raw = resolve(report, check.metric, where)
    common = (check.id, suite, check.metric, check.comparator, check.threshold,
              check.severity)
    if not check.each:
        value, info, status = _judge(check, raw, where)
        return CheckResult(*common, value, status, check.rationale, check.bound, **info)
    if raw is not None and not isinstance(raw, Mapping):
        raise MetricPathError(f"{where}: 'each' needs a table of subgroup values at "
                              f"{check.metric!r}")
    members = []
    for name, v in (raw or {}).items():
        value, info, status = _judge(check, v, f"{where} [{name}]")
        members.append(Member(str(name), value, info.get("estimate"), info.get("lower"),
                              info.get("upper"), info.get("n"), status))
    if not members:
        missing: Status = "insufficient" if check.severity == "gate" else "skipped"
        return CheckResult(*common, None, missing, check.rationale, check.bound)
    worst = min(members, key=lambda m: (_ORDER[m.status], _margin(check, m.value)))
    return CheckResult(*common, worst.value, worst.status, check.rationale, check.bound,
                       worst.estimate, worst.lower, worst.upper, worst.n, None, worst.member,
                       members)


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


def gates_insufficient(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "gate" and r.status == "insufficient"]


def run_status(results: list[CheckResult]) -> str:
    """``fail`` when a gate failed, else ``insufficient`` when a gate could not be judged,
    else ``pass``."""
    if gates_failed(results):
        return "fail"
    return "insufficient" if gates_insufficient(results) else "pass"


def _label(r: CheckResult) -> str:
    return f"{r.id} ({r.suite})"


def summary(plan: Plan, results: list[CheckResult]) -> dict[str, Any]:
    status = run_status(results)
    return {
        "plan_version": plan.version,
        "plan_source": plan.source,
        "status": status,
        "exit_code": EXIT_CODES[status],
        "gate_passed": status == "pass",
        "gates_failed": [_label(r) for r in gates_failed(results)],
        "gates_insufficient": [_label(r) for r in gates_insufficient(results)],
        "warnings": [_label(r) for r in results
                     if r.severity == "warn" and r.status == "fail"],
        "counts": {s: sum(r.status == s for r in results)
                   for s in ("pass", "fail", "insufficient", "skipped")},
        "results": [r.to_dict() for r in results],
    }
