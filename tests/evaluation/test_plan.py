"""The safety-monitoring plan: loading, validation and applying its checks."""

from __future__ import annotations

import pytest

from evaluation.checks import compare, gates_failed, metric_value, run_checks, summary
from evaluation.plan import DEFAULT_PLAN, PlanError, load_plan, parse_plan

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
               {"suite": "external", "contraindicated_first": 0}]
    results = run_checks(plan, reports)
    status = {(r.id, r.suite): r.status for r in results}
    assert status == {("cf", "internal"): "fail", ("mae", "internal"): "pass",
                      ("mae", "external"): "skipped"}
    assert [r.id for r in gates_failed(results)] == ["cf"]
    s = summary(plan, results)
    assert s["gate_passed"] is False
    assert s["gates_failed"] == ["cf (internal)"]


@pytest.mark.parametrize(("value", "comparator", "threshold", "ok"), [
    (1.0, "<=", 1.0, True), (1.1, "<=", 1.0, False), (0.9, ">=", 1.0, False),
    (0.0, "==", 0.0, True), (-2.5, "abs<=", 2.0, False), (-1.5, "abs<=", 2.0, True),
    (float("nan"), ">=", 0.0, False),
])
def test_compare(value: float, comparator: str, threshold: float, ok: bool) -> None:
    assert compare(value, comparator, threshold) is ok


def test_metric_value_paths() -> None:
    r = {"a": {"b": 2}, "c": True, "d": "x"}
    assert (metric_value(r, "a.b"), metric_value(r, "c"), metric_value(r, "d"),
            metric_value(r, "a.z")) == (2.0, 1.0, None, None)
