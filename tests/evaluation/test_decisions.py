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
