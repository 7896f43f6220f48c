"""Guideline rules and ranking benchmark (a script, not a test).

Prints, from one run on this machine, the CPU time per call (best of 7 rounds) of
:func:`models.assessment.rank_options` (safety rules over the catalogue, NICE preference and
target, statuses and ranking; no SHAP) and of the rules alone
(:func:`models.guideline.safety.catalogue_findings`) for the example patients: the features
document ``examples/features-step2.json`` and the mapping of the CDS Hooks request
``examples/patient-view.json``; then patients per second of the same ranking over simulated
internal-site patients.

    uv run python bench/bench_ranking.py [--patients N]
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from evaluation.cohort import feature_vector, simulated_case_set
from fhir_mappings.features import FeatureVector, feature_vector_from_document
from fhir_mappings.mapping import features_from_fhir
from models.assessment import ModelInfo, rank_options
from models.guideline.safety import catalogue_findings
from models.model_rows import assemble
from models.options import dose_matrices, valid_options
from models.scorer import Scorer

ROOT = Path(__file__).resolve().parent.parent


def per_call_us(fn: Callable[[], object], number: int = 2000) -> float:
    timer = timeit.Timer(fn, timer=time.process_time)
    return min(timer.repeat(number=number, repeat=7)) / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20_000)
    args = ap.parse_args()
    scorer = Scorer.load()
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    examples: dict[str, FeatureVector] = {
        "features-step2.json": feature_vector_from_document(
            json.loads((ROOT / "examples/features-step2.json").read_text())),
        "patient-view.json": features_from_fhir(
            (ROOT / "examples/patient-view.json").read_bytes())[0],
    }
    for name, p in examples.items():
        options = valid_options(p.regimen)
        x = assemble(p.model_vector(), *dose_matrices(options))
        scores = scorer.score(x)
        rank_us = per_call_us(lambda p=p, o=options, x=x, s=scores: rank_options(p, o, x, s,
                                                                                   model))
        rules_us = per_call_us(lambda p=p, o=options: catalogue_findings(p, o))
        print(f"{name}: {len(options)} options; rank_options {rank_us:.1f} us per call, "
              f"safety rules {rules_us:.1f} us")

    cases = simulated_case_set("internal", args.patients, 9001)
    rows = cases.rows
    scores = scorer.score(rows.features)
    starts = rows.group_starts().tolist()
    ends = [*starts[1:], len(rows)]
    patients = [feature_vector(cases.cohort.features[int(rows.patient_idx[s])],
                               cases.cohort.current_doses[int(rows.patient_idx[s])])
                for s in starts]
    t0 = time.process_time()
    for p, s, e in zip(patients, starts, ends, strict=True):
        rank_options(p, valid_options(p.regimen), rows.features[s:e],
                     scores.take(slice(s, e)), model)
    cpu = time.process_time() - t0
    print(f"simulated internal patients: {len(patients):,} ranked "
          f"({len(rows) / len(patients):.1f} options each) in {cpu:.2f} s CPU: "
          f"{cpu / len(patients) * 1e6:.0f} us per patient, "
          f"{len(rows) / cpu:,.0f} patient-options per second in one process")


if __name__ == "__main__":
    main()
