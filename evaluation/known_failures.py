"""CI's reviewed list of gates known to fail today (``evaluation/known_failures.toml``).

``hypermarker evaluate`` exits 1 when any gate fails: deployment is blocked while a goal is
missed, and nothing here changes that. CI (``.ci/run``) runs a small evaluation and then this
check on its JSON report, so that CI stays useful while the model misses its goals without a
gate being loosened:

* every **safety** gate must pass (contraindicated-first, and every gate of the safety suite):
  the list refuses to name one;
* every gate that does not pass (fails, or cannot be judged) must be on the list, with the
  same status; anything else is a new failure and CI fails;
* every gate on the list must still fail as listed: a listed gate that now passes fails CI
  until it is removed from the list (the list can only shrink as the model improves);
* each entry carries the figure measured when it was listed, the issue that will address it
  and the date, and the list names the evaluate command it was measured with: a report made
  with other suites, sizes, seed or guideline (its provenance) does not match the list.

``python -m evaluation.known_failures REPORT.json [--list PATH]`` prints what it found and
exits 0 when the report matches the list, 1 when it does not, 2 when the list is malformed or
names a safety gate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

DEFAULT_LIST: Final = Path(__file__).with_name("known_failures.toml")
#: Gates that may never be listed: a safety gate must pass in CI.
SAFETY_GATES: Final = frozenset({"contraindicated-first", "blocked-option-ranked",
                                 "blocked-option-in-guideline-default"})
SAFETY_SUITES: Final = frozenset({"safety", "target:safety"})
STATUSES: Final = ("fail", "insufficient")


class KnownFailuresError(ValueError):
    """The list is malformed, or names a safety gate."""


@dataclass(frozen=True, slots=True)
class KnownFailure:
    gate: str
    suite: str
    status: str
    measured: str
    issue: str
    since: date

    @property
    def key(self) -> tuple[str, str]:
        return self.gate, self.suite


@dataclass(frozen=True, slots=True)
class KnownFailures:
    version: str
    command: str
    entries: tuple[KnownFailure, ...]


def is_safety_gate(gate: str, suite: str) -> bool:
    return gate in SAFETY_GATES or suite in SAFETY_SUITES


def parse(text: str, source: str = "<string>") -> KnownFailures:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise KnownFailuresError(f"{source}: not valid TOML: {e}") from e
    version, command = data.get("list_version"), data.get("command")
    if not isinstance(version, str) or not version:
        raise KnownFailuresError(f"{source}: 'list_version' must be a non-empty string")
    if not isinstance(command, str) or not command:
        raise KnownFailuresError(f"{source}: 'command' (the evaluate command the figures "
                                 "come from) must be a non-empty string")
    raw = data.get("known_failure", [])
    if not isinstance(raw, list):
        raise KnownFailuresError(f"{source}: [[known_failure]] must be tables")
    entries = []
    for i, item in enumerate(raw):
        where = f"{source}: known_failure {i}"
        if not isinstance(item, Mapping):
            raise KnownFailuresError(f"{where}: not a table")
        entry: Mapping[str, Any] = item
        for name in ("gate", "suite", "status", "measured", "issue"):
            if not isinstance(entry.get(name), str) or not entry[name].strip():
                raise KnownFailuresError(f"{where}: '{name}' must be a non-empty string")
        if not isinstance(entry.get("date"), date):
            raise KnownFailuresError(f"{where}: 'date' must be a TOML date (YYYY-MM-DD)")
        if entry["status"] not in STATUSES:
            raise KnownFailuresError(f"{where}: status {entry['status']!r} not one of "
                                     f"{STATUSES}")
        unknown = set(entry) - {"gate", "suite", "status", "measured", "issue", "date"}
        if unknown:
            raise KnownFailuresError(f"{where}: unknown field(s) {sorted(unknown)}")
        if is_safety_gate(entry["gate"], entry["suite"]):
            raise KnownFailuresError(f"{where}: {entry['gate']} ({entry['suite']}) is a safety "
                                     "gate: it must pass in CI and cannot be listed")
        entries.append(KnownFailure(entry["gate"], entry["suite"], entry["status"],
                                    entry["measured"].strip(), entry["issue"].strip(),
                                    entry["date"]))
    keys = [k.key for k in entries]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise KnownFailuresError(f"{source}: listed twice: {dup}")
    return KnownFailures(version, command, tuple(entries))


def load(path: Path = DEFAULT_LIST) -> KnownFailures:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise KnownFailuresError(f"{path}: cannot read: {e}") from e
    return parse(text, str(path))


def compare_with_list(report: Mapping[str, Any], known: KnownFailures) -> list[str]:
    """Problems of an evaluate report (its JSON) against the list; empty when it matches."""
    results = report["checks"]["results"]
    gates = {(r["id"], r["suite"]): r for r in results if r["severity"] == "gate"}
    listed = {k.key: k for k in known.entries}
    problems = []
    ran = (report.get("provenance") or {}).get("command")
    if isinstance(ran, str):
        expected, got = _options(known.command), _options(ran)
        differ = {k: v for k, v in expected.items() if got.get(k) != v}
        if differ:
            problems.append(f"the report was not made by the listed command: {differ} "
                            f"expected, the report ran {ran!r}")
    if not any(is_safety_gate(*key) for key in gates):
        problems.append("the report has no safety gate: CI must run the safety checks")
    for key, r in gates.items():
        if r["status"] == "pass":
            continue
        where = f"{key[0]} ({key[1]})"
        figure = _figure(r)
        if is_safety_gate(*key):
            problems.append(f"safety gate {where} {r['status']}: {figure}")
        elif key not in listed:
            problems.append(f"{where} {r['status']} and is not a known failure: {figure}")
        elif listed[key].status != r["status"]:
            problems.append(f"{where} is {r['status']}, listed as {listed[key].status}: "
                            f"{figure}")
    for key in listed:
        where = f"{key[0]} ({key[1]})"
        r = gates.get(key)
        if r is None:
            continue  # a suite the run did not include
        if r["status"] == "pass":
            problems.append(f"{where} is listed as a known failure but now passes "
                            f"({_figure(r)}): remove it from the list")
    return problems


#: The options of the evaluate command that decide what the figures are.
_COMPARED: Final = ("--suite", "--patients", "--limit", "--seed", "--guideline")


def _options(command: str) -> dict[str, list[str]]:
    """Values of the options of :data:`_COMPARED` in an evaluate command line."""
    words = command.split()
    out: dict[str, list[str]] = {}
    for i, w in enumerate(words[:-1]):
        if w in _COMPARED:
            out.setdefault(w, []).append(words[i + 1])
    return {k: sorted(v) for k, v in out.items()}


def _figure(r: Mapping[str, Any]) -> str:
    def f(v: Any) -> str:
        return "null" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    where = f" [{r['member']}]" if r.get("member") else ""
    if r.get("estimate") is not None:
        return (f"{r['metric']}{where} = {f(r['estimate'])} (95% interval {f(r.get('lower'))}"
                f" to {f(r.get('upper'))}, n={r.get('n')}); {r.get('bound')} "
                f"{r['comparator']} {r['threshold']:g}")
    return f"{r['metric']}{where} = {f(r.get('value'))} {r['comparator']} {r['threshold']:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.known_failures",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("report", type=Path, help="JSON report of hypermarker evaluate")
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST, dest="known")
    args = parser.parse_args(argv)
    try:
        known = load(args.known)
    except KnownFailuresError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = json.loads(args.report.read_text(encoding="utf-8"))
    problems = compare_with_list(report, known)
    for k in known.entries:
        print(f"known failure: {k.gate} ({k.suite}) {k.status} since {k.since}: {k.measured} "
              f"[{k.issue}]")
    if problems:
        for p in problems:
            print(f"CI: {p}", file=sys.stderr)
        return 1
    print("CI: the safety gates pass and the gates that do not pass are exactly the reviewed "
          f"known failures ({len(known.entries)} listed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
