"""Pregnancy from Observations: status (82810-3, 11449-6), hCG tests and the expected delivery
date (hazard H-07). An "unknown" answer is never "not pregnant"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir_mappings.builders import AS_OF, LOINC, SNOMED, bundle, condition, features, patient

LA = LOINC


def coded(oid: str, code: str, system: str, value: str, when: str = "2026-11-01") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": system, "code": value}]}}


def pregnant(*resources: dict[str, Any]) -> float | None:
    fv, _ = features(bundle(patient(birth="1994-05-01"), *resources), AS_OF)
    return fv.values["pregnancy"]


@pytest.mark.parametrize("obs", [
    coded("s1", "82810-3", SNOMED, "77386006"),
    coded("s2", "11449-6", LA, "LA15173-0"),
    coded("h1", "2106-3", SNOMED, "10828004"),
    {"resourceType": "Observation", "id": "h2", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "2118-8"}]},
     "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
     "valueString": "Positive"},
    {"resourceType": "Observation", "id": "q1", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "21198-7"}]},
     "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
     "valueQuantity": {"value": 1450, "unit": "IU/L", "system": "http://unitsofmeasure.org",
                       "code": "[iU]/L"}},
    {"resourceType": "Observation", "id": "e1", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "11778-8"}]},
     "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-09-01",
     "valueDateTime": "2027-04-20"},
], ids=["82810-3", "11449-6", "urine-hcg", "serum-hcg-text", "hcg-quantitative", "edd"])
def test_each_observation_coding_says_pregnant(obs: dict[str, Any]) -> None:
    assert pregnant(obs) == 1.0


def test_a_negative_test_newer_than_the_condition_ends_it() -> None:
    preg = condition("c", "77386006", onset="2026-08-01")
    assert pregnant(preg) == 1.0
    assert pregnant(preg, coded("n", "82810-3", SNOMED, "60001007", "2026-11-15")) == 0.0


def test_an_unknown_status_never_cancels_a_coded_pregnancy() -> None:
    preg = condition("c", "77386006", onset="2026-08-01")
    assert pregnant(preg, coded("u", "82810-3", SNOMED, "261665006", "2026-11-15")) == 1.0


def test_a_delivery_date_in_the_past_says_nothing() -> None:
    edd = {"resourceType": "Observation", "id": "e1", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "11778-8"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-02-01",
           "valueDateTime": "2026-09-20"}
    assert pregnant(edd) == 0.0  # absent_as_zero: no current evidence


def test_icd10_o10_and_snomed_169560008_are_pregnancy() -> None:
    icd = condition("o", "O10.011", system="http://hl7.org/fhir/sid/icd-10-cm",
                    onset="2026-09-01")
    assert pregnant(icd) == 1.0
    assert pregnant(condition("s", "169560008", onset="2026-09-01")) == 1.0


def test_breastfeeding_is_not_pregnancy() -> None:
    fv, _ = features(bundle(patient(birth="1994-05-01"),
                            condition("b", "413712001", onset="2026-09-01")), AS_OF)
    assert fv.values["pregnancy"] == 0.0
    assert fv.values["breastfeeding"] == 1.0


@pytest.mark.parametrize(("text", "expected"), [("Pregnant", 1.0), ("Not pregnant", 0.0),
                                                ("Unknown", 0.0)])
def test_a_status_in_words_only(text: str, expected: float) -> None:
    obs = {"resourceType": "Observation", "id": "w", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "11449-6"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
           "valueCodeableConcept": {"text": text}}
    assert pregnant(obs) == expected
