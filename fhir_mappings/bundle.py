"""Reading FHIR input: Bundles, CDS Hooks prefetch objects and single resources.

FHIR release: R4 (4.0.1), https://hl7.org/fhir/R4/bundle.html; CDS Hooks 2.0 prefetch
semantics (https://cds-hooks.hl7.org/2.0/#prefetch-template; shared/research/cdshooks.md 1.3):
a prefetch key holds a resource, a Bundle (searches), ``null`` (satisfied, no data) or an
OperationOutcome (the client failed to prefetch it: reported, not fatal).

:func:`parse_input` accepts JSON bytes/str or parsed JSON: a Bundle of any type (transaction,
searchset, collection, batch ...; nested Bundles are opened), a prefetch object
(key -> resource | Bundle | null | OperationOutcome), a whole CDS Hooks request (its
``prefetch``), a single resource or an array of resources. It flattens them into
:class:`~fhir_mappings.raw_resource.RawResource` records that remember their JSON path, and checks
the FHIR release: ``meta.profile`` URLs of another release (``/STU3/``, ``/R5/``, ``/3.0/``,
``/5.0/`` ...), a ``fhirVersion`` other than 4.0.x (or 4.3.x, R4B), and elements that only
exist in STU3 or in R5 in the resource types the mapping reads. No model is built here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from fhir_mappings.availability import (
    PREFETCH_KEY_DOMAINS,
    REQUIRED_DOMAINS,
    Domain,
    error_outcome,
    search_domain,
)
from fhir_mappings.errors import FhirVersionError, InvalidResource, MalformedJson
from fhir_mappings.raw_resource import JsonObject, RawResource
from fhir_mappings.report import Issue, IssueKind

_MAX_BUNDLE_DEPTH: Final = 4
_OTHER_RELEASE_PROFILE = re.compile(
    r"/(STU3|DSTU2|R5|R6|STU4|1\.0|3\.0|5\.0|6\.0)(/|$)", re.IGNORECASE)
_R4_VERSIONS = re.compile(r"^4\.(0|3)(\.\d+)?(-.*)?$")

Hint = Callable[[JsonObject], bool]


@dataclass(frozen=True, slots=True)
class _IsStr:
    """The element is a string (where R4 has an object)."""

    key: str

    def __call__(self, d: JsonObject) -> bool:
        return isinstance(d.get(self.key), str)


@dataclass(frozen=True, slots=True)
class _Has:
    """The element is there (R4 has no such element)."""

    key: str

    def __call__(self, d: JsonObject) -> bool:
        return self.key in d


_is_str, _has = _IsStr, _Has


#: Elements that exist in STU3 or R5 but not in R4, per resource type the mapping reads
#: (https://hl7.org/fhir/R4/<type>-version-maps.html). Checked cheaply on the raw JSON.
_RELEASE_HINTS: Final[dict[str, tuple[tuple[str, Hint, str], ...]]] = {
    "Condition": (
        ("clinicalStatus", _is_str("clinicalStatus"), "STU3 (a code, not a CodeableConcept)"),
        ("verificationStatus", _is_str("verificationStatus"), "STU3 (a code)"),
        ("assertedDate", _has("assertedDate"), "STU3"),
        ("abatementBoolean", _has("abatementBoolean"), "STU3"),
        ("participant", _has("participant"), "R5"),
    ),
    "AllergyIntolerance": (
        ("clinicalStatus", _is_str("clinicalStatus"), "STU3 (a code, not a CodeableConcept)"),
        ("verificationStatus", _is_str("verificationStatus"), "STU3 (a code)"),
        ("assertedDate", _has("assertedDate"), "STU3"),
        ("participant", _has("participant"), "R5"),
    ),
    "MedicationStatement": (
        ("taken", _has("taken"), "STU3"),
        ("context", _has("context"), "STU3"),
        ("medication", _has("medication"), "R5 (CodeableReference)"),
        ("adherence", _has("adherence"), "R5"),
    ),
    "MedicationRequest": (
        ("context", _has("context"), "STU3"),
        ("medication", _has("medication"), "R5 (CodeableReference)"),
        ("renderedDosageInstruction", _has("renderedDosageInstruction"), "R5"),
        ("informationSource", _has("informationSource"), "R5"),
    ),
    "Observation": (
        ("context", _has("context"), "STU3"),
        ("triggeredBy", _has("triggeredBy"), "R5"),
        ("bodyStructure", _has("bodyStructure"), "R5"),
        ("instantiatesCanonical", _has("instantiatesCanonical"), "R5"),
    ),
    "Patient": (("animal", _has("animal"), "STU3"),),
    "Medication": (
        ("isBrand", _has("isBrand"), "STU3"),
        ("package", _has("package"), "STU3"),
        ("marketingAuthorizationHolder", _has("marketingAuthorizationHolder"), "R5"),
    ),
}
_OTHER_RELEASE_TYPES: Final = {"MedicationUsage": "R5 ballot", "BodySite": "STU3",
                               "ProcedureRequest": "STU3", "ReferralRequest": "STU3"}


@dataclass(frozen=True, slots=True)
class ParsedInput:
    """The resources found in the input, in input order, and input-level issues.

    ``unavailable``: the parts of the record (:class:`~fhir_mappings.availability.Domain`
    values) the input says could not be obtained, with the reason; ``context_patient_id``:
    the ``context.patientId`` of a whole CDS Hooks request (the patient the call is about).
    """

    resources: tuple[RawResource, ...]
    issues: tuple[Issue, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    context_patient_id: str | None = None


def parse_input(data: bytes | bytearray | str | Mapping[str, Any] | Sequence[Any]) -> (
        ParsedInput):
    """Parse JSON (or take parsed JSON) and flatten it into resources; see module doc.

    Raises MalformedJson, FhirVersionError or InvalidResource (all InputError).
    """
    if isinstance(data, bytes | bytearray | memoryview | str):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise MalformedJson(f"not valid JSON ({e})", "$") from e
    else:
        doc = data
    reader = _Reader()
    context_patient: str | None = None
    if isinstance(doc, Mapping):
        _check_fhir_version(doc, "$")
        if "resourceType" in doc:
            reader.resource(doc, "$", None, 0)
        elif "prefetch" in doc and ("hook" in doc or "hookInstance" in doc):
            prefetch = doc["prefetch"]
            if prefetch is not None and not isinstance(prefetch, Mapping):
                raise MalformedJson("prefetch must be an object", "$.prefetch")
            context = doc.get("context")
            if isinstance(context, Mapping):
                pid = context.get("patientId")
                if pid is not None and not isinstance(pid, str):
                    raise MalformedJson("context.patientId must be a string",
                                        "$.context.patientId")
                context_patient = pid
            reader.prefetch(prefetch or {}, "$.prefetch")
        else:
            reader.prefetch(doc, "$")
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            if not isinstance(item, Mapping):
                raise MalformedJson("an array of resources must hold objects", f"$[{i}]")
            reader.resource(item, f"$[{i}]", None, 0)
    else:
        raise MalformedJson(
            "expected a Bundle, a CDS Hooks prefetch object, a resource or an array of "
            "resources", "$")
    return ParsedInput(tuple(reader.resources), tuple(sorted(reader.issues)),
                       dict(sorted(reader.unavailable.items())), context_patient)


def _check_fhir_version(doc: JsonObject, path: str) -> None:
    version = doc.get("fhirVersion")
    if version is None:
        return
    if not isinstance(version, str) or not _R4_VERSIONS.match(version):
        raise FhirVersionError(f"fhirVersion {version!r} is not FHIR R4 (4.0.x)",
                               f"{path}.fhirVersion")


class _Reader:
    def __init__(self) -> None:
        self.resources: list[RawResource] = []
        self.issues: list[Issue] = []
        #: Domain value -> why it could not be obtained (the first reason found)
        self.unavailable: dict[str, str] = {}

    def lacks(self, domain: Domain | None, reason: str) -> None:
        """Mark ``domain`` (every required one and the labs, when None) unavailable."""
        for d in (domain,) if domain is not None else (*REQUIRED_DOMAINS, Domain.LABS):
            self.unavailable.setdefault(d.value, reason)

    def prefetch(self, doc: Mapping[str, Any], path: str) -> None:
        for key, value in doc.items():
            kpath = f"{path}.{key}"
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise MalformedJson(
                    "a prefetch value must be a resource, a Bundle or null", kpath)
            if value.get("resourceType") == "OperationOutcome":
                self.issues.append(Issue(
                    IssueKind.PREFETCH_ERROR, f"prefetch.{key}",
                    f"the client could not prefetch {key!r} (OperationOutcome"
                    f"{_outcome_text(value)}); its data is missing"))
                domain = PREFETCH_KEY_DOMAINS.get(key)
                if domain is not None:
                    self.lacks(domain, f"the EHR could not prefetch {key!r} "
                               f"(OperationOutcome{_outcome_text(value)})")
                continue
            self.resource(value, kpath, None, 0, PREFETCH_KEY_DOMAINS.get(key))
        for key, domain in PREFETCH_KEY_DOMAINS.items():
            if key not in doc:
                self.lacks(domain, f"prefetch key {key!r} was not sent")

    def resource(self, doc: Mapping[str, Any], path: str, full_url: str | None,
                 depth: int, domain: Domain | None = None) -> None:
        rtype = doc.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            raise MalformedJson("a resource needs a resourceType string", f"{path}.resourceType")
        rid = doc.get("id")
        if rid is not None and not isinstance(rid, str):
            raise InvalidResource("'id' must be a string", f"{path}.id", rtype)
        res = RawResource(rtype, rid, doc, path, full_url)
        if doc.get("meta") is not None or rtype in _RELEASE_CHECKED or _hinted(doc, rtype):
            _check_release(res)  # (nothing to check otherwise)
        if rtype == "Bundle":
            self.bundle(res, depth, domain)
        else:
            if rtype == "OperationOutcome" and (error := error_outcome(doc)) is not None:
                self.lacks(domain, f"the input carries an error OperationOutcome ({error}): "
                           "the record may be incomplete")
            self.resources.append(res)

    def bundle(self, res: RawResource, depth: int, domain: Domain | None = None) -> None:
        if depth >= _MAX_BUNDLE_DEPTH:
            raise res.error(f"Bundles nested more than {_MAX_BUNDLE_DEPTH} deep")
        doc = res.data
        if doc.get("link") is not None:
            for lpath, link in res.objects(doc, "link"):
                if res.string(link, "relation", lpath) == "next":
                    self.issues.append(Issue(
                        IssueKind.INCOMPLETE_SEARCH, res.ref,
                        "the searchset has further pages (link 'next') that were not sent"))
                    self.lacks(domain or search_domain(doc),
                               "a search result has further pages that were not sent")
        if domain is None and doc.get("type") == "searchset":
            domain = search_domain(doc)
        for epath, entry in res.objects(doc, "entry"):
            response = entry.get("response")
            if response is not None:
                self.entry_response(res, epath, response, domain)
            search = res.obj(entry, "search", epath)
            mode = res.string(search, "mode", f"{epath}.search") if search is not None else None
            resource = res.obj(entry, "resource", epath)
            if resource is None:
                continue
            if mode == "outcome":
                if (error := error_outcome(resource)) is not None:
                    self.lacks(domain, "a search answered with an error OperationOutcome "
                               f"({error}): the record may be incomplete")
                continue
            full_url = res.string(entry, "fullUrl", epath)
            self.resource(resource, f"{res.path}{epath}.resource", full_url, depth + 1, domain)

    def entry_response(self, res: RawResource, epath: str, response: Any,
                       domain: Domain | None) -> None:
        """A batch/transaction-response entry whose request failed: its part of the record
        is missing (the part is told by the entry's outcome, else unknown: all parts)."""
        if not isinstance(response, Mapping):
            raise res.error("'response' must be an object", f"{epath}.response")
        status = response.get("status")
        if not isinstance(status, str) or status.strip()[:1] in ("2", "3"):
            return
        outcome = response.get("outcome")
        found = search_domain(outcome) if isinstance(outcome, Mapping) else None
        self.lacks(domain or found, f"a request in the input Bundle failed (HTTP "
                   f"{status.strip()[:40]}): the record may be incomplete")


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = outcome.get("issue")
    if isinstance(issues, list) and issues and isinstance(issues[0], Mapping):
        code = issues[0].get("code")
        if isinstance(code, str):
            return f" {code}"
    return ""


#: Per resource type, the elements its release hints look at: a resource with none of them
#: (the usual case, told by one set operation) has no hint to check.
_HINT_KEYS: Final = {t: frozenset(key for key, _hint, _release in hints)
                     for t, hints in _RELEASE_HINTS.items()}


def _hinted(doc: JsonObject, rtype: str) -> bool:
    """Whether a release hint of ``rtype`` applies to ``doc``."""
    keys = _HINT_KEYS.get(rtype)
    if keys is None or doc.keys().isdisjoint(keys):
        return False
    return any(hint(doc) for _key, hint, _release in _RELEASE_HINTS[rtype])


#: Resource types _check_release looks at whatever their content.
_RELEASE_CHECKED: Final = frozenset({*_OTHER_RELEASE_TYPES, "CapabilityStatement"})


def _check_release(res: RawResource) -> None:
    doc = res.data
    rtype = res.resource_type
    if rtype in _OTHER_RELEASE_TYPES:
        raise FhirVersionError(
            f"resource type {rtype} is {_OTHER_RELEASE_TYPES[rtype]}, not FHIR R4",
            f"{res.path}.resourceType", res.ref)
    meta = doc.get("meta")
    if meta is not None:
        meta = res.obj(doc, "meta")
        assert meta is not None
        for i, profile in enumerate(res.strings(meta, "profile", ".meta")):
            if _OTHER_RELEASE_PROFILE.search(profile):
                raise FhirVersionError(
                    f"meta.profile {profile!r} belongs to another FHIR release than R4",
                    f"{res.path}.meta.profile[{i}]", res.ref)
    if _hinted(doc, rtype):
        for key, hint, release in _RELEASE_HINTS[rtype]:
            if hint(doc):
                raise FhirVersionError(f"'{key}' as sent here is {release}, not FHIR R4",
                                       f"{res.path}.{key}", res.ref)
    if rtype == "CapabilityStatement":
        _check_fhir_version(doc, res.path)
