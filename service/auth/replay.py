"""`jti` replay caches: each (iss, jti) is accepted once until its expiry.

The verifier passes `expires_at` = the last instant the token could still be accepted (bounded
by `exp` and by `iat + max_age_s`, plus leeway), so entries never outlive the window in which a
replay could succeed, and a token with a far-future `exp` cannot pin memory.

Both caches fail closed: when an entry cannot be recorded they raise `ReplayCacheError` and the
verifier refuses the call (401), because accepting it would allow replays.
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import structlog

__all__ = ["MemoryReplayCache", "RedisReplayCache", "ReplayCache", "ReplayCacheError"]

_log = structlog.get_logger(__name__)


class ReplayCacheError(Exception):
    """The cache could not record an entry (full, or its backend is unreachable)."""


@runtime_checkable
class ReplayCache(Protocol):
    def seen(self, iss: str, jti: str, expires_at: float) -> bool:
        """Atomically record (iss, jti) until `expires_at` (Unix seconds) and return True if
        it was already recorded and has not expired. Raises ReplayCacheError."""
        ...


class MemoryReplayCache:
    """In-process cache: a dict plus an expiry heap; thread-safe; bounded to `max_entries`.

    Only correct for a single worker process; with several workers use RedisReplayCache.
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        with self._lock:
            self._evict(self._clock())
            return len(self._expiry)

    def _evict(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if expiry.get(key) == when:
                del expiry[key]

    def seen(self, iss: str, jti: str, expires_at: float) -> bool:
        if not math.isfinite(expires_at):
            raise ValueError("expires_at must be finite")
        key = (iss, jti)
        with self._lock:
            now = self._clock()
            self._evict(now)
            if key in self._expiry:
                return True
            if expires_at <= now:
                # Already outside the acceptance window: nothing to remember.
                return False
            if len(self._expiry) >= self._max:
                # Evicting live entries would re-open a replay window: fail closed instead.
                _log.warning("replay_cache_full", max_entries=self._max)
                raise ReplayCacheError("replay cache full")
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return False


class _RedisSet(Protocol):
    def set(self, name: str, value: bytes, *, nx: bool, px: int) -> Any: ...


class RedisReplayCache:
    """Shared cache in Redis: one `SET key 1 NX PX ttl` per call (atomic across workers).

    `client` is a redis-py `Redis` (or anything with the same `set`); the `redis` package is an
    optional dependency, imported only by `from_url`. Keys are `prefix + sha256(iss NUL jti)`,
    so untrusted `jti` text never becomes part of a Redis command's key verbatim.
    """

    def __init__(
        self,
        client: _RedisSet,
        *,
        prefix: str = "hypermarker:cds-jti:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    @classmethod
    def from_url(
        cls, url: str, *, timeout_s: float = 0.5, prefix: str = "hypermarker:cds-jti:"
    ) -> RedisReplayCache:
        try:
            redis = importlib.import_module("redis")
        except ImportError as exc:
            raise RuntimeError(
                "RedisReplayCache needs the 'redis' package, which is not installed"
            ) from exc
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, prefix=prefix)

    def key_for(self, iss: str, jti: str) -> str:
        raw = iss.encode("utf-8", "surrogatepass") + b"\x00" + jti.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()
        return self._prefix + digest

    def seen(self, iss: str, jti: str, expires_at: float) -> bool:
        if not math.isfinite(expires_at):
            raise ValueError("expires_at must be finite")
        ttl_ms = math.ceil((expires_at - self._clock()) * 1000)
        if ttl_ms <= 0:
            ttl_ms = 1  # still record, so a concurrent duplicate is caught
        try:
            created = self._client.set(self.key_for(iss, jti), b"1", nx=True, px=ttl_ms)
        except Exception as exc:  # any client/network failure: fail closed
            _log.warning("replay_cache_unavailable", error=type(exc).__name__)
            raise ReplayCacheError("replay cache unavailable") from None
        return not created
