"""FHIR R4 (4.0.1) input layer: Bundles and CDS Hooks prefetch -> PatientRecord -> features.

The package re-exports nothing: import each name from the module that defines it, so that a
caller of a light module (``features``, ``errors``, ``availability``, ``codes``) does not pull
in fhir.resources and the whole mapping. The entry points::

    bundle.parse_input(data) -> ParsedInput              # JSON -> resources, release checked
    patient_record.build_record(data | parsed, as_of) -> PatientRecord   # frozen, with provenance
    mapping.record_to_features(record) -> FeatureVector
    mapping.features_from_fhir(data, as_of=None) -> (FeatureVector, MappingReport)

Bad input raises a subclass of :class:`fhir_mappings.errors.InputError`. The drug classes and
the feature table are in the package below this one, :mod:`vocabulary`.
"""
