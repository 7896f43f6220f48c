"""Assessment: model scores + SHAP drivers + guideline findings -> ranked, cited options.

:func:`assess` is the decision pipeline's centre (DESIGN.md section 3). Safety comes before
ranking, in this order:

1. ``cannot_assess`` for a deceased patient, a child, or an unknown age;
2. ``pathway`` when a stop condition holds (:mod:`models.guideline.stops`: severe
   hypertension, hyperkalaemia, kidney failure, pregnancy, low BP, postural hypotension,
   over-treatment): the stops say what to do, and no option is ranked;
3. ``cannot_assess`` when the clinic BP is missing or old, or the medication, condition or
   allergy list could not be obtained (unknown is never "none");
4. ``assessed``: every valid option is scored, the safety rules applied, the options that are
   not contraindicated ranked by predicted benefit, and the guideline's own preferred step put
   beside the ranking. A contraindicated (BLOCK) option gets no rank and is never first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from fhir_mappings.availability import REQUIRED_DOMAINS, Domain
from fhir_mappings.features import FeatureVector, Provenance
from models.driver_words import (
    CURRENT_DRUGS,
    DRUG_CHANGE,
    NO_EFFECT_FEATURES,
    OTHER_FACTORS,
    SHOWN_FEATURES,
    change_words,
    changed_classes,
    current_reason,
    current_words,
    feature_reason,
    feature_value_words,
    option_short,
    sentence,
)
from models.explainer import Explainer
from models.guideline.citations import nice, nice_ng106, nice_ng133, policy
from models.guideline.findings import Finding, Severity, max_severity
from models.guideline.nice import treatment_indication
from models.guideline.profiles import NICE, GuidelineProfile
from models.guideline.safety import MHRA_ALISKIREN, catalogue_findings, option_findings
from models.guideline.stops import Stop, stop_conditions
from models.guideline.targets import Setting, Target
from models.model_rows import assemble
from models.option_labels import CurrentDrugs, personal_label
from models.options import Action, TreatmentOption, dose_matrices, valid_options
from models.prescribing import StartingProduct, starting_product
from models.ranking import Tier, guideline_order
from models.scorer import ScoreBatch, Scorer
from models.uncertainty_words import p_target_meaningful
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, RAS_BLOCKERS, DrugClass
from vocabulary.feature_table import (
    CHG_SLICE,
    CUR_SLICE,
    FEATURES_BY_NAME,
    MODEL_FEATURE_NAMES,
)

BP_LOOKBACK_DAYS = 365
MIN_AGE = 18


class AssessmentStatus(StrEnum):
    """How the assessment ended: options ranked (``assessed``), a stop condition's pathway
    instead of a ranked list (``pathway``), or not assessed, with the reasons
    (``cannot_assess``)."""

    ASSESSED = "assessed"
    CANNOT_ASSESS = "cannot_assess"
    PATHWAY = "pathway"


class OptionStatus(StrEnum):
    """What the guideline layer says of one option: ``recommended`` (the first option, within
    the guideline's step), ``alternative`` (another within the step), ``caution``,
    ``beyond-step`` (outside what the guideline permits at this step), ``contraindicated``
    (never ranked), ``not-lowering`` (predicted not to lower BP: not offered), ``not-ranked``
    (an option of a pathway's safety check, with no finding against it)."""

    RECOMMENDED = "recommended"
    ALTERNATIVE = "alternative"
    CAUTION = "caution"
    CONTRAINDICATED = "contraindicated"
    BEYOND_STEP = "beyond-step"
    NOT_LOWERING = "not-lowering"
    NOT_RANKED = "not-ranked"

    @classmethod
    def unranked(cls, severity: Severity | None) -> OptionStatus:
        """The status of an option checked but not ranked (a pathway's catalogue)."""
        if severity is Severity.BLOCK:
            return cls.CONTRAINDICATED
        return cls.CAUTION if severity is Severity.WARN else cls.NOT_RANKED


@dataclass(frozen=True, slots=True)
class Driver:
    """One SHAP contribution to the expected effect, against a stated baseline
    (:attr:`Assessment.drivers_baseline`, or the guideline's choice in a
    :class:`ChoiceComparison`): ``contribution`` mmHg (negative: more lowering).

    ``feature`` is a model feature name, or one of the groups of
    :mod:`models.driver_words`: ``drug_change`` (the option's dose changes, summed over the
    per-class columns), ``current_drugs`` (the drugs already taken, summed) and, in a
    comparison only, ``other_factors`` (the remainder, so that the drivers add up). ``words``
    says it in plain words, without the number ("age 69: favours amlodipine (calcium-channel
    blockers lower BP more in older people)")."""

    feature: str
    label: str
    value: float | None
    unit: str
    contribution: float
    words: str


@dataclass(frozen=True, slots=True)
class ChoiceComparison:
    """Why the first option differs from the guideline's own choice, in the model's terms:
    the difference of their expected effects for this patient and its SHAP decomposition
    (SHAP is additive, so phi(first) - phi(choice) sums to the difference of the outputs; the
    drivers include an ``other_factors`` remainder and add up to ``difference`` within 1e-3).
    """

    first: str
    """The first option's id."""
    choice: str
    """The guideline's choice's id."""
    first_label: str
    choice_label: str
    difference: float
    """Expected effect of the first minus that of the guideline's choice (mmHg; negative:
    the first is expected to lower systolic BP more)."""
    drivers: tuple[Driver, ...]
    """The largest contributions to ``difference`` and the remainder (empty when no
    explainer ran)."""
    summary: str
    """One line, e.g. "Amlodipine is expected to lower systolic BP 3.4 mmHg more than the
    guideline's choice (ramipril): -9.1 vs -5.7 mmHg; mostly age 69"."""


@dataclass(frozen=True, slots=True)
class OptionAssessment:
    option: TreatmentOption
    rank: int | None
    status: OptionStatus
    predicted_sbp_change: float
    interval: tuple[float, float]
    interval_coverage: float
    p_target: float
    findings: tuple[Finding, ...]
    drivers: tuple[Driver, ...]
    guideline_preferred: bool
    in_step: bool = True
    """Within what the guideline permits at this step (its preferred options, or a dose
    increase of a current drug); False: beyond the step."""
    expected_effect: float = 0.0
    """The option's own expected effect on the patient's usual systolic BP (mmHg; what the
    ranking reads); ``predicted_sbp_change`` is the expected change of one 12-week clinic
    reading from the reading the decision is made on (it adds regression to the mean)."""
    effect_interval: tuple[float, float] = (0.0, 0.0)
    """Bounds of the expected effect for a patient like this one, at ``effect_coverage``."""
    effect_coverage: float = 0.0
    p_target_shown: bool = False
    """Whether ``p_target`` means anything here and is shown
    (:func:`models.uncertainty_words.p_target_meaningful`: the option is ranked and the
    clinic systolic BP is at or above the target's)."""

    @property
    def blocked(self) -> bool:
        return max_severity(self.findings) is Severity.BLOCK

    @property
    def status_words(self) -> str:
        """The status as a clinician reads it: a caution on an option beyond the guideline's
        step says both (the status alone would hide that the option is outside the step)."""
        if self.status is OptionStatus.CAUTION and not self.in_step:
            return "caution, beyond the guideline's step"
        return self.status.value


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    version: str
    provider: str


@dataclass(frozen=True, slots=True)
class Assessment:
    status: AssessmentStatus
    reasons: tuple[str, ...]
    guideline: str
    target: Target | None
    current_regimen: Mapping[DrugClass, float]
    guideline_step: str | None
    guideline_default: tuple[str, ...]
    findings: tuple[Finding, ...]
    options: tuple[OptionAssessment, ...]
    provenance: tuple[Provenance, ...]
    model: ModelInfo
    drivers_base_value: float | None = None
    stops: tuple[Stop, ...] = ()
    """Stop conditions (status ``pathway``): what to do instead of a ranked list."""
    unavailable: tuple[tuple[Domain, str], ...] = ()
    """Parts of the record that could not be obtained: (domain, reason)."""
    data_quality: tuple[str, ...] = ()
    clinic_bp: tuple[float | None, float | None] = (None, None)
    """The clinic BP the assessment read (systolic, diastolic)."""
    current_drugs: CurrentDrugs = field(default_factory=dict)
    """The patient's own drug and daily dose per class (for the option labels)."""
    order_products: Mapping[DrugClass, StartingProduct] = field(default_factory=dict)
    """The product a start of each class is ordered as, for this patient."""
    choice_reason: str | None = None
    """Why the first option is not the guideline's own choice, in one line (None when it is)."""
    checked: tuple[tuple[TreatmentOption, tuple[Finding, ...]], ...] = ()
    """Status ``pathway``: every option of the catalogue with its safety findings, unranked
    and unscored, so that a drug being ordered is still checked for contraindications."""
    comparison: ChoiceComparison | None = None
    """The first option against the guideline's choice, when they differ (None otherwise,
    and when no explainer ran)."""
    drivers_baseline: str | None = None
    """What each option's drivers are measured against, in words (None when no option was
    explained), e.g. "the average expected effect of the 9 options ranked for this patient
    (-6.2 mmHg)"; ``drivers_base_value`` is that average."""

    @property
    def first(self) -> OptionAssessment | None:
        return next((o for o in self.options if o.rank == 1), None)

    def label(self, o: TreatmentOption) -> str:
        """The option's label with the patient's own drug and dose where the record has them."""
        return personal_label(o, self.current_drugs)

    def order(self, o: TreatmentOption) -> StartingProduct | None:
        """The product a start or addition of one class is ordered as (None for any other
        option: a switch, a titration, a combination)."""
        if len(o.started) != 1 or o.stopped:
            return None
        return self.order_products.get(o.started[0])

    def unavailable_reason(self, domain: Domain) -> str | None:
        """Why ``domain`` could not be obtained, or None when it was."""
        return next((why for d, why in self.unavailable if d is domain), None)


def _patient_reasons(p: FeatureVector) -> list[str]:
    """Reasons no assessment at all is possible: not a living adult of known age."""
    reasons = []
    if p.deceased:
        reasons.append("patient is recorded as deceased")
    age = p.get("age")
    if age is None:
        reasons.append("age unknown")
    elif age < MIN_AGE:
        reasons.append(f"age {age:.0f}: this service is for adults (18 or over)")
    return reasons


def _cannot_assess_reasons(p: FeatureVector) -> list[str]:
    """Reasons the options cannot be ranked: missing BP, a part of the record unavailable."""
    reasons = _patient_reasons(p)
    for domain in REQUIRED_DOMAINS:
        why = p.unavailable.get(domain.value)
        if why is not None:
            reasons.append(f"{domain.label} could not be obtained ({why}): options are not "
                           "ranked without it")
    if p.get("sbp_clinic") is None:
        why = next((pr.note for pr in p.provenance if pr.feature == "sbp_clinic" and pr.note),
                   None)
        reasons.append(why or "no clinic blood pressure reading")
    elif p.days_since_bp is not None and p.days_since_bp > BP_LOOKBACK_DAYS:
        reasons.append(f"latest clinic blood pressure is {p.days_since_bp} days old "
                       f"(more than {BP_LOOKBACK_DAYS})")
    return reasons


#: Columns of the patient features that may be shown as drivers, and of those that change no
#: drug's effect in the simulated truth (never shown; :mod:`models.driver_words`).
_SHOWN_COLS = np.array([MODEL_FEATURE_NAMES.index(n) for n in SHOWN_FEATURES], dtype=np.intp)
_NO_EFFECT_COLS = np.array([MODEL_FEATURE_NAMES.index(n) for n in NO_EFFECT_FEATURES],
                           dtype=np.intp)
#: Contributions smaller than this (mmHg) are not shown as drivers.
MIN_DRIVER_MMHG = 0.05


def _grouped(phi: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float]:
    """SHAP values of one row (or a difference of rows) by driver: [drug change, drugs
    already taken, each shown patient feature], and the sum over the no-effect features."""
    contrib = np.concatenate(([phi[CHG_SLICE].sum(), phi[CUR_SLICE].sum()], phi[_SHOWN_COLS]))
    return contrib, float(phi[_NO_EFFECT_COLS].sum())


def _driver(j: int, c: float, row: npt.NDArray[np.float32], change: str,
            regimen: Mapping[DrugClass, float], drugs: CurrentDrugs,
            classes: tuple[frozenset[DrugClass], frozenset[DrugClass] | None], more: str,
            less: str, group_why: str) -> Driver:
    """Driver ``j`` of :func:`_grouped` with contribution ``c``, in words; ``classes``: the
    classes the option changes and those of the option it is compared with (None: all)."""
    current = current_words(regimen, drugs)
    if j == 0:
        return Driver(DRUG_CHANGE, change, None, "", c,
                      sentence(change, c, more, less, group_why))
    if j == 1:
        return Driver(CURRENT_DRUGS, current, None, "", c,
                      sentence(current, c, more, less, current_reason(regimen, c)))
    name = SHOWN_FEATURES[j - 2]
    spec = FEATURES_BY_NAME[name]
    raw = float(row[_SHOWN_COLS[j - 2]])
    v = None if math.isnan(raw) else raw
    return Driver(name, spec.label, None if v is None else round(v, 2), spec.unit, c,
                  sentence(feature_value_words(name, v), c, more, less,
                           feature_reason(name, v, c, *classes)))


def _top(contrib: npt.NDArray[np.float64], k: int) -> list[int]:
    order = np.argsort(-np.abs(contrib), kind="stable")[:k].tolist()
    return [j for j in order if abs(contrib[j]) >= MIN_DRIVER_MMHG]


def _drivers(o: TreatmentOption, row: npt.NDArray[np.float32], dphi: npt.NDArray[np.float64],
             k: int, regimen: Mapping[DrugClass, float], drugs: CurrentDrugs
             ) -> tuple[Driver, ...]:
    """The top-k drivers of one option's expected effect against the baseline (``dphi``: its
    SHAP values minus the baseline's), in words; no-effect features are never shown."""
    contrib, _ = _grouped(dphi)
    return tuple(_driver(j, round(float(contrib[j]), 2), row, change_words(o, drugs),
                         regimen, drugs, (changed_classes(o), None),
                         "more lowering with this option", "less lowering with this option",
                         "this option against the others, for patients in general")
                 for j in _top(contrib, k))


def _comparison(first: OptionAssessment, choice: OptionAssessment, diff: float,
                rows: tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]] | None,
                k: int, regimen: Mapping[DrugClass, float], drugs: CurrentDrugs
                ) -> ChoiceComparison:
    """The first option against the guideline's choice: ``diff`` the served difference of
    their expected effects, ``rows`` the first's feature row and phi(first) - phi(choice)
    (None: no explainer ran, no drivers)."""
    a, b = first.option, choice.option
    first_label, choice_label = personal_label(a, drugs), personal_label(b, drugs)
    drivers: list[Driver] = []
    if rows is not None:
        row, dphi = rows
        contrib, rest = _grouped(dphi)
        more = f"favours {option_short(a, drugs)}"
        less = f"favours {option_short(b, drugs)} (the guideline's choice)"
        classes = (changed_classes(a), changed_classes(b))
        shown = _top(contrib, k)
        drivers = [_driver(j, round(float(contrib[j]), 4), row,
                           f"{change_words(a, drugs)} rather than {change_words(b, drugs)}",
                           regimen, drugs, classes, more, less,
                           "the two options compared, for patients in general")
                   for j in shown]
        other = round(float(contrib.sum()) + rest - sum(float(contrib[j]) for j in shown), 4)
        drivers.append(Driver(OTHER_FACTORS, "all other factors together", None, "", other,
                              sentence("all other factors together", other, more, less,
                                       None)))
    side = "more" if diff < 0 else "less"
    summary = (f"{first_label}: expected effect {first.expected_effect:+.1f} mmHg against "
               f"{choice.expected_effect:+.1f} mmHg for the guideline's choice "
               f"({choice_label}), {abs(diff):.1f} mmHg {side} lowering")
    # the largest driver on the side of the difference (drivers come largest first)
    top = next((d for d in drivers if d.feature != OTHER_FACTORS
                and (d.contribution < 0) == (diff < 0)), None)
    if top is not None:
        what = (top.label if top.feature in (DRUG_CHANGE, CURRENT_DRUGS)
                else feature_value_words(top.feature, top.value))
        summary += f"; mostly from {what} ({top.contribution:+.1f} mmHg)"
    return ChoiceComparison(a.id, b.id, first_label, choice_label, round(diff, 4),
                            tuple(drivers), summary + ".")


def _data_findings(p: FeatureVector) -> list[Finding]:
    """What the clinician must know about the data: unavailable labs (named with what stays
    unknown) and each data-quality warning (conflicting or rejected values)."""
    out = []
    why = p.unavailable.get(Domain.LABS.value)
    if why is not None:
        unknown = [FEATURES_BY_NAME[n].label for n in
                   ("potassium", "sodium", "egfr", "urine_acr", "hba1c") if p.get(n) is None]
        out.append(Finding(Severity.WARN, "labs-unavailable",
                           f"Laboratory results could not be obtained ({why}): "
                           f"{', '.join(unknown) or 'none'} unknown; check before prescribing.",
                           policy("unknown is never 'none'")))
    for text in p.data_quality:
        out.append(Finding(Severity.WARN, "data-quality", text,
                           policy("data quality: values not used are named")))
    return out


def _patient_findings(p: FeatureVector, target: Target) -> list[Finding]:
    out = _data_findings(p)
    if p.flag("breastfeeding"):
        out.append(Finding(Severity.INFO, "breastfeeding", "Breastfeeding: NICE NG133 names "
                           "enalapril, nifedipine or amlodipine (for women of Black African or "
                           "Caribbean family origin), then a combination, then atenolol or "
                           "labetalol, and advises avoiding diuretics and ARBs where possible.",
                           nice_ng133("section 'Antihypertensive treatment during the postnatal "
                                      "period, including during breastfeeding'")))
    if p.flag("hfref") and p.flag("non_dhp_ccb"):
        out.append(Finding(Severity.WARN, "hfref-non-dhp-ccb", "HFrEF with verapamil or "
                           "diltiazem: avoid non-dihydropyridine CCBs.",
                           nice_ng106("recommendation on calcium-channel blockers in HFrEF "
                                      "(number not verified)")))
    if p.days_since_bp is None:
        out.append(Finding(Severity.WARN, "bp-date-unknown", "Date of the clinic BP reading "
                           "unknown.", nice("1.4.15")))
    if (ind := treatment_indication(p, target)) is not None:
        out.append(ind)
    out += _prescribing_checks(p, ind)
    return out


#: Rules whose verdict on a drug already taken is said elsewhere (a stop condition, the
#: ACEi + ARB check) or is about starting only.
_NOT_FOR_CURRENT = frozenset({"acei-plus-arb", "potassium-high-start", "potassium-high-increase",
                              "above-licensed-maximum", "fifth-drug"})


def _current_contraindicated(p: FeatureVector) -> list[Finding]:
    """A drug the patient already takes that a rule would forbid starting (gout on a
    thiazide, a heart rate of 48 on bisoprolol ...): the prescriber's action is to review it -
    reduce or stop - and the card says so. Each current class is checked as if it were
    started, by the same rules."""
    out = []
    zeros = (0.0,) * len(CLASS_ORDER)
    hr = p.get("heart_rate")
    for c, dose in p.regimen.items():
        after = tuple(dose if k is c else 0.0 for k in CLASS_ORDER)
        as_new = TreatmentOption(f"current-{c.value}", Action.START, c.value, (c,), zeros,
                                 after)
        drug = p.current_drugs.get(c, (CLASS_INFO[c].drug, None))[0]
        for f in option_findings(p, as_new):
            if f.code == "beta-blocker-bradycardia" and hr is not None and hr >= 50:
                continue  # a rate in the 50s on a beta-blocker is its intended effect
            if f.severity is Severity.BLOCK and f.code not in _NOT_FOR_CURRENT:
                out.append(Finding(Severity.WARN, "current-contraindicated",
                                   f"Already taking {drug}: {f.message} Review it: reduce or "
                                   "stop.", f.citation))
    return out


def _prescribing_checks(p: FeatureVector, ind: Finding | None) -> list[Finding]:
    """What a prescriber checks before stepping up (NG136): adherence, standing BP where NICE
    asks for it, an ACE inhibitor with an ARB already prescribed, four drugs uncontrolled."""
    out = []
    regimen = frozenset(p.regimen)
    if regimen >= RAS_BLOCKERS:
        out.append(Finding(Severity.WARN, "acei-plus-arb-current", "Taking an ACE inhibitor "
                           "and an ARB together: stop one.", nice("1.4.34")))
    n = p.n_antihypertensives()
    if ind is not None and ind.code == "step-up":
        if n >= 4:
            out.append(Finding(Severity.WARN, "specialist-advice", f"Uncontrolled on {n} "
                               "antihypertensives: seek specialist advice.", nice("1.4.52")))
        out.append(Finding(Severity.INFO, "check-adherence", "Before stepping up: check "
                           "adherence and that doses are optimal.", nice("1.4.40 and 1.4.44")))
    out += _current_contraindicated(p)
    if p.flag("aliskiren") and regimen & RAS_BLOCKERS:
        out.append(Finding(Severity.WARN, "aliskiren-with-ras-current", "Taking aliskiren with "
                           "an ACE inhibitor or ARB: stop aliskiren (contraindicated in "
                           "diabetes or eGFR < 60, not recommended otherwise).",
                           MHRA_ALISKIREN))
    age = p.get("age")
    if (p.flag("diabetes_t2") or (age is not None and age >= 80)) and not p.flag(
            "orthostatic_hypotension"):
        out.append(Finding(Severity.INFO, "measure-standing-bp", "Type 2 diabetes or age 80 "
                           "or over: measure standing BP too, and treat to the standing BP if "
                           "it falls by 20/10 mmHg or more.", nice("1.4.16")))
    return out


def assess(p: FeatureVector, scorer: Scorer, explainer: Explainer,
           profile: GuidelineProfile = NICE, n_drivers: int = 3,
           explain_top: int | None = None) -> Assessment:
    """Assess one patient (see the module docstring for the order of the checks).

    ``explain_top`` limits SHAP to the first ranked options (what a card shows); ``None``
    explains every option that is not contraindicated (what the panel shows). What the
    document shows of the patient's data (availability, data quality, clinic BP, own drugs,
    the products to order) is set here once, whichever way the assessment ended.
    """
    return replace(_assess(p, scorer, explainer, profile, n_drivers, explain_top),
                   unavailable=tuple((Domain(d), why)
                                     for d, why in sorted(p.unavailable.items())),
                   data_quality=p.data_quality,
                   clinic_bp=(p.get("sbp_clinic"), p.get("dbp_clinic")),
                   current_drugs=dict(p.current_drugs),
                   order_products={c: starting_product(c, p) for c in DrugClass})


def _assess(p: FeatureVector, scorer: Scorer, explainer: Explainer,
            profile: GuidelineProfile, n_drivers: int,
            explain_top: int | None) -> Assessment:
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    regimen = dict(p.regimen)
    reasons = _patient_reasons(p)
    if reasons:
        return Assessment(AssessmentStatus.CANNOT_ASSESS, tuple(reasons), profile.name, None,
                          regimen, None, (), (), (), p.provenance, model)
    target = profile.target(p, Setting.CLINIC)
    stops = stop_conditions(p, target)
    reasons = _cannot_assess_reasons(p)
    if stops:
        notes = [Finding(Severity.WARN, "not-ranked", r, policy("unknown is never 'none'"))
                 for r in reasons] + _data_findings(p)
        catalogue = valid_options(p.regimen)
        checked = tuple(zip(catalogue, catalogue_findings(p, catalogue), strict=True))
        return Assessment(AssessmentStatus.PATHWAY, tuple(s.summary for s in stops),
                          profile.name, target, regimen, None, (), tuple(notes), (),
                          p.provenance, model, stops=stops, checked=checked)
    if reasons:
        return Assessment(AssessmentStatus.CANNOT_ASSESS, tuple(reasons), profile.name, None,
                          regimen, None, (), tuple(_data_findings(p)), (), p.provenance,
                          model)

    options = valid_options(p.regimen)
    before, after = dose_matrices(options)
    x = assemble(p.model_vector(), before, after)
    return rank_options(p, options, x, scorer.score(x), model, profile, explainer, n_drivers,
                        explain_top)


def rank_options(p: FeatureVector, options: tuple[TreatmentOption, ...],
                 x: npt.NDArray[np.float32], scores: ScoreBatch, model: ModelInfo,
                 profile: GuidelineProfile = NICE, explainer: Explainer | None = None,
                 n_drivers: int = 3, explain_top: int | None = None) -> Assessment:
    """Apply the guideline to already-scored options (rows ``x``, scores ``scores``) of an
    assessable patient. Without an explainer no drivers are computed (batch evaluation)."""
    target = profile.target(p, Setting.CLINIC)
    regimen = dict(p.regimen)
    sbp = scores.sbp_change.tolist()
    # ranked on the option's own expected effect: the predicted reading change also carries
    # the regression to the mean of the reading the decision is made on, the same for every
    # option of the patient
    effect = scores.effect_change.tolist()
    g = guideline_order(p, options, effect, profile)  # the harness reads the same order
    pref, findings, severity = g.preference, g.findings, g.severity
    blocked = [s is Severity.BLOCK for s in severity]
    preferred_all, candidates, ranked = g.preferred, g.candidates, g.ranked
    order = [c.row for c in ranked]
    rank = {i: r for r, i in enumerate(order, 1)}
    tier = {c.row: c.tier for c in candidates}
    # SHAP of the expected effect: every ranked option (their mean is the drivers' stated
    # baseline) and the guideline's choice (the comparison); explain_top=0 explains none
    choice_row = (_choice_row(options, blocked, preferred_all, rank, effect)
                  if explainer is not None else None)
    explain = explainer is not None and explain_top != 0 and bool(order)
    explained = order + ([choice_row] if choice_row is not None and choice_row not in rank
                         else [])
    explanation = (explainer.explain(x[np.array(explained, dtype=np.intp)])
                   if explainer is not None and explain else None)
    phi_by_row = ({r: explanation.contributions[j] for j, r in enumerate(explained)}
                  if explanation is not None else {})
    with_drivers: set[int] = set()
    base_phi, base_value = None, 0.0
    if explanation is not None:  # nothing of this on the harness's batch path
        with_drivers = set(order[:explain_top] if explain_top is not None else order)
        base_phi = explanation.contributions[:len(order)].mean(axis=0)
        base_value = float(explanation.output[:len(order)].mean())
    patient_findings = list(pref.notes) + _patient_findings(p, target)
    blocked_pref = sorted(o.id for o, b in zip(options, blocked, strict=True)
                          if b and o.id in preferred_all)
    if blocked_pref:
        patient_findings.append(Finding(
            Severity.WARN, "guideline-step-contraindicated",
            f"The guideline's preferred step ({pref.step}) is contraindicated for this patient "
            f"in {len(blocked_pref)} of its options; see each option's findings.", pref.citation))

    # Ranked options by rank; then, unranked, those not expected to lower BP and the
    # contraindicated ones, each by id.
    not_lowering = sorted((c.row for c in candidates if c.row not in rank),
                          key=lambda i: options[i].id)
    unranked = sorted((i for i, b in enumerate(blocked) if b), key=lambda i: options[i].id)
    lower, upper = scores.lower.tolist(), scores.upper.tolist()
    e_lower, e_upper = scores.effect_lower.tolist(), scores.effect_upper.tolist()
    p_target = scores.p_target.tolist()
    # whether a chance of reaching target means anything here (the same for every ranked
    # option; models.uncertainty_words)
    reaching = p_target_meaningful(True, p.get("sbp_clinic"), target)
    assessed = []
    for i in order + not_lowering + unranked:
        o, sev, r = options[i], severity[i], rank.get(i)
        if sev is Severity.BLOCK:
            status = OptionStatus.CONTRAINDICATED
        elif r is None:
            status = OptionStatus.NOT_LOWERING
        elif sev is Severity.WARN:
            status = OptionStatus.CAUTION
        elif tier[i] is Tier.BEYOND_STEP:
            status = OptionStatus.BEYOND_STEP
        elif r == 1:
            status = OptionStatus.RECOMMENDED
        else:
            status = OptionStatus.ALTERNATIVE
        drivers = (_drivers(o, x[i], phi_by_row[i] - base_phi, n_drivers, regimen,
                            p.current_drugs)
                   if base_phi is not None and i in with_drivers else ())
        assessed.append(OptionAssessment(
            o, r, status, round(sbp[i], 2), (round(lower[i], 2), round(upper[i], 2)),
            scores.coverage, round(p_target[i], 3), findings[i], drivers,
            not blocked[i] and o.id in preferred_all, tier.get(i) is Tier.IN_STEP,
            round(effect[i], 2), (round(e_lower[i], 2), round(e_upper[i], 2)),
            scores.effect_coverage, reaching and r is not None))
    default = tuple(a.option.id for a in assessed if a.guideline_preferred)
    comparison = None
    if order and choice_row is not None and choice_row != order[0]:
        by_id = {a.option.id: a for a in assessed}
        first_row = order[0]
        comparison = _comparison(
            by_id[options[first_row].id], by_id[options[choice_row].id],
            effect[first_row] - effect[choice_row],
            (x[first_row], phi_by_row[first_row] - phi_by_row[choice_row])
            if explanation is not None else None, n_drivers, regimen, p.current_drugs)
    base = round(base_value, 2) if explanation is not None else None
    baseline = (f"the average expected effect of the {len(order)} options ranked for this "
                f"patient ({base_value:+.1f} mmHg)" if explanation is not None else None)
    return Assessment(AssessmentStatus.ASSESSED, (), profile.name, target, regimen, pref.step,
                      default, tuple(patient_findings), tuple(assessed), p.provenance, model,
                      base, choice_reason=_choice_reason(tuple(assessed), pref.step, profile,
                                                         p.current_drugs),
                      comparison=comparison, drivers_baseline=baseline)


def _choice_row(options: tuple[TreatmentOption, ...], blocked: list[bool],
                preferred: frozenset[str] | set[str], rank: Mapping[int, int],
                effect: list[float]
                ) -> int | None:
    """The row of the guideline's own choice: its first-ranked preferred option, else (none
    ranked) its preferred option with the largest expected fall; None when every preferred
    option is contraindicated. The same choice :func:`_choice_reason` names."""
    rows = [i for i, o in enumerate(options) if not blocked[i] and o.id in preferred]
    return min(rows, key=lambda i: (i not in rank, rank.get(i, 0), round(effect[i], 2)),
               default=None)


def _choice_reason(options: tuple[OptionAssessment, ...], step: str,
                   profile: GuidelineProfile, drugs: CurrentDrugs) -> str | None:
    """One line: why the first option is not the guideline's own choice (None when it is,
    or when nothing is ranked)."""
    first = next((o for o in options if o.rank == 1), None)
    if first is None or first.guideline_preferred:
        return None
    label = personal_label(first.option, drugs)
    if not first.in_step:
        return (f"{label} is beyond the guideline's step ({step}): no option of that step is "
                "available (each is contraindicated or not expected to lower BP).")
    choice = min((o for o in options if o.guideline_preferred),
                 key=lambda o: (o.rank is None, o.rank or 0, o.expected_effect),
                 default=None)
    if choice is None:
        return (f"{label}: the guideline's step ({step}) has no option available here, so a "
                "dose increase comes first.")
    name = personal_label(choice.option, drugs)
    if choice.rank is None:
        return (f"{label} comes before the guideline's choice ({name}), which is not expected "
                "to lower BP for this patient.")
    if choice.status is OptionStatus.CAUTION and first.status is not OptionStatus.CAUTION:
        return (f"{label} comes before the guideline's choice ({name}), which needs a caution, "
                "at a predicted effect within the margin.")
    gain = choice.expected_effect - first.expected_effect
    return (f"{label} comes before the guideline's choice ({name}): expected effect "
            f"{first.expected_effect:+.1f} vs {choice.expected_effect:+.1f} mmHg, "
            f"{gain:.1f} mmHg more, beyond the {profile.tie_margin_mmhg:g} mmHg margin within "
            "which the guideline's choice is kept.")
