"""The deterministic rationale of hand-made clinical-safety cases says what a clinician must
read first: at target no step-up, specialist advice, a drug taken now to reduce or stop, and
each contraindicated option once with its reason (review defects of the short form)."""

from __future__ import annotations

import re

import pytest

from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.pipeline import Pipeline
from models.scorer import Scorer
from rationale.facts import Facts, facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_FACT_ID_CHARS
from rationale.verifier import verify_rationale
from tests.safety.runner import load_cases


@pytest.fixture(scope="module")
def pipeline(scorer: Scorer, explainer: Explainer) -> Pipeline:
    return Pipeline(scorer, explainer, NICE, explain_top=0)


def _facts(pipeline: Pipeline, case_id: str) -> Facts:
    case = next(c for c in load_cases() if c.id == case_id)
    r = pipeline.assess_fhir(case.request["prefetch"], as_of=case.as_of,
                             patient_id=case.request["context"]["patientId"])
    return facts_of(r.assessment)


@pytest.mark.parametrize("case_id", ["H06-duplicate-ramipril-not-two-drugs",
                                     "H09-at-target-132-82"])
def test_at_target_says_no_step_up_first(pipeline: Pipeline, case_id: str) -> None:
    facts = _facts(pipeline, case_id)
    at_target = [f for f in facts.required if f.id.startswith("finding-at-target")]
    assert at_target
    r = deterministic_rationale(facts)
    assert not verify_rationale(facts, r).problems
    first = r.sentences[0]
    assert "no step-up" in first.text
    assert first.text.index("no step-up") < first.text.find("Option 1") or \
        "Option 1" not in first.text
    assert at_target[0].id in first.facts


def test_short_form_says_each_contraindicated_option_once_with_its_reason(
        pipeline: Pipeline) -> None:
    facts = _facts(pipeline, "H20-spironolactone-increase-egfr-22")
    required = {f.id for f in facts.required}
    assert any(i.startswith("finding-specialist-advice") for i in required)
    assert any(i.startswith("finding-current-contraindicated") for i in required)
    r = deterministic_rationale(facts)
    assert not verify_rationale(facts, r).problems
    text = r.text
    assert "seek specialist advice" in text
    assert re.search(r"Already taking spironolactone: eGFR 22 [^.]*\..*reduce or stop", text)
    for label in ("Increase ramipril (ACEi) from 5 to 10 mg a day",
                  "Increase spironolactone (spironolactone) from 25 to 50 mg a day",
                  "Increase indapamide (thiazide-like) from 2.5 to 5 mg a day"):
        assert text.count(f"Not offered: {label}") == 1
        assert re.search(re.escape(f"Not offered: {label}") + r"[:.] [^.]*contraindicated|"
                         + re.escape(f"Not offered: {label}") + r": K\+ 5\.3", text)
    assert "candesartan (K+ 5.3 mmol/L (> 5.0): do not start ARB)" in text
    assert re.search(r"Option 1 \(caution\): Add bisoprolol \(beta-blocker\)[^.]*"
                     r"Already on 4 antihypertensives", text)


def test_fact_ids_are_bounded_and_unique(pipeline: Pipeline) -> None:
    from rationale.facts import _Ids
    ids = _Ids()
    made = [ids.next("finding-spironolactone-potassium-over-4.5-and-more") for _ in range(3)]
    made += [ids.next("finding-spironolactone-potassium-over-4.5-and-other")]
    assert all(len(i) <= MAX_FACT_ID_CHARS for i in made)
    assert len(set(made)) == len(made)
    assert ids.next("finding-at-target") == "finding-at-target-1"
    for case in load_cases():
        if case.request is None or "prefetch" not in case.request:
            continue
        try:
            facts = _facts(pipeline, case.id)
        except Exception:  # refused inputs: no facts
            continue
        assert all(len(f.id) <= MAX_FACT_ID_CHARS for f in facts.items)
