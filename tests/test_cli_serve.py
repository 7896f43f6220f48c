"""``hypermarker serve``: what it sets up before uvicorn starts its workers (issue 12)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from hypermarker_cli.main import app as cli
from service.http_protocol import GuardedHttpToolsProtocol


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    for name in ("PROMETHEUS_MULTIPROC_DIR", "HYPERMARKER_WORKERS", "HYPERMARKER_STATE_URL",
                 "HYPERMARKER_AUTH_MODE"):  # serve sets them; each test gets them back
        monkeypatch.setenv(name, "")  # (records the value to restore, even "not set")
        monkeypatch.delenv(name)
    return calls


def test_several_workers_share_an_emptied_metrics_directory(
        started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("HYPERMARKER_STATE_URL", "redis://127.0.0.1:6379/0")

    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--auth", "demo"])

    assert result.exit_code == 0, result.output
    assert not stale.exists()  # counters of an earlier run are not added to this one's
    (kw,) = started
    assert kw["workers"] == 2
    assert kw["http"] is GuardedHttpToolsProtocol
    assert os.environ["HYPERMARKER_WORKERS"] == "2"


def test_several_workers_without_a_shared_store_do_not_start(
        started: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--auth", "demo"])

    assert result.exit_code != 0
    assert not started
    assert "redis" in str(result.exception).lower()
