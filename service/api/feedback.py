"""``POST /cds-services/{id}/feedback``: checked against the audit record of each card, then
stored once per (service, card, outcome, outcomeTimestamp).

Every item of a batch is checked before any is stored, against the audit record of the
assessment that issued its card (:meth:`AuditStore.find_card`):

- the card uuid is one this service issued, and to the service the feedback is posted to;
- each accepted suggestion is one of that card's suggestions;
- a coded override reason is one the card offered (same code, and same system when the client
  sends one); the stored system and display are the offered ones, so a client that omits the
  display (or words it differently) still leaves the reason's display in the record.

Anything else is a 409 OperationOutcome (it conflicts with what was recorded) naming the
item, and nothing of the batch is stored.
A malformed item (e.g. an ``outcomeTimestamp`` of 2026-13-45T25:61:61Z) is a 400.

A card whose assessment is still in the spool (the database was down when the card was
issued, or is down now, so its record cannot be read) is neither known nor unknown. Its
feedback is **accepted and stored with ``verified = false``**, not refused: the audit store
promises that nothing handed to it is lost, and CDS clients do not reliably resend feedback
after a 503 with Retry-After (the spec makes feedback fire-and-forget). What can be checked
without the card's record still is: the service id (the route), the reason code against the
reasons the service's cards offer, the item's form. The response counts these items
(``unverified``), and the monitoring job can leave them out of override statistics or re-check
them against the card once the spool is replayed. A later resend of the same feedback is a
duplicate (same key) and keeps the first record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from audit_store.records import FeedbackRecord, IssuedCard, OfferedReason
from audit_store.store import AuditStore, AuditUnavailable, CardLookup
from service.api.deps import ClientDep, ServiceDep, StateDep, parse, read_json
from service.cards import OVERRIDE_REASONS
from service.errors import ServiceError, ServiceUnavailable
from service.metrics import NO_REASON
from service.schemas.cds_hooks import Coding, FeedbackItem, FeedbackRequest

router = APIRouter(tags=["CDS Hooks"])
log = structlog.get_logger("hypermarker.service")

#: What the service's cards offer: the reasons a card whose record does not list its own
#: (records written before they did, and cards whose record cannot be read yet) is held to.
CATALOGUE: Final = tuple(OfferedReason(r.code, r.system, r.display) for r in OVERRIDE_REASONS)


class FeedbackMismatch(ServiceError):
    """Feedback that does not match what the service issued: 409, it conflicts with the
    audit record (the OperationOutcome's code says how)."""

    status_code = 409

    def __init__(self, message: str, expression: str, code: str) -> None:
        super().__init__(message, expression)
        self.code = code


def _offered(reason: Coding, offered: Sequence[OfferedReason]) -> OfferedReason | None:
    for o in offered:
        if o.code == reason.code and (reason.system is None or reason.system == o.system):
            return o
    return None


def _check(item: FeedbackItem, index: int, lookup: CardLookup, service_id: str,
           received: datetime) -> FeedbackRecord:
    """The record of one item, or :class:`FeedbackMismatch`."""
    at = f"feedback[{index}]"
    if lookup == "unknown":
        raise FeedbackMismatch(f"{at}.card: no card with this uuid was issued",
                               f"{at}.card", "not-found")
    card = lookup if isinstance(lookup, IssuedCard) else None
    if card is not None and card.service_id != service_id:
        raise FeedbackMismatch(f"{at}.card: the card was issued by another CDS service, "
                               "not by this one", f"{at}.card", "business-rule")
    accepted = [s.id for s in item.acceptedSuggestions or []]
    for j, sid in enumerate(accepted):
        if card is not None and sid not in card.suggestions:
            raise FeedbackMismatch(f"{at}.acceptedSuggestions[{j}].id: not a suggestion of "
                                   "this card", f"{at}.acceptedSuggestions[{j}].id",
                                   "not-found")
    override = item.overrideReason
    reason = override.reason if override else None
    chosen = None
    if reason is not None:
        offered = card.override_reasons if card and card.override_reasons is not None \
            else CATALOGUE
        chosen = _offered(reason, offered)
        if chosen is None:
            raise FeedbackMismatch(f"{at}.overrideReason.reason: not an override reason this "
                                   "card offered", f"{at}.overrideReason.reason",
                                   "code-invalid")
    return FeedbackRecord(
        service_id=service_id, card_uuid=item.card, outcome=item.outcome,
        accepted_suggestions=accepted,
        override_reason_code=chosen.code if chosen else None,
        override_reason_system=chosen.system if chosen else None,
        override_reason_display=chosen.display if chosen else None,
        user_comment=override.userComment if override else None,
        outcome_timestamp=item.timestamp, received_at=received, verified=card is not None)


def _checked(store: AuditStore, service_id: str, items: Sequence[FeedbackItem],
             received: datetime) -> list[FeedbackRecord]:
    """Every item checked (each card looked up once) before any is stored."""
    lookups: dict[str, CardLookup] = {}
    out = []
    for i, item in enumerate(items):
        if item.card not in lookups:
            lookups[item.card] = store.find_card(item.card)
        out.append(_check(item, i, lookups[item.card], service_id, received))
    return out


def _store(store: AuditStore, records: Sequence[FeedbackRecord]) -> list[bool]:
    return [store.record_feedback(r) for r in records]


@router.post("/cds-services/{service_id}/feedback",
             responses={400: {"description": "Invalid feedback (OperationOutcome)"},
                        401: {"description": "Unauthorized"},
                        404: {"description": "Unknown service (OperationOutcome)"},
                        409: {"description": "Feedback on a card, suggestion or override "
                                             "reason this service did not issue "
                                             "(OperationOutcome); nothing stored"},
                        503: {"description": "The audit store cannot keep it; retry"}})
async def feedback(service_id: str, request: Request, service: ServiceDep, client: ClientDep,
                   state: StateDep) -> dict[str, int]:
    """Record what the clinician did with each card; a repeated item is stored once (an
    unknown service is a 404 before the client is authenticated: the dependency order)."""
    body = parse(FeedbackRequest, await read_json(request, 1_000_000))
    received = datetime.now(UTC)
    records = await run_in_threadpool(_checked, state.store, service_id, body.feedback,
                                      received)
    try:
        new = await run_in_threadpool(_store, state.store, records)
    except AuditUnavailable as e:  # neither database nor spool: the client should resend
        raise ServiceUnavailable("the audit store cannot record this feedback; retry",
                                 headers={"Retry-After": "5"}) from e
    for rec, stored in zip(records, new, strict=True):
        if stored:
            state.metrics.feedback.labels(rec.outcome,
                                          rec.override_reason_code or NO_REASON).inc()
    counts = {"stored": sum(new), "duplicates": len(new) - sum(new),
              "unverified": sum(not r.verified for r in records)}
    log.info("cds_feedback", service_id=service_id, **counts)
    return counts
