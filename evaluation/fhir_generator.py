"""FHIR R4 records from simulated FeatureVectors, so that a running service can be sent the
same cases as the in-process harness (target mode).

The generator is small and honest about what it can say: a Patient (birth date from the age,
administrative gender, UK Core ethnic category), a clinic BP panel (LOINC 85354-9 with 8480-6
and 8462-4 components) and a home BP panel when known, the labs (potassium, sodium, eGFR,
urine ACR, HbA1c in IFCC units, BMI, heart rate) as Observations, active Conditions coded
with the first SNOMED CT concept the mapping lists for each condition fact, and one
MedicationRequest per current class coded with the dm+d VMP of its standard-dose product
(``CLASS_INFO``), dose multiple = tablets per day. The service's own mapping reads them back.
Facts it cannot express (drug-defined flags such as current NSAID or lithium, which would
need medication codes outside the antihypertensive vocabulary) are listed by
:func:`unexpressed` and left out.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Final

from fhir_mappings.codes import CONDITIONS, LOINC, SNOMED, UCUM
from fhir_mappings.features import FeatureVector
from vocabulary.drug_classes import CLASS_INFO

Json = dict[str, Any]
ETHNICITY_EXT: Final = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNICITY_SYSTEM: Final = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
#: UK Core ethnic category codes: M = Black Caribbean, H = Indian, A = White British.
ETHNIC_CODE: Final = {"black": "M", "south_asian": "H", "other": "A"}
LABS: Final[dict[str, tuple[str, str]]] = {
    "potassium": ("2823-3", "mmol/L"), "sodium": ("2951-2", "mmol/L"),
    "egfr": ("98979-8", "mL/min/{1.73_m2}"), "urine_acr": ("9318-7", "mg/mmol"),
    "hba1c": ("59261-8", "mmol/mol"), "bmi": ("39156-5", "kg/m2"),
    "heart_rate": ("8867-4", "/min"),
}


def _own_code(fact: str) -> str | None:
    """The first SNOMED concept of a fact that no other fact also lists (heart failure's
    list includes HFrEF's concepts, for example)."""
    mine = next(c.snomed for c in CONDITIONS if c.fact == fact)
    others = set().union(*(c.snomed for c in CONDITIONS if c.fact != fact))
    return next((code for code in sorted(mine) if code not in others), None)


CONDITION_CODE: Final[dict[str, str]] = {
    c.fact: code for c in CONDITIONS if (code := _own_code(c.fact)) is not None}
#: Flags the generator cannot write (not conditions, or drugs outside the vocabulary).
DRUG_FLAGS: Final = ("nsaid", "lithium", "potassium_supplement", "non_dhp_ccb")


def _concept(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def _qty(value: float, unit: str) -> Json:
    return {"value": round(value, 3), "unit": unit, "system": UCUM, "code": unit}


def unexpressed(p: FeatureVector) -> list[str]:
    """Facts of ``p`` the generated record cannot carry."""
    return [f for f in DRUG_FLAGS if p.flag(f)]


def patient_resources(p: FeatureVector, pid: str, today: date,
                      days_since_bp: int = 30) -> dict[str, list[Json]]:
    """The record of one patient grouped as the CDS Hooks prefetch keys of the service."""
    ref = {"reference": f"Patient/{pid}"}
    age = p.get("age") or 0.0
    patient: Json = {"resourceType": "Patient", "id": pid,
                     "birthDate": (today - timedelta(days=round(age * 365.25))).isoformat()}
    female = p.get("sex_female")
    patient["gender"] = "unknown" if female is None else "female" if female else "male"
    black, sa = p.get("ethnicity_black"), p.get("ethnicity_south_asian")
    if black is not None and sa is not None:
        group = "black" if black else "south_asian" if sa else "other"
        patient["extension"] = [{"url": ETHNICITY_EXT, "valueCodeableConcept":
                                 _concept(ETHNICITY_SYSTEM, ETHNIC_CODE[group])}]
    bp_day = (today - timedelta(days=days_since_bp)).isoformat()
    lab_day = (today - timedelta(days=days_since_bp + 30)).isoformat()
    bp: list[Json] = []
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    if sbp is not None:
        comps = [{"code": _concept(LOINC, "8480-6"), "valueQuantity": _qty(sbp, "mm[Hg]")}]
        if dbp is not None:
            comps.append({"code": _concept(LOINC, "8462-4"),
                          "valueQuantity": _qty(dbp, "mm[Hg]")})
        bp.append({"resourceType": "Observation", "id": f"{pid}-bp", "status": "final",
                   "category": [_concept(
                       "http://terminology.hl7.org/CodeSystem/observation-category",
                       "vital-signs")],
                   "code": _concept(LOINC, "85354-9"), "subject": ref,
                   "effectiveDateTime": bp_day, "component": comps})
    home = p.get("sbp_home")
    if home is not None:
        bp.append({"resourceType": "Observation", "id": f"{pid}-hbp", "status": "final",
                   "code": _concept(LOINC, "96607-7"), "subject": ref,
                   "effectiveDateTime": bp_day, "component": [
                       {"code": _concept(LOINC, "96608-5"),
                        "valueQuantity": _qty(home, "mm[Hg]")}]})
    labs = [{"resourceType": "Observation", "id": f"{pid}-{name}".replace("_", "-"),
             "status": "final",
             "code": _concept(LOINC, code), "subject": ref, "effectiveDateTime": lab_day,
             "valueQuantity": _qty(v, unit)}
            for name, (code, unit) in LABS.items() if (v := p.get(name)) is not None]
    conditions = [{"resourceType": "Condition", "id": f"{pid}-{fact}".replace("_", "-"),
                   "clinicalStatus": _concept(
                       "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
                   "code": _concept(SNOMED, code), "subject": ref,
                   "onsetDateTime": "2020-01-01"}
                  for fact, code in CONDITION_CODE.items() if p.flag(fact)]
    meds = []
    for cls, dose in p.regimen.items():
        info = CLASS_INFO[cls]
        meds.append({
            "resourceType": "MedicationRequest", "id": f"{pid}-{cls.value}".replace("_", "-"),
            "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": info.dmd_vmp,
                                                      "display": info.dmd_vmp_name}]},
            "subject": ref, "authoredOn": lab_day,
            "dosageInstruction": [{
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "tablet"}}]}]})
    return {"patient": [patient], "bp": bp, "labs": labs, "conditions": conditions,
            "medications": meds}


def _searchset(resources: list[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def collection_bundle(parts: dict[str, list[Json]]) -> Json:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for rs in parts.values() for r in rs]}


def cds_request(parts: dict[str, list[Json]], pid: str, hook_instance: str) -> Json:
    """A CDS Hooks patient-view request with every prefetch key filled."""
    prefetch: Json = {"patient": parts["patient"][0]}
    for key in ("bp", "labs", "conditions", "medications"):
        prefetch[key] = _searchset(parts[key])
    prefetch["statements"] = _searchset([])
    prefetch["allergies"] = _searchset([])
    return {"hookInstance": hook_instance, "hook": "patient-view",
            "context": {"userId": "Practitioner/evaluation", "patientId": pid},
            "prefetch": prefetch}
