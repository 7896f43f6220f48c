"""What the app holds for its lifetime (created in the lifespan, reached through dependencies)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from service.audit.records import patient_ref
from service.engine import Engine
from service.metrics import Metrics
from service.prefetch import PrefetchResolver
from service.settings import Settings


class ClientVerifier(Protocol):
    def verify(self, authorization_header: str | None, audience: str) -> Any: ...


class PanelCache:
    """Short-lived items behind unguessable tokens: the patient's features for the SMART panel
    (re-assessed with every option explained when the panel opens), and pending launches."""

    def __init__(self, ttl_s: float = 1800.0, max_items: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_items
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, value: Any, patient_ref: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._items[token] = (time.monotonic() + self._ttl, {"value": value,
                                                                 "patient_ref": patient_ref})
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> dict[str, Any] | None:
        """{"value": what was put, "patient_ref": keyed hash} or None when expired."""
        with self._lock:
            item = self._items.get(token)
            if item is None or item[0] < time.monotonic():
                self._items.pop(token, None)
                return None
            return item[1]


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    store: Any
    verifier: ClientVerifier
    metrics: Metrics
    http: httpx.AsyncClient
    prefetch: PrefetchResolver
    panel: PanelCache = field(default_factory=PanelCache)
    launches: PanelCache = field(default_factory=lambda: PanelCache(ttl_s=600.0))
    ready: bool = False

    def patient_ref(self, patient_id: str) -> str:
        """Keyed hash of the patient id: the audit store never holds the id itself."""
        return patient_ref(patient_id, self.settings.patient_ref_key.get_secret_value().encode())
