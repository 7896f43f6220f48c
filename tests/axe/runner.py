"""Run axe-core (pinned by ``package-lock.json``) on an HTML page in headless Chromium.

:func:`audit` writes the page with axe and a probe script injected before ``</body>``, opens it
in headless Chromium at a given viewport width and reads back what the probe measured: axe's
violations (WCAG 2.0/2.1 A and AA and best practice), the page's scroll width with every
disclosure widget open, and a keyboard check (each focusable element takes focus; no positive
tabindex reorders them).

Needs Chromium and ``npm ci --prefix tests/axe``; :func:`require_axe` skips the calling test,
saying so, when either is missing, or fails it when ``HYPERMARKER_REQUIRE_AXE=1`` (CI, after
installing it).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "npm ci --prefix tests/axe"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files"]
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

_PROBE = """
<script>
(async () => {
  const out = {};
  const focusable = [...document.querySelectorAll(
    'a[href],button,input,select,textarea,summary,[tabindex]')];
  out.focusable = focusable.length;
  out.positiveTabindex = focusable.filter(el => el.tabIndex > 0).length;
  out.notFocusable = focusable.filter(el => { el.focus();
    return document.activeElement !== el; }).map(el => el.outerHTML.slice(0, 80));
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  out.scrollWidth = document.documentElement.scrollWidth;
  out.clientWidth = document.documentElement.clientWidth;
  try {
    const r = await axe.run(document, {runOnly: {type: 'tag', values: %s},
                                       resultTypes: ['violations']});
    out.violations = r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
  } catch (e) { out.error = String(e); }
  parent.postMessage(JSON.stringify(out), '*');
})();
</script>
"""

#: The page is audited in a frame exactly ``width`` px wide (a desktop Chromium window has a
#: minimum width of about 500 px, so the window alone cannot be 400 px wide).
_FRAME = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>audit</title>
</head><body style="margin:0"><iframe title="audited page" src="%s"
style="width:%dpx;height:900px;border:0;display:block"></iframe><script>
addEventListener('message', ev => { const pre = document.createElement('pre');
  pre.id = 'axe-probe'; pre.textContent = ev.data; document.body.appendChild(pre); });
</script></body></html>
"""


def _missing(reason: str) -> None:
    if os.environ.get("HYPERMARKER_REQUIRE_AXE") == "1":
        pytest.fail(f"{reason} (HYPERMARKER_REQUIRE_AXE=1)")
    pytest.skip(reason)


def require_axe() -> tuple[str, Path]:
    """Chromium's executable and axe.min.js, or skip the test saying how to install them."""
    if CHROMIUM is None:
        _missing("axe check: Chromium is not installed (apt-get install chromium)")
    if not AXE.is_file():
        _missing(f"axe-core not installed ({AXE.relative_to(HERE.parent.parent)} missing): "
                 f"run `{INSTALL}`")
    assert CHROMIUM is not None
    return CHROMIUM, AXE


def audit(page: str, tmp: Path, *, width: int = 400) -> dict[str, Any]:
    """What the probe measured on ``page`` in a frame ``width`` px wide."""
    chromium, axe = require_axe()
    if "</body>" not in page:
        raise AssertionError("the page has no </body> to inject axe before")
    probe = (f"<script src='{axe.as_uri()}'></script>" + _PROBE % json.dumps(TAGS))
    path = tmp / "audited.html"
    path.write_text(page.replace("</body>", probe + "</body>", 1), encoding="utf-8")
    frame = tmp / "frame.html"
    frame.write_text(_FRAME % (path.as_uri(), width), encoding="utf-8")
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'axe-profile'}",
                          "--window-size=1000,1000", "--virtual-time-budget=30000",
                          "--dump-dom", frame.as_uri()],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    if "<pre id=\"axe-probe\">" not in dom:
        raise AssertionError(f"the axe probe did not finish: {dom[-500:]}")
    out: dict[str, Any] = json.loads(html.unescape(
        dom.split("<pre id=\"axe-probe\">", 1)[1].split("</pre>", 1)[0]))
    if "error" in out:
        raise AssertionError(f"axe failed: {out['error']}")
    return out
