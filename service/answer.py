"""The one answer path of the routes that answer with an assessment.

``POST /cds-services/{id}`` and ``POST /fhir/$hypertension-options`` both go through an
:class:`AnswerPath`, created as the request's first dependency
(:data:`service.api.deps.AnswerDep`, so the clock starts before authentication, as the latency
always measured it):

1. :meth:`AnswerPath.assess` runs the route's pipeline call; data that is not exactly one
   patient's is refused, audited and counted (:func:`service.audit_writing.refuse_other_patient`,
   hazard H-01) and raised as a 422;
2. :meth:`AnswerPath.record` builds the audit record of what is sent and writes it with the
   outcomes its data showed before the response leaves (:func:`service.audit_writing
   .record_assessment`), counts the cards and the latency, and writes the route's log line.

Each route keeps what is its own: parsing its input, prefetch and cards (CDS Hooks), the
Bundle or Parameters in and the FHIR Bundle out (the operation). Everything runs on the event
loop, in the request's own task: no thread hop or task beyond the audit write's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, TypeVar

import structlog

from fhir_mappings.errors import MultiplePatients, PatientMismatch
from models.pipeline import PipelineResult
from service.app_state import AppState
from service.audit_writing import (
    assessment_record,
    new_request_id,
    observed_outcomes,
    record_assessment,
    refuse_other_patient,
)

R = TypeVar("R")
log = structlog.get_logger("hypermarker.service")


@dataclass(frozen=True, slots=True)
class Call:
    """What the audit record, the metrics and the refusal name a call by."""

    #: the CDS hook, or the operation's name (``$hypertension-options``)
    hook: str
    service_id: str
    #: the client's ``hookInstance``; None: the record keeps the request id in its place
    hook_instance: str | None
    #: keyed hash of the patient id (:meth:`AppState.patient_ref`)
    patient_ref: str


@dataclass(frozen=True, slots=True)
class LogLine:
    """A route's log line: its event and which fields it has, in this order (from
    ``service_id request_id hook_instance status cards fetched latency_ms client audit``)."""

    event: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Answered:
    """What :meth:`AnswerPath.record` kept: the request id (the ``X-Request-ID`` header)
    and where the audit record went (``database`` or ``spool``)."""

    request_id: str
    destination: str


class AnswerPath:
    """One call's answer: its clock, its request id, its assessment, audit, metrics, log."""

    __slots__ = ("received", "request_id", "started", "state")

    def __init__(self, state: AppState) -> None:
        self.started = perf_counter()
        self.received = datetime.now(UTC)
        self.state = state
        #: ours, new for every call: the audit record's key and the X-Request-ID header
        self.request_id = new_request_id()

    async def assess(self, call: Call, run: Callable[[], R],
                     locate: Callable[[str | None], str | None]) -> R:
        """``run()`` (the route's pipeline call, on the event loop); another patient's data is
        refused: audited, counted and raised as the 422 (``locate`` turns the mapping's JSON
        path into the FHIRPath of the request). Other input errors propagate to the route."""
        try:
            return run()
        except (PatientMismatch, MultiplePatients) as e:
            raise await refuse_other_patient(
                self.state, e, request_id=self.request_id, hook=call.hook,
                hook_instance=call.hook_instance, service_id=call.service_id,
                received=self.received,
                patient_ref=call.patient_ref, started=self.started,
                expression=locate(e.path)) from e

    async def record(self, call: Call, result: PipelineResult, line: LogLine, *,
                     cards: Sequence[dict[str, Any]] = (),
                     prefetch_fetched: Sequence[str] = (),
                     suggestion_options: Mapping[str, str] | None = None,
                     client: str | None = None,
                     llm: dict[str, Any] | None = None) -> Answered:
        """Audit what is sent (the assessment shown, ``cards`` as sent, ``llm`` the rationale
        shown) before it leaves (503 when the audit store cannot keep it), then count and log
        it."""
        state, request_id = self.state, self.request_id
        record = assessment_record(
            result, request_id=request_id, hook=call.hook,
            hook_instance=request_id if call.hook_instance is None else call.hook_instance,
            service_id=call.service_id, received=self.received, patient_ref=call.patient_ref,
            cards=cards, latency_ms=(perf_counter() - self.started) * 1e3,
            prefetch_fetched=list(prefetch_fetched), suggestion_options=suggestion_options,
            llm=llm)
        destination = await record_assessment(state, record,
                                              observed_outcomes(result, call.patient_ref))
        for c in cards:
            state.metrics.cards.labels(c["indicator"]).inc()
        total = perf_counter() - self.started
        status = result.assessment.status.value
        state.metrics.latency.labels(call.hook, status).observe(total)
        values = {"service_id": call.service_id, "request_id": request_id,
                  "hook_instance": call.hook_instance, "status": status, "cards": len(cards),
                  "fetched": prefetch_fetched, "latency_ms": round(total * 1e3, 2),
                  "client": client, "audit": destination}
        log.info(line.event, **{k: values[k] for k in line.fields})
        return Answered(request_id, destination)


