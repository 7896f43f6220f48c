"""ESC 2024 profile (McEvoy et al. Eur Heart J 2024;45:3912-4018), research/clinical.md 1.5.

Differences from NICE that this profile encodes: systolic target 120-129 mmHg for most adults
(lenient, about < 140/90, from age 85, with frailty or symptomatic orthostatic hypotension);
initial low-dose two-drug single-pill combination (RAS blocker + CCB or RAS blocker + diuretic)
except in those groups; triple combination next; spironolactone for resistant hypertension;
no ethnicity-based first-line choice; beta-blockers where there is a compelling indication.
"""

from __future__ import annotations

from fhir_mappings.features import FeatureVector
from models.guideline.citations import esc
from models.guideline.nice import Preference
from models.guideline.targets import OUT_OF_OFFICE_OFFSET, Setting, Target
from vocabulary.drug_classes import RAS_BLOCKERS, DrugClass

ACEI, ARB, CCB = DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB
THZ, BB, SPIRO = DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER, DrugClass.SPIRONOLACTONE
ALPHA = DrugClass.ALPHA_BLOCKER


def esc_lenient(p: FeatureVector) -> bool:
    """Age >= 85, moderate/severe frailty or symptomatic orthostatic hypotension."""
    age = p.get("age")
    return ((age is not None and age >= 85) or p.flag("frailty")
            or p.flag("orthostatic_hypotension"))


def esc_target(p: FeatureVector, setting: Setting = Setting.CLINIC) -> Target:
    """Systolic 120-129 (reach < 130) and diastolic 70-79 (reach < 80) if tolerated; about
    < 140/90 (as low as reasonably achievable) in the lenient groups."""
    if esc_lenient(p):
        sys_, dia, cit = 140.0, 90.0, esc("BP targets: lenient targets (age >= 85, frailty, "
                                          "orthostatic hypotension)")
    else:
        sys_, dia, cit = 130.0, 80.0, esc("BP targets: SBP 120-129 mmHg if tolerated (class I)")
    if setting is Setting.HOME:
        sys_, dia = sys_ - OUT_OF_OFFICE_OFFSET, dia - OUT_OF_OFFICE_OFFSET
    return Target(sys_, dia, setting, cit)


def esc_preference(p: FeatureVector) -> Preference:
    current = frozenset(p.regimen)
    has_a = bool(current & RAS_BLOCKERS)
    compelling_bb = p.flag("heart_failure") or p.flag("cvd")
    # verapamil/diltiazem counts as the calcium-channel blocker (the options add to it)
    has_c = CCB in current or p.flag("non_dhp_ccb")
    if not current and not has_c:
        if esc_lenient(p):
            return Preference(frozenset({ACEI, ARB, CCB, THZ}),
                              "initial monotherapy (age >= 85, frailty or orthostatic "
                              "hypotension)", esc("initial monotherapy exceptions"))
        combos = frozenset(frozenset({a, b}) for a in RAS_BLOCKERS for b in (CCB, THZ))
        return Preference(frozenset(), "initial low-dose two-drug single-pill combination",
                          esc("initial two-drug SPC: RASi + CCB or RASi + diuretic (class I)"),
                          combinations=combos)
    missing = (frozenset() if has_a else frozenset(RAS_BLOCKERS)) | (
        frozenset() if has_c else frozenset({CCB})) | (
        frozenset() if THZ in current else frozenset({THZ}))
    if compelling_bb and BB not in current:
        missing |= {BB}
    if missing - {BB}:
        return Preference(missing, "step up towards RASi + CCB + diuretic (triple combination)",
                          esc("step-up to triple SPC (class I)"))
    if SPIRO not in current:
        return Preference(frozenset({SPIRO}) | (missing & {BB}),
                          "resistant hypertension: spironolactone",
                          esc("resistant hypertension: spironolactone (IIa)"))
    return Preference(frozenset({BB, ALPHA}), "resistant hypertension, spironolactone already "
                      "used: beta-blocker or alpha-blocker", esc("resistant hypertension "
                      "alternatives"))
