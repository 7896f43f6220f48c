"""The SMART-on-FHIR panel the card links to.

``GET /panel/launch?iss=...&launch=...`` is the SMART App Launch 2.x EHR launch: discover the
EHR's endpoints (``.well-known/smart-configuration``), redirect to its authorize endpoint with
PKCE (S256) and a state, and on ``GET /panel/callback`` exchange the code for a token whose
response carries the card's ``appContext`` ({"assessment": <token>}) and the patient in
context. The panel is shown only if that patient is the one the assessment was made for.
``GET /panel/view/{token}`` renders the page (an unguessable capability that expires with the
assessment, 30 minutes).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from fhir_mappings.features import feature_vector_from_document
from service.api.deps import StateDep
from service.errors import BadRequest, NotFound, Unauthorized
from service.panel import render_panel

router = APIRouter(tags=["SMART panel"])


def _callback_url(request: Request, base: str | None) -> str:
    root = (base or str(request.base_url)).rstrip("/")
    return root + "/panel/callback"


@router.get("/panel/view/{token}", response_class=HTMLResponse)
async def view(token: str, state: StateDep) -> HTMLResponse:
    """The panel for one assessment."""
    item = state.panel.get(token)
    if item is None:
        raise NotFound("this assessment has expired; reopen the card")
    fv = feature_vector_from_document(orjson.loads(item["value"]))
    doc = await run_in_threadpool(state.engine.full_document, fv)
    return HTMLResponse(render_panel(doc),
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@router.get("/panel/launch")
async def launch(request: Request, state: StateDep, iss: str, launch: str
                 ) -> RedirectResponse:
    """SMART EHR launch: redirect to the EHR's authorization endpoint."""
    if not iss.startswith(("https://", "http://")) or (
            not state.settings.allow_http_fhir and not iss.startswith("https://")):
        raise BadRequest("iss must be the EHR's FHIR base URL", "iss")
    try:
        r = await state.http.get(iss.rstrip("/") + "/.well-known/smart-configuration",
                                 headers={"Accept": "application/json"})
        config = r.json() if r.status_code == 200 else {}
    except Exception as e:  # unreachable or not JSON: a clear 400, not a 500
        raise BadRequest("could not read the EHR's SMART configuration", "iss") from e
    authorize = config.get("authorization_endpoint")
    token_url = config.get("token_endpoint")
    if not authorize or not token_url:
        raise BadRequest("the EHR's SMART configuration lacks its endpoints", "iss")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
    st = state.launches.put({"verifier": verifier, "token_url": token_url, "iss": iss}, "")
    query = urlencode({
        "response_type": "code", "client_id": state.settings.smart_client_id,
        "redirect_uri": _callback_url(request, state.settings.public_base_url),
        "launch": launch, "scope": state.settings.smart_scope, "state": st, "aud": iss,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    return RedirectResponse(f"{authorize}?{query}", status_code=302)


@router.get("/panel/callback")
async def callback(request: Request, state: StateDep, code: str
                   ) -> RedirectResponse:
    """Exchange the code, read appContext, check the patient, show the panel."""
    st = request.query_params.get("state")
    pending = state.launches.get(st or "")
    if pending is None:
        raise Unauthorized()
    launch: dict[str, Any] = pending["value"]
    try:
        r = await state.http.post(launch["token_url"], data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": _callback_url(request, state.settings.public_base_url),
            "client_id": state.settings.smart_client_id, "code_verifier": launch["verifier"]},
            headers={"Accept": "application/json"})
        tok = r.json() if r.status_code == 200 else None
    except Exception as e:
        raise Unauthorized() from e
    if not isinstance(tok, dict) or "access_token" not in tok:
        raise Unauthorized()
    try:
        ctx = orjson.loads(tok.get("appContext") or "{}")
    except orjson.JSONDecodeError as e:
        raise BadRequest("appContext is not JSON", "appContext") from e
    assessment = ctx.get("assessment") if isinstance(ctx, dict) else None
    item = state.panel.get(str(assessment or ""))
    if item is None:
        raise NotFound("this assessment has expired; reopen the card")
    patient = tok.get("patient")
    if not patient or state.patient_ref(str(patient)) != item["patient_ref"]:
        raise Unauthorized()
    return RedirectResponse(f"/panel/view/{assessment}", status_code=303)
