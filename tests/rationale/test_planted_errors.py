"""The planted-error test (issue 16 item 5): a real HTTP server answers the rationale suite
with rationales carrying known errors of each kind, and correct ones. The verifier must catch
every planted error, and the suite's report must count each kind exactly; what a clinician is
shown must have no error. Slow, failing and malformed answers go through httpx's
MockTransport, and the suite must count each as what it is."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from evaluation.rationale_suite import (
    DEFAULT_SAFETY_DIR,
    CaseSource,
    RationaleCase,
    RationaleRun,
    markdown,
    run_rationale_suite,
    safety_cases,
)
from hypermarker_cli.main import app as cli
from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.pipeline import Pipeline
from models.scorer import Scorer
from rationale.facts import Facts
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_TOKENS, messages
from tests.rationale.planted_server import MODEL, VERSION, Answer, Script, planted_server

ASSESSED = "H21-ace-inhibitor-angioedema-allergy"
PATHWAY = "H03-severe-230-130"
H, OM, C, S = ("hallucination", "omission", "contradiction", "schema")


@pytest.fixture(scope="module")
def pipeline(scorer: Scorer, explainer: Explainer) -> Pipeline:
    return Pipeline(scorer, explainer, NICE, explain_top=0)


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cases")
    for name in (ASSESSED, PATHWAY):
        shutil.copy(DEFAULT_SAFETY_DIR / f"{name}.json", folder)
    return folder


@pytest.fixture(scope="module")
def cases(pipeline: Pipeline, case_dir: Path) -> dict[str, RationaleCase]:
    return {c.id.removeprefix("safety-"): c for c in safety_cases(pipeline, case_dir)}


Sentences = list[tuple[str, list[str]]]


def _content(sentences: Sentences) -> str:
    return json.dumps({"sentences": [{"text": t, "facts": f} for t, f in sentences]})


def _fact(facts: Facts, fid: str) -> Any:
    f = facts.get(fid)
    assert f is not None, fid
    return f


def _bp_target(facts: Facts) -> tuple[str, str]:
    bp, target = _fact(facts, "bp"), _fact(facts, "target")
    return (f"{bp.numbers[0]:g}/{bp.numbers[1]:g} mmHg",
            f"{target.numbers[0]:g}/{target.numbers[1]:g} mmHg")


def _assessed_script(facts: Facts) -> list[tuple[Answer, set[str]]]:
    """Answers for the assessed case, each with the problem kinds it must get."""
    bp, goal = _bp_target(facts)
    first, second = _fact(facts, "option-1"), _fact(facts, "option-2")
    contra = _fact(facts, "contraindicated-1")
    good: Sentences = [(f"Clinic BP is {bp}; the target is below {goal}.", ["bp", "target"]),
                       (first.text, ["option-1"]), (contra.text, ["contraindicated-1"]),
                       (second.text, ["option-2"])]
    said = {n for f in facts.items for n in f.numbers}
    assert 171 not in said
    assert "losartan" not in " ".join(f.text for f in facts.items)

    def plus(extra: tuple[str, list[str]]) -> str:
        return _content([*good, extra])

    def without(i: int) -> str:
        return _content([s for j, s in enumerate(good) if j != i])

    name = second.keys[0].capitalize()
    return [
        (Answer(_content(good)), set()),
        (Answer(deterministic_rationale(facts).content()), set()),
        (Answer(plus(("An earlier clinic reading was 171 mmHg.", ["bp"]))), {H}),
        (Answer(plus(("Losartan is another choice.", ["option-2"]))), {H}),
        (Answer(plus(("NICE NG136 1.4.99 also applies.", ["target"]))), {H}),
        (Answer(_content([(f"Clinic BP is {bp} against {goal}; the target is below {bp}.",
                           ["bp", "target"]), *good[1:]])), {C}),
        (Answer(without(2)), {OM}),
        (Answer(without(1)), {OM}),
        (Answer(plus((f"Starting {first.keys[0]} would raise blood pressure.",
                      ["option-1"]))), {C}),
        (Answer(plus((f"{name} is the first option.", ["option-2"]))), {C}),
        (Answer(plus((f"{contra.keys[0].capitalize()} is safe for this patient.",
                      ["contraindicated-1"]))), {C}),
        (Answer(_content([good[0], (first.text, ["option-1", "option-9"]), *good[2:]])), {S}),
        (Answer(_content(good + good)), {S}),
        (Answer(_content(good)[:60], "length"), {S}),
    ]


def _pathway_script(facts: Facts, n: int) -> list[tuple[Answer, set[str]]]:
    stop = next(f for f in facts.required if f.id.startswith("stop-"))
    summary = stop.text.split(". What the guideline asks:")[0] + "."
    bp, goal = _bp_target(facts)
    good: Sentences = [(summary, [stop.id]), (f"Clinic BP is {bp}; the target is below {goal}.",
                                              ["bp", "target"])]
    omitted = (Answer(_content(good[1:])), {OM})
    return [omitted] + [(Answer(_content(good)), set())] * (n - 1)


def test_planted_errors_are_all_caught_and_counted(pipeline: Pipeline, case_dir: Path,
                                                   cases: dict[str, RationaleCase]) -> None:
    a_facts, b_facts = cases[ASSESSED].facts, cases[PATHWAY].facts
    plan_a = _assessed_script(a_facts)
    plan_b = _pathway_script(b_facts, len(plan_a))
    script = Script({messages(f)[1]["content"]: deque(a for a, _ in plan)
                     for f, plan in ((a_facts, plan_a), (b_facts, plan_b))})
    with planted_server(script) as url:
        report = run_rationale_suite(pipeline, RationaleRun(
            url, (), repeats=len(plan_a), sources=(CaseSource.SAFETY,), safety_dir=case_dir,
            budget_s=10.0))
    (m,) = report["models"]
    planted = [kinds for _, kinds in plan_a + plan_b]
    n = len(planted)
    expected = {k: sum(k in kinds for kinds in planted) for k in (H, OM, C, S)}
    assert expected == {H: 3, OM: 3, C: 4, S: 3}
    # every planted error caught, each counted as its kind, and nothing else
    assert m["model"] == MODEL
    assert m["server_version"] == VERSION
    assert m["attempts"] == m["answered"] == n
    assert m["outcomes"]["verified"] == sum(not k for k in planted)
    assert m["outcomes"]["bad-response"] == 1
    assert m["outcomes"]["rejected"] == sum(bool(k) for k in planted) - 1
    assert m["answers_with"] == expected
    assert m["problems_by_kind"] == expected  # one problem per planted answer
    for k, rate in (("omission", "omission_rate"), ("hallucination", "hallucination_rate"),
                    ("contradiction", "contradiction_rate"), ("schema", "schema_error_rate")):
        assert m[rate] == pytest.approx(expected[k] / n)
        assert m["without_verifier"][rate] == pytest.approx(expected[k] / n)
        assert m["with_verifier"][rate] == 0.0
    assert m["rejection_rate"] == pytest.approx(sum(bool(k) for k in planted) / n)
    # what a clinician was shown: the verified answers, else the deterministic text; no error
    assert m["with_verifier"]["errors"] == 0
    assert m["with_verifier"]["shown_from_llm_rate"] == pytest.approx(
        m["outcomes"]["verified"] / n)
    assert m["consistency"]["cases"] == 2
    assert m["consistency"]["same_verdict"] == 0.0
    assert report["shown_errors"] == 0
    # the request: the facts' prompt, the bounded schema, the token cap
    body = script.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["max_tokens"] == MAX_TOKENS
    assert body["temperature"] == 0.0
    assert "## " in markdown(report)
    assert "| a hallucination |" in markdown(report)


def _safety_run(case_dir: Path, transport: httpx.AsyncBaseTransport, repeats: int,
                budget_s: float = 10.0) -> RationaleRun:
    return RationaleRun("http://llm.invalid", ("mock",), repeats=repeats,
                        sources=(CaseSource.SAFETY,), safety_dir=case_dir, budget_s=budget_s,
                        transport=transport)


def test_slow_failing_and_malformed_answers_are_counted(pipeline: Pipeline,
                                                        tmp_path: Path,
                                                        cases: dict[str, RationaleCase]
                                                        ) -> None:
    shutil.copy(DEFAULT_SAFETY_DIR / f"{PATHWAY}.json", tmp_path)
    good = deterministic_rationale(cases[PATHWAY].facts).content()

    def completion(content: str, finish: str = "stop") -> httpx.Response:
        return httpx.Response(200, json={"model": "mock", "choices": [
            {"index": 0, "finish_reason": finish,
             "message": {"role": "assistant", "content": content}}]})

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "mock"}]})
        if request.url.path == "/version":
            return httpx.Response(404)
        repeat = json.loads(request.content)["seed"] - 9001
        if repeat == 0:
            return completion(good)
        if repeat == 1:
            await asyncio.sleep(3)  # past the budget
            return completion(good)
        if repeat == 2:
            return httpx.Response(503)  # every retry too
        if repeat == 3:
            return httpx.Response(200, text="<html>proxy error</html>")
        if repeat == 4:
            return completion(good[:50], "length")
        if repeat == 5:
            return httpx.Response(404, json={"error": {"message": "model not found"}})
        return completion("{\"sentences\": []}")

    report = run_rationale_suite(pipeline, _safety_run(
        tmp_path, httpx.MockTransport(handler), repeats=7, budget_s=1.0))
    (m,) = report["models"]
    assert m["outcomes"] == {"verified": 1, "rejected": 1, "bad-response": 2, "timeout": 1,
                             "unavailable": 1, "refused": 1}
    assert m["answered"] == 4
    assert m["no_answer"] == 3
    assert m["schema_error_rate"] == pytest.approx(3 / 4)
    assert m["answers_with"][S] == 3  # the empty answer also omits the required stop
    assert m["with_verifier"]["errors"] == 0
    assert m["server_version"] is None
    assert m["latency_s"]["n"] == 4


def test_the_cli_runs_the_suite_against_a_server(tmp_path: Path) -> None:
    answer = Answer(json.dumps({"sentences": [{"text": "Clinic BP is high.",
                                               "facts": ["status"]}]}))
    script = Script(default=lambda body: answer)
    out, md = tmp_path / "report.json", tmp_path / "report.md"
    with planted_server(script) as url:
        result = CliRunner().invoke(cli, [
            "evaluate", "--suite", "rationale", "--llm-url", url, "--cases", "simulated",
            "--rationale-patients", "2", "--repeats", "2", "--json", str(out), "--markdown",
            str(md), "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    (suite,) = doc["suites"]
    (gate,) = [r for r in doc["checks"]["results"] if r["suite"] == "rationale"]
    assert gate["id"] == "rationale-shown-without-error"
    assert gate["status"] == "pass"
    (m,) = suite["models"]
    assert suite["suite"] == "rationale"
    assert suite["patients"] == 2
    assert m["attempts"] == 4
    assert m["rejection_rate"] == 1.0
    assert m["with_verifier"]["errors"] == 0
    assert len(script.requests) == 4
    assert "| an omission |" in md.read_text()


def test_the_cli_refuses_the_suite_without_a_server() -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--suite", "rationale"])
    assert result.exit_code == 2
    assert "--llm-url" in result.output
