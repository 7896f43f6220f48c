"""`hypermarker evaluate` end to end in-process: the CI run (safety gates pass, the goal gates
that fail are exactly CI's reviewed known failures), the report shapes and the HTML report, a
planted faulty ranker failing the gate, and the FHIR suite on the vendored fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import evaluation.decisions
import evaluation.safety_matrix
from evaluation.fhir_suite import DEFAULT_FHIR_DIR
from evaluation.known_failures import DEFAULT_LIST, compare_with_list, is_safety_gate
from evaluation.known_failures import load as load_known_failures
from hypermarker_cli.main import app
from models.assessment import rank_options

runner = CliRunner()


def _suite(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["suites"] if s["suite"] == name)


def test_every_check_of_the_plan_is_evaluated_on_every_suite_it_names(tmp_path: Path) -> None:
    """A normal in-process run of every suite judges each check of the bundled plan on each
    suite it names that ran, never skipped: a check whose metric a suite no longer reports
    cannot vanish from the gate (it would raise a plan error instead). At 300 patients per
    site the goal gates fail or cannot be judged (subgroups under min_n): the exit status says
    which, and never 0."""
    from evaluation.plan import DEFAULT_PLAN, load_plan

    out = tmp_path / "eval.json"
    suites = ["internal", "external", "safety", "fhir"]
    result = runner.invoke(app, ["evaluate", *(a for s in suites for a in ("--suite", s)),
                                 "--patients", "300", "--limit", "300", "--json", str(out),
                                 "--quiet"])
    checks = json.loads(out.read_text())["checks"]
    assert result.exit_code == checks["exit_code"] == {"fail": 1, "insufficient": 3}[
        checks["status"]], result.output
    judged = {(r["id"], r["suite"]): r["status"] for r in checks["results"]}
    expected = {(c.id, s) for c in load_plan(DEFAULT_PLAN).checks for s in c.suites
                if s in suites}
    assert set(judged) == expected
    assert all(status in ("pass", "fail", "insufficient") for status in judged.values()), judged
    assert all(judged[(c.id, s)] == "pass" for c in load_plan(DEFAULT_PLAN).checks
               for s in c.suites if s in suites and is_safety_gate(c.id, s)
               and c.severity == "gate")
    assert checks["counts"]["skipped"] == 0
    assert len(checks["results"]) == len(expected)


def test_the_ci_run_passes_the_safety_gates_and_fails_only_the_known_failures(
        tmp_path: Path) -> None:
    """The CI run of .ci/run (internal + safety): every safety gate passes; the gates that do
    not pass are exactly the reviewed list evaluation/known_failures.toml (a new failure, or a
    listed gate that now passes, would fail CI); the command itself exits 1 (a goal is
    missed: deployment is blocked). The reports carry the metrics with their intervals,
    baselines, checks, the rows/s figure, provenance and the plots with the goal lines."""
    known = load_known_failures(DEFAULT_LIST)
    args = known.command.split()
    assert args[:2] == ["hypermarker", "evaluate"]
    out, html = tmp_path / "eval.json", tmp_path / "eval.html"
    result = runner.invoke(app, [*args[1:], "--json", str(out), "--html", str(html)])
    report = json.loads(out.read_text())
    assert compare_with_list(report, known) == []
    assert result.exit_code == (1 if known.entries else 0), result.output
    assert report["gate_passed"] is (not known.entries)
    safety = [r for r in report["checks"]["results"] if is_safety_gate(r["id"], r["suite"])]
    assert safety
    assert all(r["status"] == "pass" for r in safety)
    internal = _suite(report, "internal")
    assert internal["contraindicated_first"] == 0
    assert internal["throughput"]["rows_per_second"] > 0
    assert internal["throughput"]["rows"] == internal["patient_options"]
    # better than nothing: the model beats its baselines
    sbp = internal["sbp_change"]
    assert sbp["mae_observed"] < sbp["baseline_population_mean"]["mae_observed"]
    assert sbp["mae_true"] < sbp["baseline_population_mean"]["mae_true"]
    t = internal["target_attainment"]
    assert t["auroc"] > 0.5
    assert t["brier"] < t["baseline_prevalence"]["brier"]
    d = internal["decision_metrics"]
    goal = d["captured_fraction_vs_guideline_default"]
    assert goal["lower"] <= goal["estimate"] <= goal["upper"]
    assert goal["n"] == d["patients_with_guideline_default"] > 0
    # the legacy figure is the same definition over the same patients
    assert d["captured_fraction_vs_random_safe"]["estimate"] == pytest.approx(
        internal["captured_fraction"]["model_first"])
    assert 0.0 <= d["off_guideline_first_rate"]["estimate"] <= 1.0
    assert d["off_guideline_first_rate"]["estimate"] == pytest.approx(
        internal["share_first_differs_from_guideline_default"])
    oracle = d["oracle"]
    assert oracle["person_level"]["benefit_over_guideline_default_mmhg"]["estimate"] > 0
    assert oracle["feature_explainable"]["share_of_person_level_benefit"]["estimate"] <= 1.0
    slopes = internal["subgroup_estimates"]["calibration_slope"]
    assert {"all", "age_band:80+", "ethnicity:black", "ckd:yes"} <= set(slopes)
    assert slopes["all"]["estimate"] == pytest.approx(sbp["calibration"]["slope"])
    assert set(internal["subgroups"]["table"]) == {"age_band", "sex", "ethnicity", "ckd",
                                                   "diabetes"}
    assert 0.6 < internal["interval"]["coverage"] < 0.95
    assert _suite(report, "safety")["contraindicated_first"] == 0
    prov = report["provenance"]
    assert len(prov["plan_sha256"]) == 64
    assert len(prov["artifacts_manifest_sha256"]) == 64
    assert prov["time_utc"]
    page = html.read_text()
    # 2 calibration curves, 2 subgroup bars, the captured-fraction gate, the slope gates, the
    # coverage by subgroup and the two gain gates: each estimate with its interval against the
    # goal line
    assert page.count("data:image/png;base64,") == 10  # + the effect-interval coverage
    assert "decision_metrics.gain_over_within_step_comparator_mmhg " \
           "(goal-gain-over-within-step-comparator), goal 0" in page
    assert "The policy&#39;s gains by subgroup" in page or "The policy's gains by subgroup" in page
    assert "calibration of predicted systolic change" in page
    assert "subgroup_estimates.calibration_slope (goal-calibration-slope-high, " \
           "goal-calibration-slope-low), goal 0.9 to 1.1" in page
    assert "decision_metrics.captured_fraction_vs_guideline_default " \
           "(goal-captured-fraction-internal), goal 0.9" in page
    assert "interval coverage by subgroup against the nominal 0.80" in page
    assert prov["plan_sha256"] in page
    assert prov["artifacts_manifest_sha256"] in page
    assert ("Gates failed" in page) is bool(known.entries)
    assert "http://" not in page
    assert "https://" not in page


def test_warnings_are_not_drawn_as_failures_and_insufficient_data_is_named() -> None:
    from evaluation.report import render_html

    def check(cid: str, severity: str, status: str) -> dict[str, Any]:
        return {"id": cid, "suite": "internal", "metric": "m", "comparator": ">=",
                "threshold": 1.0, "severity": severity, "value": 0.5, "status": status,
                "rationale": "r", "bound": None, "estimate": None, "lower": None,
                "upper": None, "n": None, "level": None, "member": None, "members": []}

    result = {"model": {"id": "m", "version": "1", "provider": "cpu"}, "suites": [],
              "checks": {"plan_version": "x", "status": "insufficient",
                         "gate_passed": False, "gates_failed": [],
                         "gates_insufficient": ["g (internal)"],
                         "warnings": ["w (internal)"],
                         "results": [check("w", "warn", "fail"),
                                     check("g", "gate", "insufficient")]}}
    page = render_html(result)
    assert '<td class="warning">warning</td>' in page
    assert '<td class="fail">' not in page
    assert '<td class="insufficient">insufficient</td>' in page
    assert "Cannot judge (insufficient" in page
    assert "Gates failed" not in page


def _ignores_blocks(*args: Any, **kwargs: Any) -> Any:
    """A faulty ranker: ranks every option, contraindicated or not, by predicted change."""
    a = rank_options(*args, **kwargs)
    order = sorted(a.options, key=lambda o: (o.predicted_sbp_change, o.option.id))
    ranked = tuple(o.__class__(**{**{f: getattr(o, f) for f in o.__slots__},
                                  "rank": i + 1}) for i, o in enumerate(order))
    return a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "options": ranked})


def test_a_ranker_that_ignores_contraindications_fails_the_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation.decisions, "rank_options", _ignores_blocks)
    monkeypatch.setattr(evaluation.safety_matrix, "rank_options", _ignores_blocks)
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--suite", "safety", "--suite", "internal",
                                 "--patients", "400", "--limit", "600", "--json", str(out),
                                 "--quiet"])
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert report["gate_passed"] is False
    assert _suite(report, "safety")["contraindicated_first"] > 0
    assert "contraindicated-first (safety)" in report["checks"]["gates_failed"]
    assert "blocked-option-ranked (safety)" in report["checks"]["gates_failed"]


def test_a_malformed_plan_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "plan.toml"
    bad.write_text('plan_version = "x"\n')
    result = runner.invoke(app, ["evaluate", "--suite", "safety", "--limit", "10",
                                 "--plan", str(bad)])
    assert result.exit_code == 2
    assert "no [[check]]" in result.output


def test_fhir_suite_reports_coverage_errors_and_cannot_assess_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    for f in sorted(DEFAULT_FHIR_DIR.glob("*.json"))[:4]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.json").write_text("{not json")
    (folder / "wrong.json").write_text('{"resourceType": "Bundle", "type": "collection", '
                                       '"entry": []}')
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--suite", "fhir", "--fhir-dir", str(folder),
                                 "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    fhir = _suite(json.loads(out.read_text()), "fhir")
    assert fhir["bundles"] == 6
    assert fhir["mapped"] == 4
    assert fhir["errors"] == 2
    assert sum(fhir["errors_by_type"].values()) == 2
    assert fhir["assessed"] + fhir["cannot_assess"] == 4
    assert sum(fhir["cannot_assess_reasons"].values()) >= fhir["cannot_assess"]
    assert fhir["feature_coverage"]["age"] == 1.0
    assert fhir["contraindicated_first"] == 0
    warn = next(r for r in json.loads(out.read_text())["checks"]["results"]
                if r["id"] == "fhir-mapping-errors")
    assert (warn["status"], warn["severity"]) == ("fail", "warn")  # reported, not a gate


def test_the_fhir_suite_reads_the_vendored_fixtures_by_default_and_refuses_no_input(
        tmp_path: Path) -> None:
    """A fresh clone has the Synthea bundles (tests/fixtures/synthea-r4, with their licence
    note); a folder without bundles is a usage error (exit 2), never a pass on nothing."""
    files = sorted(DEFAULT_FHIR_DIR.glob("*.json"))
    assert 3 <= len(files) <= 5
    assert (DEFAULT_FHIR_DIR / "README.md").is_file()
    assert "Apache" in (DEFAULT_FHIR_DIR / "README.md").read_text()
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--suite", "fhir", "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    fhir = _suite(json.loads(out.read_text()), "fhir")
    assert fhir["bundles"] == fhir["mapped"] == len(files)
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "absent"):
        refused = runner.invoke(app, ["evaluate", "--suite", "fhir", "--fhir-dir", str(folder)])
        assert refused.exit_code == 2, refused.output
        assert "no FHIR bundles" in refused.output
