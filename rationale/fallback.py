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
    tiny: str = ""
    """The shortest form, said in the last pass (``short`` when empty)."""


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


def _uncited(text: str) -> str:
    """``text`` without its closing citation "(...)" (nested brackets allowed)."""
    text = text.rstrip()
    if not text.endswith(")"):
        return text
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return text[:i].rstrip()
    return text


def _message(f: Fact) -> str:
    """A finding's message: its text without the severity word, citation and monitoring."""
    text = f.text.split(" Monitoring: ", 1)[0]
    for word in ("Note: ", "Caution: ", "Contraindicated: "):
        if text.startswith(word):
            text = text[len(word):]
            break
    return _uncited(text).rstrip(".")


def _clause(message: str) -> str:
    """The first clause of a message (up to its first ";" or sentence end)."""
    return message.split(";", 1)[0].split(". ", 1)[0].rstrip(". ")


def _code(f: Fact) -> str:
    return f.id.removeprefix("finding-").rsplit("-", 1)[0]


def _finding_part(f: Fact) -> _Part:
    """A required patient-level finding (at target, specialist advice, a drug taken now that is
    contraindicated): said with its reason, shortest with what the fact's keys ask."""
    message = _message(f)
    if _code(f) == "at-target":
        return _Part("BP is at target: no step-up is indicated.", "BP is at target: no "
                     "step-up is indicated.", (f.id,), True, "At target: no step-up.")
    tiny = message
    parts = message.split(": ")
    if message.endswith("reduce or stop") and len(parts) >= 3:
        tiny = f"{parts[0]}: {parts[1]}: reduce or stop"
    return _Part(_uncited(f.text), _cut(message + "."), (f.id,), True, _cut(tiny + "."))


def _not_offered(facts: Facts) -> Iterator[_Part]:
    """The contraindicated options: each once, with the reasons (first clause) it is not
    offered for, citing each reason's fact."""
    groups: dict[str, list[Fact]] = {}
    for f in facts.items:
        if f.kind is FactKind.FINDING and f.required and f.text.startswith("Not offered: "):
            labels = f.text.split(". Contraindicated: ", 1)[0]
            groups.setdefault(labels, []).append(f)
    for labels, fs in groups.items():
        whys = [_uncited(f.text.split(". Contraindicated: ", 1)[-1]).rstrip(".") for f in fs]
        long = f"{labels}. Contraindicated: " + "; ".join(whys) + "."
        short = f"{labels}: " + "; ".join(_clause(w) for w in whys) + "."
        tiny = f"{labels} ({'; '.join(_clause(w) for w in whys)})."
        yield _Part(_clip(long) or short, _cut(short), tuple(f.id for f in fs), True,
                    _cut(tiny))


def _caution_of(facts: Facts, first: Fact) -> Fact | None:
    """The caution (a finding of the shown options) option 1 is given for."""
    if "(caution)" not in first.text.split(":", 1)[0]:
        return None
    label = first.text.split("): ", 1)[-1].split(". Expected", 1)[0]
    for f in facts.items:
        if f.kind is FactKind.FINDING and f.text.startswith("For ") and ": Caution: " in f.text:
            labels = f.text[4:].split(": Caution: ", 1)[0].split("; ")
            if label in labels:
                return f
    return None


def _parts(facts: Facts) -> Iterator[_Part]:
    get = facts.get
    status, bp, target = get("status"), get("bp"), get("target")
    for f in facts.items:
        if f.kind is FactKind.FINDING and f.required and _code(f) == "at-target":
            yield _finding_part(f)
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
        head = first.text.split(". Expected", 1)[0]
        caution = _caution_of(facts, first)
        if caution is None:
            yield _Part(first.text, head + ".", (first.id,), True)
        else:
            said = caution.text.split(" Monitoring: ", 1)[0]
            why = _uncited(said.split(": Caution: ", 1)[1]).rstrip(".")
            yield _Part(f"{first.text} Caution: {why}.", _cut(f"{head}: caution, {why}."),
                        (first.id, caution.id), True,
                        _cut(f"{head}: caution, {_clause(why)}."))
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
        if f.kind is FactKind.CONTRAINDICATION:
            head, _, why = f.text.partition(". ")
            short = f"{head} ({_clause(_uncited(why))})." if why else head + "."
            yield _Part(f.text, _cut(short), (f.id,), True, _cut(head + "."))
    yield from _not_offered(facts)
    for f in facts.items:
        if (f.kind is FactKind.FINDING and f.required and not f.text.startswith("Not offered: ")
                and _code(f) != "at-target"):
            yield _finding_part(f)
    labs = get("missing-labs")
    if labs is not None:
        yield _Part(labs.text, "Laboratory results could not be obtained.", (labs.id,), True)
    others = [f for f in facts.items if f.kind is FactKind.OPTION and f.id != "option-1"]
    for f in others:
        yield _Part(f.text.split(". Expected", 1)[0] + ".", "", (f.id,), False)


def _said(p: _Part, form: int) -> str:
    """Form 0: the whole text where it fits; 1: the short form; 2: the shortest."""
    if form == 0:
        return _clip(p.text) or p.short
    if form == 1:
        return p.short or p.text
    return p.tiny or p.short or p.text


def _pack(parts: list[_Part], form: int) -> list[Sentence]:
    sentences: list[Sentence] = []
    text = ""
    ids: tuple[str, ...] = ()
    for p in parts:
        said = _cut(_said(p, form))
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
    """The facts in fixed sentences (see the module docstring). Never raises: when even the
    shortest forms do not fit, the first :data:`MAX_SENTENCES` sentences are kept (the
    verifier then names what is left unsaid; not expected for any assessment)."""
    parts = list(_parts(facts))
    sentences: list[Sentence] = []
    for form in (0, 1, 2):
        kept = list(parts)
        while True:
            sentences = _pack(kept, form)
            if len(sentences) <= MAX_SENTENCES:
                return Rationale(tuple(sentences))
            optional = [i for i, p in enumerate(kept) if not p.required]
            if not optional:
                break
            del kept[optional[-1]]
    return Rationale(tuple(sentences[:MAX_SENTENCES]))
