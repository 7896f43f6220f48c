"""R4 validation of what the mapping uses (fhir_mappings.validation): invalid values fail
where they are, with the JSON path of the first bad element and without the value; and the
walker accepts exactly what the R4B models' own validators accept."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fhir_mappings.errors import InvalidResource
from fhir_mappings.validation import _check, _Invalid, _shape, _walk
from tests.fhir_mappings.builders import (
    LOINC,
    SNOMED,
    Json,
    bp,
    bundle,
    concept,
    condition,
    features,
    med_request,
    obs,
    patient,
)

SECRET = "Jane-Doe-1957"


def allergy(aid: str, code: str) -> Json:
    return {"resourceType": "AllergyIntolerance", "id": aid, "code": concept(SNOMED, code),
            "patient": {"reference": "Patient/p1"}}


def _fails(resource: Json, path: str, *also: Json) -> InvalidResource:
    with pytest.raises(InvalidResource) as e:
        features(bundle(patient(), resource, *also))
    assert e.value.path == "$.entry[1].resource" + path, str(e.value)
    assert SECRET not in str(e.value)
    return e.value


# ------------------------------------------------------------------ where invalid values fail


def test_bad_date_deep_in_a_component_value() -> None:
    """A component's valueQuantity is read; a bad dateTime in a Period inside an extension
    of that Quantity's sibling (valuePeriod is another choice) is found where it is."""
    b = bp("b", 150, 90, "2026-11-01")
    b["component"][0]["code"]["coding"][0]["extension"] = [
        {"url": "http://example.org/when", "valuePeriod": {"start": "2026-02-30T10:00:00Z"}}]
    e = _fails(b, ".component[0].code.coding[0].extension[0].valuePeriod.start")
    assert "does not conform to FHIR R4" in e.reason


def test_bad_datetime_without_time_zone_in_effective() -> None:
    _fails(obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01T10:00:00"), ".effectiveDateTime")


def test_bad_code_in_a_coding() -> None:
    """A code with leading whitespace or a double space is not an R4 code."""
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["code"]["coding"].append({"system": LOINC, "code": "  2823-3"})
    _fails(k, ".code.coding[1].code")
    c = condition("c", "44054006")
    c["verificationStatus"] = concept(
        "http://terminology.hl7.org/CodeSystem/condition-ver-status", "con  firmed")
    _fails(c, ".verificationStatus.coding[0].code")


def test_bad_status_code() -> None:
    _fails(obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01", status=" final"), ".status")


def test_wrong_type_in_a_coding() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["code"]["coding"].append({"system": LOINC, "code": "x", "userSelected": "maybe"})
    _fails(k, ".code.coding[1].userSelected")
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["category"] = [{"coding": [{"system": 42, "code": "laboratory"}]}]
    _fails(k, ".category[0].coding[0].system")


def test_non_array_where_an_array_is_required() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["category"] = [{"coding": {"system": LOINC, "code": "x"}}]
    e = _fails(k, ".category[0].coding")
    assert "array" in e.reason
    c = condition("c", "44054006")
    c["clinicalStatus"] = {"coding": {"code": "active"}}
    with pytest.raises(InvalidResource) as err:
        features(bundle(patient(), c))
    assert err.value.path == "$.entry[1].resource.clinicalStatus.coding"


def test_null_inside_an_array_of_complex_values() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["category"] = [None]
    _fails(k, ".category[0]")


def test_object_where_a_primitive_is_required() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["subject"]["display"] = {"text": SECRET}
    _fails(k, ".subject.display")


def test_string_where_an_object_is_required() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["category"] = [json.dumps({"text": "laboratory"})]
    _fails(k, ".category[0]")


def test_unknown_element_in_a_data_type() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["subject"]["name"] = SECRET
    e = _fails(k, ".subject.name")
    assert "'name' is not an element of Reference" in e.reason
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["valueQuantity"]["precision"] = 2
    _fails(k, ".valueQuantity.precision")
    # a Python field name of the model is not a FHIR element name
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["code"]["text__ext"] = {"id": "x"}
    _fails(k, ".code.text__ext")


def test_unknown_element_in_a_backbone_element() -> None:
    b = bp("b", 150, 90, "2026-11-01")
    b["component"][1]["note"] = SECRET
    _fails(b, ".component[1].note")


def test_bad_value_in_a_dosage() -> None:
    mr = med_request("m", "314076")
    mr["dosageInstruction"] = [{"timing": {"repeat": {"frequency": -1, "period": 1,
                                                       "periodUnit": "d"}}}]
    _fails(mr, ".dosageInstruction[0].timing.repeat.frequency")
    mr["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": {"value": "one"}}]}]
    _fails(mr, ".dosageInstruction[0].doseAndRate[0].doseQuantity.value")


def test_required_element_missing_inside_a_data_type() -> None:
    """Extension.url is required, also in an extension nested in a read element."""
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["valueQuantity"]["extension"] = [{"valueString": SECRET}]
    e = _fails(k, ".valueQuantity.extension[0].url")
    assert "required" in e.reason


def test_two_choice_types_inside_a_data_type() -> None:
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["code"]["extension"] = [{"url": "http://example.org/x", "valueString": "a",
                               "valueBoolean": True}]
    e = _fails(k, ".code.extension[0].valueString")
    assert "only one value[x]" in e.reason


def test_primitive_extension_sibling_is_validated_by_its_model() -> None:
    """``_status`` (FHIRPrimitiveExtension) needs an id or extensions."""
    k = {**obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01"), "_status": {}}
    _fails(k, "._status")
    k = {**obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01"),
         "_status": {"extension": [{"url": "http://example.org/x", "valueString": "a"}]}}
    features(bundle(patient(), k))


def test_bad_value_in_a_read_extension_of_the_patient() -> None:
    p = patient(extension=[{
        "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
        "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/"
                                             "UKCore-EthnicCategoryEngland", "code": ""}]}}])
    with pytest.raises(InvalidResource) as e:
        features(bundle(p))
    assert e.value.path == ("$.entry[0].resource.extension[0].valueCodeableConcept.coding[0]"
                            ".code")


def test_bad_reaction_manifestation_of_a_used_allergy() -> None:
    a = allergy("a", "372733002")
    a["reaction"] = [{"manifestation": [{"coding": [{"code": 5}]}]}]
    _fails(a, ".reaction[0].manifestation[0].coding[0].code")


def test_valid_rich_values_pass() -> None:
    """Valid R4 extras in read elements (extensions, periods, identifiers) are accepted."""
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["subject"] = {"reference": "Patient/p1", "type": "Patient",
                    "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                   "value": "9000000009", "period": {"start": "2020"}}}
    k["code"]["extension"] = [{"url": "http://example.org/x", "valueDateTime": "2026-10"}]
    k["code"]["_text"] = {"extension": [{"url": "http://example.org/y", "valueCode": "a"}]}
    k["valueQuantity"]["comparator"] = "<"
    fv, _ = features(bundle(patient(), k))
    assert fv.values["potassium"] == 4.1


# ------------------------------------------------- the walker agrees with the R4B models

#: (class, element) -> a valid value; the walker and the model must agree on every mutation.
BASES: list[tuple[str, str, Any]] = [
    ("Observation", "code", {"coding": [{"system": LOINC, "code": "2823-3",
                                         "display": "Potassium", "userSelected": True}],
                             "text": "K"}),
    ("Observation", "category", [concept("http://terminology.hl7.org/CodeSystem/"
                                         "observation-category", "laboratory")]),
    ("Observation", "subject", {"reference": "Patient/p1", "type": "Patient",
                                "identifier": {"value": "1", "period": {"start": "2020"}}}),
    ("Observation", "valueQuantity", {"value": 4.1, "unit": "mmol/L", "comparator": "<",
                                      "system": "http://unitsofmeasure.org",
                                      "code": "mmol/L"}),
    ("Observation", "effectivePeriod", {"start": "2026-10-01T10:00:00Z", "end": "2026-10"}),
    ("Observation", "performer", [{"reference": "Patient/p1"}, {"display": "x"}]),
    ("Observation", "extension", [{"url": "http://example.org/a", "valueCodeableConcept":
                                   concept(LOINC, "x")},
                                  {"url": "http://example.org/b", "extension": [
                                      {"url": "c", "valueInteger": 3}]}]),
    ("Condition", "onsetPeriod", {"start": "2020-01-01", "extension": [
        {"url": "http://example.org/d", "valueDate": "2020-02"}]}),
    ("Condition", "abatementAge", {"value": 40, "unit": "a", "system":
                                   "http://unitsofmeasure.org", "code": "a"}),
    ("MedicationRequest", "medicationReference", {"reference": "#m1", "display": "x"}),
    ("MedicationRequest", "dosageInstruction", [{
        "text": "one daily", "timing": {"repeat": {"frequency": 1, "period": 1,
                                                   "periodUnit": "d"}, "code": {"text": "QD"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]),
    ("MedicationRequest", "contained", [{"resourceType": "Medication", "id": "m1",
                                         "code": concept(LOINC, "x")}]),
    ("Observation", "component", [{"code": concept(LOINC, "8480-6"),
                                   "valueQuantity": {"value": 150, "unit": "mmHg"}}]),
]
NAMES = ["id", "extension", "text", "coding", "system", "code", "display", "value", "unit",
         "reference", "type", "start", "end", "comparator", "userSelected", "version",
         "identifier", "_text", "_code", "url", "valueString", "valueBoolean", "period",
         "resourceType", "foo", "timing", "repeat", "frequency", "doseQuantity"]


def _no_json_object(s: str) -> bool:
    try:
        return not isinstance(json.loads(s), dict)
    except ValueError:
        return True


LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**40, 2**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6).filter(_no_json_object),
    st.sampled_from(["", " ", "a  b", " x", "2026-13-01", "2026-02-30", "2026-10-01T10:00",
                     "2026-10-01T10:00:00Z", "2026", "2026-1", "urn:uuid:x", "Patient/p1",
                     "mm[Hg]", "<", "4.1", "1e3", "CodeableConcept", "Coding", "d", "wk"]),
    st.just([]), st.just({}), st.just([None]), st.just({"url": "http://x"}),
    st.just({"text": "x"}), st.just([{"code": "a"}]))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, Any]:
    class_name, key, base = draw(st.sampled_from(BASES))
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        node: Any = value
        for p in path[:-1]:
            node = node[p]
        how = draw(st.sampled_from(["delete", "replace", "add"]))
        if not path:
            if how == "replace":
                value = copy.deepcopy(draw(LEAVES))
            continue
        target = node[path[-1]]
        if how == "delete" and isinstance(node, dict):
            del node[path[-1]]
        elif how == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(NAMES))] = copy.deepcopy(draw(LEAVES))
        else:
            node[path[-1]] = copy.deepcopy(draw(LEAVES))
    return class_name, key, value


#: The smallest valid resource of each class, to validate an element in its resource.
OWNERS: dict[str, Json] = {
    "Observation": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
    "Condition": {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}},
    "MedicationRequest": {"resourceType": "MedicationRequest", "status": "active",
                          "intent": "order", "subject": {"reference": "Patient/p1"},
                          "medicationCodeableConcept": {"text": "x"}},
}


def _owner(class_name: str, key: str, value: Any) -> Json:
    owner = copy.deepcopy(OWNERS[class_name])
    for _group, members, _required in _shape(class_name).choices:
        if key in members:
            for m in members:
                owner.pop(m, None)
    owner[key] = value
    return owner


def _model_accepts(class_name: str, key: str, value: Any) -> bool:
    """Whether ``model_validate`` of the resource accepts the element (with everything
    else of the resource valid)."""
    try:
        get_fhir_model_class(class_name).model_validate(_owner(class_name, key, value))
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError):
        return False
    return True


def _walker_verdict(class_name: str, key: str, value: Any) -> _Invalid | None:
    """The walker's verdict on the resource, walked whole (None: valid)."""
    try:
        _walk(_shape(class_name), _owner(class_name, key, value))
    except _Invalid as e:
        return e
    return None


def _walker_accepts(class_name: str, key: str, value: Any) -> bool:
    return _walker_verdict(class_name, key, value) is None


def _at(doc: Any, loc: list[str | int]) -> Any:
    for p in reversed(loc):
        doc = doc[p] if isinstance(doc, dict | list) else None
    return doc


def _null_required_element(class_name: str, key: str, value: Any,
                           verdict: _Invalid | None) -> bool:
    """The one case where the walker is stricter than the models on purpose: a required
    complex element sent as null (``"code": null``) is missing (the models take it)."""
    return (verdict is not None and verdict.reason.startswith("required element")
            and _at(_owner(class_name, key, value), verdict.loc) is None)


@settings(max_examples=int(os.environ.get("WALKER_N", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_walker_accepts_what_the_r4b_models_accept(case: tuple[str, str, Any]) -> None:
    """Random mutations of valid elements (values replaced, keys added or deleted): the
    walker rejects exactly what ``model_validate`` of the resource rejects."""
    class_name, key, value = case
    verdict = _walker_verdict(class_name, key, value)
    model = _model_accepts(class_name, key, value)
    if model and _null_required_element(class_name, key, value, verdict):
        return
    assert (verdict is None) == model, (class_name, key, value, verdict and verdict.reason)


@pytest.mark.parametrize(("class_name", "key", "value"), BASES)
def test_bases_are_valid(class_name: str, key: str, value: Any) -> None:
    assert _model_accepts(class_name, key, value)
    assert _walker_accepts(class_name, key, value)


def test_backbone_classes_are_walked_whole_like_the_model() -> None:
    comp = {"code": concept(LOINC, "8480-6"), "valueQuantity": {"value": 150}}
    _check(_shape("Observation").nodes["component"], [comp])
    with pytest.raises(_Invalid):
        _check(_shape("Observation").nodes["component"], [{**comp, "valueString": "x"}])
    with pytest.raises(_Invalid):
        _check(_shape("Observation").nodes["component"], [{"valueString": "x"}])  # no code


# ------------------------------------------------------ what outlives a run: codes only


def test_only_coded_values_are_kept_across_runs() -> None:
    """Coded CodeableConcepts are remembered as valid across runs; free text, references,
    dates and numbers are not (they can be patient data)."""
    from fhir_mappings import validation

    validation._CODED_VALID.clear()
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    k["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "observation-category", "code": "laboratory"}],
                      "text": f"lab for {SECRET}"}]
    k["method"] = {"text": SECRET}
    c = condition("c", "44054006", status=None,
                  clinicalStatus={"coding": [{"code": "active", "display": "Active"}],
                                  "text": "Active"})
    features(bundle(patient(), k, c))
    kept = b" ".join(dumped for _, dumped in validation._CODED_VALID)
    assert b"2823-3" in kept            # Observation.code: codes only
    assert b"Active" in kept            # a text that repeats a display
    assert SECRET.encode() not in kept  # free text
    assert b"Patient/p1" not in kept    # references
    assert b"2026-10-01" not in kept    # dates
    assert b"4.1" not in kept           # values
    assert b"laboratory" not in kept    # the category holds free text: not kept at all


def test_a_remembered_code_does_not_hide_an_invalid_one() -> None:
    good = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    good["code"]["coding"].append({"system": "http://example.org", "code": "K"})
    features(bundle(patient(), good))
    features(bundle(patient(), good))
    bad = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    bad["code"]["coding"].append({"system": "http://example.org", "code": "K "})
    _fails(bad, ".code.coding[1].code")


def test_the_cache_of_codes_is_bounded() -> None:
    from fhir_mappings import validation

    node = _shape("Observation").nodes["code"]
    for i in range(validation.CODED_CACHE_SIZE + 10):
        value = concept(LOINC, f"{i}-0")
        validation._check_repeated(node, value, ("Observation", "code", orjson.dumps(value)),
                                   set())
        assert len(validation._CODED_VALID) <= validation.CODED_CACHE_SIZE


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda k: k["code"]["coding"][0].update(display=5), ".code.coding[0].display"),
    (lambda k: k["code"]["coding"].insert(0, "2823-3"), ".code.coding[0]"),
    (lambda k: k["code"].update(text=["K"]), ".code.text"),
    (lambda k: k["code"].update(coding={"code": "2823-3"}), ".code.coding"),
    (lambda k: k.update(code="2823-3"), ".code"),
    (lambda k: k.update(status=1), ".status"),
    (lambda k: k.update(effectiveDateTime=20261001), ".effectiveDateTime"),
    (lambda k: k.update(subject={"reference": 1}), ".subject.reference"),
    (lambda k: k["valueQuantity"].update(unit=["mmol/L"]), ".valueQuantity.unit"),
])
def test_wrong_json_types_where_the_mapping_reads_fail_before_validation(
        mutate: Any, path: str) -> None:
    """The mapping's own typed reads (fast paths included) name the element."""
    k = obs("k", "2823-3", 4.1, "mmol/L", "2026-10-01")
    mutate(k)
    _fails(k, path)


def test_a_null_backbone_element_that_is_read_is_invalid() -> None:
    """Backbone elements read element by element must be objects (arrays), never null."""
    mr = med_request("m", "314076")
    mr["dosageInstruction"] = [{"timing": None}]
    _fails(mr, ".dosageInstruction[0].timing")
    mr["dosageInstruction"] = None
    _fails(mr, ".dosageInstruction")
    b = bp("b", 150, 90, "2026-11-01")
    b["component"].append(None)
    _fails(b, ".component[2]")
