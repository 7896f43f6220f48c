"""`hypermarker evaluate` end to end in-process: the CI gate on a small run, the report
shapes, a planted faulty ranker failing the gate, and the FHIR suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import evaluation.decisions
import evaluation.safety_matrix
from evaluation.fhir_suite import DEFAULT_FHIR_DIR
from hypermarker_cli.main import app
from models.assessment import rank_options

runner = CliRunner()


def _suite(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["suites"] if s["suite"] == name)


def test_every_check_of_the_plan_is_evaluated_on_every_suite_it_names(tmp_path: Path) -> None:
    """A normal in-process run of every suite judges each check of the bundled plan on each
    suite it names that ran, pass or fail, never skipped: a check whose metric a suite no
    longer reports cannot vanish from the gate (it would raise a plan error instead)."""
    from evaluation.plan import DEFAULT_PLAN, load_plan

    out = tmp_path / "eval.json"
    suites = ["internal", "external", "safety", "fhir"]
    result = runner.invoke(app, ["evaluate", *(a for s in suites for a in ("--suite", s)),
                                 "--patients", "300", "--limit", "300", "--json", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    checks = json.loads(out.read_text())["checks"]
    judged = {(r["id"], r["suite"]): r["status"] for r in checks["results"]}
    expected = {(c.id, s) for c in load_plan(DEFAULT_PLAN).checks for s in c.suites
                if s in suites}
    assert set(judged) == expected
    assert all(status in ("pass", "fail") for status in judged.values()), judged
    assert checks["counts"]["skipped"] == 0
    assert len(checks["results"]) == len(expected)


def test_small_evaluation_is_a_passing_ci_gate(tmp_path: Path) -> None:
    """The CI gate: internal + safety at small sizes exit 0 and every gate passes; the
    reports carry the metrics, baselines, checks, the rows/s figure and the plots."""
    out, html = tmp_path / "eval.json", tmp_path / "eval.html"
    result = runner.invoke(app, ["evaluate", "--suite", "internal", "--suite", "safety",
                                 "--patients", "1500", "--limit", "2000", "--json", str(out),
                                 "--html", str(html), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["gate_passed"] is True
    assert report["checks"]["gates_failed"] == []
    assert report["checks"]["counts"]["pass"] >= 10
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
    assert internal["captured_fraction"]["model_first"] > internal["captured_fraction"][
        "guideline_default"]
    assert set(internal["subgroups"]["table"]) == {"age_band", "sex", "ethnicity", "ckd",
                                                   "diabetes"}
    assert internal["subgroups"]["largest_gap"]["mae_true"]["gap"] >= 0
    assert 0.6 < internal["interval"]["coverage"] < 0.95
    assert _suite(report, "safety")["contraindicated_first"] == 0
    page = html.read_text()
    assert page.count("data:image/png;base64,") == 4  # 2 calibration curves, 2 subgroup bars
    assert "calibration of predicted systolic change" in page
    assert "All safety gates passed" in page
    assert "http://" not in page
    assert "https://" not in page


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


@pytest.mark.skipif(not DEFAULT_FHIR_DIR.is_dir(), reason="Synthea fixtures not found")
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
