"""The FHIR conformance resources: ``GET /fhir/metadata`` (CapabilityStatement), the
OperationDefinition of ``$hypertension-options`` and the CodeSystems the service defines.

Public, like a FHIR server's ``metadata`` (clients read it before they authenticate): these
resources hold no patient data and depend only on the service's configuration.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import StateDep
from service.errors import NotFound
from service.fhir_canonical import OPERATION_CODE
from service.fhir_contract import capability_statement, code_system, operation_definition
from service.responses import FhirJSON, JSONBody

router = APIRouter(tags=["FHIR"])  # responses in OpenAPI: service/api/contract.py


@router.get("/fhir/metadata")
async def metadata(request: Request, state: StateDep) -> JSONBody:
    """The CapabilityStatement of this instance (FHIR R4 4.0.1, JSON)."""
    base = state.settings.public_base_url or str(request.base_url)
    return FhirJSON(capability_statement(base.rstrip("/") + "/fhir",
                                         state.settings.auth_mode.value,
                                         bool(state.settings.cors_origins)))


@router.get("/fhir/OperationDefinition/{op_id}")
async def read_operation_definition(op_id: str) -> JSONBody:
    """The OperationDefinition of ``$hypertension-options``."""
    if op_id != OPERATION_CODE:
        raise NotFound("no such OperationDefinition")
    return FhirJSON(operation_definition())


@router.get("/fhir/CodeSystem/{cs_id}")
async def read_code_system(cs_id: str) -> JSONBody:
    """A CodeSystem the service defines (its canonical URL ends with the same path)."""
    cs = code_system(cs_id)
    if cs is None:
        raise NotFound("no such CodeSystem")
    return FhirJSON(cs)
