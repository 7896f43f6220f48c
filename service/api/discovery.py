"""``GET /cds-services``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.api.deps import authenticate, get_state
from service.discovery import SERVICES
from service.schemas.cds_hooks import Discovery
from service.state import AppState

router = APIRouter(tags=["CDS Hooks"])


@router.get("/cds-services", response_model=Discovery, response_model_exclude_none=True)
def discovery(request: Request, state: AppState = Depends(get_state)) -> Discovery:
    """CDS Hooks discovery: the services and their prefetch templates."""
    authenticate(request, state)
    return Discovery(services=list(SERVICES))
