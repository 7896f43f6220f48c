"""Stop conditions: patients who need something other than a ranked list of options.

DESIGN.md section 3: "safety comes before ranking". When one of these holds the assessment
ends with a pathway card (status ``pathway``) that says what the guideline asks for, with an
indicator that fits (critical: act today; warning: review before any change), and no ranked
intensification. Each stop names the classes that must not be started or increased under it
(``avoid``) and the current classes the guideline says to stop or hold (``withdraw``), so an
order hook can flag an order that goes against it.

Citations: NICE NG136 numbers were checked against the published text
(docs/safety/guideline-citations.md); NG133 and NG203 are cited by section title because their
numbers could not be verified; where no guideline gives a threshold (de-escalation) the rule
says it is this project's policy.

Conditions, in the order they are reported:

* K+ >= 6.5 mmol/L: emergency (UKKA severe band); K+ 6.0-6.4: urgent review today (UKKA
  moderate band; NG203: stop RAS antagonists at >= 6.0); K+ above 5.5 and rising on an ACE
  inhibitor, ARB or spironolactone: review before any change (warning).
* Clinic BP >= 180/120 (systolic or diastolic): NG136 1.5.1-1.5.3 same-day assessment.
* eGFR < 15 or on dialysis: kidney failure; BP treatment with the renal team.
* Pregnancy: NG133 pathway (labetalol, nifedipine, methyldopa; target 135/85; stop ACE
  inhibitors, ARBs and thiazide-like diuretics). Breastfeeding is not a stop (see
  :mod:`models.guideline.safety`).
* Systolic < 90 (critical) or < 100 (warning): low blood pressure, no intensification.
* Postural hypotension recorded, on treatment: NG136 1.1.6 / 1.4.16 (standing target).
* Over-treatment: on two or more antihypertensives with systolic at least 30 mmHg below the
  clinic target: de-escalation review (project policy: NG136 has no step-down
  recommendation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from fhir_mappings.features import FeatureVector
from fhir_mappings.vocabulary import CLASS_INFO, CLASS_ORDER, DrugClass
from models.guideline.citations import Citation, nice, nice_ng133, nice_ng203, policy, ukka
from models.guideline.targets import Target

ACEI, ARB, CCB = DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB
THZ, BB = DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER
SPIRO, ALPHA = DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER
ALL_CLASSES: Final = frozenset(DrugClass)
K_RAISING: Final = frozenset({ACEI, ARB, SPIRO})

K_EMERGENCY: Final = 6.5   # mmol/L, UKKA severe band
K_STOP: Final = 6.0        # mmol/L, NG203 stop RAS antagonists; UKKA moderate band
K_RISING: Final = 5.5      # mmol/L, UKKA mild band starts above 5.5 ... 5.9
SEVERE_SBP: Final = 180.0  # NG136 1.5.1
SEVERE_DBP: Final = 120.0
EGFR_FAILURE: Final = 15.0  # KDIGO G5
SBP_LOW: Final = 100.0
SBP_SHOCK: Final = 90.0
OVERTREATMENT_MARGIN: Final = 30.0  # mmHg below the clinic systolic target, on >= 2 drugs
NG133_TARGET: Final = (135.0, 85.0)


class Urgency(StrEnum):
    """The CDS Hooks indicator a stop's card carries."""

    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop condition: what was found, what to do, where it is written."""

    code: str
    urgency: Urgency
    summary: str
    """One line for the card summary (under 120 characters)."""
    action: str
    """What the guideline asks for, in a clinician's words."""
    citation: Citation
    avoid: frozenset[DrugClass] = frozenset()
    """Classes not to start or increase while this holds."""
    withdraw: frozenset[DrugClass] = frozenset()
    """Current classes the guideline says to stop or hold."""


def _names(classes: frozenset[DrugClass]) -> str:
    return ", ".join(CLASS_INFO[c].short for c in CLASS_ORDER if c in classes)


def _n_drugs(p: FeatureVector) -> int:
    """Antihypertensive drugs taken: the regimen's classes, and verapamil/diltiazem."""
    return len(p.regimen) + (1 if p.flag("non_dhp_ccb") else 0)


def _bp_text(p: FeatureVector) -> str:
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    s = "?" if sbp is None else f"{sbp:.0f}"
    d = "?" if dbp is None else f"{dbp:.0f}"
    return f"{s}/{d} mmHg"


def _potassium(p: FeatureVector) -> list[Stop]:
    k = p.get("potassium")
    if k is None:
        return []
    taking = frozenset(p.regimen) & K_RAISING
    hold = (f" Hold {_names(taking)} (NG203: stop RAS antagonists at K+ >= 6.0 once other "
            "potassium-raising drugs are stopped)." if taking else "")
    if k >= K_EMERGENCY:
        return [Stop("hyperkalaemia-emergency", Urgency.CRITICAL,
                     f"K+ {k:.1f} mmol/L (>= 6.5): emergency, same-day hospital assessment",
                     "Severe hyperkalaemia: immediate hospital assessment with an ECG; do not "
                     "start or increase any potassium-raising drug." + hold,
                     ukka("Treatment of acute hyperkalaemia in adults (severe, K+ >= 6.5)"),
                     K_RAISING, taking)]
    if k >= K_STOP:
        return [Stop("hyperkalaemia", Urgency.CRITICAL,
                     f"K+ {k:.1f} mmol/L (>= 6.0): urgent review and ECG today, no "
                     "intensification",
                     "Moderate hyperkalaemia: urgent clinical review and ECG today; same-day "
                     "hospital assessment if unwell, ECG changes, acute kidney injury or a rapid "
                     "rise, otherwise repeat within one working day." + hold,
                     nice_ng203("section 'Renin-angiotensin system antagonists' "
                                "(stop at K+ >= 6.0)"), K_RAISING, taking)]
    prev = p.get("potassium_previous")
    if k > K_RISING and taking and prev is not None and k > prev:
        return [Stop("potassium-rising", Urgency.WARNING,
                     f"K+ rising to {k:.1f} mmol/L (from {prev:.1f}) on {_names(taking)}: "
                     "review first",
                     "Potassium above 5.5 and rising on a potassium-raising drug: find the "
                     "cause, repeat the test and review the drug before any change to "
                     "treatment.",
                     ukka("Treatment of acute hyperkalaemia in adults (mild, K+ 5.5-5.9)"),
                     K_RAISING)]
    return []


def _severe(p: FeatureVector) -> list[Stop]:
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    if not ((sbp is not None and sbp >= SEVERE_SBP) or (dbp is not None and dbp >= SEVERE_DBP)):
        return []
    return [Stop("severe-hypertension", Urgency.CRITICAL,
                 f"Clinic BP {_bp_text(p)} (>= 180/120): assess today for same-day referral",
                 "Refer for same-day specialist review if there is retinal haemorrhage or "
                 "papilloedema, or life-threatening symptoms (new confusion, chest pain, signs "
                 "of heart failure, acute kidney injury), or suspected phaeochromocytoma. "
                 "Otherwise look for target organ damage as soon as possible: if found, "
                 "consider starting treatment without waiting for ABPM/HBPM; if not, repeat "
                 "clinic BP within 7 days.", nice("1.5.1-1.5.3"))]


def _kidney_failure(p: FeatureVector) -> list[Stop]:
    egfr = p.get("egfr")
    dialysis = p.flag("dialysis")
    if not (dialysis or (egfr is not None and egfr < EGFR_FAILURE)):
        return []
    what = "on dialysis" if dialysis else f"eGFR {egfr:.0f} (< 15)"
    return [Stop("kidney-failure", Urgency.WARNING,
                 f"Kidney failure ({what}): BP treatment with the renal team",
                 "Kidney failure (CKD G5 or dialysis): blood pressure targets and drugs are set "
                 "with the renal team; this service does not rank options for it.",
                 nice_ng203("section 'Referral criteria'"), ALL_CLASSES)]


def _pregnancy(p: FeatureVector) -> list[Stop]:
    if not p.flag("pregnancy"):
        return []
    taking = frozenset(p.regimen) & frozenset({ACEI, ARB, THZ, SPIRO})
    stop = (f" Stop {_names(taking)} now and offer an alternative (ACE inhibitors, ARBs and "
            "thiazide-like diuretics are not used in pregnancy)." if taking else "")
    sys_, dia = NG133_TARGET
    return [Stop("pregnancy", Urgency.CRITICAL if taking else Urgency.WARNING,
                 ("Pregnancy on " + _names(taking) + ": stop them, manage under NICE NG133")
                 if taking else "Pregnancy: manage hypertension under NICE NG133",
                 "Chronic hypertension in pregnancy is managed under NICE NG133: offer "
                 "labetalol, or nifedipine if labetalol is unsuitable, or methyldopa if both "
                 f"are unsuitable; aim for {sys_:.0f}/{dia:.0f} mmHg; refer to the maternity "
                 "team." + stop,
                 nice_ng133("section 'Management of chronic hypertension'"),
                 frozenset({ACEI, ARB, THZ, SPIRO, ALPHA}), taking)]


def _low(p: FeatureVector, target: Target | None) -> list[Stop]:
    sbp = p.get("sbp_clinic")
    drugs = _n_drugs(p)
    if sbp is not None and sbp < SBP_LOW:
        urgency = Urgency.CRITICAL if sbp < SBP_SHOCK else Urgency.WARNING
        review = ("review and consider reducing antihypertensive treatment" if drugs
                  else "look for a cause")
        return [Stop("low-bp", urgency,
                     f"Clinic BP {_bp_text(p)} (systolic < 100): no intensification; "
                     + ("de-escalation review" if drugs else "assess"),
                     f"Low blood pressure: do not add or increase antihypertensives; {review}; "
                     "check for postural symptoms, falls, dehydration and acute illness.",
                     nice("1.1.6 and 1.4.16 (postural symptoms, standing BP)"), ALL_CLASSES)]
    out: list[Stop] = []
    if p.flag("orthostatic_hypotension") and drugs:
        out.append(Stop("postural-hypotension", Urgency.WARNING,
                        "Postural hypotension recorded: review treatment, standing BP target",
                        "Postural hypotension: look for causes including medication, measure "
                        "later blood pressures standing and treat to a target based on standing "
                        "blood pressure; consider specialist referral if symptoms persist.",
                        nice("1.1.6 and 1.4.16"), ALL_CLASSES))
    if (target is not None and sbp is not None and drugs >= 2
            and sbp < target.systolic - OVERTREATMENT_MARGIN):
        out.append(Stop("overtreatment", Urgency.WARNING,
                        f"Clinic BP {_bp_text(p)} on {drugs} drugs, well below the target of "
                        f"{target.systolic:.0f}: de-escalation review",
                        f"Systolic BP more than {OVERTREATMENT_MARGIN:.0f} mmHg below the "
                        f"target of {target.systolic:.0f}/{target.diastolic:.0f} on two or more "
                        "drugs: no intensification; review whether a drug can be reduced or "
                        "stopped, and ask about dizziness and falls.",
                        policy("de-escalation review (NG136 has no step-down recommendation)"),
                        ALL_CLASSES))
    return out


def stop_conditions(p: FeatureVector, target: Target | None) -> tuple[Stop, ...]:
    """Every stop condition that holds for ``p`` (``target``: the active guideline's clinic
    target, for over-treatment); empty when the options can be ranked."""
    return (*_potassium(p), *_severe(p), *_kidney_failure(p), *_pregnancy(p), *_low(p, target))
