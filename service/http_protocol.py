"""The HTTP/1.1 protocol ``hypermarker serve`` runs: uvicorn's h11 protocol with limits that
hold before any application code (and so before authentication) runs.

* Header size: h11 refuses a request head over ``MAX_HEADER_BYTES`` (uvicorn's default
  httptools parser read and kept a 64 MB header).
* Header time: a connection whose request head is not complete within ``HEADER_TIMEOUT_S``
  of its opening (or of the previous response) is closed, so half-sent requests (slowloris)
  cannot hold sockets open (1,000 of them stayed open). The body has its own deadline in
  :func:`service.api.deps.read_json`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: The largest request head (request line and headers) accepted, in bytes.
MAX_HEADER_BYTES = 32_768
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT_S = 10.0


class GuardedH11Protocol(H11Protocol):
    """h11 with a deadline on the request head (see the module docstring)."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # the head of the current request is in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head has the same deadline

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options() -> dict[str, Any]:
    """The uvicorn options ``hypermarker serve`` adds: the guarded protocol and its limits."""
    return {"http": GuardedH11Protocol, "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            "timeout_keep_alive": 5}
