"""The simulated site suites (internal, external): one ONNX batch over every (patient, option)
row with SHAP off, simulated observed outcomes, and every metric of the harness.

Throughput is reported in two parts, because they have different costs: ``scoring`` is the
ONNX batch plus every vectorised prediction metric (calibration, coverage, discrimination,
subgroups) over all rows, the figure of the DESIGN.md section 8 budget (50,000
patient-options per second); ``decisions`` is the per-patient guideline ranking
(:func:`models.assessment.rank_options`, pure Python rules), timed separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from evaluation.cohort import CaseSet, simulated_outcomes, subgroups
from evaluation.decisions import Ranker, run_decisions
from evaluation.metrics import (
    binary_metrics,
    interval_coverage,
    regression_metrics,
    subgroup_table,
)
from models.guideline.profiles import GuidelineProfile
from models.scorer import Scorer

Progress = Callable[[int], None]

#: The throughput the harness must reach (DESIGN.md section 8).
ROWS_PER_SECOND_BUDGET = 50_000.0


def run_site_suite(cases: CaseSet, scorer: Scorer, profile: GuidelineProfile,
                   outcome_seed: int, ranker: Ranker | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """All metrics of one simulated site suite (see the module docstring)."""
    rows = cases.rows
    outcomes = simulated_outcomes(cases, outcome_seed)
    t0 = time.perf_counter()
    scores = scorer.score(rows.features)
    t_score = time.perf_counter() - t0
    obs, truth = outcomes.observed_change, cases.true_change
    sbp = regression_metrics(scores.sbp_change, obs, truth)
    interval = interval_coverage(scores.lower, scores.upper, obs, scores.coverage)
    target = binary_metrics(scores.p_target, outcomes.reached)
    groups = subgroup_table(subgroups(cases), scores.sbp_change, obs, truth, scores.lower,
                            scores.upper, scores.p_target, outcomes.reached)
    t_metrics = time.perf_counter() - t0
    t1 = time.perf_counter()
    decisions = run_decisions(cases, scorer, profile, scores=scores, ranker=ranker,
                              progress=progress)
    t_decisions = time.perf_counter() - t1
    n = len(rows)
    rate = n / t_metrics if t_metrics > 0 else float("inf")
    return {
        **decisions,
        "suite": cases.site,
        "outcome_seed": outcome_seed,
        "sbp_change": sbp,
        "interval": interval,
        "target_attainment": target,
        "subgroups": groups,
        "throughput": {
            "rows": n,
            "shap": False,
            "provider": scorer.provider,
            "scoring_seconds": t_score,
            "scoring_and_metrics_seconds": t_metrics,
            "rows_per_second": rate,
            "budget_rows_per_second": ROWS_PER_SECOND_BUDGET,
            "meets_budget": bool(rate >= ROWS_PER_SECOND_BUDGET),
            "decisions_seconds": t_decisions,
            "decisions_rows_per_second": n / t_decisions if t_decisions > 0 else float("inf"),
            "end_to_end_rows_per_second": n / (t_metrics + t_decisions),
        },
    }

