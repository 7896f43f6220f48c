"""JwksCache: rotation, rate limits, TTLs, failures, against a real HTTP server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.auth import (
    AuthError,
    CdsJwtVerifier,
    JwksCache,
    JwksError,
    KeySet,
    MemoryReplayCache,
    TrustedIssuer,
)
from tests.service.auth.helpers import (
    AUD,
    ISS,
    FakeClock,
    JwksServer,
    SigningKey,
    bearer,
    jwks_of,
    sign,
)


def make_verifier(url: str, cache: JwksCache) -> CdsJwtVerifier:
    return CdsJwtVerifier([TrustedIssuer(iss=ISS, jwks_url=url)], cache, MemoryReplayCache())


def reason(verifier: CdsJwtVerifier, token: str) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(bearer(token), AUD)
    return info.value.reason


# -- rotation and rate limits --------------------------------------------------------------


def test_key_rotation(
    server: JwksServer,
    cache: JwksCache,
    clock: FakeClock,
    ec_key: SigningKey,
    ec_key_2: SigningKey,
) -> None:
    v = make_verifier(server.serve("/jwks", jwks_of(ec_key)), cache)
    v.verify(bearer(sign(ec_key)), AUD)
    assert server.count("/jwks") == 1

    server.serve("/jwks", jwks_of(ec_key_2))  # the client rotates: only the new key remains
    clock.advance(31)  # past the per-URL refetch interval, well within the TTL

    assert v.verify(bearer(sign(ec_key_2)), AUD).kid == "ec-2"  # one refetch
    assert server.count("/jwks") == 2
    assert v.verify(bearer(sign(ec_key_2)), AUD).kid == "ec-2"  # cached
    assert server.count("/jwks") == 2

    assert reason(v, sign(ec_key)) == "unknown_kid"  # the retired key no longer works
    assert server.count("/jwks") == 2  # and asking for it did not cause another fetch


def test_new_kid_waits_for_the_refetch_interval(
    server: JwksServer,
    cache: JwksCache,
    clock: FakeClock,
    ec_key: SigningKey,
    ec_key_2: SigningKey,
) -> None:
    v = make_verifier(server.serve("/jwks", jwks_of(ec_key)), cache)
    v.verify(bearer(sign(ec_key)), AUD)
    server.serve("/jwks", jwks_of(ec_key, ec_key_2))
    clock.advance(5)
    assert reason(v, sign(ec_key_2)) == "unknown_kid"  # fetched 5 s ago: no refetch yet
    assert server.count("/jwks") == 1
    clock.advance(30)
    assert v.verify(bearer(sign(ec_key_2)), AUD).kid == "ec-2"
    assert server.count("/jwks") == 2


def test_unknown_kid_flood_is_rate_limited(
    server: JwksServer, cache: JwksCache, clock: FakeClock, ec_key: SigningKey
) -> None:
    v = make_verifier(server.serve("/jwks", jwks_of(ec_key)), cache)
    for i in range(200):
        reason(v, sign(ec_key, kid=f"made-up-{i}"))
        if i % 50 == 49:
            clock.advance(10)  # 30 s of flood in total
    # One initial fetch plus one refetch once 30 s had passed.
    assert server.count("/jwks") == 2


def test_unknown_kid_flood_from_threads_is_rate_limited(
    server: JwksServer, cache: JwksCache, ec_key: SigningKey
) -> None:
    v = make_verifier(server.serve("/jwks", jwks_of(ec_key)), cache)
    tokens = [sign(ec_key, kid=f"made-up-{i}") for i in range(64)]
    reasons: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def attack(chunk: list[str]) -> None:
        barrier.wait()
        for t in chunk:
            try:
                v.verify(bearer(t), AUD)
            except AuthError as exc:
                with lock:
                    reasons.append(exc.reason)

    threads = [threading.Thread(target=attack, args=(tokens[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reasons == ["unknown_kid"] * 64
    assert server.count("/jwks") == 1  # single flight: one fetch for all concurrent callers


def test_global_fetch_budget_across_jku_urls(
    server: JwksServer, clock: FakeClock, ec_key: SigningKey
) -> None:
    # An attacker who knows a trusted iss can make up jku URLs under an allowed prefix.
    with JwksCache(clock=clock, min_refetch_interval_s=30, max_fetches_per_interval=5) as cache:
        issuer = TrustedIssuer(iss=ISS, allowed_jku=(server.url("/jku/"),))
        v = CdsJwtVerifier([issuer], cache, MemoryReplayCache())
        for i in range(40):
            token = sign(ec_key, headers={"jku": server.url(f"/jku/{i}/jwks.json")})
            assert reason(v, token) == "jwks_unavailable"
        assert len(server.requests) == 5


def test_url_table_is_bounded(server: JwksServer, clock: FakeClock, ec_key: SigningKey) -> None:
    with JwksCache(clock=clock, max_urls=3, max_fetches_per_interval=100) as cache:
        for i in range(10):
            url = server.serve(f"/k{i}", jwks_of(ec_key))
            cache.get_key(url, "ec-1", "ES384")
        assert len(cache.cached_urls()) == 3


# -- TTL -----------------------------------------------------------------------------------


def test_default_ttl_then_refetch(
    server: JwksServer, cache: JwksCache, clock: FakeClock, ec_key: SigningKey
) -> None:
    url = server.serve("/jwks", jwks_of(ec_key))
    cache.get_key(url, "ec-1", "ES384")
    clock.advance(3599)
    cache.get_key(url, "ec-1", "ES384")
    assert server.count("/jwks") == 1
    clock.advance(2)
    cache.get_key(url, "ec-1", "ES384")
    assert server.count("/jwks") == 2


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        ("public, max-age=120", 120),
        ("max-age=5", 60),  # clamped up to min_ttl_s
        ("max-age=999999999", 86400),  # clamped down to max_ttl_s
        ("no-cache", 60),
        ("max-age=nonsense", 3600),
    ],
)
def test_cache_control_max_age_is_honoured_within_bounds(
    cache_control: str,
    ttl: int,
    server: JwksServer,
    cache: JwksCache,
    clock: FakeClock,
    ec_key: SigningKey,
) -> None:
    url = server.serve("/jwks", jwks_of(ec_key), headers={"Cache-Control": cache_control})
    cache.get_key(url, "ec-1", "ES384")
    clock.advance(ttl - 1)
    cache.get_key(url, "ec-1", "ES384")
    assert server.count("/jwks") == 1
    clock.advance(2)
    cache.get_key(url, "ec-1", "ES384")
    assert server.count("/jwks") == 2


def test_stale_keys_are_used_briefly_when_the_server_fails(
    server: JwksServer, clock: FakeClock, ec_key: SigningKey
) -> None:
    with JwksCache(clock=clock, stale_if_error_s=600, min_refetch_interval_s=30) as cache:
        url = server.serve("/jwks", jwks_of(ec_key), headers={"Cache-Control": "max-age=60"})
        cache.get_key(url, "ec-1", "ES384")
        server.serve("/jwks", b"", status=500)
        clock.advance(61)
        assert cache.get_key(url, "ec-1", "ES384") is not None  # stale, after a failed refetch
        clock.advance(601)
        with pytest.raises(JwksError) as info:
            cache.get_key(url, "ec-1", "ES384")
        assert info.value.reason == "jwks_unavailable"


# -- failures ------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_jwks_server_down_fails_fast(clock: FakeClock, ec_key: SigningKey) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/jwks"
    with JwksCache(clock=clock, connect_timeout_s=0.5, read_timeout_s=0.5) as cache:
        v = make_verifier(url, cache)
        started = time.monotonic()
        assert reason(v, sign(ec_key)) == "jwks_unavailable"
        assert time.monotonic() - started < 2.0
        # Within the retry interval a second call does not even try the network.
        started = time.monotonic()
        assert reason(v, sign(ec_key)) == "jwks_unavailable"
        assert time.monotonic() - started < 0.1


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/jwks"
    finally:
        sock.close()


def test_hanging_jwks_server_is_bounded_in_time(
    silent_server: str, clock: FakeClock, ec_key: SigningKey
) -> None:
    with JwksCache(
        clock=clock, connect_timeout_s=0.3, read_timeout_s=0.3, fetch_deadline_s=1.0, attempts=3
    ) as cache:
        v = make_verifier(silent_server, cache)
        started = time.monotonic()
        assert reason(v, sign(ec_key)) == "jwks_unavailable"
        assert time.monotonic() - started < 2.5


def test_transient_errors_are_retried(
    server: JwksServer, cache: JwksCache, ec_key: SigningKey
) -> None:
    url = server.serve("/jwks", jwks_of(ec_key), fail_first=1)
    assert cache.get_key(url, "ec-1", "ES384") is not None
    assert server.count("/jwks") == 2


@pytest.mark.parametrize(
    ("body", "status", "headers"),
    [
        (b"not json", 200, {}),
        (b'{"no": "keys"}', 200, {}),
        (b"[]", 200, {}),
        (b'{"keys": []}', 404, {}),
        (b"{" * 100_000, 200, {}),  # too large
        (b'{"keys": []}', 302, {"Location": "/elsewhere"}),  # redirects are not followed
    ],
)
def test_bad_responses_make_the_keys_unavailable(
    body: bytes,
    status: int,
    headers: dict[str, str],
    server: JwksServer,
    cache: JwksCache,
    ec_key: SigningKey,
) -> None:
    url = server.serve("/jwks", body, status=status, headers=headers)
    server.serve("/elsewhere", jwks_of(ec_key))
    with pytest.raises(JwksError) as info:
        cache.get_key(url, "ec-1", "ES384")
    assert info.value.reason == "jwks_unavailable"
    assert server.count("/jwks") == 1  # permanent errors are not retried
    assert server.count("/elsewhere") == 0


# -- key parsing ---------------------------------------------------------------------------


def test_keyset_keeps_only_public_signing_keys(ec_key: SigningKey, rsa_key: SigningKey) -> None:
    weak_rsa = SigningKey("rsa-weak", "RS384", rsa.generate_private_key(65537, 1024))
    p256 = SigningKey("p256", "ES384", ec.generate_private_key(ec.SECP256R1()))
    private = ec_key.private.private_numbers()
    ec_private_jwk = ec_key.public_jwk(kid="ec-private")
    ec_private_jwk["d"] = "AAAA" + str(private.private_value)[:10]
    jwks = {
        "keys": [
            ec_key.public_jwk(),
            rsa_key.public_jwk(alg=None),  # no alg: usable as RS384
            rsa_key.public_jwk(kid="rsa-enc", use="enc"),
            rsa_key.public_jwk(kid="rsa-rs256", alg="RS256"),
            weak_rsa.public_jwk(),
            {**p256.public_jwk(), "crv": "P-256"},
            ec_private_jwk,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {k: v for k, v in ec_key.public_jwk().items() if k != "kid"},
            {"kty": "EC", "crv": "P-384", "kid": "broken", "x": "AA", "y": "AA"},
            "not a key",
        ]
    }
    keyset = KeySet.from_jwks(jwks)
    assert keyset.kids == {"ec-1", "rsa-1"}
    assert keyset.get("ec-1", "ES384") is not None
    assert keyset.get("rsa-1", "RS384") is not None
    assert keyset.get("ec-1", "RS384") is None
    assert keyset.skipped == 9


@pytest.mark.parametrize("doc", [None, [], "keys", {"keys": "x"}, {"keys": None}])
def test_keyset_rejects_non_jwks(doc: object) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        KeySet.from_jwks(doc)


def test_cache_parameter_validation() -> None:
    with pytest.raises(ValueError, match="ttl"):
        JwksCache(min_ttl_s=10, default_ttl_s=5)
    with pytest.raises(ValueError, match="refetch"):
        JwksCache(min_refetch_interval_s=120, min_ttl_s=60)
