"""Decision quality and safety of the ranked options over a simulated case set.

For every patient the pipeline's own ranking is run on scores computed in one batch: the
guideline-first order of :func:`models.ranking.guideline_order`, which
:func:`models.assessment.rank_options` builds every assessment on, read directly without
building an assessment (the per-option objects, statuses and wording the harness does not read;
``tests/evaluation/test_decisions.py`` checks over many patients that this gives the report,
to the bit, that ranking through :func:`~models.assessment.rank_options` gives). Any other
ranker (a test plants a faulty one) is run through its assessment. The checks are computed
independently of the ranking code where it matters: the first option's findings are re-derived
from the rules, so a ranking bug that put a contraindicated option first would be counted, not
hidden.

The patients can be ranked in several worker processes (``workers``; forked, so they share the
case set and scores without copying them); each patient's outcome comes back in patient order and
the sums are taken in that order, so the report is the same, to the bit, whatever the number of
workers.

Beside the legacy point figures, ``decision_metrics`` holds the figures the project's goals are
judged on, each an estimate with a patient-level bootstrap interval (:mod:`evaluation.bootstrap`);
all are ratios of sums over the patients who have a guideline default (true systolic change in
mmHg, lower is better; per patient, ``first`` is the true change of the model's first option,
``default`` the mean true change of the guideline default's options (the expected result of
following the guideline's own choice), ``best`` the true change of the best safe option):

* ``captured_fraction_vs_guideline_default`` (the goal: >= 0.90 internal, >= 0.75 external) =
  sum(default - first) / sum(default - best): the share of the benefit available over the
  guideline's own choice that the first option captures;
* ``captured_fraction_vs_random_safe``: the same with ``default`` replaced by the mean over the
  safe options (a random safe choice);
* the non-personalised comparators, which ignore the patient beyond the guideline's rules:
  ranking ALL of a patient's safe options by their population-mean effect (the mean over every
  row of that option in the case set), by the true change (``population_ranking``) and by the
  model's predictions (``population_ranking_predicted``); ``gain_over_population_ranking_mmhg``
  = mean(first of that ranking - first of the model). Ranking all safe options, that
  comparator may choose beyond the guideline's step, so it is not the fair comparator of a
  guideline-first policy; this is:
* the within-step comparator (``within_step_comparator``): among the options the guideline
  permits at the patient's step (in step, not contraindicated, whatever their predicted
  effect), the one with the best population-mean true change (ties: the guideline's own choice
  before a dose increase, then catalogue order); ``gain_over_within_step_comparator_mmhg`` =
  mean(true change of its choice - true change of the model's first option) over the ranked
  patients that have such an option: the value of the model's choice within the step, in mmHg
  (positive: the policy lowers systolic BP more). ``within_step_comparator_predicted`` is the
  same ranked on the population mean of the model's expected effect;
* ``by_subgroup``: the gains over the guideline default and over the within-step comparator
  in each subgroup of :func:`evaluation.subgroup_estimates.patient_masks` (and ``all``);
* ``off_guideline_first_rate`` (the first option is not in the guideline default),
  ``caution_first_rate`` (the first option carries a caution finding, re-derived from the
  rules) and ``contraindicated_first_rate`` (a contraindication: must be 0, the safety gate
  ``contraindicated-first`` reads the count);
* the oracles: the person-level one (``best``) and the feature-explainable one (the safe option
  with the best expected true change given the features, :mod:`evaluation.feature_oracle`),
  with the benefit each makes available over the guideline default and the model's captured
  fraction against each.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import METHOD, Batch, Bootstrap
from evaluation.cohort import CaseSet, feature_vector
from evaluation.subgroup_estimates import patient_masks
from fhir_mappings.features import FeatureVector
from models.assessment import ModelInfo, rank_options
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.options import TreatmentOption, valid_options
from models.ranking import Tier, guideline_order
from models.scorer import ScoreBatch, Scorer
from models.training.metrics import captured_fraction

F64 = npt.NDArray[np.float64]

Ranker = Callable[..., Any]
"""Signature of :func:`models.assessment.rank_options` (replaceable to plant a faulty one)."""
_PIPELINE_RANKER: Final[Ranker] = rank_options
"""The pipeline's own ranking: its order is read from :func:`models.ranking.guideline_order`
directly (module docstring). Kept from import time, so that a ranker planted in its place
(``evaluation.decisions.rank_options``) is run through its assessment."""
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
    caution_first: bool
    """The first option carries a caution (WARN) finding, re-derived from the rules."""
    population_first: float
    """True change of the safe option with the best population-mean true change."""
    population_predicted_first: float
    """True change of the safe option with the best population-mean predicted change."""
    feature_oracle_first: float
    """True change of the safe option with the best feature-explainable expectation (NaN
    without a feature oracle)."""
    within_step_first: float
    """True change of the within-step comparator's choice: the in-step option that is not
    contraindicated with the best population-mean true change (NaN: the step has none)."""
    within_step_predicted_first: float
    """The same, chosen on the population-mean predicted expected effect."""


@dataclass(frozen=True, slots=True)
class _Job:
    cases: CaseSet
    scores: ScoreBatch
    model: ModelInfo
    profile: GuidelineProfile
    rank: Ranker
    starts: list[int]
    ends: list[int]
    population_true: dict[str, float]
    """Option id -> mean true change over every row of that option in the case set."""
    population_predicted: dict[str, float]
    """Option id -> mean predicted change over every row of that option."""
    population_effect: dict[str, float]
    """Option id -> mean predicted expected effect over every row of that option."""
    feature_oracle: F64 | None
    """Per row: the feature-explainable expectation of the true change, or None."""


def _decide(job: _Job, lo: int, hi: int, progress: Progress | None = None
            ) -> list[_Outcome | None]:
    """Outcomes of patients ``lo:hi`` (None: no safe option)."""
    rows, cases = job.cases.rows, job.cases
    features, doses = cases.cohort.features, cases.cohort.current_doses
    effect = job.scores.effect_change
    fast = job.rank is _PIPELINE_RANKER
    # per current regimen (the patient's row of doses): its catalogue, the options' ids and
    # option id -> row within the patient's group
    catalogues: dict[bytes, tuple[tuple[TreatmentOption, ...], list[str], dict[str, int]]] = {}
    out: list[_Outcome | None] = []
    for k in range(lo, hi):
        s, e = job.starts[k], job.ends[k]
        pid = int(rows.patient_idx[s])
        p: FeatureVector = feature_vector(features[pid], doses[pid])
        known = catalogues.get(key := doses[pid].tobytes())
        if known is None:
            options = valid_options(p.regimen)
            known = catalogues[key] = (options, [o.id for o in options],
                                       {o.id: i for i, o in enumerate(options)})
        options, ids = known[0], known[1]
        if len(options) != e - s:
            raise RuntimeError("option rows and the catalogue disagree")
        if progress is not None and (k + 1) % 1000 == 0:
            progress(k + 1)
        if fast:
            ranking = _read_order(p, options, effect[s:e].tolist(), job.profile)
        else:
            ranking = _read_assessment(job.rank(p, options, rows.features[s:e],
                                                job.scores.take(slice(s, e)), job.model,
                                                job.profile), known[2])
        if ranking is None:
            out.append(None)
            continue
        out.append(_outcome(job, p, options, ids, s, e, *ranking))
    return out


_Ranking = tuple[int, list[int], list[int], list[tuple[int, bool]]]
"""A patient's ranking as the metrics read it (rows within the patient's group): the first
option, the ranked (safe) options in rank order, the guideline default's options in the
assessment's order, and (row, guideline's own choice) of each in-step option that is not
contraindicated."""


def _read_order(p: FeatureVector, options: tuple[TreatmentOption, ...], effect: list[float],
                profile: GuidelineProfile) -> _Ranking | None:
    """The pipeline's ranking read from :func:`models.ranking.guideline_order` (as
    :func:`models.assessment.rank_options` lists it: the ranked options, then those not
    expected to lower BP by id; the guideline default is the guideline's own choices among
    them, in that order)."""
    g = guideline_order(p, options, effect, profile)
    if not g.ranked:
        return None
    ranked = [c.row for c in g.ranked]
    in_rank = set(ranked)
    default = [c.row for c in g.ranked if c.guideline_choice] + sorted(
        (c.row for c in g.candidates if c.guideline_choice and c.row not in in_rank),
        key=lambda i: options[i].id)
    in_step = [(c.row, c.guideline_choice) for c in g.candidates if c.tier is Tier.IN_STEP]
    return ranked[0], ranked, default, in_step


def _read_assessment(a: Any, at: dict[str, int]) -> _Ranking | None:
    """The same read from a ranker's assessment."""
    first = a.first
    if first is None:
        return None
    return (at[first.option.id], [at[o.option.id] for o in a.options if o.rank is not None],
            [at[i] for i in a.guideline_default],
            [(at[o.option.id], bool(o.guideline_preferred)) for o in a.options
             if o.in_step and not o.blocked])


def _outcome(job: _Job, p: FeatureVector, options: tuple[TreatmentOption, ...],
             ids: list[str], s: int, e: int, first: int, ranked: list[int], default: list[int],
             in_step: list[tuple[int, bool]]) -> _Outcome:
    """One patient's outcome from its ranking (rows within the patient's group; ``ids``: the
    options' ids)."""
    truth = job.cases.true_change[s:e].tolist()
    safe = [truth[i] for i in ranked]
    severity = max_severity(option_findings(p, options[first]))
    pop = min(ranked, key=lambda i: (job.population_true[ids[i]], ids[i]))
    pop_pred = min(ranked, key=lambda i: (job.population_predicted[ids[i]], ids[i]))
    if job.feature_oracle is not None:
        expected = job.feature_oracle[s:e]
        oracle = truth[min(ranked, key=lambda i: (float(expected[i]), ids[i]))]
    else:
        oracle = float("nan")
    within = within_predicted = float("nan")
    if in_step:
        within = truth[min(in_step, key=lambda t: (job.population_true[ids[t[0]]], not t[1],
                                                   t[0]))[0]]
        within_predicted = truth[min(in_step, key=lambda t: (
            job.population_effect[ids[t[0]]], not t[1], t[0]))[0]]
    return _Outcome(
        severity is Severity.BLOCK,
        truth[first], min(safe), _mean(safe),
        _mean([truth[i] for i in default]) if default else None,
        first in default, severity is Severity.WARN,
        truth[pop], truth[pop_pred], oracle, within, within_predicted)


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


def option_codes(option_ids: npt.NDArray[np.str_]) -> tuple[list[str], npt.NDArray[np.intp]]:
    """The distinct option ids (in order of first appearance) and each row's index into them
    (a hash per row: sorting a million ids, as ``np.unique`` does, took seconds)."""
    codes: dict[str, int] = {}
    rows = option_ids.tolist()
    inverse = np.fromiter((codes.setdefault(i, len(codes)) for i in rows), dtype=np.intp,
                          count=len(rows))
    return list(codes), inverse


def population_means(option_ids: npt.NDArray[np.str_], values: F64,
                     codes: tuple[list[str], npt.NDArray[np.intp]] | None = None
                     ) -> dict[str, float]:
    """Option id -> mean of ``values`` over the rows of that option (the non-personalised
    comparators rank a patient's options by these); ``codes``: :func:`option_codes` of
    ``option_ids`` when already computed. Each option's sum is taken over its rows in row
    order."""
    ids, inverse = codes if codes is not None else option_codes(option_ids)
    sums = np.bincount(inverse, weights=np.asarray(values, dtype=np.float64),
                       minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids))
    return dict(zip(ids, (sums / counts).tolist(), strict=True))


def run_decisions(cases: CaseSet, scorer: Scorer, profile: GuidelineProfile,
                  scores: ScoreBatch | None = None, ranker: Ranker | None = None,
                  progress: Progress | None = None, workers: int = 1,
                  feature_oracle: F64 | None = None,
                  boot: Bootstrap | None = None,
                  masks: dict[str, npt.NDArray[np.bool_]] | None = None) -> dict[str, Any]:
    """Rank every patient's options and compare the first option with the guideline default
    and the best option, in true (simulated) systolic change (mmHg; more negative is better).

    ``scores`` are the batch scores of ``cases.rows`` when already computed; ``ranker``
    replaces :func:`rank_options` (tests plant a faulty one); ``progress`` is called with the
    number of patients done (every 1,000 patients, or every chunk with several workers);
    ``workers`` > 1 ranks in that many forked processes where there are at least
    :data:`MIN_PATIENTS_PER_WORKER` patients per worker and the platform can fork;
    ``feature_oracle``: the per-row feature-explainable expectation of the true change
    (:func:`evaluation.feature_oracle.feature_oracle_predictions`), without which the
    feature-explainable oracle's figures are null; ``boot``: the suite's patient resamples
    (default: :class:`~evaluation.bootstrap.Bootstrap` over the patients); ``masks``: the
    subgroups' patient masks (default:
    :func:`evaluation.subgroup_estimates.patient_masks`)."""
    rows = cases.rows
    if scores is None:
        scores = scorer.score(rows.features)
    starts = rows.group_starts()
    ends = np.append(starts[1:], len(rows))
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    codes = option_codes(rows.option_ids)
    job = _Job(cases, scores, model, profile, ranker or rank_options, starts.tolist(),
               ends.tolist(), population_means(rows.option_ids, cases.true_change, codes),
               population_means(rows.option_ids, scores.sbp_change, codes),
               population_means(rows.option_ids, scores.effect_change, codes), feature_oracle)
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
        "decision_metrics": decision_metrics(
            outcomes, boot or Bootstrap(n), feature_oracle is not None,
            patient_masks(cases) if masks is None else masks),
    }


#: A patient with no safe option in :func:`_columns` (every column 0).
_NO_OUTCOME: Final = (0.0,) * (len(_Outcome._fields) + 1)


def _columns(outcomes: list[_Outcome | None]) -> dict[str, F64]:
    """Per-patient columns of the outcomes (0 for a patient with no safe option): ``ranked``
    (1 for a patient with a first option), ``has_default`` (1 with a guideline default),
    ``default_mean`` (0 without one) and every other field of :class:`_Outcome` as a float,
    in one conversion."""
    m = np.array([_NO_OUTCOME if o is None else (
        1.0, *o[:4], 0.0 if o.default_mean is None else o.default_mean, *o[5:])
        for o in outcomes], dtype=np.float64).reshape(len(outcomes), len(_NO_OUTCOME))
    names = ("ranked", *_Outcome._fields)
    out = dict(zip(names, m.T, strict=True))
    out["has_default"] = np.array([o is not None and o.default_mean is not None
                                   for o in outcomes], dtype=np.float64)
    return out


def decision_metrics(outcomes: list[_Outcome | None], boot: Bootstrap,
                     with_feature_oracle: bool,
                     masks: dict[str, npt.NDArray[np.bool_]] | None = None) -> dict[str, Any]:
    """The goal's decision figures with their intervals (see the module docstring); ``masks``:
    the subgroups' patient masks (patient order) for ``by_subgroup`` (empty without)."""
    c = _columns(outcomes)
    ranked = c["ranked"]
    d = c["has_default"]
    default = c["default_mean"]
    first, best = c["first_true"] * d, c["best_safe"] * d
    rand = c["random_safe"] * d
    pop, pop_pred = c["population_first"] * d, c["population_predicted_first"] * d
    oracle = c["feature_oracle_first"] * d if with_feature_oracle else None
    default = default * d
    b = Batch(boot)
    n_def, n_ranked = int(d.sum()), int(ranked.sum())
    b.ratio("cf_default", default - first, default - best, n_def)
    b.ratio("cf_random", rand - first, rand - best, n_def)
    b.ratio("gain_default", default - first, d, n_def)
    b.ratio("pop_cf_default", default - pop, default - best, n_def)
    b.ratio("pop_gain", pop - first, d, n_def)
    b.ratio("pop_pred_cf_default", default - pop_pred, default - best, n_def)
    b.ratio("pop_pred_gain", pop_pred - first, d, n_def)
    b.ratio("pop_cf_random", rand - pop, rand - best, n_def)
    b.ratio("pop_pred_cf_random", rand - pop_pred, rand - best, n_def)
    b.ratio("off_guideline", d * (1.0 - c["first_in_default"]), d, n_def)
    b.ratio("caution", c["caution_first"], ranked, n_ranked)
    b.ratio("available_person", default - best, d, n_def)
    if oracle is not None:
        b.ratio("available_feature", default - oracle, d, n_def)
        b.ratio("cf_feature_oracle", default - first, default - oracle, n_def)
        b.ratio("feature_share", default - oracle, default - best, n_def)
    e = {k: v.to_dict() for k, v in b.run().items()}
    within, by_subgroup = _within_step_and_subgroups(c, first, default, best, boot, masks or {})
    return {
        "method": METHOD,
        "patients_with_guideline_default": int(d.sum()),
        "patients_ranked": int(ranked.sum()),
        "captured_fraction_vs_guideline_default": e["cf_default"],
        "captured_fraction_vs_guideline_default_definition": (
            "sum over patients with a guideline default of (true change of the guideline "
            "default - true change of the first option) / sum of (true change of the guideline "
            "default - true change of the best safe option); the guideline default's true "
            "change is the mean over its options"),
        "captured_fraction_vs_random_safe": e["cf_random"],
        "gain_over_guideline_default_mmhg": e["gain_default"],
        "population_ranking": {
            "definition": "each patient's safe options ranked by the mean true change of the "
                          "option over the case set, ignoring the patient",
            "captured_fraction_vs_guideline_default": e["pop_cf_default"],
            "captured_fraction_vs_random_safe": e["pop_cf_random"],
            "model_gain_mmhg": e["pop_gain"],
        },
        "population_ranking_predicted": {
            "definition": "each patient's safe options ranked by the mean predicted change of "
                          "the option over the case set, ignoring the patient",
            "captured_fraction_vs_guideline_default": e["pop_pred_cf_default"],
            "captured_fraction_vs_random_safe": e["pop_pred_cf_random"],
            "model_gain_mmhg": e["pop_pred_gain"],
        },
        "gain_over_population_ranking_mmhg": e["pop_gain"],
        "within_step_comparator": within["true"],
        "within_step_comparator_predicted": within["predicted"],
        "gain_over_within_step_comparator_mmhg": within["true"]["model_gain_mmhg"],
        "by_subgroup": by_subgroup,
        "off_guideline_first_rate": e["off_guideline"],
        "caution_first_rate": e["caution"],
        "contraindicated_first_rate": within["contraindicated_first_rate"],
        "oracle": {
            "person_level": {
                "definition": "the best safe option under the person-level simulated truth",
                "benefit_over_guideline_default_mmhg": e["available_person"],
                "captured_fraction": e["cf_default"],
            },
            "feature_explainable": {
                "definition": "the safe option with the best expected true change given the "
                              "features (evaluation/feature_oracle.py)",
                "benefit_over_guideline_default_mmhg": e.get("available_feature"),
                "captured_fraction": e.get("cf_feature_oracle"),
                "share_of_person_level_benefit": e.get("feature_share"),
            },
        },
    }


def _within_step_and_subgroups(c: dict[str, F64], first: F64, default: F64, best: F64,
                               boot: Bootstrap, masks: dict[str, npt.NDArray[np.bool_]]
                               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The within-step comparators, the contraindicated-first rate and the gains by subgroup
    (module docstring), over the same resamples as the other decision metrics (in a batch of
    their own: the figures of the first batch stay what they were before these were added).
    ``first``, ``default`` and ``best`` are the columns of :func:`decision_metrics` (0 for the
    patients without a guideline default)."""
    ranked, d = c["ranked"], c["has_default"]
    first_all = c["first_true"]
    b = Batch(boot)
    columns: dict[str, tuple[F64, F64]] = {}
    for kind, name in (("true", "within_step_first"), ("predicted",
                                                       "within_step_predicted_first")):
        has = (ranked > 0) & np.isfinite(c[name])
        w = has.astype(np.float64)
        choice = np.where(has, c[name], 0.0)
        n = int(w.sum())
        columns[kind] = (choice - first_all * w, w)
        b.ratio(f"{kind}/gain", choice - first_all * w, w, n)
        b.ratio(f"{kind}/cf_default", (default - choice) * d * w, (default - best) * w,
                int((d * w).sum()))
    b.ratio("contraindicated", c["contraindicated_first"], ranked, int(ranked.sum()))
    gains = {"gain_over_guideline_default_mmhg": (default - first, d),
             "gain_over_within_step_comparator_mmhg": columns["true"]}
    for member, m in masks.items():
        mw = m.astype(np.float64)
        for metric, (num, den) in gains.items():
            b.ratio(f"{metric}/{member}", num * mw, den * mw)
    e = {k: v.to_dict() for k, v in b.run().items()}
    definition = {
        "true": "among the options the guideline permits at the patient's step (in step: the "
                "guideline's own choice or a dose increase; not contraindicated; whatever "
                "their predicted effect), the one with the best mean true change of the option "
                "over the case set, ignoring the patient (ties: the guideline's own choice, "
                "then catalogue order)",
        "predicted": "the same, chosen on the mean predicted expected effect of the option "
                     "over the case set",
    }
    within = {kind: {
        "definition": definition[kind],
        "model_gain_mmhg": e[f"{kind}/gain"],
        "model_gain_definition": "mean over the ranked patients whose step has such an option "
                                 "of (true change of the comparator's choice - true change of "
                                 "the first option), mmHg: positive when the policy lowers "
                                 "systolic BP more",
        "captured_fraction_vs_guideline_default": e[f"{kind}/cf_default"],
    } for kind in ("true", "predicted")}
    within["contraindicated_first_rate"] = e["contraindicated"]
    by_subgroup = {metric: {member: e[f"{metric}/{member}"] for member in masks}
                   for metric in gains}
    return within, by_subgroup
