"""A database that stalls while still acknowledging packets (issue 12, deliverable 5): the
card does not wait for it; the record goes to the spool and is replayed later."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import example_request, local_settings


def test_a_stalled_audit_write_goes_to_the_spool_and_the_card_goes_out(tmp_path: Path) -> None:
    stall = threading.Event()
    app = create_app(local_settings(tmp_path, audit_write_timeout_s=0.5))
    with TestClient(app, raise_server_exceptions=False) as c:
        store = c.app.state.hm.store  # type: ignore[attr-defined]

        def stalled(*args: Any, **kwargs: Any) -> str:
            stall.wait(60)  # the database never answers while the call is made
            return "database"

        real = store.record_assessment
        store.record_assessment = stalled
        try:
            r = c.post("/cds-services/hypertension-treatment", json=example_request())
            assert r.status_code == 200, r.text
            assert r.json()["cards"]
            assert store.spool_depth() >= 1  # durable before the card went out
            assert store.tripped()  # the next writes go straight to the spool
        finally:
            stall.set()
            store.record_assessment = real
        # the database answers again: after the breaker's retry interval (1 s) the replay
        # stores it (a replay inside the interval finds the breaker open and keeps the spool)
        deadline = time.monotonic() + 30
        while store.assessment(r.headers["x-request-id"]) is None:
            assert time.monotonic() < deadline, "the spooled record was never replayed"
            time.sleep(1.5)
            store.replay_spool()
