"""Target mode end to end: a real service on loopback (uvicorn in a thread) answers the
harness's signed CDS Hooks and FHIR operation requests, and its answers are scored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from typer.testing import CliRunner

import evaluation.target_fhir
from evaluation.cohort import feature_vector, simulated_case_set
from evaluation.decisions import run_decisions
from evaluation.fhir_generator import collection_bundle, patient_resources
from evaluation.fhir_suite import DEFAULT_FHIR_DIR
from evaluation.target_service import OPERATION_PATH, TargetClient, parse_operation
from hypermarker_cli.main import app
from models.assessment import assess
from models.explainer import Explainer
from models.guideline.profiles import PROFILES
from models.pipeline import Pipeline
from models.scorer import Scorer
from tests.service.live_server import serve

runner = CliRunner()
ISS = "https://ehr.example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("target"))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory,
               key: ec.EllipticCurvePrivateKey) -> Iterator[str]:
    jwk = dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True), kid="k1", alg="ES384",
               use="sig")
    yield from serve(tmp_path_factory.mktemp("target-jwt"), auth_mode="jwt",
                      public_base_url="BASE",
                      trusted_issuers=[{"iss": ISS, "jwks": {"keys": [jwk]}}])


def _suite(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["suites"] if s["suite"] == name)


def test_target_mode_scores_the_running_service(server: str, tmp_path: Path) -> None:
    """30 internal patients and a slice of the safety matrix through the service: exit 0,
    no contraindicated option first, first options equal to in-process, latency reported."""
    out = tmp_path / "target.json"
    result = runner.invoke(app, ["evaluate", "--suite", "internal", "--suite", "safety",
                                 "--patients", "30", "--limit", "60", "--target", server,
                                 "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "target"
    internal = _suite(report, "target:internal")
    assert internal["patients"] == 30
    assert internal["http_errors"] == 0
    assert internal["contraindicated_first"] == 0
    assert internal["agreement_with_in_process"] == 1.0
    assert internal["cards"]["with_card"] + internal["cards"]["without_card"] == 30
    assert internal["latency_ms"]["p50"] > 0
    assert internal["latency_ms"]["p99"] >= internal["latency_ms"]["p50"]
    assert internal["captured_fraction"]["model_first"] > 0.3
    safety = _suite(report, "target:safety")
    assert (safety["patients"], safety["contraindicated_first"]) == (60, 0)
    assert safety["agreement_with_in_process"] == 1.0
    assert report["gate_passed"] is True


def test_generated_records_reach_the_service_intact(server: str) -> None:
    """The service's first options agree with the in-process ranking of the simulated
    features (whole years of age aside, which can reorder near-ties)."""
    scorer = Scorer.load()
    cases = simulated_case_set("internal", 30, 77)
    in_process = run_decisions(cases, scorer, PROFILES["nice"])
    explainer = Explainer.load(scorer.manifest)
    agree = 0
    with TargetClient.create(server) as client:
        agree = _agreement(client, cases, scorer, explainer)
    assert in_process["patients"] == 30
    assert agree >= 27


def _agreement(client: TargetClient, cases: Any, scorer: Scorer, explainer: Any) -> int:
    agree = 0
    for i in range(30):
        p = feature_vector(cases.cohort.features[i], cases.cohort.current_doses[i])
        bundle = collection_bundle(patient_resources(p, f"x{i}", time_today()))
        code, body, _ = client.post(OPERATION_PATH, bundle)
        assert code == 200
        options, default, status = parse_operation(body)
        assert status == "success"
        local = assess(p, scorer, explainer, PROFILES["nice"], explain_top=0)
        if local.status == "pathway":  # a stop condition: neither side ranks anything
            assert not options
            agree += 1
            continue
        assert default is not None
        first = next(o.id for o in options if o.rank == 1)
        assert local.first is not None
        agree += first == local.first.option.id
    return agree


def time_today() -> date:
    return datetime.now(UTC).date()


def test_signed_requests_pass_a_jwt_service(jwt_server: str, key: ec.EllipticCurvePrivateKey,
                                            tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    out = tmp_path / "target.json"
    args = ["evaluate", "--suite", "internal", "--patients", "5", "--target", jwt_server,
            "--json", str(out), "--quiet"]
    unsigned = runner.invoke(app, args)
    assert unsigned.exit_code == 1  # every request refused: the http-errors gate fails
    assert _suite(json.loads(out.read_text()), "target:internal")["http_errors"] == 10
    signed = runner.invoke(app, [*args, "--private-key", str(pem), "--iss", ISS, "--kid",
                                 "k1"])
    # signed, every request is answered; of the gates only a decision metric may fail on
    # five patients (decision-captured-fraction is a known failure of the guideline-first
    # policy: evaluation/known_failures.toml), never a transport or safety gate
    report = json.loads(out.read_text())
    assert signed.exit_code in (0, 1), signed.output
    failed = report["checks"]["gates_failed"]
    assert all(g.startswith("decision-") for g in failed), failed
    internal = _suite(report, "target:internal")
    assert (internal["http_errors"], internal["contraindicated_first"]) == (0, 0)


def _fhir_folder(tmp_path: Path) -> Path:
    """Three Synthea bundles, one generated record dated today (assessed), one file that is
    not JSON and one empty Bundle (both refused)."""
    folder = tmp_path / "bundles"
    folder.mkdir()
    for f in sorted(DEFAULT_FHIR_DIR.glob("*.json"))[:3]:
        (folder / f.name).write_bytes(f.read_bytes())
    cases = simulated_case_set("internal", 1, 5)
    p = feature_vector(cases.cohort.features[0], cases.cohort.current_doses[0])
    (folder / "generated.json").write_text(json.dumps(
        collection_bundle(patient_resources(p, "gen-1", time_today()))))
    (folder / "broken.json").write_text("{not json")
    (folder / "wrong.json").write_text('{"resourceType": "Bundle", "type": "collection", '
                                       '"entry": []}')
    return folder


@pytest.mark.skipif(not DEFAULT_FHIR_DIR.is_dir(), reason="Synthea fixtures not found")
def test_fhir_suite_against_the_running_service(server: str, tmp_path: Path) -> None:
    """Every bundle goes to the service as a CDS Hooks prefetch and to the FHIR operation;
    its coverage, refusals and cannot-assess reasons equal the in-process answers of today."""
    folder = _fhir_folder(tmp_path)
    out = tmp_path / "fhir.json"
    result = runner.invoke(app, ["evaluate", "--suite", "fhir", "--fhir-dir", str(folder),
                                 "--target", server, "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    fhir = _suite(report, "target:fhir")
    assert fhir["as_of"] == time_today().isoformat()
    assert fhir["bundles"] == 6
    assert fhir["disagreements"] == []
    assert fhir["agreement_with_in_process"] == 1.0
    assert (fhir["errors"], fhir["http_errors"], fhir["mapped"]) == (2, 0, 4)
    assert fhir["assessed"] == 1  # the generated record; the Synthea BP readings are years old
    assert fhir["cannot_assess"] == 3
    assert any("no clinic blood pressure in the last 12 months" in r
               for r in fhir["cannot_assess_reasons"])
    assert fhir["cannot_assess_reasons"] == fhir["in_process"]["cannot_assess_reasons"]
    assert fhir["cds_hooks"]["sent"] == 5  # the file that is not JSON cannot be split
    assert fhir["cds_hooks"]["by_status"] == {"cannot_assess": 3, "assessed": 1, "refused": 1}
    assert fhir["contraindicated_first"] == 0
    generated = next(b for b in fhir["bundles_detail"] if b["file"] == "generated.json")
    assert generated["operation"]["first_option"] == generated["in_process"]["first_option"]
    assert generated["operation"]["first_option"] is not None
    assert fhir["latency_ms"]["p50"] > 0
    checks = {(r["id"], r["suite"]): r["status"] for r in report["checks"]["results"]}
    assert checks[("target-agrees-with-in-process", "target:fhir")] == "pass"
    assert checks[("fhir-mapping-errors", "target:fhir")] == "fail"  # a warning, not a gate
    assert report["gate_passed"] is True


@pytest.mark.skipif(not DEFAULT_FHIR_DIR.is_dir(), reason="Synthea fixtures not found")
def test_fhir_suite_disagreement_with_the_service_fails_the_gate(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness judging the bundles on another day than the service (a planted fault)
    disagrees on the record the service assessed: the gate fails and names the bundle."""
    class AYearLate(Pipeline):
        def assess_fhir(self, data: Any, as_of: date | None = None, *args: Any,
                        **kwargs: Any) -> Any:
            day = (as_of or time_today()) + timedelta(days=400)
            return super().assess_fhir(data, day, *args, **kwargs)

    monkeypatch.setattr(evaluation.target_fhir, "Pipeline", AYearLate)
    out = tmp_path / "fhir.json"
    result = runner.invoke(app, ["evaluate", "--suite", "fhir", "--fhir-dir",
                                 str(_fhir_folder(tmp_path)), "--target", server, "--json",
                                 str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert "target-agrees-with-in-process (target:fhir)" in report["checks"]["gates_failed"]
    fhir = _suite(report, "target:fhir")
    assert {d["file"] for d in fhir["disagreements"]} == {"generated.json"}
    assert {d["call"] for d in fhir["disagreements"]} == {"operation", "cds-hooks"}


def test_fhir_suite_in_target_mode_refuses_an_as_of_date(server: str) -> None:
    result = runner.invoke(app, ["evaluate", "--suite", "fhir", "--target", server,
                                 "--as-of", "2020-01-01"])
    assert result.exit_code == 2
    assert "--as-of applies in-process only" in result.output
