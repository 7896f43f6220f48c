"""The two assessment routes share one answer path (issue 13): timing, the refusal of another
patient's data, the audit record before the response, metrics and the log line happen in
:class:`service.answer.AnswerPath`, so a route cannot forget a step."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from service.answer import AnswerPath
from tests.safety.runner import as_bundle
from tests.service.conftest import example_request

API = Path(__file__).resolve().parents[2] / "service" / "api"
#: What only the answer path may call: a route that called these itself could skip a step.
ANSWER_STEPS = {"assessment_record", "record_assessment", "refuse_other_patient",
                "observed_outcomes"}
HOOK = "/cds-services/hypertension-treatment"
OPERATION = "/fhir/$hypertension-options"


def test_no_route_writes_the_audit_record_itself() -> None:
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 for a in n.names}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not names & ANSWER_STEPS, f"{path.name} calls {names & ANSWER_STEPS}"


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each AnswerPath step a call goes through."""
    steps: list[str] = []
    for name in ("assess", "record"):
        real: Callable[..., Any] = getattr(AnswerPath, name)

        async def spy(self: AnswerPath, *a: Any, _real: Any = real, _name: str = name,
                      **k: Any) -> Any:
            steps.append(_name)
            return await _real(self, *a, **k)

        monkeypatch.setattr(AnswerPath, name, spy)
    return steps


def _latency_count(client: TestClient, hook: str, status: str) -> float:
    registry = client.app.state.hm.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value("hypermarker_request_seconds_count",
                                      {"hook": hook, "status": status})
    return float(value or 0.0)


@pytest.mark.parametrize(("url", "body", "hook", "event"), [
    (HOOK, lambda: example_request(), "patient-view", "cds_call"),
    (OPERATION, lambda: as_bundle(example_request()["prefetch"]), "$hypertension-options",
     "fhir_operation"),
])
def test_both_routes_assess_audit_count_and_log_through_the_answer_path(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, url: str,
        body: Callable[[], dict[str, Any]], hook: str, event: str) -> None:
    steps = _spy(monkeypatch)
    before = _latency_count(client, hook, "assessed")
    with capture_logs() as logs:
        r = client.post(url, json=body())
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    store = client.app.state.hm.store  # type: ignore[attr-defined]

    assert steps == ["assess", "record"]
    assert store.assessment(request_id).hook == hook
    assert _latency_count(client, hook, "assessed") == before + 1
    lines = [e for e in logs if e["event"] == event]
    assert [e["request_id"] for e in lines] == [request_id]
    assert lines[0]["audit"] == "database"


@pytest.mark.parametrize(("url", "body", "hook"), [
    (HOOK, lambda req: req, "patient-view"),
    (OPERATION, lambda req: as_bundle(req["prefetch"]), "$hypertension-options"),
])
def test_both_routes_refuse_another_patients_data_through_the_answer_path(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, url: str,
        body: Callable[[dict[str, Any]], dict[str, Any]], hook: str) -> None:
    steps = _spy(monkeypatch)
    req = example_request()
    entries = req["prefetch"]["bp"]["entry"]
    entries[0]["resource"]["subject"] = {"reference": "Patient/someone-else"}
    with capture_logs() as logs:
        r = client.post(url, json=body(req))
    assert r.status_code == 422, r.text
    request_id = r.headers["x-request-id"]

    assert steps == ["assess"]
    assert client.app.state.hm.store.assessment(  # type: ignore[attr-defined]
        request_id).status == "refused"
    assert [e["request_id"] for e in logs if e["event"] == "call_refused"] == [request_id]
