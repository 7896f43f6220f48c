"""Whatever arrives in the Authorization header, the verifier answers AuthError, nothing else."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.utils import der_to_raw_signature

from service.auth import AuthError, CdsJwtVerifier, JwksCache, MemoryReplayCache, TrustedIssuer
from tests.service.auth.helpers import AUD, ISS, SigningKey, jwks_of


@pytest.fixture(scope="module")
def trusted_key() -> SigningKey:
    return SigningKey("ec-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def verifier(trusted_key: SigningKey) -> Iterator[CdsJwtVerifier]:
    key = trusted_key
    # Inline keys plus an unreachable jku prefix: no test here depends on the network.
    issuer = TrustedIssuer(iss=ISS, jwks=jwks_of(key), allowed_jku=("http://127.0.0.1:9/jwks/",))
    with JwksCache(connect_timeout_s=0.2, read_timeout_s=0.2, fetch_deadline_s=0.5) as cache:
        yield CdsJwtVerifier([issuer], cache, MemoryReplayCache())


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey("ec-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


def check(verifier: CdsJwtVerifier, header: Any) -> None:
    with pytest.raises(AuthError) as info:
        verifier.verify(header, AUD)
    assert info.value.reason != "internal_error"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
header_dicts = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES384", "RS384", "none", "HS256", "es384"]) | json_values,
        "typ": st.sampled_from(["JWT", "jwt"]) | json_values,
        "kid": st.sampled_from(["ec-1", "rsa-1", ""]) | json_values,
        "jku": st.sampled_from(["http://127.0.0.1:9/jwks/x", "https://evil.example/"])
        | json_values,
        "crit": json_values,
    },
)
claim_dicts = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.sampled_from([ISS, "https://other.example"]) | json_values,
        "aud": st.sampled_from([AUD, [AUD]]) | json_values,
        "exp": st.integers(min_value=-(2**70), max_value=2**70) | json_values,
        "iat": st.integers(min_value=-(2**70), max_value=2**70) | json_values,
        "nbf": json_values,
        "jti": st.text(max_size=300) | json_values,
        "tenant": json_values,
    },
)

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(header=st.none() | st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_random_headers(verifier: CdsJwtVerifier, header: str | None) -> None:
    check(verifier, header)


@_settings
@given(token=st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_random_bearer_tokens(verifier: CdsJwtVerifier, token: str) -> None:
    check(verifier, "Bearer " + token)


@_settings
@given(parts=st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_random_base64url_segments(verifier: CdsJwtVerifier, parts: list[bytes]) -> None:
    check(verifier, "Bearer " + ".".join(b64(p) for p in parts))


@_settings
@given(header=header_dicts, claims=claim_dicts, sig=st.binary(max_size=120))
def test_structured_tokens_with_random_signatures(
    verifier: CdsJwtVerifier, header: dict[str, Any], claims: dict[str, Any], sig: bytes
) -> None:
    token = ".".join(
        [
            b64(json.dumps(header).encode()),
            b64(json.dumps(claims).encode()),
            b64(sig),
        ]
    )
    check(verifier, "Bearer " + token)


@_settings
@given(claims=claim_dicts, headers=header_dicts, trusted=st.booleans())
def test_really_signed_tokens_with_random_headers_and_claims(
    verifier: CdsJwtVerifier,
    trusted_key: SigningKey,
    signing_key: SigningKey,
    claims: dict[str, Any],
    headers: dict[str, Any],
    trusted: bool,
) -> None:
    # Real ES384 signatures (by the trusted key or another one) over random headers and
    # claims: parsing and checking a well-formed JWS must never crash either.
    key = trusted_key if trusted else signing_key
    try:
        token = es384_compact(key, headers, claims)
    except ValueError:  # NaN/inf are not JSON
        return
    assert outcome(verifier, "Bearer " + token) != "internal_error"


def outcome(verifier: CdsJwtVerifier, header: str) -> str:
    try:
        verifier.verify(header, AUD)
    except AuthError as exc:
        return exc.reason
    return "accepted"


def es384_compact(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    h = b64(json.dumps(header, allow_nan=False).encode())
    p = b64(json.dumps(claims, allow_nan=False).encode())
    der = key.private.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA384()))
    return f"{h}.{p}.{b64(der_to_raw_signature(der, key.private.curve))}"
