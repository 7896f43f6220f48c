"""Observations -> labs, heart rate, BMI, LVEF, pregnancy status (and BP via blood_pressure).

FHIR release: R4 (4.0.1), https://hl7.org/fhir/R4/observation.html. Codes: LOINC as listed
in :data:`fhir_mappings.codes.OBSERVATION_CODES` (shared/research/clinical.md 6.1). Status:
``entered-in-error`` and ``cancelled`` are dropped, so are results without a value; every
other status with a value is read (``preliminary`` included: a potassium of 6.5 matters
before it is final). Results after the assessment date are not known at that date.

Lookbacks (:mod:`fhir_mappings.mapping_policy`): labs 15 months, heart rate 12 months, BMI 24
months, pregnancy status 280 days, LVEF no limit. Each lab is the latest plausible result in its
window; implausible ones are reported and skipped.

Derived values:

* eGFR: when no eGFR result is in the window, it is computed from the latest creatinine by
  CKD-EPI 2021 without race (Inker et al., NEJM 2021;385:1737), with age at the sample date.
* eGFR consistency: a reported eGFR more than twice or less than half the CKD-EPI 2021 value
  of a same-day creatinine is implausible (not used, reported).
* CKD from labs: eGFR < 60 mL/min/1.73m2 or ACR >= 3 mg/mmol on results at least 90 days
  apart with no normal result between them (NICE NG203 1.1, KDIGO 2012: "for more than 3
  months"); one abnormal result alone does not make CKD.
* HFrEF: LVEF <= 40 % (ESC 2021 HF guideline) on the latest LVEF, together with a coded
  heart failure, marks HFrEF (:mod:`fhir_mappings.patient_record`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

from fhir_mappings import codes
from fhir_mappings.blood_pressure import (
    BP_KINDS,
    BloodPressure,
    Setting,
    pair_readings,
    read_bp,
    summarise,
)
from fhir_mappings.codes import ObsKind
from fhir_mappings.dates import When, age_in_years, months_before
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.mapping_policy import MappingPolicy
from fhir_mappings.measurements import Measurement, in_time_order, latest, read_quantity
from fhir_mappings.patient import Demographics
from fhir_mappings.raw_resource import RawResource, displays
from fhir_mappings.report import IssueKind
from fhir_mappings.sourced_fact import Fact, present, unknown
from fhir_mappings.units import Quantity
from vocabulary.feature_table import FEATURES_BY_NAME

IGNORED_STATUS = frozenset({"entered-in-error", "cancelled"})

#: Creatinine and LVEF are not features; their plausible ranges (umol/L, %).
CREATININE_RANGE = (20.0, 2500.0)
LVEF_RANGE = (5.0, 90.0)
HFREF_LVEF_MAX = 40.0


@dataclass(frozen=True, slots=True)
class _Lab:
    feature: str
    quantity: Quantity
    label: str
    low: float
    high: float


def _lab(feature: str, quantity: Quantity, label: str) -> _Lab:
    spec = FEATURES_BY_NAME[feature]
    return _Lab(feature, quantity, label, spec.low, spec.high)


LABS: dict[ObsKind, _Lab] = {
    ObsKind.POTASSIUM: _lab("potassium", Quantity.ELECTROLYTE, "potassium"),
    ObsKind.SODIUM: _lab("sodium", Quantity.ELECTROLYTE, "sodium"),
    ObsKind.EGFR: _lab("egfr", Quantity.EGFR, "eGFR"),
    ObsKind.URINE_ACR: _lab("urine_acr", Quantity.ACR, "urine ACR"),
    ObsKind.HBA1C: _lab("hba1c", Quantity.HBA1C, "HbA1c"),
    ObsKind.HEART_RATE: _lab("heart_rate", Quantity.HEART_RATE, "heart rate"),
    ObsKind.BMI: _lab("bmi", Quantity.BMI, "BMI"),
    ObsKind.CREATININE: _Lab("creatinine", Quantity.CREATININE, "creatinine",
                             *CREATININE_RANGE),
    ObsKind.LVEF: _Lab("lvef", Quantity.PERCENT, "LVEF", *LVEF_RANGE),
}


@dataclass(frozen=True, slots=True)
class ObservationFacts:
    facts: dict[str, Fact]
    days_since_bp: int | None
    egfr_series: tuple[Measurement, ...]
    ckd_stage: str | None
    data_quality: tuple[str, ...] = ()


def classify(res: RawResource, ctx: MappingContext) -> tuple[ObsKind, When] | None:
    """The kind and time of an Observation the mapping reads, or None (ignored/reported)."""
    d = res.data
    if res.string(d, "status") in IGNORED_STATUS:
        return None
    codings, text = res.concept(d, "code")
    kind = _kind_of(codings)
    if kind is None:
        if codings:
            system, code, _display = codings[0]
            ctx.report.unknown_code("Observation", system, code)
            if _looks_like_bp(res, codings, text):
                ctx.report.issue(IssueKind.UNREAD_BP, res.ref,
                                 f"a blood-pressure Observation coded {system}|{code} "
                                 "is not understood: it was not read")
        return None
    when = ctx.effective(res)
    if when is None:
        ctx.report.issue(IssueKind.NO_DATE, res.ref, "no effective date: not used")
        return None
    if when.day > ctx.as_of:
        return None
    return kind, when


def _looks_like_bp(res: RawResource, codings: list[tuple[str, str, str]], text: str) -> bool:
    """An Observation the mapping cannot read that is plainly a BP reading: sent under the
    ``bp`` prefetch key, or named "blood pressure" in its code (``codings``, ``text``)."""
    if res.path.startswith(("$.prefetch.bp", "$.bp")):
        return True
    words = [w.lower() for w in (text, *displays(codings))]
    return any("blood pressure" in w or " bp " in f" {w} " for w in words)


def _kind_of(codings: list[tuple[str, str, str]]) -> ObsKind | None:
    """The kind named by the first known coding."""
    for system, code, _display in codings:
        kind = codes.OBSERVATION_CODES.get((system, code))
        if kind is not None:
            return kind
    return None


def map_observations(ctx: MappingContext, observations: Iterable[RawResource],
                     demo: Demographics, home_since: date | None = None) -> ObservationFacts:
    bp_parts: list[tuple[Setting, bool | None, Measurement | None, Measurement | None,
                         When]] = []
    values: dict[ObsKind, list[Measurement]] = defaultdict(list)
    pregnancy: list[tuple[When, RawResource, bool, str]] = []
    starts = _window_starts(ctx)
    older_bp: date | None = None
    for res in observations:
        hit = classify(res, ctx)
        if hit is None:
            continue
        kind, when = hit
        start = starts.get(kind)
        if start is not None and when.day < start:
            # outside every window that reads it: not read further (and not validated)
            if kind in BP_KINDS and (older_bp is None or when.day > older_bp):
                older_bp = when.day
            continue
        if kind in BP_KINDS:
            for setting, single, sbp, dbp in read_bp(ctx, res, kind, when):
                bp_parts.append((setting, single, sbp, dbp, when))
        elif kind in codes.PREGNANCY_KINDS:
            evidence = _pregnancy_evidence(ctx, res, kind, when)
            if evidence is not None:
                pregnancy.append((when, res, *evidence))
        else:
            lab = LABS[kind]
            m = read_quantity(ctx, res, res.data, "", lab.quantity, lab.label, lab.low,
                              lab.high, when)
            if m is not None:
                values[kind].append(m)

    bp: BloodPressure = summarise(ctx, pair_readings(bp_parts), older_bp, home_since)
    facts = dict(bp.facts)
    policy = ctx.policy
    lab_start = ctx.months_before(policy.lab_months)
    lab_window = f"last {policy.lab_months} months"
    for kind in (ObsKind.POTASSIUM, ObsKind.SODIUM, ObsKind.URINE_ACR, ObsKind.HBA1C,
                 ObsKind.CREATININE):
        lab = LABS[kind]
        facts[lab.feature], used = latest(ctx, values[kind], lab.label, lab_start, lab_window,
                                          lab.quantity.value)
        if kind is ObsKind.POTASSIUM and used is not None:
            facts["potassium_previous"] = _previous(ctx, values[kind], used, lab_start)
    facts["heart_rate"], _ = latest(
        ctx, values[ObsKind.HEART_RATE], "heart rate",
        ctx.months_before(policy.heart_rate_months),
        f"last {policy.heart_rate_months} months", "beats/min")
    facts["bmi"], _ = latest(ctx, values[ObsKind.BMI], "BMI",
                             ctx.months_before(policy.bmi_months),
                             f"last {policy.bmi_months} months", "kg/m2")
    facts["lvef"], _ = latest(ctx, values[ObsKind.LVEF], "LVEF", None, "record", "%")

    values[ObsKind.EGFR] = _check_egfr(ctx, values[ObsKind.EGFR], values[ObsKind.CREATININE],
                                       demo)
    egfr_series = _egfr_series(ctx, values, demo, lab_start)
    facts["egfr"] = _egfr_fact(ctx, values[ObsKind.EGFR], egfr_series, lab_start, lab_window)
    ckd, stage = _ckd_from_labs(ctx, egfr_series, values[ObsKind.URINE_ACR], lab_start)
    facts["ckd_labs"] = ckd
    facts["pregnancy_status"] = _pregnancy_status(ctx, pregnancy)
    return ObservationFacts(facts, bp.days_since_bp, tuple(egfr_series), stage,
                            bp.data_quality)


def _previous(ctx: MappingContext, items: list[Measurement], used: Measurement,
              start: date) -> Fact:
    """The plausible result before ``used`` in the window (for a rising trend), or unknown."""
    earlier = [m for m in items if m.plausible and start <= m.when.day
               and m.when.instant < used.when.instant]
    if not earlier:
        return unknown("no earlier result in the window")
    m = in_time_order(earlier)[-1]
    ctx.use(m.res)
    return Fact(m.value, m.res.ref, m.when.day, "the result before the latest")


def _window_starts(ctx: MappingContext) -> Mapping[ObsKind, date]:
    """The earliest day each kind of Observation can matter (LVEF: no limit)."""
    return _starts(ctx.as_of, ctx.policy)


@lru_cache(maxsize=64)
def _starts(as_of: date, policy: MappingPolicy) -> Mapping[ObsKind, date]:
    """(By assessment date and policy, neither of them patient data: kept across runs.)"""
    lab = months_before(as_of, policy.lab_months)
    starts = dict.fromkeys(BP_KINDS, months_before(as_of, policy.clinic_bp_months))
    starts.update({k: lab for k in (ObsKind.POTASSIUM, ObsKind.SODIUM, ObsKind.CREATININE,
                                    ObsKind.EGFR, ObsKind.URINE_ACR, ObsKind.HBA1C)})
    starts[ObsKind.HEART_RATE] = months_before(as_of, policy.heart_rate_months)
    starts[ObsKind.BMI] = months_before(as_of, policy.bmi_months)
    starts[ObsKind.PREGNANCY_STATUS] = as_of - timedelta(days=policy.pregnancy_status_days)
    return MappingProxyType(starts)


# --------------------------------------------------------------------------- eGFR and CKD


def ckd_epi_2021(creatinine_umol_l: float, age: int, female: bool) -> float:
    """eGFR (mL/min/1.73m2) by CKD-EPI 2021 creatinine equation, without race."""
    scr = creatinine_umol_l / 88.42
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = scr / kappa
    egfr: float = (142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200
                   * 0.9938 ** float(age))
    return egfr * 1.012 if female else egfr


def _check_egfr(ctx: MappingContext, egfr: list[Measurement], creatinine: list[Measurement],
                demo: Demographics) -> list[Measurement]:
    """Mark eGFR results implausible when a same-day creatinine contradicts them.

    A reported eGFR more than twice, or less than half, the CKD-EPI 2021 value of a
    plausible creatinine from the same day cannot both be right (equations and assays differ
    by far less); the eGFR is then not used and reported.
    """
    if demo.birth_date is None or demo.female is None:
        return egfr
    by_day: dict[date, list[Measurement]] = defaultdict(list)
    for m in creatinine:
        if m.plausible:
            by_day[m.when.day].append(m)
    out = []
    for m in egfr:
        same_day = in_time_order(by_day.get(m.when.day, ()))
        age = age_in_years(demo.birth_date, m.when.day)
        if m.plausible and same_day and age >= 18:
            cr = same_day[-1]
            expected = ckd_epi_2021(cr.value, age, demo.female)
            if not 0.5 <= m.value / expected <= 2.0:
                ctx.report.issue(
                    IssueKind.IMPLAUSIBLE_VALUE, m.res.ref,
                    f"eGFR {m.value:.0f} is inconsistent with the same-day creatinine "
                    f"{cr.value:.0f} umol/L ({cr.res.ref}; CKD-EPI 2021 {expected:.0f}): "
                    "not used")
                m = Measurement(m.value, m.when, m.res, False, m.note)
        out.append(m)
    return out


def _egfr_series(ctx: MappingContext, values: dict[ObsKind, list[Measurement]],
                 demo: Demographics, start: date) -> list[Measurement]:
    """Plausible eGFR results in the window, or eGFR derived from creatinine if none."""
    reported = [m for m in values[ObsKind.EGFR]
                if m.plausible and start <= m.when.day <= ctx.as_of]
    if reported or demo.birth_date is None or demo.female is None:
        return in_time_order(reported)
    spec = FEATURES_BY_NAME["egfr"]
    derived = []
    for m in values[ObsKind.CREATININE]:
        if not m.plausible or not start <= m.when.day <= ctx.as_of:
            continue
        age = age_in_years(demo.birth_date, m.when.day)
        if age < 18:
            continue
        egfr = ckd_epi_2021(m.value, age, demo.female)
        note = (f"derived from creatinine {m.value:.0f} umol/L by CKD-EPI 2021 (no race "
                f"term), age {age}, {'female' if demo.female else 'male'}")
        derived.append(Measurement(egfr, m.when, m.res, spec.low <= egfr <= spec.high, note))
    return in_time_order(derived)


def _egfr_fact(ctx: MappingContext, reported: list[Measurement], series: list[Measurement],
               start: date, window: str) -> Fact:
    if any(m.plausible and start <= m.when.day <= ctx.as_of for m in reported) or not series:
        fact, _ = latest(ctx, reported, "eGFR", start, window, "mL/min/1.73m2")
        if not series and fact.value is None:
            return unknown(f"{fact.note}; no creatinine result (with age and sex) to derive it")
        return fact
    fact, _ = latest(ctx, series, "eGFR", start, window, "mL/min/1.73m2")
    return fact


def egfr_stage(egfr: float) -> str:
    """KDIGO G category of an eGFR."""
    for bound, stage in ((90, "G1"), (60, "G2"), (45, "G3a"), (30, "G3b"), (15, "G4")):
        if egfr >= bound:
            return stage
    return "G5"


def _ckd_from_labs(ctx: MappingContext, egfr: list[Measurement], acr: list[Measurement],
                   start: date) -> tuple[Fact, str | None]:
    days = ctx.policy.ckd_persistence_days
    acr_series = in_time_order(m for m in acr
                               if m.plausible and start <= m.when.day <= ctx.as_of)
    stage = egfr_stage(egfr[-1].value) if egfr else None
    for label, series, test in (
            ("eGFR < 60", egfr, lambda v: v < 60.0),
            ("urine ACR >= 3 mg/mmol", acr_series, lambda v: v >= 3.0)):
        run = _abnormal_run(series, test)
        if run and (run[-1].when.day - run[0].when.day) >= timedelta(days=days):
            ctx.use(run[0].res)
            ctx.use(run[-1].res)
            note = (f"{label} on {run[0].when.day} ({run[0].res.ref}) and {run[-1].when.day} "
                    f"({run[-1].res.ref}), at least {days} days apart (NICE NG203)")
            return present(run[-1].res.ref, run[-1].when.day, note), stage
    return unknown("labs do not show CKD (no abnormal eGFR or ACR persisting "
                   f"{days} days)"), stage


def _abnormal_run(series: list[Measurement], test: Callable[[float], bool]) -> (
        list[Measurement]):
    """The trailing run of results for which ``test`` holds (latest last)."""
    run: list[Measurement] = []
    for m in reversed(series):
        if not test(m.value):
            break
        run.insert(0, m)
    return run


_PREG = codes.PREGNANCY_OBSERVATIONS


def _bare_unit(unit: str) -> str:
    """A unit without UCUM brackets, spaces or case: ``m[IU]/mL`` -> ``miu/ml``."""
    return "".join(ch for ch in unit if ch not in "[] ").lower()
_POSITIVE_WORDS = ("positive", "detected", "pregnant")
_NEGATIVE_WORDS = ("negative", "not detected", "not pregnant")


def _pregnancy_evidence(ctx: MappingContext, res: RawResource, kind: ObsKind,
                        when: When) -> tuple[bool, str] | None:
    """(pregnant, how it says so) of one pregnancy Observation, or None when it says
    neither (an "unknown" status, an hCG between the thresholds, no value): an unknown never
    counts as "not pregnant"."""
    d = res.data
    if kind is ObsKind.DELIVERY_DATE:
        due = ctx.when(res, d, "valueDateTime")
        if due is None:
            return None
        if ctx.as_of <= due.day <= ctx.as_of + timedelta(days=300):
            return True, f"expected delivery date {due.day}"
        return None  # delivered or not plausible: says nothing about now
    if kind is ObsKind.HCG_QUANTITATIVE:
        vq = res.obj(d, "valueQuantity")
        if vq is None:
            return None
        value = res.number(vq, "value", ".valueQuantity")
        if value is None:
            return None
        unit = res.quantity_unit(vq, ".valueQuantity")
        # IU/L and mIU/mL are the same number (UCUM [IU]/L, [iU]/L, m[IU]/mL ...)
        if _bare_unit(unit) not in ("iu/l", "miu/ml", "u/l", "mu/ml", ""):
            return None
        if value > _PREG.hcg_positive_above:
            return True, f"hCG {value:g} IU/L (> {_PREG.hcg_positive_above:g})"
        if value < _PREG.hcg_negative_below:
            return False, f"hCG {value:g} IU/L (< {_PREG.hcg_negative_below:g})"
        return None
    codings, text = res.concept(d, "valueCodeableConcept")
    coded = {(s, c) for s, c, _ in codings}
    status = kind is ObsKind.PREGNANCY_STATUS
    label = "pregnancy status" if status else "hCG test"
    yes = _PREG.pregnant_values if status else _PREG.hcg_positive_values
    no = _PREG.not_pregnant_values if status else _PREG.hcg_negative_values
    if coded & yes:
        return True, f"{label}: {'pregnant' if status else 'positive'}"
    if coded & no:
        return False, f"{label}: {'not pregnant' if status else 'negative'}"
    words = (text or (res.string(d, "valueString") or "")).strip().lower()
    if words:  # text only (no known code): "Positive", "Not pregnant" ...
        if any(words.startswith(w) for w in _NEGATIVE_WORDS):
            return False, f"{label}: {words}"
        if any(words.startswith(w) for w in _POSITIVE_WORDS):
            return True, f"{label}: {words}"
    return None


def _pregnancy_status(ctx: MappingContext,
                      items: list[tuple[When, RawResource, bool, str]]) -> Fact:
    """The latest pregnancy evidence of the window (status, hCG, expected delivery date)."""
    days = ctx.policy.pregnancy_status_days
    start = ctx.as_of - timedelta(days=days)
    recent = sorted(((w, r, p, how) for w, r, p, how in items if start <= w.day <= ctx.as_of),
                    key=lambda t: (t[0].instant, t[1].ref))
    if not recent:
        return unknown(f"no pregnancy status or test in the last {days} days")
    when, res, pregnant, how = recent[-1]
    ctx.use(res)
    if pregnant:
        return present(res.ref, when.day, how)
    return Fact(0.0, res.ref, when.day, how)
