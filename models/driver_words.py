"""SHAP drivers of the expected effect in plain words, limited to what the simulated truth does.

A driver's words come from two things only: the sign of its contribution (which option it
favours, or whether it gives this option more or less lowering than the stated baseline) and a
short phrase per feature saying what that feature does in the simulated world
(models/training/simulator.py), so that no mechanism is claimed that the simulator does not
encode:

* age and Black African or African-Caribbean family origin act through the latent renin
  factor and the direct ethnicity terms: ACE inhibitors, ARBs and beta-blockers lower BP more
  in younger people and less in people of Black family origin; calcium-channel blockers,
  thiazide-like diuretics and spironolactone the other way; the alpha-blocker neither;
* the clinic and home readings measure the usual BP, and each class lowers BP more from a
  higher pretreatment BP (1 mmHg per 10 mmHg, Law 2003);
* sex changes how often a new drug is stopped for a side effect (ACE-inhibitor cough and CCB
  ankle swelling commoner in women, spironolactone breast effects in men);
* eGFR below 45 makes spironolactone's hyperkalaemia, and so its stopping, commoner;
* the option's dose changes and the drugs already taken (the per-class regimen columns) are
  told as drugs ("adding amlodipine", "already taking ramipril 10 mg", "on no
  blood-pressure drug yet"), never as "the option itself" or "the current regimen".

BMI, HbA1c, South Asian family origin, diabetes, CKD, heart failure, CVD, potassium, sodium
and urine ACR change no drug's effect in the simulated truth (:data:`NO_EFFECT_FEATURES`);
their contributions are never shown as drivers. Where a decomposition must add up (the
difference between two options), they are folded into one "other factors together" term. Their
measured share of the model's attributions is in models/artifacts/MODEL_CARD.md
(``uv run python bench/bench_driver_shares.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

from models.option_labels import CurrentDrugs
from models.options import Action, TreatmentOption
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, DrugClass
from vocabulary.feature_table import FEATURES_BY_NAME, PATIENT_MODEL_FEATURE_NAMES

#: Driver ids of the grouped regimen columns and of the remainder.
DRUG_CHANGE: Final = "drug_change"
CURRENT_DRUGS: Final = "current_drugs"
OTHER_FACTORS: Final = "other_factors"

#: Model features that change no drug's effect in the simulated truth (module docstring).
NO_EFFECT_FEATURES: Final[frozenset[str]] = frozenset({
    "bmi", "hba1c", "ethnicity_south_asian", "diabetes_t2", "ckd", "heart_failure", "cvd",
    "potassium", "sodium", "urine_acr"})

#: Patient features that may be shown as drivers, in model column order.
SHOWN_FEATURES: Final[tuple[str, ...]] = tuple(
    n for n in PATIENT_MODEL_FEATURE_NAMES if n not in NO_EFFECT_FEATURES)

#: Classes whose effect the renin factor raises in younger people and lowers in Black
#: patients (positive renin loading; negative direct Black term), and those it acts on the
#: other way (simulator.ResponseParameters).
_RENIN_HIGH: Final = (DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.BETA_BLOCKER)
_RENIN_LOW: Final = (DrugClass.CCB, DrugClass.THIAZIDE_LIKE, DrugClass.SPIRONOLACTONE)

_PLURAL: Final[Mapping[DrugClass, str]] = {
    DrugClass.ACE_INHIBITOR: "ACE inhibitors", DrugClass.ARB: "ARBs",
    DrugClass.CCB: "calcium-channel blockers", DrugClass.THIAZIDE_LIKE:
    "thiazide-like diuretics", DrugClass.BETA_BLOCKER: "beta-blockers",
    DrugClass.SPIRONOLACTONE: "spironolactone", DrugClass.ALPHA_BLOCKER: "alpha-blockers"}


#: A class named as one drug of it, when the record does not say which.
_A_CLASS: Final[Mapping[DrugClass, str]] = {
    DrugClass.ACE_INHIBITOR: "an ACE inhibitor", DrugClass.ARB: "an ARB",
    DrugClass.CCB: "a calcium-channel blocker", DrugClass.THIAZIDE_LIKE:
    "a thiazide-like diuretic", DrugClass.BETA_BLOCKER: "a beta-blocker",
    DrugClass.SPIRONOLACTONE: "spironolactone", DrugClass.ALPHA_BLOCKER: "an alpha-blocker"}


def _names(classes: Iterable[DrugClass]) -> str:
    names = [_PLURAL[c] for c in CLASS_ORDER if c in set(classes)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _renin_phrase(classes: frozenset[DrugClass], high: str, low: str) -> str:
    """What the renin-linked feature does to the ``classes`` involved (all classes when none
    of them is renin-linked): ``high`` completes the sentence for the ACEi/ARB/beta-blocker
    side, ``low`` for the CCB/diuretic/spironolactone side."""
    hi = [c for c in _RENIN_HIGH if c in classes]
    lo = [c for c in _RENIN_LOW if c in classes]
    if not hi and not lo:
        hi, lo = list(_RENIN_HIGH), list(_RENIN_LOW)
    parts = [f"{_names(cs)} {'lowers' if cs == [DrugClass.SPIRONOLACTONE] else 'lower'} "
             f"BP {more}" for cs, more in ((hi, high), (lo, low)) if cs]
    return "; ".join(parts)


def feature_phrase(name: str, classes: frozenset[DrugClass]) -> str:
    """What feature ``name`` does in the simulated truth, for an option (or a comparison)
    whose changed classes are ``classes``."""
    if name == "age":
        return _renin_phrase(classes, "more in younger people", "more in older people")
    if name == "ethnicity_black":
        who = "in people of Black African or African-Caribbean family origin"
        return _renin_phrase(classes, f"less {who}", f"more {who}")
    if name in ("sbp_clinic", "dbp_clinic", "sbp_home"):
        return ("a higher usual BP gives a larger fall with each drug, about 1 mmHg per 10 "
                "mmHg")
    if name == "sex_female":
        return ("side effects that stop a new drug differ by sex: ACE-inhibitor cough and "
                "calcium-channel-blocker ankle swelling are commoner in women, spironolactone "
                "breast effects in men")
    if name == "egfr":
        return "below 45, spironolactone is stopped more often for high potassium"
    raise ValueError(f"{name!r} changes no drug's effect in the simulated truth")


def feature_value_words(name: str, value: float | None) -> str:
    """The feature and its value: "age 69", "female", "eGFR 52 mL/min/1.73m2"."""
    spec = FEATURES_BY_NAME[name]
    if value is None or math.isnan(value):
        return f"{spec.label} unknown"
    if name == "sex_female":
        return "female" if value >= 0.5 else "male"
    if name == "ethnicity_black":
        return ("Black African or African-Caribbean family origin" if value >= 0.5
                else "not of Black African or African-Caribbean family origin")
    if name == "age":
        return f"age {value:.0f}"
    return f"{spec.label} {value:.0f} {spec.unit}"


def _drug(c: DrugClass, drugs: CurrentDrugs) -> str:
    return drugs.get(c, (CLASS_INFO[c].drug, None))[0]


def option_short(o: TreatmentOption, drugs: CurrentDrugs) -> str:
    """The drugs an option changes, briefly: "amlodipine", "candesartan + indapamide",
    "a higher dose of ramipril", "amlodipine instead of ramipril"."""
    if o.action is Action.SWITCH and o.started and o.stopped:
        return (f"{_drug(o.started[0], drugs)} instead of "
                f"{_drug(o.stopped[0], drugs)}")
    if not o.started and o.increased_set:
        return "a higher dose of " + " + ".join(
            _drug(c, drugs) for c in CLASS_ORDER if c in o.increased_set)
    return " + ".join(_drug(c, drugs) for c in CLASS_ORDER if c in o.started_set) or o.label


def change_words(o: TreatmentOption, drugs: CurrentDrugs) -> str:
    """The option's dose changes as drugs: "adding amlodipine", "starting candesartan +
    indapamide", "switching ramipril to amlodipine", "increasing ramipril"."""
    started = " + ".join(_drug(c, drugs) for c in CLASS_ORDER if c in o.started_set)
    if o.action is Action.SWITCH and o.started and o.stopped:
        return f"switching {_drug(o.stopped[0], drugs)} to {started}"
    if o.action is Action.ADD:
        return f"adding {started}"
    if o.action in (Action.START, Action.COMBINATION):
        return f"starting {started}"
    return "increasing " + " + ".join(
        _drug(c, drugs) for c in CLASS_ORDER if c in o.increased_set)


def current_words(regimen: Mapping[DrugClass, float], drugs: CurrentDrugs) -> str:
    """The drugs already taken: "already taking ramipril 10 mg and amlodipine 5 mg", or "on
    no blood-pressure drug yet"."""
    if not regimen:
        return "on no blood-pressure drug yet"
    parts = []
    for c in CLASS_ORDER:
        if c not in regimen:
            continue
        if c in drugs:
            drug, daily = drugs[c]
            parts.append(drug if daily is None else f"{drug} {daily:g} mg")
        else:
            dose = regimen[c]
            parts.append(_A_CLASS[c] + ("" if dose == 1 else f" at {dose:g}x the standard dose"))
    return "already taking " + (parts[0] if len(parts) == 1
                                else ", ".join(parts[:-1]) + " and " + parts[-1])


def changed_classes(*options: TreatmentOption) -> frozenset[DrugClass]:
    """The classes the options start or increase (what a renin-linked phrase is about)."""
    return frozenset(c for o in options for c in o.increased_set)


def sentence(what: str, contribution: float, more: str, less: str, why: str | None) -> str:
    """A driver in words: "age 69: favours amlodipine (calcium-channel blockers lower BP more
    in older people)". ``more`` is said of a negative contribution (more lowering), ``less``
    of a positive one; ``why`` is the feature's phrase (None: none)."""
    side = more if contribution < 0 else less
    return f"{what}: {side}" + (f" ({why})" if why else "")


#: Per class, the direction (+1 more lowering, -1 less) in which a renin-linked feature's
#: *high* value acts: older age and Black family origin (simulator.ResponseParameters:
#: renin falls with age and in Black patients; the direct Black terms have the same sign).
_LOWER_RENIN_GIVES: Final[Mapping[DrugClass, int]] = {
    **{c: -1 for c in _RENIN_HIGH}, **{c: +1 for c in _RENIN_LOW}}
#: Classes stopped more often (for a side effect) in women (-1) or men (+1).
_STOPPED_MORE_IN_WOMEN: Final[Mapping[DrugClass, int]] = {
    DrugClass.ACE_INHIBITOR: -1, DrugClass.CCB: -1, DrugClass.SPIRONOLACTONE: +1}
#: Usual-BP values taken as clearly high / clearly low for the BP phrase (between: neutral).
_BP_HIGH: Final[Mapping[str, float]] = {"sbp_clinic": 160.0, "dbp_clinic": 100.0,
                                        "sbp_home": 150.0}
_BP_LOW: Final[Mapping[str, float]] = {"sbp_clinic": 140.0, "dbp_clinic": 90.0,
                                       "sbp_home": 135.0}


def _class_effects(name: str, value: float) -> dict[DrugClass, int] | None:
    """Per class, whether feature ``name`` at ``value`` gives it more (+1) or less (-1)
    lowering in the simulated truth (classes it does not act on left out); None: ``value``
    is in a middle band where no direction is claimed."""
    if name == "age":
        if 50.0 <= value < 60.0:
            return None
        older = 1 if value >= 60.0 else -1
        return {c: older * s for c, s in _LOWER_RENIN_GIVES.items()}
    if name == "ethnicity_black":
        black = 1 if value >= 0.5 else -1
        return {c: black * s for c, s in _LOWER_RENIN_GIVES.items()}
    if name == "sex_female":
        female = 1 if value >= 0.5 else -1
        return {c: female * s for c, s in _STOPPED_MORE_IN_WOMEN.items()}
    if name == "egfr":
        return {DrugClass.SPIRONOLACTONE: -1 if value < 45.0 else +1}
    raise ValueError(name)


def _direction(classes: frozenset[DrugClass], effects: Mapping[DrugClass, int]) -> int:
    """+1 / -1 when every class of ``classes`` the feature acts on moves the same way; 0 when
    they disagree or it acts on none of them."""
    dirs = {effects[c] for c in classes if c in effects}
    return dirs.pop() if len(dirs) == 1 else 0


def _mechanism(name: str, classes: frozenset[DrugClass]) -> str:
    """The mechanism phrase for the ``classes`` the feature acts on (all given ones must be
    acted on)."""
    if name == "age":
        return _renin_phrase(classes, "more in younger people", "more in older people")
    if name == "ethnicity_black":
        who = "in people of Black African or African-Caribbean family origin"
        return _renin_phrase(classes, f"less {who}", f"more {who}")
    if name == "sex_female":
        parts = []
        if DrugClass.ACE_INHIBITOR in classes:
            parts.append("ACE-inhibitor cough")
        if DrugClass.CCB in classes:
            parts.append("calcium-channel-blocker ankle swelling")
        women = (" and ".join(parts) + (" is" if len(parts) == 1 else " are")
                 + " commoner in women, stopping the drug more often") if parts else ""
        men = ("spironolactone breast effects are commoner in men, stopping it more often"
               if DrugClass.SPIRONOLACTONE in classes else "")
        return "; ".join(p for p in (women, men) if p)
    return "below 45, spironolactone is stopped more often for high potassium"


_TOPIC: Final[Mapping[str, str]] = {
    "age": "age", "ethnicity_black": "family origin", "sex_female": "sex",
    "egfr": "kidney function"}


def feature_reason(name: str, value: float | None, contribution: float,
                   this: frozenset[DrugClass], other: frozenset[DrugClass] | None = None
                   ) -> str:
    """The reason shown with a feature driver, never contradicting its direction word.

    ``contribution`` < 0 is "more lowering with this option" (or "favours" the first option
    of a comparison); ``this`` are the classes the option starts or raises, ``other`` those of
    the option it is compared with (None: measured against all the options). A mechanism is
    given only when the simulated truth, at this ``value`` and for these classes, moves in the
    same direction as the contribution; otherwise the wording is neutral ("relative to the
    other options") and claims no mechanism."""
    want = 1 if contribution < 0 else -1
    if name in ("sbp_clinic", "dbp_clinic", "sbp_home"):
        if other is None and value is not None and not math.isnan(value):
            if want > 0 and value >= _BP_HIGH[name]:
                return ("a higher usual BP gives a larger fall with each drug, about 1 mmHg "
                        "per 10 mmHg")
            if want < 0 and value < _BP_LOW[name]:
                return ("a lower usual BP gives a smaller fall with each drug, about 1 mmHg "
                        "per 10 mmHg")
        return "options differ in how much the usual BP adds to their effect"
    if name not in _TOPIC:
        raise ValueError(f"{name!r} changes no drug's effect in the simulated truth")
    topic = _TOPIC[name]
    neutral = (f"relative to the {'other option' if other is not None else 'other options'}; "
               f"options differ in how {topic} changes their effect")
    effects = _class_effects(name, value) if value is not None and not math.isnan(value) \
        else None
    if effects is None:
        return neutral
    acted = frozenset(c for c in this | (other or frozenset()) if c in effects)
    if other is None and not any(c in effects for c in this):
        return (f"{_names(this) if this else 'this option'}: no effect of {topic} in the "
                f"simulated truth; this is relative to the other options")
    mine = _direction(this, effects)
    agrees = (mine == want if other is None
              else (mine - _direction(other, effects)) * want > 0)
    if not agrees:
        return neutral
    return _mechanism(name, acted)


def current_reason(regimen: Mapping[DrugClass, float], contribution: float) -> str:
    """The reason shown with the drugs-already-taken driver; for a patient on no drug, no
    "further drug" (there is none)."""
    if regimen:
        return "what a further drug adds depends on what is taken"
    if contribution < 0:
        return "a first drug's effect is not reduced by others"
    return "options differ in how much they gain as a first drug"
