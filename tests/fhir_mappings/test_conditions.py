"""Conditions: SNOMED and ICD-10, clinical/verification status, abatement, history facts."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.patient_record import build_record
from tests.fhir_mappings.builders import (
    AS_OF,
    SNOMED,
    bundle,
    condition,
    features,
    fixture,
    obs,
    patient,
    prov,
)

ICD10 = "http://hl7.org/fhir/sid/icd-10"


def test_conditions_fixture() -> None:
    """ICD-10 E11.9 -> diabetes; CKD 3b with its stage; a resolved MI still counts as CVD;
    resolved gout and refuted asthma do not; ICD-10-CM I44.2 without clinicalStatus is a
    current heart block; heart failure that abated in 2021 is not current; severe frailty
    counts; a COPD onset after the assessment date is not known yet."""
    fv, _ = features(fixture("conditions.json"))
    v = fv.values
    assert (v["diabetes_t2"], v["ckd"], v["cvd"], v["heart_block"], v["frailty"]) == (
        1.0, 1.0, 1.0, 1.0, 1.0)
    assert (v["gout"], v["asthma"], v["heart_failure"], v["copd"]) == (0.0, 0.0, 0.0, 0.0)
    assert prov(fv, "diabetes_t2").source == "Condition/c-dm"
    assert prov(fv, "diabetes_t2").date == date(2015, 4, 1)
    assert "resolved: history" in prov(fv, "cvd").note
    assert prov(fv, "gout").note == "not recorded: taken as absent"
    assert build_record(fixture("conditions.json"), AS_OF).ckd_stage == "G3b"


@pytest.mark.parametrize(("code", "system", "fact"), [
    ("44054006", SNOMED, "diabetes_t2"), ("368581000119106", SNOMED, "diabetes_t2"),
    ("E11", ICD10, "diabetes_t2"), ("431857002", SNOMED, "ckd"), ("N18.4", ICD10, "ckd"),
    ("N184", "http://hl7.org/fhir/sid/icd-10-uk", "ckd"),
    ("88805009", SNOMED, "heart_failure"), ("I50.9", ICD10, "heart_failure"),
    ("703272007", SNOMED, "hfref"), ("I50.22", "http://hl7.org/fhir/sid/icd-10-cm", "hfref"),
    ("401303003", SNOMED, "cvd"), ("194828000", SNOMED, "cvd"), ("230690007", SNOMED, "cvd"),
    ("I21.9", ICD10, "cvd"), ("I63.5", ICD10, "cvd"), ("I70.2", ICD10, "cvd"),
    ("195967001", SNOMED, "asthma"), ("J45.9", ICD10, "asthma"),
    ("13645005", SNOMED, "copd"), ("J44.1", ICD10, "copd"), ("90560007", SNOMED, "gout"),
    ("M10.0", ICD10, "gout"), ("77386006", SNOMED, "pregnancy"),
    ("41291007", SNOMED, "angioedema_history"), ("195042002", SNOMED, "heart_block"),
    ("I44.1", ICD10, "heart_block"), ("28651003", SNOMED, "orthostatic_hypotension"),
    ("I95.1", ICD10, "orthostatic_hypotension"), ("60573004", SNOMED, "aortic_stenosis"),
    ("I35.0", ICD10, "aortic_stenosis"), ("248279007", SNOMED, "frailty"),
    ("407564000", SNOMED, "ace_inhibitor_intolerance"),
])
def test_codes(code: str, system: str, fact: str) -> None:
    fv, _ = features(bundle(patient(), condition("c", code, system)))
    assert fv.values[fact] == 1.0


def test_hfref_implies_heart_failure() -> None:
    fv, _ = features(bundle(patient(), condition("c", "703272007")))
    assert fv.values["heart_failure"] == 1.0


def test_hfref_from_heart_failure_and_low_ejection_fraction() -> None:
    doc = bundle(patient(), condition("hf", "88805009"),
                 obs("ef", "10230-1", 32, "%", "2025-01-01"))
    fv, _ = features(doc)
    assert fv.values["hfref"] == 1.0
    assert prov(fv, "hfref").source == "Observation/ef"
    preserved = bundle(patient(), condition("hf", "88805009"),
                       obs("ef", "10230-1", 55, "%", "2025-01-01"))
    assert features(preserved)[0].values["hfref"] == 0.0


@pytest.mark.parametrize("status", ["inactive", "remission", "resolved"])
def test_not_current_clinical_status(status: str) -> None:
    assert features(bundle(patient(), condition("c", "44054006", status=status)))[0].values[
        "diabetes_t2"] == 0.0


@pytest.mark.parametrize("status", ["active", "recurrence", "relapse", None])
def test_current_clinical_status(status: str | None) -> None:
    assert features(bundle(patient(), condition("c", "90560007", status=status)))[0].values[
        "gout"] == 1.0


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_void_verification_status(verification: str) -> None:
    ver = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                       "code": verification}]}
    doc = bundle(patient(), condition("c", "22298006", verificationStatus=ver))
    assert features(doc)[0].values["cvd"] == 0.0


def test_abatement_after_the_assessment_date_is_still_current() -> None:
    doc = bundle(patient(), condition("c", "77386006", abatementDateTime="2027-03-01"))
    assert features(doc)[0].values["pregnancy"] == 1.0
    over = bundle(patient(), condition("c", "77386006", abatementDateTime="2026-03-01"))
    assert features(over)[0].values["pregnancy"] == 0.0
    text = bundle(patient(), condition("c", "77386006", abatementString="after delivery"))
    assert features(text)[0].values["pregnancy"] == 0.0


def test_pregnancy_status_observation() -> None:
    """LOINC 82810-3 = pregnant (SNOMED 77386006) sets pregnancy; a newer 'not pregnant'
    status overrides an older pregnancy Condition."""
    pregnant = obs("ps", "82810-3", None, "", "2026-10-01",
                   valueCodeableConcept={"coding": [{"system": SNOMED, "code": "77386006"}]})
    fv, _ = features(bundle(patient(), pregnant))
    assert fv.values["pregnancy"] == 1.0
    assert prov(fv, "pregnancy").source == "Observation/ps"
    not_pregnant = obs("ps", "82810-3", None, "", "2026-10-01",
                       valueCodeableConcept={"coding": [{"system": SNOMED,
                                                         "code": "60001007"}]})
    doc = bundle(patient(), condition("c", "77386006", onset="2025-01-01"), not_pregnant)
    assert features(doc)[0].values["pregnancy"] == 0.0


def test_unknown_condition_codes_are_counted() -> None:
    _, report = features(bundle(patient(), condition("c", "38822007")))
    assert report.unknown_codes == {"Condition http://snomed.info/sct|38822007": 1}


def test_an_acute_coronary_event_is_dated_by_its_latest_record() -> None:
    """The nifedipine/amlodipine rule needs how recent the infarction was: the fact's date is
    the latest record's (an old MI and a new STEMI: the STEMI), a resolved record still counts
    (the date matters, not the status), an undated record leaves the date unknown, and "history
    of MI" is CVD, not an acute event."""
    two = bundle(patient(), condition("old", "22298006", onset="2001-03-04"),
                 condition("new", "401303003", status="resolved", onset="2026-11-12"))
    fv, _ = features(two)
    assert fv.values["acute_coronary"] == 1.0
    assert fv.days_old("acute_coronary") == 12
    assert fv.values["cvd"] == 1.0
    undated = bundle(patient(), condition("old", "22298006", onset="2001-03-04"),
                     condition("new", "I21.4", ICD10, onset=None))
    assert features(undated)[0].values["acute_coronary"] == 1.0
    assert features(undated)[0].days_old("acute_coronary") is None
    history = bundle(patient(), condition("h", "399211009", onset="2001-03-04"))
    assert features(history)[0].values["acute_coronary"] == 0.0
    assert features(history)[0].values["cvd"] == 1.0
