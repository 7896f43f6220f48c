"""``POST /cds-services/{id}/feedback``: idempotent by card uuid and outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from service.api.deps import StateDep, authenticate, parse, read_json
from service.audit.records import FeedbackRecord
from service.discovery import SERVICES_BY_ID
from service.errors import NotFound
from service.schemas.cds_hooks import FeedbackRequest

router = APIRouter(tags=["CDS Hooks"])
log = structlog.get_logger("hypermarker.service")


@router.post("/cds-services/{service_id}/feedback",
             responses={400: {"description": "Invalid feedback (OperationOutcome)"}})
async def feedback(service_id: str, request: Request,
                   state: StateDep) -> dict[str, int]:
    """Record what the clinician did with each card; a repeated item is stored once."""
    if service_id not in SERVICES_BY_ID:
        raise NotFound(f"no CDS service {service_id!r}")
    await authenticate(request, state)
    body = parse(FeedbackRequest, await read_json(request, 1_000_000))
    received = datetime.now(UTC)
    stored = duplicates = 0
    for item in body.feedback:
        reason = item.overrideReason.reason if item.overrideReason else None
        rec = FeedbackRecord(
            service_id=service_id, card_uuid=item.card, outcome=item.outcome,
            accepted_suggestions=[s.id for s in item.acceptedSuggestions or []],
            override_reason_code=reason.code if reason else None,
            override_reason_system=reason.system if reason else None,
            override_reason_display=reason.display if reason else None,
            user_comment=item.overrideReason.userComment if item.overrideReason else None,
            outcome_timestamp=datetime.fromisoformat(item.outcomeTimestamp.replace("Z",
                                                                                   "+00:00")),
            received_at=received)
        if await run_in_threadpool(state.store.record_feedback, rec):
            stored += 1
            state.metrics.feedback.labels(item.outcome, reason.code if reason else "none").inc()
        else:
            duplicates += 1
    log.info("cds_feedback", service_id=service_id, stored=stored, duplicates=duplicates)
    return {"stored": stored, "duplicates": duplicates}
