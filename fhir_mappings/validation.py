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
  class's field annotation: the same validators ``model_validate`` runs).

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
from typing import Any, Final

import orjson
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
}
_EXACT: Final = {t: frozenset(e for e in els if not e.endswith("[x]"))
                 for t, els in READ_ELEMENTS.items()}
_CHOICES: Final = {t: tuple(e[:-3] for e in els if e.endswith("[x]"))
                   for t, els in READ_ELEMENTS.items()}
#: Extension URLs the mapping reads (other extensions are not validated).
READ_EXTENSIONS: Final = frozenset({
    *codes.UK_ETHNICITY_EXTENSIONS, codes.US_RACE_EXTENSION,
    codes.MEASUREMENT_SETTING_EXTENSION})


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the R4B class says about a resource's top-level elements."""

    known: frozenset[str]
    required: tuple[str, ...]
    choices: tuple[tuple[str, tuple[str, ...], bool], ...]
    annotations: dict[str, Any]


@cache
def _shape(resource_type: str) -> _Shape:
    model = MODELS[resource_type]
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
    return _Shape(frozenset({"resourceType", *annotations}), tuple(required), choices,
                  annotations)


@cache
def _adapter(resource_type: str, alias: str) -> TypeAdapter[Any]:
    return TypeAdapter(_shape(resource_type).annotations[alias])


def _check_shape(res: RawResource, shape: _Shape) -> None:
    data = res.data
    for key in data:
        if key not in shape.known:
            raise res.error(f"'{key}' is not an element of {res.resource_type} in FHIR R4",
                            f".{key}")
    for alias in shape.required:
        if alias not in data and f"_{alias}" not in data:
            raise res.error(f"required element '{alias}' is missing", f".{alias}")
    for group, members, required in shape.choices:
        present = [m for m in members if m in data]
        if len(present) > 1:
            raise res.error(f"only one {group}[x] is allowed", f".{present[1]}")
        if required and not present:
            raise res.error(f"required element {group}[x] is missing", f".{group}")


class Validator:
    """Validates resources of one mapping run; an element value already validated for the
    same field in this run (the same ``subject``, ``category`` or ``clinicalStatus`` repeated
    over twenty Observations or Conditions) is not validated again. Nothing outlives the run.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, bytes]] = set()
        self.count = 0

    def validate(self, res: RawResource) -> None:
        validate(res, self._seen)
        self.count += 1


def validate(res: RawResource, seen: set[tuple[str, str, bytes]] | None = None) -> None:
    """Validate the shape and the read elements of one resource against its R4B class;
    raise InvalidResource naming the JSON path. ``seen``: element values already valid."""
    if res.resource_type not in MODELS:
        return
    shape = _shape(res.resource_type)
    _check_shape(res, shape)
    exact, choices = _EXACT[res.resource_type], _CHOICES[res.resource_type]
    for key, value in res.data.items():
        bare = key[1:] if key[:1] == "_" else key
        if key == "resourceType" or (
                bare not in exact and not (choices and bare.startswith(choices))):
            continue
        kept = list(range(len(value))) if type(value) is list else []
        if key == "extension" and type(value) is list:
            kept = [i for i, e in enumerate(value)
                    if not isinstance(e, dict) or e.get("url") in READ_EXTENSIONS]
            value = [value[i] for i in kept]
        memo = None
        if seen is not None:
            try:
                memo = (res.resource_type, key, orjson.dumps(value))
            except (TypeError, orjson.JSONEncodeError):
                memo = None
            if memo in seen:
                continue
        try:
            _adapter(res.resource_type, key).validate_python(value)
        except ValidationError as e:
            first = e.errors(include_url=False, include_input=False)[0]
            loc = list(first["loc"])
            if loc and isinstance(loc[0], int) and loc[0] < len(kept):
                loc[0] = kept[loc[0]]
            path = f".{key}" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                       for p in loc)
            raise InvalidResource(
                f"does not conform to FHIR R4 ({first['type']}: {first['msg']})",
                res.path + path, res.resource_type, res.id) from None
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
            raise InvalidResource(f"does not conform to FHIR R4 ({type(e).__name__})",
                                  f"{res.path}.{key}", res.resource_type, res.id) from None
        if memo is not None and seen is not None:
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
