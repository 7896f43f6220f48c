"""The simulated site suites (internal, external): one ONNX batch over every (patient, option)
row with SHAP off, simulated observed outcomes, and every metric of the harness.

Throughput (the DESIGN.md section 8 budget: 50,000 patient-options per second with SHAP off) is
reported end to end: the ONNX batch, every vectorised prediction metric (calibration, coverage,
discrimination, subgroups) over all rows, and the per-patient guideline rules and ranking
(:func:`models.assessment.rank_options`) with the decision metrics. Its parts are reported
beside it. Simulating the patients and their outcomes is not part of it (it stands in for
reading a case set) and is reported separately, and so is fitting the feature-explainable
oracle (:mod:`evaluation.feature_oracle`, a benchmark of the decisions, not part of them).

``subgroup_estimates`` (:mod:`evaluation.subgroup_estimates`) and ``decision_metrics``
(:mod:`evaluation.decisions`) carry the figures the goals are judged on, each with a
patient-level bootstrap interval over the same resamples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evaluation.bootstrap import Bootstrap
from evaluation.cohort import CaseSet, simulated_outcomes, subgroups
from evaluation.decisions import Ranker, ranking_workers, run_decisions
from evaluation.feature_oracle import METHOD as ORACLE_METHOD
from evaluation.feature_oracle import feature_oracle_predictions
from evaluation.subgroup_estimates import subgroup_estimates
from models.guideline.profiles import GuidelineProfile
from models.scorer import Scorer
from models.training.metrics import (
    binary_metrics,
    interval_coverage,
    regression_metrics,
    subgroup_table,
)

Progress = Callable[[int], None]

#: The throughput the harness must reach (DESIGN.md section 8).
ROWS_PER_SECOND_BUDGET = 50_000.0


def run_site_suite(cases: CaseSet, scorer: Scorer, profile: GuidelineProfile,
                   outcome_seed: int, ranker: Ranker | None = None,
                   progress: Progress | None = None, workers: int = 1) -> dict[str, Any]:
    """All metrics of one simulated site suite (see the module docstring); ``workers``: ranking
    processes (see :func:`evaluation.decisions.run_decisions`)."""
    rows = cases.rows
    t_sim = time.perf_counter()
    outcomes = simulated_outcomes(cases, outcome_seed)
    t_sim = time.perf_counter() - t_sim
    t0 = time.perf_counter()
    scores = scorer.score(rows.features)
    t_score = time.perf_counter() - t0
    obs, truth = outcomes.observed_change, cases.true_change
    # the point predicts the change of the reading from the (selected-high) decision reading,
    # so its truth is the person's expected observed change: the expected effect minus the
    # decision reading's noise (regression to the mean); ranking and the effect interval use
    # the expected effect ``truth`` itself
    point_truth = truth - cases.cohort.latent["screening_noise"][rows.patient_idx]
    sbp = regression_metrics(scores.sbp_change, obs, point_truth)
    sbp["effect_change_mae_true"] = float(np.mean(np.abs(scores.effect_change - truth)))
    interval = interval_coverage(scores.lower, scores.upper, obs, scores.coverage)
    target = binary_metrics(scores.p_target, outcomes.reached)
    groups = subgroup_table(subgroups(cases), scores.sbp_change, obs, point_truth, scores.lower,
                            scores.upper, scores.p_target, outcomes.reached)
    boot = Bootstrap(cases.n_patients)
    estimates = subgroup_estimates(cases, scores.sbp_change, obs, scores.lower, scores.upper,
                                   boot, effect=(scores.effect_lower, scores.effect_upper,
                                                 truth))
    t_metrics = time.perf_counter() - t0
    t_oracle = time.perf_counter()
    oracle = feature_oracle_predictions(cases)
    t_oracle = time.perf_counter() - t_oracle
    t1 = time.perf_counter()
    decisions = run_decisions(cases, scorer, profile, scores=scores, ranker=ranker,
                              progress=progress, workers=workers, feature_oracle=oracle,
                              boot=boot)
    t_decisions = time.perf_counter() - t1
    n = len(rows)
    total = t_metrics + t_decisions
    rate = n / total if total > 0 else float("inf")
    return {
        **decisions,
        "suite": cases.site,
        "outcome_seed": outcome_seed,
        "sbp_change": sbp,
        "interval": interval,
        "target_attainment": target,
        "subgroups": groups,
        "subgroup_estimates": estimates,
        "feature_oracle_method": ORACLE_METHOD,
        "throughput": {
            "rows": n,
            "shap": False,
            "provider": scorer.provider,
            "ranking_workers": ranking_workers(cases.n_patients, workers),
            "seconds": total,
            "rows_per_second": rate,
            "budget_rows_per_second": ROWS_PER_SECOND_BUDGET,
            "meets_budget": bool(rate >= ROWS_PER_SECOND_BUDGET),
            "scoring_seconds": t_score,
            "metrics_seconds": t_metrics - t_score,
            "scoring_and_metrics_seconds": t_metrics,
            "scoring_and_metrics_rows_per_second": n / t_metrics if t_metrics > 0 else float(
                "inf"),
            "decisions_seconds": t_decisions,
            "decisions_rows_per_second": n / t_decisions if t_decisions > 0 else float("inf"),
            "outcome_simulation_seconds": t_sim,
            "feature_oracle_seconds": t_oracle,
        },
    }
