"""A client that hangs up mid-body is not a server error."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from structlog.testing import capture_logs

from tests.service.conftest import example_request
from tests.service.live_server import serve


def test_a_client_hanging_up_mid_body_is_not_an_unhandled_error(tmp_path: Path) -> None:
    gen = serve(tmp_path)
    base = next(gen)
    try:
        url = urlsplit(base)
        with capture_logs() as logs:
            with socket.create_connection((url.hostname, url.port)) as sock:
                sock.sendall(b"POST /cds-services/hypertension-treatment HTTP/1.1\r\n"
                             b"Host: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 50000\r\n\r\n" + b'{"hook": "patient-view", ')
                time.sleep(0.2)
            time.sleep(0.3)
            after = httpx.post(base + "/cds-services/hypertension-treatment",
                               json=example_request(), timeout=10)
        assert after.status_code == 200
        assert not [e for e in logs if e.get("event") == "unhandled_error"]
    finally:
        next(gen, None)
