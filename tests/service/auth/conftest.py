"""Fixtures for the auth tests: keys generated per session, a JWKS server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.auth import CdsJwtVerifier, JwksCache, MemoryReplayCache, TrustedIssuer
from tests.service.auth.helpers import (
    ISS,
    ISS_INLINE,
    ISS_JKU,
    FakeClock,
    JwksServer,
    SigningKey,
    jwks_of,
)


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def ec_key_2() -> SigningKey:
    return SigningKey("ec-2", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey(
        "rsa-1", "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


@pytest.fixture(scope="session")
def p256_key() -> SigningKey:
    return SigningKey("p256-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def server() -> Iterator[JwksServer]:
    srv = JwksServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> Iterator[JwksCache]:
    with JwksCache(
        clock=clock,
        min_refetch_interval_s=30.0,
        connect_timeout_s=0.5,
        read_timeout_s=0.5,
        fetch_deadline_s=1.5,
    ) as c:
        yield c


@pytest.fixture
def issuers(server: JwksServer, ec_key: SigningKey, rsa_key: SigningKey) -> list[TrustedIssuer]:
    server.serve("/jwks", jwks_of(ec_key, rsa_key))
    server.serve("/jku/client-1/jwks.json", jwks_of(ec_key, rsa_key))
    server.serve("/evil/jwks.json", jwks_of(ec_key, rsa_key))
    return [
        TrustedIssuer(iss=ISS, jwks_url=server.url("/jwks")),
        TrustedIssuer(iss=ISS_JKU, allowed_jku=(server.url("/jku/"),), tenant="tenant-a"),
        TrustedIssuer(iss=ISS_INLINE, jwks=jwks_of(ec_key)),
    ]


@pytest.fixture
def verifier(issuers: list[TrustedIssuer], cache: JwksCache) -> CdsJwtVerifier:
    return CdsJwtVerifier(issuers, cache, MemoryReplayCache())
