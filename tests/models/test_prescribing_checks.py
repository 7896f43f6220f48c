"""What a prescriber checks before stepping up (issue 11): stale labs, an ACE inhibitor with
an ARB already prescribed, four drugs uncontrolled, adherence, standing BP, the white-coat
effect, and NG106 first in HFrEF. Hazards H-20 to H-24 of docs/safety/hazard-log.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from fhir_mappings.features import Provenance
from models.assessment import assess
from models.explainer import Explainer
from models.guideline.findings import Severity
from models.guideline.nice import nice_preference, treatment_indication
from models.guideline.profiles import NICE
from models.guideline.safety import option_findings
from models.guideline.targets import Setting
from models.options import valid_options
from models.scorer import Scorer
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D

A, ARB, C, T, BB = D.ACE_INHIBITOR, D.ARB, D.CCB, D.THIAZIDE_LIKE, D.BETA_BLOCKER


def _codes(findings: object) -> list[str]:
    return [f.code for f in findings]  # type: ignore[attr-defined]


def test_a_potassium_months_old_is_rechecked_before_a_ras_blocker() -> None:
    p = patient(potassium=4.4)
    p = replace(p, provenance=(Provenance("potassium", "Observation/k", date(2026, 3, 1)),))
    start = next(o for o in valid_options({}) if o.id == "opt-start-ace_inhibitor")
    found = {f.code: f for f in option_findings(p, start)}
    assert found["labs-stale"].severity is Severity.WARN
    assert "potassium 268 days old" in found["labs-stale"].message
    ccb = next(o for o in valid_options({}) if o.id == "opt-start-ccb")
    assert "labs-stale" not in _codes(option_findings(p, ccb))
    fresh = replace(p, provenance=(Provenance("potassium", "Observation/k", date(2026, 11, 1)),))
    assert "labs-stale" not in _codes(option_findings(fresh, start))


def test_patient_checks(scorer: Scorer, explainer: Explainer) -> None:
    """On ACEi + ARB: stop one; uncontrolled on four drugs: specialist advice; stepping up:
    adherence first; T2DM: standing BP."""
    a = assess(patient({A: 1.0, ARB: 1.0, C: 1.0, T: 1.0}, diabetes_t2=1), scorer, explainer)
    codes = _codes(a.findings)
    for code in ("acei-plus-arb-current", "specialist-advice", "check-adherence",
                 "measure-standing-bp"):
        assert code in codes, codes


def test_home_bp_at_target_stops_an_escalation_on_clinic_bp() -> None:
    """White-coat effect: clinic 158/92 but a home mean of 126: no step-up, no start."""
    for regimen in ({C: 1.0}, {}):
        p = patient(regimen, sbp_clinic=158, dbp_clinic=92, sbp_home=126, dbp_home=78,
                    home_bp_series=1)
        ind = treatment_indication(p, NICE.target(p, Setting.CLINIC))
        assert ind is not None
        assert ind.code == "white-coat"
    # two home readings are not a monitoring series: they do not veto the clinic BP
    few = patient({C: 1.0}, sbp_clinic=158, dbp_clinic=92, sbp_home=126, home_bp_series=0)
    ind = treatment_indication(few, NICE.target(few, Setting.CLINIC))
    assert ind is not None
    assert ind.code == "step-up"
    p = patient({C: 1.0}, sbp_clinic=158, dbp_clinic=92, sbp_home=142)
    ind = treatment_indication(p, NICE.target(p, Setting.CLINIC))
    assert ind is not None
    assert ind.code == "step-up"


@pytest.mark.parametrize(("clinic", "home", "code"), [
    ((150, 84), (128, None), "white-coat"),   # clinic diastolic at target: systolic decides
    ((150, 96), (128, 80), "white-coat"),     # both components at target at home
    ((150, 96), (128, None), "step-up"),      # home diastolic unknown: clinic 96 stands
    ((150, 96), (128, 88), "step-up"),        # home diastolic 88 is above 85
    ((150, 84), (136, 70), "step-up"),        # home systolic 136 is above 135
])
def test_white_coat_needs_every_raised_component_at_target_at_home(
        clinic: tuple[float, float], home: tuple[float, float | None], code: str) -> None:
    """NG136 1.4.22: the out-of-office series must be at target (135/85 under NICE) in each
    component that is above target in the clinic."""
    p = patient({C: 1.0}, sbp_clinic=clinic[0], dbp_clinic=clinic[1], sbp_home=home[0],
                dbp_home=home[1], home_bp_series=1)
    ind = treatment_indication(p, NICE.target(p, Setting.CLINIC))
    assert ind is not None
    assert ind.code == code


def test_hfref_goes_to_ng106_first() -> None:
    """HFrEF untreated: ACE inhibitor/ARB and a beta-blocker (NG106 via NG136 1.4.31), not a
    thiazide-like diuretic; with both, the usual steps."""
    pref = nice_preference(patient(hfref=1, heart_failure=1))
    assert pref.classes == frozenset({A, BB})
    black = nice_preference(patient(hfref=1, heart_failure=1, ethnicity_black=1))
    assert black.classes == frozenset({A, BB})  # NG106: no ethnicity rule in HFrEF
    cough = nice_preference(patient(hfref=1, heart_failure=1, ace_inhibitor_intolerance=1))
    assert cough.classes == frozenset({ARB, BB})
    assert "1.4.31" in str(pref.citation)
    on_acei = nice_preference(patient({A: 1.0}, hfref=1, heart_failure=1))
    assert on_acei.classes == frozenset({BB})
    both = nice_preference(patient({A: 1.0, BB: 1.0}, hfref=1, heart_failure=1))
    assert BB not in both.classes


def test_a_current_drug_a_rule_forbids_is_named_for_review(scorer: Scorer,
                                                          explainer: Explainer) -> None:
    """Issue 11 item 1 (the prescriber's action): gout on a thiazide-like diuretic, or a heart
    rate of 48 on a beta-blocker, is said with 'review it: reduce or stop'."""
    a = assess(patient({T: 1.0, C: 1.0}, gout=1), scorer, explainer)
    found = [f for f in a.findings if f.code == "current-contraindicated"]
    assert found
    assert "indapamide" in found[0].message
    assert "reduce or stop" in found[0].message
    b = assess(patient({BB: 1.0, C: 1.0}, heart_rate=46), scorer, explainer)
    assert any(f.code == "current-contraindicated" and "bisoprolol" in f.message
               for f in b.findings)
    # a rate in the 50s on a beta-blocker is its intended effect: not "reduce or stop"
    c = assess(patient({BB: 1.0, C: 1.0}, heart_rate=55), scorer, explainer)
    assert not any(f.code == "current-contraindicated" for f in c.findings)
    healthy = assess(patient({C: 1.0}), scorer, explainer)
    assert not any(f.code == "current-contraindicated" for f in healthy.findings)


def test_aliskiren_with_a_current_ras_blocker_says_stop_aliskiren(
        scorer: Scorer, explainer: Explainer) -> None:
    """MHRA 2012: the combination is the problem; the kidney-protecting ACE inhibitor stays
    (options keeping it are not blocked), aliskiren is the one to stop."""
    a = assess(patient({A: 1.0}, aliskiren=1, diabetes_t2=1), scorer, explainer)
    assert any(f.code == "aliskiren-with-ras-current" for f in a.findings)
    keep = next(o for o in a.options if o.option.id == "opt-add-ccb")
    assert not keep.blocked
