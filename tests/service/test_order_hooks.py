"""order-select and order-sign answer only a relevant draft order (issue 12, item 7).

An antihypertensive gets the hypertension card; a drug that interacts with the regimen (NSAID,
potassium, lithium, verapamil ...) a card about the interaction only; anything else (a statin,
an imaging request) no card, the call still audited. A suggestion never orders what the draft
already orders, and lists the orderable product code first; the same request twice gives the
same cards.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_mappings import drug_codes
from models.prescribing import STARTING
from tests.service.conftest import example_request
from vocabulary.drug_classes import DrugClass

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
SERVICES = {"order-sign": "/cds-services/hypertension-order-sign",
            "order-select": "/cds-services/hypertension-order-select"}
PATIENT = {"reference": "Patient/example-patient-1"}


def _medication(code: str, display: str, system: str = SNOMED) -> dict[str, Any]:
    """A MedicationRequest resource (no id, status or intent yet) of one coded drug."""
    return {"resourceType": "MedicationRequest", "subject": PATIENT,
            "medicationCodeableConcept": {"coding": [
                {"system": system, "code": code, "display": display}]}}


def _named(text: str) -> dict[str, Any]:
    """A MedicationRequest of a drug written in words only (a brand, a name)."""
    return {"resourceType": "MedicationRequest", "subject": PATIENT,
            "medicationCodeableConcept": {"text": text}}


def _request(hook: str, *drafts: dict[str, Any], selected: int = 0,
             taking: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """The example patient (ramipril 5 mg, amlodipine 5 mg, asthma; BP 162/94) with draft
    orders d1, d2 ... (order-select: draft ``selected`` is the selection) and the drugs of
    ``taking`` added to the current medication list."""
    req = example_request(hook=hook)
    entries = []
    for i, draft in enumerate(drafts, 1):
        resource = {"id": f"d{i}", "status": "draft", "intent": "order", **copy.deepcopy(draft)}
        entries.append({"resource": resource})
    req["context"] = {**req["context"], "draftOrders": {
        "resourceType": "Bundle", "type": "collection", "entry": entries}}
    if hook == "order-select":
        res = entries[selected]["resource"]
        req["context"]["selections"] = [f"{res['resourceType']}/{res['id']}"]
    for i, drug in enumerate(taking):
        req["prefetch"]["medications"]["entry"].append({"resource": {
            **drug, "id": f"taking-{i}", "status": "active", "intent": "order",
            "authoredOn": "2025-01-01"}})
    return req


def _cards(client: TestClient, req: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post(SERVICES[req["hook"]], json=req)
    assert r.status_code == 200, r.text
    return list(r.json()["cards"])


def _orders(cards: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(action type, MedicationRequest) of every suggestion of the cards."""
    return [(a["type"], a["resource"]) for c in cards for s in c.get("suggestions") or []
            for a in s["actions"]]


INDAPAMIDE = _medication("317956008", "Indapamide 2.5mg tablets")
SPIRONOLACTONE = _medication("318056008", "Spironolactone 25mg tablets")
SIMVASTATIN = _medication("316672", "Simvastatin 20 MG Oral Tablet", RXNORM)
IMAGING = {"resourceType": "ServiceRequest", "subject": PATIENT,
           "code": {"coding": [{"system": SNOMED, "code": "399208008",
                                "display": "Plain chest X-ray"}]}}


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("draft", [SIMVASTATIN, IMAGING], ids=["simvastatin", "imaging"])
def test_an_order_the_service_does_not_check_gets_no_card_and_is_audited(
        client: TestClient, hook: str, draft: dict[str, Any]) -> None:
    """A statin or an imaging request for a patient above target: no card at all (was the
    full hypertension card with suggestions), and the call is in the audit store."""
    req = _request(hook, draft)
    r = client.post(SERVICES[hook], json=req)

    assert r.status_code == 200, r.text
    assert r.json() == {"cards": []}
    rec = client.app.state.hm.store.assessment(r.headers["x-request-id"])  # type: ignore[attr-defined]
    assert rec is not None
    assert rec.hook_instance == req["hookInstance"]
    assert rec.cards == []


def test_order_select_answers_the_selected_order_only(client: TestClient) -> None:
    """The draft session holds ramipril too, but the clinician selected the statin."""
    ramipril = _medication("35296", "ramipril", RXNORM)
    assert _cards(client, _request("order-select", ramipril, SIMVASTATIN, selected=1)) == []
    assert len(_cards(client, _request("order-select", ramipril, SIMVASTATIN, selected=0))) == 1


def test_a_drug_that_adds_nothing_to_the_regimen_gets_no_card(client: TestClient) -> None:
    """Ibuprofen with an ACE inhibitor and a CCB (no diuretic): no rule applies, no card."""
    assert _cards(client, _request("order-sign", _medication("5640", "ibuprofen", RXNORM))) == []


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_an_interacting_drug_gets_the_interaction_without_the_ranked_options(
        client: TestClient, hook: str) -> None:
    """Lithium, written as a brand (Priadel), for a patient taking ramipril: a warning
    that names the interaction, with the rule's citation and monitoring; no ranking, no
    suggestion."""
    (card,) = _cards(client, _request(hook, _named("Priadel 400mg modified-release tablets")))

    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Lithium ordered")
    assert "raises lithium levels" in card["summary"]
    assert "Lithium level within 1-2 weeks" in card["detail"]
    assert "BNF" in card["detail"]
    assert "| # | option" not in card["detail"]
    assert "top option" not in card["summary"]
    assert "suggestions" not in card
    assert card["overrideReasons"]
    assert card["links"]


@pytest.mark.parametrize(("draft", "taking", "indicator", "words"), [
    (_named("lithium carbonate 400 mg"), INDAPAMIDE, "critical",
     "thiazide-like diuretic contraindicated"),
    (_medication("5640", "ibuprofen", RXNORM), INDAPAMIDE, "warning", "acute kidney injury"),
    (_named("Sando-K effervescent tablets"), SPIRONOLACTONE, "critical",
     "spironolactone contraindicated"),
], ids=["lithium-thiazide", "nsaid-triple-whammy", "potassium-spironolactone"])
def test_an_interaction_with_the_current_regimen_is_named_with_its_severity(
        client: TestClient, draft: dict[str, Any], taking: dict[str, Any], indicator: str,
        words: str) -> None:
    """The safety rules of the options, applied to the regimen with the ordered drug: a
    contraindication is critical, a caution a warning."""
    (card,) = _cards(client, _request("order-sign", draft, taking=(taking,)))

    assert card["indicator"] == indicator
    assert words in card["summary"]
    assert "suggestions" not in card


def test_an_interacting_drug_is_not_checked_without_the_medication_list(
        client: TestClient) -> None:
    """The EHR could not give the medication list: the NSAID is not checked, and the card
    says so (unknown is never 'none')."""
    req = _request("order-sign", _medication("5640", "ibuprofen", RXNORM))
    req["prefetch"]["medications"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "exception", "diagnostics": "search failed"}]}

    (card,) = _cards(client, req)

    assert card["indicator"] == "warning"
    assert card["summary"].startswith("NSAID order not checked: the current medication list")


def test_an_interacting_drug_under_a_stop_gets_the_pathway_card_with_the_interaction(
        client: TestClient) -> None:
    """BP 230/130 (severe hypertension) and lithium ordered with ramipril: the pathway card,
    critical, with the interaction named in its detail and still no ranking."""
    req = _request("order-sign", _named("lithium carbonate 400 mg"))
    for e in req["prefetch"]["bp"]["entry"]:
        for comp in e["resource"].get("component", []):
            code = comp["code"]["coding"][0]["code"]
            comp["valueQuantity"]["value"] = {"8480-6": 230, "8462-4": 130}.get(
                code, comp["valueQuantity"]["value"])

    (card,) = _cards(client, req)

    assert card["indicator"] == "critical"
    assert "raises lithium levels" in card["detail"]
    assert "No ranked list" in card["detail"]
    assert "suggestions" not in card


def test_another_antihypertensive_keeps_the_options_and_names_its_interaction(
        client: TestClient) -> None:
    """Verapamil with amlodipine: the hypertension card (ranked options, suggestions that
    add to the draft) whose summary is the interaction, a warning."""
    (card,) = _cards(client, _request("order-sign", _medication("11170", "verapamil", RXNORM)))

    assert card["indicator"] == "warning"
    assert "second calcium-channel blocker" in card["summary"]
    assert "| # | option" in card["detail"]
    assert card["suggestions"]
    assert {kind for kind, _ in _orders([card])} == {"create"}


def _drug_of(order: dict[str, Any]) -> str:
    """The ingredient a suggested MedicationRequest orders (its dm+d product)."""
    coding = order["medicationCodeableConcept"]["coding"][0]
    return drug_codes.DMD_PRODUCTS[coding["code"]].parts[0][0]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_accepting_a_suggestion_does_not_bring_the_same_drug_back(
        client: TestClient, hook: str) -> None:
    """The card on a ramipril order suggests indapamide (the top option) in place of the
    draft; sent back as the draft, the indapamide order is confirmed as the top option
    with no suggestion (was: a card suggesting indapamide again, replacing the draft)."""
    first = _cards(client, _request(hook, _medication("35296", "ramipril", RXNORM)))
    kind, order = _orders(first)[0]
    assert (kind, _drug_of(order)) == ("update", "indapamide")

    req = _request(hook, {k: v for k, v in order.items() if k not in ("id", "status")})
    (card,) = _cards(client, req)

    assert "indapamide" in card["summary"].lower()
    assert "suggestions" not in card


@pytest.mark.parametrize(("draft", "suggested"), [
    (SPIRONOLACTONE, ["indapamide"]),  # beyond the step: only the option ranked above it
    # spironolactone ranks above the doxazosin draft but is beyond NICE step 3 (A + C: add
    # D), so it is shown, never offered as an order
    (_medication("318781001", "Doxazosin 1mg tablets"), ["indapamide"]),
    (INDAPAMIDE, []),  # the top option itself: nothing better to suggest
], ids=["spironolactone", "doxazosin", "indapamide"])
def test_a_suggestion_never_orders_what_the_draft_orders(
        client: TestClient, draft: dict[str, Any], suggested: list[str]) -> None:
    """Suggestions replace the draft only with an option the model ranks above it, and
    never with the drug (or class) the draft already orders."""
    cards = _cards(client, _request("order-sign", draft))
    drafted = _drug_of(draft)

    orders = _orders(cards)
    assert [_drug_of(o) for _, o in orders] == suggested
    assert all(kind == "update" and o["id"] == "d1" for kind, o in orders)
    assert drafted not in [_drug_of(o) for _, o in orders]


def test_two_drafts_one_class_already_drafted_is_not_suggested(client: TestClient) -> None:
    """Doxazosin and indapamide both drafted: nothing suggests indapamide again, and no
    suggestion replaces the indapamide draft."""
    doxazosin = _medication("318781001", "Doxazosin 1mg tablets")
    cards = _cards(client, _request("order-sign", doxazosin, INDAPAMIDE))

    for _kind, order in _orders(cards):
        assert _drug_of(order) != "indapamide"
        assert order.get("id") != "d2"


def test_a_draft_dated_ahead_of_the_service_is_still_the_drug_ordered(
        client: TestClient) -> None:
    """A draft's authoredOn in a time zone ahead of the service's day (or any later date)
    does not hide the drug: bisoprolol for this patient with asthma is critical either way
    (was: the draft was read as "not current", and the generic card came back)."""
    bisoprolol = _medication("318590006", "Bisoprolol 5mg tablets")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:30:00+14:00")
    undated = _cards(client, _request("order-sign", bisoprolol))
    dated = _cards(client, _request("order-sign", {**bisoprolol, "authoredOn": tomorrow}))

    assert [c["indicator"] for c in dated] == [c["indicator"] for c in undated] == ["critical"]
    assert [(c["summary"], c["detail"]) for c in dated] == [
        (c["summary"], c["detail"]) for c in undated]


def _without_instance_ids(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cards without what is new in every answer: the uuids (each answer is audited on
    its own) and the panel token of the link."""
    out = copy.deepcopy(cards)
    for c in out:
        c.pop("uuid", None)
        for s in c.get("suggestions") or []:
            s.pop("uuid", None)
        for link in c.get("links") or []:
            link.pop("appContext", None)
    return out


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("draft", [
    _medication("35296", "ramipril", RXNORM), _medication("318590006", "Bisoprolol 5mg"),
    _named("Priadel 400mg"), SIMVASTATIN], ids=["ramipril", "bisoprolol", "lithium", "statin"])
def test_the_same_draft_order_twice_gives_the_same_cards(
        client: TestClient, hook: str, draft: dict[str, Any]) -> None:
    req = _request(hook, draft)

    first, again = _cards(client, req), _cards(client, copy.deepcopy(req))

    assert _without_instance_ids(first) == _without_instance_ids(again)
    assert {c["uuid"] for c in first}.isdisjoint(c["uuid"] for c in again)


def test_a_suggestion_lists_the_orderable_product_code_first(client: TestClient) -> None:
    """The dm+d VMP of the starting product first, then its RxNorm SCD where known (an
    orderable product, never an ingredient code)."""
    cards = _cards(client, _request("order-sign", _medication("318781001", "Doxazosin 1mg")))
    orders = [o for _, o in _orders(cards)]
    assert {_drug_of(o) for o in orders} == {"indapamide"}  # NICE step 3; spironolactone
    # is beyond it (test_a_suggestion_never_orders_what_the_draft_orders)

    for order in orders:
        first, *rest = order["medicationCodeableConcept"]["coding"]
        start = next(s for s in STARTING.values() if s.drug == _drug_of(order))
        assert (first["system"], first["code"]) == (SNOMED, start.dmd_vmp)
        assert [(c["system"], c["code"]) for c in rest] == (
            [(RXNORM, start.rxnorm_scd)] if start.rxnorm_scd else [])
        for c in rest:
            assert c["code"] in drug_codes.RXNORM_PRODUCTS
            assert c["code"] not in drug_codes.INGREDIENTS_BY_RXNORM
    assert STARTING[DrugClass.SPIRONOLACTONE].rxnorm_scd  # the RxNorm case is covered


def _young_untreated_request(*drafts: dict[str, Any]) -> dict[str, Any]:
    """order-sign for an untreated 46-year-old (stage 1, family origin not recorded): NICE
    step 1 offers an ACE inhibitor, an ARB or a CCB, so several options of the step can be
    ordered. ``drafts``: MedicationRequests for this patient (no id or status yet)."""
    case = json.loads((Path(__file__).resolve().parents[1] / "safety" / "cases"
                       / "H09-untreated-stage-1.json").read_text())
    req = copy.deepcopy(case["request"])
    req["prefetch"]["patient"]["birthDate"] = "1980-03-02"
    req["hook"] = "order-sign"
    pid = req["context"]["patientId"]
    entries = [{"resource": {**copy.deepcopy(d), "id": f"d{i}", "status": "draft",
                             "intent": "order", "subject": {"reference": f"Patient/{pid}"}}}
               for i, d in enumerate(drafts, 1)]
    req["context"] = {**req["context"], "draftOrders": {
        "resourceType": "Bundle", "type": "collection", "entry": entries}}
    return req


def test_a_draft_of_the_first_option_gets_no_suggestion_of_a_lower_one(
        client: TestClient) -> None:
    """Where the step has several orderable options (NICE step 1 under 55): a draft of a
    drug beyond the step gets the step's top options as suggestions; a draft of the first of
    them gets none (no option is ranked above it); a draft of the second gets only the first."""
    doxazosin = _medication("318781001", "Doxazosin 1mg tablets")
    top = [o for _, o in _orders(_cards(client, _young_untreated_request(doxazosin)))]
    assert len(top) == 2
    first, second = ({k: v for k, v in o.items() if k not in ("id", "status", "subject")}
                     for o in top)
    assert _orders(_cards(client, _young_untreated_request(first))) == []
    only = _orders(_cards(client, _young_untreated_request(second)))
    assert [_drug_of(o) for _, o in only] == [_drug_of(top[0])]
