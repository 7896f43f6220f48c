"""No generated input gets a 500: hypothesis against every operation in the OpenAPI spec.

Bodies are arbitrary JSON, or the valid example with one part replaced by arbitrary JSON.
Outbound HTTP is answered by a stub transport here, so that generated URLs (fhirServer, iss)
can never make the service contact anything; the real-peer behaviour is tested elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.prefetch import PrefetchResolver
from tests.service.conftest import EXAMPLE, example_request, local_settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(local_settings(tmp_path_factory.mktemp("fuzz")))
    with TestClient(app, raise_server_exceptions=False) as c:
        state = app.state.hm
        stub = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
        state.http = stub
        state.prefetch = PrefetchResolver(stub, 0.5, 2, True)
        yield c


def _paths(client: TestClient) -> list[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    out = []
    for path, ops in spec["paths"].items():
        for method in ops:
            concrete = (path.replace("{service_id}", "hypertension-order-sign")
                        .replace("{token}", "x"))
            out.append((method.upper(), concrete))
    return out


def test_the_spec_covers_the_public_operations(fuzz_client: TestClient) -> None:
    paths = {p for _, p in _paths(fuzz_client)}

    assert {"/cds-services", "/cds-services/hypertension-order-sign",
            "/cds-services/hypertension-order-sign/feedback", "/fhir/$hypertension-options",
            "/health/ready", "/panel/launch"} <= paths


@FUZZ
@given(body=json_values, which=st.integers(0, 100))
def test_arbitrary_json_never_gets_a_500(fuzz_client: TestClient, body: Any, which: int) -> None:
    ops = [(m, p) for m, p in _paths(fuzz_client) if m == "POST"]
    method, path = ops[which % len(ops)]

    r = fuzz_client.request(method, path, json=body)

    assert r.status_code < 500, (path, r.text)


def _set(doc: Any, path: list[Any], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def _leaves(doc: Any, prefix: list[Any]) -> Iterator[list[Any]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, [*prefix, k])
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            yield from _leaves(v, [*prefix, i])


# The example's shape only: its dates are moved to today when each test runs, not at collection.
BASE_PATHS = [p for p in _leaves(json.loads(EXAMPLE.read_text()), []) if p]


@FUZZ
@given(which=st.integers(0, len(BASE_PATHS) - 1), value=json_values)
def test_a_valid_request_with_one_part_replaced_never_gets_a_500(
        fuzz_client: TestClient, which: int, value: Any) -> None:
    req = example_request(hook="order-sign")
    _set(req, BASE_PATHS[which], value)

    r = fuzz_client.post("/cds-services/hypertension-order-sign", json=req)

    assert r.status_code < 500, (BASE_PATHS[which], r.text)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["iss", "launch", "code", "state"]),
                              st.text(max_size=30), max_size=4))
def test_panel_routes_with_arbitrary_query_never_500(fuzz_client: TestClient,
                                                     params: dict[str, str]) -> None:
    for path in ("/panel/launch", "/panel/callback"):
        r = fuzz_client.get(path, params=params, follow_redirects=False)
        assert r.status_code < 500, (path, r.text)
