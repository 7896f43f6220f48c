"""Behaviour does not change in a refactor (issue 13): the same inputs give the same documents,
cards, FHIR output and evaluation report as the snapshot in ``snapshot.json.gz``.

Inputs: every hand-made safety case (tests/safety/cases) and the two examples, assessed as of
each case's own day (the CLI's document, the patient-view and order-sign cards, the FHIR
Bundle of ``$hypertension-options``), and a small simulated evaluation run (its metrics and
gates, not its timings). Values that differ on every run by design (uuids, the panel token,
the Bundle's timestamps, request ids) are replaced by placeholders before comparing.

A change of behaviour that is meant (a new rule, a new simulated world) regenerates the
snapshot on purpose: ``HYPERMARKER_GOLDEN_UPDATE=1 uv run pytest tests/golden`` - and the diff
of the snapshot is then reviewed like code (``zcat`` both versions).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fhir_mappings.availability import unavailable_domains
from fhir_mappings.errors import InputError
from hypermarker_cli.main import app as cli
from models.assessment_document import assessment_document
from models.pipeline import Pipeline, PipelineResult
from service.cards import CardContext, build_cards
from service.discovery import SERVICES_BY_ID
from service.fhir_canonical import MODULE_URI
from service.fhir_output import assessment_bundle
from service.orders import draft_orders
from service.schemas.cds_hooks import HookRequest
from tests.safety.runner import hook_request, load_cases

SNAPSHOT = Path(__file__).with_name("snapshot.json.gz")
UPDATE = os.environ.get("HYPERMARKER_GOLDEN_UPDATE") == "1"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
#: Report keys that measure the machine, not the behaviour.
_TIMING = ("seconds", "per_second", "_s", "elapsed", "wall", "started", "finished", "workers")


def _normal(value: Any) -> Any:
    """Run-to-run values replaced by placeholders (recursively)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()
                if not (isinstance(v, int | float) and k.endswith(_TIMING))}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return _INSTANT.sub("<instant>", _UUID.sub("<uuid>", value))
    return value


_PIPELINE: list[Pipeline] = []


def _pipeline() -> Pipeline:
    if not _PIPELINE:
        _PIPELINE.append(Pipeline.load())
    return _PIPELINE[0]


def _assess(request: dict[str, Any], as_of: date) -> PipelineResult | None:
    """The service's pipeline on the request's prefetch (a key not sent is unavailable, as
    the service says when it has no FHIR server to fetch it from)."""
    prefetch = request.get("prefetch") or {}
    missing = {k: "not sent in prefetch and no fhirServer" for k in SERVICES_BY_ID[
        "hypertension-treatment"].prefetch or {} if k not in prefetch}
    try:
        return _pipeline().assess_fhir(prefetch, as_of, patient_id=request["context"]["patientId"],
                                     unavailable=unavailable_domains(missing))
    except InputError:
        return None  # refused (another patient's data): the safety cases check that


def _cards(result: PipelineResult, request: dict[str, Any], hook: str, as_of: date
           ) -> list[dict[str, Any]]:
    hook_req = HookRequest.model_validate(request)
    ordered = draft_orders(hook_req, result.features, as_of)
    ctx = CardContext(hook, "svc", "https://cds.example/panel/launch",
                      hook_req.context.patientId, ordered.classes, ordered.draft,
                      ordered.facts, ordered.interactions)
    return [c.model_dump(exclude_none=True) for c in
            build_cards(result.assessment, ctx, app_context='{"assessment": "<token>"}')]


def _behaviour_of(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what measures the machine: the throughput check (a warning) and
    the counts and warnings it enters, the plan's absolute path, and the run's provenance."""
    checks = report["checks"]
    checks["results"] = [r for r in checks["results"] if "per_second" not in r["metric"]]
    for key in ("counts", "warnings"):
        checks.pop(key, None)
    checks["plan_source"] = Path(checks["plan_source"]).name
    report.pop("provenance", None)  # the run's commit, paths and time, not its behaviour
    return report


def _current(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    examples = Path(__file__).resolve().parents[2] / "examples"
    inputs = [(c.id, c.request, c.as_of, c) for c in load_cases()]
    inputs.append(("example-patient-view", json.loads(
        (examples / "patient-view.json").read_text()), date(2026, 11, 24), None))
    for name, request, as_of, case in inputs:
        result = _assess(request, as_of)
        if result is None:
            out[name] = "refused"
            continue
        entry: dict[str, Any] = {"document": assessment_document(result.assessment)}
        entry["patient-view"] = _cards(result, request, "patient-view", as_of)
        if case is not None:
            entry["order-sign"] = _cards(result, hook_request(case, "order-sign", request),
                                         "order-sign", as_of)
        entry["fhir"] = assessment_bundle(result.assessment, request["context"]["patientId"],
                                          MODULE_URI, "<request>")
        out[name] = entry
    report = tmp / "report.json"
    result = CliRunner().invoke(cli, ["evaluate", "--suite", "internal", "--suite", "safety",
                                      "--patients", "300", "--quiet", "--json", str(report)])
    assert result.exit_code in (0, 1), result.output
    out["evaluation"] = _behaviour_of(json.loads(report.read_text()))
    return _normal(json.loads(json.dumps(out)))


@pytest.mark.slow
def test_the_same_inputs_give_the_same_answers(tmp_path: Path) -> None:
    current = _current(tmp_path)
    if UPDATE or not SNAPSHOT.exists():
        SNAPSHOT.write_bytes(gzip.compress(json.dumps(current, indent=1, sort_keys=True)
                                           .encode(), mtime=0))
        if not UPDATE:
            pytest.fail("no snapshot yet: written; commit tests/golden/snapshot.json.gz")
    saved = json.loads(gzip.decompress(SNAPSHOT.read_bytes()))
    changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    assert not changed, (f"{len(changed)} of {len(saved)} inputs answer differently: "
                         f"{changed[:10]} (HYPERMARKER_GOLDEN_UPDATE=1 if that is meant)")
