"""CI's reviewed list of gates known to fail: new failures and fixed ones both fail CI, and a
safety gate can never be listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.known_failures import (
    DEFAULT_LIST,
    KnownFailuresError,
    compare_with_list,
    load,
    main,
    parse,
)
from evaluation.plan import DEFAULT_PLAN, load_plan

LIST = """
list_version = "1"
command = "hypermarker evaluate --suite internal --suite safety"
[[known_failure]]
gate = "goal-captured-fraction-internal"
suite = "internal"
status = "fail"
measured = "0.61 (0.58 to 0.64)"
issue = "issue 15"
date = 2026-12-06
"""


def _result(gate: str, suite: str, status: str) -> dict[str, Any]:
    return {"id": gate, "suite": suite, "severity": "gate", "status": status,
            "metric": "m", "comparator": ">=", "threshold": 0.9, "value": 0.5,
            "estimate": None}


def _report(*results: dict[str, Any]) -> dict[str, Any]:
    safety = _result("contraindicated-first", "safety", "pass")
    return {"checks": {"results": [safety, *results]}}


def test_the_report_matches_the_list() -> None:
    known = parse(LIST)
    report = _report(_result("goal-captured-fraction-internal", "internal", "fail"),
                     _result("goal-calibration-slope-low", "internal", "pass"))
    assert compare_with_list(report, known) == []


def test_a_new_failure_fails_ci() -> None:
    problems = compare_with_list(
        _report(_result("goal-captured-fraction-internal", "internal", "fail"),
                _result("goal-calibration-slope-low", "internal", "fail")), parse(LIST))
    assert len(problems) == 1
    assert "goal-calibration-slope-low (internal) fail and is not a known failure" in problems[0]


def test_a_listed_gate_that_now_passes_fails_ci_until_removed() -> None:
    problems = compare_with_list(
        _report(_result("goal-captured-fraction-internal", "internal", "pass")), parse(LIST))
    assert len(problems) == 1
    assert "now passes" in problems[0]
    assert "remove it from the list" in problems[0]


def test_insufficient_data_is_not_a_listed_failure() -> None:
    problems = compare_with_list(
        _report(_result("goal-captured-fraction-internal", "internal", "insufficient")),
        parse(LIST))
    assert len(problems) == 1
    assert "listed as fail" in problems[0]


def test_a_safety_gate_can_never_be_listed_and_must_pass() -> None:
    with pytest.raises(KnownFailuresError, match="safety gate"):
        parse(LIST.replace('gate = "goal-captured-fraction-internal"',
                           'gate = "contraindicated-first"'))
    with pytest.raises(KnownFailuresError, match="safety gate"):
        parse(LIST.replace('suite = "internal"', 'suite = "safety"'))
    report = _report(_result("goal-captured-fraction-internal", "internal", "fail"))
    report["checks"]["results"][0]["status"] = "fail"
    assert any(p.startswith("safety gate contraindicated-first (safety) fail")
               for p in compare_with_list(report, parse(LIST)))
    no_safety = {"checks": {"results": [
        _result("goal-captured-fraction-internal", "internal", "fail")]}}
    assert any("no safety gate" in p for p in compare_with_list(no_safety, parse(LIST)))


@pytest.mark.parametrize(("edit", "message"), [
    (('status = "fail"', 'status = "flaky"'), "status"),
    (("date = 2026-12-06", 'date = "soon"'), "date"),
    (('issue = "issue 15"', 'issue = ""'), "issue"),
    (('list_version = "1"', ""), "list_version"),
    (('command = "hypermarker evaluate --suite internal --suite safety"', ""), "command"),
])
def test_malformed_lists_are_refused(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(KnownFailuresError, match=message):
        parse(LIST.replace(*edit, 1))


def test_the_bundled_list_names_real_gates_with_figures_issue_and_date() -> None:
    known = load(DEFAULT_LIST)
    gates = {c.id: c for c in load_plan(DEFAULT_PLAN).checks}
    assert "hypermarker evaluate" in known.command
    for k in known.entries:
        assert k.gate in gates, k.gate
        assert gates[k.gate].severity == "gate", k.gate
        assert k.suite in gates[k.gate].suites
        assert any(ch.isdigit() for ch in k.measured), k
        assert "issue" in k.issue.lower()


def test_the_command_line(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text(LIST)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(_report(_result("goal-captured-fraction-internal", "internal",
                                             "fail"))))
    assert main([str(ok), "--list", str(known)]) == 0
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(_report(_result("goal-captured-fraction-internal", "internal",
                                                "pass"))))
    assert main([str(fixed), "--list", str(known)]) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = [")
    assert main([str(ok), "--list", str(bad)]) == 2


def test_a_report_of_another_command_does_not_match_the_list() -> None:
    report = _report(_result("goal-captured-fraction-internal", "internal", "fail"))
    report["provenance"] = {"command": "hypermarker evaluate --suite internal --suite safety "
                                       "--patients 2000 --seed 9001"}
    assert compare_with_list(report, parse(LIST)) == []
    listed = parse(LIST.replace("--suite safety", "--suite safety --patients 500"))
    problems = compare_with_list(report, listed)
    assert len(problems) == 1
    assert "not made by the listed command" in problems[0]


def test_ci_runs_the_listed_command() -> None:
    """.ci/run's evaluate step is the command the list was measured with."""
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    step = next(line for line in ci.replace("\\\n", " ").splitlines()
                if line.startswith("uv run hypermarker evaluate"))
    assert " ".join(step.split()[2:]).startswith(
        " ".join(load(DEFAULT_LIST).command.replace(" --quiet", "").split()))
