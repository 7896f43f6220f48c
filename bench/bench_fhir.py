"""Benchmark of the FHIR R4 mapping (``fhir_mappings.mapping.features_from_fhir``).

Two inputs, each timed as the median of repeated runs against a plain ``orjson.loads`` of
the same bytes (the floor any mapping pays):

* a typical CDS Hooks prefetch of about 60 resources (Patient, 20 BP panels, 20 labs,
  10 conditions, 8 medications, 2 allergies), built here;
* the largest Synthea bundle in shared/fixtures/synthea-r4 (about 2 MB, Claims and
  ExplanationOfBenefits included).

Budgets: prefetch under 3 ms, 2 MB bundle under 150 ms; and the mapping's speed relative to
``orjson.loads`` of the same bytes (the two timed interleaved, under the same load, so the
ratio holds on any machine): the prefetch at most 8x, the 2 MB bundle at most 2.2x. When set
(2-core VM, 200 repeats) the mapping measured 7.2x and 1.9x, with the helpers' own inline
copies; 7.7x and 2.0x with one read path: the budgets are about 10% above the first (the
bundle's, whose runs vary more, 15%). Keep a helper fast where it is (a lookup table, a cache
of vocabulary) rather than copy it inline: the ratios show what a change costs. Run with
``uv run python bench/bench_fhir.py`` (``--repeats N``); exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from fhir_mappings.dates import parse_when
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.validation import warm_up

AS_OF = date(2026, 11, 24)
SYNTHEA = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "synthea-r4"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
PID = "bench-patient"


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
                       "resource": r, "search": {"mode": "match"}} for r in resources]}


def typical_prefetch() -> dict[str, Any]:
    """A prefetch object shaped like a GP record sent by an EPR (about 60 resources)."""
    subject = {"reference": f"Patient/{PID}"}
    vital = [_cc("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs",
                 "Vital Signs")]
    lab = [_cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory",
               "Laboratory")]
    patient = {
        "resourceType": "Patient", "id": PID,
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
            "valueCodeableConcept": _cc(
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "M",
                "Black or Black British - Caribbean")}],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
        "name": [{"use": "official", "family": "Example", "given": ["Pat"]}],
        "gender": "female", "birthDate": "1957-03-14",
        "address": [{"line": ["1 Road"], "city": "Leeds", "postalCode": "LS1 1AA"}],
    }
    bps = []
    for i in range(20):
        when = (AS_OF - timedelta(days=14 + 30 * i)).isoformat() + "T09:30:00+00:00"
        bps.append({
            "resourceType": "Observation", "id": f"bp-{i}", "status": "final",
            "category": vital, "code": _cc(LOINC, "85354-9", "Blood pressure panel"),
            "subject": subject, "effectiveDateTime": when,
            "component": [
                {"code": _cc(LOINC, "8480-6", "Systolic blood pressure"),
                 "valueQuantity": _q(150 - i % 7, "mm[Hg]")},
                {"code": _cc(LOINC, "8462-4", "Diastolic blood pressure"),
                 "valueQuantity": _q(90 - i % 5, "mm[Hg]")}]})
    lab_codes = [("2823-3", "Potassium", 4.4, "mmol/L"), ("2951-2", "Sodium", 139, "mmol/L"),
                 ("2160-0", "Creatinine", 1.0, "mg/dL"),
                 ("98979-8", "eGFR CKD-EPI 2021", 68, "mL/min/{1.73_m2}"),
                 ("9318-7", "Albumin/Creatinine", 2.1, "mg/mmol"),
                 ("4548-4", "HbA1c", 6.6, "%"), ("8867-4", "Heart rate", 76, "/min")]
    labs = []
    for i in range(20):
        code, display, value, unit = lab_codes[i % len(lab_codes)]
        when = (AS_OF - timedelta(days=20 + 90 * (i // len(lab_codes)))).isoformat()
        labs.append({"resourceType": "Observation", "id": f"lab-{i}", "status": "final",
                     "category": lab, "code": _cc(LOINC, code, display), "subject": subject,
                     "effectiveDateTime": when, "valueQuantity": _q(value, unit)})
    cond_codes = [("38341003", "Hypertension"), ("44054006", "Type 2 diabetes mellitus"),
                  ("195967001", "Asthma"), ("55822004", "Hyperlipidaemia"),
                  ("162864005", "Obesity"), ("90560007", "Gout"),
                  ("22298006", "Myocardial infarction"), ("35489007", "Depression"),
                  ("239872002", "Osteoarthritis of hip"), ("40055000", "Chronic sinusitis")]
    conditions = [{
        "resourceType": "Condition", "id": f"cond-{i}",
        "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                              "active", "Active"),
        "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                  "confirmed", "Confirmed"),
        "code": _cc(SNOMED, code, display), "subject": subject,
        "onsetDateTime": f"{2010 + i}-01-01"} for i, (code, display) in enumerate(cond_codes)]
    med_codes = [("318902004", SNOMED, "Ramipril 5mg capsules"),
                 ("319283006", SNOMED, "Amlodipine 5mg tablets"),
                 ("317956008", SNOMED, "Indapamide 2.5mg tablets"),
                 ("860975", RXNORM, "Metformin 500 MG Extended Release Oral Tablet"),
                 ("312961", RXNORM, "Simvastatin 20 MG Oral Tablet"),
                 ("849574", RXNORM, "Naproxen sodium 220 MG Oral Tablet"),
                 ("243670", RXNORM, "Aspirin 81 MG Oral Tablet"),
                 ("C03CA01", "http://www.whocc.no/atc", "Furosemide 40mg tablets")]
    meds = [{
        "resourceType": "MedicationRequest", "id": f"med-{i}", "status": "active",
        "intent": "order", "medicationCodeableConcept": _cc(system, code, display),
        "subject": subject, "authoredOn": "2026-03-01",
        "dosageInstruction": [{"text": "one daily",
                               "timing": {"repeat": {"frequency": 1, "period": 1,
                                                     "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 1,
                                                                 "unit": "tablet"}}]}]}
        for i, (code, system, display) in enumerate(med_codes)]
    allergies = [
        {"resourceType": "AllergyIntolerance", "id": "allergy-0",
         "clinicalStatus": _cc(
             "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active",
             "Active"),
         "code": _cc(SNOMED, "372733002", "ACE inhibitor"), "patient": subject,
         "reaction": [{"manifestation": [_cc(SNOMED, "49727002", "Cough")]}]},
        {"resourceType": "AllergyIntolerance", "id": "allergy-1",
         "code": _cc(SNOMED, "91935009", "Allergy to peanuts"), "patient": subject}]
    return {"patient": patient, "bp": _searchset(bps), "labs": _searchset(labs),
            "conditions": _searchset(conditions), "medications": _searchset(meds),
            "allergies": _searchset(allergies)}


def latest_activity(doc: dict[str, Any]) -> date:
    """The day of the latest Encounter or BP reading (Synthea timelines end in the past)."""
    days = []
    for entry in doc.get("entry", []):
        r = entry.get("resource", {})
        if r.get("resourceType") == "Encounter":
            text = r.get("period", {}).get("end") or r.get("period", {}).get("start")
        elif r.get("resourceType") == "Observation" and any(
                c.get("code") in ("85354-9", "55284-4") for c in r["code"].get("coding", [])):
            text = r.get("effectiveDateTime")
        else:
            continue
        when = parse_when(text) if isinstance(text, str) else None
        if when is not None:
            days.append(when.day)
    return max(days, default=AS_OF)


def _times_ms(fns: tuple[Callable[[], object], ...], repeats: int) -> list[list[float]]:
    """The times of each function, their calls interleaved (each run under the same load)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000.0)
    return times


def _bench(label: str, raw: bytes, as_of: date, repeats: int, budget_ms: float,
           budget_ratio: float) -> bool:
    features_from_fhir(raw, as_of)  # first call outside the timing
    maps, parses = _times_ms((lambda: features_from_fhir(raw, as_of),
                              lambda: orjson.loads(raw)), repeats)
    mapping, parse = statistics.median(maps), statistics.median(parses)
    ratio = mapping / parse
    ok = mapping < budget_ms and ratio <= budget_ratio
    print(f"{label:<42} {len(raw) / 1e6:5.2f} MB  map median {mapping:7.2f} ms "
          f"(best {min(maps):6.2f})  orjson.loads {parse:6.2f} ms  ratio {ratio:5.1f}x  "
          f"budget {budget_ms:g} ms, {budget_ratio:g}x {'OK' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    warm_up()
    doc = typical_prefetch()
    n = sum(len(v["entry"]) if v["resourceType"] == "Bundle" else 1 for v in doc.values())
    ok = _bench(f"typical prefetch ({n} resources)", orjson.dumps(doc), AS_OF, args.repeats,
                3.0, 8.0)
    files = sorted(SYNTHEA.glob("*.json"), key=lambda p: p.stat().st_size) if SYNTHEA.is_dir() \
        else []
    if files:
        largest = files[-1]
        raw = largest.read_bytes()
        ok &= _bench(f"largest Synthea bundle ({largest.name.split('_')[0]})", raw,
                     latest_activity(orjson.loads(raw)), max(5, args.repeats // 5), 150.0,
                     2.2)
    else:
        print(f"Synthea fixtures not found at {SYNTHEA}: skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
