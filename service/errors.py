"""Service errors, each with its HTTP status, rendered as FHIR OperationOutcome bodies.

::

    ServiceError                 500 internal (never with detail of the cause)
    ├── BadRequest               400 invalid CDS Hooks / FHIR input (names the path)
    ├── Unauthorized             401 no detail, ever
    ├── NotFound                 404 unknown service id
    ├── PayloadTooLarge          413
    ├── PreconditionFailed       412 required FHIR data could not be had
    ├── PatientConflict          422 the data is not exactly the one patient of the call
    └── ServiceUnavailable       503 the model or the audit store is not ready
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 500
    code = "exception"

    def __init__(self, message: str = "internal error", expression: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        #: extra response headers (e.g. the X-Request-ID of an audited refusal)
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.code, self.message, self.expression)


class BadRequest(ServiceError):
    status_code = 400
    code = "invalid"


class Unauthorized(ServiceError):
    status_code = 401
    code = "security"

    def __init__(self) -> None:
        super().__init__("unauthorized")


class NotFound(ServiceError):
    status_code = 404
    code = "not-found"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too-costly"


class PreconditionFailed(ServiceError):
    status_code = 412
    code = "processing"


class PatientConflict(ServiceError):
    """The request's data cannot be tied to exactly the patient the call is about (another
    patient's Patient or resources, a Patient without an id, two Patients): never assessed."""

    status_code = 422
    code = "conflict"


class ServiceUnavailable(ServiceError):
    status_code = 503
    code = "transient"


def operation_outcome(code: str, diagnostics: str, expression: str | None = None,
                      severity: str = "error") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
