"""Every route is either authenticated (it declares the client dependency,
:data:`service.api.deps.ClientDep`) or listed here as public, so a new route cannot forget
authentication: it fails this test until it is put on one list (issue 13)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm
from starlette.routing import Mount, Route

from service.api.deps import authenticate, known_service, start_answer
from service.app import create_app
from tests.service.conftest import local_settings

#: (method, path) of the routes a CDS client must authenticate to (client JWT, aud = URL).
AUTHENTICATED = {
    ("GET", "/cds-services"),
    ("POST", "/cds-services/{service_id}"),
    ("POST", "/cds-services/{service_id}/feedback"),
    ("POST", "/fhir/$hypertension-options"),
}
#: Public: conformance (read before a client authenticates), probes, metrics, API docs, and the
#: SMART panel (its own checks: a configured EHR, the launch state, the patient in context).
PUBLIC = {
    ("GET", "/fhir/metadata"), ("GET", "/fhir/OperationDefinition/{op_id}"),
    ("GET", "/fhir/CodeSystem/{cs_id}"),
    ("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs-assets"),
    ("GET", "/panel/launch"), ("GET", "/panel/callback"), ("GET", "/panel/view/{grant}"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(local_settings(tmp_path_factory.mktemp("routes")))


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency of a route, depth first, in the order FastAPI resolves them."""
    for sub in dependant.dependencies:
        yield from _calls(sub)
        if sub.call is not None:
            yield sub.call


def _routes(app: FastAPI | APIRouter) -> Iterator[tuple[tuple[str, str], Dependant | None]]:
    """(method, path) and dependencies of every route, in included routers too (FastAPI
    keeps an included router as one entry that holds the router; no prefixes are used)."""
    for r in app.routes:
        included = getattr(r, "original_router", None)
        if isinstance(included, APIRouter):
            yield from _routes(included)
        elif isinstance(r, APIRoute):
            for m in sorted(r.methods - {"HEAD"}):
                yield (m, r.path), r.dependant
        elif isinstance(r, Route):
            for m in sorted((r.methods or set()) - {"HEAD"}):
                yield (m, r.path), None
        elif isinstance(r, Mount):  # static files: GET only
            yield ("GET", r.path), None


def test_every_route_is_on_one_list(app: FastAPI) -> None:
    assert not AUTHENTICATED & PUBLIC
    assert {k for k, _ in _routes(app)} == AUTHENTICATED | PUBLIC


def test_the_authenticated_routes_declare_the_client_dependency(app: FastAPI) -> None:
    declared = {k for k, d in _routes(app) if d is not None and authenticate in _calls(d)}
    assert declared == AUTHENTICATED


def test_the_clock_starts_before_authentication_and_404_comes_before_401(app: FastAPI
                                                                          ) -> None:
    """The latency includes authentication (as it always did), and an unknown CDS service
    is a 404 before any 401 (as it always was)."""
    for key, dependant in _routes(app):
        if dependant is None or key not in AUTHENTICATED:
            continue
        order = [c for c in _calls(dependant) if c in (start_answer, known_service,
                                                       authenticate)]
        if key[1] in ("/cds-services/{service_id}", "/fhir/$hypertension-options"):
            assert order[0] is start_answer, key
        if "{service_id}" in key[1]:
            assert order.index(known_service) < order.index(authenticate), key


def test_authenticated_routes_refuse_a_client_without_a_jwt(tmp_path: Path) -> None:
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True), kid="k1", alg="ES384", use="sig")
    settings = local_settings(tmp_path, auth_mode="jwt", trusted_issuers=[
        {"iss": "https://ehr.example.org", "jwks": {"keys": [jwk]}}])
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        for method, path in sorted(AUTHENTICATED):
            url = path.replace("{service_id}", "hypertension-treatment")
            r = c.request(method, url, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        assert c.post("/cds-services/nope", json={}).status_code == 404
        assert c.post("/cds-services/nope/feedback", json={}).status_code == 404
        assert c.get("/fhir/metadata").status_code == 200
        assert c.get("/health/live").status_code == 200
