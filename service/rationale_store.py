"""Where a card's rationale waits for its panel: the outcome written in the background, kept
under the card's panel token for as long as the panel token lives.

With one process it is memory; with several workers or pods it is Redis (the panel may open on
any of them), like :mod:`service.panel_store`. Redis keys are ``prefix + sha256(token)``. A
failure of the shared store loses only this shortcut: the panel then asks the writer itself.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson
import structlog

_log = structlog.get_logger(__name__)


class RationaleStore(Protocol):
    #: whether calls wait on the network (callers then run them off the event loop)
    remote: bool

    def put(self, token: str, doc: dict[str, Any]) -> None:
        """Keep ``doc`` (JSON) under ``token`` for the store's lifetime; never raises."""
        ...

    def get(self, token: str) -> dict[str, Any] | None:
        """The doc, or None when unknown, expired or unreadable; never raises."""
        ...


class MemoryRationaleStore:
    """One process's memory: bounded (oldest out first), items expire; thread-safe."""

    remote = False

    def __init__(self, ttl_s: float = 1800.0, max_items: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_items
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, token: str, doc: dict[str, Any]) -> None:
        raw = orjson.dumps(doc)
        with self._lock:
            self._items[token] = (time.monotonic() + self._ttl_s, raw)
            self._items.move_to_end(token)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(token)
            if item is None or item[0] < time.monotonic():
                self._items.pop(token, None)
                return None
        doc = orjson.loads(item[1])
        return doc if isinstance(doc, dict) else None


class _Redis(Protocol):
    def set(self, name: str, value: bytes, *, px: int) -> Any: ...

    def get(self, name: str) -> bytes | None: ...


class RedisRationaleStore:
    """Docs in Redis (``SET key value PX ttl``), shared by every worker and pod."""

    remote = True

    def __init__(self, client: _Redis, *, ttl_s: float = 1800.0,
                 prefix: str = "hypermarker:rationale:") -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, ttl_s: float = 1800.0,
                 timeout_s: float = 0.5) -> RedisRationaleStore:
        redis = importlib.import_module("redis")
        return cls(redis.Redis.from_url(url, socket_timeout=timeout_s,
                                        socket_connect_timeout=timeout_s), ttl_s=ttl_s)

    def _key(self, token: str) -> str:
        return self._prefix + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def put(self, token: str, doc: dict[str, Any]) -> None:
        try:
            self._client.set(self._key(token), orjson.dumps(doc), px=self._ttl_ms)
        except Exception as exc:  # any client/network failure: the panel asks again
            _log.warning("rationale_store_unavailable", error=type(exc).__name__)

    def get(self, token: str) -> dict[str, Any] | None:
        try:
            raw = self._client.get(self._key(token))
            doc = None if raw is None else orjson.loads(raw)
        except Exception as exc:
            _log.warning("rationale_store_unavailable", error=type(exc).__name__)
            return None
        return doc if isinstance(doc, dict) else None
