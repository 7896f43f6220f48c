"""FHIR R4 (4.0.1) input layer: Bundles and CDS Hooks prefetch -> PatientRecord -> features.

Public API::

    parse_input(data) -> ParsedInput                  # JSON -> resources, release checked
    build_record(data | parsed, as_of) -> PatientRecord  # frozen facts with provenance
    record_to_features(record) -> FeatureVector
    features_from_fhir(data, as_of=None) -> (FeatureVector, MappingReport)

Bad input raises a subclass of :class:`fhir_mappings.errors.InputError`.
"""

from fhir_mappings.bundle import ParsedInput, parse_input
from fhir_mappings.errors import (
    FhirInputError,
    FhirVersionError,
    InputError,
    InvalidResource,
    MalformedJson,
    MissingPatient,
    MultiplePatients,
)
from fhir_mappings.facts import Fact
from fhir_mappings.features import FeatureVector, Provenance
from fhir_mappings.mapping import features_from_fhir, record_to_features
from fhir_mappings.policy import DEFAULT_POLICY, MappingPolicy
from fhir_mappings.record import PatientRecord, build_record
from fhir_mappings.report import Issue, IssueKind, MappingReport

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
    "PatientRecord",
    "Provenance",
    "build_record",
    "features_from_fhir",
    "parse_input",
    "record_to_features",
]
