"""The verifier: a rationale reaches a clinician only if it says nothing the facts do not, leaves
out no required fact and contradicts none (issue 16 item 3; DESIGN.md section 10). The service
and the benchmark share it.

:func:`verify` reads the raw message content of the LLM and returns a :class:`Verdict` with
every problem found, each of one kind:

* ``schema``: not JSON, or not the shape of :data:`rationale.prompt.RESPONSE_SCHEMA` (a missing
  or extra key, too many or no sentences, a sentence too long or empty, too many or no fact
  ids), or a fact id that is not one of the facts.
* ``hallucination``: a sentence says a number (BP, target, effect, interval, dose, potassium
  ...), a drug, a drug class, a guideline citation (body, document or recommendation number)
  or a date that no fact *cited by that sentence* says (:mod:`rationale.lexicon`; a drug
  anywhere in the lexicon that is not in the cited facts is caught).
* ``omission``: a required fact (:mod:`rationale.facts`) is cited by no sentence, or the
  sentences citing it do not say what it names (one of its ``keys``: the drug, the target, the
  stop's value ...).
* ``contradiction``: a sentence says an option raises BP when every option it cites lowers it
  (or lowers it when none does, or does not lower it when all do); says a drug or class is
  first or recommended when option 1 is another; calls a contraindicated drug or class safe,
  suitable or recommended; states a target other than the target.

The checks read plain words and patterns, not meaning: they are strict where the facts are
exact (numbers, names, citations) and catch the common wordings of a contradiction, not every
possible one. A rationale with any problem is rejected (``ok`` False) and the deterministic
rationale (:mod:`rationale.fallback`) stands in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from rationale.facts import Fact, FactKind, Facts
from rationale.lexicon import (
    citations,
    find_concepts,
    has_number,
    licensed,
    numbers,
    same_number,
    says_key,
)
from rationale.prompt import (
    MAX_FACT_ID_CHARS,
    MAX_FACTS_PER_SENTENCE,
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES,
)


class ProblemKind(StrEnum):
    SCHEMA = "schema"
    HALLUCINATION = "hallucination"
    OMISSION = "omission"
    CONTRADICTION = "contradiction"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    detail: str
    fact_id: str | None = None
    sentence: int | None = None
    """0-based index of the sentence (None: the rationale as a whole)."""


@dataclass(frozen=True)
class Sentence:
    text: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Rationale:
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def content(self) -> str:
        """The rationale as the JSON an LLM answers with (what :func:`verify` reads)."""
        return json.dumps({"sentences": [{"text": s.text, "facts": list(s.facts)}
                                         for s in self.sentences]}, ensure_ascii=False)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rationale: Rationale | None
    """The parsed rationale, when the content had the outer shape (even with problems)."""
    problems: tuple[Problem, ...]

    @property
    def kinds(self) -> frozenset[ProblemKind]:
        return frozenset(p.kind for p in self.problems)


def verify(facts: Facts, content: str) -> Verdict:
    """Every problem of ``content`` (the LLM's message content) against ``facts``."""
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError) as e:
        return Verdict(False, None, (Problem(ProblemKind.SCHEMA, f"not JSON ({e})"),))
    rationale, problems = _parse(doc, facts)
    if rationale is not None:
        problems += _content_problems(facts, rationale)
    return Verdict(not problems, rationale, tuple(problems))


def verify_rationale(facts: Facts, rationale: Rationale) -> Verdict:
    """:func:`verify` of a rationale already in hand (the deterministic one, what was shown)."""
    return verify(facts, rationale.content())


# --- schema ----------------------------------------------------------------------------------

def _schema(detail: str, sentence: int | None = None, fact_id: str | None = None) -> Problem:
    return Problem(ProblemKind.SCHEMA, detail, fact_id, sentence)


def _parse(doc: Any, facts: Facts) -> tuple[Rationale | None, list[Problem]]:
    if not isinstance(doc, dict):
        return None, [_schema(f"the answer is a JSON {type(doc).__name__}, not an object")]
    problems = [_schema(f"unexpected key {k!r}") for k in doc if k != "sentences"]
    items = doc.get("sentences")
    if not isinstance(items, list):
        return None, [*problems, _schema("no 'sentences' array")]
    if not 1 <= len(items) <= MAX_SENTENCES:
        problems.append(_schema(f"{len(items)} sentences (1 to {MAX_SENTENCES} allowed)"))
    known = facts.ids
    sentences = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(_schema("a sentence is not an object", i))
            continue
        problems += [_schema(f"unexpected key {k!r}", i) for k in item
                     if k not in ("text", "facts")]
        text, ids = item.get("text"), item.get("facts")
        if not isinstance(text, str) or not text.strip():
            problems.append(_schema("no text", i))
            continue
        if len(text) > MAX_SENTENCE_CHARS:
            problems.append(_schema(f"{len(text)} characters (at most {MAX_SENTENCE_CHARS})",
                                    i))
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_FACTS_PER_SENTENCE:
            problems.append(_schema(f"'facts' must list 1 to {MAX_FACTS_PER_SENTENCE} ids", i))
        cited = []
        for fid in ids if isinstance(ids, list) else []:
            if not isinstance(fid, str) or len(fid) > MAX_FACT_ID_CHARS:
                problems.append(_schema(f"fact id {str(fid)[:MAX_FACT_ID_CHARS]!r} is not an "
                                        f"id of at most {MAX_FACT_ID_CHARS} characters", i))
            elif fid not in known:
                problems.append(_schema(f"unknown fact id {fid!r}", i, fid))
            else:
                cited.append(fid)
        sentences.append(Sentence(text, tuple(dict.fromkeys(cited))))
    return Rationale(tuple(sentences)), problems


# --- content ---------------------------------------------------------------------------------

def _content_problems(facts: Facts, r: Rationale) -> list[Problem]:
    out: list[Problem] = []
    # ids such as "option-1" (not the plain words "target", "bp" ...)
    coined = sorted((fid for fid in facts.ids if "-" in fid), key=len, reverse=True)
    ids = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, coined)) + r")(?![\w-])"
                     ) if coined else None
    for i, s in enumerate(r.sentences):
        cited = [f for f in (facts.get(fid) for fid in s.facts) if f is not None]
        # a fact id written in the text ("(option-1)") is a reference, not a claim
        text = ids.sub(" ", s.text) if ids is not None else s.text
        out += _hallucinations(text, cited, i)
        out += _contradictions(facts, text, cited, i)
    out += _omissions(facts, r)
    return out


def _hallucinations(text: str, cited: list[Fact], i: int) -> Iterator[Problem]:
    said_numbers = [n for f in cited for n in f.numbers]
    terms = frozenset(t for f in cited for t in f.terms)
    where = f" (cited: {', '.join(f.id for f in cited) or 'none'})"
    for n in dict.fromkeys(numbers(text)):
        if not has_number(n, said_numbers):
            yield Problem(ProblemKind.HALLUCINATION,
                          f"the number {n:g} is in no fact the sentence cites{where}", None, i)
    for cid in sorted(find_concepts(text)):
        if not licensed(cid, terms):
            yield Problem(ProblemKind.HALLUCINATION,
                          f"{cid.split(':', 1)[1]} is named by no fact the sentence "
                          f"cites{where}", None, i)
    for token in sorted(citations(text)):
        if token not in terms:
            yield Problem(ProblemKind.HALLUCINATION,
                          f"the citation or date {token!r} is in no fact the sentence "
                          f"cites{where}", None, i)


def _omissions(facts: Facts, r: Rationale) -> Iterator[Problem]:
    for f in facts.required:
        citing = [s for s in r.sentences if f.id in s.facts]
        if not citing:
            yield Problem(ProblemKind.OMISSION, f"required fact {f.id!r} is cited by no "
                          "sentence", f.id)
        elif f.keys and not any(says_key(s.text, k) for s in citing for k in f.keys):
            yield Problem(ProblemKind.OMISSION, f"required fact {f.id!r} is cited but not "
                          f"said (expected one of: {', '.join(f.keys)})", f.id)


# --- contradictions --------------------------------------------------------------------------

_BP: Final = r"(?:blood pressure|BP|systolic(?: BP| blood pressure)?)"
_WHOSE: Final = r"(?:(?:the|your|his|her|their|the patient's|patient's)\s+)?"
_MAY: Final = r"(?:(?:would|will|should|may|might|is expected to|is likely to|to)\s+)?"
_DOWN: Final = re.compile(
    rf"\b(?:lower(?:s|ed|ing)?|reduc(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|cut(?:s|ting)?|"
    rf"bring(?:s|ing)? down)\s+{_WHOSE}{_BP}\b"
    rf"|\b{_BP}\s+{_MAY}(?:fall|falls|drop|drops|decrease|decreases|come down|comes down|"
    rf"go down|goes down)\b"
    rf"|\b(?:fall|drop|reduction|decrease|lowering)\s+(?:in|of)\s+{_WHOSE}{_BP}\b"
    rf"|\bBP[- ]lowering\b", re.IGNORECASE)
_UP: Final = re.compile(
    rf"\b(?:rais(?:e|es|ed|ing)|increas(?:e|es|ed|ing)|elevat(?:e|es|ed|ing)|"
    rf"push(?:es|ed)? up|put(?:s)? up)\s+{_WHOSE}{_BP}\b"
    rf"|\b{_BP}\s+{_MAY}(?:rise|rises|go up|goes up|increase|increases)\b"
    rf"|\b(?:rise|increase)\s+(?:in|of)\s+{_WHOSE}{_BP}\b", re.IGNORECASE)
_NEGATION: Final = re.compile(r"\b(?:not|never|no|cannot|unlikely)\b|n't\b", re.IGNORECASE)
_CLAUSE_BREAK: Final = re.compile(
    r";|(?<=[.!?])\s+(?=(?-i:[A-Z]))|\b(?:but|whereas|while|rather than|instead of|ahead of|"
    r"over|before|after|than|followed by|then|unlike|compared with)\b", re.IGNORECASE)
_FIRST: Final = re.compile(
    r"\b(?:first|top|best|preferred|leading|main)\s+(?:option|choice|suggestion|treatment)\b"
    r"|\branked\s+(?:first|highest|top|1)\b|\bcomes?\s+first\b|\brecommended\b"
    r"|\boption\s+(?:1|one)\b|\bnumber one\b", re.IGNORECASE)
#: A clause about the guideline's own choice or step (what the guideline recommends is not a
#: claim about the first option).
_GUIDELINE: Final = re.compile(r"\bguideline|\bNICE\b|\bESC\b|\bNG\s?\d+", re.IGNORECASE)
_SAFE: Final = re.compile(
    r"\bsafe(?:ly)?\b|\bsuitable\b|\bappropriate\b|\bfine\b|\brecommended\b"
    r"|\bcan be (?:used|started|given|added|taken|offered|continued)\b"
    r"|\bno (?:contraindications?|problems?|concerns?)\b"
    r"|\b(?:first|good|best|preferred|reasonable) (?:option|choice)\b|\bis an option\b",
    re.IGNORECASE)
_NOT_SAFE: Final = re.compile(
    r"\b(?:not|never|avoid\w*|contraindicat\w*|unsafe|unsuitable|inappropriate|don't|"
    r"shouldn't|cannot)\b|\bno\b(?!\s+(?:contraindications?|problems?|concerns?)\b)",
    re.IGNORECASE)
_TARGET: Final = re.compile(
    r"\btarget\b(?!\s+organ)(?!\))[^0-9;.]{0,40}?(?<![\w.])(\d+(?:\.\d+)?)"
    r"(?:\s*/\s*(\d+(?:\.\d+)?))?", re.IGNORECASE)
_CITATION_TEXT: Final = re.compile(r"\b(?:NG|CG)\s?\d+\b|(?<![\w.])\d+(?:\.\d+){2,}"
                                   r"|\d{4}-\d{2}-\d{2}")


def _clauses(text: str, cited: list[Fact]) -> list[str]:
    """The clauses of ``text`` that are its own words: a clause repeating the words of a fact
    the sentence cites is that fact, not a claim that could contradict it."""
    quoted = [" ".join(f.text.lower().split()) for f in cited]
    out = []
    for c in _CLAUSE_BREAK.split(text):
        words = " ".join(c.lower().split()).strip(" .,:()")
        if words and not any(words in q for q in quoted):
            out.append(c)
    return out


def _negated_before(text: str, start: int) -> bool:
    """A negation within the three words before ``start``."""
    before = text[:start].split()[-3:]
    return bool(_NEGATION.search(" ".join(before)))


def _claims(text: str, pattern: re.Pattern[str]) -> tuple[bool, bool]:
    """(said, said negated) of ``pattern`` in ``text``."""
    said = negated = False
    for m in pattern.finditer(text):
        if _negated_before(text, m.start()):
            negated = True
        else:
            said = True
    return said, negated


def _concepts_of(facts: Iterable[Fact]) -> frozenset[str]:
    return frozenset(c for f in facts for c in find_concepts(" ".join(f.keys)))


def _contradictions(facts: Facts, text: str, cited: list[Fact], i: int) -> Iterator[Problem]:
    clauses = _clauses(text, cited)
    yield from _direction(clauses, cited, i)
    yield from _wrong_first(facts, clauses, i)
    yield from _contraindicated_safe(facts, clauses, i)
    yield from _target(facts, clauses, i)


def _direction(clauses: list[str], cited: list[Fact], i: int) -> Iterator[Problem]:
    effects = [f.effect for f in cited if f.kind is FactKind.OPTION and f.effect is not None]
    if not effects:
        return
    text = " ; ".join(clauses)
    down, not_down = _claims(text, _DOWN)
    up, not_up = _claims(text, _UP)
    all_lower = all(e < 0 for e in effects)
    none_lower = all(e >= 0 for e in effects)
    ids = ", ".join(f.id for f in cited if f.kind is FactKind.OPTION)
    if (up or not_down) and all_lower:
        yield Problem(ProblemKind.CONTRADICTION, f"says BP rises or does not fall, but the "
                      f"options cited ({ids}) are expected to lower it", None, i)
    if (down or not_up) and none_lower:
        yield Problem(ProblemKind.CONTRADICTION, f"says BP falls, but the options cited "
                      f"({ids}) are not expected to lower it", None, i)


def _wrong_first(facts: Facts, clauses: list[str], i: int) -> Iterator[Problem]:
    first = facts.get("option-1")
    if first is None:
        return
    ours = _concepts_of([first])
    for clause in clauses:
        if not _FIRST.search(clause) or _NEGATION.search(clause) or _GUIDELINE.search(clause):
            continue
        named = find_concepts(clause)
        if named and not named & ours:
            yield Problem(ProblemKind.CONTRADICTION,
                          f"says {', '.join(sorted(c.split(':', 1)[1] for c in named))} "
                          f"comes first, but option 1 is {first.keys[0] if first.keys else '?'}",
                          "option-1", i)


def _contraindicated_safe(facts: Facts, clauses: list[str], i: int) -> Iterator[Problem]:
    blocked = [f for f in facts.items if f.kind is FactKind.CONTRAINDICATION]
    if not blocked:
        return
    offered = _concepts_of(f for f in facts.items
                           if f.kind in (FactKind.OPTION, FactKind.GUIDELINE_CHOICE))
    never = _concepts_of(blocked) - offered
    for clause in clauses:
        if not _SAFE.search(clause) or _NOT_SAFE.search(clause):
            continue
        if hit := find_concepts(clause) & never:
            fact = next(f for f in blocked if _concepts_of([f]) & hit)
            yield Problem(ProblemKind.CONTRADICTION,
                          f"calls {', '.join(sorted(c.split(':', 1)[1] for c in hit))} safe "
                          "or recommended, but it is contraindicated", fact.id, i)


def _target(facts: Facts, clauses: list[str], i: int) -> Iterator[Problem]:
    target = next((f for f in facts.items if f.kind is FactKind.TARGET), None)
    if target is None or len(target.numbers) < 2:
        return
    systolic, diastolic = target.numbers[:2]
    plain = _CITATION_TEXT.sub(" ", " ; ".join(clauses))
    for m in _TARGET.finditer(plain):
        a, b = float(m.group(1)), m.group(2)
        right = (same_number(a, systolic) and same_number(float(b), diastolic) if b
                 else same_number(a, systolic) or same_number(a, diastolic))
        if not right:
            said = f"{m.group(1)}/{b}" if b else m.group(1)
            yield Problem(ProblemKind.CONTRADICTION,
                          f"states the target as {said}, but it is below "
                          f"{systolic:g}/{diastolic:g}", target.id, i)
