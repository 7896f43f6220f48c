"""The prompt gives the facts and only the facts; the schema bounds every string and array."""

from __future__ import annotations

from typing import Any

from rationale.facts import FactKind, Facts, make_fact
from rationale.prompt import (
    MAX_SENTENCES,
    MAX_TOKENS,
    RESPONSE_SCHEMA,
    SYSTEM,
    messages,
    response_format,
)


def _nodes(schema: Any) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    out = [schema]
    for v in schema.values():
        if isinstance(v, dict):
            out += _nodes(v)
    return out


def test_every_string_and_array_is_bounded() -> None:
    nodes = _nodes(RESPONSE_SCHEMA)
    strings = [n for n in nodes if n.get("type") == "string"]
    arrays = [n for n in nodes if n.get("type") == "array"]
    objects = [n for n in nodes if n.get("type") == "object"]
    assert len(strings) == 2
    assert len(arrays) == 2
    assert all("maxLength" in n for n in strings)
    assert all("maxItems" in n and n["minItems"] >= 1 for n in arrays)
    assert all(n["additionalProperties"] is False and set(n["required"]) == set(n["properties"])
               for n in objects)
    assert RESPONSE_SCHEMA["properties"]["sentences"]["maxItems"] == MAX_SENTENCES  # type: ignore[index]
    assert MAX_TOKENS > 0


def test_response_format_is_the_openai_json_schema_form() -> None:
    rf = response_format()
    assert rf["type"] == "json_schema"
    assert rf["json_schema"] == {"name": "rationale", "strict": True, "schema": RESPONSE_SCHEMA}


def test_messages_carry_the_facts_only() -> None:
    facts = Facts((
        make_fact("target", FactKind.TARGET, "Target: clinic BP below 140/90 mmHg.", True,
                  ("140",)),
        make_fact("regimen", FactKind.REGIMEN, "No current antihypertensive treatment."),
    ), "h")
    system, user = messages(facts)
    assert system == {"role": "system", "content": SYSTEM}
    assert user["role"] == "user"
    lines = [ln for ln in user["content"].splitlines() if ln.startswith("- ")]
    assert lines == ["- target [MUST; say: 140]: Target: clinic BP below 140/90 mmHg.",
                     "- regimen: No current antihypertensive treatment."]
    for rule in ("do not decide, rank, recommend or advise", "Use only the facts"):
        assert rule in SYSTEM
