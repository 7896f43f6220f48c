"""Where an issuer's keys come from: the service's configuration (inline, file or URL) wins
whatever the token's `jku` says, and a `jku` is fetched only when it is allow-listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from service.auth import (
    AuthError,
    CdsJwtVerifier,
    JwksCache,
    MemoryReplayCache,
    TrustedIssuer,
    load_jwks_file,
)
from tests.service.auth.helpers import (
    AUD,
    ISS,
    ISS_INLINE,
    JwksServer,
    SigningKey,
    bearer,
    jwks_of,
    make_claims,
    sign,
)

ISS_FILE = "https://offline.example.org"


def reason_of(verifier: CdsJwtVerifier, header: str) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(header, AUD)
    return info.value.reason


def write_jwks(tmp_path: Path, *keys: SigningKey) -> Path:
    path = tmp_path / "client-jwks.json"
    path.write_text(json.dumps(jwks_of(*keys)))
    return path


# -- configured keys win over an unlisted jku ----------------------------------------------


def test_inline_jwks_is_used_whatever_an_unlisted_jku_says(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    jku = server.url("/evil/jwks.json")
    token = sign(ec_key, make_claims(iss=ISS_INLINE), headers={"jku": jku})
    with capture_logs() as events:
        assert verifier.verify(bearer(token), AUD).iss == ISS_INLINE
    assert server.requests == []
    assert any(e["event"] == "cds_client_jku_ignored" for e in events)
    assert all("/evil/" not in repr(e) for e in events)  # the caller's URL is not logged


def test_jwks_file_is_used_whatever_an_unlisted_jku_says(
    tmp_path: Path, cache: JwksCache, ec_key: SigningKey, server: JwksServer
) -> None:
    server.serve("/jku/client-1/jwks.json", jwks_of(ec_key))
    issuer = TrustedIssuer(
        iss=ISS_FILE,
        jwks_file=str(write_jwks(tmp_path, ec_key)),
        allowed_jku=(server.url("/jku/"),),
    )
    verifier = CdsJwtVerifier([issuer], cache, MemoryReplayCache())
    token = sign(ec_key, make_claims(iss=ISS_FILE), headers={"jku": server.url("/evil/jwks.json")})
    assert verifier.verify(bearer(token), AUD).iss == ISS_FILE
    assert verifier.verify(bearer(sign(ec_key, make_claims(iss=ISS_FILE))), AUD).iss == ISS_FILE
    assert server.requests == []


def test_an_unlisted_jku_cannot_supply_a_key_the_configuration_lacks(
    verifier: CdsJwtVerifier, ec_key_2: SigningKey, server: JwksServer
) -> None:
    server.serve("/evil/jwks.json", jwks_of(ec_key_2))
    token = sign(
        ec_key_2, make_claims(iss=ISS_INLINE), headers={"jku": server.url("/evil/jwks.json")}
    )
    assert reason_of(verifier, bearer(token)) == "unknown_kid"
    assert server.requests == []


def test_a_non_string_jku_is_a_bad_header(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, make_claims(iss=ISS_INLINE), headers={"jku": ["https://x.example/"]})
    assert reason_of(verifier, bearer(token)) == "bad_header"


# -- an allow-listed jku next to a configured jwks_url -------------------------------------


@pytest.fixture
def url_and_jku(
    server: JwksServer, cache: JwksCache, ec_key: SigningKey, ec_key_2: SigningKey
) -> CdsJwtVerifier:
    server.serve("/jwks", jwks_of(ec_key))
    server.serve("/jku/client-2/jwks.json", jwks_of(ec_key_2))
    issuer = TrustedIssuer(
        iss=ISS, jwks_url=server.url("/jwks"), allowed_jku=(server.url("/jku/"),)
    )
    return CdsJwtVerifier([issuer], cache, MemoryReplayCache())


def test_configured_jwks_url_is_used_before_an_allow_listed_jku(
    url_and_jku: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key, headers={"jku": server.url("/jku/client-2/jwks.json")})
    assert url_and_jku.verify(bearer(token), AUD).kid == "ec-1"
    assert server.requests == ["/jwks"]


def test_allow_listed_jku_is_fetched_for_a_kid_the_configured_keys_lack(
    url_and_jku: CdsJwtVerifier, ec_key_2: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key_2, headers={"jku": server.url("/jku/client-2/jwks.json")})
    assert url_and_jku.verify(bearer(token), AUD).kid == "ec-2"
    assert server.requests == ["/jwks", "/jku/client-2/jwks.json"]


def test_without_a_jku_a_kid_missing_from_the_configured_keys_is_refused(
    url_and_jku: CdsJwtVerifier, ec_key_2: SigningKey, server: JwksServer
) -> None:
    assert reason_of(url_and_jku, bearer(sign(ec_key_2))) == "unknown_kid"
    assert server.requests == ["/jwks"]


# -- configuration ---------------------------------------------------------------------------


def test_jwks_file_configuration_errors(
    tmp_path: Path, cache: JwksCache, ec_key: SigningKey
) -> None:
    good = write_jwks(tmp_path, ec_key)
    with pytest.raises(ValueError, match="not both"):
        TrustedIssuer(iss=ISS_FILE, jwks=jwks_of(ec_key), jwks_file=good)
    with pytest.raises(ValueError, match="file path"):
        TrustedIssuer(iss=ISS_FILE, jwks_file=" ")
    not_json = tmp_path / "not.json"
    not_json.write_text("{keys")
    not_jwks = tmp_path / "not-jwks.json"
    not_jwks.write_text('{"kty": "EC"}')
    for path, message in (
        (tmp_path / "missing.json", "cannot read"),
        (not_json, "not valid JSON"),
        (not_jwks, "not a JWKS"),
    ):
        issuer = TrustedIssuer(iss=ISS_FILE, jwks_file=path)
        with pytest.raises(ValueError, match=message):
            CdsJwtVerifier([issuer], cache, MemoryReplayCache())
    assert load_jwks_file(good) == jwks_of(ec_key)


def test_trusted_issuer_from_settings_mapping(tmp_path: Path, ec_key: SigningKey) -> None:
    path = str(write_jwks(tmp_path, ec_key))
    issuer = TrustedIssuer.from_mapping(
        {"iss": ISS_FILE, "jwks_file": path, "allowed_jku": ["https://keys.example/jwks/"]}
    )
    assert issuer == TrustedIssuer(
        iss=ISS_FILE, jwks_file=path, allowed_jku=("https://keys.example/jwks/",)
    )
    assert issuer.has_configured_keys
    assert not TrustedIssuer.from_mapping(
        {"iss": ISS_FILE, "allowed_jku": ["https://keys.example/jwks/"]}
    ).has_configured_keys
    nulls = {"iss": ISS_FILE, "jwks_file": path, "allowed_jku": None, "tenant": None}
    assert TrustedIssuer.from_mapping(nulls).allowed_jku == ()
    with pytest.raises(ValueError, match="unknown key"):
        TrustedIssuer.from_mapping({"iss": ISS_FILE, "jwks_fiel": path})
    with pytest.raises(ValueError, match="list of URLs"):
        TrustedIssuer.from_mapping({"iss": ISS_FILE, "allowed_jku": "https://keys.example/"})
    with pytest.raises(ValueError, match="iss"):
        TrustedIssuer.from_mapping({"jwks_file": path})
    with pytest.raises(ValueError, match="JSON object"):
        TrustedIssuer.from_mapping(["iss"])  # type: ignore[arg-type]
