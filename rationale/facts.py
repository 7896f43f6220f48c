"""The facts of an assessment, with stable ids: all an LLM rationale may rest on (issue 16
item 1; DESIGN.md section 10).

:func:`facts_of` reads the typed :class:`~models.assessment.Assessment`, whatever its status,
and says each fact in one short text, with numbers rounded as a clinician is shown them (BP
whole mmHg, effects to one decimal, interval coverage in per cent). Ids are stable for the
same assessment:

==========================  =========================================================  ========
id                          what                                                       required
==========================  =========================================================  ========
``status``                  how the assessment ended (ranked, pathway, cannot assess)  no
``bp``                      the clinic BP the assessment read                          no
``target``                  the clinic target, with its citation                       yes [1]
``regimen``                 the current antihypertensives                              no
``step``                    the guideline's step for this patient                      no
``choice``                  the guideline's own choice (and why the first option       yes [2]
                            is not it)
``option-<rank>``           the first 3 ranked options, and the guideline's choice     option-1
                            (``option-choice`` when not ranked): expected effect,
                            interval, status
``contraindicated-<n>``     each blocking finding of the contraindicated options,      yes
                            grouped by finding, naming the classes no option may
                            start (``finding-<code>-<n>`` when it blocks only some
                            options of a class: a dose, a combination)
``finding-<code>-<n>``      each other finding (patient level, and the findings of     no
                            the options above), with its citation
``stop-<code>``             each stop condition: what was found, what to do, citation  yes
``missing-<domain>``,       what could not be obtained or is missing and changed the   yes
``missing-bp``              answer (a domain that stops the ranking, unavailable
                            labs, no recent clinic BP)
``reason-<n>``              any other reason the patient cannot be assessed            yes
==========================  =========================================================  ========

[1] when options are ranked; [2] when the first option is not the guideline's choice.

A fact's ``keys`` say what a sentence citing a required fact must also say for the fact to
count as covered (any one of them: a number as written, or a term such as the drug's name);
its ``numbers`` and ``terms`` are what its text says (:mod:`rationale.lexicon`), which is what
it licenses a sentence to say. ``effect`` is an option's expected effect (mmHg, negative
lowers), read by the direction check of the verifier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from fhir_mappings.availability import Domain
from models.assessment import Assessment, AssessmentStatus, OptionAssessment, OptionStatus
from models.guideline.findings import Finding, Severity
from models.options import Action
from rationale.lexicon import citations, find_concepts, numbers
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, DrugClass

#: Bumped with any change to what the facts say (part of the facts' hash).
FACTS_VERSION: Final = "2"
#: Ranked options shown (the card's first three).
SHOWN_RANKED: Final = 3
GUIDELINE_NAMES: Final = {"nice": "NICE NG136", "esc": "ESC 2024"}


class FactKind(StrEnum):
    STATUS = "status"
    CURRENT_BP = "current_bp"
    TARGET = "target"
    REGIMEN = "regimen"
    STEP = "step"
    GUIDELINE_CHOICE = "guideline_choice"
    OPTION = "option"
    CONTRAINDICATION = "contraindication"
    FINDING = "finding"
    STOP = "stop"
    MISSING = "missing"
    REASON = "reason"


@dataclass(frozen=True, slots=True)
class Fact:
    id: str
    kind: FactKind
    text: str
    numbers: tuple[float, ...]
    """The numbers the text says (absolute values)."""
    terms: tuple[str, ...]
    """The drugs, classes and citations the text names (lexicon ids and citation tokens)."""
    required: bool
    keys: tuple[str, ...] = ()
    """What a sentence citing this fact must say for it to be covered (any one)."""
    effect: float | None = None
    """Options: the expected effect on usual systolic BP (mmHg; negative lowers)."""


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]
    assessment_hash: str
    """sha256 of the facts (what the rationale rests on): equal facts, equal hash."""

    def get(self, fact_id: str) -> Fact | None:
        return next((f for f in self.items if f.id == fact_id), None)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.items)

    @property
    def required(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.items if f.required)


def make_fact(fid: str, kind: FactKind, text: str, required: bool = False,
              keys: Iterable[str] = (), effect: float | None = None) -> Fact:
    """A fact whose numbers and terms are read from its text."""
    terms = tuple(sorted(find_concepts(text) | citations(text)))
    return Fact(fid, kind, text, numbers(text), terms, required, tuple(keys), effect)


def _bp(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def _signed(v: float) -> str:
    return f"{v:+.1f}"


def _option_keys(a: Assessment, o: OptionAssessment) -> tuple[str, ...]:
    """The drug and class names of what the option raises (starts or titrates)."""
    keys: list[str] = []
    for c in CLASS_ORDER:
        if c not in o.option.increased_set:
            continue
        own = a.current_drugs.get(c)
        if o.option.action is Action.TITRATE and own is not None:
            keys.append(own[0])
        keys += [CLASS_INFO[c].drug, CLASS_INFO[c].short, CLASS_INFO[c].name]
    return tuple(dict.fromkeys(keys))


def _option_fact(a: Assessment, o: OptionAssessment, fid: str, required: bool) -> Fact:
    label = a.label(o.option)
    lo, hi = o.effect_interval
    if o.rank is None:
        head = f"Not ranked ({o.status.value}): {label}"
    else:
        head = f"Option {o.rank} ({o.status.value}): {label}"
    text = (f"{head}. Expected effect on usual systolic BP: {_signed(o.expected_effect)} mmHg "
            f"({o.effect_coverage:.0%} range {_signed(lo)} to {_signed(hi)} mmHg).")
    if o.status is OptionStatus.NOT_LOWERING:
        text += " Not expected to lower BP for this patient."
    if o.guideline_preferred:
        text += " It is an option of the guideline's own step."
    elif not o.in_step:
        text += " It is beyond the guideline's step."
    return make_fact(fid, FactKind.OPTION, text, required, _option_keys(a, o),
                     o.expected_effect)


def _finding_text(f: Finding, prefix: str = "") -> str:
    word = {Severity.INFO: "Note", Severity.WARN: "Caution",
            Severity.BLOCK: "Contraindicated"}[f.severity]
    text = f"{prefix}{word}: {f.message} ({f.citation})"
    return text + (f" Monitoring: {f.monitoring}" if f.monitoring else "")


#: The longest fact id (the response schema's bound, :data:`rationale.prompt.MAX_FACT_ID_CHARS`).
MAX_ID_CHARS: Final = 40
#: The longest prefix kept whole: room for "-<n>" up to n = 99.
_MAX_PREFIX: Final = MAX_ID_CHARS - 3


class _Ids:
    """``<prefix>-<n>`` ids, numbered per prefix from 1, at most :data:`MAX_ID_CHARS` long by
    construction: a longer prefix is cut (and numbered per cut prefix, so ids stay unique);
    a prefix that fits is kept as it is (its ids unchanged)."""

    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        if len(prefix) > _MAX_PREFIX:
            prefix = prefix[:_MAX_PREFIX].rstrip("-")
        n = self._n[prefix] = self._n.get(prefix, 0) + 1
        fid = f"{prefix}-{n}"
        if len(fid) > MAX_ID_CHARS:  # 100 or more ids of one prefix: never expected
            fid = f"{prefix[:MAX_ID_CHARS - len(str(n)) - 1].rstrip('-')}-{n}"
        return fid


def _domain_of(text: str) -> Domain | None:
    return next((d for d in Domain if d.label in text), None)


_BP_WORDS: Final = ("blood pressure", "BP")


#: Terms a sentence may use to cover a missing part of the record.
_DOMAIN_KEYS: Final[dict[Domain, tuple[str, ...]]] = {
    Domain.MEDICATIONS: ("medication",), Domain.CONDITIONS: ("condition", "problem list"),
    Domain.ALLERGIES: ("allerg",), Domain.LABS: ("laborator", "lab"),
}


def _missing_or_reason(reason: str, ids: _Ids, seen: set[str]) -> Fact:
    """A reason the options are not ranked: a missing part of the record or BP, or another."""
    domain = _domain_of(reason)
    if domain is not None and f"missing-{domain.value}" not in seen:
        fid = f"missing-{domain.value}"
        keys: tuple[str, ...] = _DOMAIN_KEYS[domain]
        kind = FactKind.MISSING
    elif "blood pressure" in reason and "missing-bp" not in seen:
        fid, keys, kind = "missing-bp", _BP_WORDS, FactKind.MISSING
    else:
        fid, kind = ids.next("reason"), FactKind.REASON
        nums = numbers(reason)
        keys = ((f"{nums[0]:g}",) if nums else ()) + tuple(
            w for w in ("deceased", "age", "adult") if w in reason.lower())
    seen.add(fid)
    return make_fact(fid, kind, f"Not ranked because: {reason}.", True, keys)


#: Terms a sentence may use to cover a stop condition, beside its first number.
_STOP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "hyperkalaemia-emergency": ("hyperkal", "potassium", "K+"),
    "hyperkalaemia": ("hyperkal", "potassium", "K+"),
    "potassium-rising": ("potassium", "K+", "hyperkal"),
    "pregnancy-severe-hypertension": ("pregnan",),
    "pregnancy": ("pregnan",),
    "severe-hypertension": ("severe",),
    "kidney-failure": ("kidney", "renal", "dialysis"),
    "low-bp": ("low blood pressure", "low BP", "hypotension"),
    "postural-hypotension": ("postural",),
    "overtreatment": ("de-escalat", "over-treat", "overtreat", "reduc"),
}


def _stop_facts(a: Assessment) -> list[Fact]:
    out = []
    for s in a.stops:
        nums = numbers(s.summary)
        keys = ((f"{nums[0]:g}",) if nums else ()) + _STOP_KEYS.get(s.code, ())
        text = (f"Stop condition ({s.urgency.value}): {s.summary}. What the guideline asks: "
                f"{s.action} ({s.citation})")
        out.append(make_fact(f"stop-{s.code}", FactKind.STOP, text, True, keys))
    return out


#: Patient-level findings a rationale must say, with what says them: at target (no step-up),
#: uncontrolled on four drugs (specialist advice), a drug taken now that is contraindicated.
_REQUIRED_FINDINGS: Final[dict[str, tuple[str, ...]]] = {
    "at-target": ("no step-up",),
    "specialist-advice": ("specialist",),
    "current-contraindicated": ("reduce or stop",),
}


def _patient_finding_facts(findings: Iterable[Finding], ids: _Ids, seen: set[str]
                           ) -> list[Fact]:
    out = []
    for f in findings:
        if f.code == "labs-unavailable":
            seen.add("missing-labs")
            out.append(make_fact("missing-labs", FactKind.MISSING, _finding_text(f), True,
                                 _DOMAIN_KEYS[Domain.LABS]))
        elif f.code == "not-ranked":
            continue  # said by the reasons
        elif f.code in _REQUIRED_FINDINGS:
            out.append(make_fact(ids.next(f"finding-{f.code}"), FactKind.FINDING,
                                 _finding_text(f), True, _REQUIRED_FINDINGS[f.code]))
        else:
            out.append(make_fact(ids.next(f"finding-{f.code}"), FactKind.FINDING,
                                 _finding_text(f)))
    return out


def _grouped(a: Assessment, options: Iterable[OptionAssessment], severity: set[Severity]
             ) -> dict[Finding, list[OptionAssessment]]:
    """The options' findings of ``severity``, each with the options it is found for."""
    groups: dict[Finding, list[OptionAssessment]] = {}
    for o in options:
        for f in o.findings:
            if f.severity in severity:
                groups.setdefault(f, []).append(o)
    return groups


def _names(a: Assessment, options: list[OptionAssessment]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for o in options for k in _option_keys(a, o)[:1]))


def _contraindicated_classes(a: Assessment) -> frozenset[DrugClass]:
    """Classes not taken now that every option raising them is contraindicated for: never
    started for this patient."""
    return frozenset(
        c for c in CLASS_ORDER
        if c not in a.current_regimen
        and (raising := [o for o in a.options if c in o.option.increased_set])
        and all(o.status is OptionStatus.CONTRAINDICATED for o in raising))


def _assessed_facts(a: Assessment, ids: _Ids) -> list[Fact]:
    out: list[Fact] = []
    t = a.target
    if t is not None:
        out.append(make_fact("target", FactKind.TARGET,
                             f"Target: clinic BP below {t.systolic:.0f}/{t.diastolic:.0f} mmHg "
                             f"({t.citation}).", True, (f"{t.systolic:.0f}",)))
    name = GUIDELINE_NAMES.get(a.guideline, a.guideline.upper())
    if a.guideline_step:
        out.append(make_fact("step", FactKind.STEP,
                             f"The {name} step for this patient: {a.guideline_step}.",
                             keys=("step",)))
    ranked = [o for o in a.options if o.rank is not None]
    shown = ranked[:SHOWN_RANKED]
    first = a.first
    choice = min((o for o in a.options if o.guideline_preferred),
                 key=lambda o: (o.rank is None, o.rank or 0), default=None)
    if choice is None:
        text = "No option of the guideline's step is available for this patient."
        if a.choice_reason:
            text += f" {a.choice_reason}"
        out.append(make_fact("choice", FactKind.GUIDELINE_CHOICE, text, first is not None,
                             ("guideline",)))
    else:
        text = f"The guideline's own choice at this step: {a.label(choice.option)}."
        if a.choice_reason:
            text += f" The first option is not the guideline's choice: {a.choice_reason}"
        elif choice is first:
            text += " The first option is the guideline's own choice."
        out.append(make_fact("choice", FactKind.GUIDELINE_CHOICE, text,
                             a.choice_reason is not None, _option_keys(a, choice)))
        if choice not in shown:
            shown.append(choice)
    for o in shown:
        fid = f"option-{o.rank}" if o.rank is not None else "option-choice"
        out.append(_option_fact(a, o, fid, o is first))
    blocked = [o for o in a.options if o.status is OptionStatus.CONTRAINDICATED]
    never = _contraindicated_classes(a)
    for f, opts in _grouped(a, blocked, {Severity.BLOCK}).items():
        classes = [c for c in CLASS_ORDER
                   if c in never and any(c in o.option.increased_set for o in opts)]
        if classes:
            drugs = ", ".join(CLASS_INFO[c].drug for c in classes)
            keys = tuple(k for c in classes for k in (CLASS_INFO[c].drug, CLASS_INFO[c].short,
                                                      CLASS_INFO[c].name))
            out.append(make_fact(ids.next("contraindicated"), FactKind.CONTRAINDICATION,
                                 f"Contraindicated, not offered: {drugs}. {f.message} "
                                 f"({f.citation})", True, keys))
        else:  # only some options raising these classes are blocked (a dose, a combination)
            labels = "; ".join(a.label(o.option) for o in opts)
            out.append(make_fact(ids.next(f"finding-{f.code}"), FactKind.FINDING,
                                 f"Not offered: {labels}. Contraindicated: {f.message} "
                                 f"({f.citation})", True, _names(a, opts)))
    for f, opts in _grouped(a, shown, {Severity.WARN, Severity.INFO}).items():
        labels = "; ".join(a.label(o.option) for o in opts)
        out.append(make_fact(ids.next(f"finding-{f.code}"), FactKind.FINDING,
                             _finding_text(f, f"For {labels}: ")))
    return out


def _regimen_fact(a: Assessment) -> Fact:
    parts = []
    for c, dose in a.current_regimen.items():
        drug, daily = a.current_drugs.get(c, (CLASS_INFO[c].drug, None))
        amount = f"{daily:g} mg a day" if daily is not None else f"{dose:g}x the standard dose"
        parts.append(f"{drug} {amount} ({CLASS_INFO[c].short})")
    text = ("Current antihypertensive treatment: " + ", ".join(parts) + "." if parts
            else "No current antihypertensive treatment recorded.")
    return make_fact("regimen", FactKind.REGIMEN, text)


_STATUS_TEXT: Final = {
    AssessmentStatus.ASSESSED: "The options are ranked (the assessment decided; this text "
                               "only explains it).",
    AssessmentStatus.PATHWAY: "No ranked options: a stop condition applies and says what to "
                              "do instead (not advice against treatment).",
    AssessmentStatus.CANNOT_ASSESS: "The options cannot be ranked for this patient: see the "
                                    "reasons.",
}


def facts_of(a: Assessment) -> Facts:
    """The facts of ``a`` (see the module docstring)."""
    ids = _Ids()
    seen: set[str] = set()
    items = [make_fact("status", FactKind.STATUS, _STATUS_TEXT[a.status])]
    s, d = a.clinic_bp
    if s is not None:
        items.append(make_fact("bp", FactKind.CURRENT_BP,
                               f"Clinic BP read by the assessment: {_bp(s)}/{_bp(d)} mmHg.",
                               keys=(f"{s:.0f}",)))
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        items += [_missing_or_reason(r, ids, seen) for r in a.reasons]
    else:
        items.append(_regimen_fact(a))
    if a.status is AssessmentStatus.PATHWAY:
        t = a.target
        if t is not None:
            items.append(make_fact("target", FactKind.TARGET,
                                   f"Target: clinic BP below {t.systolic:.0f}/{t.diastolic:.0f} "
                                   f"mmHg ({t.citation}).", False, (f"{t.systolic:.0f}",)))
        items += _stop_facts(a)
        items += [_missing_or_reason(f.message, ids, seen) for f in a.findings
                  if f.code == "not-ranked"]
    if a.status is AssessmentStatus.ASSESSED:
        items += _assessed_facts(a, ids)
    items += _patient_finding_facts(a.findings, ids, seen)
    return Facts(tuple(items), _hash(items))


def _hash(items: list[Fact]) -> str:
    doc = [FACTS_VERSION, [[f.id, f.kind.value, f.text, f.required, list(f.keys), f.effect]
                           for f in items]]
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()
