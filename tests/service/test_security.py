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
])
def test_the_production_profile_refuses_unsafe_settings(overrides: dict[str, Any],
                                                        reason: str) -> None:
    safe: dict[str, Any] = {
        "profile": "production", "auth_mode": "jwt",
        "trusted_issuers": [{"iss": ISS, "jwks_url": ISS + "/jwks"}],
        "database_url": "postgresql+psycopg://cds@db/cds", "patient_ref_key": "k" * 40,
        "allow_http_fhir": False, "public_base_url": "https://cds.example.org",
        "replay_cache_url": "redis://127.0.0.1:6379/0",
    }
    Settings(**safe)  # the safe baseline is accepted

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
