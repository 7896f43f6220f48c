"""The decisions part of the site suites: the same report whatever the number of ranking
processes, and a faulty ranker is counted in the worker processes too."""

from __future__ import annotations

from typing import Any

import pytest

import evaluation.decisions
from evaluation.cohort import CaseSet, feature_vector, simulated_case_set
from evaluation.decisions import _read_assessment, _read_order, ranking_workers, run_decisions
from models.assessment import ModelInfo, rank_options
from models.guideline.profiles import ESC, NICE, GuidelineProfile
from models.options import valid_options
from models.scorer import Scorer

needs_fork = pytest.mark.skipif(ranking_workers(10**9, 2) < 2,
                                reason="ranking in worker processes needs fork")


@pytest.fixture(scope="module")
def cases() -> CaseSet:
    return simulated_case_set("internal", 600, 4242)


def test_workers_are_used_only_where_there_are_enough_patients(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert ranking_workers(100, 4) == 1
    assert ranking_workers(10**6, 1) == 1
    monkeypatch.setattr(evaluation.decisions, "MIN_PATIENTS_PER_WORKER", 100)
    assert ranking_workers(250, 8) in (1, 2)  # 1 where the platform cannot fork


@needs_fork
def test_several_workers_give_the_same_report_to_the_bit(
        cases: CaseSet, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    one = run_decisions(cases, scorer, NICE)
    monkeypatch.setattr(evaluation.decisions, "MIN_PATIENTS_PER_WORKER", 100)
    done: list[int] = []
    several = run_decisions(cases, scorer, NICE, progress=done.append, workers=3)
    assert several == one
    assert max(done) == cases.n_patients


def _first_blocked(*args: Any, **kwargs: Any) -> Any:
    """A faulty ranker: puts a contraindicated option first where there is one."""
    a = rank_options(*args, **kwargs)
    blocked = [o for o in a.options if o.rank is None]
    if not blocked:
        return a
    first = blocked[0].__class__(**{**{f: getattr(blocked[0], f)
                                        for f in blocked[0].__slots__}, "rank": 1})
    rest = tuple(o for o in a.options if o is not blocked[0])
    return a.__class__(**{**{f: getattr(a, f) for f in a.__slots__},
                          "options": (first, *(o for o in rest if o.rank != 1))})


@needs_fork
def test_a_faulty_ranker_is_counted_in_the_workers(
        cases: CaseSet, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation.decisions, "MIN_PATIENTS_PER_WORKER", 100)
    monkeypatch.setattr(evaluation.decisions, "rank_options", _first_blocked)
    one = run_decisions(cases, scorer, NICE)
    several = run_decisions(cases, scorer, NICE, workers=2)
    assert one["contraindicated_first"] > 0
    assert several == one


def test_decision_metrics_are_the_goal_definitions_with_intervals(
        cases: CaseSet, scorer: Scorer) -> None:
    """The captured fraction over the guideline default is the ratio of sums of the goal's
    definition; with the truth itself as the feature-explainable oracle, that oracle is the
    person-level one (share 1, the same captured fraction); every interval holds its
    estimate."""
    report = run_decisions(cases, scorer, NICE, feature_oracle=cases.true_change)
    d = report["decision_metrics"]
    m = report["mean_true_change"]
    goal = d["captured_fraction_vs_guideline_default"]
    expected = ((m["guideline_default"] - m["model_first"])
                / (m["guideline_default"] - m["best_safe_option"]))
    assert goal["estimate"] == pytest.approx(expected)
    assert goal["n"] == report["patients_with_guideline_default"] == d[
        "patients_with_guideline_default"]
    assert d["captured_fraction_vs_random_safe"]["estimate"] == pytest.approx(
        report["captured_fraction"]["model_first"])
    assert d["gain_over_guideline_default_mmhg"]["estimate"] == pytest.approx(
        report["benefit_vs_guideline_default_mmhg"])
    feature = d["oracle"]["feature_explainable"]
    assert feature["share_of_person_level_benefit"]["estimate"] == pytest.approx(1.0)
    assert feature["captured_fraction"]["estimate"] == pytest.approx(goal["estimate"])
    for e in (goal, d["caution_first_rate"], d["off_guideline_first_rate"],
              d["gain_over_population_ranking_mmhg"]):
        assert e["lower"] <= e["estimate"] <= e["upper"], e
    # without an oracle its figures are null, never made up
    plain = run_decisions(cases, scorer, NICE)["decision_metrics"]["oracle"]
    assert plain["feature_explainable"]["captured_fraction"] is None


def test_a_ranker_that_follows_the_population_means_gains_nothing_over_them(
        cases: CaseSet, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The non-personalised comparator: a ranker that puts first the safe option with the
    best population-mean true change has no gain over that comparator, and the model's gain
    is measured against exactly that choice."""
    from evaluation.decisions import population_means

    means = population_means(cases.rows.option_ids, cases.true_change)

    def by_population(*args: Any, **kwargs: Any) -> Any:
        a = rank_options(*args, **kwargs)
        safe = sorted((o for o in a.options if o.rank is not None),
                      key=lambda o: (means[o.option.id], o.option.id))
        order = {o.option.id: i + 1 for i, o in enumerate(safe)}
        options = tuple(o.__class__(**{**{f: getattr(o, f) for f in o.__slots__},
                                       "rank": order.get(o.option.id)}) for o in a.options)
        return a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "options": options})

    monkeypatch.setattr(evaluation.decisions, "rank_options", by_population)
    d = run_decisions(cases, scorer, NICE)["decision_metrics"]
    assert d["gain_over_population_ranking_mmhg"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert d["captured_fraction_vs_guideline_default"]["estimate"] == pytest.approx(
        d["population_ranking"]["captured_fraction_vs_guideline_default"]["estimate"])


@pytest.mark.parametrize("site", ["internal", "external"])
@pytest.mark.parametrize("profile", [NICE, ESC], ids=["nice", "esc"])
def test_the_harness_reads_the_order_rank_options_gives(
        site: str, profile: GuidelineProfile, scorer: Scorer) -> None:
    """The harness reads the pipeline's order from models.ranking.guideline_order without
    building an assessment: for every patient of 1,500 per site and profile it gives the same
    first option, ranked options (in rank order), guideline default (in the assessment's order)
    and in-step options as reading the assessment of rank_options; and the whole report is
    the same through either path."""
    cases = simulated_case_set(site, 1500, 777)
    rows = cases.rows
    scores = scorer.score(rows.features)
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    starts = rows.group_starts().tolist()
    compared = 0
    for s, e in zip(starts, [*starts[1:], len(rows)], strict=True):
        pid = int(rows.patient_idx[s])
        p = feature_vector(cases.cohort.features[pid], cases.cohort.current_doses[pid])
        options = valid_options(p.regimen)
        a = rank_options(p, options, rows.features[s:e], scores.take(slice(s, e)), model,
                         profile)
        fast = _read_order(p, options, scores.effect_change[s:e].tolist(), profile)
        slow = _read_assessment(a, {o.id: i for i, o in enumerate(options)})
        if fast is None or slow is None:
            assert fast is slow is None
            continue
        assert fast[:3] == slow[:3], p
        assert sorted(fast[3]) == sorted(slow[3])
        compared += 1
    assert compared > 1400
    via_assessment = run_decisions(cases, scorer, profile, scores=scores,
                                   ranker=lambda *a, **k: rank_options(*a, **k))
    assert run_decisions(cases, scorer, profile, scores=scores) == via_assessment


def test_the_within_step_comparator_is_the_best_population_mean_option_of_the_step(
        cases: CaseSet, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ranker whose first option is the within-step comparator's choice (the in-step option,
    not contraindicated, with the best population-mean true change) gains nothing over it; the
    policy's gains come with intervals, overall and by subgroup, and no contraindicated option
    is first."""
    from evaluation.decisions import population_means

    means = population_means(cases.rows.option_ids, cases.true_change)

    def within_step(*args: Any, **kwargs: Any) -> Any:
        a = rank_options(*args, **kwargs)
        step = [o for o in a.options if o.in_step and not o.blocked]
        if not step:
            return a
        best = min(step, key=lambda o: (means[o.option.id], not o.guideline_preferred))
        others = [o for o in a.options if o.rank is not None and o is not best]
        order = {id(o): r for r, o in enumerate([best, *others], 1)}
        options = tuple(o.__class__(**{**{f: getattr(o, f) for f in o.__slots__},
                                       "rank": order.get(id(o))}) for o in a.options)
        return a.__class__(**{**{f: getattr(a, f) for f in a.__slots__}, "options": options})

    policy = run_decisions(cases, scorer, NICE)["decision_metrics"]
    for e in (policy["gain_over_within_step_comparator_mmhg"],
              policy["gain_over_guideline_default_mmhg"],
              *policy["by_subgroup"]["gain_over_within_step_comparator_mmhg"].values()):
        assert e["lower"] <= e["estimate"] <= e["upper"], e
    assert policy["by_subgroup"]["gain_over_within_step_comparator_mmhg"]["all"] == policy[
        "gain_over_within_step_comparator_mmhg"]
    assert policy["by_subgroup"]["gain_over_guideline_default_mmhg"]["all"]["estimate"] == (
        pytest.approx(policy["gain_over_guideline_default_mmhg"]["estimate"]))
    assert policy["contraindicated_first_rate"]["estimate"] == 0.0
    assert policy["within_step_comparator"]["model_gain_mmhg"] == policy[
        "gain_over_within_step_comparator_mmhg"]
    monkeypatch.setattr(evaluation.decisions, "rank_options", within_step)
    d = run_decisions(cases, scorer, NICE)["decision_metrics"]
    assert d["gain_over_within_step_comparator_mmhg"]["estimate"] == pytest.approx(0.0,
                                                                                   abs=1e-12)
    assert d["gain_over_within_step_comparator_mmhg"]["n"] == policy[
        "gain_over_within_step_comparator_mmhg"]["n"] > 500
