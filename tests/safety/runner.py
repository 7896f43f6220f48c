"""The clinical-safety case set: hand-made FHIR cases, each with the safe behaviour beside it.

Each file in ``tests/safety/cases/`` is one case (JSON)::

    {
      "id": "H03-severe-230-130",            # unique, the file name without .json
      "hazards": ["H-03"],                   # docs/safety/hazard-log.md
      "title": "...",
      "expected_behaviour": "...",           # the safe behaviour, in words
      "as_of": "2026-12-01",                 # the day the record was written for
      "request": {CDS Hooks patient-view request: hook, hookInstance, context, prefetch,
                  optionally fhirServer ...},
      "order": {"rxnorm": "35296", "display": "ramipril"},   # drug ordered on order hooks
      "operation": true,                     # also run as a Bundle through $hypertension-options
      "expect": {...}                        # see CHECKS below
    }

Every case runs through the CLI (``hypermarker assess``, as of ``as_of``), and through a real
service over HTTP (dates moved to today) on all three hooks and, when ``operation`` is true,
``$hypertension-options`` with the prefetch resources as one Bundle. ``expect`` keys
(all optional):

* ``refused``: the input is not exactly one patient's: CLI exit 2, HTTP 422 everywhere.
* ``status``: the assessment status (assessed, cannot_assess, pathway).
* ``stops``: stop codes that must all be present (and ``stops_exact``: exactly these).
* ``reasons_contain``: words each found in one of the reasons.
* ``findings_contain``: finding codes (patient level) that must be present.
* ``data_quality_contain``: words found in the data-quality warnings.
* ``first_excludes``: classes the first ranked option must not start or increase.
* ``first_in``: classes of which the first ranked option must start one.
* ``first_keeps``: classes the first ranked option must not stop.
* ``never_ranked``: classes that no ranked option may start or increase (contraindicated),
  and that no card suggests (its drug is not named in any suggestion's label).
* ``indicator``: the patient-view card's indicator (``none``: no card at all).
* ``order_indicator``: the indicator of the order-select and order-sign cards.
* ``summary_contains`` / ``summary_excludes``: text every card summary must (not) hold.
* ``no_suggestions``: no card on any hook carries a suggestion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from models.prescribing import STARTING
from vocabulary.drug_classes import DrugClass

CASES = Path(__file__).resolve().parent / "cases"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
KNOWN_EXPECT = frozenset({
    "refused", "status", "stops", "stops_exact", "reasons_contain", "findings_contain",
    "data_quality_contain", "first_excludes", "first_in", "first_keeps", "never_ranked",
    "indicator",
    "order_indicator",
    "summary_contains", "summary_excludes", "no_suggestions"})


@dataclass(frozen=True)
class Case:
    id: str
    hazards: tuple[str, ...]
    title: str
    expected_behaviour: str
    as_of: date
    request: dict[str, Any]
    order: dict[str, str]
    operation: bool
    expect: dict[str, Any]


def load_cases() -> list[Case]:
    out = []
    for path in sorted(CASES.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(doc["expect"]) - KNOWN_EXPECT
        assert not unknown, f"{path.name}: unknown expect keys {sorted(unknown)}"
        assert doc["id"] == path.stem, f"{path.name}: id {doc['id']!r} is not the file name"
        out.append(Case(doc["id"], tuple(doc["hazards"]), doc["title"],
                        doc["expected_behaviour"], date.fromisoformat(doc["as_of"]),
                        doc["request"], doc.get("order") or {"rxnorm": "35296",
                                                             "display": "ramipril"},
                        bool(doc.get("operation", True)), doc["expect"]))
    return out


def draft_order(case: Case, patient_id: str) -> dict[str, Any]:
    """The draft MedicationRequest of the order hooks (the case's ``order``)."""
    return {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
            "intent": "order", "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM,
                                                      "code": case.order["rxnorm"],
                                                      "display": case.order["display"]}],
                                          "text": case.order["display"]}}


def hook_request(case: Case, hook: str, request: dict[str, Any]) -> dict[str, Any]:
    """The case's request for ``hook`` (order hooks get the draft order)."""
    req = json.loads(json.dumps(request))
    req["hook"] = hook
    if hook != "patient-view":
        pid = req["context"]["patientId"]
        req["context"] = {**req["context"], "draftOrders": {
            "resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": draft_order(case, pid)}]}}
        if hook == "order-select":
            req["context"]["selections"] = ["MedicationRequest/draft-1"]
    return req


def as_bundle(prefetch: dict[str, Any]) -> dict[str, Any]:
    """The prefetch's resources as one collection Bundle (for $hypertension-options)."""
    entries: list[dict[str, Any]] = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            entries += [e for e in value.get("entry") or [] if isinstance(e, dict)]
        else:
            entries.append({"resource": value})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _classes_up(option: dict[str, Any], current: dict[str, float]) -> set[str]:
    """Classes an option starts or increases."""
    after = set(option["classes_after"])
    started = after - set(current)
    titrated = {c for c in after if c in current and "increase" in option["label"].lower()}
    return started | titrated


def check_document(case: Case, doc: dict[str, Any]) -> Iterator[str]:
    """Every way ``doc`` (an assessment document) breaks the case's expectations."""
    e = case.expect
    if "status" in e and doc["status"] != e["status"]:
        yield f"status {doc['status']!r}, expected {e['status']!r} ({doc['reasons']})"
    codes = [s["code"] for s in doc.get("stops", [])]
    for code in e.get("stops", []):
        if code not in codes:
            yield f"stop {code!r} missing (stops: {codes})"
    if "stops_exact" in e and sorted(codes) != sorted(e["stops_exact"]):
        yield f"stops {codes}, expected exactly {e['stops_exact']}"
    for word in e.get("reasons_contain", []):
        if not any(word.lower() in r.lower() for r in doc["reasons"]):
            yield f"no reason mentions {word!r} ({doc['reasons']})"
    finding_codes = [f["code"] for f in doc["findings"]]
    for code in e.get("findings_contain", []):
        if code not in finding_codes:
            yield f"finding {code!r} missing ({finding_codes})"
    quality = " ".join(doc.get("data_quality", []))
    for word in e.get("data_quality_contain", []):
        if word.lower() not in quality.lower():
            yield f"data quality does not mention {word!r} ({quality!r})"
    first = next((o for o in doc["options"] if o["rank"] == 1), None)
    if first is not None:
        up = _classes_up(first, doc["current_regimen"])
        if bad := up & set(e.get("first_excludes", [])):
            yield f"first option {first['label']!r} starts or increases {sorted(bad)}"
        if "first_in" in e and not up & set(e["first_in"]):
            yield f"first option {first['label']!r} starts none of {e['first_in']}"
        kept = set(first["classes_after"])
        if lost := (set(e.get("first_keeps", [])) & set(doc["current_regimen"])) - kept:
            yield f"first option {first['label']!r} stops {sorted(lost)}"
    elif "first_in" in e:
        yield "no ranked option"
    never = set(e.get("never_ranked", []))
    for o in doc["options"]:
        if o["rank"] is not None and (bad := _classes_up(o, doc["current_regimen"]) & never):
            yield f"option {o['label']!r} ranked {o['rank']} starts or increases {sorted(bad)}"


def check_cards(case: Case, hook: str, cards: list[dict[str, Any]]) -> Iterator[str]:
    """Every way one hook's cards break the case's expectations."""
    e = case.expect
    wanted = e.get("indicator") if hook == "patient-view" else e.get("order_indicator")
    if wanted == "none":
        if cards:
            yield f"{hook}: expected no card, got {[c['summary'] for c in cards]}"
    elif wanted is not None:
        got = [c["indicator"] for c in cards]
        if got[:1] != [wanted]:
            yield f"{hook}: indicator {got}, expected {wanted!r}"
    for c in cards:
        for word in e.get("summary_contains", []):
            if word.lower() not in c["summary"].lower():
                yield f"{hook}: summary {c['summary']!r} lacks {word!r}"
        for word in e.get("summary_excludes", []):
            if word.lower() in c["summary"].lower():
                yield f"{hook}: summary {c['summary']!r} says {word!r}"
        for cls in e.get("never_ranked", []):
            drug = STARTING[DrugClass(cls)].drug
            for s in c.get("suggestions") or []:
                if drug in s["label"].lower():
                    yield f"{hook}: suggestion {s['label']!r} starts {drug}"
        if e.get("no_suggestions") and c.get("suggestions"):
            yield f"{hook}: card offers suggestions {[s['label'] for s in c['suggestions']]}"
