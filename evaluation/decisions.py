"""Decision quality and safety of the ranked options over a simulated case set.

For every patient the pipeline's own ranking (:func:`models.assessment.rank_options`) is run on
scores computed in one batch; the checks are computed independently of the ranking code where
it matters: the first option's findings are re-derived from the rules, so a ranking bug that put
a contraindicated option first would be counted, not hidden.

The patients can be ranked in several worker processes (``workers``; forked, so they share the
case set and scores without copying them); each patient's outcome comes back in patient order and
the sums are taken in that order, so the report is the same, to the bit, whatever the number of
workers.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from evaluation.cohort import CaseSet, feature_vector
from fhir_mappings.features import FeatureVector
from models.assessment import ModelInfo, rank_options
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.options import TreatmentOption, valid_options
from models.scorer import ScoreBatch, Scorer
from models.training.metrics import captured_fraction

Ranker = Callable[..., Any]
"""Signature of :func:`models.assessment.rank_options` (replaceable to plant a faulty one)."""
Progress = Callable[[int], None]

#: Fewest patients per worker for ranking in several processes to be worth a fork.
MIN_PATIENTS_PER_WORKER = 5_000
#: Chunks per worker (finer chunks: progress and a balanced load).
CHUNKS_PER_WORKER = 8


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


class _Outcome(NamedTuple):
    """One patient's ranking against the truth (true systolic change of the options, mmHg)."""

    contraindicated_first: bool
    first_true: float
    best_safe: float
    random_safe: float
    """Mean over the safe (ranked) options."""
    default_mean: float | None
    """Mean over the guideline default's options; None when the default is empty."""
    first_in_default: bool


@dataclass(frozen=True, slots=True)
class _Job:
    cases: CaseSet
    scores: ScoreBatch
    model: ModelInfo
    profile: GuidelineProfile
    rank: Ranker
    starts: list[int]
    ends: list[int]


def _decide(job: _Job, lo: int, hi: int, progress: Progress | None = None
            ) -> list[_Outcome | None]:
    """Outcomes of patients ``lo:hi`` (None: no safe option)."""
    rows, cases = job.cases.rows, job.cases
    features, doses = cases.cohort.features, cases.cohort.current_doses
    # option id -> row within the patient's group, per catalogue (keyed by identity: a
    # regimen's catalogue is built once; the entry keeps it alive)
    positions: dict[int, tuple[tuple[TreatmentOption, ...], dict[str, int]]] = {}
    out: list[_Outcome | None] = []
    for k in range(lo, hi):
        s, e = job.starts[k], job.ends[k]
        pid = int(rows.patient_idx[s])
        p: FeatureVector = feature_vector(features[pid], doses[pid])
        options = valid_options(p.regimen)
        if len(options) != e - s:
            raise RuntimeError("option rows and the catalogue disagree")
        known = positions.get(id(options))
        if known is None:
            known = positions[id(options)] = (options, {o.id: i for i, o in enumerate(options)})
        at = known[1]
        if progress is not None and (k + 1) % 1000 == 0:
            progress(k + 1)
        a = job.rank(p, options, rows.features[s:e], job.scores.take(slice(s, e)), job.model,
                     job.profile)
        first = a.first
        if first is None:
            out.append(None)
            continue
        truth = cases.true_change[s:e].tolist()
        safe = [truth[at[o.option.id]] for o in a.options if o.rank is not None]
        default = a.guideline_default
        out.append(_Outcome(
            max_severity(option_findings(p, first.option)) is Severity.BLOCK,
            truth[at[first.option.id]], min(safe), _mean(safe),
            _mean([truth[at[i]] for i in default]) if default else None,
            first.option.id in default))
    return out


def _mean(values: list[float]) -> float:
    """``np.mean(values)`` to the bit (numpy's sum, then divided by the count), without the
    cost of np.mean on a short list."""
    return float(np.add.reduce(np.array(values, dtype=np.float64))) / len(values)


_JOB: _Job | None = None
"""The job that forked workers rank (set only while their pool runs)."""


def _decide_in_worker(lo: int, hi: int) -> list[_Outcome | None]:
    if _JOB is None:
        raise RuntimeError("no ranking job in this worker")
    return _decide(_JOB, lo, hi)


def _decide_in_workers(job: _Job, workers: int, progress: Progress | None
                       ) -> list[_Outcome | None]:
    global _JOB
    n = len(job.starts)
    bounds = np.linspace(0, n, workers * CHUNKS_PER_WORKER + 1).astype(int).tolist()
    spans = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
    _JOB = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")
                                 ) as pool:
            futures = {pool.submit(_decide_in_worker, lo, hi): hi - lo for lo, hi in spans}
            done = 0
            for f in as_completed(futures):
                done += futures[f]
                if progress is not None:
                    progress(done)
            return [o for f in futures for o in f.result()]
    finally:
        _JOB = None


def ranking_workers(patients: int, workers: int) -> int:
    """The ranking processes :func:`run_decisions` uses for ``workers`` asked: at least
    :data:`MIN_PATIENTS_PER_WORKER` patients each, and one where the platform cannot fork."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(workers, patients // MIN_PATIENTS_PER_WORKER))


def run_decisions(cases: CaseSet, scorer: Scorer, profile: GuidelineProfile,
                  scores: ScoreBatch | None = None, ranker: Ranker | None = None,
                  progress: Progress | None = None, workers: int = 1) -> dict[str, Any]:
    """Rank every patient's options and compare the first option with the guideline default
    and the best option, in true (simulated) systolic change (mmHg; more negative is better).

    ``scores`` are the batch scores of ``cases.rows`` when already computed; ``ranker``
    replaces :func:`rank_options` (tests plant a faulty one); ``progress`` is called with the
    number of patients done (every 1,000 patients, or every chunk with several workers);
    ``workers`` > 1 ranks in that many forked processes where there are at least
    :data:`MIN_PATIENTS_PER_WORKER` patients per worker and the platform can fork."""
    rows = cases.rows
    if scores is None:
        scores = scorer.score(rows.features)
    starts = rows.group_starts()
    ends = np.append(starts[1:], len(rows))
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    job = _Job(cases, scores, model, profile, ranker or rank_options, starts.tolist(),
               ends.tolist())
    n = len(job.starts)
    workers = ranking_workers(n, workers)
    if workers > 1:
        outcomes = _decide_in_workers(job, workers, progress)
    else:
        outcomes = _decide(job, 0, n, progress)

    # Sums in patient order, whatever the number of workers.
    t = _Tally(patients=n, assessed=n)
    for oc in outcomes:
        if oc is None:
            t.no_safe_option += 1
            continue
        t.contraindicated_first += oc.contraindicated_first
        t.sum_first_all += oc.first_true
        t.sum_best_safe_all += oc.best_safe
        t.sum_random_safe_all += oc.random_safe
        t.first_is_best_safe += oc.first_true <= oc.best_safe
        if oc.default_mean is not None:
            t.first_in_default += oc.first_in_default
            t.with_default += 1
            t.first_differs_from_default += not oc.first_in_default
            t.sum_first += oc.first_true
            t.sum_default += oc.default_mean
            t.sum_best_safe += oc.best_safe
            t.sum_random_safe += oc.random_safe

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
