"""The safety-monitoring plan: loading, validation and applying its checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.checks import gates_failed, metric_value, run_checks, summary
from evaluation.plan import (
    COMPARATORS,
    DEFAULT_PLAN,
    MetricPathError,
    PlanError,
    compare,
    load_plan,
    parse_plan,
)

GOOD = """
plan_version = "9.9"
[[check]]
id = "cf"
suites = ["internal"]
metric = "contraindicated_first"
comparator = "=="
threshold = 0
severity = "gate"
rationale = "never"
[[check]]
id = "mae"
suites = ["internal", "external"]
metric = "sbp_change.mae_true"
comparator = "<="
threshold = 5
severity = "warn"
rationale = "degradation"
"""


def test_bundled_plan_is_versioned_and_every_check_has_a_rationale() -> None:
    plan = load_plan(DEFAULT_PLAN)
    assert plan.version
    assert {c.id for c in plan.checks} >= {"contraindicated-first", "blocked-option-ranked"}
    assert all(len(c.rationale) > 20 for c in plan.checks)
    gate = next(c for c in plan.checks if c.id == "contraindicated-first")
    assert (gate.severity, gate.comparator, gate.threshold) == ("gate", "==", 0.0)


@pytest.mark.parametrize(("edit", "message"), [
    (("9.9", ""), "plan_version"),
    (('comparator = "=="', 'comparator = "<>"'), "comparator"),
    (('severity = "gate"', 'severity = "fatal"'), "severity"),
    (("threshold = 0", 'threshold = "zero"'), "threshold"),
    (('suites = ["internal"]', "suites = []"), "suites"),
    (('rationale = "never"', 'rationale = ""'), "rationale"),
    (('id = "mae"', 'id = "cf"'), "duplicate"),
    (('rationale = "never"', 'rationale = "never"\nextra = 1'), "unknown field"),
    (("[[check]]", "[[check"), "TOML"),
])
def test_malformed_plans_are_refused_with_the_reason(edit: tuple[str, str],
                                                     message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(GOOD.replace(*edit, 1))


def test_checks_pass_fail_skip_and_gates() -> None:
    plan = parse_plan(GOOD)
    reports = [{"suite": "internal", "contraindicated_first": 1, "sbp_change": {"mae_true": 3}},
               {"suite": "external", "contraindicated_first": 0,
                "sbp_change": {"mae_true": None}}]
    results = run_checks(plan, reports)
    status = {(r.id, r.suite): r.status for r in results}
    assert status == {("cf", "internal"): "fail", ("mae", "internal"): "pass",
                      ("mae", "external"): "skipped"}
    assert [r.id for r in gates_failed(results)] == ["cf"]
    s = summary(plan, results)
    assert s["gate_passed"] is False
    assert s["gates_failed"] == ["cf (internal)"]


@pytest.mark.parametrize("report", [
    {"suite": "internal", "contraindicated_first": 0},  # no sbp_change at all
    {"suite": "internal", "contraindicated_first": 0, "sbp_change": {"mae": 3.0}},  # renamed
    {"suite": "internal", "contraindicated_first": 0, "sbp_change": 3.0},  # not a table
])
def test_a_metric_path_not_in_the_report_is_a_plan_error(report: dict[str, object]) -> None:
    """A renamed or removed metric fails loudly, naming the check and suite; it is never
    "skipped" (a null figure is), so a gate cannot vanish from the run silently."""
    with pytest.raises(MetricPathError, match=r"check 'mae' on suite 'internal'.*sbp_change"):
        run_checks(parse_plan(GOOD), [report])
    assert issubclass(MetricPathError, PlanError)


def test_one_loader_reads_both_the_checks_and_the_monitor_gates() -> None:
    plan = load_plan(DEFAULT_PLAN, require=("check", "monitor.gate"))
    assert plan.checks
    assert plan.gates
    assert load_plan(DEFAULT_PLAN) == plan
    assert {c.comparator for c in plan.checks} | {g.comparator for g in plan.gates} <= set(
        COMPARATORS)
    gate = next(g for g in plan.gates if g.id == "calibration-in-the-large")
    assert (gate.comparator, gate.threshold, gate.min_n) == ("<", 2.0, 100)


GATE = """
[[monitor.gate]]
id = "latency-p95"
metric = "latency.p95_ms"
comparator = "<"
threshold = 500.0
severity = "gate"
min_n = 20
n_metric = "latency.n"
rationale = "SLO"
"""


@pytest.mark.parametrize(("edit", "message"), [
    (('comparator = "<"', 'comparator = "~"'), "comparator"),
    (("min_n = 20", "min_n = 0"), "min_n"),
    (('n_metric = "latency.n"', 'n_metric = "latency..n"'), "dotted metric path"),
    (('severity = "gate"', 'severity = "page"'), "severity"),
])
def test_a_malformed_monitor_gate_is_refused_by_evaluate_too(edit: tuple[str, str],
                                                             message: str) -> None:
    """The one loader validates the whole file, whichever command reads it."""
    assert parse_plan(GOOD + GATE).gates[0].id == "latency-p95"
    with pytest.raises(PlanError, match=message):
        parse_plan(GOOD + GATE.replace(*edit, 1))


def test_each_command_requires_its_own_section(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"no \[\[monitor\.gate\]\]"):
        parse_plan(GOOD, require=("monitor.gate",))
    only_gates = 'plan_version = "1"\n' + GATE
    assert parse_plan(only_gates, require=("monitor.gate",)).checks == ()
    with pytest.raises(PlanError, match=r"no \[\[check\]\]"):
        parse_plan(only_gates)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "absent.toml")


def test_metric_paths_are_checked_for_syntax_on_load() -> None:
    with pytest.raises(PlanError, match="dotted metric path"):
        parse_plan(GOOD.replace('"sbp_change.mae_true"', '"sbp_change."', 1))


@pytest.mark.parametrize(("value", "comparator", "threshold", "ok"), [
    (1.0, "<=", 1.0, True), (1.1, "<=", 1.0, False), (0.9, ">=", 1.0, False),
    (1.0, "<", 1.0, False), (0.9, "<", 1.0, True), (1.0, ">", 1.0, False),
    (0.0, "==", 0.0, True), (-2.5, "abs<=", 2.0, False), (-1.5, "abs<=", 2.0, True),
    (float("nan"), ">=", 0.0, False),
])
def test_compare(value: float, comparator: str, threshold: float, ok: bool) -> None:
    assert compare(value, comparator, threshold) is ok


def test_metric_value_paths() -> None:
    r = {"a": {"b": 2}, "c": True, "d": "x", "e": None}
    assert (metric_value(r, "a.b"), metric_value(r, "c"), metric_value(r, "d"),
            metric_value(r, "e")) == (2.0, 1.0, None, None)
    with pytest.raises(MetricPathError, match="no 'z' at a"):
        metric_value(r, "a.z")
