"""Input forms (Bundles, prefetch, requests, resources) and typed errors for bad input."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from fhir_mappings.bundle import parse_input
from fhir_mappings.errors import (
    FhirVersionError,
    InputError,
    InvalidResource,
    MalformedJson,
    MissingPatient,
    MultiplePatients,
    PatientMismatch,
)
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.patient_record import build_record
from fhir_mappings.report import IssueKind
from tests.fhir_mappings.builders import (
    AS_OF,
    bp,
    bundle,
    condition,
    features,
    fixture,
    med_request,
    obs,
    patient,
    prov,
)


def test_prefetch_with_null_and_operation_outcome_keys() -> None:
    """null = no data; an OperationOutcome is reported and its data is unknown, not absent;
    an empty searchset is fine."""
    fv, report = features(fixture("prefetch_null_outcome.json"))
    assert fv.values["age"] == 72.0
    assert fv.values["sbp_clinic"] == 150.0
    assert fv.values["potassium"] is None
    assert report.count(IssueKind.PREFETCH_ERROR) == 1
    assert "labs" in report.issues[0].detail


def test_whole_cds_hooks_request_uses_its_prefetch() -> None:
    request = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
               "context": {"userId": "Practitioner/1", "patientId": "p1"},
               "prefetch": {"patient": patient(),
                            "bp": bundle(bp("b", 151, 93, "2026-11-01"), kind="searchset")}}
    fv, _ = features(request)
    assert fv.values["sbp_clinic"] == 151.0


def test_single_resource_and_array_of_resources() -> None:
    fv, _ = features(patient())
    assert fv.values["age"] == 70.0
    assert fv.values["sbp_clinic"] is None
    fv2, _ = features([patient(), bp("b", 140, 80, "2026-11-01")])
    assert fv2.values["sbp_clinic"] == 140.0


def test_bytes_and_str_and_parsed_input_agree() -> None:
    doc = fixture("bp_panel_85354.json")
    raw = orjson.dumps(doc)
    a = build_record(raw, AS_OF)
    b = build_record(raw.decode(), AS_OF)
    c = build_record(parse_input(doc), AS_OF)
    assert a == b == c


def test_transaction_bundle_with_urn_uuid_references() -> None:
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:aaaa", "resource": patient("aaaa"),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:bbbb",
         "resource": {**obs("k", "6298-4", 4.0, "mmol/L", "2026-10-01"),
                      "subject": {"reference": "urn:uuid:aaaa"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    assert features(doc)[0].values["potassium"] == 4.0


def test_nested_bundles_are_opened() -> None:
    inner = bundle(bp("b", 144, 88, "2026-11-01"), kind="searchset")
    doc = bundle(patient(), inner)
    assert features(doc)[0].values["sbp_clinic"] == 144.0


def test_a_resource_about_another_patient_refuses_the_whole_input() -> None:
    """One input is one patient's record: a resource of another patient means it was put
    together wrongly, so nothing of it is assessed (hazard H-01)."""
    other = obs("k", "2823-3", 6.5, "mmol/L", "2026-10-01", pid="someone-else")
    with pytest.raises(PatientMismatch, match="someone-else"):
        features(bundle(patient(), other))


def test_the_same_resource_under_two_prefetch_keys_counts_once() -> None:
    k = obs("k", "2823-3", 4.5, "mmol/L", "2026-10-01")
    doc = {"patient": patient(), "labs": bundle(k, kind="searchset"),
           "potassium": bundle(k, kind="searchset")}
    _, report = features(doc)
    assert report.resources_used == {"Observation": 1, "Patient": 1}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("data", [b"", b"{", b'{"resourceType": "Bundle",', b"\xff\xfe",
                                  "not json"])
def test_malformed_json(data: bytes | str) -> None:
    with pytest.raises(MalformedJson) as e:
        features_from_fhir(data, AS_OF)
    assert e.value.path == "$"


@pytest.mark.parametrize(("data", "path"), [
    (b"42", "$"), (b'"Bundle"', "$"), (b'{"patient": 3}', "$.patient"),
    (b'[{"resourceType": "Patient"}, 1]', "$[1]"),
    (b'{"resourceType": 7}', "$.resourceType"),
])
def test_json_that_is_not_fhir(data: bytes, path: str) -> None:
    with pytest.raises(MalformedJson) as e:
        features_from_fhir(data, AS_OF)
    assert e.value.path == path


def test_no_patient() -> None:
    with pytest.raises(MissingPatient):
        features(bundle(bp("b", 140, 80, "2026-11-01")))
    with pytest.raises(MissingPatient):
        features({"patient": None, "bp": bundle(kind="searchset")})


def test_several_patients() -> None:
    with pytest.raises(MultiplePatients) as e:
        features(bundle(patient("a"), patient("b")))
    assert "Patient/a" in str(e.value)
    assert "Patient/b" in str(e.value)
    features(bundle(patient("a"), patient("a")))  # the same Patient twice is one patient


@pytest.mark.parametrize(("resource", "path"), [
    ({**patient(), "meta": {"profile": [
        "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"]}},
     "$.entry[0].resource.meta.profile[0]"),
    ({**patient(), "meta": {"profile": ["http://hl7.org/fhir/5.0/StructureDefinition/Patient"]}},
     "$.entry[0].resource.meta.profile[0]"),
    ({**condition("c", "44054006"), "clinicalStatus": "active"},
     "$.entry[0].resource.clinicalStatus"),
    ({**condition("c", "44054006"), "assertedDate": "2020-01-01"},
     "$.entry[0].resource.assertedDate"),
    ({"resourceType": "MedicationStatement", "id": "m", "status": "active", "taken": "y",
      "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/p1"}},
     "$.entry[0].resource.taken"),
    ({"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
      "medication": {"concept": {"text": "ramipril"}}, "subject": {"reference": "Patient/p1"}},
     "$.entry[0].resource.medication"),
    ({**bp("b", 140, 80, "2026-11-01"), "triggeredBy": [{"type": "reflex"}]},
     "$.entry[0].resource.triggeredBy"),
    ({"resourceType": "MedicationUsage", "id": "u", "status": "recorded"},
     "$.entry[0].resource.resourceType"),
])
def test_other_fhir_releases_are_refused(resource: dict[str, Any], path: str) -> None:
    with pytest.raises(FhirVersionError) as e:
        features(bundle(resource, patient("p1")))
    assert e.value.path == path
    assert isinstance(e.value, InputError)


def test_fhir_version_field() -> None:
    with pytest.raises(FhirVersionError):
        features({**bundle(patient()), "fhirVersion": "5.0.0"})
    features({**bundle(patient()), "fhirVersion": "4.0.1"})


def test_wrong_json_type_in_a_field_we_read_names_resource_and_path() -> None:
    bad = bp("b", 140, 80, "2026-11-01")
    bad["component"][0]["valueQuantity"]["value"] = "140"
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), bad))
    assert e.value.path == "$.entry[1].resource.component[0].valueQuantity.value"
    assert e.value.resource_type == "Observation"
    assert e.value.resource_id == "b"
    assert "Observation/b" in str(e.value)


def test_used_resource_failing_r4_validation() -> None:
    """An element R4 does not define, in a resource that is used, fails validation with its
    path; the message does not quote the value."""
    bad = {**obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01"), "secretField": "Jane Doe"}
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), bad))
    assert e.value.path == "$.entry[1].resource.secretField"
    assert "Jane Doe" not in str(e.value)


def test_unused_invalid_resources_are_not_validated() -> None:
    """A Claim (never read) and an unused old Observation are not validated."""
    junk_claim = {"resourceType": "Claim", "id": "c", "nonsense": [1, 2, 3]}
    old = {**obs("k-old", "2823-3", 4.1, "mmol/L", "2019-01-01"), "nonsense": True}
    fv, report = features(bundle(patient(), junk_claim, old))
    assert report.resources_ignored == {"Claim": 1, "Observation": 1}
    assert fv.values["potassium"] is None


def test_bad_date_is_invalid_resource() -> None:
    bad = obs("k", "2823-3", 4.1, "mmol/L", "2026-13-45")
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), bad))
    assert e.value.path == "$.entry[1].resource.effectiveDateTime"


def test_invalid_patient_gender_type() -> None:
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(gender=5)))  # type: ignore[arg-type]
    assert e.value.path == "$.entry[0].resource.gender"


def test_errors_are_input_errors_with_paths() -> None:
    for data in (b"{", json.dumps(bundle()).encode()):
        with pytest.raises(InputError) as e:
            features_from_fhir(data, AS_OF)
        assert e.value.path


def test_medication_reference_to_a_non_medication() -> None:
    mr = med_request("m", "x")
    del mr["medicationCodeableConcept"]
    mr["medicationReference"] = {"reference": "Patient/p1"}
    _, report = features(bundle(patient(), mr))
    assert report.count(IssueKind.UNRESOLVED_REFERENCE) == 1


def test_provenance_of_missing_prefetch_data() -> None:
    fv, _ = features(fixture("prefetch_null_outcome.json"))
    assert prov(fv, "potassium").note == "no potassium result in the last 15 months"


def test_read_element_failing_r4_primitive_rules() -> None:
    """A dateTime without seconds is not valid R4 (even if Python can read it)."""
    bad = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01T10:00")
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), bad))
    assert e.value.path == "$.entry[1].resource.effectiveDateTime"


def test_required_element_missing_in_a_used_resource() -> None:
    mr = med_request("m", "314077")
    del mr["subject"]
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), mr))
    assert e.value.path == "$.entry[1].resource.subject"


def test_two_choice_types_at_once() -> None:
    k = {**obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01"), "valueString": "4.1"}
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), k))
    assert "only one value[x]" in str(e.value)


def test_elements_the_mapping_never_reads_are_not_validated() -> None:
    """A malformed address or narrative must not stop a blood-pressure assessment."""
    p = patient(address=[{"line": "not a list", "postalCode": 12}],
                text={"status": "nonsense", "div": "<p>not xhtml"})
    fv, _ = features(bundle(p, bp("b", 150, 90, "2026-11-01")))
    assert fv.values["sbp_clinic"] == 150.0


def test_hypertension_is_known_not_unknown() -> None:
    _, report = features(bundle(patient(), condition("h", "38341003"),
                                condition("i", "I10", "http://hl7.org/fhir/sid/icd-10")))
    assert report.unknown_codes == {}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400])
def test_non_finite_numbers_from_parsed_json(value: float) -> None:
    """Parsed JSON from a lenient parser (NaN, Infinity, huge ints) gives a typed error."""
    with pytest.raises(InvalidResource):
        features(bundle(patient(), obs("k", "2823-3", value, "mmol/L", "2026-10-01")))


def test_conflicting_duplicates_keep_the_later_updated_copy_in_any_order() -> None:
    old = {**obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01"),
           "meta": {"lastUpdated": "2026-10-01T10:00:00Z"}}
    new = {**obs("k", "2823-3", 4.6, "mmol/L", "2026-10-01"),
           "meta": {"lastUpdated": "2026-10-02T10:00:00Z"}}
    for order in ((old, new), (new, old)):
        fv, report = features(bundle(patient(), *order))
        assert fv.values["potassium"] == 4.6
        assert report.count(IssueKind.DUPLICATE) == 1


@pytest.mark.parametrize(("entry", "path"), [
    (5, "$.entry[1]"),
    ({"search": "match", "resource": {}}, "$.entry[1].search"),
    ({"search": {"mode": 1}, "resource": {}}, "$.entry[1].search.mode"),
    ({"resource": [1]}, "$.entry[1].resource"),
    ({"resource": "x", "search": {"mode": "outcome"}}, "$.entry[1].resource"),
    ({"fullUrl": 7, "resource": {"resourceType": "Basic"}}, "$.entry[1].fullUrl"),
])
def test_malformed_bundle_entries_name_their_path(entry: Any, path: str) -> None:
    doc = bundle(patient())
    doc["entry"].append(entry)
    with pytest.raises(InvalidResource) as e:
        features(doc)
    assert e.value.path == path


def test_entries_must_be_an_array() -> None:
    with pytest.raises(InvalidResource) as e:
        features({"resourceType": "Bundle", "type": "collection", "entry": {"resource": {}}})
    assert e.value.path == "$.entry"
