"""Validation of what the mapping uses against the FHIR R4 models.

FHIR release: R4 (4.0.1), validated with ``fhir.resources.R4B`` (4.3.0; the package has no R4
subpackage since 7.0, and R4B is R4 plus compatible corrections, so R4 payloads validate;
shared/research/cdshooks.md 3.3). The models check structure, cardinality and primitive
types (dates, codes, decimals, references), not code bindings.

What is validated: only resources that contribute to the record (a 2 MB Synthea Bundle holds
hundreds of Claims, ExplanationOfBenefits and unused Observations), and of each of them:

* the shape, against the R4B resource class's own field definitions: every top-level element
  name must be an R4 element of that resource, required elements must be present, and a
  choice element (``value[x]``, ``effective[x]`` ...) may appear once;
* every element the mapping reads (:data:`READ_ELEMENTS`; for ``extension``, the extensions
  it reads), each with the R4B type of that field (pydantic ``TypeAdapter`` over the
  class's field annotation: the same validators ``model_validate`` runs). Backbone elements
  and data types the mapping reads only part of (``component``, ``dosageInstruction``,
  ``extension``, ``reaction``: :data:`PARTS`) are checked the same way one level down;
* an element value already validated in the same run (the same ``subject`` or
  ``clinicalStatus`` on twenty resources) is not validated again.

Narrative, meta, identifiers, names, addresses and other elements the mapping never reads are
not validated: a malformed address must not stop a blood-pressure assessment, and validating
whole resources (``Observation.model_validate``: about 100 us each) would spend most of the
3 ms prefetch budget on elements nobody reads.

A failure raises :class:`~fhir_mappings.errors.InvalidResource` with the JSON path of the
first bad element; the message never quotes the value (it may be patient data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final, get_args, get_origin

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import TypeAdapter, ValidationError

from fhir_mappings import codes
from fhir_mappings.errors import InvalidResource
from fhir_mappings.raw import RawResource

MODELS: Final[dict[str, Any]] = {
    "Patient": Patient,
    "Observation": Observation,
    "Condition": Condition,
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "Medication": Medication,
    "AllergyIntolerance": AllergyIntolerance,
}


_COMMON = ("resourceType", "id", "modifierExtension", "implicitRules")
#: Top-level elements the mapping reads, per resource type ("[x]": all choice types).
READ_ELEMENTS: Final[dict[str, tuple[str, ...]]] = {
    "Patient": (*_COMMON, "gender", "birthDate", "deceased[x]", "extension"),
    "Observation": (*_COMMON, "status", "code", "subject", "effective[x]", "issued",
                    "value[x]", "dataAbsentReason", "component", "method", "category",
                    "performer", "extension"),
    "Condition": (*_COMMON, "clinicalStatus", "verificationStatus", "code", "subject",
                  "onset[x]", "abatement[x]", "recordedDate"),
    "MedicationRequest": (*_COMMON, "status", "intent", "doNotPerform", "medication[x]",
                          "subject", "authoredOn", "dosageInstruction", "contained"),
    "MedicationStatement": (*_COMMON, "status", "medication[x]", "subject", "effective[x]",
                            "dateAsserted", "dosage", "contained"),
    "Medication": (*_COMMON, "code", "ingredient"),
    "AllergyIntolerance": (*_COMMON, "clinicalStatus", "verificationStatus", "code",
                           "patient", "recordedDate", "onset[x]", "reaction"),
    # backbone elements and data types read element by element (see PARTS)
    "ObservationComponent": ("code", "value[x]", "dataAbsentReason"),
    "Dosage": ("timing", "doseAndRate"),
    "Timing": ("repeat", "code"),
    "TimingRepeat": ("frequency", "period", "periodUnit"),
    "DosageDoseAndRate": ("dose[x]",),
    "Extension": ("url", "value[x]", "extension"),
    "AllergyIntoleranceReaction": ("manifestation", "description"),
}
#: Elements validated element by element with their own class (the rest of the read
#: elements are validated whole with the type of their field).
PARTS: Final[dict[tuple[str, str], str]] = {
    ("Observation", "component"): "ObservationComponent",
    ("MedicationRequest", "dosageInstruction"): "Dosage",
    ("MedicationStatement", "dosage"): "Dosage",
    ("Dosage", "timing"): "Timing",
    ("Timing", "repeat"): "TimingRepeat",
    ("Dosage", "doseAndRate"): "DosageDoseAndRate",
    ("Patient", "extension"): "Extension",
    ("Observation", "extension"): "Extension",
    ("Extension", "extension"): "Extension",
    ("AllergyIntolerance", "reaction"): "AllergyIntoleranceReaction",
}
_EXACT: Final = {t: frozenset(e for e in els if not e.endswith("[x]"))
                 for t, els in READ_ELEMENTS.items()}
_CHOICES: Final = {t: tuple(e[:-3] for e in els if e.endswith("[x]"))
                   for t, els in READ_ELEMENTS.items()}
#: Extension URLs the mapping reads (other extensions of a resource are not validated).
READ_EXTENSIONS: Final = frozenset({
    *codes.UK_ETHNICITY_EXTENSIONS, codes.US_RACE_EXTENSION,
    codes.MEASUREMENT_SETTING_EXTENSION})


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the R4B class says about an element's children."""

    known: frozenset[str]
    required: tuple[str, ...]
    choices: tuple[tuple[str, tuple[str, ...], bool], ...]
    annotations: dict[str, Any]
    lists: frozenset[str]


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in get_args(annotation))


@cache
def _shape(class_name: str) -> _Shape:
    model = MODELS.get(class_name) or get_fhir_model_class(class_name)
    annotations: dict[str, Any] = {}
    required: list[str] = []
    groups: dict[str, tuple[list[str], bool]] = {}
    for name, f in model.model_fields.items():
        alias = f.alias or name
        annotations[alias] = f.annotation
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if f.is_required() or extra.get("element_required"):
            required.append(alias)
        group = extra.get("one_of_many")
        if isinstance(group, str):
            members, req = groups.setdefault(group, ([], False))
            members.append(alias)
            groups[group] = (members, req or bool(extra.get("one_of_many_required")))
    choices = tuple((g, tuple(m), r) for g, (m, r) in sorted(groups.items()))
    known = {*annotations} | ({"resourceType"} if class_name in MODELS else set())
    return _Shape(frozenset(known), tuple(required), choices, annotations,
                  frozenset(a for a, t in annotations.items() if _is_list(t)))


@cache
def _adapter(class_name: str, alias: str) -> TypeAdapter[Any]:
    return TypeAdapter(_shape(class_name).annotations[alias])


Seen = set[tuple[str, str, bytes]]


class Validator:
    """Validates resources of one mapping run; an element value already validated for the
    same field in this run (the same ``subject``, ``category`` or ``clinicalStatus`` repeated
    over twenty Observations or Conditions) is not validated again. Nothing outlives the run.
    """

    def __init__(self) -> None:
        self._seen: Seen = set()
        self.count = 0

    def validate(self, res: RawResource) -> None:
        validate(res, self._seen)
        self.count += 1


def validate(res: RawResource, seen: Seen | None = None) -> None:
    """Validate the shape and the read elements of one resource against its R4B class;
    raise InvalidResource naming the JSON path. ``seen``: element values already valid."""
    if res.resource_type in MODELS:
        _validate_object(res, res.resource_type, res.data, "", seen if seen is not None
                         else set())


def _validate_object(res: RawResource, class_name: str, obj: Any, path: str,
                     seen: Seen) -> None:
    if type(obj) is not dict:
        raise res.error("must be an object", path)
    shape = _shape(class_name)
    for key in obj:
        if key not in shape.known:
            raise res.error(f"'{key}' is not an element of {class_name} in FHIR R4",
                            f"{path}.{key}")
    for alias in shape.required:
        if alias not in obj and f"_{alias}" not in obj:
            raise res.error(f"required element '{alias}' is missing", f"{path}.{alias}")
    for group, members, required in shape.choices:
        present = [m for m in members if m in obj]
        if len(present) > 1:
            raise res.error(f"only one {group}[x] is allowed", f"{path}.{present[1]}")
        if required and not present:
            raise res.error(f"required element {group}[x] is missing", f"{path}.{group}")
    exact, choices = _EXACT[class_name], _CHOICES[class_name]
    for key, value in obj.items():
        bare = key[1:] if key[:1] == "_" else key
        if key == "resourceType" or (
                bare not in exact and not (choices and bare.startswith(choices))):
            continue
        part = PARTS.get((class_name, key))
        if part is None:
            _validate_element(res, class_name, key, value, f"{path}.{key}", seen)
            continue
        if key not in shape.lists:
            _validate_object(res, part, value, f"{path}.{key}", seen)
            continue
        if type(value) is not list:
            raise res.error(f"'{key}' must be an array", f"{path}.{key}")
        for i, item in enumerate(value):
            if (key == "extension" and class_name in MODELS and isinstance(item, dict)
                    and item.get("url") not in READ_EXTENSIONS):
                continue  # an extension the mapping does not read
            _validate_object(res, part, item, f"{path}.{key}[{i}]", seen)


def _validate_element(res: RawResource, class_name: str, key: str, value: Any, path: str,
                      seen: Seen) -> None:
    try:
        memo = (class_name, key, orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        memo = None
    if memo in seen:
        return
    try:
        _adapter(class_name, key).validate_python(value)
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                               for p in first["loc"])
        raise InvalidResource(
            f"does not conform to FHIR R4 ({first['type']}: {first['msg']})",
            res.path + where, res.resource_type, res.id) from None
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
        raise InvalidResource(f"does not conform to FHIR R4 ({type(e).__name__})",
                              res.path + path, res.resource_type, res.id) from None
    if memo is not None:
        seen.add(memo)


def warm_up() -> None:
    """Build the validators once (the first validation of each type costs milliseconds)."""
    for resource_type, elements in READ_ELEMENTS.items():
        shape = _shape(resource_type)
        for alias in shape.annotations:
            bare = alias.lstrip("_")
            if any(bare == e or (e.endswith("[x]") and bare.startswith(e[:-3]))
                   for e in elements):
                _adapter(resource_type, alias)
    Patient.model_validate({"resourceType": "Patient", "gender": "unknown"})
    Observation.model_validate({
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": 1, "unit": "x"},
        "component": [{"code": {"text": "x"}, "valueQuantity": {"value": 1}}]})
    Condition.model_validate({"resourceType": "Condition", "subject": {"reference": "x"},
                              "code": {"text": "x"}})
    MedicationRequest.model_validate({
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": "x"}, "medicationCodeableConcept": {"text": "x"}})
    MedicationStatement.model_validate({
        "resourceType": "MedicationStatement", "status": "active",
        "subject": {"reference": "x"}, "medicationCodeableConcept": {"text": "x"}})
    Medication.model_validate({"resourceType": "Medication", "code": {"text": "x"}})
    AllergyIntolerance.model_validate({"resourceType": "AllergyIntolerance",
                                       "patient": {"reference": "x"}, "code": {"text": "x"}})
