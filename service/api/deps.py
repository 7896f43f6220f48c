"""Request helpers shared by the routes: state, body parsing, and the dependencies a route
declares: :data:`ClientDep` (the authenticated CDS client; every route that needs a client
JWT declares it, ``tests/service/test_route_auth.py`` lists which), :data:`AnswerDep` (the
answer path of the assessment routes, :mod:`service.answer`) and :data:`ServiceDep` (a CDS
service id that exists, else 404).

The dependencies are ``async``: a plain ``def`` dependency runs in a worker thread, a thread
hop on every request. FastAPI resolves a route's dependency parameters in the order they are
declared: the assessment routes declare the answer path first (its clock includes the
authentication, as the latency always did), then the service (an unknown service is a 404
before any 401, as before), then the client.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import orjson
import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from service.answer import AnswerPath
from service.app_state import AppState
from service.discovery import SERVICES_BY_ID
from service.errors import BadRequest, NotFound, PayloadTooLarge, RequestTimeout, Unauthorized
from service.schemas.cds_hooks import ServiceDefinition

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("hypermarker.service")


async def get_state(request: Request) -> AppState:
    """The app's state (created in the lifespan)."""
    state: AppState = request.app.state.hm
    return state


StateDep = Annotated[AppState, Depends(get_state)]


#: Seconds a client has to send the whole request body (a half-sent body holds a worker).
BODY_TIMEOUT_S = 15.0


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON: at most ``limit`` bytes, all of it within
    :data:`BODY_TIMEOUT_S`."""
    timeout_s = BODY_TIMEOUT_S
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


async def authenticate(request: Request, state: StateDep) -> Any:
    """The dependency of every route that needs a client: verify the client JWT (in a worker
    thread: key fetches may block; ``aud`` is the URL called) or raise 401."""
    try:
        return await run_in_threadpool(state.verifier.verify,
                                       request.headers.get("authorization"),
                                       audience(request, state))
    except Exception as e:  # every verifier failure is a 401 without detail
        reason = getattr(e, "reason", type(e).__name__)
        state.metrics.auth_failures.labels(str(reason)).inc()
        log.info("auth_rejected", reason=str(reason), path=request.url.path)
        raise Unauthorized() from e


#: The authenticated CDS client (what the verifier returns; demo mode: its stand-in).
ClientDep = Annotated[Any, Depends(authenticate)]


async def start_answer(state: StateDep) -> AnswerPath:
    """The call's answer path, its clock started."""
    return AnswerPath(state)


AnswerDep = Annotated[AnswerPath, Depends(start_answer)]


async def known_service(service_id: str) -> ServiceDefinition:
    """The CDS service the path names, or 404."""
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise NotFound(f"no CDS service {service_id!r}")
    return service


ServiceDep = Annotated[ServiceDefinition, Depends(known_service)]
