"""What the app holds for its lifetime (created in the lifespan, reached through dependencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from audit_store.records import patient_ref
from models.pipeline import Pipeline
from service.metrics import Metrics
from service.panel_store import MemoryPanelStore, PanelStore
from service.prefetch import PrefetchResolver
from service.rationale_delivery import RationaleDelivery
from service.settings import Settings


class ClientVerifier(Protocol):
    def verify(self, authorization_header: str | None, audience: str) -> Any: ...


@dataclass
class AppState:
    settings: Settings
    pipeline: Pipeline
    store: Any
    verifier: ClientVerifier
    metrics: Metrics
    http: httpx.AsyncClient
    prefetch: PrefetchResolver
    #: assessments behind the card's panel link (30 minutes)
    panel: PanelStore = field(default_factory=MemoryPanelStore)
    #: pending SMART launches and the view grants of completed ones (10 minutes)
    launches: PanelStore = field(default_factory=lambda: MemoryPanelStore(ttl_s=600.0))
    ready: bool = False
    #: the audit schema was seen at head (when a migration job, not the service, migrates)
    schema_checked: bool = False
    #: the LLM rationale (issue 16); None until the lifespan builds it
    rationale: RationaleDelivery | None = None

    def patient_ref(self, patient_id: str) -> str:
        """Keyed hash of the patient id: the audit store never holds the id itself."""
        return patient_ref(patient_id, self.settings.patient_ref_key.get_secret_value().encode())
