"""NICE NG136 drug-choice steps and when to start treatment (research/clinical.md 1.2, 1.4).

The steps say which option(s) the guideline itself prefers for a patient, shown beside the
model's ranking so a clinician sees where they differ. Classes are grouped as NICE does:
A = ACE inhibitor or ARB, C = calcium-channel blocker, D = thiazide-like diuretic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhir_mappings.features import FeatureVector
from models.guideline.citations import Citation, nice, nice_ng203
from models.guideline.findings import Finding, Severity
from models.guideline.targets import OUT_OF_OFFICE_OFFSET, Target
from models.options import Action, TreatmentOption
from vocabulary.drug_classes import RAS_BLOCKERS, DrugClass

ACEI, ARB, CCB = DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB
THZ, BB = DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER
SPIRO, ALPHA = DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER
#: NG203's renin-angiotensin system antagonist recommendations (numbers and heading could
#: not be verified: docs/safety/guideline-citations.md), cited by the topic
NG203_RAS = nice_ng203("recommendations on renin-angiotensin system antagonists (number "
                       "and heading not verified)")
K_STEP4 = 4.5  # mmol/L, NICE NG136 1.4.49 and 1.4.51


@dataclass(frozen=True, slots=True)
class Preference:
    """Classes the guideline would add (or start) next, why, and the notes that go with it."""

    classes: frozenset[DrugClass]
    step: str
    citation: Citation
    notes: tuple[Finding, ...] = ()
    combinations: frozenset[frozenset[DrugClass]] = frozenset()
    """Two-class single-pill combinations the guideline prefers (ESC), if any."""


def _ras_choice(black: bool | None) -> frozenset[DrugClass]:
    """ACEi or ARB; ARB in preference for Black African/African-Caribbean origin (1.4.30)."""
    return frozenset({ARB}) if black else frozenset(RAS_BLOCKERS)


def _black(p: FeatureVector) -> bool | None:
    v = p.get("ethnicity_black")
    return None if v is None else v == 1.0


def _ckd_needs_ras(p: FeatureVector) -> bool:
    """NG203: offer ACEi/ARB in CKD with ACR >= 3 and diabetes, ACR >= 30 with hypertension,
    or any ACR >= 70 mg/mmol."""
    acr = p.get("urine_acr")
    if not p.flag("ckd") or acr is None:
        return False
    return acr >= 30 or (p.flag("diabetes_t2") and acr >= 3)


def nice_preference(p: FeatureVector) -> Preference:
    """The NICE step for this patient's current regimen."""
    current = frozenset(p.regimen)
    has_a = bool(current & RAS_BLOCKERS)
    # verapamil/diltiazem is a calcium-channel blocker: it fills the C of A/C/D (the options
    # add to it; a dihydropyridine CCB on top is a caution of its own)
    non_dhp = p.flag("non_dhp_ccb")
    has_c, has_d = CCB in current or non_dhp, THZ in current
    black = _black(p)
    age = p.get("age")
    notes: list[Finding] = []
    if black is None:
        notes.append(Finding(Severity.INFO, "family-origin-unknown",
                             "Family origin not recorded: NICE step 1 and the ARB preference "
                             "depend on it.", nice("1.4.32-1.4.39")))
    if non_dhp and CCB not in current:
        notes.append(Finding(Severity.INFO, "non-dhp-ccb-treated", "Taking verapamil or "
                             "diltiazem: counted as the calcium-channel blocker of the NICE "
                             "steps; the options add to it (the predicted effects do not model "
                             "it).", nice("1.4.32-1.4.39")))

    if p.flag("hfref"):
        # NG136 1.4.31: follow NG106 first in HFrEF: an ACE inhibitor (an ARB only when it is
        # not tolerated: family origin does not change this in heart failure) and a
        # beta-blocker, before the hypertension steps
        ras = frozenset({ARB}) if p.flag("ace_inhibitor_intolerance") else frozenset({ACEI})
        needed = (frozenset() if has_a else ras) | (
            frozenset() if BB in current else frozenset({BB}))
        if needed:
            return Preference(needed, "heart failure with reduced ejection fraction (NG106 "
                              "first): ACE inhibitor or ARB, and a beta-blocker", nice("1.4.31"),
                              tuple(notes))
    if _ckd_needs_ras(p) and not has_a:
        return Preference(_ras_choice(black), "CKD with albuminuria: ACE inhibitor or ARB",
                          NG203_RAS, tuple(notes))
    if not current and not non_dhp:
        if p.flag("heart_failure"):
            return Preference(frozenset({THZ}), "step 1 (heart failure): thiazide-like diuretic",
                              nice("1.4.32-1.4.39"), tuple(notes))
        if p.flag("diabetes_t2"):
            return Preference(_ras_choice(black), "step 1 (type 2 diabetes): ACEi or ARB",
                              nice("1.4.32-1.4.39"), tuple(notes))
        if black:
            return Preference(frozenset({CCB}), "step 1 (Black African/African-Caribbean): CCB",
                              nice("1.4.32-1.4.39"), tuple(notes))
        if age is not None and age < 55:
            if black is None:
                return Preference(frozenset(RAS_BLOCKERS | {CCB}),
                                  "step 1 (age < 55; CCB if of Black family origin)",
                                  nice("1.4.32-1.4.39"), tuple(notes))
            return Preference(frozenset(RAS_BLOCKERS), "step 1 (age < 55): ACEi or ARB",
                              nice("1.4.32-1.4.39"), tuple(notes))
        return Preference(frozenset({CCB}), "step 1 (age 55 or over): CCB", nice("1.4.32-1.4.39"),
                          tuple(notes))

    n_acd = sum((has_a, has_c, has_d))
    if n_acd == 3:
        k = p.get("potassium")
        if k is None:
            notes.append(Finding(Severity.WARN, "step4-potassium-unknown",
                                 "Potassium unknown: NICE step 4 depends on it (<= 4.5: "
                                 "spironolactone; > 4.5: alpha- or beta-blocker).",
                                 nice("1.4.49-1.4.51"), "Check potassium."))
            return Preference(frozenset({SPIRO, ALPHA, BB}), "step 4 (potassium unknown)",
                              nice("1.4.48-1.4.51"), tuple(notes))
        if k <= K_STEP4:
            return Preference(frozenset({SPIRO}), "step 4 (K+ <= 4.5): low-dose spironolactone",
                              nice("1.4.49"), tuple(notes))
        return Preference(frozenset({ALPHA, BB}), "step 4 (K+ > 4.5): alpha- or beta-blocker",
                          nice("1.4.51"), tuple(notes))
    if n_acd == 2:
        missing = (frozenset() if has_a else _ras_choice(black)) | (
            frozenset() if has_c else frozenset({CCB})) | (
            frozenset() if has_d else frozenset({THZ}))
        return Preference(missing, "step 3: ACEi/ARB + CCB + thiazide-like diuretic",
                          nice("1.4.44-1.4.45"), tuple(notes))
    if n_acd == 1:
        if has_a:
            nxt = frozenset({CCB, THZ})
        elif has_c:
            nxt = _ras_choice(black) | {THZ}
        else:  # on a thiazide-like diuretic only (e.g. heart failure at step 1)
            nxt = _ras_choice(black) | {CCB}
        return Preference(nxt, "step 2: add a second of A, C or D", nice("1.4.40-1.4.43"),
                          tuple(notes))
    # On none of A/C/D (e.g. a beta-blocker started for another reason): begin the A/C/D
    # sequence as at step 1.
    first = nice_preference(
        FeatureVector(p.as_of, p.values, {}, p.deceased, p.days_since_bp, p.provenance))
    return Preference(first.classes, f"{first.step}, added to the current regimen",
                      first.citation, first.notes)


def preferred_options(pref: Preference, options: Sequence[TreatmentOption]
                      ) -> tuple[str, ...]:
    """Ids of the catalogue options that carry out the preferred step: start (naive) or add
    (treated) exactly one of the preferred classes, or start a preferred combination, without
    stopping anything."""
    out = []
    for o in options:
        if o.stopped:
            continue
        single = o.action in (Action.START, Action.ADD) and len(o.started) == 1
        if (single and o.started[0] in pref.classes) or (
                o.action is Action.COMBINATION and o.started_set in pref.combinations):
            out.append(o.id)
    return tuple(out)


def white_coat(p: FeatureVector, target: Target) -> Finding | None:
    """White-coat effect (NG136 1.4.22): clinic BP is not at target, while a home/ambulatory
    monitoring series (a recorded mean or enough readings, taken since the regimen last
    changed) is below the out-of-office target in every component that is above target in
    the clinic: the systolic always, the diastolic when the clinic diastolic is above its
    target (a diastolic the series does not give cannot say the clinic diastolic is wrong)."""
    home_s, home_d = p.get("sbp_home"), p.get("dbp_home")
    if home_s is None or not p.flag("home_bp_series") or not above_target(p, target):
        return None
    goal_s = target.systolic - OUT_OF_OFFICE_OFFSET
    goal_d = target.diastolic - OUT_OF_OFFICE_OFFSET
    dbp = p.get("dbp_clinic")
    clinic_d_high = dbp is not None and dbp >= target.diastolic
    if home_s >= goal_s or (clinic_d_high and (home_d is None or home_d >= goal_d)):
        return None
    home = f"{home_s:.0f}/{'?' if home_d is None else f'{home_d:.0f}'}"
    return Finding(Severity.INFO, "white-coat", f"Home/ambulatory mean {home} mmHg is below "
                   f"its target of {goal_s:.0f}/{goal_d:.0f} while clinic BP "
                   f"{clinic_bp_text(p)} is not: white-coat effect; do not step up or start "
                   "treatment on clinic BP alone.", nice("1.4.22"))


def above_target(p: FeatureVector, target: Target) -> bool | None:
    """Whether clinic BP is at or above the target, systolic or diastolic (None: unknown)."""
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    if sbp is None:
        return None
    return sbp >= target.systolic or (dbp is not None and dbp >= target.diastolic)


def clinic_bp_text(p: FeatureVector) -> str:
    """The clinic BP as "152/94" ("?" for an unknown value)."""
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    return (f"{'?' if sbp is None else f'{sbp:.0f}'}/"
            f"{'?' if dbp is None else f'{dbp:.0f}'}")


def treatment_indication(p: FeatureVector, target: Target) -> Finding | None:
    """When to start drugs for an untreated patient (1.4.9-1.4.13), from clinic BP, systolic
    and diastolic.

    Stage 2 (>= 160/100): offer. Stage 1 (140/90-159/99) under 80 with target-organ damage,
    CVD, renal disease or diabetes: discuss; stage 1 under 60 without them: consider; 80 or
    over: consider if clinic BP is above 150/90. Treated patients at or above target (systolic
    or diastolic): step up (1.4.40-1.4.45); below it on both: at target.
    """
    sbp = p.get("sbp_clinic")
    dbp = p.get("dbp_clinic")
    age = p.get("age")
    if sbp is None or age is None:
        return None
    goal = f"{target.systolic:.0f}/{target.diastolic:.0f}"
    bp = clinic_bp_text(p)
    # verapamil/diltiazem and the other antihypertensives (methyldopa ...) treat BP too
    treated = p.n_antihypertensives() > 0
    if (wc := white_coat(p, target)) is not None:
        return wc
    if treated:
        if above_target(p, target):
            return Finding(Severity.INFO, "step-up", f"Clinic BP {bp} mmHg is not below "
                           f"the target of {goal}: step up treatment.", nice("1.4.40-1.4.45"))
        return Finding(Severity.INFO, "at-target", f"Clinic BP {bp} mmHg is below the "
                       f"target of {goal}: no step-up indicated.", target.citation)
    d = -1.0 if dbp is None else dbp
    if sbp >= 160 or d >= 100:
        return Finding(Severity.INFO, "offer-treatment", "Stage 2 hypertension: offer drug "
                       "treatment.", nice("1.4.9"))
    if sbp >= 140 or d >= 90:
        if age >= 80:
            if sbp > 150 or d > 90:
                return Finding(Severity.INFO, "consider-treatment", "Age 80 or over with clinic "
                               "BP above 150/90: consider drug treatment.", nice("1.4.13"))
            return Finding(Severity.INFO, "treatment-not-indicated", "Age 80 or over with clinic "
                           "systolic 150 or below: drug treatment not indicated.",
                           nice("1.4.13"))
        risk = any(p.flag(f) for f in ("cvd", "ckd", "diabetes_t2", "heart_failure"))
        if risk:
            return Finding(Severity.INFO, "discuss-treatment", "Stage 1 hypertension with CVD, "
                           "renal disease or diabetes: discuss starting drug treatment.",
                           nice("1.4.10"))
        if age < 60:
            return Finding(Severity.INFO, "consider-treatment", "Stage 1 hypertension under 60: "
                           "consider drug treatment (10-year CVD risk may underestimate).",
                           nice("1.4.12"))
        return Finding(Severity.INFO, "discuss-treatment", "Stage 1 hypertension: discuss drug "
                       "treatment if 10-year CVD risk is 10% or more (QRISK not computed here).",
                       nice("1.4.10"))
    return Finding(Severity.INFO, "treatment-not-indicated", "Clinic BP below 140/90 mmHg: "
                   "drug treatment not indicated by NICE.", nice("1.4.9-1.4.13"))
