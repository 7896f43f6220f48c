"""The panel in a real headless Chromium, served by a real uvicorn server on loopback, audited
by axe-core (tests/axe) at 400 px wide; and a browser CDS client on another origin calling the
service with CORS configured as the README says."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.explainer import Explainer
from models.scorer import Scorer
from service.panel import render_panel
from tests.axe.runner import audit, require_axe
from tests.service import panel_cases
from tests.service.conftest import example_request
from tests.service.live_server import serve
from tests.service.smart_ehr import FakeEhr, launch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def client_site() -> Iterator[str]:
    """The browser client's own origin: a static page server (the page is written per test)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ehr: FakeEhr, client_site: str
           ) -> Iterator[str]:
    # CORS as the README says: HYPERMARKER_CORS_ORIGINS, a plain origin or a JSON list
    yield from serve(tmp_path_factory.mktemp("browser"), smart_ehrs=ehr.url,
                     cors_origins=client_site)


class _Page(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                    "chromium); .ci/run installs it")
def test_the_panel_renders_in_chromium(server: str, ehr: FakeEhr, tmp_path: Path) -> None:
    """Card over real HTTP -> panel page -> Chromium's DOM has the ranked table and flags,
    and a screenshot is produced."""
    card = httpx.post(server + "/cds-services/hypertension-treatment",
                      json=example_request(), timeout=30).json()["cards"][0]
    ehr.app_context, ehr.patient = card["links"][0]["appContext"], "example-patient-1"
    with httpx.Client(timeout=30) as http:
        r = launch(http, ehr, server)
    assert r.status_code == 303, r.text
    url = server + r.headers["location"]
    profile = tmp_path / "profile"
    assert CHROMIUM is not None

    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    shot = tmp_path / "panel.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={shot}", "--window-size=1200,1600", url],
                   capture_output=True, timeout=120, check=True)

    assert "data-group=\"in-step\"" in dom
    assert dom.count("data-option=") >= 10
    assert "contraindicated" in dom
    assert "Data missing or not used" in dom
    assert "Where the data came from" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def _assert_accessible(measured: dict[str, Any]) -> None:
    """axe finds nothing; nothing scrolls sideways at 400 px with every disclosure open;
    every focusable element takes focus, in document order (no positive tabindex)."""
    assert measured["violations"] == []
    assert measured["scrollWidth"] <= 400
    assert measured["scrollWidth"] <= measured["clientWidth"]
    assert measured["focusable"] >= 1
    assert measured["positiveTabindex"] == 0
    assert measured["notFocusable"] == []


def test_the_launched_panel_passes_axe_at_400_px(server: str, ehr: FakeEhr,
                                                 tmp_path: Path) -> None:
    """The page a SMART launch shows, as served, audited by axe-core in Chromium."""
    require_axe()
    card = httpx.post(server + "/cds-services/hypertension-treatment",
                      json=example_request(), timeout=30).json()["cards"][0]
    ehr.app_context, ehr.patient = card["links"][0]["appContext"], "example-patient-1"
    with httpx.Client(timeout=30) as http:
        r = launch(http, ehr, server)
        page = http.get(server + r.headers["location"]).text

    _assert_accessible(audit(page, tmp_path))


@pytest.mark.parametrize("case", ["every_group", "pathway", "cannot_assess"])
def test_every_kind_of_panel_passes_axe_at_400_px(case: str, scorer: Scorer,
                                                  explainer: Explainer,
                                                  tmp_path: Path) -> None:
    """An assessed patient with every group of options, a pathway patient, a cannot-assess
    patient with missing and rejected data."""
    a = getattr(panel_cases, case)(scorer, explainer)

    _assert_accessible(audit(render_panel(a), tmp_path))


def test_the_audit_fails_on_a_planted_violation(scorer: Scorer, explainer: Explainer,
                                                tmp_path: Path) -> None:
    """The check can fail: no lang, an unlabelled header, a page wider than 400 px."""
    page = render_panel(panel_cases.cannot_assess(scorer, explainer))
    planted = (page.replace("<html lang='en'>", "<html>")
               .replace("<th scope='col'>Data item</th>", "<th scope='col'></th>")
               .replace("<main ", "<main style='min-width:600px' "))

    measured = audit(planted, tmp_path)

    assert {v["id"] for v in measured["violations"]} >= {"html-has-lang", "empty-table-header"}
    assert measured["scrollWidth"] > 400


_CLIENT_JS = """
<!doctype html><html><body><pre id="out">pending</pre><script>
const req = %s;
(async () => {
  const out = document.getElementById("out");
  try {
    const disc = await fetch("%s/cds-services");
    const services = (await disc.json()).services.map(s => s.id);
    const call = await fetch("%s/cds-services/hypertension-treatment", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(req)});
    const body = await call.json();
    out.textContent = JSON.stringify({services, status: call.status,
      requestId: call.headers.get("X-Request-ID"), cards: body.cards.length,
      summary: body.cards[0].summary});
  } catch (e) { out.textContent = "ERROR " + e; }
})();
</script></body></html>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                    "chromium); .ci/run installs it")
def test_a_browser_cds_client_on_another_origin_connects(server: str, client_site: str,
                                                         tmp_path: Path) -> None:
    """A CDS client page on another origin (as the CDS Hooks Sandbox is) calls discovery and
    a hook from Chromium: the CORS preflight passes and X-Request-ID is readable."""
    _Page.body = (_CLIENT_JS % (json.dumps(example_request()), server, server)).encode()
    assert CHROMIUM is not None

    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=20000", "--dump-dom", client_site + "/"],
                         capture_output=True, text=True, timeout=120, check=True).stdout

    out = dom.split('<pre id="out">')[1].split("</pre>")[0]
    assert out.startswith("{"), out
    result = json.loads(out.replace("&quot;", '"').replace("&amp;", "&"))
    assert "hypertension-treatment" in result["services"]
    assert result["status"] == 200
    assert result["requestId"]
    assert result["cards"] >= 1


def test_without_cors_the_preflight_is_refused(tmp_path: Path) -> None:
    """Unconfigured, a browser on another origin gets no CORS approval (the default is
    closed; the README says how to open it)."""
    for base in serve(tmp_path):
        r = httpx.options(base + "/cds-services/hypertension-treatment", headers={
            "Origin": "https://sandbox.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers
