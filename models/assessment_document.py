"""The assessment document (DESIGN.md section 9): the typed :class:`Assessment` as JSON.

The document exists only at the JSON edges: what ``hypermarker assess`` prints and what the
audit store keeps of the options. Every renderer (cards, panel, FHIR output, text, audit
record) reads the typed assessment instead.

Its shape is declared once, as the ``TypedDict`` classes below: mypy checks that
:func:`assessment_document` builds exactly that shape, and the published JSON Schema
(``docs/schemas/assessment-document.v1.schema.json``) is generated from the same classes
(``uv run python -m models.assessment_document``; tests/models/test_assessment_document.py
checks that the file is current and that documents validate against it). A field may be
added in a minor version; renaming or removing one needs a new major version (a new file).
1.1: ``in_step``, ``choice_reason`` and the option statuses ``beyond-step`` and
``not-lowering`` (the guideline-first ranking); ``expected_effect``, ``effect_interval`` and
``effect_interval_coverage`` (the option's own expected effect, what the ranking reads, beside
the one-reading ``predicted_sbp_change`` and ``interval``).
1.2: ``p_target_shown`` (whether the chance of a reading below target means anything for the
option: :mod:`models.uncertainty_words`), each driver's ``words``, ``drivers_baseline`` (what
the drivers are measured against) and ``comparison`` (the first option against the
guideline's choice: the difference of their expected effects and its drivers). Drivers now
explain the expected effect (``expected_effect``), and ``drivers_base_value`` is their
baseline's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, WithJsonSchema, with_config
from typing_extensions import TypedDict

from models.assessment import Assessment, AssessmentStatus, Driver, OptionStatus
from models.guideline.findings import Finding, Severity, max_severity
from models.guideline.stops import Urgency
from models.guideline.targets import Setting
from models.options import Action
from models.prescribing import StartingProduct
from vocabulary.drug_classes import CLASS_ORDER, DrugClass

#: The document's contract version: ``major.minor`` (a new field: minor; a renamed or removed
#: one: major, and a new schema file).
SCHEMA_VERSION: Final = "1.2"
SCHEMA_ID: Final = "urn:hypermarker:schema:assessment-document:1"

_CLOSED = ConfigDict(extra="forbid")
#: An object keyed by drug-class id (JSON object keys are strings; the enum lists the ids).
_ClassKeyed = Annotated[dict[str, float], WithJsonSchema({
    "type": "object", "propertyNames": {"enum": [c.value for c in CLASS_ORDER]},
    "additionalProperties": {"type": "number"}})]
_IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
_Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
SeverityLabel = Literal["block", "warn", "info"]


@with_config(_CLOSED)
class FindingDocument(TypedDict):
    severity: SeverityLabel
    code: str
    message: str
    citation: str
    monitoring: NotRequired[str]


@with_config(_CLOSED)
class TargetDocument(TypedDict):
    systolic: float
    diastolic: float
    setting: Setting
    citation: str


@with_config(_CLOSED)
class OrderDocument(TypedDict):
    """The orderable product a start or addition of one class is ordered as."""

    drug: str
    dose_mg: float
    dmd_vmp: str
    dmd_name: str
    rxnorm_scd: str | None
    rxnorm_name: str | None
    note: str
    patient_instruction: str


@with_config(_CLOSED)
class DriverDocument(TypedDict):
    feature: str
    label: str
    value: float | None
    unit: str
    contribution: float
    words: str


@with_config(_CLOSED)
class ComparisonDocument(TypedDict):
    """The first option against the guideline's choice (their ids; ``difference``: expected
    effect of the first minus the choice's, mmHg; its drivers add up to it)."""

    first: str
    choice: str
    first_label: str
    choice_label: str
    difference: float
    drivers: list[DriverDocument]
    summary: str


@with_config(_CLOSED)
class OptionDocument(TypedDict):
    id: str
    label: str
    order: NotRequired[OrderDocument]
    action: Action
    classes_after: list[DrugClass]
    rank: int | None
    status: OptionStatus
    guideline_preferred: bool
    in_step: bool
    predicted_sbp_change: float
    interval: _Pair
    interval_coverage: float
    expected_effect: float
    effect_interval: _Pair
    effect_interval_coverage: float
    p_target: float
    p_target_shown: bool
    findings: list[FindingDocument]
    drivers: list[DriverDocument]


@with_config(_CLOSED)
class ProvenanceDocument(TypedDict):
    feature: str
    source: str | None
    date: _IsoDate | None
    note: str | None


@with_config(_CLOSED)
class StopDocument(TypedDict):
    code: str
    indicator: Urgency
    summary: str
    action: str
    citation: str
    avoid: list[DrugClass]
    caution: list[DrugClass]
    withdraw: list[DrugClass]


@with_config(_CLOSED)
class CheckedOptionDocument(TypedDict):
    id: str
    label: str
    action: Action
    classes_after: list[DrugClass]
    status: OptionStatus
    findings: list[FindingDocument]


@with_config(_CLOSED)
class ClinicBPDocument(TypedDict):
    systolic: float | None
    diastolic: float | None


@with_config(_CLOSED)
class ModelDocument(TypedDict):
    id: str
    version: str
    provider: str


@with_config(_CLOSED)
class AssessmentDocument(TypedDict):
    """One assessment (DESIGN.md section 9)."""

    status: AssessmentStatus
    reasons: list[str]
    guideline: str
    target: TargetDocument | None
    current_classes: list[DrugClass]
    current_regimen: _ClassKeyed
    guideline_step: str | None
    guideline_default: list[str]
    choice_reason: str | None
    findings: list[FindingDocument]
    options: list[OptionDocument]
    provenance: list[ProvenanceDocument]
    drivers_base_value: float | None
    drivers_baseline: str | None
    comparison: ComparisonDocument | None
    stops: list[StopDocument]
    checked_options: list[CheckedOptionDocument]
    clinic_bp: ClinicBPDocument
    unavailable: dict[str, str]
    data_quality: list[str]
    model: ModelDocument


def finding_document(f: Finding) -> FindingDocument:
    d: FindingDocument = {"severity": _SEVERITY[f.severity], "code": f.code,
                          "message": f.message, "citation": str(f.citation)}
    if f.monitoring:
        d["monitoring"] = f.monitoring
    return d


_SEVERITY: Final[Mapping[Severity, SeverityLabel]] = {
    Severity.BLOCK: "block", Severity.WARN: "warn", Severity.INFO: "info"}


def _order(s: StartingProduct) -> OrderDocument:
    return {"drug": s.drug, "dose_mg": s.dose_mg, "dmd_vmp": s.dmd_vmp,
            "dmd_name": s.dmd_name, "rxnorm_scd": s.rxnorm_scd, "rxnorm_name": s.rxnorm_name,
            "note": s.note, "patient_instruction": s.patient_instruction}


def _driver(d: Driver) -> DriverDocument:
    return {"feature": d.feature, "label": d.label, "value": d.value, "unit": d.unit,
            "contribution": d.contribution, "words": d.words}


def _classes(classes: frozenset[DrugClass]) -> list[DrugClass]:
    return [c for c in CLASS_ORDER if c in classes]


def assessment_document(a: Assessment) -> AssessmentDocument:
    """The assessment as its JSON document."""
    options: list[OptionDocument] = []
    for o in a.options:
        doc: OptionDocument = {
            "id": o.option.id, "label": a.label(o.option), "action": o.option.action,
            "classes_after": list(o.option.classes_after), "rank": o.rank,
            "status": o.status, "guideline_preferred": o.guideline_preferred,
            "in_step": o.in_step,
            "predicted_sbp_change": o.predicted_sbp_change, "interval": list(o.interval),
            "interval_coverage": o.interval_coverage,
            "expected_effect": o.expected_effect, "effect_interval": list(o.effect_interval),
            "effect_interval_coverage": o.effect_coverage, "p_target": o.p_target,
            "p_target_shown": o.p_target_shown,
            "findings": [finding_document(f) for f in o.findings],
            "drivers": [_driver(d) for d in o.drivers]}
        if (product := a.order(o.option)) is not None:
            doc["order"] = _order(product)
        options.append(doc)
    return {
        "status": a.status,
        "reasons": list(a.reasons),
        "guideline": a.guideline,
        "target": None if a.target is None else {
            "systolic": a.target.systolic, "diastolic": a.target.diastolic,
            "setting": a.target.setting, "citation": str(a.target.citation)},
        "current_classes": [c for c in CLASS_ORDER if c in a.current_regimen],
        "current_regimen": {c.value: d for c, d in a.current_regimen.items()},
        "guideline_step": a.guideline_step,
        "guideline_default": list(a.guideline_default),
        "choice_reason": a.choice_reason,
        "findings": [finding_document(f) for f in a.findings],
        "options": options,
        "provenance": [{"feature": p.feature, "source": p.source,
                        "date": None if p.date is None else p.date.isoformat(),
                        "note": p.note} for p in a.provenance],
        "drivers_base_value": a.drivers_base_value,
        "drivers_baseline": a.drivers_baseline,
        "comparison": None if (c := a.comparison) is None else {
            "first": c.first, "choice": c.choice, "first_label": c.first_label,
            "choice_label": c.choice_label, "difference": c.difference,
            "drivers": [_driver(d) for d in c.drivers], "summary": c.summary},
        "stops": [{"code": s.code, "indicator": s.urgency, "summary": s.summary,
                   "action": s.action, "citation": str(s.citation),
                   "avoid": _classes(s.avoid), "caution": _classes(s.caution),
                   "withdraw": _classes(s.withdraw)} for s in a.stops],
        "checked_options": [{
            "id": o.id, "label": o.label, "action": o.action,
            "classes_after": list(o.classes_after),
            "status": OptionStatus.unranked(max_severity(fs)),
            "findings": [finding_document(f) for f in fs]} for o, fs in a.checked],
        "clinic_bp": {"systolic": a.clinic_bp[0], "diastolic": a.clinic_bp[1]},
        "unavailable": {d.value: why for d, why in a.unavailable},
        "data_quality": list(a.data_quality),
        "model": {"id": a.model.id, "version": a.model.version, "provider": a.model.provider},
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of :class:`AssessmentDocument`, as published."""
    schema = TypeAdapter(AssessmentDocument).json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "Hypermarker assessment document", "version": SCHEMA_VERSION, **schema}


def main() -> None:
    """Print the published schema (``uv run python -m models.assessment_document``)."""
    print(json.dumps(json_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
