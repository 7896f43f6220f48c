"""``POST /cds-services/{id}``: parse, fetch what is missing, assess, answer with cards, audit.

What is this route's own: the hook request, the prefetch it resolves, the draft orders, the
panel token and the cards, and starting the LLM rationale for the panel in the background
once the card is built (the card never waits for it: service/rationale_delivery.py).
Timing, the pipeline call's refusal of another patient's data, the audit record (before the
response), metrics and the log line are the shared answer path
(:class:`service.answer.AnswerPath`).
"""

from __future__ import annotations

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from fhir_mappings.availability import unavailable_domains
from fhir_mappings.errors import InputError
from fhir_mappings.features import feature_vector_to_document
from models.assessment import AssessmentStatus
from models.pipeline import PipelineResult
from service.answer import Call, LogLine
from service.api.deps import AnswerDep, ClientDep, ServiceDep, StateDep, parse, read_json
from service.app_state import AppState
from service.audit_writing import REQUEST_ID_HEADER
from service.cards import CardContext, build_cards, suggestion_options
from service.discovery import REQUIRED_PREFETCH
from service.errors import BadRequest, fhirpath
from service.orders import DraftOrders, draft_orders
from service.panel_store import PanelStoreError
from service.rationale_delivery import Asker
from service.responses import JSONBody
from service.schemas.cds_hooks import CdsResponse, HookRequest

router = APIRouter(tags=["CDS Hooks"])
log = structlog.get_logger("hypermarker.service")
#: This route's log line.
CDS_CALL = LogLine("cds_call", ("service_id", "request_id", "hook_instance", "status", "cards",
                                "fetched", "latency_ms", "client", "audit"))


def _in_prefetch(path: str | None) -> str:
    """A mapping error's JSON path as the FHIRPath of the request's prefetch."""
    return fhirpath(path, "prefetch") or "prefetch"


def _panel_url(request: Request, state: AppState) -> str:
    base = state.settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + "/panel/launch"


@router.post("/cds-services/{service_id}", response_model=CdsResponse,
             responses={400: {"description": "Invalid request (OperationOutcome)"},
                        401: {"description": "Unauthorized"},
                        404: {"description": "Unknown service"},
                        412: {"description": "Required FHIR data unavailable"}})
async def call_service(service_id: str, request: Request, answer: AnswerDep,
                       service: ServiceDep, identity: ClientDep, state: StateDep) -> JSONBody:
    """Run one CDS service: at most one card in normal cases, audited before it is sent."""
    received = answer.received
    hook = parse(HookRequest, await read_json(request, state.settings.max_body_bytes))
    if hook.hook != service.hook:
        raise BadRequest(f"service {service_id} answers {service.hook}, not {hook.hook}", "hook")
    resolved = await state.prefetch.resolve(hook, service.prefetch or {}, REQUIRED_PREFETCH)
    for key in resolved.fetched:
        state.metrics.prefetch_misses.labels(key, "fetched").inc()
    for key in resolved.unavailable:
        state.metrics.prefetch_misses.labels(key, "unavailable").inc()
    patient = state.patient_ref(hook.context.patientId)
    call = Call(hook.hook, service_id, hook.hookInstance, patient)

    def assess() -> tuple[PipelineResult, DraftOrders]:
        result = state.pipeline.assess_fhir(resolved.data, received.date(),
                                          patient_id=hook.context.patientId,
                                          unavailable=unavailable_domains(resolved.unavailable))
        # what the draft orders order, and what they add to the current regimen
        return result, draft_orders(hook, result.features, received.date())

    try:
        # Another patient's data: never a card, and the refusal is audited (hazard H-01).
        result, ordered = await answer.assess(call, assess, _in_prefetch)
    except InputError as e:
        raise BadRequest(f"prefetch: {e.reason}", _in_prefetch(e.path)) from e
    # serialised: ten thousand cached feature graphs would make every full GC pass slow
    try:
        value = orjson.dumps(feature_vector_to_document(result.features))
        token: str | None = (await run_in_threadpool(state.panel.put, value, patient)
                             if state.panel.remote else state.panel.put(value, patient))
    except PanelStoreError:  # the card still goes out, without a panel link it cannot keep
        token = None
    ctx = CardContext(hook.hook, service_id, _panel_url(request, state), hook.context.patientId,
                      ordered.classes, ordered.draft, ordered.facts, ordered.interactions)
    cards = build_cards(result.assessment, ctx,
                        app_context=None if token is None
                        else orjson.dumps({"assessment": token}).decode())
    card_docs = [c.model_dump(exclude_none=True) for c in cards]
    done = await answer.record(call, result, CDS_CALL, cards=card_docs,
                               prefetch_fetched=resolved.fetched,
                               suggestion_options=suggestion_options(cards),
                               client=getattr(identity, "iss", None))
    if (state.rationale is not None and token is not None
            and result.assessment.status is AssessmentStatus.ASSESSED):
        # the card never waits for the LLM: its rationale is written for the panel after
        # the card is built and audited (bounded background work; hazard H-36)
        state.rationale.in_background(result.assessment, Asker(done.request_id, "card", patient),
                                      token)
    return JSONBody({"cards": card_docs}, headers={REQUEST_ID_HEADER: done.request_id})
