"""Stop conditions (models.guideline.stops) and the pathway status of the assessment.

Hazards H-03 to H-07 of docs/safety/hazard-log.md: each stop at and just past its boundary,
and the assessment never ranks options when one holds.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fhir_mappings.features import FeatureVector, Provenance
from models.assessment import assess
from models.assessment_document import assessment_document
from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.guideline.stops import Urgency, stop_conditions
from models.guideline.targets import Setting
from models.scorer import Scorer
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D

ACEI, ARB, CCB, THZ = D.ACE_INHIBITOR, D.ARB, D.CCB, D.THIAZIDE_LIKE


def dated(p: FeatureVector, **days_old: int) -> FeatureVector:
    """``p`` with its results dated: feature -> days before the assessment date."""
    prov = tuple(Provenance(f, f"Observation/{f}", p.as_of.fromordinal(p.as_of.toordinal() - d))
                 for f, d in days_old.items())
    return replace(p, provenance=p.provenance + prov)


def codes(p: object) -> list[str]:
    assert hasattr(p, "values")
    target = NICE.target(p, Setting.CLINIC)  # type: ignore[arg-type]
    return [s.code for s in stop_conditions(p, target)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("sbp", "dbp", "stop"), [
    (180, 100, True), (179, 119, False), (150, 120, True), (230, 130, True)])
def test_severe_hypertension_on_systolic_or_diastolic(sbp: float, dbp: float,
                                                       stop: bool) -> None:
    assert ("severe-hypertension" in codes(patient(sbp_clinic=sbp, dbp_clinic=dbp))) is stop


@pytest.mark.parametrize(("k", "code"), [
    (6.8, "hyperkalaemia-emergency"), (6.5, "hyperkalaemia-emergency"), (6.2, "hyperkalaemia"),
    (6.0, "hyperkalaemia"), (5.9, None)])
def test_potassium_bands(k: float, code: str | None) -> None:
    found = codes(patient({ACEI: 1.0}, potassium=k))
    assert found == ([code] if code else [])


def test_hyperkalaemia_holds_the_potassium_raising_drugs_taken() -> None:
    p = dated(patient({ACEI: 1.0, CCB: 1.0}, potassium=6.2), potassium=2)
    (stop,) = stop_conditions(p, NICE.target(p, Setting.CLINIC))
    assert stop.urgency is Urgency.CRITICAL
    assert stop.withdraw == frozenset({ACEI})
    assert ARB in stop.avoid


@pytest.mark.parametrize(("k", "prev", "regimen", "stop"), [
    (5.7, 5.2, {ACEI: 1.0}, True), (5.7, 6.0, {ACEI: 1.0}, False), (5.7, None, {ACEI: 1.0}, False),
    (5.7, 5.2, {CCB: 1.0}, False), (5.5, 5.0, {ARB: 1.0}, True), (5.4, 5.0, {ARB: 1.0}, False)])
def test_rising_potassium_on_a_potassium_raising_drug(k: float, prev: float | None,
                                                      regimen: dict[D, float],
                                                      stop: bool) -> None:
    found = codes(patient(regimen, potassium=k, potassium_previous=prev))
    assert ("potassium-rising" in found) is stop


@pytest.mark.parametrize(("egfr", "dialysis", "stop"), [
    (14, 0, True), (15, 0, False), (40, 1, True), (None, 1, True)])
def test_kidney_failure(egfr: float | None, dialysis: int, stop: bool) -> None:
    assert ("kidney-failure" in codes(patient(egfr=egfr, dialysis=dialysis))) is stop


def test_pregnancy_on_an_ace_inhibitor_is_critical_and_withdraws_it() -> None:
    p = patient({ACEI: 1.0}, sex_female=1, age=32, pregnancy=1)
    (stop,) = stop_conditions(p, NICE.target(p, Setting.CLINIC))
    assert stop.code == "pregnancy"
    assert stop.urgency is Urgency.CRITICAL
    assert stop.withdraw == frozenset({ACEI})
    assert "135/85" in stop.action
    assert "NG133" in str(stop.citation)
    assert "1.1.1" not in str(stop.citation)


def test_breastfeeding_is_not_a_stop() -> None:
    assert codes(patient(sex_female=1, age=32, breastfeeding=1)) == []


@pytest.mark.parametrize(("sbp", "regimen", "code", "urgency"), [
    (96, {ACEI: 1.0, CCB: 1.0, THZ: 1.0}, "low-bp", Urgency.WARNING),
    (86, {ACEI: 1.0}, "low-bp", Urgency.CRITICAL),
    (104, {ACEI: 1.0, CCB: 1.0}, "overtreatment", Urgency.WARNING),
])
def test_low_blood_pressure(sbp: float, regimen: dict[D, float], code: str,
                            urgency: Urgency) -> None:
    p = patient(regimen, sbp_clinic=sbp, dbp_clinic=60, days_since_bp=3)
    stops = stop_conditions(p, NICE.target(p, Setting.CLINIC))
    assert [(s.code, s.urgency) for s in stops] == [(code, urgency)]


@pytest.mark.parametrize(("sbp", "age", "drugs", "stop"), [
    (109, 60, 2, True), (110, 60, 2, False), (104, 60, 1, False), (119, 84, 2, True),
    (121, 84, 3, False)])
def test_overtreatment_is_relative_to_the_target(sbp: float, age: float, drugs: int,
                                                 stop: bool) -> None:
    regimen = dict(list({ACEI: 1.0, CCB: 1.0, THZ: 1.0}.items())[:drugs])
    assert ("overtreatment" in codes(patient(regimen, sbp_clinic=sbp, dbp_clinic=70,
                                             age=age))) is stop


def test_postural_hypotension_only_stops_treatment_changes_when_treated() -> None:
    assert "postural-hypotension" in codes(patient({CCB: 1.0}, orthostatic_hypotension=1))
    assert "postural-hypotension" not in codes(patient(orthostatic_hypotension=1))


def test_a_stop_ends_the_assessment_without_a_ranking(scorer: Scorer,
                                                      explainer: Explainer) -> None:
    """K+ 6.2 on ramipril: status pathway, no option ranked, the stop in the document."""
    a = assess(patient({ACEI: 1.0}, potassium=6.2), scorer, explainer)
    assert a.status == "pathway"
    assert a.options == ()
    assert a.first is None
    doc = assessment_document(a)
    assert doc["stops"][0]["code"] == "hyperkalaemia"
    assert doc["stops"][0]["withdraw"] == ["ace_inhibitor"]


def test_a_stop_is_reported_even_when_data_is_missing(scorer: Scorer,
                                                      explainer: Explainer) -> None:
    """230/130 with the medication list unavailable: the emergency is said, and the missing
    list is a note, not a silent omission."""
    p = patient(sbp_clinic=230, dbp_clinic=130)
    p = type(p)(p.as_of, p.values, p.regimen, p.deceased, p.days_since_bp, p.provenance,
                {"medications": "FHIR server answered 500"})
    a = assess(p, scorer, explainer)
    assert a.status == "pathway"
    assert any("medication list" in f.message for f in a.findings)


def test_unavailable_medications_are_never_none(scorer: Scorer, explainer: Explainer) -> None:
    p = patient()
    p = type(p)(p.as_of, p.values, p.regimen, p.deceased, p.days_since_bp, p.provenance,
                {"medications": "prefetch key 'medications' was not sent"})
    a = assess(p, scorer, explainer)
    assert a.status == "cannot_assess"
    assert a.options == ()
    assert "medication list" in a.reasons[0]


def test_children_and_the_deceased_are_not_assessed_even_with_a_stop(
        scorer: Scorer, explainer: Explainer) -> None:
    assert assess(patient(age=15, sbp_clinic=200), scorer, explainer).status == "cannot_assess"
    assert assess(patient(deceased=True, sbp_clinic=200), scorer,
                  explainer).status == "cannot_assess"


def test_breastfeeding_blocks_arbs_diuretics_and_alpha_blockers(
        scorer: Scorer, explainer: Explainer) -> None:
    """NG133 postnatal section: ARBs and diuretics avoided, doxazosin contraindicated in
    lactation; an ACE inhibitor or a CCB may come first."""
    a = assess(patient(sex_female=1, age=34, breastfeeding=1), scorer, explainer)
    assert a.status == "assessed"
    blocked = {o.option.id for o in a.options if o.blocked}
    for o in a.options:
        if o.option.started_set & {ARB, THZ, D.SPIRONOLACTONE, D.ALPHA_BLOCKER}:
            assert o.option.id in blocked, o.option.label
    assert a.first is not None
    assert not a.first.option.started_set & {ARB, THZ, D.SPIRONOLACTONE, D.ALPHA_BLOCKER}
    assert any(f.code == "breastfeeding" for f in a.findings)


def test_unavailable_labs_and_rejected_values_are_said(scorer: Scorer,
                                                       explainer: Explainer) -> None:
    p = patient(potassium=None, egfr=None)
    p = type(p)(p.as_of, p.values, p.regimen, p.deceased, p.days_since_bp, p.provenance,
                {"labs": "FHIR server answered 500"},
                ("Observation/k9: potassium 60 mmol/L is outside the plausible range.",))
    a = assess(p, scorer, explainer)
    assert a.status == "assessed"
    labs = next(f for f in a.findings if f.code == "labs-unavailable")
    assert "serum potassium" in labs.message
    assert "eGFR" in labs.message
    assert "egfr" not in labs.message  # named as a clinician reads it, not by feature id
    assert any(f.code == "data-quality" and "potassium 60" in f.message for f in a.findings)
    assert assessment_document(a)["unavailable"] == {"labs": "FHIR server answered 500"}


def test_an_old_result_is_a_warning_to_repeat_it_not_an_emergency() -> None:
    """K+ 6.2 ten months ago, or 230/130 a month ago: repeat it today (warning, dated), not
    'ECG today' on a result nobody can act on as if it were new."""
    p = dated(patient({ACEI: 1.0}, potassium=6.2), potassium=300)
    (stop,) = stop_conditions(p, NICE.target(p, Setting.CLINIC))
    assert stop.urgency is Urgency.WARNING
    assert "300 days old: repeat it today" in stop.summary
    recent = dated(patient({ACEI: 1.0}, potassium=6.2), potassium=3)
    assert stop_conditions(recent, None)[0].urgency is Urgency.CRITICAL
    old_bp = patient(sbp_clinic=230, dbp_clinic=130, days_since_bp=30)
    (severe,) = stop_conditions(old_bp, None)
    assert severe.urgency is Urgency.WARNING
    new_bp = patient(sbp_clinic=230, dbp_clinic=130, days_since_bp=1)
    assert stop_conditions(new_bp, None)[0].urgency is Urgency.CRITICAL


def test_severe_bp_in_pregnancy_follows_ng133_not_ng136() -> None:
    """182/112 in pregnancy: same-day maternity assessment (NG133 severe >= 160/110), never
    the NG136 'repeat within 7 days'; 164/100 is severe in pregnancy too."""
    for sbp, dbp in ((182, 112), (164, 100)):
        p = patient(sex_female=1, age=31, pregnancy=1, sbp_clinic=sbp, dbp_clinic=dbp,
                    days_since_bp=1)
        found = stop_conditions(p, None)
        assert [s.code for s in found] == ["pregnancy-severe-hypertension"]
        assert found[0].urgency is Urgency.CRITICAL
        assert "maternity" in found[0].action
        assert "7 days" not in found[0].action


def test_low_bp_cautions_orders_instead_of_forbidding_them() -> None:
    """A heart-failure beta-blocker at 96/60 is not 'not now': the stop asks whether an order
    is for BP (caution), and forbids nothing by itself."""
    p = patient({ACEI: 1.0, CCB: 1.0, THZ: 1.0}, sbp_clinic=96, dbp_clinic=60, days_since_bp=2)
    (stop,) = stop_conditions(p, NICE.target(p, Setting.CLINIC))
    assert stop.avoid == frozenset()
    assert D.BETA_BLOCKER in stop.caution
