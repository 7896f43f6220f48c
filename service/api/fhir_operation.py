"""``POST /fhir/$hypertension-options``: the assessment as FHIR, for systems without CDS Hooks.

Input: a Bundle of the patient's resources, or a Parameters resource with a ``patientData``
parameter holding that Bundle (and optionally ``guideline`` = nice | esc): the
OperationDefinition served at ``/fhir/OperationDefinition/hypertension-options``
(service/fhir_contract.py). The conformance routes (``/fhir/metadata``, OperationDefinition,
CodeSystem) are included in this module's router. Error expressions are FHIRPath from the
posted resource (``Bundle.entry[2].resource.subject``,
``Parameters.parameter[0].resource.entry[2].resource.subject``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request

from fhir_mappings.errors import InputError, MultiplePatients, PatientMismatch
from models.guideline.profiles import PROFILES
from service.api.deps import StateDep, authenticate, read_json
from service.api.fhir_metadata import router as metadata_router
from service.errors import BadRequest, fhirpath
from service.fhir_canonical import MODULE_URI
from service.fhir_output import assessment_bundle
from service.recording import (
    REQUEST_ID_HEADER,
    assessment_record,
    new_request_id,
    observed_outcomes,
    record_assessment,
    refuse_other_patient,
)
from service.responses import FhirJSON, JSONBody

router = APIRouter(tags=["FHIR"])
router.include_router(metadata_router)
log = structlog.get_logger("hypermarker.service")
#: How the operation appears in the audit store (hook and service id) and in metrics.
OPERATION = "$hypertension-options"


def _unwrap(body: Any) -> tuple[Any, str | None, str]:
    """(the patient's Bundle, the guideline asked for, the FHIRPath of that Bundle)."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a FHIR Bundle or Parameters resource")
    if body.get("resourceType") == "Bundle":
        return body, None, "Bundle"
    if body.get("resourceType") != "Parameters":
        raise BadRequest("body must be a FHIR Bundle or Parameters resource")
    params = body.get("parameter") or []
    if not isinstance(params, list):
        raise BadRequest("parameter must be a list", "Parameters.parameter")
    data, guideline, where = None, None, "Parameters.parameter"
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise BadRequest("parameter entries must be objects", f"Parameters.parameter[{i}]")
        if p.get("name") == "patientData":
            data, where = p.get("resource"), f"Parameters.parameter[{i}].resource"
        elif p.get("name") == "guideline":
            guideline = p.get("valueCode")
            if guideline not in PROFILES:
                raise BadRequest(f"guideline must be one of {sorted(PROFILES)}",
                                 f"Parameters.parameter[{i}].value")
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise BadRequest("Parameters needs a patientData parameter with a Bundle resource",
                         where)
    return data, guideline, where


def _patient_id(data: Any) -> str | None:
    """The id of the (first) Patient entry of a Bundle, if any."""
    entries = data.get("entry") if isinstance(data, dict) else None
    for e in entries if isinstance(entries, list) else []:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            pid = res.get("id")
            return pid if isinstance(pid, str) else None
    return None


@router.post("/fhir/$hypertension-options")  # responses: service/api/contract.py
async def hypertension_options(request: Request, state: StateDep
                               ) -> JSONBody:
    """Assess a patient from a FHIR Bundle; answer with GuidanceResponse, RiskAssessment and
    DetectedIssue resources in a collection Bundle; audited like a CDS Hooks call (hook
    ``$hypertension-options``, no cards) before the response is sent."""
    t0 = time.perf_counter()
    received = datetime.now(UTC)
    await authenticate(request, state)
    data, guideline, where = _unwrap(await read_json(request, state.settings.max_body_bytes))
    try:
        result = state.engine.assess_fhir(data, received.date(),
                                          PROFILES[guideline] if guideline else None)
    except (PatientMismatch, MultiplePatients) as e:
        # Not exactly one patient's record: never assessed, and the refusal is audited.
        raise await refuse_other_patient(
            state, e, hook=OPERATION, hook_instance=None, service_id=OPERATION,
            received=received, patient_id=_patient_id(data) or "", started=t0,
            expression=fhirpath(e.path, where)) from e
    except InputError as e:
        raise BadRequest(e.reason, fhirpath(e.path, where)) from e
    doc = result.document
    patient_id = _patient_id(data)
    request_id = new_request_id()
    bundle = assessment_bundle(doc, patient_id, MODULE_URI, request_id)
    record = assessment_record(
        result, doc, request_id=request_id, hook=OPERATION, hook_instance=request_id,
        service_id=OPERATION, received=received,
        patient_ref=state.patient_ref(str(patient_id or "")), cards=[],
        latency_ms=(time.perf_counter() - t0) * 1e3, prefetch_fetched=[])
    destination = await record_assessment(state, record,
                                          observed_outcomes(result, record.patient_ref))
    state.metrics.latency.labels(OPERATION, doc["status"]).observe(time.perf_counter() - t0)
    log.info("fhir_operation", request_id=request_id, status=doc["status"],
             latency_ms=round((time.perf_counter() - t0) * 1e3, 2), audit=destination)
    return FhirJSON(bundle, headers={REQUEST_ID_HEADER: request_id})
