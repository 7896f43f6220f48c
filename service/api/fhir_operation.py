"""``POST /fhir/$hypertension-options``: the assessment as FHIR, for systems without CDS Hooks.

Input: a Bundle of the patient's resources, or a Parameters resource with a ``patientData``
parameter holding that Bundle (and optionally ``guideline`` = nice | esc): the
OperationDefinition served at ``/fhir/OperationDefinition/hypertension-options``
(service/fhir_contract.py). The conformance routes (``/fhir/metadata``, OperationDefinition,
CodeSystem) are included in this module's router. Error expressions are FHIRPath from the
posted resource (``Bundle.entry[2].resource.subject``,
``Parameters.parameter[0].resource.entry[2].resource.subject``).

What is this route's own: the Bundle or Parameters in and the FHIR Bundle out, with the LLM
rationale when one is configured (waiting at most its budget: service/rationale_delivery.py).
Timing, the refusal of another patient's data, the audit record (before the response), metrics
and the log line are the shared answer path (:class:`service.answer.AnswerPath`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request

from fhir_mappings.errors import InputError
from models.guideline.profiles import PROFILES
from rationale.writer import RationaleStatus
from service.answer import Call, LogLine
from service.api.deps import AnswerDep, ClientDep, StateDep, read_json
from service.api.fhir_metadata import router as metadata_router
from service.audit_writing import REQUEST_ID_HEADER
from service.errors import BadRequest, fhirpath
from service.fhir_canonical import MODULE_URI
from service.fhir_output import assessment_bundle
from service.fhir_rationale import add_rationale
from service.rationale_delivery import Asker, shown_summary
from service.responses import FhirJSON, JSONBody

router = APIRouter(tags=["FHIR"])
router.include_router(metadata_router)
log = structlog.get_logger("hypermarker.service")
#: How the operation appears in the audit store (hook and service id) and in metrics.
OPERATION = "$hypertension-options"
#: This route's log line.
FHIR_OPERATION = LogLine("fhir_operation", ("request_id", "status", "latency_ms", "audit"))


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


def _in(where: str) -> Callable[[str | None], str | None]:
    """A mapping error's JSON path -> its FHIRPath in the posted resource (from ``where``)."""
    return lambda path: fhirpath(path, where)


@router.post("/fhir/$hypertension-options")  # responses: service/api/contract.py
async def hypertension_options(request: Request, answer: AnswerDep, client: ClientDep,
                               state: StateDep) -> JSONBody:
    """Assess a patient from a FHIR Bundle; answer with GuidanceResponse, RiskAssessment and
    DetectedIssue resources in a collection Bundle; audited like a CDS Hooks call (hook
    ``$hypertension-options``, no cards) before the response is sent."""
    data, guideline, where = _unwrap(await read_json(request, state.settings.max_body_bytes))
    patient_id = _patient_id(data)
    call = Call(OPERATION, OPERATION, None, state.patient_ref(patient_id or ""))
    locate = _in(where)
    try:
        # Not exactly one patient's record: never assessed, and the refusal is audited.
        result = await answer.assess(call, lambda: state.pipeline.assess_fhir(
            data, answer.received.date(), PROFILES[guideline] if guideline else None), locate)
    except InputError as e:
        raise BadRequest(e.reason, locate(e.path)) from e
    bundle = assessment_bundle(result.assessment, patient_id, MODULE_URI, answer.request_id)
    llm = None
    if state.rationale is not None and state.rationale.enabled:
        # waits at most HYPERMARKER_LLM_BUDGET_MS, then the rationale built from the record
        outcome = await state.rationale.within_budget(
            result.assessment, Asker(answer.request_id, "operation", call.patient_ref))
        if outcome.status is not RationaleStatus.OFF:
            add_rationale(bundle, outcome)
            llm = shown_summary(outcome)
    done = await answer.record(call, result, FHIR_OPERATION, llm=llm)
    return FhirJSON(bundle, headers={REQUEST_ID_HEADER: done.request_id})
