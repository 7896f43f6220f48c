"""The panel in a real headless Chromium, served by a real uvicorn server on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import example_request
from tests.service.live_server import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("browser"))


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
