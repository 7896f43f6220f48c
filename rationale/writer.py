"""From an assessment to the rationale a clinician may see: facts -> prompt -> LLM -> verifier.

:meth:`RationaleWriter.write` always returns a rationale to show: the LLM's text when the
verifier passed it (``verified``), else the deterministic rationale built from the same facts,
with the reason it stands in: ``rejected`` (the verifier found an error, or the completion was
truncated or not JSON), ``unavailable`` (no answer: connection, 5xx, refused request, open
breaker), ``timeout`` (the client's budget ran out), ``off`` (no LLM configured). What the LLM
wrote is kept beside it for the audit (``llm_content``, ``verdict``), never shown unverified.

Cache and single flight. Outcomes the LLM decided (verified or rejected) are kept by facts hash
(:class:`rationale.cache.TtlLru`, bounded, expiring): the same facts are not asked again. Calls
for facts already being asked wait for that one request rather than sending another (the card's
background writing, the panel and ``$hypertension-options`` share it); a caller that stops
waiting (its own budget) does not cancel it. Failures are not cached: the breaker already keeps
calls off a failing server, and a later call may find it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from models.assessment import Assessment
from rationale.cache import TtlLru
from rationale.client import (
    LlmBadResponse,
    LlmClient,
    LlmError,
    LlmRejected,
    LlmTimeout,
)
from rationale.facts import Facts, facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_TOKENS, messages, response_format
from rationale.verifier import Problem, ProblemKind, Rationale, Verdict, verify


class RationaleStatus(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    OFF = "off"


@dataclass(frozen=True)
class RationaleOutcome:
    """What was shown and why, with what the LLM wrote (for the audit)."""

    status: RationaleStatus
    #: the verified LLM rationale, else the deterministic one
    shown: Rationale
    #: the message content as the server sent it (None: no completion)
    llm_content: str | None
    verdict: Verdict | None
    model: str | None
    server_version: str | None
    latency_s: float | None
    facts_hash: str
    #: why there is no LLM text: the error's class (and HTTP status of a refusal)
    error: str | None = None

    @property
    def machine_written(self) -> bool:
        """Whether :attr:`shown` is the LLM's (verified) text."""
        return self.status is RationaleStatus.VERIFIED


class RationaleWriter:
    """See the module docstring. ``client`` None: every outcome is ``off``."""

    def __init__(self, client: LlmClient | None, *, cache_size: int = 1024,
                 cache_ttl_s: float = 1800.0, seed: int | None = 0,
                 max_tokens: int = MAX_TOKENS) -> None:
        self.client = client
        self._cache: TtlLru[RationaleOutcome] = TtlLru(cache_size, cache_ttl_s)
        self._seed = seed
        self._max_tokens = max_tokens
        self._inflight: dict[str, asyncio.Task[RationaleOutcome]] = {}

    @property
    def enabled(self) -> bool:
        return self.client is not None

    @property
    def in_flight(self) -> int:
        """LLM requests under way now."""
        return len(self._inflight)

    def cached(self, facts_hash: str) -> RationaleOutcome | None:
        return self._cache.get(facts_hash)

    async def write(self, a: Assessment, *,
                    on_new: Callable[[RationaleOutcome], None] | None = None
                    ) -> RationaleOutcome:
        return await self.write_facts(facts_of(a), on_new=on_new)

    async def write_facts(self, facts: Facts, *,
                          on_new: Callable[[RationaleOutcome], None] | None = None
                          ) -> RationaleOutcome:
        """The outcome for these facts (cached, shared with a request under way, or new).
        ``on_new`` is called with the outcome when this call started the LLM request (once per
        request: the audit and the metrics count requests, not waiters)."""
        if self.client is None:
            return stand_in(facts, RationaleStatus.OFF)
        key = facts.assessment_hash
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._ask(self.client, facts))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settled(key, t))
            if on_new is not None:
                task.add_done_callback(lambda t: _report(t, on_new))
        return await asyncio.shield(task)

    def _settled(self, key: str, task: asyncio.Task[RationaleOutcome]) -> None:
        self._inflight.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        outcome = task.result()
        if outcome.status in (RationaleStatus.VERIFIED, RationaleStatus.REJECTED):
            self._cache.put(key, outcome)

    async def _ask(self, client: LlmClient, facts: Facts) -> RationaleOutcome:
        started = time.perf_counter()
        try:
            done = await client.complete(messages(facts), response_format(),
                                         max_tokens=self._max_tokens, temperature=0.0,
                                         seed=self._seed)
        except LlmBadResponse as e:  # the server answered, with nothing a verifier can pass
            cut = Problem(ProblemKind.SCHEMA, str(e), None, None)
            found = verify(facts, e.content).problems if e.content is not None else ()
            return stand_in(facts, RationaleStatus.REJECTED, llm_content=e.content,
                             verdict=Verdict(False, None, (cut, *found)), model=client.model,
                             latency_s=time.perf_counter() - started, error=_error(e))
        except LlmError as e:
            status = (RationaleStatus.TIMEOUT if isinstance(e, LlmTimeout)
                      else RationaleStatus.UNAVAILABLE)
            return stand_in(facts, status, model=client.model,
                             latency_s=time.perf_counter() - started, error=_error(e))
        verdict = verify(facts, done.content)
        latency = done.latency_s
        if verdict.ok and verdict.rationale is not None:
            return RationaleOutcome(RationaleStatus.VERIFIED, verdict.rationale, done.content,
                                    verdict, done.model, done.server_version, latency,
                                    facts.assessment_hash)
        return stand_in(facts, RationaleStatus.REJECTED, llm_content=done.content,
                         verdict=verdict, model=done.model,
                         server_version=done.server_version, latency_s=latency)

    async def aclose(self) -> None:
        """Cancel the requests under way and close the client."""
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()


def _report(task: asyncio.Task[RationaleOutcome],
            on_new: Callable[[RationaleOutcome], None]) -> None:
    if not task.cancelled() and task.exception() is None:
        on_new(task.result())


def stand_in(facts: Facts, status: RationaleStatus, *, llm_content: str | None = None,
              verdict: Verdict | None = None, model: str | None = None,
              server_version: str | None = None, latency_s: float | None = None,
              error: str | None = None) -> RationaleOutcome:
    """The deterministic rationale in the LLM's place, saying why."""
    return RationaleOutcome(status, deterministic_rationale(facts), llm_content, verdict, model,
                            server_version, latency_s, facts.assessment_hash, error)


def _error(e: LlmError) -> str:
    name = type(e).__name__
    return f"{name}:{e.status}" if isinstance(e, LlmRejected) else name
