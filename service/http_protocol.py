"""The HTTP/1.1 protocol ``hypermarker serve`` runs: uvicorn's httptools protocol with limits
that hold before any application code (and so before authentication) runs.

* Header size: a request head (request line and headers) over ``MAX_HEADER_BYTES`` gets a
  431 and the connection is closed (the parser alone read and kept a 64 MB header).
* Header time: a connection whose request head is not complete within ``HEADER_TIMEOUT_S``
  of its opening (or of the previous response) is closed, so half-sent requests (slowloris)
  cannot hold sockets open (1,000 of them stayed open). The body has its own deadline in
  :func:`service.api.deps.read_json`.

httptools, not h11: uvicorn's pure-Python h11 parser added about 1 ms to a patient-view call
with its 60 kB prefetch (``bench/bench_service.py``: p50 9.9 ms against 8.8 ms, one run each
on this 2-core machine).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The largest request head (request line and headers) accepted, in bytes.
MAX_HEADER_BYTES = 32_768
#: Seconds a client has to send a complete request head.
HEADER_TIMEOUT_S = 10.0
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
              b"charset=utf-8\r\ncontent-length: 28\r\nconnection: close\r\n\r\n"
              b"request head over the limit\n")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a size limit and a deadline on the request head (module docstring)."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEADER_BYTES:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()  # the head of the current request is in
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._in_head = True
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
    """The uvicorn options ``hypermarker serve`` adds: the guarded protocol."""
    return {"http": GuardedHttpToolsProtocol, "timeout_keep_alive": 5}
