"""Patient: age, sex, deceased and family origin (UK Core ethnic category, US Core race)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.mapping_policy import MappingPolicy
from fhir_mappings.patient_record import build_record
from tests.fhir_mappings.builders import AS_OF, bundle, features, fixture, patient, prov

UK_EXT = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
UK_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"
RACE_EXT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
CDC = "urn:oid:2.16.840.1.113883.6.238"


def uk(code: str, system: str = UK_SYSTEM) -> dict[str, Any]:
    return {"url": UK_EXT,
            "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


def race(omb: list[str], detailed: list[str] | None = None) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "ombCategory", "valueCoding": {"system": CDC, "code": c}} for c in omb]
    subs += [{"url": "detailed", "valueCoding": {"system": CDC, "code": c}}
             for c in detailed or []]
    subs.append({"url": "text", "valueString": "x"})
    return {"url": RACE_EXT, "extension": subs}


def test_uk_core_fixture_black_african_man() -> None:
    """UK Core 'N' (Black African): Black 1, South Asian 0, male, age in completed years."""
    fv, _ = features(fixture("uk_core_ethnicity.json"))
    assert fv.values["ethnicity_black"] == 1.0
    assert fv.values["ethnicity_south_asian"] == 0.0
    assert fv.values["sex_female"] == 0.0
    assert fv.values["age"] == 65.0  # born 1961-05-30, assessed 2026-11-24
    assert prov(fv, "ethnicity_black").source == "Patient/uk-1"
    assert "N" in prov(fv, "ethnicity_black").note


@pytest.mark.parametrize(("code", "black", "south_asian"), [
    ("A", 0.0, 0.0), ("M", 1.0, 0.0), ("N", 1.0, 0.0), ("P", 1.0, 0.0),
    ("H", 0.0, 1.0), ("J", 0.0, 1.0), ("K", 0.0, 1.0), ("L", 0.0, 0.0), ("R", 0.0, 0.0),
    ("D", 0.0, 0.0), ("E", 0.0, 0.0), ("Z", None, None), ("99", None, None),
])
def test_uk_ethnic_category_letters(code: str, black: float | None,
                                    south_asian: float | None) -> None:
    """NHS ethnic category letters map to the NICE groups; Z/99 stay unknown."""
    fv, _ = features(bundle(patient(extension=[uk(code)])))
    assert fv.values["ethnicity_black"] == black
    assert fv.values["ethnicity_south_asian"] == south_asian


def test_retired_two_character_codes_use_their_letter() -> None:
    """The retired UKCore-EthnicCategory codes (PC Nigerian) start with the category."""
    retired = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory"
    doc = bundle(patient(extension=[uk("PC", retired)]))
    assert features(doc)[0].values["ethnicity_black"] == 1.0


@pytest.mark.parametrize("code", ["D", "E"])
def test_mixed_white_and_black_is_a_policy(code: str) -> None:
    """D/E are not counted as Black by default; the policy switch counts them."""
    doc = bundle(patient(extension=[uk(code)]))
    default, _ = features(doc)
    counted, _ = features_from_fhir(doc, AS_OF, MappingPolicy(mixed_black_as_black=True))
    assert default.values["ethnicity_black"] == 0.0
    assert "not counted" in prov(default, "ethnicity_black").note
    assert counted.values["ethnicity_black"] == 1.0


def test_us_core_fixture_asian_indian_is_south_asian() -> None:
    """A detailed Asian Indian code makes South Asian origin known."""
    fv, _ = features(fixture("us_core_race.json"))
    assert fv.values["ethnicity_south_asian"] == 1.0
    assert fv.values["ethnicity_black"] == 0.0
    assert fv.values["sex_female"] == 1.0


@pytest.mark.parametrize(("omb", "detailed", "black", "south_asian"), [
    (["2054-5"], [], 1.0, 0.0),
    (["2106-3"], [], 0.0, 0.0),
    (["2028-9"], [], 0.0, None),          # Asian is not necessarily South Asian
    (["2028-9"], ["2044-4"], 0.0, 1.0),   # Pakistani
    (["2028-9"], ["2030-5"], 0.0, 1.0),   # Bangladeshi
    (["2135-2"], [], None, None),         # Synthea quirk: ethnicity code in race
    (["UNK"], [], None, None),
    (["2054-5", "2106-3"], [], 1.0, 0.0),
])
def test_us_core_race(omb: list[str], detailed: list[str], black: float | None,
                      south_asian: float | None) -> None:
    fv, _ = features(bundle(patient(extension=[race(omb, detailed)])))
    assert fv.values["ethnicity_black"] == black
    assert fv.values["ethnicity_south_asian"] == south_asian


def test_no_ethnicity_is_unknown_with_a_reason() -> None:
    fv, _ = features(bundle(patient()))
    assert fv.values["ethnicity_black"] is None
    assert "no ethnic category" in prov(fv, "ethnicity_black").note


def test_uk_core_wins_over_us_core() -> None:
    fv, _ = features(bundle(patient(extension=[race(["2106-3"]), uk("M")])))
    assert fv.values["ethnicity_black"] == 1.0


def test_age_at_the_assessment_date() -> None:
    """Age counts completed years at as_of (the day before the birthday: one less)."""
    doc = bundle(patient(birth="1960-11-25"))
    assert features(doc, date(2026, 11, 24))[0].values["age"] == 65.0
    assert features(doc, date(2026, 11, 25))[0].values["age"] == 66.0


def test_a_child_has_a_known_age_and_no_birth_date_is_unknown() -> None:
    """A child's age is known (the assessment then says it is for adults, hazard H-12),
    never turned into "age unknown"."""
    young, _ = features(bundle(patient(birth="2010-01-01")))
    assert young.values["age"] == 16.0
    nobirth = patient()
    del nobirth["birthDate"]
    fv, _ = features(bundle(nobirth))
    assert fv.values["age"] is None
    assert prov(fv, "age").note == "no birthDate on the Patient"


def test_partial_birth_date() -> None:
    fv, _ = features(bundle(patient(birth="1950")))
    assert fv.values["age"] == 76.0
    assert "partial" in prov(fv, "age").note


@pytest.mark.parametrize(("gender", "expected"), [("female", 1.0), ("male", 0.0),
                                                   ("other", None), ("unknown", None)])
def test_sex(gender: str, expected: float | None) -> None:
    assert features(bundle(patient(gender=gender)))[0].values["sex_female"] == expected


def test_deceased() -> None:
    """deceasedBoolean and a deceasedDateTime on/before as_of mark the patient deceased."""
    assert features(bundle(patient(deceasedBoolean=True)))[0].deceased
    assert not features(bundle(patient(deceasedBoolean=False)))[0].deceased
    assert features(bundle(patient(deceasedDateTime="2026-01-01T10:00:00Z")))[0].deceased
    later = build_record(bundle(patient(deceasedDateTime="2027-01-01")), AS_OF)
    assert later.deceased.value == 0.0
    assert not features(bundle(patient()))[0].deceased


@pytest.mark.parametrize("birth", ["99999999999999999999999-01", "1950-13", "19500101", "x"])
def test_bad_birth_date_is_a_typed_error(birth: str) -> None:
    from fhir_mappings.errors import InvalidResource

    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(birth=birth)))
    assert e.value.path == "$.entry[0].resource.birthDate"
