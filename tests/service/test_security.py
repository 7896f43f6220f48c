"""Client JWTs end to end, production-profile refusals, and no PHI or tokens in the logs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm

from service.app import create_app
from service.settings import Settings, UnsafeSettings
from tests.service.conftest import example_request, local_settings

ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"
URL = "/cds-services/hypertension-treatment"


@pytest.fixture(scope="module")
def key() -> Any:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def jwt_client(tmp_path_factory: pytest.TempPathFactory, key: Any) -> Iterator[TestClient]:
    jwk = dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True), kid="k1", alg="ES384",
               use="sig")
    settings = local_settings(tmp_path_factory.mktemp("jwt"), auth_mode="jwt",
                              public_base_url=BASE,
                              trusted_issuers=[{"iss": ISS, "jwks": {"keys": [jwk]}}])
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _token(key: Any, aud: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()),
            **claims}
    return jwt.encode(body, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})


def test_a_valid_client_jwt_is_accepted(jwt_client: TestClient, key: Any) -> None:
    r = jwt_client.post(URL, json=example_request(),
                        headers={"Authorization": f"Bearer {_token(key, BASE + URL)}"})

    assert r.status_code == 200, r.text


@pytest.mark.parametrize("case", ["none", "wrong_aud", "expired", "garbage"])
def test_bad_or_missing_jwts_get_401_without_detail(jwt_client: TestClient, key: Any,
                                                    case: str) -> None:
    headers = {
        "none": {},
        "wrong_aud": {"Authorization": f"Bearer {_token(key, BASE + '/cds-services/other')}"},
        "expired": {"Authorization": f"Bearer {_token(key, BASE + URL, exp=1)}"},
        "garbage": {"Authorization": "Bearer abc.def.ghi"},
    }[case]

    r = jwt_client.post(URL, json=example_request(), headers=headers)

    assert r.status_code == 401
    assert r.json()["issue"][0]["diagnostics"] == "unauthorized"


def test_a_replayed_jti_is_refused(jwt_client: TestClient, key: Any) -> None:
    token = _token(key, BASE + URL)
    h = {"Authorization": f"Bearer {token}"}

    assert jwt_client.post(URL, json=example_request(), headers=h).status_code == 200
    assert jwt_client.post(URL, json=example_request(), headers=h).status_code == 401


def test_discovery_and_feedback_need_the_jwt_too(jwt_client: TestClient, key: Any) -> None:
    assert jwt_client.get("/cds-services").status_code == 401
    ok = jwt_client.get("/cds-services", headers={
        "Authorization": f"Bearer {_token(key, BASE + '/cds-services')}"})
    assert ok.status_code == 200


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"auth_mode": "demo"}, "demo auth"),
    ({"database_url": "sqlite:///x.db"}, "SQLite"),
    ({"patient_ref_key": "short"}, "PATIENT_REF_KEY"),
    ({"cors_origins": ["*"]}, "CORS"),
    ({"allow_http_fhir": True}, "plain-http"),
    ({"public_base_url": None}, "PUBLIC_BASE_URL"),
    ({"replay_cache_url": None}, "replay cache"),
    ({"public_base_url": "http://cds.example.org"}, "must be https"),
    ({"cors_origins": ["null"]}, "CORS"),
    ({"cors_origins": ["http://ehr.example.org"]}, "CORS origins must be https"),
    ({"database_url": "postgresql+psycopg://cds@db/cds"}, "needs TLS"),
    ({"database_url": "postgresql+psycopg://cds@db/cds?sslmode=prefer"}, "needs TLS"),
    ({"replay_cache_url": "redis://cache:6379/0"}, "needs TLS"),
    ({"state_url": "redis://cache:6379/1"}, "STATE_URL"),
    ({"patient_ref_key": "a" * 32}, "PATIENT_REF_KEY"),
    ({"max_body_bytes": 1_000_000_000}, "MAX_BODY_BYTES"),
    ({"smart_ehrs": ["http://ehr.example.org/fhir"]}, "SMART_EHRS"),
])
def test_the_production_profile_refuses_unsafe_settings(overrides: dict[str, Any],
                                                        reason: str) -> None:
    safe: dict[str, Any] = {
        "profile": "production", "auth_mode": "jwt",
        "trusted_issuers": [{"iss": ISS, "jwks_url": ISS + "/jwks"}],
        "database_url": "postgresql+psycopg://cds@db/cds?sslmode=verify-full",
        "patient_ref_key": "t4Qx9-LmZr2_Wp8Kd7Vb3Hn6Yc1Sf0Ja",
        "allow_http_fhir": False, "public_base_url": "https://cds.example.org",
        "replay_cache_url": "rediss://cache:6380/0", "cors_origins": ["https://ehr.example.org"],
        "smart_ehrs": ["https://ehr.example.org/fhir"],
    }
    Settings(**safe)  # the safe baseline is accepted
    # loopback services need no TLS (a sidecar, a Unix socket)
    Settings(**{**safe, "database_url": "postgresql+psycopg://cds@127.0.0.1/cds",
                "replay_cache_url": "redis://localhost:6379/0"})
    Settings(**{**safe, "database_url": "postgresql+psycopg://cds@/cds?host=/run/postgresql"})

    with pytest.raises(ValueError, match=reason):
        Settings(**{**safe, **overrides})
    assert issubclass(UnsafeSettings, ValueError)


def _events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON log lines the service wrote to stderr (after its redaction step)."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")]


def test_demo_mode_is_loud(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(local_settings(tmp_path))):
        pass
    assert any(e["event"] == "auth_disabled_demo_mode" and e["level"] == "warning"
               for e in _events(capsys))


def test_no_patient_data_or_token_reaches_a_log_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """Every log event of real calls (cards, fetch fallback failure, bad input) is free of the
    patient id, name, birth date, feature values and the FHIR access token."""
    secret_token = "fhir-token-" + uuid.uuid4().hex
    req = example_request(fhirAuthorization={
        "access_token": secret_token, "token_type": "Bearer", "expires_in": 30,
        "scope": "patient/*.read", "subject": "x"}, fhirServer="http://127.0.0.1:9")
    del req["prefetch"]["labs"]
    with TestClient(create_app(local_settings(tmp_path))) as c:
        c.post(URL, json=req)
        c.post(URL, json={**req, "context": {"patientId": "bad id!"}})
        c.post(URL, content=b"{" + secret_token.encode(), headers={
            "content-type": "application/json"})
    logs = _events(capsys)
    text = json.dumps(logs)
    for secret in (secret_token, "example-patient-1", "Example", "1957-03-14", "Pat"):
        assert secret not in text, secret
    assert any(e["event"] == "cds_call" for e in logs)


@pytest.mark.parametrize("token", ["tökén-SECRET\u2603", "abc\r\nX-Injected: 1"])
def test_a_bad_fhir_access_token_is_a_400_and_never_logged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str) -> None:
    """A non-ASCII or header-breaking fhirAuthorization.access_token was a 500 whose traceback
    logged characters of the token."""
    req = example_request(fhirAuthorization={
        "access_token": token, "token_type": "Bearer", "expires_in": 30,
        "scope": "patient/*.read", "subject": "x"}, fhirServer="http://127.0.0.1:9")
    del req["prefetch"]["labs"]
    with TestClient(create_app(local_settings(tmp_path)), raise_server_exceptions=False) as c:
        r = c.post(URL, json=req)
    assert r.status_code == 400, r.text
    out = capsys.readouterr()
    assert "SECRET" not in out.err + out.out
    assert "Injected" not in out.err + out.out


def test_without_migration_at_start_the_service_is_ready_only_at_schema_head(
        tmp_path: Path) -> None:
    """HYPERMARKER_MIGRATE_ON_START=false (a migration job migrates; the runtime user has no
    DDL rights): not ready until the schema is at head, then ready."""
    from audit_store.migrate import upgrade

    app = create_app(local_settings(tmp_path, migrate_on_start=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/health/ready")
        assert r.status_code == 503
        assert "migration" in r.json()["database"]
        upgrade(c.app.state.hm.store.engine)  # type: ignore[attr-defined]
        r = c.get("/health/ready")
        assert r.status_code == 200, r.json()
