"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from audit_store.migrate import current_revision, head_revision
from service.api.deps import StateDep
from service.app_state import AppState
from service.responses import JSONBody

router = APIRouter(tags=["Operations"])


@router.get("/health/live")
def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _schema_at_head(state: AppState) -> bool:
    """Whether the audit schema is at head: checked (once it is) when the service does not
    migrate at start (HYPERMARKER_MIGRATE_ON_START=false: a migration job does)."""
    if state.settings.migrate_on_start or state.schema_checked:
        return True
    try:
        state.schema_checked = current_revision(state.store.engine) == head_revision()
    except Exception:  # unreachable or no version table: not ready, said in the body
        return False
    return state.schema_checked


@router.get("/health/ready", responses={503: {"description": "Not ready"}})
async def ready(state: StateDep) -> JSONBody:
    """Ready when the model is loaded and verified and the audit database answers."""
    db = await run_in_threadpool(state.store.ping)
    schema = db and await run_in_threadpool(_schema_at_head, state)
    scorer = state.pipeline.scorer
    body: dict[str, Any] = {
        "status": "ok" if (state.ready and db and schema) else "unavailable",
        "model": {"id": scorer.manifest.model_id, "version": scorer.manifest.version,
                  "verified": state.ready, "provider": scorer.provider, "form": scorer.form},
        "database": ("ok" if schema else "schema not at head: run the migration job") if db
        else "unreachable (assessments are spooled)",
        "audit_spool_depth": state.store.spool_depth(),
    }
    return JSONBody(body, status_code=200 if body["status"] == "ok" else 503)


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition."""
    state.metrics.spool_depth.set(state.store.spool_depth())
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
