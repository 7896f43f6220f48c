"""Service benchmark (a script, not a test): patient-view with a full prefetch.

1. In-process: the whole decision pipeline for the README's example request (JSON parse ->
   FHIR mapping -> ONNX -> SHAP -> guideline rules -> cards) against the floor measured in the
   same run (JSON parse + one ONNX batch + SHAP for the same option rows), and the ratio.
2. Over HTTP: a real ``hypermarker serve`` on loopback (SQLite audit store in a temporary
   folder, demo auth) with 1 and then 2 workers, under a bounded load from an httpx client:
   p50/p99 latency at concurrency 1, and requests/s at concurrency 8 (and the same with wrk, a C
   load generator without Python client overhead, when installed). Every request has its own
   hookInstance and is audited before its response, as in production. Service start time
   (process start to /health/ready) is reported too.

    uv run python bench/bench_service.py [--requests 400] [--in-process-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from models.assessment_document import assessment_document

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "patient-view.json"
#: The day the example was written for; the server assesses as of today, so the HTTP runs send
#: the example with its dates moved by the days since (the in-process runs use this day).
EXAMPLE_AS_OF = date(2026, 11, 24)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def in_process(repeats: int) -> dict[str, Any]:
    from fhir_mappings.mapping import features_from_fhir
    from models.model_rows import assemble
    from models.options import dose_matrices, valid_options
    from models.pipeline import Pipeline
    from service.cards import CardContext, build_cards

    engine = Pipeline.load(threads=1)
    raw = EXAMPLE.read_bytes()
    today = EXAMPLE_AS_OF
    fv, _ = features_from_fhir(orjson.loads(raw)["prefetch"], today)
    opts = valid_options(fv.regimen)
    before, after = dose_matrices(opts)
    x = assemble(fv.model_vector(), before, after)

    def pipeline() -> None:
        req = orjson.loads(raw)
        r = engine.assess_fhir(req["prefetch"], today)
        build_cards(r.assessment, CardContext("patient-view", "hypertension-treatment",
                                            "http://x/panel/launch", "p"), "{}")

    top = x[: engine.explain_top or len(x)]

    def floor() -> None:  # the same work the pipeline does on the model: all rows, SHAP
        orjson.loads(raw)  # for the options it explains
        engine.scorer.margins(x)
        engine.explainer.explain(top)

    def floor_all() -> None:  # SHAP for every option row (what the panel shows)
        orjson.loads(raw)
        engine.scorer.margins(x)
        engine.explainer.explain(x)

    from models.assessment import assess

    prefetch = orjson.loads(raw)["prefetch"]
    a = assess(fv, engine.scorer, engine.explainer, engine.profile,
               explain_top=engine.explain_top)
    stages = {  # where the pipeline's time goes (each timed alone)
        "stage_parse": lambda: orjson.loads(raw),
        "stage_fhir_mapping": lambda: features_from_fhir(prefetch, today),
        "stage_assess": lambda: assess(fv, engine.scorer, engine.explainer, engine.profile,
                                       explain_top=engine.explain_top),
        "stage_assess_without_shap": lambda: assess(fv, engine.scorer, engine.explainer,
                                                    engine.profile, explain_top=0),
        "stage_cards": lambda: build_cards(
            a, CardContext("patient-view", "hypertension-treatment", "http://x/panel/launch",
                           "p"), "{}"),
        "stage_document": lambda: assessment_document(a),
    }
    out: dict[str, Any] = {"option_rows": len(x), "explained_rows": len(top)}
    for name, fn in (("pipeline", pipeline), ("floor", floor), ("floor_all_rows", floor_all),
                     *stages.items()):
        for _ in range(20):
            fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"p50_ms": statistics.median(ts), "p99_ms": pct(ts, 0.99)}
    out["ratio_pipeline_to_floor_p50"] = out["pipeline"]["p50_ms"] / out["floor"]["p50_ms"]
    out["ratio_pipeline_to_floor_all_rows_p50"] = (out["pipeline"]["p50_ms"]
                                                   / out["floor_all_rows"]["p50_ms"])
    return out



def wait_ready(base: str, t0: float, limit_s: float = 60.0) -> None:
    """Poll ``base``/health/ready until it answers 200 (``t0``: when the server was started)."""
    while True:
        try:
            if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.perf_counter() - t0 > limit_s:
            raise RuntimeError(f"service did not become ready in {limit_s:.0f} s")
        time.sleep(0.05)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(base: str, body: dict[str, Any], n: int, concurrency: int
               ) -> tuple[list[float], float, int]:
    lat: list[float] = []
    errors = 0
    queue = list(range(n))
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def worker() -> None:
            nonlocal errors
            while queue:
                queue.pop()
                req = dict(body, hookInstance=str(uuid.uuid4()))
                data = orjson.dumps(req)
                t0 = time.perf_counter()
                r = await client.post("/cds-services/hypertension-treatment", content=data,
                                      headers={"content-type": "application/json"})
                lat.append((time.perf_counter() - t0) * 1e3)
                errors += r.status_code != 200
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return lat, wall, errors


def over_http(workers: int, n: int) -> dict[str, Any]:
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="hm-bench-")
    env = dict(os.environ, HYPERMARKER_DATABASE_URL=f"sqlite:///{tmp}/audit.db",
               HYPERMARKER_SPOOL_DIR=f"{tmp}/spool", HYPERMARKER_AUTH_MODE="demo",
               HYPERMARKER_LOG_LEVEL="WARNING")
    if workers > 1:  # several workers share panel tokens through Redis (the settings insist)
        env.setdefault("HYPERMARKER_STATE_URL", "redis://127.0.0.1:6379/13")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hypermarker_cli.main", "serve", "--port",
                             str(port), "--workers", str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, t0)
        start_s = time.perf_counter() - t0
        from fhir_mappings.dates import shift_dates

        days = (datetime.now(UTC).date() - EXAMPLE_AS_OF).days
        body = shift_dates(json.loads(EXAMPLE.read_text()), days)
        request_file = Path(tmp) / "patient-view.json"
        request_file.write_text(json.dumps(body))
        asyncio.run(load(base, body, 30, 1))  # warm-up
        check = httpx.post(base + "/cds-services/hypertension-treatment", json=body, timeout=30)
        summary = check.json()["cards"][0]["summary"]
        if check.status_code != 200 or "not assessed" in summary:  # measure the real path
            raise RuntimeError(f"the example was not assessed: {check.status_code} {summary}")
        lat1, _, err1 = asyncio.run(load(base, body, n, 1))
        lat8, wall8, err8 = asyncio.run(load(base, body, n, 8))
        wrk = {f"wrk_c{c}": _wrk(base, c, request_file) for c in (1, 8)} if shutil.which(
            "wrk") else {
            "wrk": "not installed (apt-get install wrk)"}
        rss = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"workers": workers, "start_to_ready_s": start_s,
            "concurrency_1": {"p50_ms": statistics.median(lat1), "p99_ms": pct(lat1, 0.99),
                              "errors": err1},
            "concurrency_8": {"requests_per_s": n / wall8, "p50_ms": statistics.median(lat8),
                              "p99_ms": pct(lat8, 0.99), "errors": err8},
            "rss_mb_per_process": rss, **wrk}


def _wrk(base: str, connections: int, request_file: Path, seconds: int = 10) -> Any:
    """wrk (C load generator, no Python client overhead) with bench/patient_view.lua."""
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "-s",
         str(ROOT / "bench" / "patient_view.lua"), base, "--", str(request_file)],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    result: dict[str, Any] = json.loads(line[4:])
    result["requests_per_s"] = result["requests"] / result["duration_s"]
    return result


def _rss_mb(pid: int) -> dict[str, float]:
    out = {}
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)],
                                                   capture_output=True, text=True
                                                   ).stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[str(p)] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--in-process-only", action="store_true", help="skip the HTTP runs")
    args = ap.parse_args()
    np.seterr(all="ignore")
    report = {"machine_cores": os.cpu_count(), "in_process": in_process(args.repeats),
              "http": [] if args.in_process_only else [over_http(w, args.requests)
                                                        for w in (1, 2)]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
