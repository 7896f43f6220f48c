"""A small real FHIR R4 server on loopback for tests: read and search over loaded resources.

Search semantics implemented (what the service's prefetch templates use): ``patient=`` (also
``subject=``), token ``code=system|code,...`` (any coding of ``code``), ``status=``,
``_sort=-date`` (by effectiveDateTime / authoredOn / recordedDate), ``_count`` with ``next``
links (``_offset``), searchset Bundles with ``total``. Every request must carry the bearer
token the server was created with, like a real SMART-protected server; requests are recorded.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


def _date(r: dict[str, Any]) -> str:
    for k in ("effectiveDateTime", "authoredOn", "recordedDate", "onsetDateTime", "issued"):
        if isinstance(r.get(k), str):
            return str(r[k])
    period = r.get("effectivePeriod") or {}
    return str(period.get("start", ""))


def _patient_of(r: dict[str, Any]) -> str | None:
    for k in ("subject", "patient"):
        ref = (r.get(k) or {}).get("reference", "")
        if ref:
            return str(ref).split("/")[-1].removeprefix("urn:uuid:")
    return None


class FhirStore:
    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_id: dict[tuple[str, str], dict[str, Any]] = {}
        for r in resources:
            self.by_type[r["resourceType"]].append(r)
            if "id" in r:
                self.by_id[(r["resourceType"], r["id"])] = r

    def search(self, rtype: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = list(self.by_type.get(rtype, []))
        pid = (params.get("patient") or params.get("subject") or [None])[0]
        if pid:
            pid = pid.split("/")[-1]
            out = [r for r in out if _patient_of(r) == pid]
        if "code" in params:
            wanted = {tuple(t.split("|", 1)) if "|" in t else ("", t)
                      for t in params["code"][0].split(",")}
            def match(r: dict[str, Any]) -> bool:
                for c in (r.get("code") or {}).get("coding", []):
                    if (c.get("system"), c.get("code")) in wanted or ("", c.get("code")) in wanted:
                        return True
                return False
            out = [r for r in out if match(r)]
        if "status" in params:
            allowed = set(params["status"][0].split(","))
            out = [r for r in out if r.get("status") in allowed]
        if params.get("_sort", [""])[0] == "-date":
            out.sort(key=_date, reverse=True)
        return out


def bundle_resources(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for e in bundle.get("entry", []):
        if isinstance(e, dict) and isinstance(e.get("resource"), dict):
            yield e["resource"]


def prefetch_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource of a CDS Hooks request's prefetch (what its EHR's server holds)."""
    out = [request["prefetch"]["patient"]]
    for key, value in request["prefetch"].items():
        if key != "patient":
            out.extend(bundle_resources(value))
    return out


def with_fhir_server(request: dict[str, Any], base: str, token: str) -> dict[str, Any]:
    """``request`` with ``fhirServer`` and a bearer ``fhirAuthorization`` for ``base``."""
    request["fhirServer"] = base
    request["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer",
                                    "expires_in": 30, "scope": "patient/*.read",
                                    "subject": "hypermarker",
                                    "patient": request["context"]["patientId"]}
    return request


@contextmanager
def serve_fhir(resources: Iterable[dict[str, Any]], token: str = "test-token",
               fail: Iterable[str] = (), reads: dict[str, dict[str, Any]] | None = None
               ) -> Iterator[tuple[str, list[str]]]:
    """Run the server; yields (base URL, list of request paths received). ``fail``: resource
    types whose searches answer 500 (a broken EHR endpoint); ``reads``: ``Type/id`` -> the
    resource a read answers with instead of the stored one (an EHR answering with another
    record)."""
    store = FhirStore(resources)
    failing = frozenset(fail)
    replaced = dict(reads or {})
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {token}":
                self._send(401, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "security"}]})
                return
            parts = urlsplit(self.path)
            segs = [s for s in parts.path.split("/") if s]
            params = parse_qs(parts.query)
            if segs and segs[0] in failing:
                self._send(500, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "exception"}]})
                return
            if len(segs) == 2:
                r = replaced.get(f"{segs[0]}/{segs[1]}") or store.by_id.get((segs[0], segs[1]))
                if r is None:
                    self._send(404, {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "not-found"}]})
                else:
                    self._send(200, r)
                return
            matches = store.search(segs[0], params)
            count = int(params.get("_count", ["50"])[0])
            offset = int(params.get("_offset", ["0"])[0])
            page = matches[offset: offset + count]
            host = f"http://{self.headers.get('Host')}"
            bundle: dict[str, Any] = {
                "resourceType": "Bundle", "type": "searchset", "total": len(matches),
                "link": [], "entry": [{"fullUrl": f"{host}/{r['resourceType']}/{r.get('id')}",
                                       "resource": r, "search": {"mode": "match"}}
                                      for r in page]}
            if offset + count < len(matches):
                q = {k: v[0] for k, v in params.items()}
                q["_offset"] = str(offset + count)
                bundle["link"].append({"relation": "next",
                                       "url": f"{host}/{segs[0]}?{urlencode(q)}"})
            self._send(200, bundle)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
