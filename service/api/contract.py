"""The HTTP contract as OpenAPI: real request and response schemas and every error status.

The routes read their bodies themselves (size limit, deadline, one OperationOutcome for every
kind of bad input), so FastAPI cannot see their request models, and its default response
class types every body as a string. :data:`CONTRACT` states, per operation, the request body,
the success response and each error status with its body; :func:`install` makes the app's
``/openapi.json`` say exactly that. A test holds every route to an entry here and
schemathesis checks the service against the document (``tests/service/test_contract.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from service.schemas.cds_hooks import CdsResponse, Discovery, FeedbackRequest, HookRequest

FHIR_JSON: Final = "application/fhir+json"
JSON: Final = "application/json"
_REF = "#/components/schemas/{model}"

#: An R4 OperationOutcome as this service writes it (service/errors.py).
OPERATION_OUTCOME: Final[dict[str, Any]] = {
    "type": "object", "title": "OperationOutcome", "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["severity", "code"],
            "properties": {
                "severity": {"enum": ["fatal", "error", "warning", "information"]},
                "code": {"type": "string"},
                "diagnostics": {"type": "string"},
                "expression": {"type": "array", "items": {"type": "string"}},
            }}},
    },
}
#: Any FHIR R4 resource (the FHIR validator of tests/fhir_validator checks the rest).
FHIR_RESOURCE: Final[dict[str, Any]] = {
    "type": "object", "title": "FHIR R4 resource", "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}}, "additionalProperties": True,
}
FEEDBACK_RESULT: Final[dict[str, Any]] = {
    "type": "object", "title": "FeedbackResult", "additionalProperties": True,
    "properties": {"stored": {"type": "integer", "minimum": 0},
                   "duplicates": {"type": "integer", "minimum": 0},
                   "unverified": {"type": "integer", "minimum": 0}},
    "required": ["stored", "duplicates"],
}
HEALTH: Final[dict[str, Any]] = {
    "type": "object", "required": ["status"], "additionalProperties": True,
    "properties": {"status": {"enum": ["ok", "unavailable"]}},
}

#: Why each error status is answered (the body is always an OperationOutcome).
ERROR_MEANING: Final[dict[int, str]] = {
    400: "Invalid input: the OperationOutcome names the path",
    401: "No valid client JWT (WWW-Authenticate: Bearer); no detail, ever",
    404: "Unknown service, resource or expired token",
    408: "The request body did not arrive in time",
    409: "Conflicts with what was recorded",
    412: "Required FHIR data could not be had",
    413: "Request body too large",
    422: "The data is not exactly the one patient of the call (audited as refused)",
    503: "Not ready, or the audit store or shared state cannot keep the answer; retry",
}


@dataclass(frozen=True)
class Operation:
    """What one (method, path) takes and answers."""

    request: type[BaseModel] | dict[str, Any] | None = None
    request_type: str = JSON
    success: type[BaseModel] | dict[str, Any] | None = None
    success_status: int = 200
    success_type: str = JSON
    errors: tuple[int, ...] = ()
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)


_HOOK_ERRORS = (400, 401, 404, 408, 412, 413, 422, 503)
CONTRACT: Final[dict[tuple[str, str], Operation]] = {
    ("get", "/cds-services"): Operation(success=Discovery, errors=(401,)),
    ("post", "/cds-services/{service_id}"): Operation(
        request=HookRequest, success=CdsResponse, errors=_HOOK_ERRORS),
    ("post", "/cds-services/{service_id}/feedback"): Operation(
        request=FeedbackRequest, success=FEEDBACK_RESULT,
        errors=(400, 401, 404, 408, 409, 413, 503)),
    ("post", "/fhir/$hypertension-options"): Operation(
        request=FHIR_RESOURCE, request_type=FHIR_JSON, success=FHIR_RESOURCE,
        success_type=FHIR_JSON, errors=(400, 401, 408, 412, 413, 422, 503)),
    ("get", "/fhir/metadata"): Operation(success=FHIR_RESOURCE, success_type=FHIR_JSON),
    ("get", "/fhir/OperationDefinition/{op_id}"): Operation(
        success=FHIR_RESOURCE, success_type=FHIR_JSON, errors=(404,)),
    ("get", "/fhir/CodeSystem/{cs_id}"): Operation(
        success=FHIR_RESOURCE, success_type=FHIR_JSON, errors=(404,)),
    ("get", "/panel/launch"): Operation(
        success_status=302, errors=(400, 503),
        extra={302: {"description": "Redirect to the configured EHR's authorization endpoint "
                                    "(SMART App Launch, PKCE)"}}),
    ("get", "/panel/callback"): Operation(
        success_status=303, errors=(400, 401, 404, 503),
        extra={303: {"description": "Redirect to the panel's view grant"}}),
    ("get", "/panel/view/{grant}"): Operation(
        success={"type": "string"}, success_type="text/html", errors=(404, 503)),
    ("get", "/health/live"): Operation(success=HEALTH),
    ("get", "/health/ready"): Operation(
        success=HEALTH, errors=(),
        extra={503: {"description": "Not ready (same body, status unavailable)",
                     "content": {JSON: {"schema": HEALTH}}}}),
    ("get", "/metrics"): Operation(success={"type": "string"},
                                   success_type="text/plain; version=0.0.4"),
}


def _schema(what: type[BaseModel] | dict[str, Any], components: dict[str, Any]
            ) -> dict[str, Any]:
    """A schema object for the document; models go to components with their definitions."""
    if isinstance(what, dict):
        return what
    schema = what.model_json_schema(ref_template=_REF)
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[what.__name__] = schema
    return {"$ref": _REF.format(model=what.__name__)}


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with :data:`CONTRACT` applied."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes)
    components: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["OperationOutcome"] = OPERATION_OUTCOME
    outcome = {"$ref": _REF.format(model="OperationOutcome")}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            c = CONTRACT.get((method, path))
            if c is None:
                raise KeyError(f"{method.upper()} {path} is not in service.api.contract")
            responses: dict[str, Any] = {}
            if c.success is not None:
                responses[str(c.success_status)] = {
                    "description": "Success",
                    "content": {c.success_type: {"schema": _schema(c.success, components)}}}
            for status, body in c.extra.items():
                responses[str(status)] = body
            for status in c.errors:
                responses[str(status)] = {
                    "description": ERROR_MEANING[status],
                    "content": {FHIR_JSON: {"schema": outcome}, JSON: {"schema": outcome}}}
            if any(p.get("required") for p in op.get("parameters", [])):
                responses.setdefault("400", {
                    "description": ERROR_MEANING[400],
                    "content": {FHIR_JSON: {"schema": outcome}, JSON: {"schema": outcome}}})
            op["responses"] = responses
            if c.request is not None:
                op["requestBody"] = {"required": True, "content": {
                    c.request_type: {"schema": _schema(c.request, components)}}}
    return spec


def install(app: FastAPI) -> None:
    """Serve :func:`document` (built once) as the app's ``/openapi.json``."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
