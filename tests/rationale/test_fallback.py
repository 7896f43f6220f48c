"""The deterministic rationale passes the verifier for every clinical-safety case, the example
and a few hundred simulated patients (and the safety matrix's contraindicating conditions)."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest

from evaluation.cohort import feature_vector
from evaluation.rationale_suite import DEFAULT_SAFETY_DIR, safety_cases
from evaluation.safety_matrix import matrix_patients
from models.explainer import Explainer
from models.guideline.profiles import ESC, NICE
from models.pipeline import Pipeline
from models.scorer import Scorer
from models.training.simulator import simulate_cohort
from rationale.facts import Facts, facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_FACTS_PER_SENTENCE, MAX_SENTENCE_CHARS, MAX_SENTENCES
from rationale.verifier import verify_rationale

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patient-view.json"


@pytest.fixture(scope="module")
def pipeline(scorer: Scorer, explainer: Explainer) -> Pipeline:
    return Pipeline(scorer, explainer, NICE, explain_top=0)


def _problems(facts: Facts) -> list[str]:
    r = deterministic_rationale(facts)
    assert 1 <= len(r.sentences) <= MAX_SENTENCES
    assert all(len(s.text) <= MAX_SENTENCE_CHARS and 1 <= len(s.facts)
               <= MAX_FACTS_PER_SENTENCE for s in r.sentences)
    return [p.detail for p in verify_rationale(facts, r).problems]


def test_every_safety_case(pipeline: Pipeline) -> None:
    cases = safety_cases(pipeline, DEFAULT_SAFETY_DIR)
    assert len(cases) >= 70  # all but the refused inputs
    bad = {c.id: p for c in cases if (p := _problems(c.facts))}
    assert not bad


def test_the_example(pipeline: Pipeline) -> None:
    doc = json.loads(EXAMPLE.read_text())
    facts = facts_of(pipeline.assess_fhir(doc).assessment)
    assert not _problems(facts)
    text = deterministic_rationale(facts).text
    first = facts.get("option-1")
    assert first is not None
    assert first.keys[0] in text


@pytest.mark.slow
def test_simulated_patients_and_the_safety_matrix(pipeline: Pipeline) -> None:
    esc = Pipeline(pipeline.scorer, pipeline.explainer, ESC, explain_top=0)
    bad = {}
    for site in ("internal", "external"):
        cohort = simulate_cohort(80, site, 11)
        for i in range(80):
            fv = feature_vector(cohort.features[i], cohort.current_doses[i])
            for p in (pipeline, esc):
                if problems := _problems(facts_of(p.assess_features(fv).assessment)):
                    bad[f"{site}-{i}-{p.profile.name}"] = problems
    for i, fv in enumerate(islice(matrix_patients(), 0, 2800, 20)):
        if problems := _problems(facts_of(pipeline.assess_features(fv).assessment)):
            bad[f"matrix-{i}"] = problems
    assert not bad
