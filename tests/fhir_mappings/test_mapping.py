"""PatientRecord -> FeatureVector: provenance for every feature, absent-as-zero notes,
plausible values only, and the features document round trip."""

from __future__ import annotations

from datetime import date

from fhir_mappings.features import (
    FeatureVector,
    feature_vector_from_document,
    feature_vector_to_document,
    validate_value,
)
from fhir_mappings.mapping import ABSENT_NOTE, features_from_fhir, record_to_features
from fhir_mappings.patient_record import build_record
from tests.fhir_mappings.builders import AS_OF, bundle, features, patient, prov, typical_record
from vocabulary.feature_table import PATIENT_FEATURES, Missing


def test_typical_record() -> None:
    fv, report = features(typical_record())
    v = fv.values
    assert (v["age"], v["sex_female"], v["ethnicity_black"]) == (70.0, 1.0, 0.0)
    assert (v["sbp_clinic"], v["dbp_clinic"]) == (146.0, 90.0)
    assert (v["potassium"], v["sodium"], v["egfr"], v["urine_acr"]) == (4.4, 139.0, 72.0, 1.2)
    assert (v["diabetes_t2"], v["asthma"], v["heart_rate"], v["bmi"]) == (1.0, 1.0, 72.0, 28.1)
    assert {c.value: d for c, d in fv.regimen.items()} == {"ace_inhibitor": 0.5, "ccb": 1.0}
    assert fv.days_since_bp == 23
    assert report.resources_used == {"Condition": 2, "MedicationRequest": 2,
                                      "Observation": 8, "Patient": 1}


def test_every_feature_has_one_provenance_entry() -> None:
    for doc in (typical_record(), bundle(patient())):
        fv, _ = features(doc)
        names = [p.feature for p in fv.provenance if not p.feature.startswith("cur_")]
        assert names == [s.name for s in PATIENT_FEATURES]
        for spec in PATIENT_FEATURES:
            p = prov(fv, spec.name)
            value = fv.values[spec.name]
            assert validate_value(spec.name, value, spec.name) == value
            if value is None:
                assert p.note
            elif p.source is None:
                assert spec.missing is Missing.ABSENT_AS_ZERO
                assert p.note is not None
                assert p.note.startswith(ABSENT_NOTE)
            else:
                assert p.source.split("/")[0] in {"Patient", "Observation", "Condition",
                                                  "MedicationRequest", "MedicationStatement",
                                                  "AllergyIntolerance"}


def test_empty_record_says_why_each_value_is_unknown() -> None:
    fv, _ = features(bundle(patient()))
    assert prov(fv, "sbp_clinic").note == "no clinic blood pressure in the last 12 months"
    assert prov(fv, "potassium").note == "no potassium result in the last 15 months"
    assert prov(fv, "ckd").note.startswith(ABSENT_NOTE)
    assert prov(fv, "nsaid").note == ABSENT_NOTE
    assert fv.values["nsaid"] == 0.0
    assert fv.regimen == {}


def test_regimen_provenance() -> None:
    fv, _ = features(typical_record())
    p = prov(fv, "cur_ace_inhibitor")
    assert p.source == "MedicationRequest/m1"
    assert "lisinopril 10 mg/day" in p.note


def test_features_document_round_trip() -> None:
    fv, _ = features(typical_record())
    again = feature_vector_from_document(feature_vector_to_document(fv))
    assert again == fv


def test_record_is_frozen_and_record_to_features_is_pure() -> None:
    record = build_record(typical_record(), AS_OF)
    try:
        record.as_of = date(2000, 1, 1)  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("PatientRecord is not frozen")
    assert record_to_features(record) == record_to_features(record)
    assert isinstance(record_to_features(record), FeatureVector)


def test_as_of_defaults_to_today() -> None:
    fv, _ = features_from_fhir(bundle(patient()))
    assert fv.as_of == date.today()
