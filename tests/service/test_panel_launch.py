"""The SMART panel: EHR launch only from a configured EHR, the panel only after a launch,
tokens and launches in a store every worker shares (issue 12, deliverables 1 and 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.panel_patient import name_words
from service.panel_store import MemoryPanelStore, PanelStoreError, RedisPanelStore
from service.settings import Settings
from tests.service.conftest import example_request, local_settings
from tests.service.live_server import free_port
from tests.service.smart_ehr import FakeEhr, launch

REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping())
    except Exception:
        return False


needs_redis = pytest.mark.skipif(not _redis_reachable(), reason="no Redis at 127.0.0.1:6379")


@pytest.fixture(scope="module")
def rogue() -> Iterator[FakeEhr]:
    """A SMART server that is not configured: it must never be contacted."""
    e = FakeEhr(authorize_url="https://phish.example/authorize")
    yield e
    e.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, ehr: FakeEhr) -> Iterator[TestClient]:
    app = create_app(local_settings(tmp_path_factory.mktemp("panel"), smart_ehrs=[ehr.url]))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _card_context(client: Any, base: str = "") -> str:
    card = client.post(f"{base}/cds-services/hypertension-treatment",
                       json=example_request()).json()["cards"][0]
    context: str = card["links"][0]["appContext"]
    return context


def test_smart_launch_shows_the_panel_for_the_patient_in_context(
        client: TestClient, ehr: FakeEhr) -> None:
    """EHR launch -> authorize (PKCE) -> token with appContext -> the rendered panel."""
    ehr.app_context, ehr.patient = _card_context(client), "example-patient-1"

    r = launch(client, ehr)

    assert r.status_code == 303, r.text
    assert ehr.token_requests[-1]["code_verifier"]
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "Hypertension treatment options" in page.text
    assert "not clinically validated" in page.text
    assert "contraindicated" in page.text
    assert "<script" not in page.text


def test_the_banner_names_the_patient_only_as_the_ehr_gives_them(
        client: TestClient, ehr: FakeEhr) -> None:
    """The name comes from the EHR's Patient of the launch (scope patient/Patient.rs); with
    no Patient, or a Patient of another id, the banner names the EPR's context, never an id."""
    ehr.app_context, ehr.patient = _card_context(client), "example-patient-1"
    pages = {}
    for case, resource in (
            ("named", {"resourceType": "Patient", "id": "example-patient-1", "name": [
                {"use": "nickname", "given": ["Jo"]},
                {"use": "official", "given": ["Joan", "M"], "family": "Smith"}]}),
            ("other", {"resourceType": "Patient", "id": "someone-else",
                       "name": [{"text": "Not Her"}]}),
            ("none", None)):
        ehr.patient_resource = resource
        r = launch(client, ehr)
        assert r.status_code == 303, r.text
        pages[case] = client.get(r.headers["location"]).text
    ehr.patient_resource = None

    assert "<p class='patient'>Joan M Smith <span class='facts'>" in pages["named"]
    for case in ("other", "none"):
        assert "Patient in the EPR&#x27;s current context" in pages[case]
        assert "Not Her" not in pages[case]
        assert "example-patient-1" not in pages[case]


def test_name_words_reads_a_fhir_human_name() -> None:
    def p(*names: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "Patient", "id": "p1", "name": list(names)}

    assert name_words(p({"text": " Ada\u0000  Lovelace "}), "p1") == "Ada Lovelace"
    assert name_words(p({"use": "usual", "given": ["Al"]},
                        {"use": "old", "family": "X"}), "p1") == "Al"
    assert name_words(p({"family": "Okafor"}), "p1") == "Okafor"
    assert name_words(p(), "p1") is None
    assert name_words(p({"text": ""}), "p1") is None
    assert name_words(p({"text": "A"}), "p2") is None
    assert name_words({"resourceType": "Group", "id": "p1"}, "p1") is None
    assert name_words("not json", "p1") is None


def test_the_panel_refuses_another_patient(client: TestClient, ehr: FakeEhr) -> None:
    """A token for a different patient than the assessment's never shows the panel."""
    ehr.app_context, ehr.patient = _card_context(client), "someone-else"

    assert launch(client, ehr).status_code == 401


def test_the_panel_opens_only_after_a_launch(client: TestClient) -> None:
    """The card's own token is not a view grant: /panel/view with it is 404, as are unknown
    tokens; a forged state is 401."""
    token = _card_context(client).split('"')[3]

    assert client.get(f"/panel/view/{token}").status_code == 404
    assert client.get("/panel/view/nope").status_code == 404
    assert client.get("/panel/callback", params={"code": "c", "state": "forged"}
                      ).status_code == 401


def test_a_launch_from_an_unlisted_iss_is_refused_without_contacting_it(
        client: TestClient, rogue: FakeEhr) -> None:
    """SSRF and open redirect: an iss that is not configured is a 400 OperationOutcome; the
    server it names is never contacted and the browser is not sent to its login page."""
    for iss in (rogue.url, rogue.url + "/", "https://ehr.example/fhir", "file:///etc/passwd"):
        r = client.get("/panel/launch", params={"iss": iss, "launch": "x"},
                       follow_redirects=False)
        assert r.status_code == 400, (iss, r.status_code)
        assert r.json()["issue"][0]["expression"] == ["iss"]
        assert "location" not in r.headers
    assert rogue.hits == 0


def test_an_ehr_naming_a_plain_http_login_page_is_refused_in_production_style(
        tmp_path: Path) -> None:
    """With plain http disallowed, an EHR whose configuration names http endpoints is not
    followed."""
    e = FakeEhr()
    try:
        app = create_app(local_settings(tmp_path, smart_ehrs=[e.url], allow_http_fhir=False))
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/panel/launch", params={"iss": e.url, "launch": "x"},
                      follow_redirects=False)
        assert r.status_code == 400
        assert "https" in r.json()["issue"][0]["diagnostics"]
    finally:
        e.close()


def test_settings_read_lists_as_json_or_comma_separated(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """CORS origins and SMART EHRs: a JSON list, one origin, or comma-separated (a plain
    string used to crash start-up)."""
    for raw, want in (('["https://a.example"]', ["https://a.example"]),
                      ("https://a.example", ["https://a.example"]),
                      ("https://a.example, https://b.example",
                       ["https://a.example", "https://b.example"])):
        monkeypatch.setenv("HYPERMARKER_CORS_ORIGINS", raw)
        monkeypatch.setenv("HYPERMARKER_SMART_EHRS", raw)
        s = Settings()
        assert s.cors_origins == want
        assert s.smart_ehrs == want


def test_several_workers_without_a_shared_store_are_refused() -> None:
    with pytest.raises(ValueError, match="shared"):
        Settings(workers=2, auth_mode="demo")
    with pytest.raises(ValueError, match="replay cache"):
        Settings(workers=2, state_url=REDIS_URL)
    assert Settings(workers=2, auth_mode="demo", state_url=REDIS_URL).workers == 2


def test_the_memory_store_round_trips_and_expires() -> None:
    store = MemoryPanelStore(ttl_s=0.0)
    token = store.put(b'{"a": 1}', "ref")
    assert store.get(token) is None  # already expired
    store = MemoryPanelStore()
    token = store.put({"kind": "view"}, "ref")
    item = store.get(token)
    assert item is not None
    assert (item.value, item.patient_ref) == ({"kind": "view"}, "ref")
    assert store.get("other") is None


@needs_redis
def test_the_redis_store_is_shared_and_keys_hide_the_token() -> None:
    """Two store objects (two workers) see the same items; Redis keys are hashes."""
    import redis

    a, b = RedisPanelStore.from_url(REDIS_URL), RedisPanelStore.from_url(REDIS_URL)
    token = a.put(b'{"features": {}}', "ref-1")
    item = b.get(token)
    assert item is not None
    assert (item.value, item.patient_ref) == (b'{"features": {}}', "ref-1")
    keys = redis.Redis.from_url(REDIS_URL).keys("hypermarker:panel:*")
    assert keys
    assert not any(token.encode() in k for k in keys)
    assert b.get(token + "x") is None


def test_an_unreachable_shared_store_is_a_503_not_a_guess(tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(PanelStoreError):
        RedisPanelStore.from_url(down).get("t")
    app = create_app(local_settings(tmp_path, state_url=down))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/panel/view/anything")
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.slow
@needs_redis
def test_two_workers_serve_fifty_panels(tmp_path: Path, ehr: FakeEhr) -> None:
    """uvicorn --workers 2 with the shared store: the card, the launch, the callback and the
    view each land on whichever worker; all 50 panels open (was 14 failures in 20)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HYPERMARKER_AUTH_MODE": "demo", "HYPERMARKER_WORKERS": "2",
           "HYPERMARKER_STATE_URL": REDIS_URL, "HYPERMARKER_SMART_EHRS": ehr.url,
           "HYPERMARKER_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
           "HYPERMARKER_SPOOL_DIR": str(tmp_path / "spool"), "HYPERMARKER_LOG_LEVEL": "WARNING"}
    with (tmp_path / "uvicorn.log").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                                 "service.app:create_app", "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "2", "--no-access-log"],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            opened = _open_panels(base, ehr, 50)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert opened == 50
    log = (tmp_path / "uvicorn.log").read_text()
    assert log.count("Started server process") == 2, log[-2000:]


def _open_panels(base: str, ehr: FakeEhr, n: int) -> int:
    """Card -> launch -> callback -> view, ``n`` times; the number of panels shown."""
    # no keep-alive: every request is a new connection, which either worker may accept
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if http.get(base + "/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        opened = 0
        for _ in range(n):
            ehr.app_context, ehr.patient = _card_context(http, base), "example-patient-1"
            r = launch(http, ehr, base)
            assert r.status_code == 303, r.text
            page = http.get(base + r.headers["location"])
            opened += page.status_code == 200 and "Hypertension treatment" in page.text
    return opened


def test_a_card_goes_out_without_its_panel_link_when_the_store_is_down(tmp_path: Path) -> None:
    """The shared store unreachable: the card (and its audit record) still go out, without a
    link that could not open."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(local_settings(tmp_path, state_url=down))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/cds-services/hypertension-treatment", json=example_request())
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert cards
    assert all("links" not in card for card in cards)
    assert r.headers["x-request-id"]
