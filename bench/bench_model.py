"""Model latency benchmark (a script, not a test): ONNX vs LightGBM, and SHAP per request.

Prints, from one run on this machine: median and p95 latency of one patient's options (8 rows)
and of 10,000 rows for the served ONNX form (onnxruntime), the tensorised form on the same
provider, and LightGBM's own predict of the four boosters; SHAP (the served numpy TreeSHAP,
and LightGBM's pred_contrib as reference); and the ratio of each to the served ONNX call.
CUDA figures are added when onnxruntime offers the CUDA provider.

    uv run python bench/bench_model.py [--threads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort

from models.explainer import Explainer
from models.manifest import (
    OUTPUTS,
    ROLE_LGB_PREFIX,
    ROLE_ONNX_TENSOR,
    ROLE_ONNX_TREE,
    load_manifest,
)
from models.scorer import CPU, CUDA, open_session
from models.training.dataset import option_rows
from models.training.simulator import simulate_cohort


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return {"median_ms": statistics.median(samples),
            "p95_ms": samples[min(len(samples) - 1, int(0.95 * len(samples)))]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    manifest = load_manifest()
    rows = option_rows(simulate_cohort(2000, "internal", 4242)).features
    x8 = np.ascontiguousarray(rows[:8])
    x10k = np.ascontiguousarray(rows[:10_000])
    boosters = [lgb.Booster(model_file=str(manifest.file(ROLE_LGB_PREFIX + o))) for o in OUTPUTS]
    explainer = Explainer.load(manifest)

    def onnx(role: str, provider: str) -> Any:
        s = open_session(manifest.file(role), provider, args.threads)
        name = s.get_inputs()[0].name
        return lambda x: s.run(None, {name: x})

    def lgb_all(x: np.ndarray) -> None:
        for b in boosters:
            b.predict(x, raw_score=True, num_threads=args.threads)

    candidates: dict[str, Callable[[np.ndarray], object]] = {
        "onnx_tree@cpu (served on CPU)": onnx(ROLE_ONNX_TREE, CPU),
        "onnx_tensorised@cpu": onnx(ROLE_ONNX_TENSOR, CPU),
        "lightgbm_predict (4 boosters)": lgb_all,
    }
    gpu = CUDA in ort.get_available_providers()
    if gpu:
        candidates["onnx_tensorised@cuda"] = onnx(ROLE_ONNX_TENSOR, CUDA)
    report: dict[str, Any] = {"threads": args.threads, "onnxruntime": ort.__version__,
                              "lightgbm": lgb.__version__, "batches": {}}
    for label, x, reps in (("8_rows", x8, args.repeats), ("10000_rows", x10k,
                                                          max(10, args.repeats // 30))):
        res = {k: timed(lambda f=f, x=x: f(x), reps) for k, f in candidates.items()}
        res["shap_served (numpy TreeSHAP, sbp_change)"] = timed(
            lambda x=x: explainer.explain(x), reps if label == "8_rows" else 3)
        res["shap_lightgbm_pred_contrib (reference)"] = timed(
            lambda x=x: boosters[0].predict(x, pred_contrib=True, num_threads=args.threads),
            reps if label == "8_rows" else 3)
        base = res["onnx_tree@cpu (served on CPU)"]["median_ms"]
        for v in res.values():
            v["ratio_to_served_onnx"] = v["median_ms"] / base
        report["batches"][label] = res
    report["gpu"] = ("CUDA provider measured above" if gpu else
                     "no CUDA provider on this machine: GPU figures not measured")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
