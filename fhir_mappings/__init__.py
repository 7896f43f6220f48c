"""FHIR R4 (4.0.1) input layer: Bundles and CDS Hooks prefetch -> PatientRecord -> features.

Public API::

    parse_input(data) -> ParsedInput                  # JSON -> resources, release checked
    build_record(data | parsed, as_of) -> PatientRecord  # frozen facts with provenance
    record_to_features(record) -> FeatureVector
    features_from_fhir(data, as_of=None) -> (FeatureVector, MappingReport)

Bad input raises a subclass of :class:`fhir_mappings.errors.InputError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhir_mappings.bundle import ParsedInput, parse_input
    from fhir_mappings.errors import (
        FhirInputError,
        FhirVersionError,
        InputError,
        InvalidResource,
        MalformedJson,
        MissingPatient,
        MultiplePatients,
        PatientMismatch,
    )
    from fhir_mappings.facts import Fact
    from fhir_mappings.features import FeatureVector, Provenance
    from fhir_mappings.mapping import features_from_fhir, record_to_features
    from fhir_mappings.mapping_policy import DEFAULT_POLICY, MappingPolicy
    from fhir_mappings.patient_record import PatientRecord, build_record
    from fhir_mappings.report import Issue, IssueKind, MappingReport

#: Public name -> the submodule that defines it. Imported on first use, so that a light
#: submodule (``feature_table``, ``vocabulary``) does not pull in fhir.resources and the whole
#: mapping (the CLI and each service worker start faster).
_SOURCES = {
    "ParsedInput": "bundle", "parse_input": "bundle",
    "FhirInputError": "errors", "FhirVersionError": "errors", "InputError": "errors",
    "InvalidResource": "errors", "MalformedJson": "errors", "MissingPatient": "errors",
    "MultiplePatients": "errors", "PatientMismatch": "errors",
    "Fact": "facts", "FeatureVector": "features", "Provenance": "features",
    "features_from_fhir": "mapping", "record_to_features": "mapping",
    "DEFAULT_POLICY": "mapping_policy", "MappingPolicy": "mapping_policy",
    "PatientRecord": "patient_record", "build_record": "patient_record",
    "Issue": "report", "IssueKind": "report", "MappingReport": "report",
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'fhir_mappings' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fhir_mappings.{module}"), name)


__all__ = [
    "DEFAULT_POLICY",
    "Fact",
    "FeatureVector",
    "FhirInputError",
    "FhirVersionError",
    "InputError",
    "InvalidResource",
    "Issue",
    "IssueKind",
    "MalformedJson",
    "MappingPolicy",
    "MappingReport",
    "MissingPatient",
    "MultiplePatients",
    "ParsedInput",
    "PatientMismatch",
    "PatientRecord",
    "Provenance",
    "build_record",
    "features_from_fhir",
    "parse_input",
    "record_to_features",
]
