"""Decision quality and safety of the ranked options over a simulated case set.

For every patient the pipeline's own ranking (:func:`models.assessment.rank_options`) is run on
scores computed in one batch; the checks are computed independently of the ranking code where
it matters: the first option's findings are re-derived from the rules, so a ranking bug that put
a contraindicated option first would be counted, not hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.cohort import CaseSet, feature_vector
from evaluation.metrics import captured_fraction
from fhir_mappings.features import FeatureVector
from models.assessment import ModelInfo, rank_options
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.options import TreatmentOption, valid_options
from models.scorer import ScoreBatch, Scorer

Ranker = Callable[..., Any]
"""Signature of :func:`models.assessment.rank_options` (replaceable to plant a faulty one)."""
Progress = Callable[[int], None]


@dataclass
class _Tally:
    patients: int = 0
    assessed: int = 0
    cannot_assess: int = 0
    no_safe_option: int = 0
    contraindicated_first: int = 0
    with_default: int = 0
    first_differs_from_default: int = 0
    sum_first: float = 0.0
    sum_default: float = 0.0
    sum_best_safe: float = 0.0
    sum_random_safe: float = 0.0
    sum_first_all: float = 0.0
    sum_best_safe_all: float = 0.0
    sum_random_safe_all: float = 0.0
    first_in_default: int = 0
    first_is_best_safe: int = 0


def run_decisions(cases: CaseSet, scorer: Scorer, profile: GuidelineProfile,
                  scores: ScoreBatch | None = None, ranker: Ranker | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Rank every patient's options and compare the first option with the guideline default
    and the best option, in true (simulated) systolic change (mmHg; more negative is better).

    ``scores`` are the batch scores of ``cases.rows`` when already computed; ``ranker``
    replaces :func:`rank_options` (tests plant a faulty one); ``progress`` is called with the
    number of patients done every 1,000 patients."""
    rank = ranker or rank_options
    rows = cases.rows
    if scores is None:
        scores = scorer.score(rows.features)
    starts = rows.group_starts()
    ends = np.append(starts[1:], len(rows))
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    features, doses = cases.cohort.features, cases.cohort.current_doses
    # option id -> row within the patient's group, per catalogue (keyed by identity: a
    # regimen's catalogue is built once; the entry keeps it alive)
    positions: dict[int, tuple[tuple[TreatmentOption, ...], dict[str, int]]] = {}
    t = _Tally()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        pid = int(rows.patient_idx[s])
        p: FeatureVector = feature_vector(features[pid], doses[pid])
        t.patients += 1
        options = valid_options(p.regimen)
        if len(options) != e - s:
            raise RuntimeError("option rows and the catalogue disagree")
        known = positions.get(id(options))
        if known is None:
            known = positions[id(options)] = (options, {o.id: i for i, o in enumerate(options)})
        at = known[1]
        if progress is not None and t.patients % 1000 == 0:
            progress(t.patients)
        a = rank(p, options, rows.features[s:e], scores.take(slice(s, e)), model, profile)
        t.assessed += 1
        first = a.first
        if first is None:
            t.no_safe_option += 1
            continue
        if max_severity(option_findings(p, first.option)) is Severity.BLOCK:
            t.contraindicated_first += 1
        truth = cases.true_change[s:e].tolist()
        safe = [truth[at[o.option.id]] for o in a.options if o.rank is not None]
        first_true = truth[at[first.option.id]]
        best_safe = min(safe)
        random_safe = float(np.mean(safe))
        t.sum_first_all += first_true
        t.sum_best_safe_all += best_safe
        t.sum_random_safe_all += random_safe
        t.first_is_best_safe += first_true <= best_safe
        if a.guideline_default:
            t.first_in_default += first.option.id in a.guideline_default
            t.with_default += 1
            t.first_differs_from_default += first.option.id not in a.guideline_default
            t.sum_first += first_true
            t.sum_default += float(np.mean([truth[at[i]] for i in a.guideline_default]))
            t.sum_best_safe += best_safe
            t.sum_random_safe += random_safe

    n_def = max(t.with_default, 1)
    n_first = max(t.assessed - t.no_safe_option, 1)
    model_d, default_d = t.sum_first / n_def, t.sum_default / n_def
    best_d, random_d = t.sum_best_safe / n_def, t.sum_random_safe / n_def
    return {
        "site": cases.site,
        "guideline": profile.name,
        "patients": t.patients,
        "patient_options": len(rows),
        "assessed": t.assessed,
        "no_safe_option": t.no_safe_option,
        "contraindicated_first": t.contraindicated_first,
        "patients_with_guideline_default": t.with_default,
        "share_first_differs_from_guideline_default": t.first_differs_from_default / n_def,
        "mean_true_change": {
            "model_first": t.sum_first / n_def,
            "guideline_default": t.sum_default / n_def,
            "best_safe_option": t.sum_best_safe / n_def,
            "random_safe_option": t.sum_random_safe / n_def,
        },
        "mean_true_change_all_patients": {
            "model_first": t.sum_first_all / n_first,
            "best_safe_option": t.sum_best_safe_all / n_first,
            "random_safe_option": t.sum_random_safe_all / n_first,
        },
        "guideline_concordance": t.first_in_default / n_def,
        "share_first_is_best_safe_option": t.first_is_best_safe / n_first,
        "captured_fraction": {
            "model_first": captured_fraction(model_d, random_d, best_d),
            "guideline_default": captured_fraction(default_d, random_d, best_d),
        },
        "benefit_vs_guideline_default_mmhg": default_d - model_d,
    }
