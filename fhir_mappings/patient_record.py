"""PatientRecord: the frozen facts about one patient at one date, built from FHIR R4 input.

FHIR release: R4 (4.0.1). :func:`build_record` takes parsed input (:mod:`fhir_mappings.bundle`)
and an assessment date, finds the one Patient, drops resource types it does not read before
any model is built (Claims, ExplanationOfBenefits, Encounters, Immunizations ...: counted as
ignored), maps each resource family (patient, observations, conditions, medications,
allergies), validates the resources that contributed a fact against the ``fhir.resources.R4B``
models (:mod:`fhir_mappings.validation`) and returns the record with its mapping report.

Combination rules made here (the families' modules document their own):

* ``ckd``: coded CKD, or CKD shown by labs (two abnormal eGFR/ACR results >= 90 days apart);
  ``ckd_stage``: the coded stage, else the KDIGO G category of the latest eGFR when CKD.
* ``hfref``: coded HFrEF, or heart failure with a latest LVEF <= 40 %.
* ``pregnancy``: a current pregnancy/breastfeeding Condition, or a pregnancy-status
  Observation saying pregnant; a "not pregnant" status newer than the Condition wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import orjson

from fhir_mappings.allergies import map_allergies
from fhir_mappings.bundle import ParsedInput, parse_input
from fhir_mappings.conditions import map_conditions
from fhir_mappings.errors import MissingPatient, MultiplePatients, PatientMismatch
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.mapping_policy import DEFAULT_POLICY, MappingPolicy
from fhir_mappings.medications import MedicationFacts, map_medications
from fhir_mappings.observations import HFREF_LVEF_MAX, map_observations
from fhir_mappings.patient import map_patient
from fhir_mappings.raw_resource import RawResource
from fhir_mappings.report import IssueKind, MappingReport, ReportBuilder
from fhir_mappings.sourced_fact import Fact, present
from fhir_mappings.validation import Validator
from vocabulary.drug_classes import DrugClass

#: Resource types the mapping reads; everything else is skipped before any model is built.
USED_TYPES = frozenset({"Patient", "Observation", "Condition", "MedicationRequest",
                        "MedicationStatement", "Medication", "AllergyIntolerance"})


def _frozen(d: Mapping[str, Fact] | None = None) -> Mapping[str, Fact]:
    return MappingProxyType(dict(sorted((d or {}).items())))


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Facts about one patient at ``as_of``, each with its provenance.

    ``facts`` holds every patient feature of the feature table that the input says something
    about (absent conditions and drugs are simply not there) and a few facts that are not
    features (``creatinine``, ``lvef``, ``loop_diuretic``, ``other_antihypertensive`` ...);
    ``regimen`` holds the current antihypertensive classes with their dose multiples.
    """

    as_of: date
    patient: str
    facts: Mapping[str, Fact] = field(default_factory=_frozen)
    regimen: Mapping[DrugClass, Fact] = field(default_factory=lambda: MappingProxyType({}))
    deceased: Fact = field(default_factory=lambda: Fact(0.0))
    days_since_bp: int | None = None
    ckd_stage: str | None = None
    report: MappingReport = field(default_factory=MappingReport, compare=False)
    #: parts of the record that could not be obtained (Domain value -> reason)
    unavailable: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: data-quality warnings a clinician must see (conflicting or rejected readings ...)
    data_quality: tuple[str, ...] = ()
    #: per class, the patient's own drug and its daily dose in mg (None: strength unknown)
    current_drugs: Mapping[DrugClass, tuple[str, float | None]] = field(
        default_factory=lambda: MappingProxyType({}))

    def fact(self, name: str) -> Fact | None:
        return self.facts.get(name)


Input = ParsedInput | bytes | bytearray | str | Mapping[str, Any] | Sequence[Any]


def build_record(data: Input, as_of: date, policy: MappingPolicy = DEFAULT_POLICY, *,
                 patient_id: str | None = None,
                 unavailable: Mapping[str, str] | None = None) -> PatientRecord:
    """Map FHIR input to a PatientRecord at ``as_of`` (raises InputError subclasses).

    ``patient_id``: the patient the request is about (CDS Hooks ``context.patientId``; a
    whole CDS Hooks request carries its own); the Patient of the input must have exactly this
    id, and no resource may be about another patient (else PatientMismatch).
    ``unavailable``: parts of the record the caller could not obtain (Domain value ->
    reason), added to those the input itself shows (:mod:`fhir_mappings.availability`).
    """
    parsed = data if isinstance(data, ParsedInput) else parse_input(data)
    report = ReportBuilder()
    for issue in parsed.issues:
        report.issues.add(issue)
    resources, by_type, totals = _deduplicate(parsed.resources, report)
    patient = _the_patient(by_type["Patient"],
                           patient_id if patient_id is not None else parsed.context_patient_id)
    ctx = MappingContext(as_of, policy, patient, resources, report)
    _check_subjects(ctx, resources)

    facts, deceased, demo = map_patient(ctx)
    meds = map_medications(ctx, by_type["MedicationRequest"], by_type["MedicationStatement"])
    obs = map_observations(ctx, by_type["Observation"], demo, _regimen_changed(meds))
    cond = map_conditions(ctx, by_type["Condition"])
    allergies = map_allergies(ctx, by_type["AllergyIntolerance"])

    facts.update(obs.facts)
    for name, fact in (*cond.facts.items(), *allergies.items()):
        facts.setdefault(name, fact)
    facts.update(meds.facts)
    ckd_stage = _combine(facts, cond.ckd_stage, obs.ckd_stage)

    validator = Validator()
    for res in sorted(ctx.used.values(), key=attrgetter("path")):
        validator.validate(res)
    report.validated = validator.count
    used_counts: dict[str, int] = {}
    for key, res in ctx.used.items():
        if key not in ctx.contained:  # (resources of the input; contained ones: below)
            used_counts[res.resource_type] = used_counts.get(res.resource_type, 0) + 1
    report.used.update(used_counts)
    report.ignored.update({t: n - used_counts.get(t, 0) for t, n in totals.items()
                           if n > used_counts.get(t, 0)})
    contained = sum(1 for r in ctx.used.values() if ".contained[" in r.path)
    if contained:
        report.used["Medication (contained)"] += contained

    missing = {**parsed.unavailable, **(unavailable or {})}
    return PatientRecord(as_of, patient.ref, _frozen(facts),
                         MappingProxyType(dict(sorted(meds.regimen.items()))), deceased,
                         obs.days_since_bp, ckd_stage, report.freeze(),
                         MappingProxyType(dict(sorted(missing.items()))),
                         _data_quality(obs.data_quality, report),
                         MappingProxyType(dict(sorted(meds.drugs.items()))))


#: Current antihypertensive drugs that are not model classes (their start is a change too).
_OTHER_ANTIHYPERTENSIVES = ("non_dhp_ccb", "other_antihypertensive", "sacubitril_valsartan",
                            "aliskiren")


def _regimen_changed(meds: MedicationFacts) -> date | None:
    """The day the current antihypertensive regimen last changed: the latest date of its
    prescriptions (None: no dated antihypertensive)."""
    days = [f.date for f in meds.regimen.values() if f.date is not None]
    days += [f.date for k in _OTHER_ANTIHYPERTENSIVES
             if (f := meds.facts.get(k)) is not None and f.date is not None]
    return max(days, default=None)


#: Report issues a clinician must see on the card (a value the mapping could not use).
_SHOWN_ISSUES = frozenset({IssueKind.IMPLAUSIBLE_VALUE, IssueKind.UNKNOWN_UNIT,
                           IssueKind.UNREAD_BP, IssueKind.DUPLICATE_THERAPY})


def _data_quality(bp: tuple[str, ...], report: ReportBuilder) -> tuple[str, ...]:
    """The BP warnings, then each value the mapping rejected, named with its resource."""
    rejected = sorted(f"{i.resource}: {i.detail}." for i in report.issues
                      if i.kind in _SHOWN_ISSUES and (i.kind is IssueKind.UNREAD_BP
                                                      or "BP" not in i.detail))
    return (*bp, *rejected)


def _combine(facts: dict[str, Fact], coded_stage: str | None, lab_stage: str | None) -> (
        str | None):
    """Apply the combination rules of the module docstring; return the CKD stage."""
    labs_ckd = facts.pop("ckd_labs", None)
    if "ckd" not in facts and labs_ckd is not None and labs_ckd.value == 1.0:
        facts["ckd"] = labs_ckd
    stage = coded_stage
    if stage is None and "ckd" in facts and lab_stage is not None:
        stage = lab_stage
    lvef = facts.get("lvef")
    hf = facts.get("heart_failure")
    if ("hfref" not in facts and hf is not None and lvef is not None
            and lvef.value is not None and lvef.value <= HFREF_LVEF_MAX):
        facts["hfref"] = present(lvef.source or "", lvef.date,
                                 f"heart failure with LVEF {lvef.value:g} % "
                                 f"(<= {HFREF_LVEF_MAX:g} %)")
    status = facts.pop("pregnancy_status", None)
    coded = facts.get("pregnancy")
    if status is not None and status.value is not None:
        newer = coded is None or (status.date is not None and coded.date is not None
                                  and status.date > coded.date)
        if status.value == 1.0 and coded is None:
            facts["pregnancy"] = status
        elif status.value == 0.0 and coded is not None and newer:
            del facts["pregnancy"]
    return stage if stage is None or "ckd" in facts else None


def _deduplicate(resources: Sequence[RawResource], report: ReportBuilder) -> tuple[
        list[RawResource], dict[str, list[RawResource]], dict[str, int]]:
    """One resource per ``Type/id`` (the same resource can come under two prefetch keys);
    with the resources of each type the mapping reads, and the count of each type."""
    seen: dict[tuple[str, str], RawResource] = {}
    out: list[RawResource] = []
    by_type: dict[str, list[RawResource]] = {t: [] for t in USED_TYPES}
    totals: dict[str, int] = {}
    for res in resources:
        rtype, rid = res.resource_type, res.id
        if rid is not None:
            key = (rtype, rid)
            first = seen.setdefault(key, res)
            if first is not res:
                if first.data != res.data:
                    report.issue(IssueKind.DUPLICATE, res.ref, "sent twice with different "
                                 "content: the later-updated copy is used")
                    if max((first, res), key=_version_key) is res:
                        seen[key] = res
                        _replace(out, first, res)
                        if rtype in by_type:
                            _replace(by_type[rtype], first, res)
                continue
        out.append(res)
        group = by_type.get(rtype)
        if group is not None:
            group.append(res)
        else:
            totals[rtype] = totals.get(rtype, 0) + 1
    for rtype, group in by_type.items():
        if group:
            totals[rtype] = len(group)
    return out, by_type, totals


def _replace(items: list[RawResource], old: RawResource, new: RawResource) -> None:
    items[next(i for i, r in enumerate(items) if r is old)] = new


def _version_key(res: RawResource) -> tuple[str, str, bytes]:
    """meta.lastUpdated, then versionId, then the content itself (so the choice does not
    depend on input order)."""
    meta = res.data.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    updated = meta.get("lastUpdated")
    version = meta.get("versionId")
    try:
        content = orjson.dumps(res.data, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        content = res.path.encode()
    return (updated if isinstance(updated, str) else "",
            version if isinstance(version, str) else "", content)


#: Where each resource type names its patient (R4 compartment definition, the types read).
_SUBJECT_KEYS = {"Observation": "subject", "Condition": "subject",
                 "MedicationRequest": "subject", "MedicationStatement": "subject",
                 "AllergyIntolerance": "patient"}


def _check_subjects(ctx: MappingContext, resources: Sequence[RawResource]) -> None:
    """Every resource the mapping could read must be about the one Patient (else raises
    PatientMismatch), whether or not its codes are understood: checked here, once, before
    anything is mapped (the family mappers rely on it)."""
    for res in resources:
        key = _SUBJECT_KEYS.get(res.resource_type)
        if key is not None:
            ctx.about_patient(res, key)


def _the_patient(resources: Sequence[RawResource], expected: str | None) -> RawResource:
    patients = [r for r in resources if r.resource_type == "Patient"]
    if not patients:
        raise MissingPatient(
            "the input has no Patient resource: it cannot be assessed (a CDS Hooks prefetch "
            "needs the patient key)", "$")
    if len(patients) > 1:
        refs = ", ".join(sorted(p.ref for p in patients))
        raise MultiplePatients(f"the input holds {len(patients)} Patients ({refs}); one "
                               "assessment is for one patient", patients[1].path)
    patient = patients[0]
    if not patient.id:
        raise PatientMismatch("the Patient resource has no id, so the record cannot be tied "
                              "to the patient the request is about", f"{patient.path}.id",
                              "Patient")
    if expected is not None and patient.id != expected:
        raise PatientMismatch(f"the request is about patient {expected!r} but the Patient "
                              f"resource is {patient.ref!r}: not assessed",
                              f"{patient.path}.id", patient.ref)
    return patient
