"""The SMART-on-FHIR panel the card links to.

``GET /panel/launch?iss=...&launch=...`` is the SMART App Launch 2.x EHR launch. ``iss`` must
be one of the configured EHRs (``HYPERMARKER_SMART_EHRS``): no other server is contacted and
the browser is never sent to an authorization endpoint that an unlisted server names. The
service reads the EHR's ``.well-known/smart-configuration`` and redirects to its authorize
endpoint with PKCE (S256) and a state; on ``GET /panel/callback`` it exchanges the code for a
token whose response carries the card's ``appContext`` ({"assessment": <token>}) and the
patient in context. Only if that patient is the one the assessment was made for does it read
that Patient's name for the banner (:mod:`service.panel_patient`; none if the EHR gives none)
and issue a view grant and redirect to ``GET /panel/view/{grant}``: the panel opens only
after a launch (the card's own token is not a view grant). Tokens, launches and grants live
in the shared panel store (:mod:`service.panel_store`), so any worker or replica can answer
each step.
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
from service.app_state import AppState
from service.errors import BadRequest, NotFound, Unauthorized
from service.panel import render_panel
from service.panel_patient import read_patient_name
from service.panel_rationale import rationale_html

router = APIRouter(tags=["SMART panel"])


def _callback_url(request: Request, base: str | None) -> str:
    root = (base or str(request.base_url)).rstrip("/")
    return root + "/panel/callback"


@router.get("/panel/view/{grant}", response_class=HTMLResponse)
async def view(grant: str, state: StateDep) -> HTMLResponse:
    """The panel for one assessment, after a SMART launch (``grant`` from the callback)."""
    launched = await run_in_threadpool(state.launches.get, grant)
    if launched is None or not isinstance(launched.value, dict) or launched.value.get(
            "kind") != "view":
        raise NotFound("this panel link has expired or was not opened from the EHR; reopen "
                       "the card")
    item = await run_in_threadpool(state.panel.get, str(launched.value.get("assessment")))
    if item is None or item.patient_ref != launched.patient_ref:
        raise NotFound("this assessment has expired; reopen the card")
    fv = feature_vector_from_document(orjson.loads(item.value))
    a = await run_in_threadpool(state.pipeline.full_assessment, fv)
    explanation = None
    if state.rationale is not None and state.rationale.enabled:
        explanation = rationale_html(await state.rationale.for_panel(
            a, str(launched.value.get("assessment")), item.patient_ref))
    name = launched.value.get("name")  # read from the EHR at launch (never an id)
    return HTMLResponse(render_panel(a, features=fv, rationale_html=explanation,
                                     patient_name=name if isinstance(name, str) else None),
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@router.get("/panel/launch")
async def launch(request: Request, state: StateDep, iss: str, launch: str
                 ) -> RedirectResponse:
    """SMART EHR launch: redirect to the configured EHR's authorization endpoint."""
    ehr = iss.rstrip("/")
    if ehr not in state.settings.smart_ehrs:
        raise BadRequest("iss is not an EHR configured for the SMART launch "
                         "(HYPERMARKER_SMART_EHRS)", "iss")
    try:
        r = await state.http.get(ehr + "/.well-known/smart-configuration",
                                 headers={"Accept": "application/json"})
        config = r.json() if r.status_code == 200 else {}
    except Exception as e:  # unreachable or not JSON: a clear 400, not a 500
        raise BadRequest("could not read the EHR's SMART configuration", "iss") from e
    authorize = config.get("authorization_endpoint") if isinstance(config, dict) else None
    token_url = config.get("token_endpoint") if isinstance(config, dict) else None
    if not (isinstance(authorize, str) and isinstance(token_url, str)):
        raise BadRequest("the EHR's SMART configuration lacks its endpoints", "iss")
    if not _secure_enough(authorize, state) or not _secure_enough(token_url, state):
        raise BadRequest("the EHR's SMART endpoints must be https", "iss")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
    st = await run_in_threadpool(state.launches.put, {
        "kind": "launch", "verifier": verifier, "token_url": token_url, "iss": ehr}, "")
    query = urlencode({
        "response_type": "code", "client_id": state.settings.smart_client_id,
        "redirect_uri": _callback_url(request, state.settings.public_base_url),
        "launch": launch, "scope": state.settings.smart_scope, "state": st, "aud": ehr,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    return RedirectResponse(f"{authorize}?{query}", status_code=302)


@router.get("/panel/callback")
async def callback(request: Request, state: StateDep, code: str
                   ) -> RedirectResponse:
    """Exchange the code, read appContext, check the patient, show the panel."""
    st = request.query_params.get("state")
    pending = await run_in_threadpool(state.launches.get, st or "")
    if pending is None or not isinstance(pending.value, dict) or pending.value.get(
            "kind") != "launch":
        raise Unauthorized()
    launch: dict[str, Any] = pending.value
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
    assessment = str((ctx.get("assessment") if isinstance(ctx, dict) else None) or "")
    item = await run_in_threadpool(state.panel.get, assessment)
    if item is None:
        raise NotFound("this assessment has expired; reopen the card")
    patient = tok.get("patient")
    if not patient or state.patient_ref(str(patient)) != item.patient_ref:
        raise Unauthorized()
    name = await read_patient_name(state.http, launch["iss"], str(patient),
                                   str(tok["access_token"]))
    grant = await run_in_threadpool(state.launches.put, {
        "kind": "view", "assessment": assessment, "iss": launch["iss"], "name": name},
        item.patient_ref)
    return RedirectResponse(f"/panel/view/{grant}", status_code=303)


def _secure_enough(url: str, state: AppState) -> bool:
    """https, or http where plain-http FHIR servers are allowed (local profile)."""
    return url.startswith("https://") or (state.settings.allow_http_fhir
                                          and url.startswith("http://"))
