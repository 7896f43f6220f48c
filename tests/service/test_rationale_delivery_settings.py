"""The LLM settings (issue 16): what the production profile refuses, and that the API key is
a secret sent only as a Bearer header."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from service.metrics import make_metrics
from service.rationale_delivery import build_delivery
from service.settings import Settings

ISS = "https://ehr.example.org"
SAFE: dict[str, Any] = {
    "profile": "production", "auth_mode": "jwt",
    "trusted_issuers": [{"iss": ISS, "jwks_url": ISS + "/jwks"}],
    "database_url": "postgresql+psycopg://cds@db/cds?sslmode=verify-full",
    "patient_ref_key": "t4Qx9-LmZr2_Wp8Kd7Vb3Hn6Yc1Sf0Ja",
    "allow_http_fhir": False, "public_base_url": "https://cds.example.org",
    "replay_cache_url": "rediss://cache:6380/0",
}


@pytest.mark.parametrize("url", [
    "http://hypermarker-vllm:8000", "http://hypermarker-vllm.cds.svc:8000",
    "http://hypermarker-vllm.cds.svc.cluster.local:8000/", "http://127.0.0.1:8000",
    "https://llm.example.org"])
def test_production_accepts_an_in_cluster_or_tls_llm(url: str) -> None:
    assert Settings(**SAFE, llm_url=url).llm_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://llm.example.org", "http://10.0.0.7:8000"])
def test_production_refuses_plain_http_to_an_llm_outside_the_cluster(url: str) -> None:
    Settings(llm_url=url)  # the local profile's business
    with pytest.raises(ValueError, match="HYPERMARKER_LLM_URL"):
        Settings(**SAFE, llm_url=url)


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://llm", "not an LLM server base URL"), ("llm:8000", "not an LLM server base URL"),
    ("http://user:pw@llm:8000", "must not carry credentials")])
def test_a_bad_llm_url_is_refused(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Settings(llm_url=url)


def test_an_empty_llm_url_means_no_llm() -> None:
    assert Settings(llm_url="").llm_url is None


def test_the_api_key_is_a_secret_sent_as_bearer() -> None:
    settings = Settings(llm_url="http://llm:8000", llm_api_key="sk-never-logged-42")
    assert "sk-never-logged-42" not in repr(settings)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "hypermarker-rationale"}]})

    async def audit(_: Any) -> None:
        return None

    delivery = build_delivery(settings, make_metrics(), audit,
                              transport=httpx.MockTransport(handler))
    client = delivery.writer.client
    assert client is not None
    assert "sk-never" not in repr(client)

    async def look() -> None:
        await client.server_info()
        await delivery.aclose()

    asyncio.run(look())
    assert seen[0].headers["Authorization"] == "Bearer sk-never-logged-42"
