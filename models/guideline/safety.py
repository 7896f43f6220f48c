"""Contraindications and cautions for each option (research/clinical.md section 2).

Each rule is a small pure function ``(patient, options) -> (option index, finding)`` with a
docstring and a citation: what it needs to know about the patient is worked out once, then each
option of the catalogue is checked (a rule that cannot apply to the patient, say the gout rule for
a patient without gout, looks at no option at all). Severities: BLOCK (contraindicated: never
ranked or suggested), WARN (caution, with the monitoring it needs), INFO. An unknown lab value
that a rule needs is itself a finding ("potassium unknown: check before starting"), never treated
as normal.

Scope words used below: a class is *started* when the option begins it, *increased* when the
option starts or titrates it, *after* when the regimen after the option contains it, and
*stopped* when the option stops it (the option's ``started_set``, ``increased_set``,
``after_set`` and ``stopped_set``, computed once per option).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from fhir_mappings.features import FeatureVector
from models.guideline.citations import (
    bnf,
    mhra,
    nice,
    nice_ng106,
    nice_ng133,
    nice_ng203,
    policy,
    smpc,
)
from models.guideline.findings import Finding, Severity
from models.options import TreatmentOption
from models.prescribing import MAX_DAILY_MG, STARTING, daily_mg
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, RAS_BLOCKERS, DrugClass, class_names

ACEI, ARB, CCB = DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB
THZ, BB = DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER
SPIRO, ALPHA = DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER
#: NG203's renin-angiotensin system antagonist recommendations (numbers and heading could
#: not be verified: docs/safety/guideline-citations.md), cited by the topic
NG203_RAS = nice_ng203("recommendations on renin-angiotensin system antagonists (number "
                       "and heading not verified)")
MHRA_PREGNANCY = mhra("ACE inhibitors and angiotensin II receptor antagonists: not for use in "
                      "pregnancy (December 2007)")
MHRA_SPIRONOLACTONE_RAS = mhra("Spironolactone and renin-angiotensin system drugs in heart "
                               "failure: risk of potentially fatal hyperkalaemia (February 2016)")
MHRA_NSAID_RENAL = mhra("Non-steroidal anti-inflammatory drugs: reminder on renal failure and "
                        "impairment (May 2009)")
K_RAISING = frozenset({ACEI, ARB, SPIRO})
DIURETICS = frozenset({THZ, SPIRO})
K_RAISING_OR_THZ = K_RAISING | {THZ}
RAS_OR_DIURETIC = RAS_BLOCKERS | DIURETICS
#: Prognostic in HFrEF (NICE NG106, updated 2025: ACE inhibitor or ARNI/ARB, beta-blocker and
#: mineralocorticoid-receptor antagonist): stopping one to treat BP removes it.
PROGNOSTIC_IN_HFREF = RAS_BLOCKERS | {BB, SPIRO}

Options = Sequence[TreatmentOption]
Hit = tuple[int, Finding]
"""A finding about the option at this index of the catalogue."""
Rule = Callable[[FeatureVector, Options], Iterator[Hit]]

BLOCK, WARN, INFO = Severity.BLOCK, Severity.WARN, Severity.INFO


def started(o: TreatmentOption) -> frozenset[DrugClass]:
    return o.started_set


def increased(o: TreatmentOption) -> frozenset[DrugClass]:
    return o.increased_set


def after(o: TreatmentOption) -> frozenset[DrugClass]:
    return o.after_set


_names = class_names


NG133_CHRONIC = nice_ng133("section 'Management of chronic hypertension'")
NG133_POSTNATAL = nice_ng133("section 'Antihypertensive treatment during the postnatal period, "
                             "including during breastfeeding'")


def ras_in_pregnancy(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """ACE inhibitors and ARBs must not be used in pregnancy; thiazide-like diuretics are not
    used either (NICE NG133, chronic hypertension). Pregnancy is a stop condition
    (:mod:`models.guideline.stops`), so these findings are a second line of defence for any
    caller that ranks options directly."""
    if not p.flag("pregnancy"):
        return
    for i, o in enumerate(options):
        if hit := o.after_set & RAS_BLOCKERS:
            yield i, Finding(BLOCK, "ras-pregnancy",
                             f"Pregnancy: {_names(hit)} contraindicated (stop if taken); "
                             "manage under NICE NG133.", MHRA_PREGNANCY)
        if o.increased_set & DIURETICS:
            yield i, Finding(BLOCK, "diuretic-pregnancy",
                             "Pregnancy: diuretics are not used; NG133 offers labetalol, "
                             "nifedipine or methyldopa.", NG133_CHRONIC)


def breastfeeding(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Breastfeeding follows NICE NG133's postnatal section, not the pregnancy rule: avoid
    diuretics and ARBs where possible (new ones: BLOCK; one already taken: a caution to
    review); an ACE inhibitor is named there (enalapril); doxazosin's SmPC lists lactation as
    a contraindication."""
    if not p.flag("breastfeeding") or p.flag("pregnancy"):
        return
    for i, o in enumerate(options):
        up = o.increased_set
        if ARB in up:
            yield i, Finding(BLOCK, "arb-breastfeeding", "Breastfeeding: avoid ARBs (NG133).",
                             NG133_POSTNATAL)
        elif ARB in o.after_set:
            yield i, Finding(WARN, "arb-breastfeeding-continued", "Breastfeeding on an ARB: "
                             "NG133 advises avoiding ARBs; review a switch (enalapril is named).",
                             NG133_POSTNATAL)
        if up & DIURETICS:
            yield i, Finding(BLOCK, "diuretic-breastfeeding", "Breastfeeding: avoid diuretics "
                             "(NG133).", NG133_POSTNATAL)
        if ALPHA in up:
            yield i, Finding(BLOCK, "alpha-blocker-breastfeeding", "Breastfeeding: doxazosin "
                             "is contraindicated in lactation.", smpc("doxazosin"))
        if ACEI in o.started_set:
            yield i, Finding(INFO, "acei-breastfeeding", "Breastfeeding: the ACE inhibitor "
                             "NG133 names is enalapril; check the mother's renal function and "
                             "potassium.", NG133_POSTNATAL)


def ras_childbearing_potential(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Women who could become pregnant need counselling before an ACE inhibitor or ARB."""
    age = p.get("age")
    if not (p.flag("sex_female") and not p.flag("pregnancy") and age is not None and age < 50):
        return
    for i, o in enumerate(options):
        if o.increased_set & RAS_BLOCKERS:
            yield i, Finding(WARN, "ras-childbearing",
                             "Woman of child-bearing potential: discuss contraception and "
                             "stopping if pregnancy is planned.",
                             MHRA_PREGNANCY,
                             "Ask about pregnancy plans at each review.")


def angioedema(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """History of angioedema: ACE inhibitors contraindicated; ARBs only case by case because of
    cross-reactivity. A serious hypersensitivity reaction (anaphylaxis) to an ACE inhibitor:
    ACE inhibitors contraindicated (SmPC)."""
    if p.flag("ace_inhibitor_hypersensitivity"):
        for i, o in enumerate(options):
            if ACEI in o.after_set:
                yield i, Finding(BLOCK, "acei-hypersensitivity", "Serious hypersensitivity "
                                 "(anaphylaxis) to an ACE inhibitor: ACE inhibitors "
                                 "contraindicated.", smpc("ramipril"))
    if not p.flag("angioedema_history"):
        return
    for i, o in enumerate(options):
        if ACEI in o.after_set:
            yield i, Finding(BLOCK, "acei-angioedema",
                             "History of angioedema: ACE inhibitor contraindicated.",
                             smpc("ramipril"))
        if ARB in o.increased_set:
            yield i, Finding(WARN, "arb-angioedema",
                             "History of angioedema: ARB cross-reactivity possible; specialist "
                             "advice.", smpc("candesartan", "4.4 special warnings"),
                             "Warn the patient to stop and seek help if swelling occurs.")


def dual_ras_blockade(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Never combine an ACE inhibitor with an ARB."""
    for i, o in enumerate(options):
        if o.after_set >= RAS_BLOCKERS:
            yield i, Finding(BLOCK, "acei-plus-arb",
                             "Do not combine an ACE inhibitor with an ARB.", nice("1.4.34"))


def potassium(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """K+ > 5.0: do not start an ACE inhibitor, ARB or spironolactone; K+ >= 6.0: stop them.
    Unknown K+: check before starting any of them or a thiazide-like diuretic."""
    k = p.get("potassium")
    if k is None:
        for i, o in enumerate(options):
            if new := o.increased_set & K_RAISING_OR_THZ:
                yield i, Finding(WARN, "potassium-unknown",
                                 "Potassium unknown: check before starting or increasing "
                                 f"{_names(new)}.",
                                 nice("1.3.3 (baseline electrolytes)"),
                                 "Serum potassium before starting and 1-2 weeks after.")
        return
    for i, o in enumerate(options):
        new_k_raising = o.started_set & K_RAISING
        if k >= 6.0 and (hit := o.after_set & K_RAISING):
            yield i, Finding(BLOCK, "potassium-stop",
                             f"K+ {k:.1f} mmol/L (>= 6.0): {_names(hit)} should be stopped, not "
                             "continued or started.", NG203_RAS)
        elif k > 5.0 and new_k_raising:
            yield i, Finding(BLOCK, "potassium-high-start",
                             f"K+ {k:.1f} mmol/L (> 5.0): do not start {_names(new_k_raising)}.",
                             NG203_RAS)
        elif k > 5.0 and (up := o.increased_set & K_RAISING):
            # the same rule for a dose going up (NG203 gives no exception): do not increase
            yield i, Finding(BLOCK, "potassium-high-increase",
                             f"K+ {k:.1f} mmol/L (> 5.0): do not increase {_names(up)}; "
                             "review the dose and recheck potassium.",
                             NG203_RAS)
        if SPIRO in o.increased_set and 4.5 < k <= 5.0:
            yield i, Finding(WARN, "spironolactone-potassium-over-4.5",
                             f"K+ {k:.1f} mmol/L (> 4.5): NICE step 4 suggests an alpha- or "
                             "beta-blocker rather than spironolactone.", nice("1.4.49-1.4.51"),
                             "Na+, K+ and renal function within 1 month.")
        if THZ in o.increased_set and k < 3.5:
            # indapamide SmPC 4.3 lists hypokalaemia: not until it is corrected
            yield i, Finding(BLOCK, "thiazide-hypokalaemia",
                             f"K+ {k:.1f} mmol/L (< 3.5): do not start or increase a "
                             "thiazide-like diuretic until hypokalaemia is corrected.",
                             smpc("indapamide"), "Potassium at 1 week.")


def renal_function(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """eGFR < 30: indapamide and spironolactone contraindicated, RAS blockers need close
    monitoring; eGFR 30-45: caution with spironolactone; unknown eGFR: check first."""
    egfr = p.get("egfr")
    if egfr is None:
        for i, o in enumerate(options):
            if hit := o.increased_set & K_RAISING_OR_THZ:
                yield i, Finding(WARN, "egfr-unknown",
                                 "Renal function unknown: check creatinine/eGFR before "
                                 f"starting or increasing {_names(hit)}.",
                                 nice("1.3.3 (baseline renal function)"),
                                 "Creatinine and eGFR before starting and 1-2 weeks after.")
        return
    if egfr < 30:
        for i, o in enumerate(options):
            new = o.increased_set
            if THZ in new:
                yield i, Finding(BLOCK, "thiazide-egfr-under-30",
                                 f"eGFR {egfr:.0f} (< 30): thiazide-like diuretic "
                                 "contraindicated.", smpc("indapamide"))
            if SPIRO in new:
                yield i, Finding(BLOCK, "spironolactone-egfr-under-30",
                                 f"eGFR {egfr:.0f} (< 30): spironolactone contraindicated.",
                                 smpc("spironolactone"))
            if hit := new & RAS_BLOCKERS:
                yield i, Finding(WARN, "ras-egfr-under-30",
                                 f"eGFR {egfr:.0f} (< 30): start or increase {_names(hit)} "
                                 "only with close monitoring.",
                                 NG203_RAS,
                                 "Creatinine and K+ 1-2 weeks after starting and after each "
                                 "dose change.")
    elif egfr < 45:
        for i, o in enumerate(options):
            if SPIRO in o.increased_set:
                yield i, Finding(WARN, "spironolactone-reduced-egfr",
                                 f"eGFR {egfr:.0f} (< 45): particular caution with "
                                 "spironolactone (hyperkalaemia).", nice("1.4.49-1.4.50"),
                                 "Na+, K+ and renal function within 1 month, then as needed.")


def sodium(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Hyponatraemia (Na+ < 135) contraindicates thiazide-like diuretics; unknown Na+: check."""
    na = p.get("sodium")
    for i, o in enumerate(options):
        new = o.increased_set
        if THZ in new:
            if na is None:
                yield i, Finding(WARN, "sodium-unknown", "Sodium unknown: check before starting or "
                                 "increasing a thiazide-like diuretic.",
                                 nice("1.3.3 (baseline electrolytes)"),
                                 "Na+ at baseline and within 1-4 weeks.")
            elif na < 135:
                yield i, Finding(BLOCK, "thiazide-hyponatraemia",
                                 f"Na+ {na:.0f} mmol/L (< 135): thiazide-like diuretic "
                                 "contraindicated.", smpc("bendroflumethiazide"))
        if SPIRO in new and na is not None and na < 135:
            yield i, Finding(WARN, "spironolactone-hyponatraemia",
                             f"Na+ {na:.0f} mmol/L (< 135): spironolactone can lower sodium "
                             "further.", smpc("spironolactone", "4.4 special warnings"),
                             "Na+ within 1 month.")


def gout(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Gout (symptomatic hyperuricaemia) contraindicates thiazide(-like) diuretics."""
    if not p.flag("gout"):
        return
    for i, o in enumerate(options):
        if THZ in o.increased_set:
            yield i, Finding(BLOCK, "thiazide-gout",
                             "Gout: thiazide-like diuretic contraindicated.",
                             smpc("bendroflumethiazide"))


def lithium(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Lithium: thiazides contraindicated; RAS blockers raise lithium levels."""
    if not p.flag("lithium"):
        return
    for i, o in enumerate(options):
        if THZ in o.increased_set:
            yield i, Finding(BLOCK, "thiazide-lithium", "Lithium: thiazide-like diuretic "
                             "contraindicated (lithium toxicity).", smpc("bendroflumethiazide"))
        if hit := o.increased_set & RAS_BLOCKERS:
            yield i, Finding(WARN, "ras-lithium", f"Lithium: {_names(hit)} raises lithium "
                             "levels.", bnf("lithium interactions"),
                             "Lithium level within 1-2 weeks.")


def beta_blocker(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Beta-blockers: contraindicated with heart rate < 60, second/third-degree heart block,
    asthma, or with verapamil/diltiazem; caution in COPD; unknown heart rate: check first."""
    hr = p.get("heart_rate")
    heart_block, asthma = p.flag("heart_block"), p.flag("asthma")
    copd, non_dhp_ccb = p.flag("copd"), p.flag("non_dhp_ccb")
    airways = p.flag("airways_therapy") and not (asthma or copd)
    sick_sinus = p.flag("sick_sinus")
    for i, o in enumerate(options):
        if BB not in o.increased_set:
            continue
        if hr is None:
            yield i, Finding(WARN, "heart-rate-unknown", "Heart rate unknown: check the pulse "
                             "before starting or increasing a beta-blocker.", smpc("bisoprolol"),
                             "Pulse before starting or increasing.")
        elif hr < 60:
            yield i, Finding(BLOCK, "beta-blocker-bradycardia",
                             f"Heart rate {hr:.0f}/min (< 60): beta-blocker contraindicated.",
                             smpc("bisoprolol"))
        if sick_sinus:
            yield i, Finding(BLOCK, "beta-blocker-sick-sinus", "Sick sinus syndrome: "
                             "beta-blocker contraindicated (unless paced).", smpc("bisoprolol"))
        if heart_block:
            yield i, Finding(BLOCK, "beta-blocker-heart-block", "Second- or third-degree heart "
                             "block: beta-blocker contraindicated.", smpc("bisoprolol"))
        if asthma:
            yield i, Finding(BLOCK, "beta-blocker-asthma", "Asthma: beta-blockers should be "
                             "avoided.", bnf("beta-adrenoceptor blocking drugs: asthma"))
        if airways:
            yield i, Finding(WARN, "beta-blocker-airways-therapy", "Asthma or COPD therapy "
                             "on record (e.g. salbutamol) without a diagnosis: check for asthma "
                             "before a beta-blocker.",
                             bnf("beta-adrenoceptor blocking drugs: asthma"),
                             "Ask about wheeze; review after starting.")
        if copd:
            yield i, Finding(WARN, "beta-blocker-copd", "COPD: use a cardioselective "
                             "beta-blocker with caution.",
                             smpc("bisoprolol", "4.4 special warnings"),
                             "Review breathlessness after starting.")
        if non_dhp_ccb:
            yield i, Finding(BLOCK, "beta-blocker-verapamil", "Taking verapamil or diltiazem: "
                             "do not add a beta-blocker (heart block, bradycardia).",
                             bnf("verapamil"))


def alpha_blocker(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Alpha-blockers: contraindicated with orthostatic hypotension; caution from age 80."""
    orthostatic = p.flag("orthostatic_hypotension")
    age = p.get("age")
    elderly = age is not None and age >= 80
    if not (orthostatic or elderly):
        return
    for i, o in enumerate(options):
        if ALPHA not in o.increased_set:
            continue
        if orthostatic:
            yield i, Finding(BLOCK, "alpha-blocker-orthostatic", "Orthostatic hypotension: "
                             "alpha-blocker contraindicated.", smpc("doxazosin"))
        if elderly:
            yield i, Finding(WARN, "alpha-blocker-elderly", "Age 80 or over: first-dose "
                             "postural hypotension; start at 1 mg.",
                             smpc("doxazosin", "4.4 special warnings"),
                             "Standing BP after the first dose.")


RECENT_CORONARY_DAYS = 30
"""Nifedipine is contraindicated during or within one month of a myocardial infarction
(prolonged-release SmPC 4.3): a month is taken as 30 days."""


def calcium_channel_blocker(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Dihydropyridine CCBs: contraindicated in high-grade aortic stenosis (severity is rarely
    coded, so any aortic stenosis blocks: unknown severity is not "mild"), within a month of an
    acute myocardial infarction or in unstable angina (nifedipine SmPC 4.3; amlodipine: not in
    haemodynamically unstable heart failure after an MI, which a record cannot show), and a
    caution on top of verapamil or diltiazem (two calcium-channel blockers; diltiazem raises
    amlodipine and nifedipine levels)."""
    aortic, non_dhp = p.flag("aortic_stenosis"), p.flag("non_dhp_ccb")
    acs = p.flag("acute_coronary")
    days = p.days_old("acute_coronary") if acs else None
    recent = acs and (days is None or days <= RECENT_CORONARY_DAYS)
    if not (aortic or non_dhp or recent):
        return
    for i, o in enumerate(options):
        if CCB not in o.increased_set:
            continue
        if aortic:
            yield i, Finding(BLOCK, "ccb-aortic-stenosis", "Aortic stenosis: dihydropyridine "
                             "CCB contraindicated if high grade (severity not recorded here); "
                             "cardiology advice.", smpc("amlodipine"))
        if recent and days is not None:
            yield i, Finding(BLOCK, "ccb-recent-coronary", f"Acute myocardial infarction or "
                             f"unstable angina {days} days ago (within {RECENT_CORONARY_DAYS}): "
                             "do not start or increase a dihydropyridine CCB; cardiology "
                             "advice.", smpc("nifedipine (prolonged release)"))
        elif recent:
            yield i, Finding(WARN, "ccb-coronary-undated", "Acute myocardial infarction or "
                             "unstable angina on record without a date: check it was not within "
                             "the last month before a dihydropyridine CCB.",
                             smpc("nifedipine (prolonged release)"),
                             "Ask about chest pain in the last month.")
        if non_dhp and CCB in o.started_set:
            yield i, Finding(WARN, "ccb-with-verapamil-diltiazem", "Taking verapamil or "
                             "diltiazem: a dihydropyridine CCB on top is a second calcium-channel "
                             "blocker (diltiazem raises its levels); prefer another class.",
                             bnf("diltiazem interactions"),
                             "BP, pulse and ankle swelling after starting.")


def potassium_sparing(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Spironolactone with potassium supplements or K-sparing drugs is contraindicated; with an
    ACE inhibitor or ARB it needs potassium monitoring."""
    supplement = p.flag("potassium_supplement")
    for i, o in enumerate(options):
        if supplement and (hit := o.increased_set & RAS_BLOCKERS):
            yield i, Finding(WARN, "ras-k-supplement", "Potassium supplement or potassium-"
                             f"sparing drug with {_names(hit)}: risk of hyperkalaemia.",
                             bnf("ACE inhibitors and ARBs: interactions (potassium)"),
                             "K+ and creatinine 1-2 weeks after the change.")
        if SPIRO not in o.increased_set:
            continue
        if supplement:
            yield i, Finding(BLOCK, "spironolactone-k-supplement", "Potassium supplement or "
                             "K-sparing drug: spironolactone contraindicated.",
                             smpc("spironolactone"))
        if o.after_set & RAS_BLOCKERS:
            yield i, Finding(WARN, "spironolactone-with-ras", "With an ACE inhibitor or ARB: "
                             "risk of severe hyperkalaemia.",
                             MHRA_SPIRONOLACTONE_RAS,
                             "K+ and creatinine at 1 week, monthly for 3 months, then "
                             "3-monthly.")


def triple_whammy(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """NSAID + RAS blocker + diuretic: acute kidney injury risk."""
    if not p.flag("nsaid"):
        return
    for i, o in enumerate(options):
        a = o.after_set
        if a & RAS_BLOCKERS and a & DIURETICS and o.increased_set & RAS_OR_DIURETIC:
            yield i, Finding(WARN, "triple-whammy", "NSAID with a RAS blocker and a diuretic: "
                             "risk of acute kidney injury; review the NSAID.",
                             MHRA_NSAID_RENAL, "Creatinine within 1-2 weeks.")


def ace_inhibitor_intolerance(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """ACE inhibitor not tolerated (cough): offer an ARB instead."""
    if not p.flag("ace_inhibitor_intolerance"):
        return
    for i, o in enumerate(options):
        if ACEI in o.started_set:
            yield i, Finding(WARN, "acei-intolerance", "ACE inhibitor previously not "
                             "tolerated: NICE recommends an ARB instead.", nice("1.4.33"))


def ethnicity_ras(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Black African or African-Caribbean family origin: consider an ARB rather than an ACE
    inhibitor (smaller BP effect and more angioedema with ACE inhibitors)."""
    if not p.flag("ethnicity_black"):
        return
    for i, o in enumerate(options):
        if ACEI in o.started_set:
            yield i, Finding(INFO, "acei-black-origin", "Black African or African-Caribbean "
                             "family origin: consider an ARB in preference to an ACE "
                             "inhibitor.", nice("1.4.30"))


def heart_failure_stops(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """In HFrEF, beta-blockers and ACE inhibitors/ARBs are prognostic: do not stop them to
    treat BP."""
    if not p.flag("hfref"):
        return
    for i, o in enumerate(options):
        if hit := o.stopped_set & PROGNOSTIC_IN_HFREF:
            yield i, Finding(WARN, "hfref-stops-prognostic", f"HFrEF: stopping {_names(hit)} "
                             "removes prognostic heart-failure treatment.",
                             nice_ng106("section 1.4 'Treatment combinations for heart failure "
                                        "with reduced ejection fraction'"),
                             "Discuss with the heart-failure team.")


STALE_LAB_DAYS = 90
"""A potassium or eGFR older than this is re-checked before a potassium-raising drug is
started or increased (project policy: NG203 and NG136 1.3.3 ask for the values before
starting; a result from months ago may not be today's)."""


def stale_labs(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """A potassium or eGFR result too old to start or increase an ACE inhibitor, ARB or
    spironolactone on: check it first (unknown results have their own findings)."""
    old = [(name, days) for name in ("potassium", "egfr")
           if p.get(name) is not None and (days := p.days_old(name)) is not None
           and days > STALE_LAB_DAYS]
    if not old:
        return
    what = " and ".join(f"{'eGFR' if n == 'egfr' else 'potassium'} {d} days old" for n, d in old)
    for i, o in enumerate(options):
        if hit := o.increased_set & K_RAISING:
            yield i, Finding(WARN, "labs-stale", f"Latest {what} (> {STALE_LAB_DAYS}): recheck "
                             f"before starting or increasing {_names(hit)}.",
                             policy(f"labs older than {STALE_LAB_DAYS} days are rechecked "
                                    "before a potassium-raising drug"),
                             "U&E before the change and 1-2 weeks after.")


def renoprotection(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """CKD with albuminuria (ACR >= 30, or >= 3 with diabetes): an ACE inhibitor or ARB is
    offered for the kidney (NG203); an option that stops the only one removes it."""
    acr = p.get("urine_acr")
    if not p.flag("ckd") or acr is None or not (acr >= 30 or (p.flag("diabetes_t2")
                                                              and acr >= 3)):
        return
    for i, o in enumerate(options):
        if o.stopped_set & RAS_BLOCKERS and not o.after_set & RAS_BLOCKERS:
            yield i, Finding(WARN, "removes-renoprotection",
                             f"CKD with ACR {acr:g} mg/mmol: stopping the ACE inhibitor or ARB "
                             "removes its kidney protection.",
                             NG203_RAS,
                             "Keep an ACE inhibitor or ARB unless contraindicated.")


def fifth_drug(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Uncontrolled on four drugs at optimal doses: NICE asks for specialist advice (1.4.52),
    not a fifth drug."""
    n = p.n_antihypertensives()
    if n < 4:
        return
    for i, o in enumerate(options):
        if o.started and len(o.after_set) > len(p.regimen):
            yield i, Finding(WARN, "fifth-drug", f"Already on {n} antihypertensives: NICE "
                             "advises specialist advice rather than another drug.",
                             nice("1.4.52"))


def hypotension_and_hfref(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Beta-blockers are contraindicated with systolic BP < 100 (SmPC); alpha-blockers need
    caution in heart failure (SmPC doxazosin 4.4)."""
    sbp = p.get("sbp_clinic")
    hfref = p.flag("hfref") or p.flag("heart_failure")
    for i, o in enumerate(options):
        up = o.increased_set
        if BB in up and sbp is not None and sbp < 100:
            yield i, Finding(BLOCK, "beta-blocker-hypotension", f"Systolic {sbp:.0f} mmHg "
                             "(< 100): beta-blocker contraindicated.", smpc("bisoprolol"))
        if ALPHA in up and hfref:
            yield i, Finding(WARN, "alpha-blocker-heart-failure", "Heart failure: "
                             "alpha-blockers need caution (fluid retention; ALLHAT stopped its "
                             "doxazosin arm for heart failure).",
                             smpc("doxazosin", "4.4 special warnings"))


MHRA_ALISKIREN = mhra("Aliskiren (Rasilez): risk of cardiovascular and renal adverse reactions "
                      "(March 2012)")


def aliskiren(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Aliskiren with an ACE inhibitor or ARB: contraindicated in diabetes or with eGFR < 60,
    not recommended otherwise (MHRA 2012)."""
    if not p.flag("aliskiren"):
        return
    egfr = p.get("egfr")
    contraindicated = p.flag("diabetes_t2") or egfr is None or egfr < 60
    why = ("diabetes" if p.flag("diabetes_t2") else "eGFR unknown" if egfr is None
           else f"eGFR {egfr:.0f}")
    for i, o in enumerate(options):
        if hit := o.increased_set & RAS_BLOCKERS:
            if contraindicated:
                yield i, Finding(BLOCK, "aliskiren-ras", f"Taking aliskiren ({why}): "
                                 f"{_names(hit)} contraindicated with it.", MHRA_ALISKIREN)
            else:
                yield i, Finding(WARN, "aliskiren-ras", f"Taking aliskiren: {_names(hit)} "
                                 "with it is not recommended (hyperkalaemia, renal failure).",
                                 MHRA_ALISKIREN, "K+ and creatinine within 1-2 weeks.")


def renal_artery_stenosis(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Renal artery stenosis: ACE inhibitors and ARBs are contraindicated when it is bilateral
    or affects a single functioning kidney (SmPC); laterality is rarely coded, so starting or
    increasing one is blocked and continuing one is a caution."""
    if not p.flag("renal_artery_stenosis"):
        return
    for i, o in enumerate(options):
        if hit := o.increased_set & RAS_BLOCKERS:
            yield i, Finding(BLOCK, "ras-renal-artery-stenosis", "Renal artery stenosis on "
                             f"record: do not start or increase {_names(hit)} (contraindicated "
                             "if bilateral or in a single functioning kidney); specialist "
                             "advice.", smpc("ramipril"))
        elif hit := o.after_set & RAS_BLOCKERS:
            yield i, Finding(WARN, "ras-renal-artery-stenosis", "Renal artery stenosis on "
                             f"record with {_names(hit)}: check it is not bilateral; creatinine "
                             "and K+ now.", smpc("ramipril"))


def sacubitril_valsartan(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """On sacubitril/valsartan: an ACE inhibitor is contraindicated with it and no sooner than
    36 hours after its last dose (angioedema; SmPC); it is titrated on its heart-failure
    regimen, not as an ARB here."""
    if not p.flag("sacubitril_valsartan"):
        return
    for i, o in enumerate(options):
        if ACEI in o.increased_set:
            yield i, Finding(BLOCK, "acei-sacubitril", "Taking sacubitril/valsartan: an ACE "
                             "inhibitor is contraindicated with it, and only 36 hours after "
                             "its last dose (angioedema).", smpc("sacubitril/valsartan"))
        if ARB in o.increased_set - o.started_set:
            yield i, Finding(BLOCK, "sacubitril-titration", "Sacubitril/valsartan is titrated "
                             "on its heart-failure regimen, not as an ARB dose here.",
                             smpc("sacubitril/valsartan", "4.2 posology"))


def renal_dosing(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """Renal dose notes of the SmPCs for the drugs the options order ([M]: a pharmacist
    checks them): with eGFR < 60, ramipril no more than 5 mg a day and candesartan started at
    4 mg."""
    egfr = p.get("egfr")
    if egfr is None or egfr >= 60:
        return
    ramipril = p.current_drugs.get(ACEI, ("ramipril", None))[0] == "ramipril"
    for i, o in enumerate(options):
        j = CLASS_ORDER.index(ACEI)
        if ramipril and ACEI in o.increased_set and over_renal_ramipril(o.dose_after[j]):
            yield i, Finding(WARN, "renal-dose-ramipril", f"eGFR {egfr:.0f} (< 60): ramipril "
                             "no more than 5 mg a day.", smpc("ramipril", "4.2 posology"),
                             "Creatinine and K+ 1-2 weeks after the change.")
        if ARB in o.started_set:
            yield i, Finding(INFO, "renal-dose-candesartan", f"eGFR {egfr:.0f} (< 60): start "
                             "candesartan at 4 mg a day.", smpc("candesartan", "4.2 posology"))


def over_renal_ramipril(multiple: float) -> bool:
    """Whether ramipril at this dose multiple is above the 5 mg renal maximum."""
    return multiple * CLASS_INFO[ACEI].standard_dose_mg > 5.0 + 1e-9


def licensed_maximum(p: FeatureVector, options: Options) -> Iterator[Hit]:
    """A titration never goes past the licensed maximum daily dose of the drug the patient
    takes (eplerenone 50 mg, indapamide 2.5 mg: "increase indapamide to 2x" would be 5 mg);
    of a drug whose maximum is not in the table, the card says it was not checked."""
    for i, o in enumerate(options):
        for c in o.increased_set - o.started_set:
            j = CLASS_ORDER.index(c)
            drug, daily = p.current_drugs.get(c, (STARTING[c].drug, None))
            mg: float | None = None
            if daily is not None and o.dose_before[j] > 0:
                mg = daily * o.dose_after[j] / o.dose_before[j]
            elif drug == STARTING[c].drug:  # strength unknown: the model's dose multiple
                mg = daily_mg(c, o.dose_after[j])
            limit = MAX_DAILY_MG.get(drug)
            if limit is None or mg is None:
                yield i, Finding(WARN, "maximum-not-checked", f"The licensed maximum of "
                                 f"{drug} is not checked here: check the SmPC before "
                                 "increasing.", smpc(drug, "4.2 posology"))
            elif mg > limit + 1e-9:
                yield i, Finding(BLOCK, "above-licensed-maximum", f"{drug} {mg:g} mg a day "
                                 f"is above the licensed maximum of {limit:g} mg.",
                                 smpc(drug, "4.2 posology"))


SAFETY_RULES: tuple[Rule, ...] = (
    ras_in_pregnancy, breastfeeding, ras_childbearing_potential, angioedema, dual_ras_blockade,
    potassium, renal_function, sodium, gout, lithium, beta_blocker, alpha_blocker,
    calcium_channel_blocker, potassium_sparing, triple_whammy, ace_inhibitor_intolerance,
    ethnicity_ras, heart_failure_stops, stale_labs, renoprotection, fifth_drug,
    hypotension_and_hfref, aliskiren, licensed_maximum, renal_artery_stenosis, renal_dosing,
    sacubitril_valsartan,
)


def catalogue_findings(p: FeatureVector, options: Options,
                       rules: tuple[Rule, ...] = SAFETY_RULES) -> tuple[tuple[Finding, ...], ...]:
    """The findings of every option, in catalogue order; each option's findings in rule order
    (and in each rule's own order)."""
    found: list[list[Finding]] = [[] for _ in options]
    for rule in rules:
        for i, f in rule(p, options):
            found[i].append(f)
    return tuple(map(tuple, found))


def option_findings(p: FeatureVector, o: TreatmentOption,
                    rules: tuple[Rule, ...] = SAFETY_RULES) -> tuple[Finding, ...]:
    """The findings of one option (see :func:`catalogue_findings`)."""
    return catalogue_findings(p, (o,), rules)[0]
