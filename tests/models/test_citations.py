"""Every guideline citation the rules use, listed (issue 11: "a test lists every citation
string in use"), and checked against what was verified in docs/safety/guideline-citations.md.

A new or changed citation fails :func:`test_the_citations_in_use_are_the_listed_ones` until it
is added to ``citations_in_use.txt`` beside this file, which is the moment to check it against
the published text: NICE NG136 numbers must be among the verified ones; NG133, NG203 and NG106
numbers could not be verified, so those cite a section title or say "not verified"; a rule of
this project says so (``policy``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from models.guideline.citations import Citation
from models.guideline.targets import nice_target

ROOT = Path(__file__).resolve().parents[2]
FUNCS = frozenset({"nice", "nice_ng203", "nice_ng133", "nice_ng106", "esc", "smpc", "mhra",
                   "bnf", "ukka", "policy"})

#: NICE NG136 recommendation numbers verified against the published text (2026-12-06).
VERIFIED_NG136 = frozenset(
    ["1.1.5", "1.1.6", "1.1.7", "1.1.8", "1.2.2", "1.3.3", "1.5.1", "1.5.2", "1.5.3"]
    + [f"1.4.{n}" for n in range(9, 53)])

#: One citation call a line, as written in models/ (kept sorted).
IN_USE = (Path(__file__).with_name("citations_in_use.txt").read_text(encoding="utf-8")
          .splitlines())


def citations_in_code() -> list[str]:
    """Each citation call with literal arguments in models/ (f-strings with their holes)."""
    out: set[str] = set()
    for path in sorted((ROOT / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in FUNCS):
                parts = []
                for a in node.args:
                    if isinstance(a, ast.Constant):
                        parts.append(repr(a.value))
                    elif isinstance(a, ast.JoinedStr):
                        parts.append("f" + repr("".join(
                            v.value if isinstance(v, ast.Constant) else "{}"
                            for v in a.values)))
                    else:
                        parts.append("<expr>")
                if "<expr>" not in parts:
                    out.add(f"{node.func.id}({', '.join(parts)})")
    return sorted(out)


def test_the_citations_in_use_are_the_listed_ones() -> None:
    assert citations_in_code() == sorted(IN_USE)


def test_every_nice_ng136_number_was_verified() -> None:
    for cite in IN_USE:
        if cite.startswith("nice("):
            for number in re.findall(r"\b1\.\d+\.\d+\b", cite):
                assert number in VERIFIED_NG136, cite


def test_unverified_guidelines_cite_a_section_or_say_so() -> None:
    for cite in IN_USE:
        if cite.startswith(("nice_ng133(", "nice_ng203(", "nice_ng106(")):
            assert "section" in cite or "not verified" in cite, cite
        assert "1.1.1" not in cite, cite  # NG133 1.1.1 is about pre-eclampsia symptoms


def test_the_target_citations() -> None:
    cites = {str(nice_target(age, ckd, acr).citation) for age in (60, 85)
             for ckd in (False, True) for acr in (None, 10.0, 80.0)}
    for cite in cites:
        assert isinstance(cite, str)
        for number in re.findall(r"\b1\.\d+\.\d+\b", cite):
            assert number in VERIFIED_NG136, cite
    assert isinstance(nice_target(60, False, None).citation, Citation)
