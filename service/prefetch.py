"""Prefetch resolution: use what the EPR sent, fetch what it did not, within a time budget.

CDS Hooks 2.0 semantics (cdshooks.md 1.3-1.4): a key that is absent was not satisfied, so the
service fetches it from ``fhirServer`` with ``fhirAuthorization``; ``null`` means "no data" and is
kept; an OperationOutcome means the client failed to prefetch it, so the service fetches it
too; a searchset Bundle with a ``next`` link is paged. Missing keys are fetched in parallel with
one overall deadline. When a required key cannot be had the call fails with 412.

The access token is only ever put in the Authorization header; it is never logged or stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from service.errors import BadRequest, PreconditionFailed
from service.schemas.cds_hooks import HookRequest

FHIR_JSON = "application/fhir+json"


@dataclass
class PrefetchResult:
    """Resolved prefetch: key -> resource, Bundle or None; which keys were fetched, which
    could not be had and why (no token, timeout, HTTP status)."""

    data: dict[str, Any]
    fetched: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def render(template: str, request: HookRequest) -> str:
    """Fill the ``{{context.x}}`` tokens the templates use (URL-encoded)."""
    ctx = request.context
    out = template.replace("{{context.patientId}}", quote(ctx.patientId, safe=""))
    if "{{" in out:
        user = ctx.userId or ""
        out = out.replace("{{context.userId}}", quote(user, safe=""))
        out = out.replace("{{context.encounterId}}", quote(ctx.encounterId or "", safe=""))
    return out


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


class PrefetchResolver:
    """Fetches missing prefetch keys with one shared httpx client."""

    def __init__(self, client: httpx.AsyncClient, timeout_s: float, max_pages: int,
                 allow_http: bool) -> None:
        self._client = client
        self._timeout = timeout_s
        self._max_pages = max_pages
        self._allow_http = allow_http

    async def resolve(self, request: HookRequest, templates: dict[str, str],
                      required: frozenset[str]) -> PrefetchResult:
        sent = request.prefetch or {}
        result = PrefetchResult({})
        todo: dict[str, str] = {}
        for key, template in templates.items():
            if key in sent and not _is_outcome(sent[key]):
                result.data[key] = sent[key]
            else:
                todo[key] = render(template, request)
        if request.fhirServer and not self._allow_http and not request.fhirServer.startswith(
                "https://"):
            raise BadRequest("fhirServer must use https", "fhirServer")
        can_fetch = request.fhirServer is not None and request.fhirAuthorization is not None
        # Page searchset bundles the client sent with a next link (when we can).
        paging = [k for k, v in result.data.items()
                  if isinstance(v, dict) and v.get("resourceType") == "Bundle" and _next_link(v)]
        if todo or (paging and can_fetch):
            if not can_fetch:
                for key in todo:
                    result.unavailable[key] = "not prefetched and no fhirServer/fhirAuthorization"
            else:
                await self._fetch_all(request, todo, paging if can_fetch else [], result)
        missing = sorted(k for k in required if k not in result.data)
        if missing:
            reasons = "; ".join(f"{k}: {result.unavailable.get(k, 'missing')}" for k in missing)
            raise PreconditionFailed(f"required FHIR data could not be obtained ({reasons})",
                                     "prefetch")
        return result

    async def _fetch_all(self, request: HookRequest, todo: dict[str, str], paging: list[str],
                         result: PrefetchResult) -> None:
        if request.fhirServer is None or request.fhirAuthorization is None:
            raise PreconditionFailed("no fhirServer/fhirAuthorization to fetch with", "prefetch")
        base = request.fhirServer.rstrip("/") + "/"
        headers = {"Authorization": f"Bearer {request.fhirAuthorization.access_token}",
                   "Accept": FHIR_JSON}

        async def one(key: str, url: str, first: dict[str, Any] | None) -> None:
            try:
                value = first if first is not None else await self._get(url, headers)
                pages = 0
                while (isinstance(value, dict) and value.get("resourceType") == "Bundle"
                       and (nxt := _next_link(value)) and pages < self._max_pages):
                    page = await self._get(urljoin(base, nxt), headers)
                    if not isinstance(page, dict):
                        break
                    value = {**value, "entry": (value.get("entry") or []) + (
                        page.get("entry") or []), "link": page.get("link") or []}
                    pages += 1
                result.data[key] = value
                if first is None:
                    result.fetched.append(key)
            except _FetchError as e:
                if first is not None:
                    result.data[key] = first  # keep the pages the client sent
                result.unavailable[key] = e.reason

        tasks = [one(k, urljoin(base, q), None) for k, q in todo.items()]
        tasks += [one(k, "", result.data[k]) for k in paging]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=self._timeout)
        except TimeoutError:
            for key in todo:
                if key not in result.data:
                    result.unavailable.setdefault(key, f"timed out after {self._timeout:g} s")

    async def _get(self, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
        try:
            r = await self._client.get(url, headers=headers)
        except httpx.HTTPError as e:
            raise _FetchError(f"FHIR server unreachable ({type(e).__name__})") from e
        if r.status_code == 404 and "?" not in url:
            return None  # a read of a resource that does not exist: satisfied, no data
        if r.status_code != 200:
            raise _FetchError(f"FHIR server answered {r.status_code}")
        try:
            body = r.json()
        except ValueError as e:
            raise _FetchError("FHIR server sent invalid JSON") from e
        if not isinstance(body, dict):
            raise _FetchError("FHIR server sent a non-object body")
        if _is_outcome(body):
            raise _FetchError("FHIR server sent an OperationOutcome")
        return body


class _FetchError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
