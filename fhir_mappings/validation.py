"""Validation of the resources the mapping uses against the FHIR R4 models.

FHIR release: R4 (4.0.1), validated with ``fhir.resources.R4B`` (4.3.0; the package has no R4
subpackage since 7.0, and R4B is R4 plus compatible corrections, so R4 payloads validate;
shared/research/cdshooks.md 3.3). Only resources that contribute to the record are validated
(a 2 MB Synthea Bundle holds hundreds of Claims, ExplanationOfBenefits and unused
Observations; building models for all of them would cost more than the whole time budget).
The models check structure, cardinality and primitive types, not code bindings.

A failure raises :class:`~fhir_mappings.errors.InvalidResource` with the JSON path of the
first bad element; the message never quotes the value (it may be patient data).
"""

from __future__ import annotations

from typing import Any, Final

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

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


def validate(res: RawResource) -> None:
    """Validate one resource with its R4B model; raise InvalidResource naming the path."""
    model = MODELS.get(res.resource_type)
    if model is None:
        return
    data = res.data if isinstance(res.data, dict) else dict(res.data)
    try:
        model.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        path = res.path + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise InvalidResource(
            f"does not conform to FHIR R4 ({first['type']}: {first['msg']})", path,
            res.resource_type, res.id) from None
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
        raise InvalidResource(f"does not conform to FHIR R4 ({type(e).__name__})", res.path,
                              res.resource_type, res.id) from None


def warm_up() -> None:
    """Build the validators once (the first validation of each model costs milliseconds)."""
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
