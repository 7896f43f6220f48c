"""FastAPI app factory: ``create_app(settings)``; the lifespan loads the model once.

Run it with ``hypermarker serve`` (embedded defaults) or any ASGI server:
``uvicorn --factory service.app:create_app``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from audit_store.store import AuditStore
from models.pipeline import Pipeline
from service.api import contract, discovery, feedback, fhir_operation, health, hooks, panel
from service.api.deps import loc_path
from service.app_state import AppState, ClientVerifier
from service.audit_writing import record_rationale
from service.errors import ServiceError, operation_outcome
from service.logging import configure_logging
from service.metrics import make_metrics
from service.panel_store import MemoryPanelStore, PanelStore, PanelStoreError, RedisPanelStore
from service.prefetch import PrefetchResolver
from service.rationale_delivery import build_delivery
from service.responses import FhirJSON, JSONBody
from service.settings import AuthMode, Settings

log = structlog.get_logger("hypermarker.service")
FHIR_JSON = "application/fhir+json"


def _verifier(settings: Settings, http: httpx.Client) -> ClientVerifier:
    if settings.auth_mode is AuthMode.DEMO:
        from service.auth.demo import DemoModeAuth

        return DemoModeAuth()
    from service.auth.config import TrustedIssuer
    from service.auth.jwks import JwksCache
    from service.auth.replay import MemoryReplayCache, RedisReplayCache
    from service.auth.verifier import CdsJwtVerifier

    issuers = [TrustedIssuer.from_mapping(i) for i in settings.trusted_issuers]
    replay = (RedisReplayCache.from_url(settings.replay_cache_url) if settings.replay_cache_url
              else MemoryReplayCache())
    return CdsJwtVerifier(issuers, JwksCache(client=http), replay)


def _panel_stores(settings: Settings) -> tuple[PanelStore, PanelStore]:
    """Panel tokens (30 minutes) and launches/view grants (10 minutes): in Redis when a shared
    store is configured (every worker and pod sees them), else in this process."""
    url = settings.shared_state_url
    if url is None:
        return MemoryPanelStore(), MemoryPanelStore(ttl_s=600.0)
    return (RedisPanelStore.from_url(url),
            RedisPanelStore.from_url(url, ttl_s=600.0, prefix="hypermarker:launch:"))


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` from the Swagger UI files of the ``swagger-ui-bundle`` package: a hospital
    network without internet access still sees the API (FastAPI's default loads a CDN)."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png")


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
           ) -> JSONBody:
    return FhirJSON(body, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, *,
               llm_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The app; ``llm_transport``: the httpx transport of the LLM client (tests), else the
    network."""
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # verifies checksums and feature schema or raises
        pipeline = Pipeline.load(settings.artifacts_dir, provider=settings.provider,
                                 threads=settings.onnx_threads, guideline=settings.guideline,
                                 explain_top=settings.explain_top)
        if settings.database_url.startswith("sqlite:///"):
            Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True)
        store = AuditStore.open(settings.database_url, settings.spool_dir,
                                migrate=settings.migrate_on_start)
        replayed = store.replay_spool()
        sync_http = httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0))
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fhir_timeout_s,
                                  connect=min(1.0, settings.fhir_timeout_s)),
            transport=httpx.AsyncHTTPTransport(retries=1),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        metrics = make_metrics()
        scorer = pipeline.scorer
        metrics.model.info({"id": scorer.manifest.model_id, "version": scorer.manifest.version,
                            "provider": scorer.provider, "form": scorer.form})
        state = AppState(settings, pipeline, store, _verifier(settings, sync_http), metrics, http,
                         PrefetchResolver(http, settings.fhir_timeout_s, settings.fhir_max_pages,
                                          settings.allow_http_fhir), *_panel_stores(settings))
        delivery = build_delivery(settings, metrics,
                                  lambda record: record_rationale(state, record),
                                  transport=llm_transport)
        state.rationale = delivery
        delivery.start()
        await run_in_threadpool(pipeline.warm_up)
        # Everything built so far lives as long as the process: move it out of the collector's
        # reach, so that a full collection scans only per-request garbage (a full pass over the
        # model, FHIR classes and validators took 60-110 ms and set the latency p99).
        gc.collect()
        gc.freeze()
        state.ready = True
        app.state.hm = state
        log.info("service_started", profile=settings.profile.value,
                 auth=settings.auth_mode.value, model=scorer.manifest.model_id,
                 llm=delivery.enabled,
                 version=scorer.manifest.version, provider=scorer.provider,
                 audit_replayed=replayed)
        try:
            yield
        finally:
            state.ready = False
            await delivery.aclose()
            await http.aclose()
            sync_http.close()
            store.close()

    app = FastAPI(
        title="Hypermarker hypertension CDS service",
        version="0.1.0",
        description="CDS Hooks 2.0 service ranking antihypertensive options (research software: "
                    "simulated training data, not clinically validated).",
        lifespan=lifespan,
        default_response_class=JSONBody,
        docs_url=None, redoc_url=None,  # served below from packaged assets, not a CDN
    )
    _offline_docs(app)
    contract.install(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"], max_age=600)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONBody:
        return _error(exc.status_code, exc.outcome(), exc.headers or None)

    @app.exception_handler(PanelStoreError)
    async def _panel_store(request: Request, exc: PanelStoreError) -> JSONBody:
        return _error(503, operation_outcome("transient", str(exc)), {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONBody:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        path = loc_path(first.get("loc", ()))
        return _error(400, operation_outcome("invalid", f"{path}: {first.get('msg')}", path))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONBody:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return _error(exc.status_code, operation_outcome(code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONBody:
        log.error("unhandled_error", error=type(exc).__name__, path=request.url.path)
        return _error(500, operation_outcome("exception", "internal error"))

    for r in (discovery.router, hooks.router, feedback.router, fhir_operation.router,
              panel.router, health.router):
        app.include_router(r)
    return app
