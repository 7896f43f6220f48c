"""The prompt and the bounded response schema of the LLM rationale (issue 16 item 1).

The LLM is given the facts of one assessment (:mod:`rationale.facts`) and nothing else, and
asked for a few plain sentences for a GP, each naming the ids of the facts it rests on. It
explains; it never decides, ranks or adds advice: the assessment has done that. The answer's
shape is fixed by :data:`RESPONSE_SCHEMA`, sent as the OpenAI ``response_format`` json_schema
(strict), with every string and array bounded, so a constrained decoder cannot run on; the
verifier (:mod:`rationale.verifier`) checks the shape again, because not every server enforces
every bound (shared/research/mlops.md section 7).
"""

from __future__ import annotations

import json
from typing import Final

from rationale.facts import Fact, Facts

#: Bumped with any change to the prompt or the schema (recorded with each benchmark run).
PROMPT_VERSION: Final = "1"
MAX_SENTENCES: Final = 6
MAX_SENTENCE_CHARS: Final = 300
MAX_FACTS_PER_SENTENCE: Final = 6
MAX_FACT_ID_CHARS: Final = 40
#: Tokens the answer may take: 6 sentences of 300 characters (about 75 tokens each), their
#: fact ids and the JSON around them, with room to spare.
MAX_TOKENS: Final = 800

RESPONSE_SCHEMA: Final[dict[str, object]] = {
    "type": "object",
    "properties": {
        "sentences": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SENTENCES,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1,
                             "maxLength": MAX_SENTENCE_CHARS},
                    "facts": {"type": "array", "minItems": 1,
                              "maxItems": MAX_FACTS_PER_SENTENCE,
                              "items": {"type": "string", "maxLength": MAX_FACT_ID_CHARS}},
                },
                "required": ["text", "facts"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["sentences"],
    "additionalProperties": False,
}


def response_format() -> dict[str, object]:
    """The OpenAI ``response_format`` for :data:`RESPONSE_SCHEMA`."""
    return {"type": "json_schema",
            "json_schema": {"name": "rationale", "strict": True, "schema": RESPONSE_SCHEMA}}


SYSTEM: Final = f"""\
You explain a hypertension treatment assessment to a GP in plain English.
The assessment has already been made: you do not decide, rank, recommend or advise anything \
yourself. You only explain the facts you are given, in their order of importance.

Rules:
- Use only the facts below. Every number, drug, drug class, dose, target and guideline \
reference you write must appear in a fact that the same sentence cites.
- Write 2 to 5 short sentences (at most {MAX_SENTENCE_CHARS} characters each).
- Each sentence lists in "facts" the ids of the facts it rests on (1 to \
{MAX_FACTS_PER_SENTENCE} ids, exactly as written).
- Cover every fact marked MUST: cite its id and say what it names (one of the words or \
numbers given after "say:").
- Keep the options in the order given: option-1 is the first option. Never call a \
contraindicated drug safe or suitable.
- A negative expected effect lowers blood pressure.

Answer with JSON only, in this shape:
{{"sentences": [{{"text": "...", "facts": ["id", "..."]}}]}}"""


def _line(f: Fact) -> str:
    must = f" [MUST; say: {' or '.join(f.keys)}]" if f.required and f.keys else (
        " [MUST]" if f.required else "")
    return f"- {f.id}{must}: {f.text}"


def messages(facts: Facts) -> list[dict[str, str]]:
    """The chat messages (system, user) for one assessment's facts."""
    user = ("Facts of this assessment (id: text):\n" + "\n".join(_line(f) for f in facts.items)
            + "\n\nExplain this assessment to the GP.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def schema_text() -> str:
    """The schema as compact JSON (for the record of a benchmark run)."""
    return json.dumps(RESPONSE_SCHEMA, sort_keys=True, separators=(",", ":"))
