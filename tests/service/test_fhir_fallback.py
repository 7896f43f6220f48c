"""Missing prefetch is fetched from a real FHIR server on loopback (cdshooks.md 1.3-1.4)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import example_request
from tests.service.fhir_server import (
    prefetch_resources,
    serve_fhir,
    with_fhir_server,
)

URL = "/cds-services/hypertension-treatment"
TOKEN = "short-lived-access-token-abc123"



@pytest.fixture(scope="module")
def fhir() -> Iterator[tuple[str, list[str]]]:
    with serve_fhir(prefetch_resources(example_request()), token=TOKEN) as server:
        yield server



def test_without_prefetch_everything_is_fetched_and_the_card_is_the_same(
        client: TestClient, fhir: tuple[str, list[str]]) -> None:
    """No prefetch at all: the seven queries go to the FHIR server with the token, and the
    card matches the one from the full prefetch."""
    base, seen = fhir
    full = client.post(URL, json=example_request()).json()["cards"][0]
    req = with_fhir_server(example_request(), base, TOKEN)
    del req["prefetch"]
    before = len(seen)

    r = client.post(URL, json=req)

    assert r.status_code == 200, r.text
    card = r.json()["cards"][0]
    assert card["summary"] == full["summary"]
    queries = seen[before:]
    assert any(q.startswith("/Patient/example-patient-1") for q in queries)
    assert any(q.startswith("/Observation?") for q in queries)
    assert len([q for q in queries if "_offset" not in q]) == 7


def test_only_missing_keys_and_operation_outcomes_are_fetched(
        client: TestClient, fhir: tuple[str, list[str]]) -> None:
    base, seen = fhir
    req = with_fhir_server(example_request(), base, TOKEN)
    del req["prefetch"]["labs"]
    req["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout"}]}
    before = len(seen)

    r = client.post(URL, json=req)

    assert r.status_code == 200, r.text
    paths = [q.split("?")[0] for q in seen[before:] if "_offset" not in q]
    assert sorted(paths) == ["/Condition", "/Observation"]


def test_paged_bundles_are_followed(client: TestClient, fhir: tuple[str, list[str]]) -> None:
    """A bp Bundle with a next link is paged through with the token."""
    base, seen = fhir
    req = with_fhir_server(example_request(), base, TOKEN)
    full_bp = req["prefetch"]["bp"]
    first_page = copy.deepcopy(full_bp)
    first_page["entry"] = full_bp["entry"][:5]
    first_page["link"] = [{"relation": "next", "url": f"{base}/Observation?patient="
                           "example-patient-1&code=http://loinc.org|85354-9&_sort=-date"
                           "&_count=5&_offset=5"}]
    req["prefetch"]["bp"] = first_page
    before = len(seen)

    r = client.post(URL, json=req)

    assert r.status_code == 200, r.text
    assert any("_offset=5" in q for q in seen[before:])


def test_a_wrong_token_or_dead_server_gives_412_not_500(client: TestClient,
                                                       fhir: tuple[str, list[str]]) -> None:
    base, _ = fhir
    req = with_fhir_server(example_request(), base, TOKEN)
    req["fhirAuthorization"]["access_token"] = "wrong"
    del req["prefetch"]["bp"]

    r = client.post(URL, json=req)
    assert r.status_code == 412
    assert "401" in r.json()["issue"][0]["diagnostics"]

    dead = with_fhir_server(example_request(), "http://127.0.0.1:9", TOKEN)
    del dead["prefetch"]["bp"]
    r = client.post(URL, json=dead)
    assert r.status_code == 412
    assert "unreachable" in r.json()["issue"][0]["diagnostics"]
