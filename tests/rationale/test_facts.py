"""Facts of the typed assessment: stable ids, what is required, rounding as shown."""

from __future__ import annotations

from dataclasses import replace

from fhir_mappings.features import FeatureVector
from models.assessment import Assessment, AssessmentStatus, assess
from models.explainer import Explainer
from models.scorer import Scorer
from rationale.facts import FactKind, facts_of
from tests.factories import patient
from vocabulary.drug_classes import DrugClass


def _assess(scorer: Scorer, explainer: Explainer, fv: FeatureVector) -> Assessment:
    return assess(fv, scorer, explainer, explain_top=0)


def test_assessed_facts(scorer: Scorer, explainer: Explainer) -> None:
    a = _assess(scorer, explainer, patient({DrugClass.CCB: 1.0}, angioedema_history=1))
    assert a.status is AssessmentStatus.ASSESSED
    assert a.first is not None
    facts = facts_of(a)
    ids = [f.id for f in facts.items]
    assert len(ids) == len(set(ids))
    assert {"status", "bp", "regimen", "target", "step", "choice", "option-1"} <= set(ids)
    ranked = [o for o in a.options if o.rank is not None]
    assert {f"option-{o.rank}" for o in ranked[:3]} <= set(ids)
    required = {f.id for f in facts.required}
    assert {"target", "option-1"} <= required
    assert "bp" not in required
    assert "option-2" not in required
    # the ACE inhibitor is never started for this patient: a required contraindication that
    # names it
    blocked = [f for f in facts.items if f.kind is FactKind.CONTRAINDICATION]
    assert blocked
    assert all(f.required for f in blocked)
    assert any("ramipril" in f.keys and "ramipril" in f.text for f in blocked)
    first = facts.get("option-1")
    assert first is not None
    assert first.effect == a.first.expected_effect
    # rounded as shown: one decimal, signed
    assert f"{a.first.expected_effect:+.1f} mmHg" in first.text
    assert a.target is not None
    target = facts.get("target")
    assert target is not None
    assert target.numbers[:2] == (a.target.systolic, a.target.diastolic)
    assert "NICE NG136" in target.text
    assert "NICE" in target.terms


def test_ids_and_hash_are_stable(scorer: Scorer, explainer: Explainer) -> None:
    fv = patient({DrugClass.ACE_INHIBITOR: 1.0})
    one, two = facts_of(_assess(scorer, explainer, fv)), facts_of(_assess(scorer, explainer, fv))
    assert one == two
    assert len(one.assessment_hash) == 64
    other = facts_of(_assess(scorer, explainer, replace(fv, values={**fv.values,
                                                                    "sbp_clinic": 170.0})))
    assert other.assessment_hash != one.assessment_hash


def test_pathway_facts_require_every_stop(scorer: Scorer, explainer: Explainer) -> None:
    a = _assess(scorer, explainer, patient({DrugClass.ACE_INHIBITOR: 1.0}, potassium=6.8,
                                           sbp_clinic=190))
    assert a.status is AssessmentStatus.PATHWAY
    assert len(a.stops) >= 2
    facts = facts_of(a)
    stops = [f for f in facts.items if f.kind is FactKind.STOP]
    assert [f.id for f in stops] == [f"stop-{s.code}" for s in a.stops]
    assert all(f.required and f.keys for f in stops)
    assert facts.get("option-1") is None


def test_cannot_assess_facts_require_the_reasons(scorer: Scorer, explainer: Explainer) -> None:
    fv = replace(patient(sbp_clinic=None), unavailable={"medications": "timeout"})
    a = _assess(scorer, explainer, fv)
    assert a.status is AssessmentStatus.CANNOT_ASSESS
    facts = facts_of(a)
    required = {f.id: f for f in facts.required}
    assert {"missing-medications", "missing-bp"} <= set(required)
    assert len(required) == len(a.reasons)
    child = facts_of(_assess(scorer, explainer, patient(age=15)))
    (reason,) = child.required
    assert reason.id == "reason-1"
    assert reason.kind is FactKind.REASON
    assert "15" in reason.keys


def test_unavailable_labs_are_required(scorer: Scorer, explainer: Explainer) -> None:
    fv = replace(patient({DrugClass.CCB: 1.0}, potassium=None),
                 unavailable={"labs": "not sent"})
    facts = facts_of(_assess(scorer, explainer, fv))
    labs = facts.get("missing-labs")
    assert labs is not None
    assert labs.required
    assert labs.kind is FactKind.MISSING
