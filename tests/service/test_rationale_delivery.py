"""The LLM rationale delivered through the real app (issue 16 item 4; hazard H-36): the card
never waits for it; ``$hypertension-options`` and the panel show it within their budget; a down,
slow or lying LLM changes nothing for the card and never reaches the clinician unverified.

The LLM is an httpx MockTransport scripted per test (verified, rejected, slow, down)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi.testclient import TestClient

from rationale.facts import Facts, facts_of
from rationale.fallback import deterministic_rationale
from service.app import create_app
from service.app_state import AppState
from service.panel_rationale import REJECTED_LABEL, VERIFIED_LABEL
from tests.fhir_validator.runner import problems
from tests.service.conftest import example_bundle, example_request, local_settings
from tests.service.smart_ehr import FakeEhr, launch

OP = "/fhir/$hypertension-options"
HOOK = "/cds-services/hypertension-treatment"
LIE = json.dumps({"sentences": [
    {"text": "Start ramipril 10 mg daily; the target is below 125/75 mmHg.",
     "facts": ["target"]}]})
Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Llm:
    """The scripted LLM: ``answer`` may be changed between calls; requests are counted."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/chat/completions":
            return httpx.Response(404)
        self.requests += 1
        return await self.answer(request)


def says(content: str | Callable[[], str]) -> Answer:
    async def answer(request: httpx.Request) -> httpx.Response:
        text = content() if callable(content) else content
        return httpx.Response(200, json={"model": "served-rationale", "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": text}}]})
    return answer


def sleeps(seconds: float) -> Answer:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        return httpx.Response(503)
    return answer


async def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@contextmanager
def app_with(tmp_path: Path, llm: Llm | None, **settings: Any) -> Iterator[TestClient]:
    extra: dict[str, Any] = {"llm_url": "http://llm.test"} if llm is not None else {}
    extra.update(settings)
    app = create_app(local_settings(tmp_path, **extra),
                     llm_transport=None if llm is None else httpx.MockTransport(llm))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def state(c: TestClient) -> AppState:
    s: AppState = c.app.state.hm  # type: ignore[attr-defined]
    return s


def operation_facts(c: TestClient) -> Facts:
    """The facts the operation's assessment of :func:`example_bundle` has (the same pipeline
    call)."""
    today = datetime.now(UTC).date()
    return facts_of(state(c).pipeline.assess_fhir(example_bundle(), today).assessment)


def rationale_part(body: dict[str, Any]) -> dict[str, Any]:
    params = next(e["resource"] for e in body["entry"]
                  if e["resource"]["resourceType"] == "Parameters")
    (p,) = [p for p in params["parameter"] if p["name"] == "rationale"]
    parts: dict[str, Any] = {}
    for part in p["part"]:
        parts.setdefault(part["name"], []).append(
            part.get("valueCode") or part.get("valueString"))
    return parts


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def metric(c: TestClient, line: str) -> bool:
    return line in c.get("/metrics").text


# -- the card never waits ---------------------------------------------------------------------


@pytest.mark.parametrize("answer", [sleeps(5.0), refused], ids=["slow", "down"])
def test_the_card_does_not_wait_for_a_slow_or_down_llm(tmp_path: Path, answer: Answer) -> None:
    with app_with(tmp_path / "off", None) as off:
        expected = off.post(HOOK, json=example_request()).json()["cards"]
    llm = Llm(answer)
    with app_with(tmp_path / "on", llm, llm_budget_ms=1500, llm_retries=0) as c:
        started = time.perf_counter()
        r = c.post(HOOK, json=example_request())
        elapsed = time.perf_counter() - started
        assert r.status_code == 200, r.text
        cards = r.json()["cards"]
        # the same cards as without an LLM (uuids and links are per call)
        assert [(x["summary"], x["indicator"], x.get("detail")) for x in cards] == [
            (x["summary"], x["indicator"], x.get("detail")) for x in expected]
        # sanity only, far below the LLM's 5 s and the 1.5 s budget: the card did not wait
        assert elapsed < 1.0
        wait_until(lambda: llm.requests >= 1)


def test_a_down_llm_is_a_metric_and_a_log_line_without_patient_data(tmp_path: Path) -> None:
    llm = Llm(refused)
    with app_with(tmp_path, llm, llm_retries=0) as c, structlog.testing.capture_logs() as logs:
        req = example_request()
        assert c.post(HOOK, json=req).status_code == 200
        wait_until(lambda: metric(c, 'hypermarker_rationale_total{status="unavailable"} 1.0'))
    failed = [e for e in logs if e["event"] == "rationale_llm_failed"]
    assert failed
    assert failed[0]["status"] == "unavailable"
    assert failed[0]["error"] == "LlmUnavailable"
    text = json.dumps(logs, default=str)
    assert req["context"]["patientId"] not in text


def test_background_writing_is_bounded_and_drops_with_a_metric(tmp_path: Path) -> None:
    llm = Llm(sleeps(5.0))
    with app_with(tmp_path, llm, llm_max_pending=2) as c:
        for _ in range(5):
            assert c.post(HOOK, json=example_request()).status_code == 200
        assert state(c).rationale is not None
        assert state(c).rationale.pending == 2  # type: ignore[union-attr]
        assert metric(c, "hypermarker_rationale_dropped_total 3.0")
        started = time.perf_counter()
    # leaving the app cancels the writing under way instead of waiting for the LLM
    assert time.perf_counter() - started < 4.0


def test_an_open_breaker_starts_nothing(tmp_path: Path) -> None:
    llm = Llm(refused)
    with app_with(tmp_path, llm, llm_retries=0, llm_breaker_failures=1) as c:
        assert c.post(HOOK, json=example_request()).status_code == 200
        wait_until(lambda: metric(c, 'hypermarker_llm_breaker_state{state="open"} 1.0'))
        assert c.post(HOOK, json=example_request()).status_code == 200
        assert llm.requests == 1
        assert state(c).rationale.pending == 0  # type: ignore[union-attr]


# -- $hypertension-options waits up to its budget -------------------------------------------


def test_the_operation_includes_a_verified_rationale_and_audits_it(tmp_path: Path) -> None:
    holder: dict[str, str] = {}
    llm = Llm(says(lambda: holder["content"]))
    with app_with(tmp_path, llm, llm_budget_ms=5000) as c:
        facts = operation_facts(c)
        holder["content"] = deterministic_rationale(facts).content()
        r = c.post(OP, json=example_bundle())
        assert r.status_code == 200, r.text
        part = rationale_part(r.json())
        assert part["status"] == ["verified"]
        assert part["model"] == ["served-rationale"]
        assert part["sentence"] == [s.text for s in deterministic_rationale(facts).sentences]
        request_id = r.headers["x-request-id"]
        rec = state(c).store.assessment(request_id)
        assert rec.llm["status"] == "verified"
        assert rec.llm["facts_hash"] == facts.assessment_hash
        wait_until(lambda: any(x.request_id == request_id
                               for x in state(c).store.rationales()))
        (audit,) = [x for x in state(c).store.rationales() if x.request_id == request_id]
        assert audit.trigger == "operation"
        assert audit.status == "verified"
        assert audit.llm_content == holder["content"]
        assert audit.verdict["ok"] is True
        assert audit.model == "served-rationale"
        assert audit.latency_ms is not None
        # the same record again: cached, not asked twice
        assert rationale_part(c.post(OP, json=example_bundle()).json())["status"] == ["verified"]
        assert llm.requests == 1


def test_the_operation_never_shows_a_rejected_rationale(tmp_path: Path) -> None:
    llm = Llm(says(LIE))
    with app_with(tmp_path, llm, llm_budget_ms=5000) as c:
        facts = operation_facts(c)
        r = c.post(OP, json=example_bundle())
        assert r.status_code == 200, r.text
        part = rationale_part(r.json())
        assert part["status"] == ["rejected"]
        assert "model" not in part
        assert part["sentence"] == [s.text for s in deterministic_rationale(facts).sentences]
        assert "ramipril 10 mg" not in r.text
        request_id = r.headers["x-request-id"]
        wait_until(lambda: any(x.request_id == request_id
                               for x in state(c).store.rationales()))
        (audit,) = [x for x in state(c).store.rationales() if x.request_id == request_id]
        assert audit.status == "rejected"
        assert audit.llm_content == LIE
        assert audit.verdict["ok"] is False
        assert {p["kind"] for p in audit.verdict["problems"]} >= {"hallucination"}
        assert audit.shown == [{"text": s.text, "facts": list(s.facts)}
                               for s in deterministic_rationale(facts).sentences]


def test_the_operation_with_a_slow_llm_answers_at_its_budget(tmp_path: Path) -> None:
    llm = Llm(sleeps(5.0))
    with app_with(tmp_path, llm, llm_budget_ms=200) as c:
        started = time.perf_counter()
        r = c.post(OP, json=example_bundle())
        elapsed = time.perf_counter() - started
        assert r.status_code == 200, r.text
        assert rationale_part(r.json())["status"] == ["timeout"]
        assert elapsed < 3.0  # sanity: the budget, not the LLM's 5 s


def test_the_operation_with_a_rationale_passes_the_hl7_validator(tmp_path: Path) -> None:
    holder: dict[str, str] = {}
    llm = Llm(says(lambda: holder["content"]))
    with app_with(tmp_path, llm, llm_budget_ms=5000) as c:
        holder["content"] = deterministic_rationale(operation_facts(c)).content()
        verified = c.post(OP, json=example_bundle()).json()
        holder["content"] = LIE
        esc = {"resourceType": "Parameters", "parameter": [
            {"name": "patientData", "resource": example_bundle()},
            {"name": "guideline", "valueCode": "esc"}]}
        rejected = c.post(OP, json=esc).json()
    assert rationale_part(verified)["status"] == ["verified"]
    assert rationale_part(rejected)["status"] == ["rejected"]
    assert problems([verified, rejected]) == []


def test_the_operation_without_an_llm_is_unchanged(tmp_path: Path) -> None:
    with app_with(tmp_path, None) as c:
        r = c.post(OP, json=example_bundle())
        params = next(e["resource"] for e in r.json()["entry"]
                      if e["resource"]["resourceType"] == "Parameters")
        assert all(p["name"] != "rationale" for p in params["parameter"])
        assert state(c).store.assessment(r.headers["x-request-id"]).llm is None


# -- the panel ------------------------------------------------------------------------------


def _panel(c: TestClient, ehr: FakeEhr) -> str:
    card = c.post(HOOK, json=example_request()).json()["cards"][0]
    ehr.app_context, ehr.patient = card["links"][0]["appContext"], "example-patient-1"
    wait_until(lambda: state(c).rationale.pending == 0)  # type: ignore[union-attr]
    r = launch(c, ehr)
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    return page.text


@pytest.fixture
def ehr() -> Iterator[FakeEhr]:
    e = FakeEhr()
    yield e
    e.close()


def test_the_panel_shows_the_verified_rationale_written_for_its_card(
        tmp_path: Path, ehr: FakeEhr) -> None:
    holder: dict[str, str] = {}
    llm = Llm(says(lambda: holder["content"]))
    with app_with(tmp_path, llm, smart_ehrs=[ehr.url], llm_budget_ms=0) as c:
        req = example_request()
        fv_facts = facts_of(state(c).pipeline.assess_fhir(
            req["prefetch"], datetime.now(UTC).date(),
            patient_id=req["context"]["patientId"]).assessment)
        holder["content"] = deterministic_rationale(fv_facts).content()
        page = _panel(c, ehr)
        assert VERIFIED_LABEL in page
        assert "data-rationale-status='verified'" in page
        # the panel took what was written for its card (budget 0: it could not have waited)
        assert llm.requests == 1


def test_the_panel_says_when_the_machine_text_was_rejected(tmp_path: Path,
                                                           ehr: FakeEhr) -> None:
    llm = Llm(says(LIE))
    with app_with(tmp_path, llm, smart_ehrs=[ehr.url]) as c:
        page = _panel(c, ehr)
        assert REJECTED_LABEL in page
        assert "ramipril 10 mg" not in page
        assert llm.requests == 1


def test_the_panel_without_an_llm_has_no_explanation(tmp_path: Path, ehr: FakeEhr) -> None:
    with app_with(tmp_path, None, smart_ehrs=[ehr.url]) as c:
        page = _panel(c, ehr)
        assert "data-rationale-status" not in page
