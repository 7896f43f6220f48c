"""What a sentence claims, found by pattern: numbers, drugs, drug classes, guideline citations
and dates. The verifier (:mod:`rationale.verifier`) compares what a sentence says with what the
facts it cites say, with these same functions on both sides, so a fact licenses exactly what
its own text says.

* **Numbers**: every decimal number not part of a word or a citation ("140/90" is 140 and 90;
  "-12.3", "12 mmHg", "80%", "5 mg"); signs are not kept (a direction is judged by the
  contradiction check, not here). A number said matches a number of the facts when equal, or
  equal to it rounded to a whole number or one decimal (12 for 12.3 is faithful).
* **Concepts**: the drug lexicon is every ingredient name the medication mapping knows
  (:data:`fhir_mappings.drug_codes.INGREDIENTS`: antihypertensives and the drugs the rules read,
  such as NSAIDs and lithium), the class names of :data:`vocabulary.drug_classes.CLASS_INFO`
  with their usual synonyms ("ACE inhibitor", "ACEi", "calcium-channel blocker", "CCB" ...)
  and a few group words (diuretic, NSAID, loop diuretic). A drug is licensed only by itself;
  a class also by one of its drugs (naming amlodipine's class when the fact says amlodipine is
  faithful).
* **Citations**: guideline bodies and documents (NICE, NG136, ESC, MHRA, BNF, SmPC, KDIGO, UK
  Kidney Association ...), recommendation numbers with two or more dots ("1.4.40") and ISO dates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from fhir_mappings.drug_codes import INGREDIENTS, DrugGroup
from vocabulary.drug_classes import CLASS_INFO, DrugClass


@dataclass(frozen=True, slots=True)
class Concept:
    """A drug, a drug class or a group word, and the concepts whose mention licenses it."""

    id: str
    pattern: re.Pattern[str]
    licensed_by: frozenset[str]
    needles: tuple[str, ...] = ()
    """Lower-case literals, one of which any match contains (a drug's names); empty: the
    pattern is always searched (class and group words are regex fragments)."""

    def found_in(self, text: str, lowered: str) -> bool:
        """Whether ``text`` (``lowered``: the same, lower-cased) mentions this concept: the
        cheap substring test first, so most of the lexicon costs no regex search."""
        if self.needles and not any(n in lowered for n in self.needles):
            return False
        return self.pattern.search(text) is not None


def _words(*alternatives: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive alternatives (each a regex fragment)."""
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w])", re.IGNORECASE)


#: Class synonyms (regex fragments) beside the CLASS_INFO names.
_CLASS_WORDS: Final[dict[DrugClass, tuple[str, ...]]] = {
    DrugClass.ACE_INHIBITOR: (r"ACE[- ]?inhibitors?", r"ACEis?",
                              r"angiotensin[- ]converting[- ]enzyme inhibitors?"),
    DrugClass.ARB: (r"ARBs?", r"angiotensin(?:[- ]II)?[- ]receptor (?:blockers?|antagonists?)",
                    r"sartans?"),
    DrugClass.CCB: (r"(?:dihydropyridine )?calcium[- ]channel blockers?", r"CCBs?",
                    r"calcium antagonists?"),
    DrugClass.THIAZIDE_LIKE: (r"thiazide(?:[- ]like)?(?: diuretics?)?", r"thiazides"),
    DrugClass.BETA_BLOCKER: (r"beta[- ]?blockers?", r"β[- ]?blockers?"),
    DrugClass.SPIRONOLACTONE: (r"mineralocorticoid[- ]receptor antagonists?", r"MRAs?"),
    DrugClass.ALPHA_BLOCKER: (r"alpha[- ]?blockers?", r"alpha-(?= or beta)"),
}

#: Group words: id, regex fragments, and the concepts (by id) that also license it.
_GROUP_WORDS: Final[tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = (
    ("group:diuretic", (r"diuretics?",),
     ("class:thiazide_like", "class:spironolactone", f"group:{DrugGroup.LOOP_DIURETIC}")),
    (f"group:{DrugGroup.LOOP_DIURETIC}", (r"loop diuretics?",), ()),
    (f"group:{DrugGroup.NSAID}", (r"NSAIDs?", r"non-?steroidal anti-?inflammator\w*"), ()),
    (f"group:{DrugGroup.NON_DHP_CCB}",
     (r"non-?dihydropyridine(?: calcium[- ]channel blockers?)?", r"non-DHP"), ()),
    (f"group:{DrugGroup.ALISKIREN}", (r"(?:direct )?renin inhibitors?",), ()),
)


@cache
def concepts() -> tuple[Concept, ...]:
    """Every concept of the lexicon (built once)."""
    drugs_of: dict[str, list[str]] = {}
    out: list[Concept] = []
    for ing in INGREDIENTS:
        cid = f"drug:{ing.name}"
        names = [re.escape(n) for n in ing.all_names]
        out.append(Concept(cid, _words(*names), frozenset({cid}),
                           tuple(sorted({n.lower() for n in ing.all_names}))))
        if ing.drug_class is not None:
            drugs_of.setdefault(f"class:{ing.drug_class.value}", []).append(cid)
        if ing.group is not None:
            drugs_of.setdefault(f"group:{ing.group.value}", []).append(cid)
    for c, info in CLASS_INFO.items():
        cid = f"class:{c.value}"
        words = {re.escape(info.name), *_CLASS_WORDS[c]}
        if info.short != info.drug:
            words.add(re.escape(info.short))
        out.append(Concept(cid, _words(*sorted(words)),
                           frozenset({cid, *drugs_of.get(cid, [])})))
    for cid, fragments, also in _GROUP_WORDS:
        licensing = {cid, *also, *drugs_of.get(cid, [])}
        for other in also:
            licensing.update(drugs_of.get(other, []))
        out.append(Concept(cid, _words(*fragments), frozenset(licensing)))
    return tuple(out)


def find_concepts(text: str) -> frozenset[str]:
    """The ids of the concepts ``text`` mentions."""
    lowered = text.lower()
    return frozenset(c.id for c in concepts() if c.found_in(text, lowered))


def concept(cid: str) -> Concept:
    return next(c for c in concepts() if c.id == cid)


def licensed(cid: str, mentioned: frozenset[str]) -> bool:
    """Whether a mention of ``cid`` is licensed by text that mentions ``mentioned``."""
    return bool(concept(cid).licensed_by & mentioned)


# --- citations -------------------------------------------------------------------------------

_BODIES: Final = _words(r"NICE", r"NG ?\d{2,3}", r"CG ?\d{2,3}", r"ESC", r"ESH", r"MHRA",
                        r"BNF", r"SmPC", r"KDIGO", r"UKKA", r"UK Kidney Association", r"ACC",
                        r"AHA", r"JNC ?\d*", r"ISH", r"WHO", r"ADA", r"SIGN")
#: A recommendation or section number with two or more dots ("1.4.40").
_REC: Final = re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w.]*\d)")
_DATE: Final = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")


def citations(text: str) -> frozenset[str]:
    """Guideline bodies and documents (normalised: upper case, no spaces), recommendation
    numbers and dates ``text`` mentions."""
    bodies = {re.sub(r"\s+", "", m.group(0)).upper() for m in _BODIES.finditer(text)}
    return frozenset(bodies | set(_REC.findall(text)) | set(_DATE.findall(text)))


# --- numbers ---------------------------------------------------------------------------------

_NUMBER: Final = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
#: Text that holds digits but no number claim: citations, dates, codes attached to words.
_NOT_NUMBERS: Final = (_REC, _DATE)


def numbers(text: str) -> tuple[float, ...]:
    """The numbers ``text`` says (absolute values), in order; citations and dates are not
    numbers here (:func:`citations` reads them)."""
    for pattern in _NOT_NUMBERS:
        text = pattern.sub(" ", text.replace("\u2212", "-"))
    return tuple(float(m.group(0)) for m in _NUMBER.finditer(text))


def _half_up(v: float, digits: int) -> float:
    scale = 10.0 ** digits
    return math.floor(v * scale + 0.5) / scale


def same_number(said: float, fact: float) -> bool:
    """``said`` is ``fact`` as written, or rounded to a whole number or one decimal."""
    a, b = abs(said), abs(fact)
    return any(math.isclose(a, v, abs_tol=1e-9) for v in (b, _half_up(b, 0), _half_up(b, 1)))


def has_number(said: float, facts: tuple[float, ...] | list[float]) -> bool:
    return any(same_number(said, f) for f in facts)


# --- key terms -------------------------------------------------------------------------------

def says_key(text: str, key: str) -> bool:
    """Whether ``text`` says ``key``: a number (by :func:`same_number`) or a term (a word
    starting with it, case-insensitive: "pregnan" is said by "pregnant" and "pregnancy")."""
    try:
        value = float(key)
    except ValueError:
        return re.search(r"(?<![\w])" + re.escape(key), text, re.IGNORECASE) is not None
    return any(same_number(n, value) for n in numbers(text))
