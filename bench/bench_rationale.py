"""Card latency with the LLM rationale off, slow and down (a script, not a test; hazard H-36).

Starts a real ``hypermarker serve`` (one worker, SQLite audit store in a temporary folder, demo
auth) three times, and sends the same patient-view load to each:

- ``off``: no LLM configured;
- ``slow``: ``HYPERMARKER_LLM_URL`` points at a stub OpenAI-compatible server on loopback that
  answers every completion after ``--llm-delay`` seconds (5 by default);
- ``down``: it points at a loopback port where nothing listens (connection refused).

Each request's systolic readings are moved by ``i % 25`` mmHg, so every card has different
facts and the rationale cache cannot help (the worst case for the LLM path: a new background
request per card, up to ``HYPERMARKER_LLM_MAX_PENDING``). Prints p50/p95 of the card latency
per scenario, the ratios to ``off`` (run first and last, their mean: the machine's drift shows
between the two) measured in the same run, and the rationale counters of each server's
/metrics (what the LLM path did meanwhile).

    uv run python bench/bench_rationale.py [--requests 300] [--llm-delay 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
from bench_service import EXAMPLE, EXAMPLE_AS_OF, ROOT, free_port, pct, wait_ready


class SlowLlm:
    """An OpenAI-compatible stub on loopback: every completion after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        content = json.dumps({"sentences": [{"text": "The target is below 140/90 mmHg.",
                                             "facts": ["target"]}]})
        body = json.dumps({"model": "stub", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}]}).encode()
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = json.dumps({"data": [{"id": "hypermarker-rationale"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                stub.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (its budget)
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def requests_for(n: int) -> list[bytes]:
    """The README's example, dates moved to today, systolic readings moved by ``i % 25``."""
    from fhir_mappings.dates import shift_dates

    days = (datetime.now(UTC).date() - EXAMPLE_AS_OF).days
    base = shift_dates(json.loads(EXAMPLE.read_text()), days)
    out = []
    for i in range(n):
        req = copy.deepcopy(base)
        req["hookInstance"] = str(uuid.uuid4())
        for e in req["prefetch"]["bp"]["entry"]:
            for c in e["resource"].get("component", []):
                if c["code"]["coding"][0]["code"] == "8480-6":
                    c["valueQuantity"]["value"] += i % 25
        out.append(orjson.dumps(req))
    return out


async def _load(base: str, bodies: list[bytes]) -> tuple[list[float], int]:
    lat: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for data in bodies:
            t0 = time.perf_counter()
            r = await client.post("/cds-services/hypertension-treatment", content=data,
                                  headers={"content-type": "application/json"})
            lat.append((time.perf_counter() - t0) * 1e3)
            errors += r.status_code != 200 or not r.json().get("cards")
    return lat, errors


def _rationale_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(("hypermarker_rationale_total", "hypermarker_rationale_dropped_total",
                            "hypermarker_llm_breaker_state")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def scenario(name: str, llm_url: str | None, bodies: list[bytes], warm: list[bytes]
             ) -> dict[str, Any]:
    port = free_port()
    tmp = tempfile.mkdtemp(prefix=f"hm-bench-{name}-")
    env = dict(os.environ, HYPERMARKER_DATABASE_URL=f"sqlite:///{tmp}/audit.db",
               HYPERMARKER_SPOOL_DIR=f"{tmp}/spool", HYPERMARKER_AUTH_MODE="demo",
               HYPERMARKER_LOG_LEVEL="ERROR")
    env.pop("HYPERMARKER_LLM_URL", None)
    if llm_url:
        env["HYPERMARKER_LLM_URL"] = llm_url
    proc = subprocess.Popen([sys.executable, "-m", "hypermarker_cli.main", "serve", "--port",
                             str(port), "--workers", "1"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, time.perf_counter())
        asyncio.run(_load(base, warm))
        lat, errors = asyncio.run(_load(base, bodies))
        metrics = _rationale_metrics(httpx.get(base + "/metrics", timeout=5).text)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"llm": name, "requests": len(lat), "errors": errors,
            "p50_ms": round(statistics.median(lat), 2), "p95_ms": round(pct(lat, 0.95), 2),
            "p99_ms": round(pct(lat, 0.99), 2), "rationale_metrics": metrics}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--llm-delay", type=float, default=5.0)
    args = ap.parse_args()
    bodies = requests_for(args.requests)
    warm = requests_for(30)
    slow = SlowLlm(args.llm_delay)
    try:
        runs = [scenario("off", None, bodies, warm),
                scenario("slow", slow.url, bodies, warm),
                scenario("down", f"http://127.0.0.1:{free_port()}", bodies, warm),
                scenario("off", None, bodies, warm)]  # again: the drift of a shared machine
    finally:
        slow.close()
    off_p50 = statistics.mean(r["p50_ms"] for r in runs if r["llm"] == "off")
    off_p95 = statistics.mean(r["p95_ms"] for r in runs if r["llm"] == "off")
    report = {
        "machine_cores": os.cpu_count(), "llm_delay_s": args.llm_delay,
        "stub_llm_requests": slow.requests, "runs": runs,
        "ratios_to_off_mean": {r["llm"]: {"p50": round(r["p50_ms"] / off_p50, 3),
                                          "p95": round(r["p95_ms"] / off_p95, 3)}
                               for r in runs if r["llm"] != "off"}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
