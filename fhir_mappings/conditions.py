"""Conditions -> problem-list facts (diabetes, CKD and stage, heart failure, CVD ...).

FHIR release: R4 (4.0.1), https://hl7.org/fhir/R4/condition.html. Codes: SNOMED CT and
ICD-10 (:data:`fhir_mappings.codes.CONDITIONS`, the curated value sets of
``fhir_mappings/valuesets/*.toml``; ICD-10 by include/exclude prefix, the longest matching
prefix deciding).

A Condition counts when it is about this patient, its verificationStatus is not ``refuted``
or ``entered-in-error`` (unconfirmed, provisional and differential diagnoses count: the
safety rules would rather see them), its onset/recordedDate is not after the assessment date,
and it is current: clinicalStatus ``active``, ``recurrence`` or ``relapse`` (a missing
clinicalStatus counts as current) and no abatement on or before the assessment date (an
abatement means resolved). For facts that are a history (established CVD: a past MI or
stroke; angioedema; ACE-inhibitor intolerance) resolved and inactive records count too.

Dated events (:data:`EVENTS`: an acute coronary event) are read for their date, not their
status: the fact's date is the latest record's, and unknown when any record is undated (a
rule cannot tell how recent an undated event was).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from fhir_mappings import codes
from fhir_mappings.codes import ConditionConcept
from fhir_mappings.dates import When
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.raw_resource import RawResource
from fhir_mappings.sourced_fact import Fact, present

_STAGE_ORDER = ("G1", "G2", "G3", "G3a", "G3b", "G4", "G5")
#: abatement[x] types that say "no longer current" without a date.
_OTHER_ABATEMENT = frozenset({"abatementAge", "abatementRange", "abatementString"})
#: Facts whose date is the latest record's (None when any record is undated).
EVENTS = frozenset({"acute_coronary"})


class _Evidence(NamedTuple):
    when: When | None
    res: RawResource
    display: str
    current: bool

    @property
    def sort_key(self) -> tuple[object, ...]:
        return (self.when.instant.isoformat() if self.when else "", self.res.ref)


@dataclass(frozen=True, slots=True)
class ConditionFacts:
    facts: dict[str, Fact]
    ckd_stage: str | None
    ckd_stage_source: str | None


def map_conditions(ctx: MappingContext, conditions: Iterable[RawResource]) -> ConditionFacts:
    evidence: dict[str, list[_Evidence]] = {}
    stages: list[tuple[int, str, str]] = []
    for res in conditions:
        status = _status(ctx, res)
        if status is None:
            continue
        current, when = status
        codings, text = res.concept(res.data, "code")
        matched = False
        for system, code, display in codings:
            concepts = _concepts(system, code)
            for concept in concepts:
                if current or concept.history:
                    evidence.setdefault(concept.fact, []).append(
                        _Evidence(when, res, display or text or code, current))
                    matched = True
            if current:
                stage = _stage(system, code)
                if stage:
                    stages.append((_STAGE_ORDER.index(stage), stage, res.ref))
                    ctx.use(res)
        if not matched and codings and not any(_known(s, c) for s, c, _ in codings):
            system, code, _ = codings[0]
            ctx.report.unknown_code("Condition", system, code)

    facts: dict[str, Fact] = {}
    for fact, items in evidence.items():
        if len(items) > 1:
            items.sort(key=attrgetter("sort_key"))
        first = items[0]
        for e in items:
            ctx.use(e.res)
        note = f"coded: {first.display}" + ("" if first.current else " (resolved: history)")
        if len(items) > 1:
            note += f"; and {len(items) - 1} more record(s)"
        day = first.when.day if first.when else None
        if fact in EVENTS:
            dated = [e.when for e in items if e.when is not None]
            latest = max(dated) if len(dated) == len(items) else None
            day = latest.day if latest is not None else None
            note += "; latest dated " + (str(day) if day else "unknown: a record has no date")
        facts[fact] = present(first.res.ref, day, note)
    if "hfref" in facts and "heart_failure" not in facts:
        facts["heart_failure"] = facts["hfref"]
    top = max(stages) if stages else None
    return ConditionFacts(facts, top[1] if top else None, top[2] if top else None)


def _concepts(system: str, code: str) -> tuple[ConditionConcept, ...]:
    if system == codes.SNOMED:
        return codes.CONDITIONS_BY_SNOMED.get(code, ())
    if system in codes.ICD10_SYSTEMS:
        norm = codes.normalise_icd10(code)
        # include prefixes minus exclude prefixes (the longest matching prefix decides)
        return tuple(c for c in codes.CONDITIONS if c.matches_icd10(norm))
    return ()


def _known(system: str, code: str) -> bool:
    """Understood codes (current or not), so not reported as unknown."""
    if _concepts(system, code):
        return True
    if system == codes.SNOMED:
        return code in codes.KNOWN_WITHOUT_FACT_SNOMED
    return system in codes.ICD10_SYSTEMS and codes.normalise_icd10(code).startswith(
        codes.KNOWN_WITHOUT_FACT_ICD10)


def _stage(system: str, code: str) -> str | None:
    if system == codes.SNOMED:
        return codes.CKD_STAGE_BY_SNOMED.get(code)
    if system in codes.ICD10_SYSTEMS:
        return codes.CKD_STAGE_BY_ICD10.get(codes.normalise_icd10(code))
    return None


def _status(ctx: MappingContext, res: RawResource) -> tuple[bool, When | None] | None:
    """(current, date) of a Condition, or None when it does not count at all."""
    d = res.data
    if res.status_code(d, "verificationStatus") in codes.VOID_VERIFICATION_STATUS:
        return None
    onset = ctx.when(res, d, "onsetDateTime") or ctx.period_when(res, d, "onsetPeriod")[0]
    recorded = ctx.when(res, d, "recordedDate")
    when = onset or recorded
    if (onset and onset.day > ctx.as_of) or (recorded and recorded.day > ctx.as_of):
        return None
    clinical = res.status_code(d, "clinicalStatus")
    current = clinical is None or clinical in codes.ACTIVE_CLINICAL_STATUS
    abated = ctx.when(res, d, "abatementDateTime")
    if abated is None:
        start, end = ctx.period_when(res, d, "abatementPeriod")
        abated = end or start
    if abated is not None:
        current = current and abated.day > ctx.as_of
    elif not _OTHER_ABATEMENT.isdisjoint(d):
        current = False
    return current, when
