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
  it reads), each with the R4B type of that field. Backbone elements and data types the
  mapping reads only part of (``component``, ``dosageInstruction``, ``extension``,
  ``reaction``: :data:`PARTS`) are checked the same way one level down;
* an element value already validated in the same run (the same ``subject`` or
  ``clinicalStatus`` on twenty resources) is not validated again.

How a read element is checked: the JSON value is walked against the R4B classes' field
definitions (``model_fields``, compiled once per class into :class:`_Shape`) down to
primitives, without building model objects. For a complex data type (CodeableConcept,
Coding, Reference, Quantity, Period ...) that is what ``model_validate`` checks too: the
value is an object, every key is an element of the type, required elements are present,
one choice type at most, arrays are arrays without nulls, and each element has its type.
Primitive values are validated by the ``fhir_core`` primitive types themselves (a pydantic
validator built once per type from the field's own annotation: the same regex patterns,
date/dateTime/instant/decimal validators that ``model_validate`` runs). The few classes
with validators of their own (``FHIRPrimitiveExtension``, the ``_element`` siblings of
primitives) and ``contained`` resources are validated by their pydantic validator, so
nothing the models check is lost. Three details are stricter than ``model_validate``: keys
must be FHIR element names (pydantic also takes its Python field names, ``text__ext``), a
complex element must be a JSON object (pydantic also parses a JSON *string*), and a
required element sent as ``null`` is missing (pydantic takes ``"code": null`` for a
required complex element). tests/fhir_mappings/test_validation.py checks the walker against
``model_validate`` on random mutations of valid elements.

Narrative, meta, identifiers, names, addresses and other elements the mapping never reads are
not validated: a malformed address must not stop a blood-pressure assessment, and validating
whole resources (``Observation.model_validate``: about 100 us each) would spend most of the
prefetch budget on elements nobody reads.

A failure raises :class:`~fhir_mappings.errors.InvalidResource` with the JSON path of the
first bad element; the message never quotes the value (it may be patient data).

Memos: in a run (:class:`Validator`), a reference or coded element already valid (the same
``subject`` on twenty resources) and a date or decimal already valid for the same field are
not validated again. Across runs, only valid coded values made of codes alone (no free
text, ids or extensions: :func:`_only_codes`) are remembered, in a bounded set
(:data:`CODED_CACHE_SIZE`); dates, references, numbers and text never outlive a run.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Union, get_args, get_origin

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir_core import types as fhir_types
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import TypeAdapter, ValidationError

from fhir_mappings import codes
from fhir_mappings.errors import InvalidResource
from fhir_mappings.raw_resource import RawResource

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
#: Extension URLs the mapping reads (other extensions of a resource are not validated).
READ_EXTENSIONS: Final = frozenset({
    *codes.UK_ETHNICITY_EXTENSIONS, codes.US_RACE_EXTENSION,
    codes.MEASUREMENT_SETTING_EXTENSION})

#: Model validators every FHIR model has (replicated by :func:`_walk`); a class with any
#: other validator is validated by pydantic.
_STANDARD_VALIDATORS: Final = frozenset({"reject_null_complex_elements",
                                         "validate_after_model_construction"})


class _Invalid(Exception):
    """A bad element; ``loc`` is its location from the innermost key outwards."""

    def __init__(self, reason: str, *loc: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.loc: list[str | int] = list(reversed(loc))


@dataclass(frozen=True, slots=True)
class _Node:
    """How one element value is checked: as an array of ``item`` (``nullable``: null items
    allowed, the placeholders of primitive arrays), as an object of the R4B class ``model``
    (walked), or by ``check`` (a pydantic validator of the field's own type)."""

    item: _Node | None = None
    nullable: bool = False
    model: type | None = None
    check: Callable[[Any], object] | None = None
    #: the check runs Python code (dates, times, decimals): worth a per-run memo
    costly: bool = False


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the R4B class says about an element's children."""

    name: str
    resource_type: str
    known: frozenset[str]
    required: tuple[str, ...]
    choices: tuple[tuple[str, tuple[str, ...], bool], ...]
    annotations: dict[str, Any]
    lists: frozenset[str]
    nodes: dict[str, _Node]
    #: member -> group of every choice group, and whether any group is required
    choice_members: dict[str, str]
    choice_required: bool


@dataclass(frozen=True, slots=True)
class _Read:
    """The elements of a class the mapping reads (top level of a resource, or a part):
    for each element name (``_element`` siblings included), its node, how it is checked
    (one of the ``_AS_*`` modes) and, for parts, the class it is read element by element
    as; with the class's shape."""

    shape: _Shape
    plan: dict[str, tuple[_Node, int, str | None]]
    filter_extensions: bool


_AS_COSTLY_PRIMITIVE, _AS_REPEATED, _AS_VALUE, _AS_PART, _AS_PARTS = range(5)
#: Data types whose values repeat across the resources of one record (the same subject,
#: the same category): memoised per run. Measured values (Quantity, Period ...) are not.
_REPEATED_TYPES: Final = frozenset({"Reference", "CodeableConcept", "Coding"})


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in get_args(annotation))


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """(annotation without ``| None``, whether None was allowed)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


@cache
def _validator(annotation: Any) -> Callable[[Any], object]:
    """The pydantic validator of a type (built once per type; the core validator itself,
    without ``TypeAdapter``'s Python wrapper)."""
    check: Callable[[Any], object] = TypeAdapter(annotation).validator.validate_python
    return check


def _walkable(model: type) -> bool:
    decorators = getattr(model, "__pydantic_decorators__", None)
    if decorators is None:
        return False
    return (set(decorators.model_validators) <= _STANDARD_VALIDATORS
            and not decorators.field_validators)


def _node(annotation: Any) -> _Node:
    inner, _optional = _without_none(annotation)
    if get_origin(inner) is list:
        (item,) = get_args(inner)
        item_type, nullable = _without_none(item)
        return _Node(item=_node(item_type), nullable=nullable)
    if (isinstance(inner, type) and issubclass(inner, FhirBase)
            and not issubclass(inner, FhirElementOrResourceBase)):
        model = inner.get_model_klass()
        if _walkable(model):
            return _Node(model=model)
    metadata = getattr(inner, "__metadata__", ())
    return _Node(check=_validator(inner),
                 costly=any(isinstance(m, _COSTLY_PRIMITIVES) for m in metadata))


#: fhir_core primitive types validated in Python (the others are regexes in pydantic-core).
_COSTLY_PRIMITIVES: Final = (fhir_types.Date, fhir_types.Time, fhir_types.Decimal)

_HASHABLE: Final = frozenset({str, int, float})

_SHAPES: dict[type, _Shape] = {}


def _model_shape(model: type) -> _Shape:
    shape = _SHAPES.get(model)
    if shape is not None:
        return shape
    annotations: dict[str, Any] = {}
    required: list[str] = []
    groups: dict[str, tuple[list[str], bool]] = {}
    for name, f in model.model_fields.items():  # type: ignore[attr-defined]
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
    name = model.__name__
    known = {*annotations} | ({"resourceType"} if name in MODELS else set())
    shape = _Shape(name, getattr(model, "__resource_type__", name), frozenset(known),
                   tuple(required), choices, annotations,
                   frozenset(a for a, t in annotations.items() if _is_list(t)),
                   {a: _node(t) for a, t in annotations.items()},
                   {m: g for g, members, _ in choices for m in members},
                   any(r for _, _, r in choices))
    _SHAPES[model] = shape
    _register_coded(shape)
    return shape


@cache
def _shape(class_name: str) -> _Shape:
    return _model_shape(MODELS.get(class_name) or get_fhir_model_class(class_name))


#: _read of each class, once built (a dict lookup instead of a cached call).
_READS: dict[str, _Read] = {}


def _read(class_name: str) -> _Read:
    elements = READ_ELEMENTS[class_name]
    exact = frozenset(e for e in elements if not e.endswith("[x]"))
    choices = tuple(e[:-3] for e in elements if e.endswith("[x]"))
    shape = _shape(class_name)
    plan: dict[str, tuple[_Node, int, str | None]] = {}
    for key, node in shape.nodes.items():
        bare = key[1:] if key[:1] == "_" else key
        if key == "resourceType" or not (bare in exact
                                         or (choices and bare.startswith(choices))):
            continue
        part = PARTS.get((class_name, key))
        inner = node.item if node.item is not None else node
        if part is not None:
            mode = _AS_PARTS if key in shape.lists else _AS_PART
        elif node.costly:
            mode = _AS_COSTLY_PRIMITIVE
        elif inner.model is not None and inner.model.__name__ in _REPEATED_TYPES:
            mode = _AS_REPEATED
        else:
            mode = _AS_VALUE
        plan[key] = (node, mode, part)
    read = _READS[class_name] = _Read(shape, plan, class_name in MODELS)
    return read


#: Element values already valid in this run: (class, element, JSON) of complex values and
#: (node id, type, value) of primitives validated in Python.
Seen = set[tuple[object, ...]]


class Validator:
    """Validates resources of one mapping run; an element value already validated for the
    same field in this run (the same ``subject``, ``category`` or ``clinicalStatus`` repeated
    over twenty Observations or Conditions) is not validated again. Its memo ends with the
    run (only codes are remembered across runs: see the module docstring).
    """

    def __init__(self) -> None:
        self._seen: Seen = set()
        self.count = 0

    def validate(self, res: RawResource) -> None:
        if res.resource_type in MODELS:
            _validate(res, self._seen)
        self.count += 1


def validate(res: RawResource, seen: Seen | None = None) -> None:
    """Validate the shape and the read elements of one resource against its R4B class;
    raise InvalidResource naming the JSON path. ``seen``: element values already valid."""
    if res.resource_type in MODELS:
        _validate(res, seen if seen is not None else set())


def _validate(res: RawResource, seen: Seen) -> None:
    try:
        _walk_read(res.resource_type, res.data, seen)
    except _Invalid as e:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(e.loc))
        raise InvalidResource(e.reason, res.path + where, res.resource_type, res.id) from None


def _present(obj: Mapping[str, Any], alias: str) -> bool:
    """A required element is there: a value, or (primitives) an ``_element`` sibling with
    extensions (https://hl7.org/fhir/R4/extensibility.html#Special-Case)."""
    if obj.get(alias) is not None:
        return True
    ext = obj.get(f"_{alias}")
    return isinstance(ext, Mapping) and bool(ext.get("extension"))


def _check_unknown(shape: _Shape, obj: Mapping[str, Any]) -> None:
    known = shape.known
    if known.issuperset(obj):
        return
    for key in obj:
        if key not in known and not (key == "resourceType"
                                     and obj[key] in (None, shape.resource_type)):
            raise _Invalid(f"'{key}' is not an element of {shape.name} in FHIR R4", key)


def _check_cardinality(shape: _Shape, obj: Mapping[str, Any]) -> None:
    """Required elements and choice types of one object."""
    for alias in shape.required:
        if obj.get(alias) is None and not _present(obj, alias):
            raise _Invalid(f"required element '{alias}' is missing", alias)
    if not shape.choices:
        return
    if not shape.choice_required:
        group_of = shape.choice_members
        hits = group_of.keys() & obj.keys()
        if len(hits) < 2 or len(set(map(group_of.__getitem__, hits))) == len(hits):
            return  # at most one element of each choice group: nothing to check
    for group, members, required in shape.choices:
        present = [m for m in members if obj.get(m) is not None]
        if len(present) > 1:
            raise _Invalid(f"only one {group}[x] is allowed", present[1])
        if required and not present:
            raise _Invalid(f"required element {group}[x] is missing", group)


def _walk_read(class_name: str, obj: Any, seen: Seen) -> None:
    """The structure of an object of ``class_name`` and the elements the mapping reads."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise _Invalid("must be an object")
    read = _READS.get(class_name) or _read(class_name)
    shape = read.shape
    if not shape.known.issuperset(obj):
        _check_unknown(shape, obj)
    if shape.required or shape.choices:
        _check_cardinality(shape, obj)
    plan = read.plan
    key = ""
    try:
        for key, value in obj.items():
            step = plan.get(key)
            if step is None:
                continue  # not read
            node, mode, part = step
            if value is None and part is None:
                continue  # absent (required elements are checked above; a part must not
                # be null: it is read element by element)
            if mode == _AS_COSTLY_PRIMITIVE:
                memo = (id(node), type(value), value) if type(value) in _HASHABLE else None
                if memo in seen:
                    continue  # (the same date on a panel of results)
                _check(node, value)
                if memo is not None:
                    seen.add(memo)
            elif mode == _AS_REPEATED:
                if type(value) is dict or type(value) is list:
                    try:
                        seen_as = (class_name, key, orjson.dumps(value))
                    except (TypeError, orjson.JSONEncodeError):
                        _check(node, value)
                        continue
                    if seen_as not in seen:  # (the same subject on every resource)
                        _check_repeated(node, value, seen_as, seen)
                else:
                    _check(node, value)
            elif mode == _AS_PART:
                _walk_read(part, value, seen)  # type: ignore[arg-type]
            elif mode == _AS_PARTS:
                if type(value) is not list:
                    raise _Invalid(f"'{key}' must be an array")
                _walk_read_items(part, value,  # type: ignore[arg-type]
                                 read.filter_extensions and key == "extension", seen)
            else:
                _check(node, value)
    except _Invalid as e:
        e.loc.append(key)
        raise


def _walk_read_items(part: str, items: list[Any], only_read_extensions: bool,
                     seen: Seen) -> None:
    for i, item in enumerate(items):
        if (only_read_extensions and isinstance(item, Mapping)
                and item.get("url") not in READ_EXTENSIONS):
            continue  # an extension the mapping does not read
        try:
            _walk_read(part, item, seen)
        except _Invalid as e:
            e.loc.append(i)
            raise


def _check_repeated(node: _Node, value: Any, memo: tuple[str, str, bytes],
                    seen: Seen) -> None:
    """A reference or coded element not yet seen in the run (``memo``: its class, element
    and JSON): valid codes are also remembered across runs."""
    dumped = memo[2]
    coded = _CODED_NODES.get(id(node))
    if coded is not None and (coded, dumped) in _CODED_VALID:
        seen.add(memo)
        return
    _check(node, value)
    seen.add(memo)
    if coded is not None and _only_codes(value):
        if len(_CODED_VALID) >= CODED_CACHE_SIZE:
            _CODED_VALID.clear()
        _CODED_VALID.add((coded, dumped))


#: Valid coded values seen in earlier runs: (type, JSON) of CodeableConcepts and Codings
#: (and arrays of them) that hold nothing but codes (:func:`_only_codes`). They are
#: vocabulary (the LOINC code of a potassium result, a clinicalStatus), not patient data;
#: nothing else outlives a run. Bounded: cleared when full.
CODED_CACHE_SIZE: Final = 4096
_CODED_VALID: set[tuple[str, bytes]] = set()
#: id(node) -> type name, for the nodes of CodeableConcept / Coding elements (and arrays).
_CODED_NODES: dict[int, str] = {}
_CODING_KEYS: Final = frozenset({"system", "version", "code", "display", "userSelected"})


def _only_codes(value: Any) -> bool:
    """A CodeableConcept, Coding, or array of them, made of codes only: codings with
    system, version, code, display and userSelected; a text only when it repeats a display
    (no ids, extensions or free text, which could be about the patient)."""
    if type(value) is list:
        return all(_only_codes(v) for v in value)
    if type(value) is not dict:
        return False
    codings = value.get("coding")
    if codings is None:  # a Coding
        return _CODING_KEYS.issuperset(value)
    if not (type(codings) is list and all(
            type(c) is dict and _CODING_KEYS.issuperset(c) for c in codings)):
        return False
    if len(value) == 1:
        return True
    text = value.get("text")
    return len(value) == 2 and text is not None and any(
        c.get("display") == text for c in codings)


def _register_coded(shape: _Shape) -> None:
    for node in shape.nodes.values():
        inner = node.item if node.item is not None else node
        if inner.model is not None and inner.model.__name__ in ("CodeableConcept", "Coding"):
            _CODED_NODES[id(node)] = inner.model.__name__ + ("[]" if node.item else "")


def _check(node: _Node, value: Any) -> None:
    """One element value against its node (raises _Invalid located inside the value)."""
    if value is None:
        return  # an absent optional element (required ones are checked by their owner)
    check = node.check
    if check is not None:
        try:
            check(value)
        except _PRIMITIVE_ERRORS as e:
            raise _primitive_error(e) from None
    elif node.model is not None:
        _walk(_SHAPES.get(node.model) or _model_shape(node.model), value)
    else:
        assert node.item is not None
        _check_items(node.item, node.nullable, value)


def _check_items(item: _Node, nullable: bool, value: Any) -> None:
    if type(value) is not list and not isinstance(value, list | tuple):
        raise _Invalid("must be an array")
    for i, v in enumerate(value):
        try:
            if v is None:
                if nullable:
                    continue
                raise _Invalid("null is not allowed in an array")
            _check(item, v)
        except _Invalid as e:
            e.loc.append(i)
            raise


_PRIMITIVE_ERRORS: Final = (ValidationError, ValueError, TypeError, AttributeError, KeyError,
                            RecursionError)


def _primitive_error(e: Exception) -> _Invalid:
    """The _Invalid of a failed pydantic validator (its first error; never the value)."""
    if isinstance(e, ValidationError):
        first = e.errors(include_url=False, include_input=False)[0]
        return _Invalid(f"does not conform to FHIR R4 ({first['type']}: {first['msg']})",
                        *first["loc"])
    return _Invalid(f"does not conform to FHIR R4 ({type(e).__name__})")


def _walk(shape: _Shape, obj: Any) -> None:
    """A whole object of a complex type: what ``model_validate`` checks, by walking."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise _Invalid(f"must be an object ({shape.name})")
    nodes = shape.nodes
    key = ""
    try:
        for key, value in obj.items():
            node = nodes.get(key)
            if node is None:
                if key == "resourceType" and value in (None, shape.resource_type):
                    continue  # the models take their own resource type
                raise _Invalid(f"'{key}' is not an element of {shape.name} in FHIR R4")
            _check(node, value)
    except _Invalid as e:
        e.loc.append(key)
        raise
    if shape.required or shape.choices:
        _check_cardinality(shape, obj)


def warm_up() -> None:
    """Build the validators once (the first validation of each type costs milliseconds)."""
    todo = [_read(name).shape for name in READ_ELEMENTS]
    done: set[str] = set()
    while todo:
        shape = todo.pop()
        if shape.name in done:
            continue
        done.add(shape.name)
        for node in shape.nodes.values():
            while node.item is not None:
                node = node.item
            if node.model is not None:
                todo.append(_model_shape(node.model))
    # the pydantic paths still used: contained resources and _element siblings
    Medication.model_validate({"resourceType": "Medication", "code": {"text": "x"},
                               "_status": {"extension": [{"url": "x", "valueString": "x"}]}})
