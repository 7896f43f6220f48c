"""The rationale end to end through the app, with HYPERMARKER_LLM_URL pointing at real vLLM
serving the tiny random-weight model (issue 16 item 6): the random text is rejected by the
verifier, and ``$hypertension-options`` and the panel show the rationale built from the record
with status ``rejected``, never the LLM's text; the audit keeps what the LLM wrote."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from audit_store.records import RationaleRecord
from service.app import create_app
from service.panel_rationale import REJECTED_LABEL
from tests.llm_servers.servers import RunningServer
from tests.service.conftest import example_bundle, example_request, local_settings

pytestmark = [pytest.mark.llm_server, pytest.mark.slow]

OP = "/fhir/$hypertension-options"
HOOK = "/cds-services/hypertension-treatment"


@pytest.fixture(scope="module")
def app_client(vllm_tiny: RunningServer, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[TestClient]:
    """The app on embedded defaults, its LLM settings from the environment as deployed."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HYPERMARKER_LLM_URL", vllm_tiny.base_url)
        env.setenv("HYPERMARKER_LLM_MODEL", vllm_tiny.model)
        env.setenv("HYPERMARKER_LLM_BUDGET_MS", "10000")  # the model answers in about 1 s
        env.setenv("HYPERMARKER_LLM_TIMEOUT_S", "30")
        settings = local_settings(tmp_path_factory.mktemp("app-llm"))
    assert settings.llm_url == vllm_tiny.base_url
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _rationale_records(client: TestClient, request_id: str) -> list[RationaleRecord]:
    """The audit's rationale records of this call (written after the answer: waited for)."""
    store = client.app.state.hm.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while True:
        found = [r for r in store.rationales() if r.request_id == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_operation_shows_the_record_s_rationale_with_status_rejected(
        app_client: TestClient, vllm_tiny: RunningServer) -> None:
    r = app_client.post(OP, json=example_bundle())

    assert r.status_code == 200, r.text
    params = [e["resource"] for e in r.json()["entry"]
              if e["resource"]["resourceType"] == "Parameters"]
    rationale = next(p for p in params[0]["parameter"] if p["name"] == "rationale")
    parts = [(p["name"], p.get("valueCode") or p.get("valueString")) for p in rationale["part"]]
    assert parts[0] == ("status", "rejected")
    sentences = [v for name, v in parts if name == "sentence"]
    assert sentences
    assert "model" not in {name for name, _ in parts}  # the LLM's text is not what is shown

    (record,) = _rationale_records(app_client, r.headers["x-request-id"])
    assert record.status == "rejected"
    assert [s["text"] for s in record.shown] == sentences
    assert record.llm_content is not None
    llm_texts = [s["text"] for s in json.loads(record.llm_content)["sentences"]]
    assert not set(llm_texts) & set(sentences)
    assert record.verdict is not None
    assert record.verdict["ok"] is False
    assert (record.model, record.server_version) == (vllm_tiny.model, "0.32.0")
    assert record.latency_ms is not None
    assert record.latency_ms > 0


def test_the_panel_shows_the_record_s_rationale_labelled_rejected(
        app_client: TestClient) -> None:
    card = app_client.post(HOOK, json=example_request()).json()["cards"][0]
    token = json.loads(card["links"][0]["appContext"])["assessment"]
    state = app_client.app.state.hm  # type: ignore[attr-defined]
    # the view grant a SMART launch gives (the launch itself: tests/service/test_panel_launch.py)
    grant = state.launches.put({"kind": "view", "assessment": token},
                               state.panel.get(token).patient_ref)

    page = app_client.get(f"/panel/view/{grant}")

    assert page.status_code == 200, page.text
    assert "data-rationale-status='rejected'" in page.text
    assert REJECTED_LABEL in page.text
