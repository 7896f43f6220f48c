"""``GET /cds-services``."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import ClientDep
from service.discovery import SERVICES
from service.schemas.cds_hooks import Discovery

router = APIRouter(tags=["CDS Hooks"])


@router.get("/cds-services", response_model=Discovery, response_model_exclude_none=True)
async def discovery(client: ClientDep) -> Discovery:
    """CDS Hooks discovery: the services and their prefetch templates."""
    return Discovery(services=list(SERVICES))
