"""Feedback is checked against the audit record of its card (issue 12, deliverable 3): a card
this service issued, to this service, its own suggestions, an override reason it offered (whose
display is stored); anything else is a 409 OperationOutcome and nothing of the batch is
stored. Feedback on a card whose assessment is still in the spool is kept, unverified."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit_store.records import CARD_OVERRIDE_REASONS, AssessmentRecord, FeedbackRecord
from audit_store.schema import feedback as feedback_table
from audit_store.spool import Spool
from audit_store.store import AuditStore
from service.app import create_app
from service.cards import OVERRIDE_SYSTEM
from tests.audit_store import factories
from tests.service.conftest import example_request, local_settings

SERVICE = "hypertension-treatment"
URL = f"/cds-services/{SERVICE}"
FEEDBACK = URL + "/feedback"


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(local_settings(tmp_path)), raise_server_exceptions=False) as c:
        yield c


def _store(client: TestClient) -> AuditStore:
    store: AuditStore = client.app.state.hm.store  # type: ignore[attr-defined]
    return store


def _card(client: TestClient) -> dict[str, Any]:
    r = client.post(URL, json=example_request())
    assert r.status_code == 200, r.text
    card: dict[str, Any] = r.json()["cards"][0]
    return card


def _item(card: str, *, at: str = "2026-11-24T10:00:00Z", **fields: Any) -> dict[str, Any]:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": at, **fields}


def _reason(code: str, **fields: Any) -> dict[str, Any]:
    return {"reason": {"code": code, **fields}}


def _stored(client: TestClient, card: str) -> list[FeedbackRecord]:
    return [f for f in _store(client).feedback() if f.card_uuid == card]


def _count(client: TestClient) -> int:
    with _store(client).engine.connect() as conn:
        n: int = conn.execute(select(func.count()).select_from(feedback_table)).scalar_one()
    return n


def _refused(r: Any, status: int, code: str, expression: str) -> str:
    """The OperationOutcome's diagnostics, after checking status, code and where it points
    (``expression`` is matched as a substring)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    issue = r.json()["issue"][0]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert issue["code"] == code
    assert expression in issue["expression"][0]
    diagnostics: str = issue["diagnostics"]
    return diagnostics


def _issued(store: AuditStore, *, service_id: str = SERVICE, suggestions: list[str] | None = None,
            reasons: list[dict[str, str]] | None = None) -> str:
    """Record an assessment whose one card is as given; returns the card uuid."""
    card = str(uuid.uuid4())
    entry: dict[str, Any] = {"uuid": card, "indicator": "info", "summary": "s",
                             "suggestions": [{"uuid": s, "option": "add_ccb"}
                                             for s in suggestions or []]}
    if reasons is not None:
        entry[CARD_OVERRIDE_REASONS] = reasons
    rec = factories.assessment(0)
    rec = AssessmentRecord(**{**rec.to_dict(), "request_id": str(uuid.uuid4()),
                              "service_id": service_id, "cards": [entry],
                              "received_at": rec.received_at})
    assert store.record_assessment(rec) == "database"
    return card


def test_feedback_on_a_card_never_issued_is_refused(client: TestClient) -> None:
    unknown = str(uuid.uuid4())
    before = _count(client)

    r = client.post(FEEDBACK, json={"feedback": [
        _item(unknown, overrideReason=_reason("patient-refuses"))]})

    _refused(r, 409, "not-found", "feedback[0].card")
    assert _count(client) == before


def test_feedback_posted_to_another_service_is_refused(client: TestClient) -> None:
    card = _card(client)["uuid"]

    r = client.post("/cds-services/hypertension-order-sign/feedback", json={"feedback": [
        _item(card, overrideReason=_reason("patient-refuses"))]})

    assert "another CDS service" in _refused(r, 409, "business-rule", "feedback[0].card")
    assert _stored(client, card) == []


@pytest.mark.parametrize("reason", [
    _reason("free text the client made up"),
    _reason("patient-refuses", system="http://example.org/other-system"),
])
def test_a_reason_the_card_did_not_offer_is_refused(client: TestClient,
                                                    reason: dict[str, Any]) -> None:
    card = _card(client)["uuid"]

    r = client.post(FEEDBACK, json={"feedback": [_item(card, overrideReason=reason)]})

    _refused(r, 409, "code-invalid", "feedback[0].overrideReason.reason")
    assert _stored(client, card) == []


def test_the_offered_reason_is_stored_with_its_display(client: TestClient) -> None:
    """The client sends the code only: the record has the offered system and display."""
    card = _card(client)
    offered = {o["code"]: o for o in card["overrideReasons"]}["patient-refuses"]

    r = client.post(FEEDBACK, json={"feedback": [
        _item(card["uuid"], overrideReason=_reason("patient-refuses"))]})

    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 1, "duplicates": 0, "unverified": 0}
    [rec] = _stored(client, card["uuid"])
    assert (rec.override_reason_code, rec.override_reason_system,
            rec.override_reason_display) == ("patient-refuses", offered["system"],
                                             offered["display"])
    assert rec.override_reason_display == "Patient declines"
    assert rec.verified is True


def test_a_comment_without_a_coded_reason_is_kept(client: TestClient) -> None:
    card = _card(client)["uuid"]

    r = client.post(FEEDBACK, json={"feedback": [
        _item(card, overrideReason={"userComment": "discussed with the patient"})]})

    assert r.status_code == 200, r.text
    [rec] = _stored(client, card)
    assert rec.override_reason_code is None
    assert rec.user_comment == "discussed with the patient"


def test_reasons_are_those_the_card_record_lists(client: TestClient) -> None:
    """A card whose record lists the reasons it offered is held to exactly those (a card that
    offered none takes a comment but no coded reason)."""
    store = _store(client)
    one = _issued(store, reasons=[{"code": "patient-refuses", "system": OVERRIDE_SYSTEM,
                                   "display": "Patient declines"}])
    none = _issued(store, reasons=[])

    assert client.post(FEEDBACK, json={"feedback": [
        _item(one, overrideReason=_reason("need-more-info"))]}).status_code == 409
    assert client.post(FEEDBACK, json={"feedback": [
        _item(none, overrideReason=_reason("patient-refuses"))]}).status_code == 409
    ok = client.post(FEEDBACK, json={"feedback": [
        _item(one, overrideReason=_reason("patient-refuses", display="No")),
        _item(none, overrideReason={"userComment": "not relevant today"})]})

    assert ok.status_code == 200, ok.text
    assert _stored(client, one)[0].override_reason_display == "Patient declines"


def test_an_accepted_suggestion_must_be_one_of_the_card(client: TestClient) -> None:
    card = _issued(_store(client), suggestions=["s-1", "s-2"])

    bad = client.post(FEEDBACK, json={"feedback": [
        _item(card, outcome="accepted", acceptedSuggestions=[{"id": "s-2"}, {"id": "s-9"}])]})
    good = client.post(FEEDBACK, json={"feedback": [
        _item(card, outcome="accepted", acceptedSuggestions=[{"id": "s-2"}])]})

    _refused(bad, 409, "not-found", "feedback[0].acceptedSuggestions[1].id")
    assert good.status_code == 200, good.text
    assert [f.accepted_suggestions for f in _stored(client, card)] == [["s-2"]]


def test_one_bad_item_refuses_the_whole_batch(client: TestClient) -> None:
    card = _card(client)["uuid"]

    r = client.post(FEEDBACK, json={"feedback": [
        _item(card, overrideReason=_reason("patient-refuses")),
        _item(str(uuid.uuid4()), overrideReason=_reason("patient-refuses"))]})

    _refused(r, 409, "not-found", "feedback[1].card")
    assert _stored(client, card) == []


@pytest.mark.parametrize("at", ["2026-13-45T25:61:61Z", "2026-02-29T10:00:00Z",
                                "2026-11-24T10:00:00+25:00", "9999-12-31T23:59:59-01:00"])
def test_an_impossible_outcome_timestamp_is_a_400(client: TestClient, at: str) -> None:
    card = _card(client)["uuid"]

    r = client.post(FEEDBACK, json={"feedback": [
        _item(card, at=at, overrideReason=_reason("patient-refuses"))]})

    assert "not a real date" in _refused(r, 400, "invalid", "outcomeTimestamp")


def test_an_outcome_timestamp_with_an_offset_is_stored_in_utc(client: TestClient) -> None:
    card = _card(client)["uuid"]

    r = client.post(FEEDBACK, json={"feedback": [
        _item(card, at="2026-11-24T10:00:00+01:00", overrideReason=_reason("need-more-info"))]})

    assert r.status_code == 200, r.text
    assert _stored(client, card)[0].outcome_timestamp == datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_feedback_on_a_card_still_in_the_spool_is_kept_unverified(
        app_client: TestClient) -> None:
    """The card's assessment was spooled (database down when the card was issued): its
    feedback is stored, marked unverified, with the reason still checked against what the
    cards offer; once the spool is replayed the card is known and feedback is verified."""
    store = _store(app_client)
    rec = factories.assessment(7)
    rec = AssessmentRecord(**{**rec.to_dict(), "service_id": SERVICE,
                              "received_at": rec.received_at})
    card = rec.card_uuids()[0]
    Spool(store.spool_dir).append(rec)
    item = _item(card, overrideReason=_reason("patient-refuses"))

    made_up = app_client.post(FEEDBACK, json={"feedback": [
        _item(card, overrideReason=_reason("made up"))]})
    pending = app_client.post(FEEDBACK, json={"feedback": [item]})

    assert made_up.status_code == 409
    assert pending.status_code == 200, pending.text
    assert pending.json() == {"stored": 1, "duplicates": 0, "unverified": 1}
    [kept] = _stored(app_client, card)
    assert kept.verified is False
    assert kept.override_reason_display == "Patient declines"

    assert store.replay_spool() == 1
    later = app_client.post(FEEDBACK, json={"feedback": [
        {**item, "outcomeTimestamp": "2026-11-24T11:00:00Z"}]})
    assert later.json() == {"stored": 1, "duplicates": 0, "unverified": 0}
    assert [f.verified for f in _stored(app_client, card)] == [False, True]


def test_feedback_counts_in_metrics_by_offered_reason(app_client: TestClient) -> None:
    card = _card(app_client)["uuid"]
    app_client.post(FEEDBACK, json={"feedback": [
        _item(card, overrideReason=_reason("made up reason"))]})
    app_client.post(FEEDBACK, json={"feedback": [
        _item(card, overrideReason=_reason("need-more-info"))]})

    text = app_client.get("/metrics").text

    assert ('hypermarker_feedback_total{outcome="overridden",reason="need-more-info"} 1.0'
            in text)
    assert "made up" not in text
