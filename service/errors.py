"""Service errors, each with its HTTP status, rendered as FHIR OperationOutcome bodies.

::

    ServiceError                 500 internal (never with detail of the cause)
    ├── BadRequest               400 invalid CDS Hooks / FHIR input (names the path)
    ├── Unauthorized             401 no detail, ever; WWW-Authenticate: Bearer
    ├── NotFound                 404 unknown service id
    ├── PayloadTooLarge          413
    ├── PreconditionFailed       412 required FHIR data could not be had
    ├── PatientConflict          422 the data is not exactly the one patient of the call
    └── ServiceUnavailable       503 the model or the audit store is not ready

``issue.expression`` is FHIRPath (R4 OperationOutcome.issue.expression: "A simple subset of
FHIRPath limited to element names, repetition indicators and the default child accessor"),
e.g. ``Bundle.entry[2].resource.subject``: :func:`fhirpath` turns the JSON paths of the
mapping errors (``$.entry[2].resource.subject``) into that form.
"""

from __future__ import annotations

import re
from typing import Any

#: One step of a mapping-error JSON path: ``.name`` or ``[index]``.
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
        # RFC 6750 section 3: a 401 names the scheme it wants (no error detail, ever).
        super().__init__("unauthorized", headers={"WWW-Authenticate": "Bearer"})


class NotFound(ServiceError):
    status_code = 404
    code = "not-found"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too-costly"


class RequestTimeout(ServiceError):
    """The client did not send the whole request in time."""

    status_code = 408
    code = "timeout"


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


def fhirpath(path: str | None, root: str | None = None) -> str | None:
    """The FHIRPath form of a mapping error's JSON path, from ``root``.

    ``fhirpath("$.entry[2].resource.subject", "Bundle")`` is
    ``Bundle.entry[2].resource.subject``; without a root the path starts at the document's
    first element (``$.prefetch.bp.entry[0]`` -> ``prefetch.bp.entry[0]``). A primitive's
    extension key (``_birthDate``) names its element (``birthDate``); a name that is not a
    FHIRPath identifier is delimited (```bp-home```). None for no path, or one that is not a
    JSON path of this form (the issue then has no expression rather than a wrong one).
    """
    if not path or not path.startswith("$"):
        return None
    rest, steps = path[1:], [root] if root else []
    pos = 0
    while pos < len(rest):
        m = _STEP.match(rest, pos)
        if m is None:
            return None
        name, index = m.group(1), m.group(2)
        if index is not None:
            if len(steps) == (1 if root else 0):
                return None  # an array at the top: no FHIR element to name
            steps[-1] += f"[{index}]"
        else:
            name = name.removeprefix("_") or name
            steps.append(name if _IDENTIFIER.fullmatch(name) else f"`{name}`")
        pos = m.end()
    return ".".join(steps) or None
