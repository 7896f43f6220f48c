"""A real uvicorn server on loopback, in a thread, for tests that need the service over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.app import create_app
from tests.service.conftest import local_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(tmp: Path, **settings: Any) -> Iterator[str]:
    """Start the app on embedded defaults (``local_settings``) and yield its base URL; a
    setting whose value is the string "BASE" is replaced by that URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    overrides = {k: (base if v == "BASE" else v) for k, v in settings.items()}
    srv = uvicorn.Server(uvicorn.Config(create_app(local_settings(tmp, **overrides)),
                                        host="127.0.0.1", port=port, log_config=None,
                                        access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        try:
            if httpx.get(base + "/health/live").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)
