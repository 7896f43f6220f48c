"""The clinical-safety case set (tests/safety/cases) through the CLI and a real service.

Hazards and controls: docs/safety/hazard-log.md. Each case says beside its FHIR data what the
safe behaviour is; see :mod:`tests.safety.runner` for the expectation keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from fhir_mappings.dates import shift_dates
from hypermarker_cli.main import app as cli
from tests.safety.runner import (
    Case,
    as_bundle,
    check_cards,
    check_document,
    hook_request,
    load_cases,
)
from tests.service.live_server import serve

CASES = load_cases()
SERVICES = {"patient-view": "hypertension-treatment",
            "order-select": "hypertension-order-select",
            "order-sign": "hypertension-order-sign"}


def test_the_case_set_covers_the_hazard_log() -> None:
    """Every hazard of the log that names a case-set control has at least one case, and every
    case names a hazard of the log."""
    log = (Path(__file__).resolve().parents[2] / "docs" / "safety" / "hazard-log.md").read_text()
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES)
    for case in CASES:
        for hazard in case.hazards:
            assert f"| {hazard} |" in log, f"{case.id}: {hazard} is not in the hazard log"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("safety"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli(case: Case, tmp_path: Path) -> None:
    """``hypermarker assess REQUEST.json --as-of DAY``: the document meets the case."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(case.request))
    result = CliRunner().invoke(cli, ["assess", str(path), "--as-of", case.as_of.isoformat()])
    if case.expect.get("refused"):
        assert result.exit_code == 2, result.output
        assert "patient" in result.output.lower()
        return
    assert result.exit_code == 0, result.output
    problems = list(check_document(case, json.loads(result.stdout)))
    assert not problems, problems


def _today(case: Case, value: Any) -> Any:
    return shift_dates(value, (datetime.now(UTC).date() - case.as_of).days)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_service(case: Case, service: str) -> None:
    """All three hooks and $hypertension-options over HTTP: refused with a 4xx
    OperationOutcome, or cards that meet the case."""
    request = _today(case, case.request)
    problems: list[str] = []
    for hook, service_id in SERVICES.items():
        r = httpx.post(f"{service}/cds-services/{service_id}",
                       json=hook_request(case, hook, request), timeout=30)
        if case.expect.get("refused"):
            if r.status_code != 422 or r.json().get("resourceType") != "OperationOutcome":
                problems.append(f"{hook}: {r.status_code} {r.text[:200]}")
            elif not r.headers.get("X-Request-ID"):
                problems.append(f"{hook}: the refusal carries no audited request id")
            continue
        if r.status_code != 200:
            problems.append(f"{hook}: {r.status_code} {r.text[:300]}")
            continue
        problems += list(check_cards(case, hook, r.json()["cards"]))
    if case.operation:
        r = httpx.post(f"{service}/fhir/$hypertension-options",
                       json=as_bundle(request["prefetch"]), timeout=30)
        if case.expect.get("refused"):
            if r.status_code != 422:
                problems.append(f"operation: {r.status_code} {r.text[:200]}")
        elif r.status_code != 200:
            problems.append(f"operation: {r.status_code} {r.text[:300]}")
        else:
            problems += list(_check_operation(case, r.json()))
    assert not problems, problems


def _check_operation(case: Case, bundle: dict[str, Any]) -> Iterator[str]:
    """The FHIR answer says the same thing: stops as DetectedIssues, data-required when the
    assessment could not be made."""
    resources = [e["resource"] for e in bundle["entry"]]
    guidance = resources[0]
    status = case.expect.get("status")
    if status == "cannot_assess" and guidance["status"] != "data-required":
        yield f"operation: GuidanceResponse.status {guidance['status']}"
    issues = {r["code"]["coding"][0]["code"] for r in resources
              if r["resourceType"] == "DetectedIssue"}
    for code in case.expect.get("stops", []):
        if code not in issues:
            yield f"operation: no DetectedIssue for stop {code!r} ({sorted(issues)})"
