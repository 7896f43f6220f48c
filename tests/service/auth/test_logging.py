"""No token, and no claim other than iss/kid/jti/tenant, ever reaches a log event."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.auth import AuthError, CdsJwtVerifier
from tests.service.auth.helpers import (
    AUD,
    ISS,
    ISS_JKU,
    FakeClock,
    JwksServer,
    SigningKey,
    bearer,
    make_claims,
    sign,
)

PHI = "Jane-Doe-MRN-0012345"
FHIR_TOKEN = "fhir-access-token-SECRET-abc123"
# Keys a log event from the auth package may carry.
ALLOWED_KEYS = {
    "event",
    "log_level",
    "reason",
    "iss",
    "kid",
    "jti",
    "tenant",
    # operational fields of the JWKS cache and start-up
    "url",
    "detail",
    "elapsed_ms",
    "keys",
    "skipped",
    "ttl_s",
    "issuers",
    "algorithms",
    "max_age_s",
    "error",
}


def _attempt(verifier: CdsJwtVerifier, header: str) -> None:
    with contextlib.suppress(AuthError):
        verifier.verify(header, AUD)


def test_tokens_and_claims_never_reach_the_logs(
    verifier: CdsJwtVerifier,
    server: JwksServer,
    clock: FakeClock,
    ec_key: SigningKey,
    ec_key_2: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_claims: dict[str, Any] = {
        "patient": PHI,
        "fhirAuthorization": {"access_token": FHIR_TOKEN, "token_type": "Bearer"},
        "sub": PHI,
    }
    tokens = [
        sign(ec_key, make_claims(jti="jti-ok", **secret_claims)),  # accepted
        sign(ec_key, make_claims(aud="https://wrong.example/" + PHI, **secret_claims)),
        sign(ec_key_2, make_claims(**secret_claims), kid="ec-1"),  # bad signature
        sign(ec_key, make_claims(iss="https://attacker.example/" + PHI)),  # untrusted iss
        sign(
            ec_key, make_claims(**secret_claims), kid="kid-unknown-1"
        ),  # unknown kid (kids are loggable)
        sign(  # jku not allowed
            ec_key,
            make_claims(iss=ISS_JKU, **secret_claims),
            headers={"jku": server.url("/evil/" + PHI)},
        ),
        sign(ec_key, make_claims(drop=("jti",), **secret_claims)),  # missing claim
        sign(ec_key, make_claims(jti=PHI + "\n" * 3, **secret_claims)),  # unprintable jti
    ]
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        for token in tokens:
            _attempt(verifier, bearer(token))
        _attempt(verifier, bearer(tokens[0]))  # replay
        _attempt(verifier, "Bearer " + FHIR_TOKEN)  # garbage
        _attempt(verifier, f"Bearer {FHIR_TOKEN}.{PHI}.x")  # garbage that looks like a JWS
        clock.advance(31)
        server.serve("/jwks", b"", status=500)
        _attempt(verifier, bearer(sign(ec_key, make_claims(**secret_claims), kid="other")))

    reasons = [e.get("reason") for e in events if e["event"] == "cds_client_auth_failed"]
    assert {
        "bad_aud",
        "bad_signature",
        "untrusted_issuer",
        "unknown_kid",
        "jku_not_allowed",
    } <= set(reasons)
    assert "replay" in reasons
    assert "jwks_unavailable" in reasons
    assert any(e["event"] == "cds_client_authenticated" for e in events)

    forbidden = [FHIR_TOKEN, PHI, "wrong.example", AUD]
    for token in tokens:
        forbidden.append(token)
        forbidden.extend(token.split("."))
    stdlib_lines = [r.getMessage() + repr(r.args) for r in caplog.records]
    for text in [repr(e) for e in events] + stdlib_lines:
        for secret in forbidden:
            assert secret not in text, (secret[:40], text)
    for event in events:
        assert set(event) <= ALLOWED_KEYS, event
    logged_iss = {e["iss"] for e in events if "iss" in e}
    assert logged_iss <= {ISS, ISS_JKU}
