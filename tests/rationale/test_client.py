"""The OpenAI-compatible client through httpx's MockTransport: every way a server can answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rationale.breaker import BreakerState, CircuitBreaker
from rationale.client import (
    LlmBadResponse,
    LlmClient,
    LlmRejected,
    LlmTimeout,
    LlmUnavailable,
)

MESSAGES = [{"role": "system", "content": "explain"}, {"role": "user", "content": "facts"}]
FORMAT: dict[str, object] = {"type": "json_schema",
                             "json_schema": {"name": "rationale", "strict": True,
                                             "schema": {"type": "object"}}}
CONTENT = '{"sentences": [{"text": "Target below 140/90 mmHg.", "facts": ["target"]}]}'
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def completion(content: str | None = CONTENT, finish: str = "stop",
               model: str = "served-name") -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content}}]}


class Server:
    """A scripted server: each request takes the next response (the last one repeats)."""

    def __init__(self, *responses: httpx.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        r = self.responses[min(len(self.requests) - 1, len(self.responses) - 1)]
        return await r(request) if callable(r) else r

    def client(self, **kw: Any) -> LlmClient:
        kw.setdefault("budget_s", 2.0)
        return LlmClient("http://llm.test", "rationale-model",
                         transport=httpx.MockTransport(self), **kw)


async def _complete(c: LlmClient, **kw: Any) -> Any:
    try:
        return await c.complete(MESSAGES, FORMAT, max_tokens=300, **kw)
    finally:
        await c.aclose()


def run(c: LlmClient, **kw: Any) -> Any:
    return asyncio.run(_complete(c, **kw))


def test_success_sends_the_openai_request_and_returns_the_content() -> None:
    server = Server(httpx.Response(200, json=completion()))
    got = run(server.client(api_key="sk-secret-123"), seed=7)
    assert got.content == CONTENT
    assert got.finish_reason == "stop"
    assert got.model == "served-name"
    assert got.latency_s >= 0
    (req,) = server.requests
    assert req.url == "http://llm.test/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer sk-secret-123"
    body = json.loads(req.content)
    assert body["model"] == "rationale-model"
    assert body["messages"] == MESSAGES
    assert body["response_format"] == FORMAT
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (300, 0.0, 7)


def test_the_api_key_is_not_in_the_repr() -> None:
    c = LlmClient("http://llm.test", "m", api_key="sk-secret-123")
    assert "sk-secret" not in repr(c)
    asyncio.run(c.aclose())


@pytest.mark.parametrize(("response", "why"), [
    (httpx.Response(200, content=b"<html>gateway</html>"), "not a JSON document"),
    (httpx.Response(200, json={"model": "m"}), "no choices"),
    (httpx.Response(200, json={"choices": []}), "no choices"),
    (httpx.Response(200, json=completion(content=None)), "no message content"),
    (httpx.Response(200, json=completion(content='{"sentences": [{"te', finish="length")),
     "finish_reason='length'"),
])
def test_a_bad_completion_is_refused(response: httpx.Response, why: str) -> None:
    server = Server(response)
    with pytest.raises(LlmBadResponse, match=why):
        run(server.client())
    assert len(server.requests) == 1  # the server answered: no retry


def test_a_bad_completion_does_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(failures=1)
    with pytest.raises(LlmBadResponse):
        run(Server(httpx.Response(200, json=completion(finish="length"))).client(
            breaker=breaker))
    assert breaker.state is BreakerState.CLOSED


def test_a_slow_server_times_out_within_the_budget() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=completion())

    server = Server(slow)
    started = time.perf_counter()
    with pytest.raises(LlmTimeout):
        run(server.client(budget_s=0.2))
    # sanity only (a loaded machine may be slow): far below the server's 30 s
    assert time.perf_counter() - started < 5 * 0.2


def test_a_500_is_retried() -> None:
    server = Server(httpx.Response(500), httpx.Response(200, json=completion()))
    assert run(server.client()).content == CONTENT
    assert len(server.requests) == 2


def test_a_connection_failure_is_retried_then_unavailable() -> None:
    async def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Server(refused)
    with pytest.raises(LlmUnavailable, match="could not reach"):
        run(server.client(retries=2))
    assert len(server.requests) == 3


def test_repeated_503_opens_the_breaker_and_the_next_call_fails_fast() -> None:
    server = Server(httpx.Response(503))
    breaker = CircuitBreaker(failures=2, cooldown_s=60)

    async def calls() -> None:
        c = server.client(retries=1, breaker=breaker)
        try:
            for _ in range(2):
                with pytest.raises(LlmUnavailable, match="503"):
                    await c.complete(MESSAGES, FORMAT, max_tokens=10)
            assert breaker.state is BreakerState.OPEN
            sent = len(server.requests)
            assert sent == 4  # two calls of two attempts
            with pytest.raises(LlmUnavailable, match="circuit breaker open"):
                await c.complete(MESSAGES, FORMAT, max_tokens=10)
            assert len(server.requests) == sent  # no request while open
        finally:
            await c.aclose()

    asyncio.run(calls())


def test_the_breaker_half_opens_after_the_cool_down_and_a_success_closes_it() -> None:
    now = [0.0]
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(failures=1, cooldown_s=30, clock=lambda: now[0],
                             on_change=changes.append)
    server = Server(httpx.Response(503), httpx.Response(200, json=completion()))

    async def calls() -> None:
        c = server.client(retries=0, breaker=breaker)
        try:
            with pytest.raises(LlmUnavailable):
                await c.complete(MESSAGES, FORMAT, max_tokens=10)
            now[0] = 29.0
            with pytest.raises(LlmUnavailable, match="circuit breaker open"):
                await c.complete(MESSAGES, FORMAT, max_tokens=10)
            now[0] = 31.0
            assert breaker.state is BreakerState.HALF_OPEN
            assert (await c.complete(MESSAGES, FORMAT, max_tokens=10)).content == CONTENT
        finally:
            await c.aclose()

    asyncio.run(calls())
    assert breaker.state is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert len(server.requests) == 2


def test_a_failed_probe_opens_the_breaker_again() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown_s=10, clock=lambda: now[0])
    for _ in range(3):
        breaker.failure()
    now[0] = 11.0
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.failure()
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(("status", "message"), [
    (401, "401 unauthorised"),
    (404, "404 not found"),
    (400, "400 bad request"),
])
def test_a_refusal_is_typed_and_not_retried(status: int, message: str) -> None:
    server = Server(httpx.Response(status, json={"error": {
        "message": "The model `rationale-model` does not exist.", "code": status}}))
    with pytest.raises(LlmRejected, match=message) as e:
        run(server.client())
    assert e.value.status == status
    assert len(server.requests) == 1


def test_a_retry_after_beyond_the_budget_fails_at_once() -> None:
    server = Server(httpx.Response(429, headers={"Retry-After": "120"}))
    started = time.perf_counter()
    with pytest.raises(LlmUnavailable, match="no time left"):
        run(server.client(budget_s=1.0))
    assert len(server.requests) == 1
    assert time.perf_counter() - started < 1.0


def test_server_info_reads_the_model_names_and_version() -> None:
    async def routes(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [
                {"id": "rationale-model", "object": "model", "max_model_len": 2048}]})
        if request.url.path == "/version":
            return httpx.Response(200, json={"version": "0.33.0"})
        return httpx.Response(200, json=completion())

    async def calls() -> tuple[Any, Any]:
        c = Server(routes).client()
        try:
            return await c.server_info(), await c.complete(MESSAGES, FORMAT, max_tokens=10)
        finally:
            await c.aclose()

    info, got = asyncio.run(calls())
    assert info.models == ("rationale-model",)
    assert info.version == "0.33.0"
    assert info.max_model_len == 2048
    assert got.server_version == "0.33.0"


def test_server_info_without_a_version_endpoint() -> None:
    async def routes(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "smollm2"}]})
        return httpx.Response(404)

    async def calls() -> Any:
        c = Server(routes).client()
        try:
            return await c.server_info()
        finally:
            await c.aclose()

    info = asyncio.run(calls())
    assert info.models == ("smollm2",)
    assert info.version is None


def test_server_info_of_a_server_that_is_down() -> None:
    async def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def calls() -> None:
        c = Server(refused).client()
        try:
            await c.server_info()
        finally:
            await c.aclose()

    with pytest.raises(LlmUnavailable, match="/v1/models"):
        asyncio.run(calls())
