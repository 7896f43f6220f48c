"""CDS Hooks contract: discovery, service calls, cards, feedback, errors (cdshooks.md 1.1-1.11)."""

from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audit_store.store import AuditUnavailable
from service.app import create_app
from service.schemas.cds_hooks import Card
from tests.service.conftest import example_request, example_shift_days, local_settings

URL = "/cds-services/hypertension-treatment"


def _outcome(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    return body


def test_discovery_lists_three_hooks_with_prefetch(client: TestClient) -> None:
    """GET /cds-services: patient-view, order-select, order-sign with prefetch templates."""
    r = client.get("/cds-services")

    assert r.status_code == 200
    services = r.json()["services"]
    assert {s["hook"] for s in services} == {"patient-view", "order-select", "order-sign"}
    for s in services:
        assert {"id", "hook", "description", "title", "prefetch"} <= set(s)
        assert set(s["prefetch"]) == {"patient", "bp", "labs", "conditions", "medications",
                                      "statements", "allergies"}
        assert all("{{context.patientId}}" in q for q in s["prefetch"].values())
        assert None not in s.values()


def test_patient_view_returns_one_card_meeting_the_invariants(client: TestClient) -> None:
    """One info card: uuid, summary < 140, source with model version, override reasons with
    display, a smart link with appContext, markdown detail with ranked options and citations."""
    r = client.post(URL, json=example_request())

    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    Card.model_validate(card)
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] == "info"
    assert "hypermarker-sbp-response 2.0.0" in card["source"]["label"]
    assert all(o["display"] for o in card["overrideReasons"])
    (link,) = card["links"]
    assert link["type"] == "smart"
    assert "assessment" in link["appContext"]
    assert "| 1 |" in card["detail"]
    assert "NICE NG136" in card["detail"]
    assert "Asthma: beta-blockers should be avoided" in card["detail"]
    assert "not clinically validated" in card["detail"]
    assert "suggestions" not in card  # patient-view: informational only
    assert not any(v is None or v == [] for v in card.values())


def test_the_call_is_audited_before_the_response(client: TestClient) -> None:
    """The assessment is in the audit store when the response arrives, without patient ids."""
    req = example_request()
    r = client.post(URL, json=req)
    assert r.status_code == 200

    store = client.app.state.hm.store  # type: ignore[attr-defined]
    recs = [a for a in store.assessments() if a.hook_instance == req["hookInstance"]]
    assert len(recs) == 1
    rec = recs[0]
    assert rec.model_version == "2.0.0"
    assert rec.cards[0]["uuid"] == r.json()["cards"][0]["uuid"]
    assert req["context"]["patientId"] not in rec.patient_ref
    assert rec.options
    assert rec.features["age"] is not None


def test_a_resent_hook_instance_is_answered_and_audited_again(client: TestClient) -> None:
    """A client retrying with the same hookInstance gets a new answer (new request id, new card
    uuid) and both answers are in the audit store: nothing shown goes unrecorded."""
    req = example_request()

    first = client.post(URL, json=req)
    second = client.post(URL, json=req)

    assert (first.status_code, second.status_code) == (200, 200)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    store = client.app.state.hm.store  # type: ignore[attr-defined]
    recs = [a for a in store.assessments() if a.hook_instance == req["hookInstance"]]
    assert sorted(r.request_id for r in recs) == sorted(ids)
    for r in (first, second):
        card_uuid = r.json()["cards"][0]["uuid"]
        rec = store.assessment_for_card(card_uuid)
        assert rec is not None
        assert rec.request_id == r.headers["x-request-id"]


def test_no_card_is_sent_when_its_audit_record_cannot_be_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the database nor the spool can keep the record: a retryable 503
    OperationOutcome, never a 500 and never an unaudited card."""
    with TestClient(create_app(local_settings(tmp_path)), raise_server_exceptions=False) as c:
        def refuse(*_args: object) -> str:
            raise AuditUnavailable("database and spool both failed")

        monkeypatch.setattr(c.app.state.hm.store, "record_assessment", refuse)  # type: ignore[attr-defined]
        r = c.post(URL, json=example_request())

    assert r.status_code == 503
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "transient"
    assert "cards" not in body


def test_the_bp_a_call_shows_is_kept_once_as_an_observed_outcome(client: TestClient) -> None:
    """The clinic SBP the model took as baseline (the latest consultation's reading, its
    date; the earlier visit's lower 158 is not combined with it) is stored as an outcome for
    the monitor's realised calibration; seen again by a later call it is not stored twice."""
    req = example_request()
    store = client.app.state.hm.store  # type: ignore[attr-defined]

    for _ in range(2):
        assert client.post(URL, json=dict(req, hookInstance=str(uuid.uuid4()))).status_code == 200

    ref = client.app.state.hm.patient_ref(req["context"]["patientId"])  # type: ignore[attr-defined]
    seen = [(o.setting, o.sbp, o.observed_at.date().isoformat())
            for o in store.outcomes() if o.patient_ref == ref]
    reading_day = date(2026, 11, 16) + timedelta(days=example_shift_days())
    assert seen == [("clinic", 162.0, reading_day.isoformat())]


def test_feedback_is_idempotent(client: TestClient) -> None:
    """The same feedback twice is stored once; an override reason is recorded."""
    card = client.post(URL, json=example_request()).json()["cards"][0]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                        "overrideReason": {"reason": card["overrideReasons"][0]},
                        "outcomeTimestamp": "2026-11-24T10:00:00Z"}]}

    first = client.post(URL + "/feedback", json=fb)
    second = client.post(URL + "/feedback", json=fb)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"stored": 1, "duplicates": 0, "unverified": 0}
    assert second.json() == {"stored": 0, "duplicates": 1, "unverified": 0}


@pytest.mark.parametrize(("item", "rule"), [
    ({"outcome": "accepted"}, "cds-fb-2"),
    ({"outcome": "overridden", "overrideReason": {}}, "cds-fb-3"),
    ({"outcome": "maybe"}, "outcome"),
])
def test_invalid_feedback_is_a_400_outcome(client: TestClient, item: dict[str, Any],
                                           rule: str) -> None:
    fb = {"feedback": [{"card": "x", "outcomeTimestamp": "2026-11-24T10:00:00Z", **item}]}

    body = _outcome(client.post(URL + "/feedback", json=fb), 400)

    assert rule in body["issue"][0]["diagnostics"]


def test_cds_r_1_fhir_authorization_requires_fhir_server(client: TestClient) -> None:
    req = example_request(fhirAuthorization={"access_token": "t", "token_type": "Bearer",
                                             "expires_in": 30, "scope": "x", "subject": "s"})
    del req["fhirServer"]

    body = _outcome(client.post(URL, json=req), 400)

    assert "cds-r-1" in body["issue"][0]["diagnostics"]


def test_missing_required_data_without_a_fhir_server_is_412(client: TestClient) -> None:
    req = example_request()
    del req["prefetch"]["bp"]

    body = _outcome(client.post(URL, json=req), 412)

    assert "bp" in body["issue"][0]["diagnostics"]


def test_prefetch_null_patient_is_412(client: TestClient) -> None:
    """A null patient key means "no such patient": nothing to assess."""
    req = example_request()
    req["prefetch"]["patient"] = None

    r = client.post(URL, json=req)

    assert r.status_code in (400, 412)
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("mutate", "status"), [
    (lambda r: r.pop("context"), 400),
    (lambda r: r.__setitem__("hook", "order-sign"), 400),
    (lambda r: r["context"].__setitem__("patientId", "../../etc"), 400),
    (lambda r: r["prefetch"].__setitem__("patient", {"resourceType": "Patient",
                                                     "id": "example-patient-1",
                                                     "birthDate": 12}), 400),
    (lambda r: r["prefetch"].__setitem__("bp", "not a bundle"), 400),
])
def test_bad_requests_get_an_operation_outcome(client: TestClient, mutate: Any,
                                               status: int) -> None:
    req = example_request()
    mutate(req)

    _outcome(client.post(URL, json=req), status)


def test_malformed_json_unknown_service_and_oversize(client: TestClient) -> None:
    _outcome(client.post(URL, content=b"{nope", headers={"content-type": "application/json"}),
             400)
    _outcome(client.post("/cds-services/nope", json=example_request()), 404)
    big = b'{"x": "' + b"a" * 9_000_000 + b'"}'
    _outcome(client.post(URL, content=big, headers={"content-type": "application/json"}), 413)


def _order_request(drug_code: str, display: str, hook: str = "order-sign") -> dict[str, Any]:
    req = example_request(hook=hook)
    draft = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
             "intent": "order", "subject": {"reference": "Patient/example-patient-1"},
             "medicationCodeableConcept": {"coding": [
                 {"system": "http://snomed.info/sct", "code": drug_code, "display": display}]}}
    req["context"] = {**req["context"], "draftOrders": {
        "resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}
    if hook == "order-select":
        req["context"]["selections"] = ["MedicationRequest/draft-1"]
    return req


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_ordering_a_contraindicated_drug_gets_a_critical_card_with_a_safe_suggestion(
        client: TestClient, hook: str) -> None:
    """Bisoprolol for a patient with asthma: critical, with the top safe option suggested."""
    service = {"order-sign": "hypertension-order-sign",
               "order-select": "hypertension-order-select"}[hook]
    r = client.post(f"/cds-services/{service}",
                    json=_order_request("318590006", "Bisoprolol 5mg tablets", hook))

    assert r.status_code == 200, r.text
    (card,) = r.json()["cards"]
    Card.model_validate(card)
    assert card["indicator"] == "critical"
    assert "contraindicated" in card["summary"]
    assert card["selectionBehavior"] == "at-most-one"
    recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
    assert len(recommended) == 1
    action = recommended[0]["actions"][0]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "draft-1"
    codings = action["resource"]["medicationCodeableConcept"]["coding"]
    assert "bisoprolol" not in str(codings).lower()
    assert all(s["uuid"] for s in card["suggestions"])
    assert "option" not in str(card["suggestions"])  # our option ids stay in the audit
    rec = client.app.state.hm.store.assessment(r.headers["x-request-id"])  # type: ignore[attr-defined]
    recorded = rec.cards[0]["suggestions"]
    assert [x["uuid"] for x in recorded] == [s["uuid"] for s in card["suggestions"]]
    rank = {o["id"]: o["rank"] for o in rec.options}
    ranks = [rank[x["option"]] for x in recorded]  # each names a ranked (safe) option,
    assert None not in ranks
    assert ranks == sorted(ranks)  # the recommended one first


def test_ordering_a_safe_drug_is_informational(client: TestClient) -> None:
    r = client.post("/cds-services/hypertension-order-sign",
                    json=_order_request("317956008", "Indapamide 2.5mg tablets"))

    (card,) = r.json()["cards"]
    assert card["indicator"] == "info"


def test_cannot_assess_is_an_honest_card(client: TestClient) -> None:
    """A deceased patient gets a 'not assessed' card with the reason, no ranking."""
    req = example_request()
    req["prefetch"]["patient"] = {**req["prefetch"]["patient"], "deceasedBoolean": True}

    (card,) = client.post(URL, json=req).json()["cards"]

    assert "not assessed" in card["summary"]
    assert "deceased" in card["summary"]


def test_health_and_metrics(client: TestClient) -> None:
    client.post(URL, json=example_request())

    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["model"]["verified"] is True
    assert ready.json()["model"]["provider"] == "CPUExecutionProvider"
    text = client.get("/metrics").text
    assert 'hypermarker_cards_total{indicator="info"}' in text
    assert "hypermarker_request_seconds_bucket" in text
    assert 'provider="CPUExecutionProvider"' in text


def test_every_response_card_satisfies_the_response_invariants(client: TestClient) -> None:
    """cds-resp-2..6 on the cards of every hook."""
    bodies = [client.post(URL, json=example_request()).json(),
              client.post("/cds-services/hypertension-order-sign",
                          json=_order_request("318590006", "Bisoprolol")).json()]
    for body in bodies:
        for card in body["cards"]:
            Card.model_validate(copy.deepcopy(card))
            if card.get("suggestions"):
                assert card["selectionBehavior"] in ("at-most-one", "any")
                for s in card["suggestions"]:
                    for a in s.get("actions", []):
                        assert a["description"]
                        if a["type"] == "delete":
                            assert a["resourceId"]
            for link in card.get("links", []):
                assert "appContext" not in link or link["type"] == "smart"


def test_the_card_shows_the_expected_effect_and_labels_the_reading_range(
        client: TestClient) -> None:
    """Issue 15 item 3 (H-31): the table's effect is the expected effect with its interval for
    a patient like this (about 9 mmHg wide, not the ~36 mmHg of one reading); the range of one
    clinic reading is named as such; "P(target)" and internal ids appear nowhere."""
    import re

    card = client.post(URL, json=example_request()).json()["cards"][0]
    detail: str = card["detail"]
    assert "expected effect on systolic BP" in detail
    row = next(line for line in detail.splitlines() if line.startswith("| 1 |"))
    lo, hi = (float(v) for v in re.findall(r"80%: ([-+]\d+\.\d) to ([-+]\d+\.\d)", row)[0])
    assert hi - lo < 20
    assert "one clinic reading at 12 weeks: 80% between" in detail
    assert "not the drug's effect" in detail
    assert "P(target)" not in detail
    text = card["summary"] + detail
    for internal in ("opt-", "sbp_home", "dbp_home", "x1", "CPUExecutionProvider",
                     "option itself", "current regimen"):
        assert internal not in text
