"""The FHIR-native operation and the SMART panel (launch, token exchange, rendering)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from tests.service.conftest import example_request

OP = "/fhir/$hypertension-options"


def _bundle() -> dict[str, Any]:
    pf = example_request()["prefetch"]
    entries = [{"resource": pf["patient"]}]
    for k, v in pf.items():
        if k != "patient":
            entries += v["entry"]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_the_operation_returns_a_valid_fhir_bundle(client: TestClient) -> None:
    r = client.post(OP, json=_bundle())

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
    bundle = _bundle()
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
        {"name": "patientData", "resource": _bundle()},
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


class _Ehr:
    """A SMART authorization server on loopback: configuration, authorize, token."""

    def __init__(self, app_context: str, patient: str) -> None:
        self.app_context, self.patient = app_context, patient
        self.token_requests: list[dict[str, list[str]]] = []
        ehr = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.endswith("/.well-known/smart-configuration"):
                    self._json({"authorization_endpoint": ehr.url + "/authorize",
                                "token_endpoint": ehr.url + "/token"})

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                ehr.token_requests.append(form)
                self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 60,
                            "patient": ehr.patient, "appContext": ehr.app_context})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def card_link(client: TestClient) -> dict[str, Any]:
    card = client.post("/cds-services/hypertension-treatment", json=example_request()).json()[
        "cards"][0]
    link: dict[str, Any] = card["links"][0]
    return link


def _launch(client: TestClient, ehr: _Ehr) -> Any:
    r = client.get("/panel/launch", params={"iss": ehr.url, "launch": "xyz"},
                   follow_redirects=False)
    assert r.status_code == 302
    auth = urlsplit(r.headers["location"])
    q = parse_qs(auth.query)
    assert auth.path == "/authorize"
    assert q["code_challenge_method"] == ["S256"]
    assert q["launch"] == ["xyz"]
    return client.get("/panel/callback", params={"code": "c1", "state": q["state"][0]},
                      follow_redirects=False)


@pytest.fixture
def ehr_for(card_link: dict[str, Any]) -> Iterator[Any]:
    made: list[_Ehr] = []

    def make(patient: str) -> _Ehr:
        made.append(_Ehr(card_link["appContext"], patient))
        return made[-1]

    yield make
    for e in made:
        e.close()


def test_smart_launch_shows_the_panel_for_the_patient_in_context(
        client: TestClient, ehr_for: Any) -> None:
    """EHR launch -> authorize (PKCE) -> token with appContext -> the rendered panel."""
    ehr = ehr_for("example-patient-1")

    r = _launch(client, ehr)

    assert r.status_code == 303, r.text
    assert ehr.token_requests[0]["code_verifier"]
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "Hypertension treatment options" in page.text
    assert "not clinically validated" in page.text
    assert "contraindicated" in page.text
    assert "<script" not in page.text


def test_the_panel_refuses_another_patient(client: TestClient, ehr_for: Any) -> None:
    """A token for a different patient than the assessment's never shows the panel."""
    r = _launch(client, ehr_for("someone-else"))

    assert r.status_code == 401


def test_an_unknown_panel_token_is_404(client: TestClient) -> None:
    assert client.get("/panel/view/nope").status_code == 404
    assert client.get("/panel/callback", params={"code": "c", "state": "forged"}
                      ).status_code == 401
