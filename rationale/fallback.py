"""The deterministic rationale: the same facts in fixed sentences, shown whenever the LLM's
rationale is rejected, late or off (issue 16 item 3; DESIGN.md section 10).

It is built from the facts' own words, so it passes :func:`rationale.verifier.verify` by
construction: each sentence cites the facts whose text it repeats, every required fact is
cited with what it names, and the sentences fit the response schema (at most
:data:`~rationale.prompt.MAX_SENTENCES` sentences of :data:`~rationale.prompt.MAX_SENTENCE_CHARS`
characters, each citing at most :data:`~rationale.prompt.MAX_FACTS_PER_SENTENCE` facts). Parts
are packed into sentences in order of importance; optional parts (the other options, the
step) are dropped first when there is no room, then long parts are said in their short form.
The tests run it over every clinical-safety case, the example and simulated patients.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rationale.facts import Fact, FactKind, Facts
from rationale.lexicon import says_key
from rationale.prompt import MAX_FACTS_PER_SENTENCE, MAX_SENTENCE_CHARS, MAX_SENTENCES
from rationale.verifier import Rationale, Sentence


class FallbackError(RuntimeError):
    """The required facts do not fit the response schema even in their short form (a fact set
    the tests would have caught; never expected)."""


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    short: str
    facts: tuple[str, ...]
    required: bool


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SENTENCE_CHARS else ""


def _cut(text: str) -> str:
    """``text`` cut at a word to fit a sentence, marked with an ellipsis."""
    if len(text) <= MAX_SENTENCE_CHARS:
        return text
    return text[:MAX_SENTENCE_CHARS - 4].rsplit(" ", 1)[0].rstrip(",;:(") + " ..."


def _after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1].strip() if marker in text else text


def _stop_summary(f: Fact) -> str:
    """"Stop condition (critical): SUMMARY." from the stop's fact text."""
    return f.text.split(". What the guideline asks:", 1)[0] + "."


def _parts(facts: Facts) -> Iterator[_Part]:
    get = facts.get
    status, bp, target = get("status"), get("bp"), get("target")
    if status is not None and get("option-1") is None:
        yield _Part(status.text, status.text, (status.id,), False)
    for f in facts.items:
        if f.kind in (FactKind.MISSING, FactKind.REASON) and f.id != "missing-labs":
            yield _Part(f.text, _cut(f.text), (f.id,), True)
    for f in facts.items:
        if f.kind is FactKind.STOP:
            summary = _stop_summary(f)
            yield _Part(summary, summary, (f.id,), True)
    if target is not None:
        goal = _after(target.text, "Target:")
        if bp is not None:
            said = _after(bp.text, "assessment:")
            yield _Part(f"Clinic BP is {said.rstrip('.')}; the target is {goal}",
                        f"Target: {goal}", (bp.id, target.id), target.required)
        else:
            yield _Part(target.text, target.text, (target.id,), target.required)
    elif bp is not None:
        yield _Part(bp.text, bp.text, (bp.id,), False)
    first, choice, step = get("option-1"), get("choice"), get("step")
    if first is not None:
        yield _Part(first.text, first.text.split(". Expected", 1)[0] + ".", (first.id,), True)
    if choice is not None:
        if choice.required or first is None:
            head, _, rest = choice.text.partition(". ")
            why = _after(rest, "The first option is not the guideline's choice:")
            named = any(says_key(why, k) for k in choice.keys) or not choice.keys
            yield _Part(choice.text, _clip(why) if named and _clip(why) else head + ".",
                        (choice.id,), choice.required)
        elif step is not None:
            yield _Part(f"{choice.text} {step.text}", choice.text, (choice.id, step.id), False)
    for f in facts.items:
        if f.kind is FactKind.CONTRAINDICATION or (f.kind is FactKind.FINDING and f.required):
            head = f.text.split(". ", 1)[0] + "."
            yield _Part(f.text, head, (f.id,), True)
    labs = get("missing-labs")
    if labs is not None:
        yield _Part(labs.text, "Laboratory results could not be obtained.", (labs.id,), True)
    others = [f for f in facts.items if f.kind is FactKind.OPTION and f.id != "option-1"]
    for f in others:
        yield _Part(f.text.split(". Expected", 1)[0] + ".", "", (f.id,), False)


def _pack(parts: list[_Part], short: bool) -> list[Sentence]:
    sentences: list[Sentence] = []
    text = ""
    ids: tuple[str, ...] = ()
    for p in parts:
        said = (p.short or p.text) if short else (_clip(p.text) or p.short)
        if not said or len(said) > MAX_SENTENCE_CHARS:
            raise FallbackError(f"fact(s) {', '.join(p.facts)} too long to say")
        joined = f"{text} {said}" if text else said
        cited = tuple(dict.fromkeys((*ids, *p.facts)))
        if text and (len(joined) > MAX_SENTENCE_CHARS or len(cited) > MAX_FACTS_PER_SENTENCE):
            sentences.append(Sentence(text, ids))
            text, ids = said, p.facts
        else:
            text, ids = joined, cited
    if text:
        sentences.append(Sentence(text, ids))
    return sentences


def deterministic_rationale(facts: Facts) -> Rationale:
    """The facts in fixed sentences (see the module docstring); raises :class:`FallbackError`
    only if the required facts cannot fit the schema."""
    parts = list(_parts(facts))
    for short in (False, True):
        kept = list(parts)
        while True:
            sentences = _pack(kept, short)
            if len(sentences) <= MAX_SENTENCES:
                return Rationale(tuple(sentences))
            optional = [i for i, p in enumerate(kept) if not p.required]
            if not optional:
                break
            del kept[optional[-1]]
    raise FallbackError(f"{sum(p.required for p in parts)} required parts do not fit "
                        f"{MAX_SENTENCES} sentences")
