"""AllergyIntolerance -> angioedema history and ACE-inhibitor intolerance.

FHIR release: R4 (4.0.1), https://hl7.org/fhir/R4/allergyintolerance.html. Codes:
shared/research/clinical.md 6.2 (ACE-inhibitor substance and intolerance concepts, eCQM
value sets 2.16.840.1.113883.3.526.3.1211/1212; angioedema 41291007) and the ACE-inhibitor
ingredients of :mod:`fhir_mappings.drug_codes` (RxNorm, ATC C09A/C09B, names as a flagged
last resort).

Rules: any record whose reaction manifestation is angioedema (or whose code is
ACE-inhibitor-aggravated angioedema) gives ``angioedema_history``, whatever the substance and
even when resolved (it is a history). Any other current ACE-inhibitor allergy or intolerance
(typically cough) gives ``ace_inhibitor_intolerance``. Current = clinicalStatus ``active`` or
absent; verificationStatus ``refuted`` and ``entered-in-error`` void the record.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_mappings import codes, drug_codes
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.raw_resource import RawResource, concept_words, displays, first_text
from fhir_mappings.report import IssueKind
from fhir_mappings.sourced_fact import Fact, present
from vocabulary.drug_classes import DrugClass

_ACEI_WORDS = ("ace inhibitor", "ace-inhibitor", "angiotensin-converting",
               "angiotensin converting")
_ACEI_NAMES = tuple(i.name for i in drug_codes.INGREDIENTS
                    if i.drug_class is DrugClass.ACE_INHIBITOR)


def map_allergies(ctx: MappingContext, allergies: Iterable[RawResource]) -> dict[str, Fact]:
    found: dict[str, list[tuple[str, RawResource, str]]] = {}
    for res in allergies:
        d = res.data
        if res.status_code(d, "verificationStatus") in codes.VOID_VERIFICATION_STATUS:
            continue
        recorded = ctx.when(res, d, "recordedDate") or ctx.when(res, d, "onsetDateTime")
        if recorded is not None and recorded.day > ctx.as_of:
            continue
        clinical = res.status_code(d, "clinicalStatus")
        current = clinical is None or clinical == "active"
        codings, text = res.concept(d, "code")
        acei, by_name = _is_ace_inhibitor(codings, text)
        angioedema = any(s == codes.SNOMED and c in codes.ANGIOEDEMA_SNOMED
                         for s, c, _ in codings) or _has_angioedema_reaction(res)
        day = recorded.day.isoformat() if recorded else ""
        label = first_text(text, *displays(codings))
        if angioedema:
            found.setdefault("angioedema_history", []).append((day, res, label))
        elif acei and _has_anaphylaxis_reaction(res):
            # a serious hypersensitivity reaction to an ACE inhibitor: a history, whatever the
            # clinical status (the SmPC contraindication), not an intolerance
            found.setdefault("ace_inhibitor_hypersensitivity", []).append((day, res, label))
        elif acei and current:
            found.setdefault("ace_inhibitor_intolerance", []).append((day, res, label))
        else:
            if codings and not acei:
                ctx.report.unknown_code("AllergyIntolerance", codings[0][0], codings[0][1])
            continue
        if by_name:
            ctx.report.issue(IssueKind.NAME_TEXT_MATCH, res.ref,
                             "ACE-inhibitor allergy identified by name text")
    facts: dict[str, Fact] = {}
    for fact, items in found.items():
        items.sort(key=lambda t: (t[0], t[1].ref))
        day, res, label = items[0]
        for _, r, _ in items:
            ctx.use(r)
        when = ctx.when(res, res.data, "recordedDate") or ctx.when(res, res.data,
                                                                   "onsetDateTime")
        why = {"angioedema_history": "angioedema reaction",
               "ace_inhibitor_hypersensitivity": "serious reaction to an ACE inhibitor"}.get(
                   fact, "ACE-inhibitor")
        facts[fact] = present(res.ref, when.day if when else None,
                              f"AllergyIntolerance: {label or 'coded'} ({why})")
    return facts


def _is_ace_inhibitor(codings: list[tuple[str, str, str]], text: str) -> tuple[bool, bool]:
    """(is an ACE inhibitor, only by name text)."""
    for system, code, _ in codings:
        if system == codes.SNOMED and code in codes.ACE_INHIBITOR_ALLERGY_SNOMED:
            return True, False
        if system == codes.RXNORM:
            ing = drug_codes.INGREDIENTS_BY_RXNORM.get(code)
            if ing is not None and ing.drug_class is DrugClass.ACE_INHIBITOR:
                return True, False
        if system in codes.ATC_SYSTEMS and code.upper().startswith(("C09A", "C09B")):
            return True, False
    words = concept_words(codings, text).lower()
    if any(w in words for w in _ACEI_WORDS) or any(n in words for n in _ACEI_NAMES):
        return True, True
    return False, False


def _has_angioedema_reaction(res: RawResource) -> bool:
    for path, reaction in res.objects(res.data, "reaction"):
        for mpath, manifestation in res.objects(reaction, "manifestation", path):
            codings = res.codings(manifestation, mpath)
            if any(s == codes.SNOMED and c in codes.ANGIOEDEMA_SNOMED for s, c, _ in codings):
                return True
            text = res.string(manifestation, "text", mpath) or ""
            if _angioedema_words(concept_words(codings, text).lower()):
                return True
        description = (res.string(reaction, "description", path) or "").lower()
        if _angioedema_words(description):
            return True
    return False


def _has_anaphylaxis_reaction(res: RawResource) -> bool:
    """A reaction manifesting as anaphylaxis (SNOMED, or the word), or criticality high."""
    if res.data.get("criticality") == "high":
        return True
    for path, reaction in res.objects(res.data, "reaction"):
        if reaction.get("severity") == "severe":
            return True
        for mpath, manifestation in res.objects(reaction, "manifestation", path):
            codings = res.codings(manifestation, mpath)
            if any(s == codes.SNOMED and c in codes.ANAPHYLAXIS_SNOMED for s, c, _ in codings):
                return True
            text = res.string(manifestation, "text", mpath) or ""
            if "anaphyla" in concept_words(codings, text).lower():
                return True
    return False


def _angioedema_words(text: str) -> bool:
    """Angioedema named, or a swelling of the face or airway described in words."""
    if any(w in text for w in codes.ANGIOEDEMA_WORDS):
        return True
    return (any(w in text for w in codes.SWELLING_WORDS)
            and any(s in text for s in codes.SWELLING_SITES))
