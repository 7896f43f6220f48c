"""Stop conditions: patients who need something other than a ranked list of options.

DESIGN.md section 3: "safety comes before ranking". When one of these holds the assessment
ends with a pathway card (status ``pathway``) that says what the guideline asks for, with an
indicator that fits (critical: act today; warning: review before any change), and no ranked
list; the pathway is not advice against treatment (severe hypertension usually needs it).
Each stop names the classes an order must not add (``avoid``: an order of one is critical),
the classes an order should be checked against (``caution``: a warning asking whether the
drug is for BP at all: heart failure, angina or AF may need it), and the current classes to
stop or hold (``withdraw``). The drug ordered is also checked against every safety rule
(:mod:`models.guideline.safety`), stop or no stop.

Results that make a stop carry their date: a critical stop needs a result from the last
:data:`RECENT_DAYS` days (this project's policy); an older one is a warning to repeat it.

Citations: NICE NG136 numbers were checked against the published text
(docs/safety/guideline-citations.md); NG133 is cited by section title because its numbers
could not be verified; UK Kidney Association bands were read through NHS summaries; where no
guideline gives a threshold the rule says it is this project's policy.

Conditions, in the order they are reported:

* K+ >= 6.5 mmol/L: emergency (UKKA severe band); K+ 6.0-6.4: urgent review today (UKKA
  moderate band; NG203: stop RAS antagonists at >= 6.0); K+ 5.5 or more and rising on an ACE
  inhibitor, ARB or spironolactone: review before any change (warning; project policy).
* Pregnancy (NICE NG133): BP >= 160/110 is severe hypertension in pregnancy (critical:
  same-day maternity assessment); otherwise the NG133 pathway (labetalol, nifedipine,
  methyldopa; target 135/85; ACE inhibitors and ARBs stopped), critical when one is taken.
  The NG136 severe-hypertension stop does not apply in pregnancy. Breastfeeding is not a stop
  (see :mod:`models.guideline.safety`).
* Clinic BP >= 180/120 (systolic or diastolic), not pregnant: NG136 1.5.1-1.5.3.
* eGFR < 15 or on dialysis: kidney failure; BP treatment with the renal team.
* Systolic < 100: low BP, no intensification (critical below 90 on treatment).
* Postural hypotension recorded, on treatment: NG136 1.1.6 / 1.4.16 (standing target).
* Over-treatment: on two or more antihypertensives with systolic at least 30 mmHg below the
  clinic target: de-escalation review (project policy: NG136 has no step-down
  recommendation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from fhir_mappings.features import FeatureVector
from models.guideline.citations import Citation, nice, nice_ng133, policy, ukka
from models.guideline.nice import clinic_bp_text
from models.guideline.targets import Target
from vocabulary.drug_classes import DrugClass, class_names

ACEI, ARB, CCB = DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB
THZ, BB = DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER
SPIRO, ALPHA = DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER
ALL_CLASSES: Final = frozenset(DrugClass)
K_RAISING: Final = frozenset({ACEI, ARB, SPIRO})
RAS: Final = frozenset({ACEI, ARB})

K_EMERGENCY: Final = 6.5   # mmol/L, UKKA severe band
K_STOP: Final = 6.0        # mmol/L, NG203 stop RAS antagonists; UKKA moderate band
K_RISING: Final = 5.5      # mmol/L, UKKA mild band 5.5-5.9
SEVERE_SBP: Final = 180.0  # NG136 1.5.1
SEVERE_DBP: Final = 120.0
PREGNANCY_SEVERE: Final = (160.0, 110.0)  # NG133 severe hypertension in pregnancy
NG133_TARGET: Final = (135.0, 85.0)
EGFR_FAILURE: Final = 15.0  # KDIGO G5
SBP_LOW: Final = 100.0
SBP_SHOCK: Final = 90.0
OVERTREATMENT_MARGIN: Final = 30.0  # mmHg below the clinic systolic target, on >= 2 drugs
#: a critical stop needs a result this recent (project policy: NG136's 7-day repeat window
#: for severe BP and a week's leeway for the record to reach the EHR)
RECENT_DAYS: Final = 14


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
    """Classes an order must not add while this holds (an order of one is critical)."""
    withdraw: frozenset[DrugClass] = frozenset()
    """Current classes the guideline says to stop or hold."""
    caution: frozenset[DrugClass] = frozenset()
    """Classes an order should be checked against (a warning: is it for BP at all?)."""


def _names(classes: frozenset[DrugClass]) -> str:
    return class_names(classes, ", ")


def _bp_text(p: FeatureVector) -> str:
    return f"{clinic_bp_text(p)} mmHg"


def result_age(p: FeatureVector, feature: str) -> tuple[int | None, str]:
    """Days since the result of ``feature`` was taken (None: unknown), and ' on DATE'."""
    days = p.days_old(feature)
    if days is None:
        return None, ""
    return days, f" on {date.fromordinal(p.as_of.toordinal() - days)}"


def _urgent(p: FeatureVector, feature: str, urgency: Urgency) -> tuple[Urgency, str]:
    """``urgency`` for a recent result; a warning (repeat it) for an older or undated one."""
    days, when = result_age(p, feature)
    if urgency is Urgency.CRITICAL and (days is None or days > RECENT_DAYS):
        age = "of unknown date" if days is None else f"{days} days old"
        return Urgency.WARNING, f"{when} ({age}: repeat it today)"
    return urgency, when


def _potassium(p: FeatureVector) -> list[Stop]:
    k = p.get("potassium")
    if k is None:
        return []
    taking = frozenset(p.regimen) & K_RAISING
    hold = (f" Hold {_names(taking)} (NG203: stop RAS antagonists at K+ >= 6.0 once other "
            "potassium-raising drugs are stopped)." if taking else "")
    others = (" Review other potassium-raising drugs and supplements; a haemolysed sample "
              "still needs an urgent repeat.")
    if k >= K_STOP:
        band = "severe" if k >= K_EMERGENCY else "moderate"
        urgency, when = _urgent(p, "potassium", Urgency.CRITICAL)
        if k >= K_EMERGENCY:
            what, action = ("emergency, same-day hospital assessment",
                            "Severe hyperkalaemia: immediate hospital assessment with an ECG.")
        else:
            what, action = ("urgent review and ECG today",
                            "Moderate hyperkalaemia: urgent clinical review and ECG today; "
                            "same-day hospital assessment if unwell, ECG changes, acute kidney "
                            "injury or a rapid rise, otherwise repeat within one working day.")
        return [Stop("hyperkalaemia-emergency" if k >= K_EMERGENCY else "hyperkalaemia",
                     urgency, f"K+ {k:.1f} mmol/L{when}: {what}",
                     action + hold + others + " Do not start or increase a potassium-raising "
                     "drug.",
                     ukka(f"Treatment of acute hyperkalaemia in adults ({band} band, read "
                          "through NHS summaries)"), K_RAISING, taking)]
    prev = p.get("potassium_previous")
    if k >= K_RISING and taking and prev is not None and k > prev:
        return [Stop("potassium-rising", Urgency.WARNING,
                     f"K+ rising to {k:.1f} mmol/L (from {prev:.1f}) on {_names(taking)}: "
                     "review first",
                     "Potassium 5.5 or more and rising on a potassium-raising drug: find the "
                     "cause, repeat the test and review the drug before any change to "
                     "treatment; do not start or increase a potassium-raising drug.",
                     policy("rising potassium on a potassium-raising drug (UKKA mild band "
                            "5.5-5.9)"), K_RAISING)]
    return []


def _pregnancy(p: FeatureVector) -> list[Stop]:
    if not p.flag("pregnancy"):
        return []
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    taking = frozenset(p.regimen) & RAS
    other = frozenset(p.regimen) & frozenset({THZ, SPIRO, ALPHA})
    sys_, dia = NG133_TARGET
    stop = (f" {_names(taking).capitalize()}: stop, preferably within 2 working days of "
            "notification of pregnancy, and discuss alternatives." if taking else "")
    discuss = (f" {_names(other).capitalize()}: possible risk in pregnancy, discuss "
               "alternatives." if other else "")
    pathway = ("Chronic hypertension in pregnancy is managed under NICE NG133 with the "
               "maternity team: continue current treatment if it is safe in pregnancy; "
               "consider labetalol, or nifedipine if labetalol is unsuitable, or methyldopa if "
               f"both are unsuitable; aim for {sys_:.0f}/{dia:.0f} mmHg, and reduce treatment "
               "if BP falls below 110/70." + stop + discuss)
    cite = nice_ng133("section 'Management of chronic hypertension'")
    severe = ((sbp is not None and sbp >= PREGNANCY_SEVERE[0])
              or (dbp is not None and dbp >= PREGNANCY_SEVERE[1]))
    avoid = RAS
    caution = frozenset({THZ, SPIRO, ALPHA, BB})
    out = []
    if severe:
        urgency, when = _urgent(p, "sbp_clinic", Urgency.CRITICAL)
        out.append(Stop("pregnancy-severe-hypertension", urgency,
                        f"Pregnancy with BP {_bp_text(p)}{when} (>= 160/110): same-day "
                        "maternity assessment",
                        "Severe hypertension in pregnancy: same-day assessment by the maternity "
                        "team (admission is usual); ask about symptoms of pre-eclampsia "
                        "(headache, visual disturbance, epigastric pain, vomiting, sudden "
                        "swelling). " + pathway,
                        nice_ng133("section 'Management of chronic hypertension'; severe "
                                   "hypertension in the tables of 'Management of gestational "
                                   "hypertension' and 'Management of pre-eclampsia'"),
                        avoid, taking, caution))
        return out
    _days, when = result_age(p, "pregnancy")
    recorded = f" (recorded{when})" if when else ""
    return [Stop("pregnancy", Urgency.CRITICAL if taking else Urgency.WARNING,
                 (f"Pregnancy{recorded} on {_names(taking)}: stop it, manage under NICE NG133")
                 if taking else f"Pregnancy{recorded}: manage hypertension under NICE NG133",
                 pathway + " New BP of 140/90 or more in pregnancy without known chronic "
                 "hypertension needs assessment for pre-eclampsia.",
                 cite, avoid, taking, caution)]


def _severe(p: FeatureVector) -> list[Stop]:
    sbp, dbp = p.get("sbp_clinic"), p.get("dbp_clinic")
    if p.flag("pregnancy") or not ((sbp is not None and sbp >= SEVERE_SBP)
                                   or (dbp is not None and dbp >= SEVERE_DBP)):
        return []
    urgency, when = _urgent(p, "sbp_clinic", Urgency.CRITICAL)
    return [Stop("severe-hypertension", urgency,
                 f"Clinic BP {_bp_text(p)}{when} (>= 180/120): assess today for same-day "
                 "referral",
                 "Refer for same-day specialist review if there is retinal haemorrhage or "
                 "papilloedema, or life-threatening symptoms (new confusion, chest pain, signs "
                 "of heart failure, acute kidney injury), or suspected phaeochromocytoma. "
                 "Otherwise look for target organ damage as soon as possible (urine ACR and "
                 "haematuria, creatinine and eGFR, HbA1c, lipids, fundoscopy, ECG): if found, "
                 "consider starting or stepping up treatment (NICE NG136 steps) without waiting "
                 "for ABPM/HBPM; if not, repeat clinic BP within 7 days. The missing ranked "
                 "list is not advice against treatment.", nice("1.5.1-1.5.3"))]


def _kidney_failure(p: FeatureVector) -> list[Stop]:
    egfr = p.get("egfr")
    dialysis = p.flag("dialysis")
    if not (dialysis or (egfr is not None and egfr < EGFR_FAILURE)):
        return []
    _days, when = result_age(p, "egfr")
    what = "on dialysis" if dialysis else f"eGFR {egfr:.0f}{when} (< 15)"
    return [Stop("kidney-failure", Urgency.WARNING,
                 f"Kidney failure ({what}): BP treatment with the renal team",
                 "Kidney failure (CKD G5 or dialysis): blood pressure targets and drugs are set "
                 "with the renal team; this service does not rank options for it. A new eGFR "
                 "below 15, or a fall of 25% or more, may be acute kidney injury: same-day "
                 "assessment.",
                 policy("kidney failure (eGFR < 15 or dialysis) is managed with the renal "
                        "team"), caution=ALL_CLASSES)]


def _low(p: FeatureVector, target: Target | None) -> list[Stop]:
    sbp = p.get("sbp_clinic")
    drugs = p.n_antihypertensives()
    if sbp is not None and sbp < SBP_LOW:
        urgency = Urgency.CRITICAL if sbp < SBP_SHOCK and drugs else Urgency.WARNING
        urgency, when = _urgent(p, "sbp_clinic", urgency)
        review = ("review and consider reducing antihypertensive treatment; if acutely unwell, "
                  "withhold diuretics, ACE inhibitors and ARBs until recovered (sick-day "
                  "rules)" if drugs else "look for a cause")
        return [Stop("low-bp", urgency,
                     f"Clinic BP {_bp_text(p)}{when} (systolic < 100): no intensification; "
                     + ("de-escalation review" if drugs else "assess"),
                     f"Low blood pressure: do not add or increase antihypertensives for BP; "
                     f"{review}; check for postural symptoms, falls, dehydration and acute "
                     "illness.", policy("low blood pressure (systolic < 100): NG136 gives no "
                                        "lower limit"), caution=ALL_CLASSES)]
    out: list[Stop] = []
    if p.flag("orthostatic_hypotension") and drugs:
        out.append(Stop("postural-hypotension", Urgency.WARNING,
                        "Postural hypotension recorded: review treatment, standing BP target",
                        "Postural hypotension: look for causes including medication, measure "
                        "later blood pressures standing and treat to a target based on standing "
                        "blood pressure; consider specialist referral if symptoms persist.",
                        nice("1.1.6 and 1.4.16"), caution=ALL_CLASSES))
    if (target is not None and sbp is not None and drugs >= 2
            and sbp < target.systolic - OVERTREATMENT_MARGIN):
        out.append(Stop("overtreatment", Urgency.WARNING,
                        f"Clinic BP {_bp_text(p)} on {drugs} drugs, well below the target of "
                        f"{target.systolic:.0f}: de-escalation review",
                        f"Systolic BP more than {OVERTREATMENT_MARGIN:.0f} mmHg below the "
                        f"target of {target.systolic:.0f}/{target.diastolic:.0f} on two or more "
                        "drugs: no intensification for BP; confirm with a repeat or home "
                        "readings, ask about dizziness and falls, and review whether a drug can "
                        "be reduced or stopped (other indications such as heart failure or "
                        "angina may need it).",
                        policy("de-escalation review (NG136 has no step-down recommendation)"),
                        caution=ALL_CLASSES))
    return out


def stop_conditions(p: FeatureVector, target: Target | None) -> tuple[Stop, ...]:
    """Every stop condition that holds for ``p`` (``target``: the active guideline's clinic
    target, for over-treatment); empty when the options can be ranked."""
    return (*_potassium(p), *_pregnancy(p), *_severe(p), *_kidney_failure(p),
            *_low(p, target))
