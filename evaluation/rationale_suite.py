"""The rationale suite: LLM rationales measured the way the guideline-omission studies measure
LLMs (issue 16 item 5; DESIGN.md section 10; shared/research/mlops.md section 5).

Cases: the assessments of simulated patients (internal site), of the FHIR fixtures
(``tests/fixtures/synthea-r4``) and of the clinical-safety case set (``tests/safety/cases``;
cases whose input is refused have no assessment and are left out). Each case's facts
(:mod:`rationale.facts`) go to the LLM ``repeats`` times (the prompt and schema of
:mod:`rationale.prompt`, through :class:`rationale.client.LlmClient`), and every answer is
judged by the verifier the service uses (:mod:`rationale.verifier`).

Per model the report gives, over the answered attempts (the server sent a completion,
usable or not):

* ``omission_rate``, ``hallucination_rate``, ``contradiction_rate``, ``schema_error_rate``:
  the share of answers with at least one problem of that kind (a truncated or malformed
  completion, :class:`~rationale.client.LlmBadResponse`, counts as a schema error);
  ``answers_with`` counts those answers, ``problems_by_kind`` the problems themselves;
* ``rejection_rate``: the share of answers the verifier rejected (any problem);
* ``without_verifier``: what a clinician would have read had the LLM's text been shown as
  it came: the rates above, and ``any_error_rate``;
* ``with_verifier``: what a clinician was shown (the verified LLM text, else the
  deterministic rationale of :mod:`rationale.fallback`), re-verified: ``errors`` and
  ``error_rate`` over every attempt (0 by construction; measured, not assumed), and the share
  shown as the LLM's text;
* ``consistency`` over the cases with at least two answered repeats: ``same_facts`` (share
  of cases whose repeats all cite the same set of fact ids), ``same_verdict`` (share whose
  repeats all get the same verdict: accepted, or rejected with the same problem kinds) and
  ``mean_jaccard`` (mean pairwise Jaccard similarity of the cited fact sets);
* ``latency_s``: p50, p95 and max of the answered attempts (the client's figure, the call's
  wall time for a bad response); ``no_answer``: attempts with no completion (timeout, server
  unavailable, request refused).

Repeats are sampled with the given temperature and a seed per repeat (seed + repeat): at
temperature 0 a server may return the same text each time, which is what the service asks
for; a higher temperature measures how stochastic the text is.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import combinations
from pathlib import Path
from typing import Any, Final

import httpx

from evaluation.cohort import feature_vector
from evaluation.fhir_suite import DEFAULT_FHIR_DIR, bundle_files, latest_encounter_or_bp
from fhir_mappings.errors import InputError
from models.pipeline import Pipeline
from models.training.simulator import simulate_cohort
from rationale.client import (
    LlmBadResponse,
    LlmClient,
    LlmRejected,
    LlmTimeout,
    LlmUnavailable,
)
from rationale.facts import Facts, facts_of
from rationale.fallback import deterministic_rationale
from rationale.prompt import MAX_TOKENS, PROMPT_VERSION, messages, response_format, schema_text
from rationale.verifier import ProblemKind, Rationale, verify, verify_rationale

DEFAULT_SAFETY_DIR: Final = Path(__file__).resolve().parents[1] / "tests" / "safety" / "cases"
#: Problem details kept in the report per model (a sample, for reading).
EXAMPLES_KEPT: Final = 25


class CaseSource(StrEnum):
    SIMULATED = "simulated"
    FHIR = "fhir"
    SAFETY = "safety"


class Outcome(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    BAD_RESPONSE = "bad-response"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    REFUSED = "refused"


ANSWERED: Final = frozenset({Outcome.VERIFIED, Outcome.REJECTED, Outcome.BAD_RESPONSE})


@dataclass(frozen=True)
class RationaleCase:
    id: str
    source: CaseSource
    facts: Facts


@dataclass(frozen=True)
class Attempt:
    """One LLM answer to one case, judged."""

    case: str
    source: CaseSource
    repeat: int
    outcome: Outcome
    kinds: frozenset[ProblemKind]
    """Problem kinds of the LLM's answer (a bad response: schema)."""
    problems: Counter[ProblemKind]
    cited: frozenset[str] | None
    """Fact ids the answer cites (None when it did not parse)."""
    latency_s: float | None
    shown_from_llm: bool
    shown_kinds: frozenset[ProblemKind]
    """Problem kinds of what a clinician was shown, re-verified (none by construction)."""
    shown_errors: int
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class RationaleRun:
    """What the CLI asks of the suite."""

    llm_url: str
    models: tuple[str, ...]
    """Served model names; empty: the server's first model (``/v1/models``)."""
    repeats: int = 3
    sources: tuple[CaseSource, ...] = tuple(CaseSource)
    patients: int = 20
    budget_s: float = 30.0
    temperature: float = 0.0
    seed: int = 9001
    api_key: str | None = field(default=None, repr=False)
    fhir_dir: Path = DEFAULT_FHIR_DIR
    safety_dir: Path = DEFAULT_SAFETY_DIR
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    """Tests: an httpx transport instead of the network."""


# --- cases -----------------------------------------------------------------------------------

def simulated_cases(pipeline: Pipeline, n: int, seed: int) -> list[RationaleCase]:
    cohort = simulate_cohort(n, "internal", seed)
    return [RationaleCase(f"simulated-{i}", CaseSource.SIMULATED, facts_of(
        pipeline.assess_features(feature_vector(cohort.features[i],
                                                cohort.current_doses[i])).assessment))
            for i in range(n)]


def fhir_cases(pipeline: Pipeline, folder: Path) -> list[RationaleCase]:
    out = []
    for f in bundle_files(folder):
        try:
            doc = json.loads(f.read_bytes())
            a = pipeline.assess_fhir(doc, latest_encounter_or_bp(doc)).assessment
        except (InputError, ValueError):
            continue  # the fhir suite counts mapping errors; no assessment, no rationale
        out.append(RationaleCase(f"fhir-{f.stem}", CaseSource.FHIR, facts_of(a)))
    return out


def safety_cases(pipeline: Pipeline, folder: Path) -> list[RationaleCase]:
    """The clinical-safety cases as of the day each was written for (refused ones left out)."""
    out = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("expect", {}).get("refused"):
            continue
        try:
            a = pipeline.assess_fhir(doc["request"], date.fromisoformat(doc["as_of"]),
                                     patient_id=doc["request"]["context"]["patientId"]
                                     ).assessment
        except (InputError, ValueError, KeyError):
            continue
        out.append(RationaleCase(f"safety-{path.stem}", CaseSource.SAFETY, facts_of(a)))
    return out


def load_cases(pipeline: Pipeline, run: RationaleRun) -> list[RationaleCase]:
    out: list[RationaleCase] = []
    if CaseSource.SIMULATED in run.sources:
        out += simulated_cases(pipeline, run.patients, run.seed)
    if CaseSource.FHIR in run.sources:
        out += fhir_cases(pipeline, run.fhir_dir)
    if CaseSource.SAFETY in run.sources:
        out += safety_cases(pipeline, run.safety_dir)
    return out


# --- attempts --------------------------------------------------------------------------------

def _shown(case: RationaleCase, accepted: Rationale | None
           ) -> tuple[bool, frozenset[ProblemKind], int]:
    """What a clinician is shown, re-verified: (from the LLM, problem kinds, problems)."""
    shown = accepted if accepted is not None else deterministic_rationale(case.facts)
    verdict = verify_rationale(case.facts, shown)
    return accepted is not None, verdict.kinds, len(verdict.problems)


async def attempt(client: LlmClient, case: RationaleCase, repeat: int, temperature: float,
                  seed: int) -> Attempt:
    """One call for one case, judged by the verifier (never raises for an LLM failure)."""
    started = time.perf_counter()
    try:
        completion = await client.complete(messages(case.facts), response_format(),
                                           max_tokens=MAX_TOKENS, temperature=temperature,
                                           seed=seed + repeat)
    except LlmBadResponse as e:
        return Attempt(case.id, case.source, repeat, Outcome.BAD_RESPONSE,
                       frozenset({ProblemKind.SCHEMA}), Counter({ProblemKind.SCHEMA: 1}), None,
                       time.perf_counter() - started, *_shown(case, None),
                       (f"{case.id}: bad response: {e}",))
    except (LlmTimeout, LlmUnavailable, LlmRejected) as e:
        outcome = (Outcome.TIMEOUT if isinstance(e, LlmTimeout) else
                   Outcome.REFUSED if isinstance(e, LlmRejected) else Outcome.UNAVAILABLE)
        return Attempt(case.id, case.source, repeat, outcome, frozenset(), Counter(), None,
                       None, *_shown(case, None), (f"{case.id}: {outcome}: {e}",))
    verdict = verify(case.facts, completion.content)
    cited = (frozenset(fid for s in verdict.rationale.sentences for fid in s.facts)
             if verdict.rationale is not None else None)
    return Attempt(case.id, case.source, repeat,
                   Outcome.VERIFIED if verdict.ok else Outcome.REJECTED, verdict.kinds,
                   Counter(p.kind for p in verdict.problems), cited, completion.latency_s,
                   *_shown(case, verdict.rationale if verdict.ok else None),
                   tuple(f"{case.id} [{p.kind}] {p.detail}" for p in verdict.problems))


async def run_model(client: LlmClient, cases: Sequence[RationaleCase], repeats: int,
                    temperature: float, seed: int,
                    progress: Callable[[int], None] | None = None) -> list[Attempt]:
    """Every case ``repeats`` times, one call at a time (latency is one request's)."""
    out = []
    for i, case in enumerate(cases):
        for r in range(repeats):
            out.append(await attempt(client, case, r, temperature, seed))
        if progress is not None:
            progress(i + 1)
    return out


# --- figures ---------------------------------------------------------------------------------

def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def consistency(attempts: Sequence[Attempt]) -> dict[str, Any]:
    """Agreement across the repeats of each case (see the module docstring)."""
    by_case: dict[str, list[Attempt]] = {}
    for a in attempts:
        if a.outcome in ANSWERED:
            by_case.setdefault(a.case, []).append(a)
    judged = {c: xs for c, xs in by_case.items() if len(xs) >= 2}
    same_facts = sum(len({a.cited for a in xs}) == 1 for xs in judged.values())
    same_verdict = sum(len({a.kinds for a in xs}) == 1 for xs in judged.values())
    pairs = [_jaccard(a.cited or frozenset(), b.cited or frozenset())
             for xs in judged.values() for a, b in combinations(xs, 2)]
    return {"cases": len(judged), "same_facts": _rate(same_facts, len(judged)),
            "same_verdict": _rate(same_verdict, len(judged)),
            "mean_jaccard": sum(pairs) / len(pairs) if pairs else None}


def _rate_name(k: ProblemKind) -> str:
    return "schema_error_rate" if k is ProblemKind.SCHEMA else f"{k.value}_rate"


def _kind_rates(attempts: Sequence[Attempt], n: int, *, shown: bool = False
                ) -> dict[str, float | None]:
    return {_rate_name(k): _rate(sum(k in (a.shown_kinds if shown else a.kinds)
                                     for a in attempts), n) for k in ProblemKind}


def summarise(attempts: Sequence[Attempt], model: str, server_version: str | None
              ) -> dict[str, Any]:
    """The figures of one model's attempts (see the module docstring)."""
    answered = [a for a in attempts if a.outcome in ANSWERED]
    n = len(answered)
    rates = _kind_rates(answered, n)
    rejected = sum(a.outcome is not Outcome.VERIFIED for a in answered)
    problems: Counter[ProblemKind] = Counter()
    for a in answered:
        problems.update(a.problems)
    latencies = [a.latency_s for a in answered if a.latency_s is not None]
    shown_errors = sum(a.shown_errors for a in attempts)
    by_source: dict[str, Any] = {}
    for source in CaseSource:
        xs = [a for a in answered if a.source is source]
        if xs:
            by_source[source.value] = {"answered": len(xs), **_kind_rates(xs, len(xs)),
                                       "rejection_rate": _rate(sum(
                                           a.outcome is not Outcome.VERIFIED for a in xs),
                                           len(xs))}
    outcomes = Counter(a.outcome.value for a in attempts)
    return {
        "model": model,
        "server_version": server_version,
        "cases": len({a.case for a in attempts}),
        "attempts": len(attempts),
        "answered": n,
        "outcomes": {o.value: outcomes.get(o.value, 0) for o in Outcome},
        "no_answer": len(attempts) - n,
        **rates,
        "rejection_rate": _rate(rejected, n),
        "answers_with": {k.value: sum(k in a.kinds for a in answered) for k in ProblemKind},
        "problems_by_kind": {k.value: problems.get(k, 0) for k in ProblemKind},
        "without_verifier": {**rates, "any_error_rate": _rate(rejected, n)},
        "with_verifier": {**_kind_rates(attempts, len(attempts), shown=True),
                          "errors": shown_errors,
                          "error_rate": _rate(sum(a.shown_errors > 0 for a in attempts),
                                              len(attempts)),
                          "shown_from_llm_rate": _rate(sum(a.shown_from_llm for a in attempts),
                                                       len(attempts))},
        "consistency": consistency(attempts),
        "latency_s": {"p50": _quantile(latencies, 0.5), "p95": _quantile(latencies, 0.95),
                      "max": max(latencies, default=None), "n": len(latencies)},
        "by_source": by_source,
        "examples": [d for a in attempts for d in a.details][:EXAMPLES_KEPT],
    }


Advance = Callable[[int], None]
ProgressBar = Callable[[str, int], AbstractContextManager[Advance]]


async def _run_all(run: RationaleRun, cases: Sequence[RationaleCase],
                   progress: ProgressBar | None) -> list[dict[str, Any]]:
    out = []
    for name in run.models or ("",):
        client = LlmClient(run.llm_url, name or "default", api_key=run.api_key,
                           budget_s=run.budget_s, transport=run.transport)
        try:
            version: str | None = None
            try:
                info = await client.server_info()
                version = info.version
                if not name and info.models:
                    client.model = info.models[0]
            except LlmUnavailable:
                pass  # the attempts will say the server is unavailable
            label = f"rationale: {client.model}"
            with (progress(label, len(cases)) if progress else nullcontext(None)) as bar:
                attempts = await run_model(client, cases, run.repeats, run.temperature,
                                           run.seed, bar)
            out.append(summarise(attempts, client.model, version))
        finally:
            await client.aclose()
    return out


def run_rationale_suite(pipeline: Pipeline, run: RationaleRun,
                        progress: ProgressBar | None = None) -> dict[str, Any]:
    """The suite's report (see the module docstring)."""
    t0 = time.perf_counter()
    cases = load_cases(pipeline, run)
    t_cases = time.perf_counter() - t0
    models = asyncio.run(_run_all(run, cases, progress))
    return {
        "suite": "rationale",
        "patients": len(cases),
        "cases_by_source": dict(Counter(c.source.value for c in cases)),
        "repeats": run.repeats,
        "temperature": run.temperature,
        "budget_s": run.budget_s,
        "llm_url": run.llm_url,
        "prompt_version": PROMPT_VERSION,
        "schema": json.loads(schema_text()),
        "models": models,
        "shown_errors": sum(m["with_verifier"]["errors"] for m in models),
        "case_seconds": t_cases,
        "seconds": time.perf_counter() - t0,
    }


# --- Markdown --------------------------------------------------------------------------------

def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _s(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def _row(name: str, key: str, without: dict[str, Any], shown: dict[str, Any]) -> str:
    return f"| {name} | {_pct(without[key])} | {_pct(shown[key])} |"


def markdown(report: dict[str, Any]) -> str:
    """The suite's figures as a Markdown table per model."""
    sources = ", ".join(f"{k} {v}" for k, v in report["cases_by_source"].items())
    lines = [f"# Rationale suite ({report['patients']} cases: {sources}; "
             f"{report['repeats']} answer(s) per case at temperature {report['temperature']:g}; "
             f"prompt {report['prompt_version']})", ""]
    for m in report["models"]:
        w, wo, c, lat = (m["with_verifier"], m["without_verifier"], m["consistency"],
                         m["latency_s"])
        outcomes = ", ".join(f"{k} {v}" for k, v in m["outcomes"].items() if v)
        kinds = ", ".join(f"{k} {v}" for k, v in m["problems_by_kind"].items())
        lines += [
            f"## {m['model']} (server {m['server_version'] or 'version unknown'})", "",
            f"{m['attempts']} attempts, {m['answered']} answered ({outcomes}).", "",
            "| share of answers with | without the verifier (raw LLM text) | "
            "with the verifier (what was shown) |",
            "|---|---|---|",
            _row("an omission", "omission_rate", wo, w),
            _row("a hallucination", "hallucination_rate", wo, w),
            _row("a contradiction", "contradiction_rate", wo, w),
            _row("a schema error", "schema_error_rate", wo, w),
            f"| any error | {_pct(wo['any_error_rate'])} | {_pct(w['error_rate'])} "
            f"({w['errors']} errors) |", "",
            f"- verifier rejection rate: {_pct(m['rejection_rate'])}; shown as the LLM's text: "
            f"{_pct(w['shown_from_llm_rate'])} of attempts",
            f"- consistency over {c['cases']} cases: same facts {_pct(c['same_facts'])}, same "
            f"verdict {_pct(c['same_verdict'])}, mean Jaccard {_s(c['mean_jaccard'])}",
            f"- latency (s): p50 {_s(lat['p50'])}, p95 {_s(lat['p95'])}, max {_s(lat['max'])} "
            f"(n={lat['n']})",
            f"- problems by kind: {kinds}", ""]
    return "\n".join(lines)
