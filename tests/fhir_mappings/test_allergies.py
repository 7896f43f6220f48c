"""AllergyIntolerance: ACE-inhibitor angioedema and intolerance."""

from __future__ import annotations

import pytest

from tests.fhir_mappings.builders import bundle, concept, features, fixture, patient, prov


def test_allergy_fixture() -> None:
    """Lisinopril with an angioedema reaction -> angioedema_history; ACE-inhibitor cough ->
    ace_inhibitor_intolerance; a refuted record and a peanut allergy change nothing else."""
    fv, report = features(fixture("allergy.json"))
    assert fv.values["angioedema_history"] == 1.0
    assert fv.values["ace_inhibitor_intolerance"] == 1.0
    assert prov(fv, "angioedema_history").source == "AllergyIntolerance/ai-angioedema"
    assert prov(fv, "ace_inhibitor_intolerance").source == "AllergyIntolerance/ai-cough"
    assert report.resources_ignored["AllergyIntolerance"] == 2


def test_ace_inhibitor_cough_alone_is_intolerance_not_angioedema() -> None:
    ai = {"resourceType": "AllergyIntolerance", "id": "a",
          "code": concept("http://www.whocc.no/atc", "C09AA05"),
          "patient": {"reference": "Patient/p1"},
          "reaction": [{"manifestation": [{"text": "dry cough"}]}]}
    fv, _ = features(bundle(patient(), ai))
    assert fv.values["ace_inhibitor_intolerance"] == 1.0
    assert fv.values["angioedema_history"] == 0.0


def test_text_only_allergy_is_a_flagged_name_match() -> None:
    ai = {"resourceType": "AllergyIntolerance", "id": "a", "code": {"text": "Ramipril"},
          "patient": {"reference": "Patient/p1"},
          "reaction": [{"manifestation": [{"text": "Angio-oedema of lips"}]}]}
    fv, report = features(bundle(patient(), ai))
    assert fv.values["angioedema_history"] == 1.0
    assert report.name_text_matches == 1


def test_resolved_ace_inhibitor_intolerance_does_not_count() -> None:
    ai = {"resourceType": "AllergyIntolerance", "id": "a",
          "clinicalStatus": concept(
              "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "resolved"),
          "code": concept("http://snomed.info/sct", "372733002"),
          "patient": {"reference": "Patient/p1"}}
    assert features(bundle(patient(), ai))[0].values["ace_inhibitor_intolerance"] == 0.0


@pytest.mark.parametrize("words", ["swelling of lips and tongue", "Swollen face and throat",
                                   "facial oedema", "Quincke's oedema"])
def test_angioedema_in_plain_words(words: str) -> None:
    """Issue 11: 'swelling of lips and tongue' on lisinopril is angioedema (ACEi blocked),
    not an intolerance (an ARB would be suggested)."""
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1",
               "patient": {"reference": "Patient/p1"},
               "code": {"text": "lisinopril"},
               "reaction": [{"manifestation": [{"text": words}]}]}
    fv, _ = features(bundle(patient(), allergy))
    assert fv.values["angioedema_history"] == 1.0


def test_a_rash_is_not_angioedema() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1",
               "patient": {"reference": "Patient/p1"}, "code": {"text": "lisinopril"},
               "reaction": [{"manifestation": [{"text": "itchy rash on the arms"}]}]}
    fv, _ = features(bundle(patient(), allergy))
    assert fv.values["angioedema_history"] == 0.0


def test_anaphylaxis_to_an_ace_inhibitor_is_a_hypersensitivity_not_an_intolerance() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1",
               "patient": {"reference": "Patient/p1"}, "code": {"text": "ramipril"},
               "clinicalStatus": {"coding": [{"code": "inactive"}]},
               "reaction": [{"manifestation": [{"coding": [
                   {"system": "http://snomed.info/sct", "code": "39579001",
                    "display": "Anaphylaxis"}]}]}]}
    fv, _ = features(bundle(patient(), allergy))
    assert fv.values["ace_inhibitor_hypersensitivity"] == 1.0
    assert fv.values["ace_inhibitor_intolerance"] == 0.0
