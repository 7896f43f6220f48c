"""The Helm chart, rendered by a real Helm 3 and checked against Kubernetes' own schemas and
against the code it deploys: routes, settings, CLI flags."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from service.app import create_app
from service.settings import Profile, Settings, UnsafeSettings
from tests.deploy.helpers import (
    CHART,
    KUBE_VERSION,
    PRODUCTION_VALUES,
    SETTING_ENV,
    Render,
    by_kind,
    one,
    pod_specs,
    run_helm,
)

SCENARIOS = {
    "default": (),
    "production": ("-f", str(PRODUCTION_VALUES)),
}
#: Kubernetes versions the manifests must be valid for: the chart's floor (Chart.yaml
#: kubeVersion), the one helm renders for, and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.25.0", KUBE_VERSION, kubernetes_validate.latest_version())
#: Kinds from CRDs that kubernetes-validate has no schema for; checked by hand below.
CRD_KINDS = {"ServiceMonitor"}
#: Settings that hold credentials: only ever from a Secret, never in the ConfigMap or values.
SECRET_SETTINGS = {"database_url", "patient_ref_key", "replay_cache_url"}


def _routes() -> set[str]:
    """The paths the service answers GET on (its OpenAPI document)."""
    paths = create_app(Settings()).openapi()["paths"]
    return {path for path, methods in paths.items() if "get" in methods}


@functools.cache
def _help(command: str) -> str:
    """``hypermarker COMMAND --help`` as a user sees it (the installed console script)."""
    script = Path(sys.executable).with_name("hypermarker")
    done = subprocess.run([str(script), command, "--help"], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    return done.stdout


def _options(command: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", _help(command))) - {"--help"}


def _container(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    specs = [spec for k, spec in pod_specs(docs) if k == kind]
    assert len(specs) == 1
    containers: list[dict[str, Any]] = specs[0]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env_names(docs: list[dict[str, Any]]) -> set[str]:
    names = set(one(docs, "ConfigMap")["data"])
    for _, spec in pod_specs(docs):
        for c in spec["containers"]:
            names |= {e["name"] for e in c.get("env") or ()}
    return {n for n in names if n.startswith("HYPERMARKER_")}


def _monitor_script(docs: list[dict[str, Any]]) -> str:
    container = _container(docs, "CronJob")
    assert container["command"] == ["/bin/sh", "-c"]
    script: str = container["args"][0]
    return script


def _monitor_argv(script: str) -> list[str]:
    """The words of the script's ``exec hypermarker monitor ...`` command."""
    joined = script.replace("\\\n", " ")
    line = next(ln for ln in joined.splitlines() if ln.strip().startswith("exec "))
    words = shlex.split(line.strip().rstrip(";"))
    assert words[:3] == ["exec", "hypermarker", "monitor"], words
    return words[3:]


# -- helm itself --------------------------------------------------------------------------------

def test_the_chart_is_checked_with_helm_3(helm_bin: Path) -> None:
    done = run_helm(helm_bin, "version", "--short")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("v3."), done.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_passes(helm_bin: Path, scenario: str) -> None:
    done = run_helm(helm_bin, "lint", "--strict", str(CHART), *SCENARIOS[scenario])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_is_valid_kubernetes(render: Render, scenario: str,
                                            kube_version: str) -> None:
    """Strict: an unknown or misplaced field is an error, not a silently dropped key."""
    docs = render(*SCENARIOS[scenario])
    checked = []
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, kube_version, strict=True)
        checked.append(doc["kind"])
    assert {"Deployment", "Service", "ConfigMap", "CronJob", "Pod"} <= set(checked)


def test_the_validator_is_not_vacuous(render: Render) -> None:
    deployment = one(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_the_optional_parts_render_only_when_asked(render: Render) -> None:
    default = {d["kind"] for d in render()}
    production = {d["kind"] for d in render(*SCENARIOS["production"])}
    assert default == {"ServiceAccount", "ConfigMap", "Service", "Deployment",
                       "PodDisruptionBudget", "NetworkPolicy", "CronJob", "Pod"}
    assert production == default | {"HorizontalPodAutoscaler", "ServiceMonitor"}
    off = render("--set", "monitor.enabled=false", "--set", "networkPolicy.enabled=false",
                 "--set", "podDisruptionBudget.enabled=false")
    assert {d["kind"] for d in off} == default - {"CronJob", "NetworkPolicy",
                                                  "PodDisruptionBudget"}


@pytest.mark.parametrize(("setting", "message"), [
    ("settings.authMode=demo", "settings.authMode=demo is refused by the production profile"),
    ("settings.allowHttpFhir=true", "settings.allowHttpFhir=true is refused"),
    ("settings.corsOrigins={*}", 'settings.corsOrigins=["*"] is refused'),
    ("secrets.keys.patientRefKey=", "needs a patient-reference key"),
    ("settings.logLevl=DEBUG", "Additional property logLevl is not allowed"),
    ("settings.provider=tpu", "settings.provider"),
    ("workers=0", "workers"),
])
def test_unsafe_or_misspelt_values_fail_at_render_time(helm_bin: Path, setting: str,
                                                       message: str) -> None:
    done = run_helm(helm_bin, "template", "hm", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr


def test_the_local_profile_may_use_demo_auth(render: Render) -> None:
    docs = render("--set", "settings.profile=local", "--set", "settings.authMode=demo")
    assert one(docs, "ConfigMap")["data"]["HYPERMARKER_AUTH_MODE"] == "demo"


# -- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_hypermarker_variable_is_a_setting(render: Render, scenario: str) -> None:
    names = _env_names(render(*SCENARIOS[scenario]))
    assert names, "no HYPERMARKER_* variable rendered"
    assert names <= set(SETTING_ENV), names - set(SETTING_ENV)


def test_every_setting_can_be_set_from_the_chart(render: Render) -> None:
    docs = render(*SCENARIOS["production"], "--set", "settings.artifactsDir=/models/v2")
    assert {SETTING_ENV[n] for n in _env_names(docs)} == set(Settings.model_fields)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secret_settings_come_only_from_secret_references(render: Render,
                                                          scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    assert not by_kind(docs, "Secret"), "the chart must never render a Secret"
    secret_fields = {n for n, f in Settings.model_fields.items() if f.annotation is SecretStr}
    assert secret_fields <= SECRET_SETTINGS
    configmap = one(docs, "ConfigMap")["data"]
    assert not {SETTING_ENV[n] for n in configmap} & SECRET_SETTINGS
    for _, spec in pod_specs(docs):
        for c in spec["containers"]:
            for e in c.get("env") or ():
                if SETTING_ENV.get(e["name"]) in SECRET_SETTINGS:
                    assert "value" not in e
                    assert set(e["valueFrom"]) == {"secretKeyRef"}


def _settings_from(configmap: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the pod would read them: the ConfigMap plus stand-in secret values."""
    for name in list(os.environ):
        if name.startswith("HYPERMARKER_"):
            monkeypatch.delenv(name)
    for name, value in configmap.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HYPERMARKER_DATABASE_URL", "postgresql+psycopg://cds@db:5432/audit")
    monkeypatch.setenv("HYPERMARKER_PATIENT_REF_KEY", "k" * 40)
    monkeypatch.setenv("HYPERMARKER_REPLAY_CACHE_URL", "redis://cache:6379/0")
    return Settings()


def test_the_production_values_pass_the_production_profile(
        render: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    configmap = one(render(*SCENARIOS["production"]), "ConfigMap")["data"]
    settings = _settings_from(configmap, monkeypatch)
    assert settings.profile is Profile.PRODUCTION
    assert settings.trusted_issuers[0]["iss"] == "https://ehr.example.org"
    assert settings.cors_origins == ["https://ehr.example.org"]
    assert (settings.max_body_bytes, settings.fhir_timeout_s) == (4_000_000, 2.5)
    assert str(settings.spool_dir) == "/var/lib/hypermarker/spool"


def test_the_defaults_lack_only_what_a_site_must_supply(
        render: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default values + the Secret: the pod refuses to start until the site names its CDS
    clients and its public URL (NOTES.txt says so), and for nothing else."""
    configmap = one(render(), "ConfigMap")["data"]
    with pytest.raises(ValidationError) as refused:
        _settings_from(configmap, monkeypatch)
    (error,) = refused.value.errors()
    assert isinstance(error["ctx"]["error"], UnsafeSettings)
    problems = str(error["ctx"]["error"]).removeprefix("production profile refuses: ").split("; ")
    assert len(problems) == 2
    assert "HYPERMARKER_TRUSTED_ISSUERS" in problems[0]
    assert "HYPERMARKER_PUBLIC_BASE_URL" in problems[1]


def _notes(helm: Path, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as ``helm install`` would print it (which needs a cluster): the chart copied,
    its NOTES.txt turned into a template that ``helm template`` can show."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes.read_text() + "{{- end }}\n")
    notes.unlink()
    (chart / "templates" / "notes.yaml").write_text(
        'notes: |\n{{ include "test.notes" . | indent 2 }}\n')
    done = run_helm(helm, "template", "hm", str(chart), "--namespace", "cds",
                    "--show-only", "templates/notes.yaml", *args)
    assert done.returncode == 0, done.stderr
    text: str = yaml.safe_load(done.stdout)["notes"]
    return text


def test_the_notes_say_what_is_missing(helm_bin: Path, tmp_path: Path) -> None:
    default = _notes(helm_bin, tmp_path / "default")
    assert "settings.trustedIssuers is empty" in default
    assert "settings.publicBaseUrl is empty" in default
    assert "emptyDir" in default
    for key, env in (("database-url", "HYPERMARKER_DATABASE_URL"),
                     ("patient-ref-key", "HYPERMARKER_PATIENT_REF_KEY"),
                     ("replay-cache-url", "HYPERMARKER_REPLAY_CACHE_URL")):
        assert re.search(rf"^\s+{key}\s+->\s+{env}$", default, re.MULTILINE)
    production = _notes(helm_bin, tmp_path / "production", *SCENARIOS["production"])
    assert "WARNING" not in production
    assert 'Secret "hypermarker-settings"' in production


def test_numbers_survive_the_configmap(render: Render) -> None:
    """Helm reads YAML numbers as floats: 8000000 must not become "8e+06"."""
    data = one(render("--set", "settings.maxBodyBytes=12000000"), "ConfigMap")["data"]
    assert data["HYPERMARKER_MAX_BODY_BYTES"] == "12000000"
    assert one(render(), "ConfigMap")["data"]["HYPERMARKER_MAX_BODY_BYTES"] == "8000000"


def test_a_config_change_rolls_the_pods(render: Render) -> None:
    def checksum(*args: str) -> str:
        deployment = one(render(*args), "Deployment")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() != checksum("--set", "settings.logLevel=DEBUG")


# -- the server's pods ---------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_use_the_health_routes_on_the_served_port(render: Render, scenario: str) -> None:
    container = _container(render(*SCENARIOS[scenario]), "Deployment")
    routes = _routes()
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live"} <= routes
    (port,) = container["ports"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"] == "http"
    argv = container["command"] + container["args"]
    assert argv[argv.index("--port") + 1] == str(port["containerPort"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_server_runs_the_real_serve_command(render: Render, scenario: str) -> None:
    container = _container(render(*SCENARIOS[scenario]), "Deployment")
    assert container["command"] == ["hypermarker"]
    assert container["args"][0] == "serve"
    flags = {a for a in container["args"][1:] if a.startswith("--")}
    assert flags == {"--host", "--port", "--workers"}
    assert flags <= _options("serve")
    args = container["args"]
    assert args[args.index("--host") + 1] == "0.0.0.0"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_run_as_non_root_on_a_read_only_root(render: Render, scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    kinds = set()
    for kind, spec in pod_specs(docs):
        kinds.add(kind)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            ctx = c["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
    assert kinds == {"Deployment", "CronJob", "Pod"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_server_writes_only_to_mounted_volumes(render: Render, scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    container = _container(docs, "Deployment")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    spool = one(docs, "ConfigMap")["data"]["HYPERMARKER_SPOOL_DIR"]
    assert {"/tmp", spool} <= mounts


def test_the_spool_is_a_claim_when_one_is_named(render: Render) -> None:
    def spool_volume(*args: str) -> dict[str, Any]:
        spec = one(render(*args), "Deployment")["spec"]["template"]["spec"]
        return next(v for v in spec["volumes"] if v["name"] == "spool")

    assert spool_volume() == {"name": "spool", "emptyDir": {"sizeLimit": "1Gi"}}
    assert spool_volume(*SCENARIOS["production"])["persistentVolumeClaim"] == {
        "claimName": "hypermarker-spool"}


def test_the_service_selects_only_the_server_pods(render: Render) -> None:
    docs = render(*SCENARIOS["production"])
    selector = one(docs, "Service")["spec"]["selector"].items()
    server = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    job = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    test_pod = one(docs, "Pod")["metadata"]["labels"]
    assert selector <= server
    assert not selector <= job.items()
    assert not selector <= test_pod.items()
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        spec = one(docs, kind)["spec"]
        key = "podSelector" if kind == "NetworkPolicy" else "selector"
        assert spec[key]["matchLabels"].items() == selector


def test_the_hpa_owns_the_replica_count(render: Render) -> None:
    assert one(render(), "Deployment")["spec"]["replicas"] == 2
    docs = render(*SCENARIOS["production"])
    assert "replicas" not in one(docs, "Deployment")["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == one(docs, "Deployment")["metadata"]["name"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)


def test_the_service_monitor_scrapes_the_metrics_route(render: Render) -> None:
    docs = render(*SCENARIOS["production"])
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert "/metrics" in _routes()
    service = one(docs, "Service")
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()


def test_the_gpu_is_off_by_default(render: Render) -> None:
    default = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in default["containers"][0]["resources"].get("limits", {})
    assert "nodeSelector" not in default
    assert "tolerations" not in default
    gpu = one(render(*SCENARIOS["production"]), "Deployment")["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"kubernetes.io/os": "linux", "nvidia.com/gpu.present": "true"}
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    job = one(render(*SCENARIOS["production"]), "CronJob")
    job_spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in job_spec["containers"][0]["resources"]["limits"]


def test_the_test_pod_checks_readiness_through_the_service(render: Render) -> None:
    docs = render()
    pod = one(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    service = one(docs, "Service")
    base = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert f'base = "{base}"' in script
    assert all(path in _routes() for path in re.findall(r'base \+ "([^"]+)"', script))
    compile(script, "test-connection", "exec")


# -- the monitoring CronJob ----------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_monitor_job_uses_only_real_cli_flags(render: Render, scenario: str) -> None:
    argv = _monitor_argv(_monitor_script(render(*SCENARIOS[scenario])))
    flags = [a for a in argv if a.startswith("--")]
    assert flags[0] == "--database"
    assert argv[1] == "$HYPERMARKER_DATABASE_URL"
    assert set(flags) <= _options("monitor"), set(flags) - _options("monitor")
    assert re.search(r"\*\s+--database\b.*\[required\]", _help("monitor"))


def test_the_monitor_job_reads_the_database_url_from_the_secret(render: Render) -> None:
    container = _container(render(*SCENARIOS["production"]), "CronJob")
    (env,) = container["env"]
    assert env["name"] == "HYPERMARKER_DATABASE_URL"
    assert env["valueFrom"]["secretKeyRef"] == {"name": "hypermarker-settings",
                                                "key": "database-url"}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp", "/reports"}
    argv = _monitor_argv(_monitor_script(render(*SCENARIOS["production"])))
    assert argv[argv.index("--json") + 1].startswith("/reports/")
    assert argv[argv.index("--html") + 1].startswith("/reports/")
    job = one(render(), "CronJob")["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    assert job["jobTemplate"]["spec"]["backoffLimit"] == 0


@pytest.mark.slow
def test_the_monitor_job_script_runs(render: Render, tmp_path: Path) -> None:
    """The rendered script itself, run by /bin/sh against an SQLite audit store: exit 0 and
    both reports when the store is readable, exit 2 when it is not."""
    if subprocess.run(["date", "-u", "-d", "7 days ago"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("this date(1) has no -d (the image's GNU date has)")
    from service.audit.store import AuditStore

    db = tmp_path / "audit.db"
    AuditStore.open(f"sqlite:///{db}", tmp_path / "spool").close()
    reports = tmp_path / "reports"
    reports.mkdir()
    script = _monitor_script(render("--set", f"monitor.reports.dir={reports}",
                                    "--set-json", "monitor.windowDays=1.5"))
    assert "--window 1.5" in script
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    ok = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=300,
                        check=False, env={**env, "HYPERMARKER_DATABASE_URL": f"sqlite:///{db}"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert sorted(p.suffix for p in reports.iterdir()) == [".html", ".json"]

    missing = tmp_path / "missing" / "audit.db"
    bad = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=300,
                         check=False, env={**env, "HYPERMARKER_DATABASE_URL": f"sqlite:///{missing}"})
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "cannot" in bad.stderr
