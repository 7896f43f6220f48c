"""The chart's optional vLLM server (issue 16 item 7), rendered with ``llm.enabled`` true and
false and checked with the Kubernetes schemas like the rest of the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from service.settings import Settings
from tests.deploy.helpers import (
    CHART,
    KUBE_VERSION,
    PRODUCTION_VALUES,
    SITE_VALUES,
    Render,
    by_kind,
    run_helm,
)

SITE = ("-f", str(SITE_VALUES))
LLM = (*SITE, "--set", "llm.enabled=true", "--set", "llm.model.path=qwen2.5-1.5b-instruct",
       "--set", "secrets.keys.llmApiKey=llm-api-key")
LLM_PRODUCTION = ("-f", str(PRODUCTION_VALUES), "--set", "llm.enabled=true",
                  "--set", "llm.model.path=qwen2.5-1.5b-instruct",
                  "--set", "llm.model.existingClaim=models", "--set", "settings.llmUrl=",
                  "--set", "settings.llmModel=")
VLLM = "hm-hypermarker-vllm"


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def _server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (d,) = [d for d in by_kind(docs, "Deployment")
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"]
    return d


def test_the_llm_is_off_by_default(render: Render) -> None:
    docs = render(*SITE)
    assert not [d for d in docs if "vllm" in d["metadata"]["name"]]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert "HYPERMARKER_LLM_URL" not in config  # no LLM: the service's default (off)


@pytest.mark.parametrize("args", [LLM, LLM_PRODUCTION], ids=["site", "production"])
@pytest.mark.parametrize("kube_version", ["1.25.0", KUBE_VERSION])
def test_the_vllm_parts_are_valid_kubernetes(render: Render, args: tuple[str, ...],
                                             kube_version: str) -> None:
    docs = render(*args)
    for doc in docs:
        if doc["kind"] not in {"ServiceMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(doc, kube_version, strict=True)
    assert {d["kind"] for d in docs if d["metadata"]["name"].endswith("-vllm")} == {
        "Deployment", "Service", "NetworkPolicy"}


def test_the_vllm_deployment(render: Render) -> None:
    docs = render(*LLM)
    dep = _named(docs, "Deployment", VLLM)
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["image"] == "vllm/vllm-openai:v0.11.0"  # pinned
    args = c["args"]
    assert args[args.index("--model") + 1] == "/models/qwen2.5-1.5b-instruct"
    assert args[args.index("--served-model-name") + 1] == "hypermarker-rationale"
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    assert env["TRANSFORMERS_OFFLINE"]["value"] == "1"
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "llm-api-key"
    assert "value" not in env["VLLM_API_KEY"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    # model loading takes minutes: the startup probe allows 30 of them
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["model"]["persistentVolumeClaim"]["claimName"] == f"{VLLM}-model"
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/dev/shm", "/models"}
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert _named(docs, "PersistentVolumeClaim", f"{VLLM}-model")


def test_only_the_service_reaches_the_vllm_and_it_reaches_nothing(render: Render) -> None:
    docs = render(*LLM)
    policy = _named(docs, "NetworkPolicy", VLLM)["spec"]
    vllm_labels = _named(docs, "Deployment", VLLM)["spec"]["template"]["metadata"]["labels"]
    assert all(vllm_labels[k] == v for k, v in policy["podSelector"]["matchLabels"].items())
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == []
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    server_labels = _server(docs)["spec"]["template"]["metadata"]["labels"]
    selector = peer["podSelector"]["matchLabels"]
    assert all(server_labels[k] == v for k, v in selector.items())
    assert selector["app.kubernetes.io/component"] == "server"
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    # the vLLM Service selects the vLLM pods only, and the server's Service not them
    service = _named(docs, "Service", VLLM)["spec"]
    assert service["selector"]["app.kubernetes.io/component"] == "llm"


def test_the_service_is_wired_to_the_vllm(render: Render,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(*LLM_PRODUCTION)
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["HYPERMARKER_LLM_URL"] == "http://hypermarker-vllm:8000"
    assert config["HYPERMARKER_LLM_MODEL"] == "hypermarker-rationale"
    (c,) = _server(docs)["spec"]["template"]["spec"]["containers"]
    key = next(e for e in c["env"] if e["name"] == "HYPERMARKER_LLM_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "hypermarker-settings",
                                                "key": "llm-api-key"}
    # the production profile accepts the in-cluster URL
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HYPERMARKER_DATABASE_URL",
                       "postgresql+psycopg://cds@db:5432/audit?sslmode=verify-full")
    monkeypatch.setenv("HYPERMARKER_PATIENT_REF_KEY", "Zq8vN3kLw0Tp6yHc1Rb9Xf4Ms7Gd2Je5")
    monkeypatch.setenv("HYPERMARKER_REPLAY_CACHE_URL", "rediss://cache:6379/0")
    assert Settings().llm_url == "http://hypermarker-vllm:8000"
    # with a restricted egress, the service's own policy lets it reach the vLLM port
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy"
                  and d["metadata"]["name"] == "hypermarker")["spec"]
    assert any(r.get("ports") == [{"port": 8000, "protocol": "TCP"}]
               and r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
               == "llm" for r in policy["egress"])


@pytest.mark.parametrize(("args", "message"), [
    (("--set", "llm.enabled=true"), "llm.model.path"),
    (("--set", "llm.enabled=true", "--set", "llm.model.path=m",
      "--set", "settings.llmUrl=https://llm.example.org"), "settings.llmUrl"),
    (("--set", "llm.enabled=true", "--set", "llm.model.path=m", "--set", "llm.image.tag=latest"),
     "llm.image.tag"),
    (("--set", "settings.llmUrl=http://llm.example.org"), "settings.llmUrl"),
])
def test_values_the_llm_cannot_run_with_fail_at_render_time(helm_bin: Path,
                                                             args: tuple[str, ...],
                                                             message: str) -> None:
    done = run_helm(helm_bin, "template", "hm", str(CHART), *SITE, *args)
    assert done.returncode != 0
    assert message in done.stderr
