"""``GET /cds-services``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import StateDep, authenticate
from service.discovery import SERVICES
from service.schemas.cds_hooks import Discovery

router = APIRouter(tags=["CDS Hooks"])


@router.get("/cds-services", response_model=Discovery, response_model_exclude_none=True)
async def discovery(request: Request, state: StateDep) -> Discovery:
    """CDS Hooks discovery: the services and their prefetch templates."""
    await authenticate(request, state)
    return Discovery(services=list(SERVICES))
