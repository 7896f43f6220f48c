"""Small builders of FHIR R4 resources for tests (plain dicts, as they arrive on the wire)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from fhir_mappings.features import FeatureVector
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.report import MappingReport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
AS_OF = date(2026, 11, 24)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

Json = dict[str, Any]


def fixture(name: str) -> Json:
    doc: Json = json.loads((FIXTURES / name).read_text())
    return doc


def features(doc: Any, as_of: date = AS_OF) -> tuple[FeatureVector, MappingReport]:
    return features_from_fhir(doc, as_of)


def prov(fv: FeatureVector, name: str) -> Any:
    hits = [p for p in fv.provenance if p.feature == name]
    assert len(hits) == 1, hits
    return hits[0]


def bundle(*resources: Json, kind: str = "collection") -> Json:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"resource": r} for r in resources]}


def patient(pid: str = "p1", gender: str = "female", birth: str = "1956-06-15",
            **extra: Any) -> Json:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
            **extra}


def concept(system: str, code: str, display: str = "") -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def quantity(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def obs(oid: str, code: str, value: float | None, unit: str, when: str,
        system: str = LOINC, status: str = "final", pid: str = "p1", **extra: Any) -> Json:
    r: Json = {"resourceType": "Observation", "id": oid, "status": status,
               "code": concept(system, code), "subject": {"reference": f"Patient/{pid}"},
               "effectiveDateTime": when, **extra}
    if value is not None:
        r["valueQuantity"] = quantity(value, unit)
    return r


def bp(oid: str, sbp: float, dbp: float, when: str, unit: str = "mm[Hg]",
       code: str = "85354-9", pid: str = "p1", **extra: Any) -> Json:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/observation-category",
                                 "vital-signs")],
            "code": concept(LOINC, code), "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": when,
            "component": [
                {"code": concept(LOINC, "8480-6"), "valueQuantity": quantity(sbp, unit)},
                {"code": concept(LOINC, "8462-4"), "valueQuantity": quantity(dbp, unit)},
            ], **extra}


def condition(cid: str, code: str, system: str = SNOMED, status: str | None = "active",
              onset: str | None = "2020-01-01", pid: str = "p1", **extra: Any) -> Json:
    r: Json = {"resourceType": "Condition", "id": cid, "code": concept(system, code),
               "subject": {"reference": f"Patient/{pid}"}, **extra}
    if onset is not None:
        r["onsetDateTime"] = onset
    if status is not None:
        r["clinicalStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status)
    return r


def med_request(mid: str, code: str, system: str = RXNORM, display: str = "",
                status: str = "active", intent: str = "order", authored: str = "2026-01-01",
                pid: str = "p1", **extra: Any) -> Json:
    return {"resourceType": "MedicationRequest", "id": mid, "status": status,
            "intent": intent, "medicationCodeableConcept": concept(system, code, display),
            "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored, **extra}


def claim(cid: str, pid: str = "p1") -> Json:
    return {"resourceType": "Claim", "id": cid, "status": "active",
            "type": concept("http://terminology.hl7.org/CodeSystem/claim-type",
                            "institutional"),
            "use": "claim", "patient": {"reference": f"Patient/{pid}"},
            "created": "2026-01-01", "provider": {"reference": "Organization/o1"},
            "priority": concept("http://terminology.hl7.org/CodeSystem/processpriority",
                                "normal"),
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "x"}}]}


def immunization(iid: str, pid: str = "p1") -> Json:
    return {"resourceType": "Immunization", "id": iid, "status": "completed",
            "vaccineCode": concept("http://hl7.org/fhir/sid/cvx", "140"),
            "patient": {"reference": f"Patient/{pid}"}, "occurrenceDateTime": "2026-10-01"}


def typical_record() -> Json:
    """A small but complete record: BP, labs, conditions, medications, allergy."""
    return bundle(
        patient(extension=[{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
            "valueCodeableConcept": concept(
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "A")}]),
        bp("bp1", 150, 92, "2026-10-01T09:00:00Z"),
        bp("bp2", 146, 90, "2026-11-01T09:00:00Z"),
        bp("bp3", 158, 96, "2026-06-01T09:00:00Z"),
        obs("k1", "2823-3", 4.4, "mmol/L", "2026-10-01"),
        obs("na1", "2951-2", 139, "mmol/L", "2026-10-01"),
        obs("egfr1", "98979-8", 72, "mL/min/{1.73_m2}", "2026-10-01"),
        obs("acr1", "9318-7", 1.2, "mg/mmol", "2026-10-01"),
        obs("a1c1", "4548-4", 6.5, "%", "2026-10-01"),
        obs("hr1", "8867-4", 72, "/min", "2026-11-01"),
        obs("bmi1", "39156-5", 28.1, "kg/m2", "2026-11-01"),
        condition("c1", "44054006"),
        condition("c2", "195967001"),
        med_request("m1", "314076", display="lisinopril 10 MG Oral Tablet"),
        med_request("m2", "197361", display="Amlodipine 5 MG Oral Tablet"),
    )
