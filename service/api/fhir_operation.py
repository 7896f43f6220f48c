"""``POST /fhir/$hypertension-options``: the assessment as FHIR, for systems without CDS Hooks.

Input: a Bundle of the patient's resources, or a Parameters resource with a ``patientData``
parameter holding that Bundle (and optionally ``guideline`` = nice | esc).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from fhir_mappings.errors import InputError
from models.assessment import assess
from models.guideline.profiles import PROFILES
from service.api.deps import StateDep, authenticate, read_json
from service.errors import BadRequest
from service.fhir_output import assessment_bundle
from service.responses import FhirJSON, JSONBody

router = APIRouter(tags=["FHIR"])


def _unwrap(body: Any) -> tuple[Any, str | None]:
    if not isinstance(body, dict):
        raise BadRequest("body must be a FHIR Bundle or Parameters resource", "$")
    if body.get("resourceType") == "Bundle":
        return body, None
    if body.get("resourceType") != "Parameters":
        raise BadRequest("body must be a FHIR Bundle or Parameters resource", "resourceType")
    data, guideline = None, None
    for i, p in enumerate(body.get("parameter") or []):
        if not isinstance(p, dict):
            raise BadRequest("parameter entries must be objects", f"parameter[{i}]")
        if p.get("name") == "patientData":
            data = p.get("resource")
        elif p.get("name") == "guideline":
            guideline = p.get("valueCode")
    if data is None:
        raise BadRequest("Parameters needs a patientData parameter with a Bundle resource",
                         "parameter")
    if guideline is not None and guideline not in PROFILES:
        raise BadRequest(f"guideline must be one of {sorted(PROFILES)}", "parameter.guideline")
    return data, guideline


@router.post("/fhir/$hypertension-options",
             responses={400: {"description": "Invalid FHIR input (OperationOutcome)"}})
async def hypertension_options(request: Request, state: StateDep
                               ) -> JSONBody:
    """Assess a patient from a FHIR Bundle; answer with GuidanceResponse, RiskAssessment and
    DetectedIssue resources in a collection Bundle."""
    await authenticate(request, state)
    data, guideline = _unwrap(await read_json(request, state.settings.max_body_bytes))
    try:
        result = state.engine.assess_fhir(data, datetime.now(UTC).date())
    except InputError as e:
        raise BadRequest(e.reason, e.path or None) from e
    doc = result.document
    if guideline and guideline != state.engine.profile.name:
        doc = assess(result.features, state.engine.scorer, state.engine.explainer,
                     PROFILES[guideline]).to_document()
    patient_id = next((e["resource"].get("id") for e in data.get("entry") or []
                       if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                       and e["resource"].get("resourceType") == "Patient"), None)
    bundle = assessment_bundle(doc, patient_id, str(request.url), str(uuid.uuid4()))
    return FhirJSON(bundle)
