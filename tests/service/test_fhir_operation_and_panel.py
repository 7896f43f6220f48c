"""The FHIR-native operation (the SMART panel: tests/service/test_panel_launch.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from tests.service.conftest import example_bundle

OP = "/fhir/$hypertension-options"


def test_the_operation_returns_a_valid_fhir_bundle(client: TestClient) -> None:
    r = client.post(OP, json=example_bundle())

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    Bundle.model_validate(body)
    types = [e["resource"]["resourceType"] for e in body["entry"]]
    assert types[0] == "GuidanceResponse"
    assert body["entry"][0]["resource"]["status"] == "success"
    assert types.count("RiskAssessment") >= 10
    issues = [e["resource"] for e in body["entry"]
              if e["resource"]["resourceType"] == "DetectedIssue"]
    assert any(i["severity"] == "high" and "Asthma" in i["detail"] for i in issues)


def test_the_operation_is_audited_before_the_response(client: TestClient) -> None:
    """Like a CDS Hooks call, the FHIR operation leaves an audit record (keyed by the request
    id it returns in X-Request-ID and GuidanceResponse.requestIdentifier), without the id."""
    bundle = example_bundle()
    r = client.post(OP, json=bundle)

    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    guidance = r.json()["entry"][0]["resource"]
    assert guidance["requestIdentifier"]["value"] == request_id
    rec = client.app.state.hm.store.assessment(request_id)  # type: ignore[attr-defined]
    assert rec is not None
    assert (rec.hook, rec.service_id, rec.cards) == ("$hypertension-options",
                                                     "$hypertension-options", [])
    assert rec.status == "assessed"
    assert rec.options[0]["rank"] == 1
    patient_id = bundle["entry"][0]["resource"]["id"]
    assert patient_id not in rec.patient_ref
    assert rec.features["age"] is not None


def test_parameters_input_and_guideline_choice(client: TestClient) -> None:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patientData", "resource": example_bundle()},
        {"name": "guideline", "valueCode": "esc"}]}

    r = client.post(OP, json=params)

    assert r.status_code == 200, r.text
    note = r.json()["entry"][0]["resource"]["note"][0]["text"]
    assert "below 130/80" in note


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Parameters", "parameter": [{"name": "other"}]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Patient", "id": "p", "birthDate": "not-a-date"}}]},
    [1, 2, 3],
])
def test_bad_operation_input_is_a_400_outcome(client: TestClient, body: Any) -> None:
    r = client.post(OP, json=body)

    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
