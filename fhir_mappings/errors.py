"""Errors raised while reading patient input.

::

    InputError                 the input cannot be turned into a patient record
    ├── FeatureDocumentError   a features document is malformed (names the JSON path)
    └── FhirInputError         FHIR input cannot be mapped (names resource and JSON path)
        ├── MalformedJson      not JSON, or not a Bundle / prefetch object / resource
        ├── FhirVersionError   another FHIR release than R4 (STU3, R5 ...)
        ├── InvalidResource    a resource fails R4 validation where it is read or used
        ├── MissingPatient     no Patient: nothing to assess
        └── MultiplePatients   more than one Patient
"""

from __future__ import annotations


class InputError(Exception):
    """Base class of input errors; ``path`` locates the problem in the input document."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.reason = message
        self.path = path


class FeatureDocumentError(InputError):
    """A features document (``hypermarker assess --features``) is malformed."""


class FhirInputError(InputError):
    """FHIR input (a Bundle, a CDS Hooks prefetch object or resources) cannot be mapped.

    ``resource`` names the resource (``"Observation/bp-1"``) where one is involved; ``path``
    is the JSON path of the problem inside the input document (``$.entry[3].resource.code``).
    """

    def __init__(self, message: str, path: str = "", resource: str | None = None) -> None:
        where = f"{resource} " if resource else ""
        super().__init__(f"{where}{message}".strip(), path)
        self.resource = resource


class MalformedJson(FhirInputError):
    """The bytes are not JSON, or the JSON is not a Bundle, prefetch object or resource."""


class FhirVersionError(FhirInputError):
    """The input declares or shows another FHIR release than R4 (STU3, R5 ...)."""


class InvalidResource(FhirInputError):
    """A resource does not conform to FHIR R4, in a part that the mapping reads or uses.

    ``resource_type`` and ``resource_id`` identify it; ``path`` points at the element.
    """

    def __init__(self, message: str, path: str, resource_type: str,
                 resource_id: str | None = None) -> None:
        ref = f"{resource_type}/{resource_id}" if resource_id else resource_type
        super().__init__(message, path, ref)
        self.resource_type = resource_type
        self.resource_id = resource_id


class MissingPatient(FhirInputError):
    """The input has no Patient resource, so there is nobody to assess."""


class MultiplePatients(FhirInputError):
    """The input holds more than one Patient; one assessment is for one patient."""


class PatientMismatch(FhirInputError):
    """The input cannot be tied to exactly one patient: the Patient has no id, its id is not
    the patient in context (``context.patientId``), or a resource's subject/patient points at
    another Patient. Never assessed: an answer built from another patient's record is worse
    than none."""
