"""`hypermarker assess --features` and `hypermarker evaluate` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypermarker_cli.main import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "features-step2.json"


def test_assess_prints_the_assessment_document() -> None:
    """JSON output: the asthma patient's beta-blocker is contraindicated and unranked."""
    result = runner.invoke(app, ["assess", "--features", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "assessed"
    bb = next(o for o in doc["options"] if o["id"] == "opt-add-beta_blocker")
    assert (bb["rank"], bb["status"]) == (None, "contraindicated")
    assert doc["options"][0]["rank"] == 1
    assert set(doc["guideline_default"]) == {"opt-add-ccb", "opt-add-thiazide_like"}


def test_assess_text_format_is_readable() -> None:
    """Text output names the target, the guideline step and the contraindication."""
    result = runner.invoke(app, ["assess", "--features", str(EXAMPLE), "--format", "text"])

    assert result.exit_code == 0, result.output
    assert "Target: below 140/90 mmHg" in result.output
    assert "CONTRAINDICATED" in result.output
    assert "not clinically validated" in result.output


def test_assess_with_the_esc_profile() -> None:
    result = runner.invoke(app, ["assess", "--features", str(EXAMPLE), "--guideline", "esc"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["target"]["systolic"] == 130


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"features": {"potassium": 40}}', "potassium=40"),
    ('{"features": {"eye_colour": 1}}', "unknown feature"),
    ('{"current_regimen": {"aspirin": 1}}', "unknown drug class"),
    ('{"features": {"age": "old"}}', "expected a number"),
    ("[]", "JSON object"),
])
def test_bad_features_documents_get_a_clear_error(tmp_path: Path, content: str, message: str
                                                  ) -> None:
    """Malformed input exits with status 2 and the reason, never a traceback."""
    f = tmp_path / "bad.json"
    f.write_text(content)

    result = runner.invoke(app, ["assess", "--features", str(f)])

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_evaluate_safety_gate_passes_on_a_slice_of_the_matrix(tmp_path: Path) -> None:
    """A slice of the safety matrix and a small site: zero contraindicated-first and every
    safety gate passes; the goal of capturing 90% of the benefit over the guideline default is
    missed (captured fraction about 0.6), so the command exits 1: deployment is blocked."""
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate", "--suite", "safety", "--suite", "internal",
                                 "--patients", "300", "--limit", "1500", "--json", str(out)])

    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert report["gate_passed"] is False
    assert "goal-captured-fraction-internal (internal)" in report["checks"]["gates_failed"]
    status = {(r["id"], r["suite"]): r["status"] for r in report["checks"]["results"]}
    assert status[("contraindicated-first", "safety")] == "pass"
    assert status[("contraindicated-first", "internal")] == "pass"
    assert status[("blocked-option-ranked", "safety")] == "pass"
    assert report["total_contraindicated_first"] == 0
    assert report["total_patients"] == 1800
    internal = report["suites"][1]
    assert internal["mean_true_change"]["model_first"] < internal["mean_true_change"][
        "random_safe_option"]


SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "synthea-r4"


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"Synthea fixtures not found at {SYNTHEA}")
@pytest.mark.parametrize("as_of", ["2021-03-01", None])
def test_every_synthea_bundle_gives_an_assessment_or_an_honest_cannot_assess(
        as_of: str | None) -> None:
    """`hypermarker assess FILE.json` on every fixture: exit 0, and either ranked options with
    no contraindicated option first, or cannot_assess with reasons."""
    statuses = []
    for f in sorted(SYNTHEA.glob("*.json")):
        args = ["assess", str(f)] + (["--as-of", as_of] if as_of else [])
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (f.name, result.output)
        doc = json.loads(result.output)
        statuses.append(doc["status"])
        if doc["status"] == "assessed":
            assert doc["options"][0]["status"] != "contraindicated"
        else:
            assert doc["reasons"]
            assert doc["options"] == []
    assert len(statuses) == 12
    if as_of == "2021-03-01":
        assert "assessed" in statuses


def test_assess_rejects_non_fhir_json_with_a_reason(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
                 '{"resourceType": "Observation", "status": "final"}}]}')

    result = runner.invoke(app, ["assess", str(f)])

    assert result.exit_code == 2
    assert "error:" in result.output
