"""``POST /cds-services/{id}``: parse, fetch what is missing, assess, answer with cards, audit."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from fhir_mappings.availability import PREFETCH_KEY_DOMAINS
from fhir_mappings.errors import InputError, MultiplePatients, PatientMismatch
from fhir_mappings.features import feature_vector_to_document
from service.api.deps import StateDep, authenticate, parse, read_json
from service.cards import CardContext, build_cards, suggestion_options
from service.discovery import REQUIRED_PREFETCH, SERVICES_BY_ID
from service.errors import BadRequest, NotFound, fhirpath
from service.orders import draft_orders
from service.panel_store import PanelStoreError
from service.recording import (
    REQUEST_ID_HEADER,
    assessment_record,
    new_request_id,
    observed_outcomes,
    record_assessment,
    refuse_other_patient,
)
from service.responses import JSONBody
from service.schemas.cds_hooks import CdsResponse, HookRequest
from service.state import AppState

router = APIRouter(tags=["CDS Hooks"])
log = structlog.get_logger("hypermarker.service")


def _unavailable(keys: dict[str, str]) -> dict[str, str]:
    """Prefetch keys that could not be had -> the part of the record each one is, with why."""
    out: dict[str, str] = {}
    for key, why in keys.items():
        domain = PREFETCH_KEY_DOMAINS.get(key)
        if domain is not None:
            out.setdefault(domain.value, f"{key}: {why}")
    return out


def _panel_url(request: Request, state: AppState) -> str:
    base = state.settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + "/panel/launch"


@router.post("/cds-services/{service_id}", response_model=CdsResponse,
             responses={400: {"description": "Invalid request (OperationOutcome)"},
                        401: {"description": "Unauthorized"},
                        404: {"description": "Unknown service"},
                        412: {"description": "Required FHIR data unavailable"}})
async def call_service(service_id: str, request: Request,
                       state: StateDep) -> JSONBody:
    """Run one CDS service: at most one card in normal cases, audited before it is sent."""
    t0 = time.perf_counter()
    received = datetime.now(UTC)
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise NotFound(f"no CDS service {service_id!r}")
    identity = await authenticate(request, state)
    hook = parse(HookRequest, await read_json(request, state.settings.max_body_bytes))
    if hook.hook != service.hook:
        raise BadRequest(f"service {service_id} answers {service.hook}, not {hook.hook}", "hook")
    resolved = await state.prefetch.resolve(hook, service.prefetch or {}, REQUIRED_PREFETCH)
    for key in resolved.fetched:
        state.metrics.prefetch_misses.labels(key, "fetched").inc()
    for key in resolved.unavailable:
        state.metrics.prefetch_misses.labels(key, "unavailable").inc()
    try:
        result = state.engine.assess_fhir(resolved.data, received.date(),
                                          patient_id=hook.context.patientId,
                                          unavailable=_unavailable(resolved.unavailable))
        # what the draft orders order, and what they add to the current regimen
        ordered = draft_orders(hook, result.features, received.date())
    except (PatientMismatch, MultiplePatients) as e:
        # Another patient's data: never a card, and the refusal is audited (hazard H-01).
        raise await refuse_other_patient(
            state, e, hook=hook.hook, hook_instance=hook.hookInstance, service_id=service_id,
            received=received, patient_id=hook.context.patientId, started=t0,
            expression=fhirpath(e.path, "prefetch") or "prefetch") from e
    except InputError as e:
        raise BadRequest(f"prefetch: {e.reason}", fhirpath(e.path, "prefetch") or "prefetch"
                         ) from e
    doc = result.document
    patient = state.patient_ref(hook.context.patientId)
    # serialised: ten thousand cached feature graphs would make every full GC pass slow
    try:
        value = orjson.dumps(feature_vector_to_document(result.features))
        token: str | None = (await run_in_threadpool(state.panel.put, value, patient)
                             if state.panel.remote else state.panel.put(value, patient))
    except PanelStoreError:  # the card still goes out, without a panel link it cannot keep
        token = None
    cards = build_cards(doc, CardContext(hook.hook, service_id, _panel_url(request, state),
                                         hook.context.patientId, ordered.classes, ordered.draft,
                                         ordered.facts, ordered.interactions),
                        app_context=orjson.dumps({"assessment": token}).decode())
    card_docs = [c.model_dump(exclude_none=True) for c in cards]
    if token is None:
        for c in card_docs:
            c.pop("links", None)
    request_id = new_request_id()
    record = assessment_record(
        result, doc, request_id=request_id, hook=hook.hook, hook_instance=hook.hookInstance,
        service_id=service_id, received=received, patient_ref=patient, cards=card_docs,
        latency_ms=(time.perf_counter() - t0) * 1e3, prefetch_fetched=list(resolved.fetched),
        suggestion_options=suggestion_options(cards))
    destination = await record_assessment(state, record, observed_outcomes(result, patient))
    for c in card_docs:
        state.metrics.cards.labels(c["indicator"]).inc()
    total = time.perf_counter() - t0
    state.metrics.latency.labels(hook.hook, doc["status"]).observe(total)
    log.info("cds_call", service_id=service_id, request_id=request_id,
             hook_instance=hook.hookInstance,
             status=doc["status"], cards=len(card_docs), fetched=resolved.fetched,
             latency_ms=round(total * 1e3, 2), client=getattr(identity, "iss", None),
             audit=destination)
    return JSONBody({"cards": card_docs}, headers={REQUEST_ID_HEADER: request_id})
