"""An async client for any OpenAI-compatible chat-completions server (vLLM in production).

One call, :meth:`LlmClient.complete`, posts ``{base}/v1/chat/completions`` with the OpenAI
``response_format`` (a json_schema), ``temperature``, ``max_tokens`` and ``seed``, and returns the
message content only when the server says it finished (``finish_reason == "stop"``): a
truncated answer (``length``) is invalid JSON or half a rationale and is refused here.

Time. ``budget_s`` bounds the whole call, retries and back-off included (``asyncio.timeout``
around the attempts, and each request's httpx timeout set to what is left): when it runs out
the call raises :class:`LlmTimeout` at once, whatever the server is doing.

Retries. Only where another try can help: a connection that failed, 429, and 5xx; with
exponential back-off and full jitter, honouring ``Retry-After``. A small loop, not tenacity:
before each back-off the loop checks that the wait and a next attempt still fit in the budget
and fails at once (:class:`LlmUnavailable`) if they do not, instead of sleeping into a timeout;
that needs the remaining budget and the server's ``Retry-After`` at each decision, which is
plainer here than as tenacity stop/wait callbacks.

Breaker. A :class:`~rationale.breaker.CircuitBreaker` sees every call's fate: a server that
keeps failing (connection, 5xx, timeout, or refusing the request: 401, 404 unknown model, 400)
opens it, and calls then fail at once without a request. A server that answers with a bad
completion (truncated, not JSON) is up: that closes it.

The API key goes in the ``Authorization: Bearer`` header and nowhere else: it is not kept on
the object in a readable attribute, not in ``repr`` and never logged. Nothing here logs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from rationale.breaker import CircuitBreaker

#: Status codes another attempt can help with.
RETRYABLE_STATUS: Final = frozenset({429, 500, 502, 503, 504})
#: First back-off (seconds) before jitter; doubled at each retry.
BACKOFF_BASE_S: Final = 0.1
#: The longest single back-off (seconds).
BACKOFF_MAX_S: Final = 2.0
#: How long the model and version look-ups (``/v1/models``, ``/version``) may take.
INFO_TIMEOUT_S: Final = 2.0


class LlmError(Exception):
    """The LLM gave no usable completion."""


class LlmUnavailable(LlmError):
    """No answer: the connection failed, the server kept failing (5xx, 429) after the retries,
    or the circuit breaker is open."""


class LlmCircuitOpen(LlmUnavailable):
    """The circuit breaker is open: no request was sent."""


class LlmTimeout(LlmError):
    """The call's time budget ran out."""


class LlmBadResponse(LlmError):
    """The server answered 200 with something that is not a finished completion: not a JSON
    envelope, no choices or no content, or ``finish_reason`` other than ``stop``; ``content``
    is the message content where there was one (a truncated answer, kept for the audit)."""

    def __init__(self, message: str, content: str | None = None) -> None:
        super().__init__(message)
        self.content = content


class LlmRejected(LlmError):
    """The server refused the request (4xx other than 429): 401/403 a wrong or missing API key,
    404 an unknown model, 400 a request it cannot serve (schema, ``max_tokens``). Not retried;
    ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Completion:
    """A finished completion: the message content as sent, and where it came from."""

    content: str
    finish_reason: str
    #: the model name the server answered with (the served model name)
    model: str
    #: the server's version (``/version``) when :meth:`LlmClient.server_info` has read it
    server_version: str | None
    latency_s: float


@dataclass(frozen=True)
class ServerInfo:
    """What the server says it serves: the model names of ``/v1/models`` (and the configured
    model's ``max_model_len`` when vLLM gives it) and the version of ``/version`` (None where
    the server has no such endpoint, e.g. llama.cpp)."""

    models: tuple[str, ...]
    version: str | None
    max_model_len: int | None = None


class LlmClient:
    """See the module docstring. One per process; close with :meth:`aclose`."""

    __slots__ = ("_budget_s", "_http", "_info", "_retries", "breaker", "model")

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 budget_s: float = 2.0, retries: int = 2,
                 transport: httpx.AsyncBaseTransport | None = None,
                 breaker: CircuitBreaker | None = None) -> None:
        if budget_s <= 0:
            raise ValueError("budget_s must be positive")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport,
            timeout=httpx.Timeout(budget_s), follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))
        self.model = model
        self._budget_s = budget_s
        self._retries = retries
        self.breaker = breaker or CircuitBreaker()
        self._info: ServerInfo | None = None

    def __repr__(self) -> str:
        return f"LlmClient({str(self._http.base_url)!r}, {self.model!r})"

    @property
    def budget_s(self) -> float:
        return self._budget_s

    async def complete(self, messages: Sequence[Mapping[str, str]],
                       response_format: Mapping[str, object], *, max_tokens: int,
                       temperature: float = 0.0, seed: int | None = None) -> Completion:
        """One chat completion within the budget (see the module docstring for the errors)."""
        if not self.breaker.allow():
            raise LlmCircuitOpen("circuit breaker open: the LLM server failed repeatedly")
        body: dict[str, Any] = {
            "model": self.model, "messages": [dict(m) for m in messages],
            "response_format": dict(response_format), "max_tokens": max_tokens,
            "temperature": temperature, "stream": False}
        if seed is not None:
            body["seed"] = seed
        started = time.perf_counter()
        deadline = time.monotonic() + self._budget_s
        try:
            async with asyncio.timeout(self._budget_s):
                response = await self._post(body, deadline)
        except TimeoutError as e:
            self.breaker.failure()
            raise LlmTimeout(f"no completion within {self._budget_s:g} s") from e
        except (LlmUnavailable, LlmRejected):  # (the breaker was closed or half-open here)
            self.breaker.failure()
            raise
        except BaseException:  # cancelled: no verdict on the server
            self.breaker.release()
            raise
        self.breaker.success()  # it answered; whether the answer is usable is checked next
        return self._completion(response, time.perf_counter() - started)

    async def _post(self, body: dict[str, Any], deadline: float) -> httpx.Response:
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            try:
                response = await self._http.post("/v1/chat/completions", json=body,
                                                 timeout=httpx.Timeout(max(left, 0.001)))
            except httpx.TimeoutException as e:
                raise TimeoutError from e
            except httpx.TransportError as e:
                failure: str = f"could not reach the LLM server ({type(e).__name__})"
                retry_after = None
            else:
                if response.status_code == 200:
                    return response
                if response.status_code not in RETRYABLE_STATUS:
                    raise LlmRejected(_refusal(response), response.status_code)
                failure = f"the LLM server answered {response.status_code}"
                retry_after = _retry_after(response)
            if attempt >= self._retries:
                raise LlmUnavailable(f"{failure} (after {attempt + 1} attempts)")
            wait = max(retry_after or 0.0,
                       random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt)))
            if time.monotonic() + wait >= deadline:
                raise LlmUnavailable(f"{failure}; no time left in the budget to retry")
            await asyncio.sleep(wait)
            attempt += 1

    def _completion(self, response: httpx.Response, latency_s: float) -> Completion:
        try:
            doc = response.json()
        except ValueError as e:
            raise LlmBadResponse("the completion is not a JSON document") from e
        choices = doc.get("choices") if isinstance(doc, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LlmBadResponse("the completion has no choices")
        choice = choices[0]
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        finish = choice.get("finish_reason")
        if finish != "stop":
            raise LlmBadResponse(f"the completion did not finish (finish_reason={finish!r})",
                                 content if isinstance(content, str) else None)
        if not isinstance(content, str):
            raise LlmBadResponse("the completion has no message content")
        model = doc.get("model")
        return Completion(content, finish, model if isinstance(model, str) else self.model,
                          self._info.version if self._info else None, latency_s)

    async def server_info(self) -> ServerInfo:
        """The served model names (``/v1/models``) and server version (``/version``, when the
        server has it); kept, so later completions carry the version. Raises
        :class:`LlmUnavailable` when ``/v1/models`` cannot be read."""
        try:
            r = await self._http.get("/v1/models", timeout=INFO_TIMEOUT_S)
            r.raise_for_status()
            data = r.json().get("data")
        except (httpx.HTTPError, ValueError, AttributeError) as e:
            raise LlmUnavailable(f"could not read /v1/models ({type(e).__name__})") from e
        entries = [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []
        models = tuple(str(m["id"]) for m in entries if isinstance(m.get("id"), str))
        ours = next((m for m in entries if m.get("id") == self.model), None)
        max_len = ours.get("max_model_len") if ours else None
        version: str | None = None
        try:
            v = await self._http.get("/version", timeout=INFO_TIMEOUT_S)
            if v.status_code == 200:
                raw = v.json().get("version")
                version = raw if isinstance(raw, str) else None
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None  # not every server has /version (llama.cpp)
        self._info = ServerInfo(models, version,
                                max_len if isinstance(max_len, int) else None)
        return self._info

    async def aclose(self) -> None:
        await self._http.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is ignored)."""
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _refusal(response: httpx.Response) -> str:
    """What a 4xx says, briefly (the server's error message, never the request)."""
    meaning = {400: "bad request", 401: "unauthorised (API key)", 403: "forbidden (API key)",
               404: "not found (unknown model or path)"}.get(response.status_code, "refused")
    detail = ""
    try:
        err = response.json().get("error") if response.content else None
        message = err.get("message") if isinstance(err, dict) else err
        detail = f": {str(message)[:200]}" if message else ""
    except (ValueError, AttributeError):
        detail = ""
    return f"the LLM server refused the request ({response.status_code} {meaning}){detail}"
