"""No test computes the current time when it is collected (issue 12, deliverable 10).

A value computed at import or collection time (module level, class bodies, decorator arguments
such as `@pytest.mark.parametrize`, default argument values) goes stale when the test runs much
later, as on a loaded machine: a JWT `exp` computed at collection had expired ten minutes later.
Such values must be computed inside the test or a fixture. This check reads every test module's
syntax tree; function and lambda bodies run later and are not checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Calls that read the clock: `time.time()`, `datetime.now(...)`, `date.today()`, ...
CLOCK_ATTRIBUTES = frozenset({"time", "time_ns", "now", "utcnow", "today", "monotonic"})
# Test helpers that read the clock themselves (dates moved to today, JWT iat/exp from now).
CLOCK_HELPERS = frozenset(
    {"example_request", "example_shift_days", "make_claims", "sign", "_token", "time_today"}
)


def _eager_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node evaluated when the module is imported or its tests collected."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(node.decorator_list)
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            continue
        stack.extend(ast.iter_child_nodes(node))


def clock_calls(source: str) -> list[int]:
    """Line numbers of clock reads that happen at import or collection time."""
    lines = []
    for node in _eager_nodes(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in CLOCK_ATTRIBUTES
            and isinstance(func.value, ast.Name)
            and func.value.id in {"time", "datetime", "date"}
        ) or (isinstance(func, ast.Name) and func.id in CLOCK_HELPERS):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_collection_time_clock_reads() -> None:
    source = """
import time
import pytest
NOW = time.time()
class T:
    at = datetime.now(UTC)
@pytest.mark.parametrize("c", [{"exp": str(int(time.time()) + 300)}])
def test_x(c, d=date.today()):
    fine = time.time()
    f = lambda: make_claims()
BASE = example_request(hook="order-sign")
"""
    assert clock_calls(source) == [4, 6, 7, 8, 11]


def test_no_test_module_reads_the_clock_at_collection_time() -> None:
    found = {
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        for line in clock_calls(path.read_text(encoding="utf-8"))
    }
    assert not found, f"compute these inside the test or a fixture: {sorted(found)}"
