"""A non-ASCII Authorization header is a 401, never a 500, and none of it reaches a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.auth import AuthError, CdsJwtVerifier
from tests.service.auth.helpers import AUD, SigningKey, bearer, jwks_of, sign
from tests.service.conftest import example_request, local_settings

SECRET = "tök\u00e9n-SECRET-\u2603"
# What a server that decodes header bytes as latin-1 (Starlette does) makes of it.
MOJIBAKE = SECRET.encode("utf-8").decode("latin-1")
ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"
URL = "/cds-services/hypertension-treatment"


def _headers(ec_key: SigningKey) -> list[str]:
    token = sign(ec_key)
    return [
        f"Bearer {SECRET}",
        f"Bearer {MOJIBAKE}",
        f"Bearer {SECRET}.{SECRET}.{SECRET}",
        bearer(token) + SECRET,
        bearer(token.replace(".", SECRET, 1)),
        f"B\u00e9arer {SECRET}",
        "Bearer \udcff\udcfe.a.b",  # lone surrogates, as from surrogateescape decoding
    ]


def test_non_ascii_authorization_headers_are_refused_without_leaking(
    verifier: CdsJwtVerifier, ec_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        for header in _headers(ec_key):
            with pytest.raises(AuthError) as info:
                verifier.verify(header, AUD)
            assert info.value.reason in {"malformed", "missing_token"}, header
    texts = [repr(e) for e in events] + [r.getMessage() + repr(r.args) for r in caplog.records]
    for text in texts:
        for secret in ("tök", "SECRET", "\u2603", MOJIBAKE[:4], "\udcff"):
            assert secret not in text, text


@pytest.fixture(scope="module")
def key() -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return SigningKey("k1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def jwt_client(tmp_path_factory: pytest.TempPathFactory, key: SigningKey) -> Iterator[TestClient]:
    settings = local_settings(
        tmp_path_factory.mktemp("non-ascii"),
        auth_mode="jwt",
        public_base_url=BASE,
        trusted_issuers=[{"iss": ISS, "jwks": jwks_of(key)}],
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_utf8_authorization_header_gets_401_over_http(
    jwt_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for raw in (f"Bearer {SECRET}".encode(), f"Bearer {SECRET}.a.b".encode(), b"Bearer \xff\xfe"):
        r = jwt_client.post(URL, json=example_request(), headers={"Authorization": raw})
        assert r.status_code == 401, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    logged = capsys.readouterr()
    for secret in ("tök", "SECRET", MOJIBAKE[:4]):
        assert secret not in logged.out + logged.err
