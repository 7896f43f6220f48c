"""Patient-safety controls over the service (docs/safety/hazard-log.md): the right patient,
unavailable data never read as none, refusals audited, stops and truthful cards on order hooks.

The EHR's FHIR server is a real HTTP server on loopback (tests/service/fhir_server.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import example_request
from tests.service.fhir_server import (
    bundle_resources,
    prefetch_resources,
    serve_fhir,
    with_fhir_server,
)
from vocabulary.drug_classes import DrugClass

D_ALPHA, D_ACEI = DrugClass.ALPHA_BLOCKER, DrugClass.ACE_INHIBITOR
URL = "/cds-services/hypertension-treatment"
SIGN = "/cds-services/hypertension-order-sign"
TOKEN = "short-lived-access-token-xyz"




@pytest.fixture(scope="module")
def broken_meds() -> Iterator[str]:
    """An EHR whose MedicationRequest search fails with 500."""
    with serve_fhir(prefetch_resources(example_request()), token=TOKEN,
                    fail={"MedicationRequest"}) as (base, _seen):
        yield base


@pytest.fixture(scope="module")
def other_patient_server() -> Iterator[str]:
    """An EHR that answers the Patient read with another patient's record."""
    other = {"resourceType": "Patient", "id": "someone-else", "gender": "male",
             "birthDate": "1950-01-01"}
    with serve_fhir(prefetch_resources(example_request()), token=TOKEN,
                    reads={"Patient/example-patient-1": other}) as (base, _seen):
        yield base


def _audited(client: TestClient, request_id: str) -> Any:
    return client.app.state.hm.store.assessment(request_id)  # type: ignore[attr-defined]


def test_another_patient_in_context_is_refused_and_audited(client: TestClient) -> None:
    """context.patientId other-patient-2 with prefetch Patient example-patient-1: 422 naming
    both, no card, the refusal audited under the context patient with no outcome stored."""
    store = client.app.state.hm.store  # type: ignore[attr-defined]
    req = example_request()
    req["context"]["patientId"] = "other-patient-2"
    outcomes_before = len(list(store.outcomes()))

    r = client.post(URL, json=req)

    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert "other-patient-2" in issue["diagnostics"]
    assert "example-patient-1" in issue["diagnostics"]
    assert "cards" not in r.json()
    record = _audited(client, r.headers["X-Request-ID"])
    assert record is not None
    assert record.status == "refused"
    assert record.cards == []
    assert record.patient_ref == client.app.state.hm.patient_ref("other-patient-2")  # type: ignore[attr-defined]
    assert len(list(store.outcomes())) == outcomes_before


def test_a_prefetch_patient_without_an_id_is_refused(client: TestClient) -> None:
    req = example_request()
    del req["prefetch"]["patient"]["id"]
    r = client.post(URL, json=req)
    assert r.status_code == 422
    assert "no id" in r.json()["issue"][0]["diagnostics"]


def test_a_resource_of_another_patient_is_refused(client: TestClient) -> None:
    req = example_request()
    lab = copy.deepcopy(req["prefetch"]["labs"]["entry"][0])
    lab["resource"]["id"] = "foreign-lab"
    lab["resource"]["subject"] = {"reference": "Patient/someone-else"}
    req["prefetch"]["labs"]["entry"].append(lab)
    r = client.post(URL, json=req)
    assert r.status_code == 422
    assert "someone-else" in r.json()["issue"][0]["diagnostics"]


def test_a_fhir_server_answering_with_another_patient_is_refused(
        client: TestClient, other_patient_server: str) -> None:
    req = with_fhir_server(example_request(), other_patient_server, TOKEN)
    del req["prefetch"]["patient"]
    r = client.post(URL, json=req)
    assert r.status_code == 422, r.text
    assert "someone-else" in r.json()["issue"][0]["diagnostics"]


def test_a_draft_order_for_another_patient_is_refused(client: TestClient) -> None:
    req = example_request(hook="order-sign")
    req["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                      "intent": "order", "subject": {"reference": "Patient/someone-else"},
                      "medicationCodeableConcept": {"text": "amlodipine 5 mg"}}}]}
    r = client.post(SIGN, json=req)
    assert r.status_code == 422, r.text


def test_a_medication_list_the_ehr_could_not_give_is_never_none(
        client: TestClient, broken_meds: str) -> None:
    """The example patient takes ramipril + amlodipine; with the medication search failing
    (500) she must not be assessed as untreated ("start ..."): cannot assess, audited."""
    req = with_fhir_server(example_request(), broken_meds, TOKEN)
    del req["prefetch"]["medications"]

    r = client.post(URL, json=req)

    assert r.status_code == 200, r.text
    card = r.json()["cards"][0]
    assert "not assessed" in card["summary"]
    assert "medication list" in card["summary"]
    assert "500" in card["detail"]
    assert "suggestions" not in card
    record = _audited(client, r.headers["X-Request-ID"])
    assert record.status == "cannot_assess"
    assert record.options == []


def test_an_order_without_its_medication_list_is_flagged_not_checked(
        client: TestClient, broken_meds: str) -> None:
    req = with_fhir_server(example_request(hook="order-sign"), broken_meds, TOKEN)
    del req["prefetch"]["medications"]
    req["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                      "intent": "order", "subject": {"reference": "Patient/example-patient-1"},
                      "medicationCodeableConcept": {"text": "candesartan 8 mg"}}}]}
    r = client.post(SIGN, json=req)
    card = r.json()["cards"][0]
    assert card["indicator"] == "warning"
    assert "not checked" in card["summary"]


def _bp_to(req: dict[str, Any], sbp: float, dbp: float) -> dict[str, Any]:
    """Every clinic reading of the example set to sbp/dbp."""
    for e in req["prefetch"]["bp"]["entry"]:
        for comp in e["resource"].get("component", []):
            code = comp["code"]["coding"][0]["code"]
            if code == "8480-6":
                comp["valueQuantity"]["value"] = sbp
            elif code == "8462-4":
                comp["valueQuantity"]["value"] = dbp
    return req


def _order(req: dict[str, Any], text: str) -> dict[str, Any]:
    req["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                      "intent": "order", "subject": {"reference": "Patient/example-patient-1"},
                      "medicationCodeableConcept": {"text": text}}}]}
    return req


def test_at_target_an_order_is_named_and_nothing_is_suggested(client: TestClient) -> None:
    """132/82 on two drugs: patient-view says nothing; order-sign of indapamide is a warning
    that names over-treatment, never 'above target', with no one-click orders."""
    assert client.post(URL, json=_bp_to(example_request(), 132, 82)).json()["cards"] == []
    # (doxazosin ranks low: an order hook above target would suggest the options above it)
    for drug in ("indapamide 2.5 mg", "doxazosin 1 mg"):
        req = _order(_bp_to(example_request(hook="order-sign"), 132, 82), drug)
        card = client.post(SIGN, json=req).json()["cards"][0]
        assert card["indicator"] == "warning"
        assert "over-treatment" in card["summary"]
        assert "above target" not in card["summary"]
        assert "suggestions" not in card, drug


def test_a_diastolic_above_target_is_above_target(client: TestClient) -> None:
    card = client.post(URL, json=_bp_to(example_request(), 136, 96)).json()["cards"][0]
    assert "above target" in card["summary"]
    assert "136/96" in card["summary"]


def test_low_bp_on_treatment_is_a_pathway_card_without_suggestions(client: TestClient) -> None:
    """96/60 on three drugs: an order is asked whether it is for BP at all (a heart-failure
    or angina drug may be needed), with no suggestion."""
    req = _order(_bp_to(example_request(hook="order-sign"), 96, 60), "spironolactone 25 mg")
    card = client.post(SIGN, json=req).json()["cards"][0]
    assert card["indicator"] == "warning"
    assert "Spironolactone ordered: check it is needed" in card["summary"]
    assert "suggestions" not in card


def test_an_order_under_a_stop_is_still_checked_for_contraindications(
        client: TestClient) -> None:
    """Severe hypertension (treatment may well be started) and the example patient has
    asthma: bisoprolol ordered is critical for its contraindication."""
    req = _order(_bp_to(example_request(hook="order-sign"), 230, 130), "bisoprolol 5 mg")
    card = client.post(SIGN, json=req).json()["cards"][0]
    assert card["indicator"] == "critical"
    assert "contraindicated" in card["summary"]
    assert "Asthma" in card["summary"]


def test_severe_hypertension_is_critical_on_every_hook(client: TestClient) -> None:
    for url, hook in ((URL, "patient-view"), (SIGN, "order-sign")):
        req = _order(_bp_to(example_request(hook=hook), 230, 130), "amlodipine 10 mg")
        card = client.post(url, json=req).json()["cards"][0]
        assert card["indicator"] == "critical", card
        assert "suggestions" not in card


def test_the_panel_of_a_pathway_answer_shows_the_stop_not_a_ranking(client: TestClient) -> None:
    card = client.post(URL, json=_bp_to(example_request(), 230, 130)).json()["cards"][0]
    token = json.loads(card["links"][0]["appContext"])["assessment"]
    state = client.app.state.hm  # type: ignore[attr-defined]
    # the view grant a SMART launch gives (the launch itself: tests/service/test_panel_launch.py)
    grant = state.launches.put({"kind": "view", "assessment": token},
                               state.panel.get(token).patient_ref)
    page = client.get(f"/panel/view/{grant}")
    assert page.status_code == 200, page.text
    assert "No ranked options" in page.text
    assert "data-stop='severe-hypertension'" in page.text
    assert "<table id='options'>" not in page.text


def _as_bundle(req: dict[str, Any]) -> dict[str, Any]:
    entries = [{"resource": req["prefetch"]["patient"]}]
    for key, value in req["prefetch"].items():
        if key != "patient":
            entries += [{"resource": r} for r in bundle_resources(value)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_the_operation_refuses_two_patients_and_audits_it(client: TestClient) -> None:
    bundle = _as_bundle(example_request())
    bundle["entry"].append({"resource": {"resourceType": "Patient", "id": "someone-else"}})
    r = client.post("/fhir/$hypertension-options", json=bundle)
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["code"] == "conflict"
    record = _audited(client, r.headers["X-Request-ID"])
    assert record.status == "refused"
    assert record.hook == "$hypertension-options"


def test_the_operation_answers_a_stop_with_detected_issues(client: TestClient) -> None:
    r = client.post("/fhir/$hypertension-options",
                    json=_as_bundle(_bp_to(example_request(), 230, 130)))
    assert r.status_code == 200, r.text
    resources = [e["resource"] for e in r.json()["entry"]]
    assert not any(x["resourceType"] == "RiskAssessment" for x in resources)
    stop = next(x for x in resources if x["resourceType"] == "DetectedIssue"
                and x["code"]["coding"][0]["code"] == "severe-hypertension")
    assert stop["severity"] == "high"
    assert "7 days" in stop["mitigation"][0]["action"]["text"]


def test_suggested_orders_are_orderable_products_at_the_starting_dose(
        client: TestClient) -> None:
    """Issue 11: a suggestion orders the dm+d product of the BNF starting dose (ramipril
    1.25 mg, doxazosin 1 mg ...), never an RxNorm ingredient code, with a structured dose."""
    from models.prescribing import STARTING

    req = _order(example_request(hook="order-sign"), "amlodipine 10 mg")
    cards = client.post(SIGN, json=req).json()["cards"]
    orders = [a["resource"] for c in cards for s in c.get("suggestions", [])
              for a in s["actions"]]
    assert orders, cards
    for order in orders:
        coding = order["medicationCodeableConcept"]["coding"]
        assert coding[0]["system"] == "http://snomed.info/sct"
        start = next(s for s in STARTING.values() if s.dmd_vmp == coding[0]["code"])
        assert all(c["code"] != "35296" for c in coding)  # not the ramipril ingredient
        dose = order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
        assert dose["value"] == start.dose_mg
        assert f"{start.dose_mg:g} mg once daily" in order["dosageInstruction"][0]["text"]
    assert STARTING[D_ALPHA].dose_mg == 1.0
    assert STARTING[D_ACEI].dose_mg == 1.25


def test_a_replaced_draft_keeps_nothing_written_for_another_drug(client: TestClient) -> None:
    """A replacement order keeps the draft's id, subject and requester, never its quantity,
    note or reason; the dosage text is the dose, the notes go in the order's note."""
    req = _order(example_request(hook="order-sign"), "amlodipine 10 mg")
    draft = req["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"] = {"quantity": {"value": 56}}
    draft["note"] = [{"text": "for amlodipine"}]
    draft["requester"] = {"reference": "Practitioner/gp-1"}
    cards = client.post(SIGN, json=req).json()["cards"]
    updates = [a["resource"] for c in cards for s in c.get("suggestions", [])
               for a in s["actions"] if a["type"] == "update"]
    assert updates, cards
    for order in updates:
        assert order["id"] == "d1"
        assert order["requester"] == {"reference": "Practitioner/gp-1"}
        assert "dispenseRequest" not in order
        assert all("amlodipine" not in n["text"] for n in order.get("note", []))
        assert order["dosageInstruction"][0]["text"].endswith("mg once daily")
