"""Contraindications and cautions: one table row per rule and threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from fhir_mappings.features import FeatureVector, Provenance
from models.guideline.findings import Severity
from models.guideline.safety import option_findings
from models.options import TreatmentOption, valid_options
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D

A, ARB, C, T = D.ACE_INHIBITOR, D.ARB, D.CCB, D.THIAZIDE_LIKE
BB, S, AL = D.BETA_BLOCKER, D.SPIRONOLACTONE, D.ALPHA_BLOCKER
ACD = {A: 1.0, C: 1.0, T: 1.0}


def _option(regimen: dict[D, float], option_id: str) -> TreatmentOption:
    return next(o for o in valid_options(regimen) if o.id == option_id)


# (case, regimen, option id, patient overrides, expected code, expected severity or None=absent)
CASES = [
    ("pregnancy blocks ACEi", {}, "opt-start-ace_inhibitor", {"pregnancy": 1, "sex_female": 1},
     "ras-pregnancy", Severity.BLOCK),
    ("pregnancy blocks ARB", {}, "opt-start-arb", {"pregnancy": 1, "sex_female": 1},
     "ras-pregnancy", Severity.BLOCK),
    ("pregnancy blocks continuing ACEi", {A: 1.0}, "opt-add-ccb",
     {"pregnancy": 1, "sex_female": 1}, "ras-pregnancy", Severity.BLOCK),
    ("pregnancy: CCB fine", {}, "opt-start-ccb", {"pregnancy": 1, "sex_female": 1},
     "ras-pregnancy", None),
    ("woman under 50: counsel", {}, "opt-start-arb", {"sex_female": 1, "age": 35},
     "ras-childbearing", Severity.WARN),
    ("angioedema blocks ACEi", {}, "opt-start-ace_inhibitor", {"angioedema_history": 1},
     "acei-angioedema", Severity.BLOCK),
    ("angioedema: ARB is a caution", {}, "opt-start-arb", {"angioedema_history": 1},
     "arb-angioedema", Severity.WARN),
    ("K 5.1 blocks starting ACEi", {}, "opt-start-ace_inhibitor", {"potassium": 5.1},
     "potassium-high-start", Severity.BLOCK),
    ("K 5.0 does not block ACEi", {}, "opt-start-ace_inhibitor", {"potassium": 5.0},
     "potassium-high-start", None),
    ("K 5.1 blocks starting spironolactone", ACD, "opt-add-spironolactone", {"potassium": 5.1},
     "potassium-high-start", Severity.BLOCK),
    ("K 6.0 blocks continuing ACEi", {A: 1.0}, "opt-add-ccb", {"potassium": 6.0},
     "potassium-stop", Severity.BLOCK),
    ("K 5.5 blocks increasing ACEi", {A: 1.0}, "opt-titrate-ace_inhibitor",
     {"potassium": 5.5}, "potassium-high-increase", Severity.BLOCK),
    ("K 5.3 blocks increasing spironolactone", {**ACD, S: 1.0}, "opt-titrate-spironolactone",
     {"potassium": 5.3}, "potassium-high-increase", Severity.BLOCK),
    ("eGFR 22 blocks increasing spironolactone", {**ACD, S: 1.0}, "opt-titrate-spironolactone",
     {"egfr": 22}, "spironolactone-egfr-under-30", Severity.BLOCK),
    ("HR 48 blocks increasing a beta-blocker", {**ACD, BB: 1.0}, "opt-titrate-beta_blocker",
     {"heart_rate": 48}, "beta-blocker-bradycardia", Severity.BLOCK),
    ("gout blocks increasing thiazide", {T: 1.0}, "opt-titrate-thiazide_like", {"gout": 1},
     "thiazide-gout", Severity.BLOCK),
    ("Na 129 blocks increasing thiazide", {T: 1.0}, "opt-titrate-thiazide_like",
     {"sodium": 129}, "thiazide-hyponatraemia", Severity.BLOCK),
    ("lithium blocks increasing thiazide", {T: 1.0}, "opt-titrate-thiazide_like",
     {"lithium": 1}, "thiazide-lithium", Severity.BLOCK),
    ("woman under 50: counsel on increasing ramipril", {A: 1.0}, "opt-titrate-ace_inhibitor",
     {"sex_female": 1, "age": 35}, "ras-childbearing", Severity.WARN),
    ("asthma blocks increasing a beta-blocker", {**ACD, BB: 1.0}, "opt-titrate-beta_blocker",
     {"asthma": 1}, "beta-blocker-asthma", Severity.BLOCK),
    ("K unknown: check before ACEi", {}, "opt-start-ace_inhibitor", {"potassium": None},
     "potassium-unknown", Severity.WARN),
    ("K unknown: check before spironolactone", ACD, "opt-add-spironolactone",
     {"potassium": None}, "potassium-unknown", Severity.WARN),
    ("K unknown: CCB needs no potassium", {}, "opt-start-ccb", {"potassium": None},
     "potassium-unknown", None),
    ("K 4.7: spironolactone is a caution at step 4", ACD, "opt-add-spironolactone",
     {"potassium": 4.7}, "spironolactone-potassium-over-4.5", Severity.WARN),
    ("K 3.3 blocks a thiazide until corrected", {}, "opt-start-thiazide_like",
     {"potassium": 3.3}, "thiazide-hypokalaemia", Severity.BLOCK),
    ("K supplement with an ACEi: hyperkalaemia caution", {}, "opt-start-ace_inhibitor",
     {"potassium_supplement": 1}, "ras-k-supplement", Severity.WARN),
    ("eGFR 29 blocks thiazide", {}, "opt-start-thiazide_like", {"egfr": 29},
     "thiazide-egfr-under-30", Severity.BLOCK),
    ("eGFR 30 allows thiazide", {}, "opt-start-thiazide_like", {"egfr": 30},
     "thiazide-egfr-under-30", None),
    ("eGFR 25 blocks spironolactone", ACD, "opt-add-spironolactone", {"egfr": 25},
     "spironolactone-egfr-under-30", Severity.BLOCK),
    ("eGFR 40: spironolactone caution", ACD, "opt-add-spironolactone", {"egfr": 40},
     "spironolactone-reduced-egfr", Severity.WARN),
    ("eGFR 25: ACEi needs monitoring", {}, "opt-start-ace_inhibitor", {"egfr": 25},
     "ras-egfr-under-30", Severity.WARN),
    ("eGFR unknown: check first", {}, "opt-start-arb", {"egfr": None}, "egfr-unknown",
     Severity.WARN),
    ("Na 134 blocks thiazide", {}, "opt-start-thiazide_like", {"sodium": 134},
     "thiazide-hyponatraemia", Severity.BLOCK),
    ("Na 135 allows thiazide", {}, "opt-start-thiazide_like", {"sodium": 135},
     "thiazide-hyponatraemia", None),
    ("Na unknown: check before thiazide", {}, "opt-start-thiazide_like", {"sodium": None},
     "sodium-unknown", Severity.WARN),
    ("gout blocks thiazide", {}, "opt-start-thiazide_like", {"gout": 1}, "thiazide-gout",
     Severity.BLOCK),
    ("lithium blocks thiazide", {}, "opt-start-thiazide_like", {"lithium": 1},
     "thiazide-lithium", Severity.BLOCK),
    ("lithium: ACEi caution", {}, "opt-start-ace_inhibitor", {"lithium": 1}, "ras-lithium",
     Severity.WARN),
    ("HR 59 blocks beta-blocker", ACD, "opt-add-beta_blocker", {"heart_rate": 59},
     "beta-blocker-bradycardia", Severity.BLOCK),
    ("HR 60 allows beta-blocker", ACD, "opt-add-beta_blocker", {"heart_rate": 60},
     "beta-blocker-bradycardia", None),
    ("HR unknown: check pulse", ACD, "opt-add-beta_blocker", {"heart_rate": None},
     "heart-rate-unknown", Severity.WARN),
    ("heart block blocks beta-blocker", ACD, "opt-add-beta_blocker", {"heart_block": 1},
     "beta-blocker-heart-block", Severity.BLOCK),
    ("asthma blocks beta-blocker", ACD, "opt-add-beta_blocker", {"asthma": 1},
     "beta-blocker-asthma", Severity.BLOCK),
    ("COPD: beta-blocker caution", ACD, "opt-add-beta_blocker", {"copd": 1},
     "beta-blocker-copd", Severity.WARN),
    ("verapamil blocks beta-blocker", ACD, "opt-add-beta_blocker", {"non_dhp_ccb": 1},
     "beta-blocker-verapamil", Severity.BLOCK),
    ("orthostatic hypotension blocks alpha-blocker", ACD, "opt-add-alpha_blocker",
     {"orthostatic_hypotension": 1}, "alpha-blocker-orthostatic", Severity.BLOCK),
    ("age 80: alpha-blocker caution", ACD, "opt-add-alpha_blocker", {"age": 80},
     "alpha-blocker-elderly", Severity.WARN),
    ("aortic stenosis blocks CCB", {}, "opt-start-ccb", {"aortic_stenosis": 1},
     "ccb-aortic-stenosis", Severity.BLOCK),
    ("K supplement blocks spironolactone", ACD, "opt-add-spironolactone",
     {"potassium_supplement": 1}, "spironolactone-k-supplement", Severity.BLOCK),
    ("spironolactone with a RAS blocker: caution", ACD, "opt-add-spironolactone", {},
     "spironolactone-with-ras", Severity.WARN),
    ("NSAID + RAS + diuretic", {A: 1.0}, "opt-add-thiazide_like", {"nsaid": 1},
     "triple-whammy", Severity.WARN),
    ("ACEi intolerance: ARB instead", {}, "opt-start-ace_inhibitor",
     {"ace_inhibitor_intolerance": 1}, "acei-intolerance", Severity.WARN),
    ("Black origin: ARB over ACEi", {}, "opt-start-ace_inhibitor", {"ethnicity_black": 1},
     "acei-black-origin", Severity.INFO),
    ("HFrEF: stopping a beta-blocker", {BB: 1.0}, "opt-switch-beta_blocker-to-ccb",
     {"hfref": 1, "heart_failure": 1}, "hfref-stops-prognostic", Severity.WARN),
    ("HFrEF: stopping spironolactone (an MRA, NG106 2025)", {**ACD, S: 1.0},
     "opt-switch-spironolactone-to-beta_blocker", {"hfref": 1, "heart_failure": 1},
     "hfref-stops-prognostic", Severity.WARN),
    ("CKD with ACR 45: switching the ACEi away", {A: 1.0}, "opt-switch-ace_inhibitor-to-ccb",
     {"ckd": 1, "urine_acr": 45}, "removes-renoprotection", Severity.WARN),
    ("CKD with ACR 10 (no diabetes): switch allowed", {A: 1.0},
     "opt-switch-ace_inhibitor-to-ccb", {"ckd": 1, "urine_acr": 10}, "removes-renoprotection",
     None),
    ("diabetic CKD with ACR 5: switching the ARB away", {ARB: 1.0}, "opt-switch-arb-to-ccb",
     {"ckd": 1, "urine_acr": 5, "diabetes_t2": 1}, "removes-renoprotection", Severity.WARN),
    ("four drugs: a fifth is a caution", {**ACD, BB: 1.0}, "opt-add-spironolactone", {},
     "fifth-drug", Severity.WARN),
    ("three drugs: a fourth is not a fifth", ACD, "opt-add-spironolactone", {}, "fifth-drug",
     None),
    ("SBP 96 blocks a beta-blocker", ACD, "opt-add-beta_blocker", {"sbp_clinic": 96},
     "beta-blocker-hypotension", Severity.BLOCK),
    ("heart failure: alpha-blocker caution", ACD, "opt-add-alpha_blocker",
     {"heart_failure": 1}, "alpha-blocker-heart-failure", Severity.WARN),
    ("aliskiren with diabetes blocks an ACEi", {}, "opt-start-ace_inhibitor",
     {"aliskiren": 1, "diabetes_t2": 1}, "aliskiren-ras", Severity.BLOCK),
    ("aliskiren at eGFR 50 blocks an ARB", {}, "opt-start-arb",
     {"aliskiren": 1, "egfr": 50}, "aliskiren-ras", Severity.BLOCK),
    ("aliskiren at eGFR 80: ARB not recommended", {}, "opt-start-arb",
     {"aliskiren": 1, "egfr": 80}, "aliskiren-ras", Severity.WARN),
    ("aliskiren: a CCB is fine", {}, "opt-start-ccb", {"aliskiren": 1}, "aliskiren-ras",
     None),
    ("salbutamol without a diagnosis: beta-blocker caution", ACD, "opt-add-beta_blocker",
     {"airways_therapy": 1}, "beta-blocker-airways-therapy", Severity.WARN),
    ("asthma coded: the asthma block, not the therapy caution", ACD, "opt-add-beta_blocker",
     {"airways_therapy": 1, "asthma": 1}, "beta-blocker-airways-therapy", None),
    ("indapamide 5 mg is above its licensed maximum", {T: 1.0}, "opt-titrate-thiazide_like",
     {}, "above-licensed-maximum", Severity.BLOCK),
    ("ramipril 10 mg is within its licence", {A: 1.0}, "opt-titrate-ace_inhibitor", {},
     "above-licensed-maximum", None),
    ("renal artery stenosis blocks starting an ARB", {}, "opt-start-arb",
     {"renal_artery_stenosis": 1}, "ras-renal-artery-stenosis", Severity.BLOCK),
    ("renal artery stenosis blocks increasing ramipril", {A: 1.0}, "opt-titrate-ace_inhibitor",
     {"renal_artery_stenosis": 1}, "ras-renal-artery-stenosis", Severity.BLOCK),
    ("renal artery stenosis: continuing ramipril is a caution", {A: 1.0}, "opt-add-ccb",
     {"renal_artery_stenosis": 1}, "ras-renal-artery-stenosis", Severity.WARN),
    ("sick sinus blocks a beta-blocker", ACD, "opt-add-beta_blocker", {"sick_sinus": 1},
     "beta-blocker-sick-sinus", Severity.BLOCK),
    ("eGFR 45: ramipril 10 mg is a renal-dose caution", {A: 1.0}, "opt-titrate-ace_inhibitor",
     {"egfr": 45}, "renal-dose-ramipril", Severity.WARN),
    ("eGFR 75: no renal dose note", {A: 1.0}, "opt-titrate-ace_inhibitor", {"egfr": 75},
     "renal-dose-ramipril", None),
    ("eGFR 45: candesartan starts at 4 mg", {}, "opt-start-arb", {"egfr": 45},
     "renal-dose-candesartan", Severity.INFO),
    ("anaphylaxis to an ACEi blocks an ACEi", {}, "opt-start-ace_inhibitor",
     {"ace_inhibitor_hypersensitivity": 1}, "acei-hypersensitivity", Severity.BLOCK),
    ("sacubitril/valsartan: switching to an ACEi is blocked", {ARB: 1.0},
     "opt-switch-arb-to-ace_inhibitor", {"sacubitril_valsartan": 1}, "acei-sacubitril",
     Severity.BLOCK),
    ("sacubitril/valsartan: not titrated as an ARB", {ARB: 1.0}, "opt-titrate-arb",
     {"sacubitril_valsartan": 1}, "sacubitril-titration", Severity.BLOCK),
    ("aortic stenosis blocks increasing amlodipine", {C: 1.0}, "opt-titrate-ccb",
     {"aortic_stenosis": 1}, "ccb-aortic-stenosis", Severity.BLOCK),
    ("undated acute MI: check before starting a CCB", {}, "opt-start-ccb",
     {"acute_coronary": 1}, "ccb-coronary-undated", Severity.WARN),
    ("undated acute MI: an ACEi is not a CCB", {}, "opt-start-ace_inhibitor",
     {"acute_coronary": 1}, "ccb-coronary-undated", None),
    ("diltiazem: amlodipine on top is a caution", {}, "opt-start-ccb", {"non_dhp_ccb": 1},
     "ccb-with-verapamil-diltiazem", Severity.WARN),
    ("diltiazem: an ACEi is no second CCB", {}, "opt-start-ace_inhibitor", {"non_dhp_ccb": 1},
     "ccb-with-verapamil-diltiazem", None),
]


@pytest.mark.parametrize(("regimen", "option_id", "overrides", "code", "severity"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(regimen: dict[D, float], option_id: str, overrides: dict[str, float | None],
                    code: str, severity: Severity | None) -> None:
    """Each rule fires with its severity exactly when its condition holds."""
    p = patient(regimen, **overrides)
    findings = {f.code: f for f in option_findings(p, _option(regimen, option_id))}

    if severity is None:
        assert code not in findings
    else:
        assert code in findings, sorted(findings)
        assert findings[code].severity is severity
        assert findings[code].citation.guideline
        assert findings[code].citation.recommendation


def test_dual_ras_blockade_is_blocked_even_if_an_option_carried_it() -> None:
    """A regimen with both an ACE inhibitor and an ARB is blocked (NICE NG136 1.4.34)."""
    both = TreatmentOption("x", valid_options({})[0].action, "x", (A, ARB),
                           (0.0,) * 7, (1.0, 1.0, 0, 0, 0, 0, 0))

    findings = option_findings(patient(), both)

    assert [f.code for f in findings if f.severity is Severity.BLOCK] == ["acei-plus-arb"]
    assert str(findings[0].citation) == "NICE NG136 1.4.34"


def test_a_healthy_patient_has_no_block_on_any_first_line_option() -> None:
    """With normal labs and no comorbidity nothing is contraindicated."""
    p = patient()

    for o in valid_options({}):
        assert all(f.severity < Severity.BLOCK for f in option_findings(p, o)), o.id


def _mi_days_ago(days: int, regimen: dict[D, float]) -> FeatureVector:
    p = patient(regimen, acute_coronary=1)
    when = p.as_of - timedelta(days=days)
    return replace(p, provenance=(Provenance("acute_coronary", "Condition/mi", when),))


@pytest.mark.parametrize(("days", "regimen", "option_id", "severity"), [
    (10, {}, "opt-start-ccb", Severity.BLOCK),
    (30, {C: 1.0}, "opt-titrate-ccb", Severity.BLOCK),
    (31, {}, "opt-start-ccb", None),
    (400, {C: 1.0}, "opt-titrate-ccb", None),
])
def test_a_dihydropyridine_ccb_waits_a_month_after_an_acute_mi(
        days: int, regimen: dict[D, float], option_id: str, severity: Severity | None) -> None:
    """Nifedipine SmPC 4.3: not during or within one month of a myocardial infarction; the
    same for a dose going up; an old MI is CVD, not a contraindication."""
    p = _mi_days_ago(days, regimen)
    found = {f.code: f for f in option_findings(p, _option(regimen, option_id))}

    assert "ccb-coronary-undated" not in found
    if severity is None:
        assert "ccb-recent-coronary" not in found
    else:
        assert found["ccb-recent-coronary"].severity is severity
        assert f"{days} days ago" in found["ccb-recent-coronary"].message
