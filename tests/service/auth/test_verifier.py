"""CdsJwtVerifier against real keys and a real JWKS server."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from service.auth import (
    AuthError,
    CdsJwtVerifier,
    ClientIdentity,
    JwksCache,
    MemoryReplayCache,
    TrustedIssuer,
)
from tests.service.auth.helpers import (
    AUD,
    ISS,
    ISS_INLINE,
    ISS_JKU,
    JwksServer,
    SigningKey,
    b64url,
    bearer,
    compact,
    forge_hs256,
    make_claims,
    sign,
)


def reason_of(verifier: CdsJwtVerifier, header: str | None, audience: str = AUD) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(header, audience)
    return info.value.reason


# -- accepted ------------------------------------------------------------------------------


def test_valid_es384_accepted(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    claims = make_claims(jti="jti-es384")
    identity = verifier.verify(bearer(sign(ec_key, claims)), AUD)
    assert identity == ClientIdentity(iss=ISS, jti="jti-es384", tenant=None, kid="ec-1")


def test_valid_rs384_accepted(verifier: CdsJwtVerifier, rsa_key: SigningKey) -> None:
    identity = verifier.verify(bearer(sign(rsa_key)), AUD)
    assert identity.iss == ISS
    assert identity.kid == "rsa-1"


def test_bearer_scheme_is_case_insensitive(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    assert verifier.verify("bearer " + sign(ec_key), AUD).iss == ISS


def test_extra_claims_such_as_epic_sub_and_nbf_are_accepted(
    verifier: CdsJwtVerifier, rsa_key: SigningKey
) -> None:
    now = int(time.time())
    claims = make_claims(sub="epic-client-id", nbf=now - 300, iat=now)
    assert verifier.verify(bearer(sign(rsa_key, claims)), AUD).iss == ISS


def test_inline_jwks_needs_no_fetch(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    identity = verifier.verify(bearer(sign(ec_key, make_claims(iss=ISS_INLINE))), AUD)
    assert identity.iss == ISS_INLINE
    assert server.requests == []


def test_allow_listed_jku_is_followed(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    jku = server.url("/jku/client-1/jwks.json")
    token = sign(ec_key, make_claims(iss=ISS_JKU), headers={"jku": jku})
    identity = verifier.verify(bearer(token), AUD)
    assert identity == ClientIdentity(iss=ISS_JKU, jti=identity.jti, tenant="tenant-a", kid="ec-1")
    assert server.requests == ["/jku/client-1/jwks.json"]


# -- algorithms: refused before any key lookup ---------------------------------------------


def _forged_tokens(ec_key: SigningKey, rsa_key: SigningKey, p256_key: SigningKey) -> dict[str, str]:
    claims = make_claims()
    header = {"typ": "JWT", "kid": rsa_key.kid}
    return {
        "HS256 keyed with the RSA public key": forge_hs256(
            rsa_key.public_pem(), {**header, "alg": "HS256"}, claims
        ),
        "HS384 keyed with the EC public key": compact(
            {"typ": "JWT", "kid": ec_key.kid, "alg": "HS384"}, claims, b"x" * 48
        ),
        "alg none, empty signature": jwt.encode(
            claims, "", algorithm="none", headers={"kid": "rsa-1"}
        ),
        "alg none, junk signature": compact({**header, "alg": "none"}, claims, b"junk"),
        "alg NONE": compact({**header, "alg": "NONE"}, claims, b"junk"),
        "RS256": sign(rsa_key, claims, alg="RS256"),
        "ES256": sign(p256_key, claims),
        "PS384": sign(rsa_key, claims, alg="PS384"),
        "ES512 claimed": compact({**header, "alg": "ES512"}, claims, b"x" * 132),
        "alg missing": compact(header, claims, b"x" * 96),
        "alg not a string": compact({**header, "alg": ["ES384"]}, claims, b"x" * 96),
    }


@pytest.mark.parametrize(
    "case",
    [
        "HS256 keyed with the RSA public key",
        "HS384 keyed with the EC public key",
        "alg none, empty signature",
        "alg none, junk signature",
        "alg NONE",
        "RS256",
        "ES256",
        "PS384",
        "ES512 claimed",
        "alg missing",
        "alg not a string",
    ],
)
def test_disallowed_algorithms_rejected_without_key_lookup(
    case: str,
    verifier: CdsJwtVerifier,
    server: JwksServer,
    ec_key: SigningKey,
    rsa_key: SigningKey,
    p256_key: SigningKey,
) -> None:
    token = _forged_tokens(ec_key, rsa_key, p256_key)[case]
    reason = reason_of(verifier, bearer(token))
    # "alg none" with an empty signature is not even a well-formed JWS for us.
    assert reason == ("malformed" if case == "alg none, empty signature" else "bad_alg")
    assert server.requests == []  # no key was looked up


def test_algorithm_confusion_rs384_header_with_ec_kid(
    verifier: CdsJwtVerifier, ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    # Header says RS384 but names the EC key: there is no RS384 key with that kid.
    token = sign(rsa_key, kid=ec_key.kid)
    assert reason_of(verifier, bearer(token)) == "unknown_kid"


def test_verifier_refuses_to_be_configured_with_other_algorithms(
    issuers: list[TrustedIssuer], cache: JwksCache
) -> None:
    for algs in (("HS256",), ("none",), ("ES384", "RS256"), ()):
        with pytest.raises(ValueError, match="algorithms"):
            CdsJwtVerifier(issuers, cache, MemoryReplayCache(), algorithms=algs)


# -- header checks -------------------------------------------------------------------------


def test_typ_must_be_jwt(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, headers={"typ": "at+jwt"})
    assert reason_of(verifier, bearer(token)) == "bad_typ"
    claims = make_claims()
    no_typ = compact({"alg": "ES384", "kid": "ec-1"}, claims, b"x" * 96)
    assert reason_of(verifier, bearer(no_typ)) == "bad_typ"


def test_kid_required(verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer) -> None:
    no_kid = jwt.encode(make_claims(), ec_key.private, algorithm="ES384")
    assert reason_of(verifier, bearer(no_kid)) == "missing_kid"
    assert server.requests == []


def test_crit_header_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, headers={"crit": ["exp"]})
    assert reason_of(verifier, bearer(token)) in {"bad_header", "malformed"}


def test_signature_by_another_key_with_the_same_kid(
    verifier: CdsJwtVerifier, ec_key_2: SigningKey
) -> None:
    token = sign(ec_key_2, kid="ec-1")
    assert reason_of(verifier, bearer(token)) == "bad_signature"


def test_tampered_payload_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    h, _, s = sign(ec_key).split(".")
    p = b64url(b'{"iss":"' + ISS.encode() + b'","aud":"' + AUD.encode() + b'"}')
    assert reason_of(verifier, bearer(f"{h}.{p}.{s}")) == "bad_signature"


# -- issuer and jku ------------------------------------------------------------------------


def test_untrusted_issuer_rejected_without_fetch(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key, make_claims(iss="https://attacker.example"))
    assert reason_of(verifier, bearer(token)) == "untrusted_issuer"
    token = sign(ec_key, make_claims(iss=None))
    assert reason_of(verifier, bearer(token)) == "untrusted_issuer"
    assert server.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/evil/jwks.json",  # another path on an allowed host
        "/jku/../evil/jwks.json",  # traversal out of the allowed prefix
        "/jku/%2e%2e/evil/jwks.json",  # encoded traversal
        "/jku/client-1/jwks.json?x=1",  # query
        "/jku/",  # the bare prefix
    ],
)
def test_jku_not_allow_listed_is_rejected_and_never_fetched(
    path: str, verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key, make_claims(iss=ISS_JKU), headers={"jku": server.url(path)})
    assert reason_of(verifier, bearer(token)) == "jku_not_allowed"
    assert server.requests == []


def test_jku_of_another_host_is_rejected(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    for jku in (
        f"http://localhost:{server.port}/jku/client-1/jwks.json",
        f"http://127.0.0.1:{server.port}@evil.example/jku/x",
        "https://evil.example/jku/client-1/jwks.json",
    ):
        token = sign(ec_key, make_claims(iss=ISS_JKU), headers={"jku": jku})
        assert reason_of(verifier, bearer(token)) == "jku_not_allowed"
    assert server.requests == []


def test_configured_jwks_url_is_used_whatever_an_unlisted_jku_says(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key, headers={"jku": server.url("/evil/jwks.json")})
    assert verifier.verify(bearer(token), AUD).iss == ISS
    assert server.requests == ["/jwks"]  # the unlisted jku is never fetched


def test_jku_equal_to_the_configured_jwks_url_is_accepted(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    token = sign(ec_key, headers={"jku": server.url("/jwks")})
    assert verifier.verify(bearer(token), AUD).iss == ISS
    assert server.requests == ["/jwks"]


def test_issuer_with_only_allowed_jku_needs_a_jku(
    verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    token = sign(ec_key, make_claims(iss=ISS_JKU))
    assert reason_of(verifier, bearer(token)) == "no_key_source"


def test_tenant_must_match_configuration(
    verifier: CdsJwtVerifier, ec_key: SigningKey, server: JwksServer
) -> None:
    jku = server.url("/jku/client-1/jwks.json")
    other = sign(ec_key, make_claims(iss=ISS_JKU, tenant="tenant-b"), headers={"jku": jku})
    assert reason_of(verifier, bearer(other)) == "bad_tenant"
    same = sign(ec_key, make_claims(iss=ISS_JKU, tenant="tenant-a"), headers={"jku": jku})
    assert verifier.verify(bearer(same), AUD).tenant == "tenant-a"


def test_tenant_claim_is_not_trusted_when_not_configured(
    verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    token = sign(ec_key, make_claims(tenant="whatever"))
    assert verifier.verify(bearer(token), AUD).tenant is None


# -- audience ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/other-service",
        AUD + "/",
        AUD.upper(),
        "https://cds.example.org/cds-services",
        [],
        ["https://cds.example.org/cds-services/other-service", "https://other.example"],
        [AUD + "/feedback"],
        [{"url": AUD}],
        42,
    ],
)
def test_wrong_audience_rejected(aud: Any, verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, make_claims(aud=aud))
    assert reason_of(verifier, bearer(token)) in {"bad_aud", "missing_claim"}


def test_audience_missing_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, make_claims(drop=("aud",)))
    assert reason_of(verifier, bearer(token)) == "missing_claim"


@pytest.mark.parametrize("aud", [AUD, [AUD], ["https://other.example/", AUD]])
def test_audience_containing_the_called_url_accepted(
    aud: Any, verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    assert verifier.verify(bearer(sign(ec_key, make_claims(aud=aud))), AUD).iss == ISS


def test_token_for_one_endpoint_does_not_work_on_another(
    verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    token = sign(ec_key)  # aud = the service URL
    assert reason_of(verifier, bearer(token), AUD + "/feedback") == "bad_aud"


# -- time claims ---------------------------------------------------------------------------


def test_expired_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    now = int(time.time())
    token = sign(ec_key, make_claims(iat=now - 200, exp=now - 100))
    assert reason_of(verifier, bearer(token)) == "expired"


def test_expiry_within_leeway_accepted(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    now = int(time.time())
    token = sign(ec_key, make_claims(iat=now - 60, exp=now - 10))
    assert verifier.verify(bearer(token), AUD).iss == ISS


def test_iat_in_the_future_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    now = int(time.time())
    token = sign(ec_key, make_claims(iat=now + 120, exp=now + 400))
    assert reason_of(verifier, bearer(token)) == "not_yet_valid"


def test_nbf_in_the_future_rejected(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    now = int(time.time())
    token = sign(ec_key, make_claims(nbf=now + 120))
    assert reason_of(verifier, bearer(token)) == "not_yet_valid"


def test_too_old_rejected_even_if_not_expired(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    now = int(time.time())
    token = sign(ec_key, make_claims(iat=now - 400, exp=now + 3600))
    assert reason_of(verifier, bearer(token)) == "too_old"


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "iss"])
def test_missing_required_claim_rejected(
    claim: str, verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    token = sign(ec_key, make_claims(drop=(claim,)))
    expected = "untrusted_issuer" if claim == "iss" else "missing_claim"
    assert reason_of(verifier, bearer(token)) == expected


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": 12345},
        {"jti": ""},
        {"jti": "x" * 257},
        {"iat": True},
        {"exp": 1e400},
    ],
)
def test_malformed_claims_rejected(
    claims: dict[str, Any], verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    token = sign(ec_key, make_claims(**claims))
    assert reason_of(verifier, bearer(token)) in {"bad_claim", "malformed"}


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_time_claims_as_numeric_strings_rejected(
    claim: str, verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    now = int(time.time())  # when the test runs, never when it is collected
    claims = make_claims(exp=str(now + 300)) if claim == "exp" else make_claims(iat=str(now))
    token = sign(ec_key, claims)
    assert reason_of(verifier, bearer(token)) in {"bad_claim", "malformed"}


# -- replay --------------------------------------------------------------------------------


def test_replayed_jti_rejected_on_second_use(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    token = sign(ec_key, make_claims(jti="once"))
    verifier.verify(bearer(token), AUD)
    assert reason_of(verifier, bearer(token)) == "replay"
    # A different token reusing the jti is a replay too.
    again = sign(ec_key, make_claims(jti="once", aud=[AUD, "https://x.example"]))
    assert reason_of(verifier, bearer(again)) == "replay"


def test_jti_is_scoped_per_issuer(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    verifier.verify(bearer(sign(ec_key, make_claims(jti="shared"))), AUD)
    other = verifier.verify(bearer(sign(ec_key, make_claims(iss=ISS_INLINE, jti="shared"))), AUD)
    assert other.iss == ISS_INLINE


def test_rejected_tokens_do_not_burn_their_jti(
    verifier: CdsJwtVerifier, ec_key: SigningKey
) -> None:
    bad = sign(ec_key, make_claims(jti="keep", aud="https://wrong.example"))
    assert reason_of(verifier, bearer(bad)) == "bad_aud"
    assert verifier.verify(bearer(sign(ec_key, make_claims(jti="keep"))), AUD).jti == "keep"


def test_replay_cache_failure_fails_closed(
    issuers: list[TrustedIssuer], cache: JwksCache, ec_key: SigningKey
) -> None:
    v = CdsJwtVerifier(issuers, cache, MemoryReplayCache(max_entries=1))
    v.verify(bearer(sign(ec_key)), AUD)
    assert reason_of(v, bearer(sign(ec_key))) == "replay_cache_unavailable"


# -- Authorization header parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token a.b.c", "a.b.c"],
)
def test_missing_or_non_bearer_credentials(header: str | None, verifier: CdsJwtVerifier) -> None:
    assert reason_of(verifier, header) == "missing_token"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer a b c",
        "Bearer " + "a" * 9000 + ".b.c",
        "Bearer ...",
        "Bearer a.b.c",
    ],
)
def test_malformed_tokens(header: str, verifier: CdsJwtVerifier) -> None:
    assert reason_of(verifier, header) == "malformed"


# -- configuration -------------------------------------------------------------------------


def test_trusted_issuer_validation() -> None:
    with pytest.raises(ValueError, match="configure"):
        TrustedIssuer(iss="https://x.example")
    with pytest.raises(ValueError, match="http"):
        TrustedIssuer(iss="x", jwks_url="http://keys.example/jwks")
    with pytest.raises(ValueError, match="host"):
        TrustedIssuer(iss="x", allowed_jku=("https:///",))
    with pytest.raises(ValueError, match="credentials"):
        TrustedIssuer(iss="x", allowed_jku=("https://u:p@keys.example/",))
    with pytest.raises(ValueError, match="tuple"):
        TrustedIssuer(iss="x", allowed_jku="https://keys.example/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not clean"):
        TrustedIssuer(iss="x", allowed_jku=("https://keys.example/a/../",))
    ok = TrustedIssuer(iss="x", allowed_jku=("https://keys.example/jwks/", "https://k.example/j"))
    assert ok.jku_allowed("https://keys.example/jwks/client.json")
    assert ok.jku_allowed("https://k.example/j")
    assert not ok.jku_allowed("https://k.example/j/more")
    assert not ok.jku_allowed("https://keys.example/jwks/a/../../x")
    assert not ok.jku_allowed("https://keys.example/jwks/a\\b")
    assert not ok.jku_allowed("https://keys.example/jwksx")


def test_verifier_configuration_errors(cache: JwksCache, ec_key: SigningKey) -> None:
    a = TrustedIssuer(iss="https://a.example", jwks_url="https://a.example/jwks")
    with pytest.raises(ValueError, match="duplicate"):
        CdsJwtVerifier([a, a], cache, MemoryReplayCache())
    with pytest.raises(ValueError, match="no trusted issuers"):
        CdsJwtVerifier([], cache, MemoryReplayCache())
    private_only = {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}
    with pytest.raises(ValueError, match="no usable"):
        CdsJwtVerifier(
            [TrustedIssuer(iss="https://b.example", jwks=private_only)], cache, MemoryReplayCache()
        )


def test_audience_argument_is_required(verifier: CdsJwtVerifier, ec_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="audience"):
        verifier.verify(bearer(sign(ec_key)), "")
