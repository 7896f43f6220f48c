"""The panel in a real headless Chromium, served by a real uvicorn server on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from tests.service.conftest import example_request, local_settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    app = create_app(local_settings(tmp_path_factory.mktemp("browser")))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                        access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(base + "/health/live").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                    "chromium); .ci/run installs it")
def test_the_panel_renders_in_chromium(server: str, tmp_path: Path) -> None:
    """Card over real HTTP -> panel page -> Chromium's DOM has the ranked table and flags,
    and a screenshot is produced."""
    card = httpx.post(server + "/cds-services/hypertension-treatment",
                      json=example_request(), timeout=30).json()["cards"][0]
    token = card["links"][0]["appContext"].split('"')[3]
    url = f"{server}/panel/view/{token}"
    profile = tmp_path / "profile"
    assert CHROMIUM is not None

    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    shot = tmp_path / "panel.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={shot}", "--window-size=1200,1600", url],
                   capture_output=True, timeout=120, check=True)

    assert "<table id=\"options\">" in dom
    assert dom.count("data-option=") >= 10
    assert "contraindicated" in dom
    assert "Data provenance" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
