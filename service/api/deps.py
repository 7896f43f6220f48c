"""Request helpers shared by the routes: state, body parsing, authentication."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import orjson
import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from service.errors import BadRequest, PayloadTooLarge, RequestTimeout, Unauthorized
from service.state import AppState

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("hypermarker.service")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.hm
    return state


StateDep = Annotated[AppState, Depends(get_state)]


#: Seconds a client has to send the whole request body (a half-sent body holds a worker).
BODY_TIMEOUT_S = 15.0


async def read_json(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"request body over {limit} bytes")
    except ClientDisconnect as e:  # nobody is left to answer; not a server error
        raise BadRequest("the client disconnected before sending the whole body") from e
    except TimeoutError as e:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from e
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e.msg} at position {e.pos}") from e


def loc_path(loc: Any) -> str:
    """A validation error's location as a FHIRPath-style path: ``feedback[0].outcome``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; the error names the first bad path."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        path = loc_path(first["loc"]) or "$"
        raise BadRequest(f"{path}: {first['msg']}", path) from e


def audience(request: Request, state: AppState) -> str:
    """The URL the client called, as the JWT ``aud`` must state it."""
    base = state.settings.public_base_url
    if base:
        return base.rstrip("/") + request.url.path
    return str(request.url.replace(query=None, fragment=None))


async def authenticate(request: Request, state: AppState) -> Any:
    """Verify the client JWT (in a worker thread: key fetches may block) or raise 401."""
    try:
        return await run_in_threadpool(state.verifier.verify,
                                       request.headers.get("authorization"),
                                       audience(request, state))
    except Exception as e:  # every verifier failure is a 401 without detail
        reason = getattr(e, "reason", type(e).__name__)
        state.metrics.auth_failures.labels(str(reason)).inc()
        log.info("auth_rejected", reason=str(reason), path=request.url.path)
        raise Unauthorized() from e
