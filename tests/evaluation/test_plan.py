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


BOUNDED = """
plan_version = "9.9"
[[check]]
id = "cf"
suites = ["internal"]
metric = "decision.cf"
bound = "lower"
min_n = 100
comparator = ">="
threshold = 0.9
severity = "gate"
rationale = "goal"
[[check]]
id = "slope-low"
suites = ["internal"]
metric = "groups.slope"
each = true
bound = "lower"
min_n = 100
comparator = ">="
threshold = 0.9
severity = "gate"
rationale = "goal"
"""


def _est(estimate: float | None, lower: float | None, upper: float | None,
         n: int = 500) -> dict[str, object]:
    return {"estimate": estimate, "lower": lower, "upper": upper, "n": n, "level": 0.95}


def _report(cf: object, slopes: object) -> dict[str, object]:
    return {"suite": "internal", "decision": {"cf": cf}, "groups": {"slope": slopes}}


def test_a_gate_with_a_bound_passes_only_when_the_interval_clears_the_goal() -> None:
    plan = parse_plan(BOUNDED)
    ok = run_checks(plan, [_report(_est(0.95, 0.91, 0.99),
                                   {"all": _est(1.0, 0.95, 1.05)})])
    assert [r.status for r in ok] == ["pass", "pass"]
    # the point estimate clears the goal, the lower bound does not: a failure
    straddle = run_checks(plan, [_report(_est(0.92, 0.88, 0.96),
                                         {"all": _est(1.0, 0.95, 1.05)})])
    assert straddle[0].status == "fail"
    assert (straddle[0].value, straddle[0].estimate) == (0.88, 0.92)
    s = summary(plan, straddle)
    assert (s["status"], s["exit_code"], s["gate_passed"]) == ("fail", 1, False)


def test_each_subgroup_is_judged_and_the_worst_is_shown() -> None:
    plan = parse_plan(BOUNDED)
    groups = {"all": _est(1.0, 0.95, 1.05), "age_band:80+": _est(0.95, 0.85, 1.05),
              "sex:female": _est(0.97, 0.89, 1.05)}
    r = run_checks(plan, [_report(_est(0.95, 0.91, 0.99), groups)])[1]
    assert r.status == "fail"
    assert (r.member, r.value) == ("age_band:80+", 0.85)
    assert {m.member: m.status for m in r.members} == {
        "all": "pass", "age_band:80+": "fail", "sex:female": "fail"}


def test_missing_or_too_little_data_is_insufficient_never_a_pass() -> None:
    plan = parse_plan(BOUNDED)
    cases: list[tuple[object, object]] = [
        (None, {"all": _est(1.0, 0.95, 1.05)}),  # null metric
        (_est(0.95, None, None), {"all": _est(1.0, 0.95, 1.05)}),  # no interval
        (_est(0.99, 0.95, 1.0, n=50), {"all": _est(1.0, 0.95, 1.05)}),  # n < min_n
    ]
    for cf, slopes in cases:
        results = run_checks(plan, [_report(cf, slopes)])
        assert results[0].status == "insufficient", cf
        s = summary(plan, results)
        assert (s["status"], s["exit_code"], s["gate_passed"]) == ("insufficient", 3, False)
        assert s["gates_insufficient"] == ["cf (internal)"]
    # a small subgroup makes the subgroup gate insufficient; an empty table too
    small = run_checks(plan, [_report(_est(0.95, 0.91, 0.99),
                                      {"all": _est(1.0, 0.95, 1.05),
                                       "ethnicity:unknown": _est(1.0, 0.95, 1.05, n=40)})])
    assert small[1].status == "insufficient"
    empty = run_checks(plan, [_report(_est(0.95, 0.91, 0.99), {})])
    assert empty[1].status == "insufficient"
    # a failure outranks insufficient data: exit 1
    both = run_checks(plan, [_report(None, {"all": _est(0.5, 0.4, 0.6)})])
    assert summary(plan, both)["exit_code"] == 1


def test_a_bound_on_a_plain_number_is_a_plan_error() -> None:
    with pytest.raises(MetricPathError, match="needs an estimate"):
        run_checks(parse_plan(BOUNDED), [_report(0.95, {"all": _est(1.0, 0.95, 1.05)})])
    with pytest.raises(MetricPathError, match="table of subgroup"):
        run_checks(parse_plan(BOUNDED), [_report(_est(0.95, 0.91, 0.99), 1.0)])


@pytest.mark.parametrize(("edit", "message"), [
    (('bound = "lower"', 'bound = "middle"'), "bound"),
    (("each = true", "each = 1"), "each"),
    (("min_n = 100", "min_n = 0"), "min_n"),
    (('bound = "lower"\nmin_n = 100', "min_n = 100"), "give its 'bound'"),
])
def test_malformed_bounds_are_refused(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(BOUNDED.replace(*edit, 1))


def test_the_bundled_plan_gates_are_the_goals() -> None:
    """The goals of the project, as gates on confidence bounds (plan 1.2.0)."""
    checks = {c.id: c for c in load_plan(DEFAULT_PLAN).checks}
    goals = {
        "goal-captured-fraction-internal": (("internal",), "lower", ">=", 0.90),
        "goal-captured-fraction-external": (("external",), "lower", ">=", 0.75),
        "goal-calibration-slope-low": (("internal", "external"), "lower", ">=", 0.9),
        "goal-calibration-slope-high": (("internal", "external"), "upper", "<=", 1.1),
    }
    for gid, (suites, bound, comparator, threshold) in goals.items():
        c = checks[gid]
        assert (c.suites, c.bound, c.comparator, c.threshold, c.severity) == (
            suites, bound, comparator, threshold, "gate"), gid
    assert checks["goal-calibration-slope-low"].each
    assert checks["goal-captured-fraction-internal"].metric == (
        "decision_metrics.captured_fraction_vs_guideline_default")
