"""Limits that hold before authentication (issue 12, deliverable 5): the request head's size
and time, the body's time; over a real uvicorn server with the options `hypermarker serve`
uses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.http_protocol import MAX_HEADER_BYTES, GuardedHttpToolsProtocol, server_options
from tests.service.conftest import local_settings
from tests.service.live_server import free_port


class _QuickHead(GuardedHttpToolsProtocol):
    header_timeout_s = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    options = {**server_options(), "http": _QuickHead}
    srv = uvicorn.Server(uvicorn.Config(
        create_app(local_settings(tmp_path_factory.mktemp("limits"))), host="127.0.0.1",
        port=port, log_config=None, access_log=False, **options))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(base + "/health/live").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base, port
    srv.should_exit = True
    thread.join(timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (EOF) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_a_half_sent_request_head_is_closed(server: tuple[str, int]) -> None:
    """Slowloris: a head that never completes does not keep the socket (closed after the
    head deadline, here 0.5 s), while a complete request on another connection is served."""
    base, port = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /cds-services/hypertension-treatment HTTP/1.1\r\nHost: x\r\nX-A: ")
        assert _closed_within(s, 30)
    assert httpx.get(base + "/health/live").status_code == 200


def test_an_oversized_request_head_is_refused_not_read(server: tuple[str, int]) -> None:
    """A 64 MB header was read and kept: now the server answers 431/400 and closes after at
    most the header limit."""
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 4 * MAX_HEADER_BYTES:
                s.sendall(b"a" * 8192)
                sent += 8192
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(30)
        try:
            reply = s.recv(4096)
        except ConnectionResetError:
            reply = b""
    assert reply == b"" or reply.split(b" ")[1] in (b"400", b"431"), reply[:100]


def test_a_half_sent_body_is_a_408(server: tuple[str, int],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The body has its own deadline (15 s by default; the test shortens it)."""
    import service.api.deps as deps

    _, port = server
    monkeypatch.setattr(deps, "BODY_TIMEOUT_S", 0.5)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /cds-services/hypertension-treatment HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ho")
        s.settimeout(30)
        reply = s.recv(65536)
    assert reply.split(b" ")[1] == b"408", reply[:200]
    assert b"OperationOutcome" in reply
