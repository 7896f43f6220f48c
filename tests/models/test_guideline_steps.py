"""NICE NG136 steps, targets and treatment indication, and where ESC 2024 differs."""

from __future__ import annotations

import pytest

from models.guideline.esc import esc_preference, esc_target
from models.guideline.nice import nice_preference, preferred_options, treatment_indication
from models.guideline.profiles import ESC, NICE
from models.guideline.targets import Setting
from models.options import valid_options
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D

A, ARB, C, T = D.ACE_INHIBITOR, D.ARB, D.CCB, D.THIAZIDE_LIKE
BB, S, AL = D.BETA_BLOCKER, D.SPIRONOLACTONE, D.ALPHA_BLOCKER

STEPS = [
    ("step 1, age 54, white: ACEi or ARB", {}, {"age": 54}, {A, ARB}),
    ("step 1, age 55, white: CCB", {}, {"age": 55}, {C}),
    ("step 1, Black, age 40: CCB", {}, {"age": 40, "ethnicity_black": 1}, {C}),
    ("step 1, T2DM, age 70: ACEi or ARB", {}, {"age": 70, "diabetes_t2": 1}, {A, ARB}),
    ("step 1, T2DM and Black: ARB", {}, {"diabetes_t2": 1, "ethnicity_black": 1}, {ARB}),
    ("step 1, heart failure: thiazide-like", {}, {"heart_failure": 1}, {T}),
    ("step 1, age 40, family origin unknown: A or C", {}, {"age": 40, "ethnicity_black": None},
     {A, ARB, C}),
    ("step 2 on ACEi: CCB or thiazide", {A: 1.0}, {}, {C, T}),
    ("step 2 on CCB: ACEi/ARB or thiazide", {C: 1.0}, {}, {A, ARB, T}),
    ("step 2 on CCB, Black: ARB (not ACEi) or thiazide", {C: 1.0}, {"ethnicity_black": 1},
     {ARB, T}),
    ("step 3 on A+C: thiazide", {A: 1.0, C: 1.0}, {}, {T}),
    ("step 3 on C+D: ACEi or ARB", {C: 1.0, T: 1.0}, {}, {A, ARB}),
    ("step 4, K 4.5: spironolactone", {A: 1.0, C: 1.0, T: 1.0}, {"potassium": 4.5}, {S}),
    ("step 4, K 4.6: alpha- or beta-blocker", {A: 1.0, C: 1.0, T: 1.0}, {"potassium": 4.6},
     {AL, BB}),
    ("step 4, K unknown: all three", {A: 1.0, C: 1.0, T: 1.0}, {"potassium": None}, {S, AL, BB}),
    ("CKD with ACR 35 on CCB: ACEi or ARB first", {C: 1.0}, {"ckd": 1, "urine_acr": 35},
     {A, ARB}),
    ("CKD, diabetes, ACR 5, naive: ACEi or ARB", {}, {"ckd": 1, "diabetes_t2": 1,
                                                     "urine_acr": 5, "age": 70}, {A, ARB}),
    ("diltiazem alone, age 70: step 2 (it is the C)", {}, {"age": 70, "non_dhp_ccb": 1},
     {A, ARB, T}),
    ("diltiazem with an ACEi: step 3 thiazide", {A: 1.0}, {"non_dhp_ccb": 1}, {T}),
]


@pytest.mark.parametrize(("regimen", "overrides", "expected"), [s[1:] for s in STEPS],
                         ids=[s[0] for s in STEPS])
def test_nice_step_table(regimen: dict[D, float], overrides: dict[str, float | None],
                         expected: set[D]) -> None:
    """Each NICE step prefers the classes NG136 1.4.32-1.4.48 name."""
    pref = nice_preference(patient(regimen, **overrides))

    assert set(pref.classes) == expected
    assert pref.citation.guideline in ("NICE NG136", "NICE NG203")


def test_preferred_options_start_or_add_exactly_the_preferred_class() -> None:
    """At step 2 on an ACEi the guideline's options are 'add CCB' and 'add thiazide-like'."""
    p = patient({A: 1.0})
    ids = preferred_options(nice_preference(p), valid_options(p.regimen))

    assert set(ids) == {"opt-add-ccb", "opt-add-thiazide_like"}


TARGETS = [
    ({"age": 79}, Setting.CLINIC, 140, 90),
    ({"age": 80}, Setting.CLINIC, 150, 90),
    ({"age": 79}, Setting.HOME, 135, 85),
    ({"age": 80}, Setting.HOME, 145, 85),
    ({"age": 60, "ckd": 1, "urine_acr": 70}, Setting.CLINIC, 130, 80),
    ({"age": 60, "ckd": 1, "urine_acr": 69}, Setting.CLINIC, 140, 90),
    ({"age": 85, "ckd": 1, "urine_acr": 10}, Setting.CLINIC, 140, 90),
    ({"age": 85, "ckd": 1, "urine_acr": 100}, Setting.CLINIC, 130, 80),
]


@pytest.mark.parametrize(("overrides", "setting", "sys_", "dia"), TARGETS)
def test_nice_targets(overrides: dict[str, float], setting: Setting, sys_: float, dia: float
                      ) -> None:
    """NICE NG136 1.4.20-1.4.23 targets by age, CKD/ACR and measurement setting."""
    t = NICE.target(patient(**overrides), setting)

    assert (t.systolic, t.diastolic) == (sys_, dia)


INDICATION = [
    ({"sbp_clinic": 165}, "offer-treatment"),
    ({"sbp_clinic": 150, "diabetes_t2": 1}, "discuss-treatment"),
    ({"sbp_clinic": 150, "age": 50}, "consider-treatment"),
    ({"sbp_clinic": 148, "dbp_clinic": 85, "age": 82}, "treatment-not-indicated"),
    ({"sbp_clinic": 148, "dbp_clinic": 95, "age": 82}, "consider-treatment"),
    ({"sbp_clinic": 155, "age": 82}, "consider-treatment"),
    ({"sbp_clinic": 135, "dbp_clinic": 85}, "treatment-not-indicated"),
    ({"sbp_clinic": 135, "dbp_clinic": 102}, "offer-treatment"),
    ({"sbp_clinic": 135, "dbp_clinic": 94, "diabetes_t2": 1}, "discuss-treatment"),
]


@pytest.mark.parametrize(("overrides", "code"), INDICATION)
def test_when_to_start_treatment(overrides: dict[str, float], code: str) -> None:
    """NG136 1.4.9-1.4.13 for untreated patients."""
    p = patient(**overrides)
    finding = treatment_indication(p, NICE.target(p, Setting.CLINIC))

    assert finding is not None
    assert finding.code == code


def test_esc_targets_are_lower_except_in_the_lenient_groups() -> None:
    """ESC: < 130/80 (aim 120-129) for most; about < 140/90 from 85, frail or orthostatic."""
    assert (esc_target(patient(age=60)).systolic, NICE.target(patient(age=60),
                                                              Setting.CLINIC).systolic) == (130,
                                                                                            140)
    assert esc_target(patient(age=82)).systolic == 130
    assert NICE.target(patient(age=82), Setting.CLINIC).systolic == 150
    assert esc_target(patient(age=85)).systolic == 140
    assert esc_target(patient(frailty=1)).systolic == 140
    assert esc_target(patient(orthostatic_hypotension=1)).systolic == 140


def test_esc_starts_with_a_single_pill_combination_where_nice_starts_one_drug() -> None:
    """Treatment-naive, age 60: NICE prefers a CCB alone, ESC a RASi-based two-drug SPC."""
    p = patient(age=60)
    options = valid_options({})

    nice_ids = preferred_options(NICE.preference(p), options)
    esc_ids = preferred_options(ESC.preference(p), options)

    assert nice_ids == ("opt-start-ccb",)
    assert set(esc_ids) == {"opt-combination-ace_inhibitor+ccb", "opt-combination-arb+ccb",
                            "opt-combination-ace_inhibitor+thiazide_like",
                            "opt-combination-arb+thiazide_like"}


def test_esc_allows_monotherapy_at_85_and_ignores_ethnicity() -> None:
    """ESC exceptions: monotherapy at 85+; no ethnicity-based first-line choice."""
    old = esc_preference(patient(age=86))
    black = esc_preference(patient(age=40, ethnicity_black=1))

    assert old.classes == {A, ARB, C, T}
    assert not old.combinations
    assert black.combinations == esc_preference(patient(age=40)).combinations


def test_esc_resistant_hypertension_is_spironolactone_whatever_the_potassium() -> None:
    """ESC: spironolactone first at step 4; NICE switches to alpha/beta above K+ 4.5."""
    p = patient({A: 1.0, C: 1.0, T: 1.0}, potassium=4.8)

    assert esc_preference(p).classes == {S}
    assert nice_preference(p).classes == {AL, BB}


@pytest.mark.parametrize(("sbp", "dbp", "code"), [
    (132, 82, "at-target"), (146, 114, "step-up"), (132, 95, "step-up"), (151, 70, "step-up"),
    (141, 70, "at-target")])
def test_treated_patients_count_diastolic_too(sbp: float, dbp: float, code: str) -> None:
    """Hazard H-08: a diastolic above target is above target (146/114 on three drugs is not
    'at target')."""
    p = patient({D.CCB: 1.0}, sbp_clinic=sbp, dbp_clinic=dbp, age=83)
    finding = treatment_indication(p, NICE.target(p, Setting.CLINIC))
    assert finding is not None
    assert finding.code == code


def test_esc_counts_diltiazem_as_the_calcium_channel_blocker() -> None:
    """On diltiazem alone the ESC step-up adds a RAS blocker and a diuretic, not a second CCB
    in a starting single-pill combination."""
    pref = esc_preference(patient({}, non_dhp_ccb=1))

    assert not pref.combinations
    assert set(pref.classes) == {A, ARB, T}
