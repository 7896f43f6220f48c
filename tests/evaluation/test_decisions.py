"""The decisions part of the site suites: the same report whatever the number of ranking
processes, and a faulty ranker is counted in the worker processes too."""

from __future__ import annotations

from typing import Any

import pytest

import evaluation.decisions
from evaluation.cohort import CaseSet, simulated_case_set
from evaluation.decisions import ranking_workers, run_decisions
from models.assessment import rank_options
from models.guideline.profiles import NICE
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
