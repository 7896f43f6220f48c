"""The writer: facts -> prompt -> client -> verifier -> what is shown, with the cache and the
single flight; the LLM through httpx's MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
import pytest

from models.assessment import Assessment
from models.explainer import Explainer
from models.guideline.profiles import PROFILES
from models.pipeline import Pipeline
from models.scorer import Scorer
from rationale.client import LlmClient
from rationale.facts import facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_TOKENS, messages, response_format
from rationale.verifier import ProblemKind
from rationale.writer import RationaleOutcome, RationaleStatus, RationaleWriter
from tests import factories

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture(scope="module")
def assessed(scorer: Scorer, explainer: Explainer) -> Assessment:
    a = Pipeline(scorer, explainer, PROFILES["nice"]).full_assessment(factories.patient())
    assert a.options  # a ranked patient
    return a


def completion(content: str, finish: str = "stop") -> httpx.Response:
    return httpx.Response(200, json={"model": "served", "choices": [
        {"index": 0, "finish_reason": finish,
         "message": {"role": "assistant", "content": content}}]})


class Llm:
    """A scripted LLM server; counts requests."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        r = self.answer(request)
        return await r if asyncio.iscoroutine(r) else r  # type: ignore[return-value]

    def writer(self, budget_s: float = 2.0, retries: int = 0) -> RationaleWriter:
        return RationaleWriter(LlmClient("http://llm.test", "rationale-model",
                                         transport=httpx.MockTransport(self),
                                         budget_s=budget_s, retries=retries))


def write(w: RationaleWriter, a: Assessment, times: int = 1) -> list[RationaleOutcome]:
    async def go() -> list[RationaleOutcome]:
        try:
            return [await w.write(a) for _ in range(times)]
        finally:
            await w.aclose()
    return asyncio.run(go())


def test_no_llm_is_off_and_shows_the_deterministic_rationale(assessed: Assessment) -> None:
    (o,) = write(RationaleWriter(None), assessed)
    facts = facts_of(assessed)
    assert o.status is RationaleStatus.OFF
    assert o.shown == deterministic_rationale(facts)
    assert o.facts_hash == facts.assessment_hash
    assert o.llm_content is None


def test_a_verified_rationale_is_shown_as_written(assessed: Assessment) -> None:
    facts = facts_of(assessed)
    content = deterministic_rationale(facts).content()  # passes the verifier by construction
    llm = Llm(lambda r: completion(content))
    (o,) = write(llm.writer(), assessed)
    assert o.status is RationaleStatus.VERIFIED
    assert o.machine_written
    assert o.shown.content() == content
    assert o.llm_content == content
    assert o.verdict is not None
    assert o.verdict.ok
    assert o.model == "served"
    assert o.latency_s is not None
    body = json.loads(llm.requests[0].content)
    assert body["messages"] == messages(facts)
    assert body["response_format"] == response_format()
    assert body["max_tokens"] == MAX_TOKENS
    assert body["temperature"] == 0.0


def test_a_hallucinating_rationale_is_rejected_and_kept_for_the_audit(
        assessed: Assessment) -> None:
    content = json.dumps({"sentences": [
        {"text": "Start ramipril 10 mg and aim below 125/75 mmHg.", "facts": ["target"]}]})
    (o,) = write(Llm(lambda r: completion(content)).writer(), assessed)
    assert o.status is RationaleStatus.REJECTED
    assert not o.machine_written
    assert o.shown == deterministic_rationale(facts_of(assessed))
    assert o.llm_content == content
    assert o.verdict is not None
    assert not o.verdict.ok
    assert ProblemKind.HALLUCINATION in o.verdict.kinds


def test_a_truncated_completion_is_rejected_with_its_text(assessed: Assessment) -> None:
    cut = '{"sentences": [{"text": "The target is'
    (o,) = write(Llm(lambda r: completion(cut, finish="length")).writer(), assessed)
    assert o.status is RationaleStatus.REJECTED
    assert o.llm_content == cut
    assert o.verdict is not None
    assert ProblemKind.SCHEMA in o.verdict.kinds
    assert o.error == "LlmBadResponse"


def test_a_slow_llm_times_out_to_the_deterministic_rationale(assessed: Assessment) -> None:
    async def slow(r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return completion("{}")

    (o,) = write(Llm(slow).writer(budget_s=0.2), assessed)
    assert o.status is RationaleStatus.TIMEOUT
    assert o.error == "LlmTimeout"
    assert o.shown == deterministic_rationale(facts_of(assessed))


@pytest.mark.parametrize(("response", "error"), [
    (httpx.Response(503), "LlmUnavailable"), (httpx.Response(404), "LlmRejected:404"),
    (httpx.Response(401), "LlmRejected:401")])
def test_an_llm_that_fails_is_unavailable(assessed: Assessment, response: httpx.Response,
                                          error: str) -> None:
    (o,) = write(Llm(lambda r: response).writer(), assessed)
    assert o.status is RationaleStatus.UNAVAILABLE
    assert o.error == error
    assert o.llm_content is None
    assert o.verdict is None


def test_the_same_facts_are_asked_once(assessed: Assessment) -> None:
    content = deterministic_rationale(facts_of(assessed)).content()
    llm = Llm(lambda r: completion(content))
    outcomes = write(llm.writer(), assessed, times=3)
    assert len(llm.requests) == 1
    assert all(o is outcomes[0] for o in outcomes)


def test_failures_are_not_cached(assessed: Assessment) -> None:
    llm = Llm(lambda r: httpx.Response(503))
    write(llm.writer(), assessed, times=2)
    assert len(llm.requests) == 2


def test_concurrent_calls_share_one_request_and_report_it_once(assessed: Assessment) -> None:
    content = deterministic_rationale(facts_of(assessed)).content()

    async def answer(r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return completion(content)

    llm = Llm(answer)
    reported: list[RationaleOutcome] = []

    async def go() -> list[RationaleOutcome]:
        w = llm.writer()
        try:
            return list(await asyncio.gather(*(w.write(assessed, on_new=reported.append)
                                               for _ in range(5))))
        finally:
            await w.aclose()

    outcomes = asyncio.run(go())
    assert len(llm.requests) == 1
    assert len(reported) == 1
    assert {o.status for o in outcomes} == {RationaleStatus.VERIFIED}


def test_a_caller_that_stops_waiting_does_not_cancel_the_request(assessed: Assessment) -> None:
    content = deterministic_rationale(facts_of(assessed)).content()

    async def answer(r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return completion(content)

    llm = Llm(answer)

    async def go() -> RationaleOutcome | None:
        w = llm.writer()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(w.write(assessed), 0.01)
            assert w.in_flight == 1
            await asyncio.sleep(0.4)
            return w.cached(facts_of(assessed).assessment_hash)
        finally:
            await w.aclose()

    kept = asyncio.run(go())
    assert kept is not None
    assert kept.status is RationaleStatus.VERIFIED
    assert len(llm.requests) == 1


def test_close_cancels_the_requests_under_way(assessed: Assessment) -> None:
    async def never(r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return completion("{}")

    async def go() -> int:
        w = Llm(never).writer(budget_s=60)
        waiter = asyncio.ensure_future(w.write(assessed))
        await asyncio.sleep(0.05)
        assert w.in_flight == 1
        await w.aclose()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        return w.in_flight

    assert asyncio.run(go()) == 0


def test_a_failure_says_how_long_it_took(assessed: Assessment) -> None:
    (o,) = write(Llm(lambda r: httpx.Response(500)).writer(), assessed)
    assert o.facts_hash == facts_of(assessed).assessment_hash
    assert o.latency_s is not None
    assert o.latency_s >= 0

