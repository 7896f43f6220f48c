"""Fetching and caching CDS clients' JSON Web Key Sets.

`KeySet` turns a JWKS document into verification keys, keeping only public signing keys usable
with the algorithms we accept (ES384 on P-384, RS384 with >= 2048-bit moduli).

`JwksCache` fetches key sets over HTTP and caches them per URL:
- TTL: `default_ttl_s` (1 h), or the response's `Cache-Control: max-age`, clamped to
  [`min_ttl_s`, `max_ttl_s`]; `no-cache`/`no-store` mean `min_ttl_s`.
- Key rotation: a `kid` missing from a fresh set triggers one refetch, but a URL is fetched at
  most once per `min_refetch_interval_s` (so a flood of tokens with made-up `kid`s cannot make
  us hammer the client's server), and at most `max_fetches_per_interval` fetches happen across
  all URLs in that interval.
- Failures: short connect/read timeouts, a total deadline per fetch, a couple of retries on
  transient errors (connection errors, timeouts, 429, 5xx) via tenacity; no redirects; bounded
  body size. A failed fetch is not retried for `min_refetch_interval_s`; meanwhile an expired
  set is still used for up to `stale_if_error_s`, otherwise lookups fail fast with
  `JwksError("jwks_unavailable")`.
- Thread-safe: one lock per URL (single flight: concurrent callers wait for one fetch) and one
  for the table of URLs (LRU-bounded to `max_urls`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric.ec import SECP384R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

__all__ = ["SUPPORTED_ALGORITHMS", "JwksCache", "JwksError", "KeySet", "safe_id"]

SUPPORTED_ALGORITHMS: Final[tuple[str, ...]] = ("ES384", "RS384")
MIN_RSA_BITS: Final = 2048
MAX_KEYS_PER_SET: Final = 100
MAX_KID_LEN: Final = 256
# JWK members that only private (or symmetric) keys have.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_log = structlog.get_logger(__name__)

JwksReason = Literal["jwks_unavailable", "unknown_kid"]


class JwksError(Exception):
    """A key could not be provided. `reason` is an internal code, never shown to clients."""

    def __init__(self, reason: JwksReason) -> None:
        super().__init__(reason)
        self.reason: JwksReason = reason


def _usable_algorithms(jwk: Mapping[str, Any]) -> list[str]:
    """The accepted algorithms this JWK may verify, judged from its members alone."""
    if _PRIVATE_MEMBERS.intersection(jwk):
        return []
    use = jwk.get("use")
    if use is not None and use != "sig":
        return []
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return []
    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") == "P-384":
        candidates = ["ES384"]
    elif kty == "RSA":
        candidates = ["RS384"]
    else:
        return []
    alg = jwk.get("alg")
    if alg is not None:
        candidates = [a for a in candidates if a == alg]
    return candidates


def _public_key_ok(alg: str, key: object) -> bool:
    if alg == "ES384":
        return isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP384R1)
    if alg == "RS384":
        return isinstance(key, RSAPublicKey) and key.key_size >= MIN_RSA_BITS
    return False


@dataclass(frozen=True)
class KeySet:
    """Verification keys by (kid, alg). Immutable, so it can be shared between threads."""

    keys: Mapping[tuple[str, str], PyJWK] = field(default_factory=dict)
    skipped: int = 0

    def get(self, kid: str, alg: str) -> PyJWK | None:
        return self.keys.get((kid, alg))

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(kid for kid, _ in self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_jwks(cls, data: object) -> KeySet:
        """Build from a parsed JWKS document. Raises ValueError when it is not a JWKS at all;
        individual keys that are unusable (wrong type, private, too short, malformed, no
        `kid`) are skipped and counted in `skipped`."""
        if not isinstance(data, Mapping):
            raise ValueError("JWKS must be a JSON object")
        raw_keys = data.get("keys")
        if not isinstance(raw_keys, list):
            raise ValueError("JWKS must have a 'keys' list")
        keys: dict[tuple[str, str], PyJWK] = {}
        skipped = 0
        for jwk in raw_keys[:MAX_KEYS_PER_SET]:
            if not isinstance(jwk, Mapping):
                skipped += 1
                continue
            kid = jwk.get("kid")
            algs = _usable_algorithms(jwk)
            if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LEN or not algs:
                skipped += 1
                continue
            for alg in algs:
                if (kid, alg) in keys:  # duplicate kid: the first one wins
                    skipped += 1
                    continue
                try:
                    pyjwk = PyJWK(dict(jwk), algorithm=alg)
                except Exception:  # untrusted input: any failure means "not a usable key"
                    skipped += 1
                    continue
                if not _public_key_ok(alg, pyjwk.key):
                    skipped += 1
                    continue
                keys[(kid, alg)] = pyjwk
        skipped += max(0, len(raw_keys) - MAX_KEYS_PER_SET)
        return cls(keys=keys, skipped=skipped)


class _FetchError(Exception):
    """Internal: why a fetch failed (a short, log-safe detail)."""


class _TransientFetchError(_FetchError):
    """Worth retrying: connection problems, timeouts, 429, 5xx."""


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: KeySet | None = None
    expires_at: float = 0.0
    last_attempt: float | None = None
    last_failed: bool = False


def _parse_cache_control(value: str | None) -> tuple[float | None, bool]:
    """(max-age seconds or None, no-cache/no-store present)."""
    if not value:
        return None, False
    max_age: float | None = None
    no_cache = False
    for directive in value.split(","):
        name, _, arg = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            no_cache = True
        elif name == "max-age":
            try:
                max_age = float(int(arg.strip().strip('"')))
            except ValueError:
                continue
    return max_age, no_cache


class JwksCache:
    """Per-URL cache of fetched key sets (see the module docstring for the policy)."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        default_ttl_s: float = 3600.0,
        min_ttl_s: float = 60.0,
        max_ttl_s: float = 86400.0,
        min_refetch_interval_s: float = 60.0,
        max_fetches_per_interval: int = 10,
        stale_if_error_s: float = 900.0,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 2.0,
        fetch_deadline_s: float = 4.0,
        attempts: int = 2,
        max_bytes: int = 64 * 1024,
        max_urls: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_ttl_s <= default_ttl_s <= max_ttl_s:
            raise ValueError("need 0 < min_ttl_s <= default_ttl_s <= max_ttl_s")
        if min_refetch_interval_s < 0 or min_refetch_interval_s > min_ttl_s:
            raise ValueError("need 0 <= min_refetch_interval_s <= min_ttl_s")
        if attempts < 1 or max_fetches_per_interval < 1 or max_urls < 1 or max_bytes < 1:
            raise ValueError("attempts, max_fetches_per_interval, max_urls, max_bytes >= 1")
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(
                connect=connect_timeout_s,
                read=read_timeout_s,
                write=read_timeout_s,
                pool=connect_timeout_s,
            ),
            follow_redirects=False,
            headers={"Accept": "application/jwk-set+json, application/json"},
        )
        self._default_ttl = default_ttl_s
        self._min_ttl = min_ttl_s
        self._max_ttl = max_ttl_s
        self._interval = min_refetch_interval_s
        self._max_fetches = max_fetches_per_interval
        self._stale_if_error = stale_if_error_s
        self._deadline = fetch_deadline_s
        self._attempts = attempts
        self._max_bytes = max_bytes
        self._max_urls = max_urls
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._recent_fetches: deque[float] = deque()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> JwksCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups ---------------------------------------------------------------------------

    def get_key(self, url: str, kid: str, alg: str) -> PyJWK:
        """The key `kid` for `alg` from the key set at `url` (an allow-listed URL).

        Raises JwksError("unknown_kid") or JwksError("jwks_unavailable")."""
        entry = self._entry_for(url)
        with entry.lock:
            now = self._clock()
            if entry.keys is not None and now < entry.expires_at:
                key = entry.keys.get(kid, alg)
                if key is not None:
                    return key
                # Unknown kid in a fresh set: maybe the client rotated. Refetch, rate-limited.
                if not self._may_attempt(entry, now):
                    raise JwksError("unknown_kid")
                _log.info("jwks_refetch_unknown_kid", url=_safe_url(url), kid=safe_id(kid))
                self._refresh(entry, url, now)
            elif self._may_attempt(entry, now):
                try:
                    self._refresh(entry, url, now)
                except JwksError:
                    if not self._stale_usable(entry, now):
                        raise
                    _log.warning("jwks_using_stale_keys", url=_safe_url(url))
            elif not self._stale_usable(entry, now):
                raise JwksError("jwks_unavailable")
            keys = entry.keys
            key = keys.get(kid, alg) if keys is not None else None
            if key is None:
                raise JwksError("unknown_kid")
            return key

    def cached_urls(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    # -- internals -------------------------------------------------------------------------

    def _entry_for(self, url: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                while len(self._entries) >= self._max_urls:
                    self._entries.popitem(last=False)
                entry = _Entry()
                self._entries[url] = entry
            else:
                self._entries.move_to_end(url)
            return entry

    def _may_attempt(self, entry: _Entry, now: float) -> bool:
        return entry.last_attempt is None or now - entry.last_attempt >= self._interval

    def _stale_usable(self, entry: _Entry, now: float) -> bool:
        return entry.keys is not None and now < entry.expires_at + self._stale_if_error

    def _take_fetch_budget(self, now: float) -> bool:
        with self._lock:
            while self._recent_fetches and now - self._recent_fetches[0] >= self._interval:
                self._recent_fetches.popleft()
            if len(self._recent_fetches) >= self._max_fetches:
                return False
            self._recent_fetches.append(now)
            return True

    def _refresh(self, entry: _Entry, url: str, now: float) -> None:
        """Fetch `url` into `entry` (caller holds entry.lock). On failure keep the old keys,
        remember the failure and raise JwksError("jwks_unavailable")."""
        if not self._take_fetch_budget(now):
            _log.warning("jwks_fetch_budget_exhausted", url=_safe_url(url))
            raise JwksError("jwks_unavailable")
        entry.last_attempt = now
        started = time.monotonic()
        try:
            keys, ttl = self._fetch(url)
        except _FetchError as exc:
            entry.last_failed = True
            _log.warning(
                "jwks_fetch_failed",
                url=_safe_url(url),
                detail=str(exc),
                elapsed_ms=round((time.monotonic() - started) * 1000),
            )
            raise JwksError("jwks_unavailable") from None
        entry.keys = keys
        entry.expires_at = self._clock() + ttl
        entry.last_failed = False
        _log.info(
            "jwks_fetched",
            url=_safe_url(url),
            keys=len(keys),
            skipped=keys.skipped,
            ttl_s=ttl,
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )

    def _fetch(self, url: str) -> tuple[KeySet, float]:
        deadline = time.monotonic() + self._deadline
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._deadline),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            retry=retry_if_exception_type(_TransientFetchError),
            reraise=True,
        )
        return retrying(self._fetch_once, url, deadline)

    def _fetch_once(self, url: str, deadline: float) -> tuple[KeySet, float]:
        if time.monotonic() >= deadline:
            raise _FetchError("deadline")
        try:
            with self._client.stream("GET", url) as resp:
                status = resp.status_code
                if status == 429 or status >= 500:
                    raise _TransientFetchError(f"http_{status}")
                if status != 200:
                    raise _FetchError(f"http_{status}")
                declared = resp.headers.get("content-length")
                if declared is not None and (
                    not declared.strip().isdigit() or int(declared) > self._max_bytes
                ):
                    raise _FetchError("too_large")
                body = bytearray()
                for chunk in _bounded(resp.iter_bytes(), deadline):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise _FetchError("too_large")
                cache_control = resp.headers.get("cache-control")
        except httpx.TransportError as exc:
            raise _TransientFetchError(type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise _FetchError(type(exc).__name__) from None
        try:
            data = json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise _FetchError("not_json") from None
        try:
            keys = KeySet.from_jwks(data)
        except ValueError:
            raise _FetchError("not_jwks") from None
        return keys, self._ttl(cache_control)

    def _ttl(self, cache_control: str | None) -> float:
        max_age, no_cache = _parse_cache_control(cache_control)
        if no_cache:
            return self._min_ttl
        if max_age is None or not math.isfinite(max_age):
            return self._default_ttl
        return min(max(max_age, self._min_ttl), self._max_ttl)


def _bounded(chunks: Iterator[bytes], deadline: float) -> Iterator[bytes]:
    """Stop a slow-drip response at the fetch deadline (read timeouts are per chunk)."""
    for chunk in chunks:
        if time.monotonic() >= deadline:
            raise _TransientFetchError("deadline")
        yield chunk


def _safe_url(url: str) -> str:
    """Key-set URLs are allow-listed, but a `jku` under an allowed prefix is chosen by the
    caller: log it truncated and with any query string dropped."""
    return url.split("?", 1)[0][:200]


def safe_id(value: object) -> str:
    """An identifier (kid, jti) as it may appear in a log line: short printable ASCII only."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= 128
        and all(c.isascii() and (c.isalnum() or c in "._:-=+/") for c in value)
    ):
        return value
    return "<unprintable>"
