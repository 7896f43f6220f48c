"""A SMART authorization server on loopback (configuration, authorize, token) for panel tests,
and the EHR-launch walk a browser makes through the service."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class FakeEhr:
    """Answers ``.well-known/smart-configuration`` and the token exchange; the token response
    carries ``app_context`` and ``patient`` (both may be changed between launches), and
    ``GET /Patient/<id>`` answers ``patient_resource`` when one is set. Every
    request it gets is counted (``hits``), so a test can show a server was never contacted."""

    def __init__(self, app_context: str = "{}", patient: str = "example-patient-1",
                 authorize_url: str | None = None) -> None:
        self.app_context, self.patient = app_context, patient
        #: the FHIR Patient answered at ``GET /Patient/<id>`` to the token "at" (None: 404)
        self.patient_resource: dict[str, Any] | None = None
        self.token_requests: list[dict[str, list[str]]] = []
        self.hits = 0
        ehr = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                ehr.hits += 1
                if self.path.endswith("/.well-known/smart-configuration"):
                    self._json({"authorization_endpoint": authorize_url or ehr.url + "/authorize",
                                "token_endpoint": ehr.url + "/token"})
                elif (self.path.startswith("/Patient/") and ehr.patient_resource is not None
                      and self.headers.get("Authorization") == "Bearer at"):
                    self._json(ehr.patient_resource)
                else:
                    self.send_response(404)
                    self.end_headers()

            def do_POST(self) -> None:
                ehr.hits += 1
                length = int(self.headers["Content-Length"])
                form = parse_qs(self.rfile.read(length).decode())
                ehr.token_requests.append(form)
                self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 60,
                            "patient": ehr.patient, "appContext": ehr.app_context})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Client(Protocol):
    def get(self, url: str, *, params: dict[str, str] | None = ...,
            follow_redirects: bool = ...) -> Any: ...


def launch(client: _Client, ehr: FakeEhr, base: str = "") -> Any:
    """``/panel/launch`` -> (the EHR's authorize page would log in and come back) ->
    ``/panel/callback``; returns the callback's response (303 to the view grant)."""
    r = client.get(f"{base}/panel/launch", params={"iss": ehr.url, "launch": "xyz"},
                   follow_redirects=False)
    assert r.status_code == 302, r.text
    auth = urlsplit(r.headers["location"])
    q = parse_qs(auth.query)
    assert auth.path == "/authorize"
    assert q["code_challenge_method"] == ["S256"]
    assert q["launch"] == ["xyz"]
    return client.get(f"{base}/panel/callback", params={"code": "c1", "state": q["state"][0]},
                      follow_redirects=False)

