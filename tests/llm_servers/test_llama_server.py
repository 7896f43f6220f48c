"""The rationale client and writer against llama.cpp's llama-server serving SmolLM2-135M-Instruct
(issue 16 item 6): a real small instruct model, through the same client the service uses.

llama-server differs from vLLM where it matters to the client: it serves whatever model it
loaded under any name (no 404 for an unknown model), has no ``/version``, and does not enforce
every bound of a JSON schema. The client records what the server says; the verifier, not the
server, decides what may be shown.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from models.assessment import Assessment
from rationale.client import Completion, LlmBadResponse, LlmClient, ServerInfo
from rationale.facts import facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import messages, response_format
from rationale.verifier import verify
from rationale.writer import RationaleOutcome, RationaleStatus, RationaleWriter
from tests.llm_servers.servers import RunningServer

pytestmark = [pytest.mark.llm_server, pytest.mark.slow]

#: SmolLM2 writes about 250 tokens at 3-4 tokens/s here: llama.cpp's grammar sampling of the
#: bounded schema dominates (the model itself is fast), more under load.
BUDGET_S = 300.0
#: A small schema for the protocol checks that need no rationale (a quick answer).
SMALL_FORMAT = {"type": "json_schema", "json_schema": {"name": "ok", "strict": True, "schema": {
    "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
    "additionalProperties": False}}}


async def _complete(server: RunningServer, a: Assessment, model: str, max_tokens: int,
                    response_format: dict[str, object]) -> tuple[ServerInfo, Completion]:
    client = LlmClient(server.base_url, model, budget_s=BUDGET_S, retries=0)
    try:
        info = await client.server_info()
        done = await client.complete(messages(facts_of(a)), response_format,
                                     max_tokens=max_tokens, seed=0)
        return info, done
    finally:
        await client.aclose()


def test_an_unknown_model_name_is_served_anyway_and_the_server_recorded(
        llama_smollm2: RunningServer, example_assessment: Assessment) -> None:
    """Unlike vLLM (404), llama-server answers for any model name and has no /version: the
    client records the name the server answered with, and no version."""
    info, done = asyncio.run(_complete(llama_smollm2, example_assessment, "no-such-model", 32,
                                       SMALL_FORMAT))

    assert info.models == (llama_smollm2.model,)
    assert info.version is None
    assert done.finish_reason == "stop"
    assert json.loads(done.content).keys() == {"ok"}
    assert done.model in (llama_smollm2.model, "no-such-model")
    assert done.server_version is None


def test_a_truncated_completion_is_a_bad_response(llama_smollm2: RunningServer,
                                                  example_assessment: Assessment) -> None:
    with pytest.raises(LlmBadResponse) as e:
        asyncio.run(_complete(llama_smollm2, example_assessment, llama_smollm2.model, 8,
                              response_format()))
    assert "length" in str(e.value)
    assert e.value.content is not None


def test_the_writer_shows_only_verified_text(llama_smollm2: RunningServer,
                                             example_assessment: Assessment) -> None:
    """SmolLM2 answers the real prompt; whatever it writes, what is shown passes the
    verifier: its own text when the verifier passed it, else the deterministic rationale,
    with the verdict kept."""
    facts = facts_of(example_assessment)

    async def write() -> RationaleOutcome:
        client = LlmClient(llama_smollm2.base_url, llama_smollm2.model, budget_s=BUDGET_S,
                           retries=0)
        writer = RationaleWriter(client)
        try:
            return await writer.write(example_assessment)
        finally:
            await writer.aclose()

    outcome = asyncio.run(write())

    assert outcome.status in (RationaleStatus.VERIFIED, RationaleStatus.REJECTED), outcome.error
    assert outcome.model == llama_smollm2.model
    assert outcome.server_version is None
    assert outcome.llm_content is not None
    assert outcome.verdict is not None
    if outcome.error is None:  # a finished answer: the verdict is the verifier's on it
        assert verify(facts, outcome.llm_content) == outcome.verdict
    else:  # cut at max_tokens: rejected as a schema error
        assert outcome.error == "LlmBadResponse"
        assert outcome.status is RationaleStatus.REJECTED
    assert verify(facts, outcome.shown.content()).ok
    if outcome.status is RationaleStatus.REJECTED:
        assert outcome.shown == deterministic_rationale(facts)
        assert outcome.verdict.problems
    else:
        assert outcome.shown == outcome.verdict.rationale
