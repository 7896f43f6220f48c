"""One patient per input, and parts of the record that could not be obtained are never "none".

Hazards H-01 (another patient's record) and H-02 (unavailable read as none) of
docs/safety/hazard-log.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.bundle import parse_input
from fhir_mappings.errors import PatientMismatch
from fhir_mappings.mapping import features_from_fhir
from tests.fhir_mappings.builders import AS_OF, bp, bundle, condition, med_request, obs, patient

ALL_KEYS = ("medications", "statements", "conditions", "allergies", "labs")


def searchset(*resources: dict[str, Any], self_url: str | None = None) -> dict[str, Any]:
    doc = bundle(*resources, kind="searchset")
    if self_url:
        doc["link"] = [{"relation": "self", "url": self_url}]
    return doc


def prefetch(**keys: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"patient": patient(), "bp": searchset(bp("b", 150, 90, "2026-11-20"))}
    doc.update({k: searchset() for k in ALL_KEYS})
    for k, v in keys.items():
        if v is ...:
            del doc[k]
        else:
            doc[k] = v
    return doc


# ------------------------------------------------------------------------------ identity


def test_patient_without_an_id_is_refused() -> None:
    p = patient()
    del p["id"]
    with pytest.raises(PatientMismatch, match="no id"):
        features_from_fhir(bundle(p, bp("b", 150, 90, "2026-11-20")), AS_OF)


def test_context_patient_must_be_the_prefetch_patient() -> None:
    with pytest.raises(PatientMismatch, match="other-patient-2"):
        features_from_fhir(prefetch(), AS_OF, patient_id="other-patient-2")
    fv, _ = features_from_fhir(prefetch(), AS_OF, patient_id="p1")
    assert fv.values["sbp_clinic"] == 150.0


def test_a_whole_cds_hooks_request_checks_its_own_context() -> None:
    request = {"hook": "patient-view", "hookInstance": "x",
               "context": {"patientId": "other-patient-2", "userId": "Practitioner/1"},
               "prefetch": prefetch()}
    with pytest.raises(PatientMismatch, match="other-patient-2"):
        features_from_fhir(request, AS_OF)


@pytest.mark.parametrize("key", ["subject", "patient"])
def test_a_resource_of_another_patient_even_with_an_unknown_code_is_refused(key: str) -> None:
    other: dict[str, Any] = {"resourceType": "AllergyIntolerance" if key == "patient"
                             else "Observation", "id": "x", "status": "final",
                             "code": {"coding": [{"system": "http://example.org",
                                                  "code": "zzz"}]},
                             key: {"reference": "Patient/someone-else"}}
    with pytest.raises(PatientMismatch, match="someone-else"):
        features_from_fhir(bundle(patient(), bp("b", 150, 90, "2026-11-20"), other), AS_OF)


def test_a_medication_of_another_patient_is_refused() -> None:
    med = med_request("m", "314076")
    med["subject"] = {"reference": "Patient/someone-else"}
    with pytest.raises(PatientMismatch):
        features_from_fhir(bundle(patient(), med), AS_OF)


# ------------------------------------------------------------------------------ availability


def test_every_key_present_means_everything_was_obtained() -> None:
    fv, _ = features_from_fhir(prefetch(), AS_OF)
    assert fv.unavailable == {}


def test_null_prefetch_keys_mean_none_recorded() -> None:
    fv, _ = features_from_fhir(prefetch(medications=None, statements=None, allergies=None),
                               AS_OF)
    assert fv.unavailable == {}


@pytest.mark.parametrize(("key", "domain"), [
    ("medications", "medications"), ("statements", "medications"),
    ("conditions", "conditions"), ("allergies", "allergies"), ("labs", "labs")])
def test_an_absent_prefetch_key_is_unavailable(key: str, domain: str) -> None:
    fv, _ = features_from_fhir(prefetch(**{key: ...}), AS_OF)
    assert set(fv.unavailable) == {domain}
    assert key in fv.unavailable[domain]


def test_an_operation_outcome_under_a_key_is_unavailable() -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "exception"}]}
    fv, _ = features_from_fhir(prefetch(medications=outcome), AS_OF)
    assert set(fv.unavailable) == {"medications"}


def test_the_callers_reasons_are_kept() -> None:
    fv, _ = features_from_fhir(prefetch(conditions=...), AS_OF,
                               unavailable={"conditions": "FHIR server answered 500"})
    assert fv.unavailable == {"conditions": "FHIR server answered 500"}


def test_a_plain_bundle_is_the_record_as_it_stands() -> None:
    fv, _ = features_from_fhir(bundle(patient(), bp("b", 150, 90, "2026-11-20")), AS_OF)
    assert fv.unavailable == {}


def test_a_bundle_with_an_error_outcome_lacks_everything_it_cannot_place() -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "timeout"}]}
    fv, _ = features_from_fhir(bundle(patient(), bp("b", 150, 90, "2026-11-20"), outcome),
                               AS_OF)
    assert set(fv.unavailable) == {"medications", "conditions", "allergies", "labs"}


def test_a_warning_outcome_is_no_gap() -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "warning", "code": "informational"}]}
    fv, _ = features_from_fhir(bundle(patient(), outcome), AS_OF)
    assert fv.unavailable == {}


def test_a_searchset_with_pages_not_sent_is_incomplete() -> None:
    meds = searchset(med_request("m", "314076"),
                     self_url="https://ehr.example/fhir/MedicationRequest?patient=p1")
    meds["link"].append({"relation": "next", "url": "https://ehr.example/fhir/page2"})
    fv, _ = features_from_fhir(bundle(patient(), meds), AS_OF)
    assert set(fv.unavailable) == {"medications"}


def test_a_failed_batch_entry_is_a_gap() -> None:
    doc = {"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": patient(), "response": {"status": "200 OK"}},
        {"resource": searchset(condition("c", "44054006")), "response": {"status": "200 OK"}},
        {"response": {"status": "500 Internal Server Error"}}]}
    fv, _ = features_from_fhir(doc, AS_OF)
    assert set(fv.unavailable) == {"medications", "conditions", "allergies", "labs"}


def test_parse_input_reports_the_domains() -> None:
    parsed = parse_input(prefetch(allergies=...))
    assert set(parsed.unavailable) == {"allergies"}


def test_a_lab_of_the_patient_in_a_plain_bundle_is_read() -> None:
    doc = bundle(patient(), obs("k", "2823-3", 4.1, "mmol/L", "2026-11-01"))
    assert features_from_fhir(doc, AS_OF)[0].values["potassium"] == 4.1
