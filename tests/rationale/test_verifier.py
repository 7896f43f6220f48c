"""The verifier on hand-made facts: every kind of problem is caught, and faithful text passes.

Each planted error below is the only error in an otherwise faithful rationale, so the verdict
must name exactly its kind: a check that misses it, or fires on the faithful sentences, fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rationale.facts import Fact, FactKind, Facts, make_fact
from rationale.verifier import ProblemKind, Rationale, Sentence, verify, verify_rationale

H, OM, C, S = (ProblemKind.HALLUCINATION, ProblemKind.OMISSION, ProblemKind.CONTRADICTION,
              ProblemKind.SCHEMA)


def _facts(*items: Fact) -> Facts:
    return Facts(items, "test")


ASSESSED = _facts(
    make_fact("bp", FactKind.CURRENT_BP, "Clinic BP read by the assessment: 158/96 mmHg.",
              keys=("158",)),
    make_fact("target", FactKind.TARGET,
              "Target: clinic BP below 140/90 mmHg (NICE NG136 1.4.20).", True, ("140",)),
    make_fact("option-1", FactKind.OPTION,
              "Option 1 (recommended): Start amlodipine (CCB). Expected effect on usual "
              "systolic BP: -7.6 mmHg (80% range -11.3 to -3.3 mmHg).", True,
              ("amlodipine", "CCB"), -7.6),
    make_fact("option-2", FactKind.OPTION,
              "Option 2 (caution): Start candesartan (ARB). Expected effect on usual systolic "
              "BP: -7.4 mmHg (80% range -11.3 to -4.1 mmHg).", False, ("candesartan", "ARB"),
              -7.4),
    make_fact("option-choice", FactKind.OPTION,
              "Not ranked (not-lowering): Start indapamide (thiazide-like). Expected effect on "
              "usual systolic BP: +0.4 mmHg (80% range -2.0 to +2.9 mmHg). Not expected to "
              "lower BP for this patient.", False, ("indapamide", "thiazide-like"), 0.4),
    make_fact("contraindicated-1", FactKind.CONTRAINDICATION,
              "Contraindicated, not offered: ramipril. History of angioedema: ACE inhibitor "
              "contraindicated. (SmPC ramipril 4.3 contraindications)", True,
              ("ramipril", "ACEi", "ACE inhibitor")),
    make_fact("finding-potassium-1", FactKind.FINDING,
              "For Start candesartan (ARB): Caution: K+ 5.2 mmol/L: check potassium in 1 week. "
              "(NICE NG136 1.4.50) Monitoring: K+ on 2026-12-01."),
)

GOOD: list[tuple[str, list[str]]] = [
    ("Clinic BP is 158/96 mmHg, above the target of below 140/90 mmHg (NICE NG136 1.4.20).",
     ["bp", "target"]),
    ("The first option is to start amlodipine, a calcium-channel blocker, expected to lower "
     "systolic BP by about 8 mmHg (80% range 11.3 to 3.3 mmHg).", ["option-1"]),
    ("Candesartan comes next, with a caution: check potassium (K+ 5.2 mmol/L) in 1 week.",
     ["option-2", "finding-potassium-1"]),
    ("Ramipril, an ACE inhibitor, is contraindicated because of a history of angioedema.",
     ["contraindicated-1"]),
]


def _content(sentences: list[tuple[str, list[str]]]) -> str:
    return json.dumps({"sentences": [{"text": t, "facts": f} for t, f in sentences]})


def _kinds(content: str, facts: Facts = ASSESSED) -> set[ProblemKind]:
    return set(verify(facts, content).kinds)


def _with(extra: tuple[str, list[str]] | None = None, *, drop: int | None = None,
          replace: dict[int, tuple[str, list[str]]] | None = None) -> str:
    out = [s for i, s in enumerate(GOOD) if i != drop]
    for i, s in (replace or {}).items():
        out[i] = s
    if extra is not None:
        out.append(extra)
    return _content(out)


def test_a_faithful_rationale_passes() -> None:
    verdict = verify(ASSESSED, _content(GOOD))
    assert verdict.ok, verdict.problems
    assert verdict.rationale is not None
    assert verdict.rationale.sentences[1].facts == ("option-1",)


PLANTED: list[tuple[str, str, set[ProblemKind]]] = [
    ("a number no cited fact says", _with(("An earlier reading was 171 mmHg.", ["bp"])), {H}),
    ("a number from a fact the sentence does not cite",
     _with(("Amlodipine is expected to change systolic BP by -7.4 mmHg.", ["option-1"])), {H}),
    ("a whole number that is not the rounding", _with(replace={1: (
        "The first option is to start amlodipine, expected to lower BP by 7 mmHg.",
        ["option-1"])}), {H}),
    ("a dose", _with(("Amlodipine would be started at 10 mg.", ["option-1"])), {H}),
    ("a drug of the lexicon", _with(("Losartan is another choice.", ["option-2"])), {H}),
    ("a drug class no cited fact names",
     _with(("A beta-blocker was not considered.", ["option-2"])), {H}),
    ("a recommendation number", _with(("NICE NG136 1.4.99 applies.", ["target"])), {H}),
    ("a guideline body", _with(("ESC guidance agrees.", ["target"])), {H}),
    ("a date", _with(("Potassium was checked on 2026-11-02.", ["finding-potassium-1"])), {H}),
    ("a required fact not cited", _with(drop=3), {OM}),
    ("a required fact cited without what it names", _with(replace={3: (
        "One option is contraindicated because of a history of angioedema.",
        ["contraindicated-1"])}), {OM}),
    ("the first option left out", _with(drop=1), {OM}),
    ("raises BP for a lowering option",
     _with(("Starting amlodipine would raise blood pressure.", ["option-1"])), {C}),
    ("lowers BP for an option not expected to",
     _with(("Indapamide lowers blood pressure here.", ["option-choice"])), {C}),
    ("not expected to lower for a lowering option",
     _with(("Amlodipine is not expected to lower BP.", ["option-1"])), {C}),
    ("another option called first",
     _with(("Candesartan is the first option.", ["option-2"])), {C}),
    ("another option called recommended",
     _with(("Starting candesartan is recommended.", ["option-2"])), {C}),
    ("a contraindicated drug called safe",
     _with(("Ramipril is safe for this patient.", ["contraindicated-1"])), {C}),
    ("a contraindicated class called suitable",
     _with(("An ACE inhibitor would be suitable.", ["contraindicated-1"])), {C}),
    ("the target mis-stated", _with(replace={0: (
        "Clinic BP is 158/96 mmHg against 140/90 mmHg; the target is below 158/96 mmHg.",
        ["bp", "target"])}), {C}),
    ("an unknown fact id", _with(("Amlodipine is a calcium-channel blocker.",
                                  ["option-1", "option-9"])), {S}),
    ("too many sentences", _content(GOOD + GOOD[:3]), {S}),
]


@pytest.mark.parametrize(("name", "content", "kinds"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_planted_error_is_caught_as_its_kind(name: str, content: str,
                                                  kinds: set[ProblemKind]) -> None:
    verdict = verify(ASSESSED, content)
    assert not verdict.ok
    assert set(verdict.kinds) == kinds, verdict.problems


FAITHFUL: list[tuple[str, list[str]]] = [
    ("Amlodipine should bring BP down by 7.6 mmHg.", ["option-1"]),
    ("Indapamide is not expected to lower BP for this patient.", ["option-choice"]),
    ("Ramipril is not safe here: ACE inhibitors are contraindicated.", ["contraindicated-1"]),
    ("Amlodipine, not candesartan, is the first option.", ["option-1", "option-2"]),
    ("Candesartan is recommended by NICE at this step.", ["option-2",
                                                                            "target"]),
    ("The target is 140/90 mmHg.", ["target"]),
    ("Option 1 (recommended): Start amlodipine (CCB).", ["option-1"]),
    ("Not expected to lower BP for this patient.", ["option-choice", "option-1"]),
]


@pytest.mark.parametrize(("text", "facts"), FAITHFUL, ids=[f[0][:40] for f in FAITHFUL])
def test_faithful_wordings_are_not_flagged(text: str, facts: list[str]) -> None:
    verdict = verify(ASSESSED, _with((text, facts)))
    assert verdict.ok, verdict.problems


SCHEMA_ERRORS: list[tuple[str, Any]] = [
    ("not JSON", '{"sentences": [{"text": "truncat'),
    ("an array", []),
    ("no sentences key", {"text": "x"}),
    ("an extra key", {"sentences": [{"text": GOOD[0][0], "facts": GOOD[0][1]}], "note": "x"}),
    ("no sentence", {"sentences": []}),
    ("a sentence that is not an object", {"sentences": ["text"]}),
    ("an empty text", {"sentences": [{"text": " ", "facts": ["bp"]}]}),
    ("a text too long", {"sentences": [{"text": "Clinic BP. " * 40, "facts": ["bp"]}]}),
    ("no fact ids", {"sentences": [{"text": "Clinic BP.", "facts": []}]}),
    ("too many fact ids", {"sentences": [{"text": "Clinic BP.", "facts": ["bp"] * 7}]}),
    ("a fact id too long", {"sentences": [{"text": "Clinic BP.", "facts": ["x" * 41]}]}),
    ("an extra sentence key", {"sentences": [{"text": "BP.", "facts": ["bp"], "why": "x"}]}),
]


@pytest.mark.parametrize(("name", "doc"), SCHEMA_ERRORS, ids=[e[0] for e in SCHEMA_ERRORS])
def test_schema_errors(name: str, doc: Any) -> None:
    content = doc if isinstance(doc, str) else json.dumps(doc)
    verdict = verify(ASSESSED, content)
    assert not verdict.ok
    assert ProblemKind.SCHEMA in verdict.kinds, verdict.problems


def test_problems_say_where() -> None:
    verdict = verify(ASSESSED, _with(("Losartan is another choice.", ["option-2"])))
    (p,) = verdict.problems
    assert p.sentence == len(GOOD)
    assert "losartan" in p.detail
    verdict = verify(ASSESSED, _with(drop=3))
    (p,) = verdict.problems
    assert p.fact_id == "contraindicated-1"
    assert p.sentence is None


PATHWAY = _facts(
    make_fact("status", FactKind.STATUS, "No ranked options: a stop condition applies."),
    make_fact("stop-hyperkalaemia", FactKind.STOP,
              "Stop condition (critical): K+ 6.8 mmol/L on 2026-11-20: emergency, same-day "
              "hospital assessment. (UK Kidney Association treatment of acute hyperkalaemia)",
              True, ("6.8", "potassium", "hyperkal")),
    make_fact("missing-labs", FactKind.MISSING, "Caution: Laboratory results could not be "
              "obtained.", True, ("laborator", "lab")),
)


def test_stops_and_missing_data_must_be_said() -> None:
    good = [("Potassium is 6.8 mmol/L (2026-11-20): same-day hospital assessment (UK Kidney "
             "Association).", ["stop-hyperkalaemia"]),
            ("Some lab results could not be obtained.", ["missing-labs"])]
    assert verify(PATHWAY, _content(good)).ok
    assert _kinds(_content(good[1:]), PATHWAY) == {OM}
    assert _kinds(_content([("An emergency.", ["stop-hyperkalaemia"]), good[1]]),
                  PATHWAY) == {OM}
    # no ranked option: calling a drug first is not checked against an option, but naming
    # one the facts do not is still a hallucination
    assert _kinds(_content([*good, ("Start amlodipine.", ["status"])]), PATHWAY) == {H}


def test_verify_rationale_reads_a_rationale_in_hand() -> None:
    r = Rationale(tuple(Sentence(t, tuple(f)) for t, f in GOOD))
    assert verify_rationale(ASSESSED, r).ok
    assert json.loads(r.content())["sentences"][0]["facts"] == ["bp", "target"]


def test_fact_ids_in_the_text_are_references_not_claims() -> None:
    verdict = verify(ASSESSED, _with(("Ramipril is contraindicated (contraindicated-1), and "
                                      "finding-potassium-1 asks for a potassium check.",
                                      ["contraindicated-1", "finding-potassium-1"])))
    assert verdict.ok, verdict.problems
