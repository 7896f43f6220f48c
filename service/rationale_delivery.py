"""Delivering the LLM rationale without ever delaying care (issue 16 item 4; hazard H-36).

The choice, per route:

- **CDS Hooks cards never wait.** The card goes out exactly as without an LLM (no rationale
  on it); after the response is built, :meth:`RationaleDelivery.in_background` starts writing
  the rationale and returns at once. The outcome is kept under the card's panel token
  (:mod:`service.rationale_store`) for the panel. Background writing is bounded: at most
  ``max_pending`` at once (a card beyond that gets none: counted in
  ``hypermarker_rationale_dropped_total``), each bounded by the client's own time budget, and
  all cancelled at shutdown. While the circuit breaker is open nothing is started.
- **``$hypertension-options`` waits up to the budget** (``HYPERMARKER_LLM_BUDGET_MS``): the
  rationale is in the answer when ready by then, else the deterministic one with its status
  (``timeout``) while the LLM request goes on in the background (its outcome is cached for the
  next call).
- **The panel** shows the outcome kept for its card when it is for the same facts; otherwise
  (opened early, on another pod without Redis, or after expiry) it asks like the operation,
  with the same budget.

The deterministic rationale always stands in for text the verifier did not pass; what the LLM
wrote is audited (an audit ``rationale`` record per LLM answer, with the verdict, model, server
version and latency); a failed or slow LLM is a metric and a log line (no patient data), never
an error to the client.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import structlog
from fastapi.concurrency import run_in_threadpool

from audit_store.records import RationaleRecord
from models.assessment import Assessment
from rationale.breaker import BreakerState, CircuitBreaker
from rationale.client import LlmClient
from rationale.facts import Facts, facts_of
from rationale.verifier import Rationale, Sentence, Verdict
from rationale.writer import RationaleOutcome, RationaleStatus, RationaleWriter, stand_in
from service.metrics import Metrics
from service.rationale_store import MemoryRationaleStore, RationaleStore, RedisRationaleStore
from service.settings import Settings

log = structlog.get_logger("hypermarker.service")
Trigger = Literal["card", "operation", "panel"]
#: The error of an outcome that was not ready within the route's budget.
NOT_READY: Final = "not ready within the budget"
#: The error of an outcome not asked for: too many rationales being written already.
BUSY: Final = "too many rationales being written"


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asked for a rationale: the call's request id (its audit record's key), the route,
    and the keyed hash of the patient (never the id)."""

    request_id: str
    trigger: Trigger
    patient_ref: str


def outcome_doc(o: RationaleOutcome) -> dict[str, Any]:
    """The outcome as JSON (the panel's store; the audit record's fields)."""
    return {
        "status": o.status.value, "facts_hash": o.facts_hash,
        "shown": [{"text": s.text, "facts": list(s.facts)} for s in o.shown.sentences],
        "llm_content": o.llm_content, "verdict": verdict_doc(o.verdict), "model": o.model,
        "server_version": o.server_version,
        "latency_ms": None if o.latency_s is None else round(o.latency_s * 1e3, 2),
        "error": o.error}


def verdict_doc(v: Verdict | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"ok": v.ok, "problems": [
        {"kind": p.kind.value, "detail": p.detail, "fact_id": p.fact_id,
         "sentence": p.sentence} for p in v.problems]}


def outcome_from_doc(doc: dict[str, Any]) -> RationaleOutcome:
    """What :func:`outcome_doc` wrote, for showing (the verdict's problems stay in the audit);
    raises ``KeyError``/``ValueError``/``TypeError`` on a doc it did not write."""
    shown = Rationale(tuple(Sentence(str(s["text"]), tuple(str(f) for f in s["facts"]))
                            for s in doc["shown"]))
    latency = doc.get("latency_ms")
    return RationaleOutcome(RationaleStatus(doc["status"]), shown, doc.get("llm_content"),
                            None, doc.get("model"), doc.get("server_version"),
                            None if latency is None else float(latency) / 1e3,
                            str(doc["facts_hash"]), doc.get("error"))


def shown_summary(o: RationaleOutcome) -> dict[str, Any]:
    """What a response showed, for its assessment record's ``llm`` field."""
    return {"status": o.status.value, "facts_hash": o.facts_hash, "model": o.model,
            "shown": [{"text": s.text, "facts": list(s.facts)} for s in o.shown.sentences],
            "error": o.error}


class RationaleDelivery:
    """See the module docstring. ``audit`` writes a rationale record (never raises)."""

    def __init__(self, writer: RationaleWriter, store: RationaleStore, metrics: Metrics, *,
                 wait_s: float, max_pending: int,
                 audit: Callable[[RationaleRecord], Awaitable[None]]) -> None:
        self.writer = writer
        self._store = store
        self._metrics = metrics
        self._wait_s = wait_s
        self._max_pending = max_pending
        self._audit = audit
        #: rationale jobs under way (bounded by max_pending)
        self._jobs: set[asyncio.Task[RationaleOutcome]] = set()
        #: audit writes and the start-up look-up (bounded by the jobs that start them)
        self._side: set[asyncio.Task[Any]] = set()

    @property
    def enabled(self) -> bool:
        return self.writer.enabled

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def _breaker_open(self) -> bool:
        client = self.writer.client
        return client is not None and client.breaker.state is BreakerState.OPEN

    # -- the routes -------------------------------------------------------------------------

    def in_background(self, a: Assessment, asker: Asker, token: str | None) -> bool:
        """The card path: start writing the rationale for the panel (``token``) and return at
        once (never awaits). False when nothing was started: no LLM, breaker open, or full."""
        if not self.enabled or self._breaker_open():
            return False
        if len(self._jobs) >= self._max_pending:
            self._metrics.rationale_dropped.inc()
            return False
        self._job(self._write(a, asker, token))
        return True

    async def within_budget(self, a: Assessment | Facts, asker: Asker) -> RationaleOutcome:
        """``$hypertension-options`` and the panel: the outcome if ready within the budget,
        else the deterministic rationale (status ``timeout``) while the request goes on."""
        facts = a if isinstance(a, Facts) else facts_of(a)
        if not self.enabled:
            return stand_in(facts, RationaleStatus.OFF)
        hit = self.writer.cached(facts.assessment_hash)
        if hit is not None:
            return hit
        if len(self._jobs) >= self._max_pending:
            self._metrics.rationale_dropped.inc()
            return stand_in(facts, RationaleStatus.UNAVAILABLE, error=BUSY)
        job = self._job(self._write(facts, asker, None))
        try:
            return await asyncio.wait_for(asyncio.shield(job), self._wait_s)
        except TimeoutError:
            return stand_in(facts, RationaleStatus.TIMEOUT,
                            model=self.writer.client.model if self.writer.client else None,
                            error=NOT_READY)

    async def for_panel(self, a: Assessment, token: str, patient_ref: str
                        ) -> RationaleOutcome:
        """The panel of the card with this token: the outcome written for it in the
        background when it is for these facts and this patient, else as the operation."""
        facts = facts_of(a)
        if self.enabled:
            doc = (await run_in_threadpool(self._store.get, token) if self._store.remote
                   else self._store.get(token))
            if (doc is not None and doc.get("patient_ref") == patient_ref
                    and isinstance(doc.get("outcome"), dict)):
                try:
                    kept = outcome_from_doc(doc["outcome"])
                except (KeyError, ValueError, TypeError):
                    kept = None
                if kept is not None and kept.facts_hash == facts.assessment_hash:
                    return kept
        return await self.within_budget(facts, Asker(str(uuid.uuid4()), "panel", patient_ref))

    # -- the work ---------------------------------------------------------------------------

    def _job(self, work: Coroutine[Any, Any, RationaleOutcome]
             ) -> asyncio.Task[RationaleOutcome]:
        task = asyncio.get_running_loop().create_task(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    async def _write(self, a: Assessment | Facts, asker: Asker, token: str | None
                     ) -> RationaleOutcome:
        # facts_of is pure Python (milliseconds): in a worker thread, so the event loop that
        # answers the next card is not held while a background rationale is prepared
        facts = a if isinstance(a, Facts) else await run_in_threadpool(facts_of, a)
        outcome = await self.writer.write_facts(
            facts, on_new=lambda o: self._answered(o, asker))
        if token is not None:
            doc = {"patient_ref": asker.patient_ref, "request_id": asker.request_id,
                   "outcome": outcome_doc(outcome)}
            if self._store.remote:
                await run_in_threadpool(self._store.put, token, doc)
            else:
                self._store.put(token, doc)
        return outcome

    def _answered(self, o: RationaleOutcome, asker: Asker) -> None:
        """Once per LLM request: count it, log a failure, audit what the LLM wrote."""
        self._metrics.rationale.labels(o.status.value).inc()
        if o.latency_s is not None:
            self._metrics.rationale_latency.labels(o.status.value).observe(o.latency_s)
        latency_ms = None if o.latency_s is None else round(o.latency_s * 1e3, 1)
        if o.status in (RationaleStatus.TIMEOUT, RationaleStatus.UNAVAILABLE):
            level = log.debug if o.error == "LlmCircuitOpen" else log.warning
            level("rationale_llm_failed", status=o.status.value, error=o.error,
                  latency_ms=latency_ms, trigger=asker.trigger, request_id=asker.request_id)
        elif o.status is RationaleStatus.REJECTED:
            kinds = sorted({p.kind.value for p in o.verdict.problems}) if o.verdict else []
            log.info("rationale_rejected", problems=kinds, latency_ms=latency_ms,
                     trigger=asker.trigger, request_id=asker.request_id)
        if o.llm_content is None:
            return  # nothing the LLM wrote: the metric and the log line say it failed
        doc = outcome_doc(o)
        record = RationaleRecord(
            rationale_id=str(uuid.uuid4()), request_id=asker.request_id,
            trigger=asker.trigger, received_at=datetime.now(UTC),
            patient_ref=asker.patient_ref, facts_hash=o.facts_hash,
            status=o.status.value,
            shown=doc["shown"], llm_content=o.llm_content, verdict=doc["verdict"],
            model=o.model, server_version=o.server_version, latency_ms=doc["latency_ms"],
            error=o.error)
        self._side_task(self._audit(record))

    def _side_task(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> None:
        """Read the server's model names and version in the background (logged; the version
        then goes with every completion). Never waits for the server."""
        if self.writer.client is not None:
            self._side_task(self._look_up())

    async def _look_up(self) -> None:
        client = self.writer.client
        assert client is not None
        try:
            info = await client.server_info()
        except Exception as e:  # the server may come up later: rationales say so then
            log.warning("llm_server_unreachable", error=type(e).__name__)
            return
        log.info("llm_server", models=list(info.models), version=info.version,
                 configured=client.model, served=client.model in info.models)

    async def aclose(self, audit_grace_s: float = 3.0) -> None:
        """Shutdown: cancel the rationales being written, let audit writes finish (bounded),
        close the client."""
        jobs = list(self._jobs)
        for t in jobs:
            t.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        side = list(self._side)
        if side:
            _, late = await asyncio.wait(side, timeout=audit_grace_s)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.writer.aclose()


def build_delivery(settings: Settings, metrics: Metrics,
                   audit: Callable[[RationaleRecord], Awaitable[None]], *,
                   transport: Any = None) -> RationaleDelivery:
    """The delivery the settings describe: no client when ``llm_url`` is unset (every
    rationale ``off``); the store shared through Redis when the panel store is.
    ``transport``: an httpx transport for the client (tests)."""
    client = None
    if settings.llm_url:
        def breaker_state(state: BreakerState) -> None:
            for s in BreakerState:
                metrics.llm_breaker.labels(s.value).set(1 if s is state else 0)
            (log.warning if state is BreakerState.OPEN else log.info)(
                "llm_breaker", state=state.value)

        breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_s,
                                 on_change=breaker_state)
        breaker_state(BreakerState.CLOSED)
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        client = LlmClient(settings.llm_url, settings.llm_model, api_key=key,
                           budget_s=settings.llm_timeout_s, retries=settings.llm_retries,
                           transport=transport, breaker=breaker)
    url = settings.shared_state_url
    store: RationaleStore = (RedisRationaleStore.from_url(url) if url and client
                             else MemoryRationaleStore())
    return RationaleDelivery(RationaleWriter(client), store, metrics,
                             wait_s=settings.llm_budget_ms / 1e3,
                             max_pending=settings.llm_max_pending, audit=audit)
