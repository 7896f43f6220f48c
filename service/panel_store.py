"""Short-lived items behind unguessable tokens, shared by every worker and replica.

The card links to the SMART panel through a token: the patient's features (re-assessed, every
option explained, when the panel opens), the pending SMART launches (PKCE verifier, token
endpoint) and the view grants a completed launch gives. A token must work whichever process
answers the next request, so with more than one worker or pod the items live in Redis
(:class:`RedisPanelStore`); a single process may keep them in memory
(:class:`MemoryPanelStore`; the settings refuse several workers without Redis).

Each item is bound to the keyed hash of its patient (``patient_ref``) and expires; Redis keys
are ``prefix + sha256(token)``, so a token never appears in Redis as it is. Values are JSON
(bytes are kept as their UTF-8 text).
"""

from __future__ import annotations

import hashlib
import importlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog

__all__ = ["MemoryPanelStore", "PanelItem", "PanelStore", "PanelStoreError", "RedisPanelStore"]
_log = structlog.get_logger(__name__)


class PanelStoreError(Exception):
    """The shared store could not be reached: the caller answers 503, never a guess."""


@dataclass(frozen=True, slots=True)
class PanelItem:
    """What was put: the value (bytes come back as bytes) and the patient's keyed hash."""

    value: Any
    patient_ref: str


class PanelStore(Protocol):
    #: whether calls wait on the network (callers then run them off the event loop)
    remote: bool

    def put(self, value: Any, patient_ref: str) -> str:
        """Store ``value`` for this store's lifetime (TTL) and return a new token."""
        ...

    def get(self, token: str) -> PanelItem | None:
        """The item, or None when unknown or expired."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _encode(value: Any, patient_ref: str) -> bytes:
    if isinstance(value, bytes):
        return orjson.dumps({"p": patient_ref, "b": value.decode()})
    return orjson.dumps({"p": patient_ref, "v": value})


def _decode(raw: bytes) -> PanelItem:
    doc = orjson.loads(raw)
    value = doc["b"].encode() if "b" in doc else doc["v"]
    return PanelItem(value, str(doc["p"]))


class MemoryPanelStore:
    """One process's memory: thread-safe, bounded (oldest dropped first), items expire."""

    remote = False

    def __init__(self, ttl_s: float = 1800.0, max_items: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_items
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, value: Any, patient_ref: str) -> str:
        token = new_token()
        raw = _encode(value, patient_ref)  # the same round trip as Redis: JSON or it fails
        with self._lock:
            self._items[token] = (time.monotonic() + self._ttl, raw)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> PanelItem | None:
        with self._lock:
            item = self._items.get(token)
            if item is None or item[0] < time.monotonic():
                self._items.pop(token, None)
                return None
            raw = item[1]
        return _decode(raw)


class _Redis(Protocol):
    def set(self, name: str, value: bytes, *, px: int) -> Any: ...

    def get(self, name: str) -> bytes | None: ...


class RedisPanelStore:
    """Items in Redis (``SET key value PX ttl``), shared by every worker and pod."""

    remote = True

    def __init__(self, client: _Redis, *, ttl_s: float = 1800.0,
                 prefix: str = "hypermarker:panel:") -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, ttl_s: float = 1800.0, prefix: str = "hypermarker:panel:",
                 timeout_s: float = 0.5) -> RedisPanelStore:
        try:
            redis = importlib.import_module("redis")
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise RuntimeError("the shared panel store needs the 'redis' package") from exc
        client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s)
        return cls(client, ttl_s=ttl_s, prefix=prefix)

    def _key(self, token: str) -> str:
        return self._prefix + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def put(self, value: Any, patient_ref: str) -> str:
        token = new_token()
        raw = _encode(value, patient_ref)
        try:
            self._client.set(self._key(token), raw, px=self._ttl_ms)
        except Exception as exc:  # any client/network failure
            _log.warning("panel_store_unavailable", error=type(exc).__name__)
            raise PanelStoreError("the shared panel store is unavailable") from None
        return token

    def get(self, token: str) -> PanelItem | None:
        try:
            raw = self._client.get(self._key(token))
        except Exception as exc:
            _log.warning("panel_store_unavailable", error=type(exc).__name__)
            raise PanelStoreError("the shared panel store is unavailable") from None
        return None if raw is None else _decode(raw)
