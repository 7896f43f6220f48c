"""PatientRecord -> FeatureVector, and the one-call FHIR R4 -> features entry point.

FHIR release: R4 (4.0.1). Every patient feature of
:data:`vocabulary.feature_table.PATIENT_FEATURES` gets a value or stays unknown, with one
provenance entry each: the resource and date it came from, or why it is unknown. Binary facts
whose policy is ``absent_as_zero`` and that are not recorded are 0 and say "not recorded:
taken as absent". A value outside the feature table's plausible range never reaches the
vector (it becomes unknown, with a note). The regimen gets one ``cur_<class>`` provenance
entry per class.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from fhir_mappings.features import FeatureVector, Provenance
from fhir_mappings.mapping_policy import DEFAULT_POLICY, MappingPolicy
from fhir_mappings.patient_record import Input, PatientRecord, build_record
from fhir_mappings.report import MappingReport
from fhir_mappings.sourced_fact import Fact
from vocabulary.feature_table import PATIENT_FEATURES, FeatureSpec, Kind, Missing

ABSENT_NOTE = "not recorded: taken as absent"


def record_to_features(record: PatientRecord) -> FeatureVector:
    """The FeatureVector of a record (see module docstring)."""
    values: dict[str, float | None] = {}
    provenance: list[Provenance] = []
    facts = record.facts
    for spec in PATIENT_FEATURES:
        name = spec.name
        fact = facts.get(name)
        value, prov = _NOT_RECORDED[name] if fact is None else _feature(spec, fact)
        values[name] = value
        provenance.append(prov)
    for drug_class, fact in record.regimen.items():
        provenance.append(_provenance(f"cur_{drug_class.value}", fact, fact.note))
    return FeatureVector(
        as_of=record.as_of,
        values=values,
        regimen={c: f.value for c, f in record.regimen.items() if f.value},
        deceased=record.deceased.value == 1.0,
        days_since_bp=record.days_since_bp,
        provenance=tuple(provenance),
        unavailable=dict(record.unavailable),
        data_quality=record.data_quality,
        current_drugs=dict(record.current_drugs),
    )


#: The provenance of each feature the record says nothing about (the same every time).
_NOT_RECORDED: dict[str, tuple[float | None, Provenance]] = {
    spec.name: (0.0, Provenance(spec.name, note=ABSENT_NOTE))
    if spec.missing is Missing.ABSENT_AS_ZERO
    else (None, Provenance(spec.name, note=f"no {spec.label} recorded"))
    for spec in PATIENT_FEATURES}


def _feature(spec: FeatureSpec, fact: Fact | None) -> tuple[float | None, Provenance]:
    if fact is None or fact.value is None:
        if fact is None or not fact.note:
            return _NOT_RECORDED[spec.name]
        if spec.missing is Missing.ABSENT_AS_ZERO:
            return 0.0, Provenance(spec.name, note=f"{ABSENT_NOTE} ({fact.note})")
        return None, Provenance(spec.name, note=fact.note)
    value = fact.value
    if spec.kind is Kind.BINARY and value not in (0.0, 1.0):
        return None, Provenance(spec.name, fact.source, fact.date,
                                f"value {value:g} is not 0 or 1: unknown")
    if not spec.low <= value <= spec.high:
        return None, Provenance(
            spec.name, fact.source, fact.date,
            f"{value:g} {spec.unit} is outside the plausible range {spec.low:g}-{spec.high:g}"
            ": unknown" + (f" ({fact.note})" if fact.note else ""))
    return value, Provenance(spec.name, fact.source, fact.date, fact.note)


def _provenance(name: str, fact: Fact, note: str | None) -> Provenance:
    return Provenance(name, fact.source, fact.date, note)


def features_from_fhir(data: Input, as_of: date | None = None,
                       policy: MappingPolicy = DEFAULT_POLICY, *,
                       patient_id: str | None = None,
                       unavailable: Mapping[str, str] | None = None) -> tuple[
                           FeatureVector, MappingReport]:
    """FHIR R4 input -> (FeatureVector, MappingReport); ``as_of`` defaults to today.

    ``data``: JSON bytes/str or parsed JSON of a Bundle (any type), a CDS Hooks prefetch
    object or request, a resource or an array of resources. ``patient_id`` and
    ``unavailable``: see :func:`~fhir_mappings.patient_record.build_record`. Raises an
    :class:`~fhir_mappings.errors.InputError` subclass for bad input (PatientMismatch when the
    input is not exactly one patient's record), never anything else.
    """
    record = build_record(data, as_of or date.today(), policy, patient_id=patient_id,
                          unavailable=unavailable)
    return record_to_features(record), record.report
