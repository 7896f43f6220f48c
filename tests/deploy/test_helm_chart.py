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
from typing import Any, get_args

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from service.app import create_app
from service.settings import Profile, Settings, UnsafeSettings
from tests.deploy.helpers import (
    CHART,
    CHART_SETTINGS,
    KUBE_VERSION,
    PRODUCTION_VALUES,
    ROOT,
    SETTING_ENV,
    SITE_VALUES,
    Render,
    by_kind,
    one,
    pod_specs,
    run_helm,
)

#: "default": the chart's defaults plus the two values a site must supply (the schema refuses
#: the defaults alone); "production": every optional part switched on.
SCENARIOS = {
    "default": ("-f", str(SITE_VALUES)),
    "production": ("-f", str(PRODUCTION_VALUES)),
}
SITE = SCENARIOS["default"]
#: Kubernetes versions the manifests must be valid for: the chart's floor (Chart.yaml
#: kubeVersion), the one helm renders for, and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.25.0", KUBE_VERSION, kubernetes_validate.latest_version())
#: Kinds from CRDs that kubernetes-validate has no schema for; checked by hand below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Settings that hold credentials: only ever from a Secret, never in the ConfigMap or values.
SECRET_SETTINGS = {"database_url", "patient_ref_key", "replay_cache_url", "state_url",
                   "llm_api_key"}
#: prometheus_client's multiprocess mode reads its directory from this variable.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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
    assert {"Deployment", "Service", "ConfigMap", "CronJob", "Pod", "Job"} <= set(checked)


def test_the_validator_is_not_vacuous(render: Render) -> None:
    deployment = one(render(*SITE), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_the_optional_parts_render_only_when_asked(render: Render) -> None:
    default = {d["kind"] for d in render(*SCENARIOS["default"])}
    production = {d["kind"] for d in render(*SCENARIOS["production"])}
    assert default == {"ServiceAccount", "ConfigMap", "Service", "Deployment",
                       "PodDisruptionBudget", "NetworkPolicy", "CronJob", "Pod", "Job",
                       "PersistentVolumeClaim"}
    # production names existing claims instead of the chart's
    assert production == default - {"PersistentVolumeClaim"} | {
        "HorizontalPodAutoscaler", "ServiceMonitor", "Ingress", "PrometheusRule"}
    off = render(*SCENARIOS["default"], "--set", "monitor.enabled=false",
                 "--set", "networkPolicy.enabled=false",
                 "--set", "podDisruptionBudget.enabled=false", "--set", "migrations.enabled=false",
                 "--set", "spool.persistence.enabled=false")
    assert {d["kind"] for d in off} == default - {"CronJob", "NetworkPolicy", "Job",
                                                  "PodDisruptionBudget", "PersistentVolumeClaim"}


@pytest.mark.parametrize(("setting", "message"), [
    ("settings.authMode=demo", "- settings.authMode: Must not validate the schema (not)"),
    ("settings.allowHttpFhir=true", "- settings.allowHttpFhir: settings.allowHttpFhir does not"),
    ("settings.corsOrigins={*}", "- settings.corsOrigins.0: Must not validate"),
    ("secrets.keys.patientRefKey=", "- secrets.keys.patientRefKey: String length must be"),
    ("settings.publicBaseUrl=http://cds.example.org", "- settings.publicBaseUrl: Does not match"),
    ("spool.persistence.accessMode=ReadWriteOnce", "- spool.persistence.accessMode: "),
    ("ingress.enabled=true", "- ingress.tlsSecretName: String length must be"),
    ("settings.logLevl=DEBUG", "Additional property logLevl is not allowed"),
    ("settings.provider=tpu", "settings.provider"),
    ("workers=0", "workers"),
])
def test_unsafe_or_misspelt_values_fail_at_render_time(helm_bin: Path, setting: str,
                                                       message: str) -> None:
    site = run_helm(helm_bin, "template", "hm", str(CHART), *SCENARIOS["default"])
    assert site.returncode == 0, site.stderr
    done = run_helm(helm_bin, "template", "hm", str(CHART), *SCENARIOS["default"],
                    "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr


def test_the_defaults_alone_are_refused_at_install(helm_bin: Path) -> None:
    """The production profile cannot start without a trusted CDS client and its public URL:
    helm refuses before creating anything, naming both (and nothing else)."""
    done = run_helm(helm_bin, "template", "hm", str(CHART))
    assert done.returncode != 0
    named = set(re.findall(r"^- ([\w.]+): ", done.stderr, re.MULTILINE))
    assert named == {"settings.trustedIssuers", "settings.publicBaseUrl"}, done.stderr


def test_the_local_profile_may_use_demo_auth(render: Render) -> None:
    docs = render(*SITE, "--set", "settings.profile=local", "--set", "settings.authMode=demo")
    assert one(docs, "ConfigMap")["data"]["HYPERMARKER_AUTH_MODE"] == "demo"


def test_the_public_url_must_be_the_ingress_host(helm_bin: Path) -> None:
    done = run_helm(helm_bin, "template", "hm", str(CHART), *SCENARIOS["production"],
                    "--set", "settings.publicBaseUrl=https://other.example.org")
    assert done.returncode != 0
    assert ("settings.publicBaseUrl (https://other.example.org) must be "
            "https://cds.example.org") in done.stderr


# -- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_hypermarker_variable_is_a_setting(render: Render, scenario: str) -> None:
    names = _env_names(render(*SCENARIOS[scenario]))
    assert names, "no HYPERMARKER_* variable rendered"
    assert names <= set(SETTING_ENV), names - set(SETTING_ENV)


def test_every_setting_can_be_set_from_the_chart(render: Render) -> None:
    docs = render(*SCENARIOS["production"], "--set", "settings.artifactsDir=/models/v2")
    assert {SETTING_ENV[n] for n in _env_names(docs)} == CHART_SETTINGS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secret_settings_come_only_from_secret_references(render: Render,
                                                          scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    assert not by_kind(docs, "Secret"), "the chart must never render a Secret"
    secret_fields = {n for n, f in Settings.model_fields.items()
                     if SecretStr in (f.annotation, *get_args(f.annotation))}
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
    monkeypatch.setenv("HYPERMARKER_DATABASE_URL",
                       "postgresql+psycopg://cds@db:5432/audit?sslmode=verify-full")
    monkeypatch.setenv("HYPERMARKER_PATIENT_REF_KEY", "Zq8vN3kLw0Tp6yHc1Rb9Xf4Ms7Gd2Je5")
    monkeypatch.setenv("HYPERMARKER_REPLAY_CACHE_URL", "rediss://cache:6379/0")
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


def test_the_schema_asks_a_site_for_what_the_service_needs(
        render: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults + the two values the schema asks a site for (values-site.yaml) + the
    Secret pass the production profile; without those two, the service refuses to start
    for them and nothing else (so the schema's refusal of the defaults is the service's)."""
    configmap = one(render(*SCENARIOS["default"]), "ConfigMap")["data"]
    assert _settings_from(configmap, monkeypatch).profile is Profile.PRODUCTION
    del configmap["HYPERMARKER_TRUSTED_ISSUERS"], configmap["HYPERMARKER_PUBLIC_BASE_URL"]
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


def test_the_notes_explain_the_install(helm_bin: Path, tmp_path: Path) -> None:
    default = _notes(helm_bin, tmp_path / "default", *SCENARIOS["default"])
    assert "values.schema.json has already refused, at install" in default
    assert "no trusted issuers" in default
    assert "WARNING" not in default
    for key, env in (("database-url", "HYPERMARKER_DATABASE_URL"),
                     ("patient-ref-key", "HYPERMARKER_PATIENT_REF_KEY"),
                     ("replay-cache-url", "HYPERMARKER_REPLAY_CACHE_URL")):
        assert re.search(rf"^\s+{key}\s+->\s+{env}$", default, re.MULTILINE)
    assert 'hook Job hm-hypermarker-migrate, as the database user of key "migration-database-url"' \
        in default
    assert 'Audit spool: PersistentVolumeClaim "hm-hypermarker-spool"' in default
    assert 'Reports: PersistentVolumeClaim "hm-hypermarker-monitor-reports"' in default
    assert "No PrometheusRule" in default
    production = _notes(helm_bin, tmp_path / "production", *SCENARIOS["production"])
    assert "WARNING" not in production
    assert 'Secret "hypermarker-settings"' in production
    assert 'key "database-url" in Secret "hypermarker-migrator"' in production
    assert "Ingress: https://cds.example.org" in production
    assert "Alerts: PrometheusRule hypermarker" in production


@pytest.mark.parametrize(("args", "warning"), [
    (("--set", "spool.persistence.enabled=false"), "the audit spool (used while the database "
                                                  "is down) is on an emptyDir"),
    (("--set", "migrations.secretKey=database-url"), "WARNING: the migration Job uses the "
                                                     "service's own database URL"),
    (("--set", "migrations.enabled=false", "--set", "settings.migrateOnStart=false"),
     "WARNING: migrations.enabled=false and settings.migrateOnStart=false: nothing migrates"),
    (("--set", "settings.profile=local", "--set-json", "settings.trustedIssuers=[]"),
     "WARNING: settings.trustedIssuers is empty"),
])
def test_the_notes_warn(helm_bin: Path, tmp_path: Path, args: tuple[str, ...],
                        warning: str) -> None:
    assert warning not in _notes(helm_bin, tmp_path / "site", *SCENARIOS["default"])
    assert warning in _notes(helm_bin, tmp_path / "warned", *SCENARIOS["default"], *args)


def test_numbers_survive_the_configmap(render: Render) -> None:
    """Helm reads YAML numbers as floats: 8000000 must not become "8e+06"."""
    data = one(render(*SITE, "--set", "settings.maxBodyBytes=12000000"), "ConfigMap")["data"]
    assert data["HYPERMARKER_MAX_BODY_BYTES"] == "12000000"
    assert one(render(*SITE), "ConfigMap")["data"]["HYPERMARKER_MAX_BODY_BYTES"] == "8000000"


def test_a_config_change_rolls_the_pods(render: Render) -> None:
    def checksum(*args: str) -> str:
        deployment = one(render(*SITE, *args), "Deployment")
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
    assert kinds == {"Deployment", "CronJob", "Pod", "Job"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_server_writes_only_to_mounted_volumes(render: Render, scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    container = _container(docs, "Deployment")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    spool = one(docs, "ConfigMap")["data"]["HYPERMARKER_SPOOL_DIR"]
    assert {"/tmp", spool} <= mounts


def _volume(spec: dict[str, Any], name: str) -> dict[str, Any]:
    volume: dict[str, Any] = next(v for v in spec["volumes"] if v["name"] == name)
    return volume


def _claims(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in by_kind(docs, "PersistentVolumeClaim")}


def test_the_spool_is_one_claim_shared_by_every_pod(render: Render) -> None:
    """One ReadWriteMany claim (any pod replays any pod's spool), kept by helm uninstall."""
    docs = render(*SITE)
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert _volume(spec, "spool") == {
        "name": "spool", "persistentVolumeClaim": {"claimName": "hm-hypermarker-spool"}}
    claim = _claims(docs)["hm-hypermarker-spool"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "storageClassName" not in claim["spec"]
    sc = _claims(render(*SITE, "--set", "spool.persistence.storageClass=cephfs"))
    assert sc["hm-hypermarker-spool"]["spec"]["storageClassName"] == "cephfs"

    production = render(*SCENARIOS["production"])
    spec = one(production, "Deployment")["spec"]["template"]["spec"]
    assert _volume(spec, "spool")["persistentVolumeClaim"] == {"claimName": "hypermarker-spool"}
    assert not _claims(production)
    off = render(*SITE, "--set", "spool.persistence.enabled=false")
    spec = one(off, "Deployment")["spec"]["template"]["spec"]
    assert _volume(spec, "spool") == {"name": "spool", "emptyDir": {"sizeLimit": "1Gi"}}
    assert set(_claims(off)) == {"hm-hypermarker-monitor-reports"}


def test_the_monitor_reports_are_on_a_claim(render: Render) -> None:
    def reports(docs: list[dict[str, Any]]) -> dict[str, Any]:
        cron = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return _volume(cron, "reports")

    docs = render(*SITE)
    assert reports(docs)["persistentVolumeClaim"] == {
        "claimName": "hm-hypermarker-monitor-reports"}
    claim = _claims(docs)["hm-hypermarker-monitor-reports"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]  # one Job at a time (Forbid)
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "monitor"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert reports(render(*SCENARIOS["production"]))["persistentVolumeClaim"] == {
        "claimName": "hypermarker-monitor-reports"}
    off = render(*SITE, "--set", "monitor.reports.persistence.enabled=false")
    assert reports(off) == {"name": "reports", "emptyDir": {"sizeLimit": "256Mi"}}
    no_monitor = render(*SITE, "--set", "monitor.enabled=false")
    assert set(_claims(no_monitor)) == {"hm-hypermarker-spool"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_workers_share_metrics_through_an_emptydir(render: Render, scenario: str) -> None:
    """prometheus_client multiprocess mode: the pods name a fresh, writable directory."""
    docs = render(*SCENARIOS[scenario])
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = _container(docs, "Deployment")
    env = {e["name"]: e for e in container["env"]}
    directory = env[MULTIPROC_ENV]["value"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert "emptyDir" in _volume(spec, mount["name"])
    assert not mount.get("readOnly")
    others = {m["mountPath"] for m in container["volumeMounts"]} - {directory}
    assert not any(directory.startswith(o + "/") or o.startswith(directory + "/") for o in others)


# -- the migration hook --------------------------------------------------------------------------

def _migration_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Job")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_migrations_run_as_a_hook_before_the_pods(render: Render, scenario: str) -> None:
    docs = render(*SCENARIOS[scenario])
    job = _migration_job(docs)
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    # A pre-install hook runs before the chart's own ServiceAccount exists.
    assert spec.get("serviceAccountName") != one(docs, "ServiceAccount")["metadata"]["name"]
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "audit_store.migrate"]
    assert container["args"] == ["$(MIGRATION_DATABASE_URL)"]


def test_the_migrations_use_their_own_database_user(render: Render) -> None:
    (env,) = _migration_job(render(*SCENARIOS["production"]))["spec"]["template"]["spec"][
        "containers"][0]["env"]
    assert env == {"name": "MIGRATION_DATABASE_URL", "valueFrom": {"secretKeyRef": {
        "name": "hypermarker-migrator", "key": "database-url"}}}
    (env,) = _migration_job(render(*SITE))["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "hm-hypermarker-secrets",
                                                "key": "migration-database-url"}
    runtime = {e["valueFrom"]["secretKeyRef"]["key"] for e in _container(render(*SITE),
                                                                           "Deployment")["env"]
               if e["name"] == "HYPERMARKER_DATABASE_URL"}
    assert runtime == {"database-url"}


@pytest.mark.parametrize(("args", "expected"), [
    ((), "false"),
    (("--set", "migrations.enabled=false"), "true"),
    (("--set", "settings.migrateOnStart=true"), "true"),
    (("--set", "migrations.enabled=false", "--set", "settings.migrateOnStart=false"), "false"),
])
def test_the_pods_migrate_only_without_the_hook(render: Render, args: tuple[str, ...],
                                                expected: str) -> None:
    """With the hook Job the pods do not migrate, so their database user needs no DDL."""
    data = one(render(*SITE, *args), "ConfigMap")["data"]
    assert data["HYPERMARKER_MIGRATE_ON_START"] == expected


def test_the_migration_command_migrates(render: Render, tmp_path: Path) -> None:
    """The hook's command line, with the URL the kubelet substitutes, against an SQLite store:
    the schema reaches head."""
    from sqlalchemy import create_engine

    from audit_store.migrate import current_revision, head_revision

    (container,) = _migration_job(render(*SITE))["spec"]["template"]["spec"]["containers"]
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    argv = [sys.executable if a == "python" else a for a in container["command"]]
    argv += [a.replace("$(MIGRATION_DATABASE_URL)", url) for a in container["args"]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    engine = create_engine(url)
    try:
        assert current_revision(engine) == head_revision() is not None
    finally:
        engine.dispose()


# -- ingress -------------------------------------------------------------------------------------

def test_the_ingress_serves_the_ehr_routes_over_tls(render: Render) -> None:
    assert not by_kind(render(*SITE), "Ingress")
    docs = render(*SCENARIOS["production"])
    ingress = one(docs, "Ingress")
    spec = ingress["spec"]
    (tls,) = spec["tls"]
    (rule,) = spec["rules"]
    assert tls == {"hosts": ["cds.example.org"], "secretName": "cds-example-org-tls"}
    assert rule["host"] == "cds.example.org"
    assert spec["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "trust-ca"
    service = one(docs, "Service")
    routes = _routes() | {"/fhir/$hypertension-options", "/cds-services/{service_id}"}
    paths = []
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
        assert path["pathType"] == "Prefix"
        assert any(r == path["path"] or r.startswith(path["path"] + "/") for r in routes)
        paths.append(path["path"])
    assert paths == ["/cds-services", "/fhir", "/panel"]
    exposed = {r for r in _routes() if any(r == p or r.startswith(p + "/") for p in paths)}
    assert "/metrics" not in exposed
    assert not any(r.startswith("/health") for r in exposed)


# -- alerts --------------------------------------------------------------------------------------

def _alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {}
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for r in group["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}
            assert r["labels"]["severity"] in {"warning", "critical"}
            assert r["annotations"]["summary"]
            assert r["annotations"]["description"]
            assert r["expr"].count("(") == r["expr"].count(")")
            alerts[r["alert"]] = r
    return alerts


def test_the_alerts_watch_the_monitor_job_and_the_spool(render: Render) -> None:
    docs = render(*SCENARIOS["production"], "--namespace", "cds")
    alerts = _alerts(docs)
    cron = one(docs, "CronJob")["metadata"]["name"]
    failed = alerts["HypermarkerMonitorJobFailed"]["expr"]
    assert f'kube_job_status_failed{{namespace="cds", job_name=~"{cron}-[0-9]+"}}' in failed
    assert failed.endswith("> 0")
    assert alerts["HypermarkerMonitorJobFailed"]["labels"]["severity"] == "critical"
    stale = alerts["HypermarkerMonitorNotSucceeding"]["expr"]
    assert f'kube_cronjob_status_last_successful_time{{namespace="cds", cronjob="{cron}"}}' \
        in stale
    assert stale.endswith(f"> {36 * 3600}")
    metrics = (ROOT / "service" / "metrics.py").read_text()
    assert '"hypermarker_audit_spool_depth"' in metrics
    spooling = alerts["HypermarkerAuditSpooling"]
    assert 'hypermarker_audit_spool_depth{namespace="cds"}' in spooling["expr"]
    assert spooling["for"] == "10m"
    assert "> 10000" in alerts["HypermarkerAuditSpoolFilling"]["expr"]
    assert one(docs, "PrometheusRule")["metadata"]["labels"]["release"] == "prometheus"
    without_monitor = _alerts(render(*SCENARIOS["production"], "--set", "monitor.enabled=false"))
    assert set(without_monitor) == {"HypermarkerAuditSpooling", "HypermarkerAuditSpoolFilling"}


def test_the_alerts_need_the_prometheus_operator(helm_bin: Path) -> None:
    """Without the PrometheusRule CRD the install refuses (an alert asked for is never
    silently dropped); with it, or told to skip the check, the rule renders."""
    args = ("template", "hm", str(CHART), *SCENARIOS["production"],
            "--set", "prometheusRule.skipCrdCheck=false")
    refused = run_helm(helm_bin, *args)
    assert refused.returncode != 0
    assert "this cluster has no monitoring.coreos.com/v1 PrometheusRule" in refused.stderr
    ok = run_helm(helm_bin, *args, "--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
    assert ok.returncode == 0, ok.stderr
    assert "kind: PrometheusRule" in ok.stdout


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
    assert one(render(*SITE), "Deployment")["spec"]["replicas"] == 2
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
    default = one(render(*SITE), "Deployment")["spec"]["template"]["spec"]
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
    docs = render(*SITE)
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
    job = one(render(*SITE), "CronJob")["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    assert job["jobTemplate"]["spec"]["backoffLimit"] == 0


@pytest.mark.slow
def test_the_monitor_job_script_runs(render: Render, tmp_path: Path) -> None:
    """The rendered script itself, run by /bin/sh against an SQLite audit store: on an empty
    but readable store, both reports and exit 3 (cannot judge: never a pass, issue 14); exit 2
    when the store cannot be read."""
    if subprocess.run(["date", "-u", "-d", "7 days ago"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("this date(1) has no -d (the image's GNU date has)")
    from audit_store.store import AuditStore

    db = tmp_path / "audit.db"
    AuditStore.open(f"sqlite:///{db}", tmp_path / "spool").close()
    reports = tmp_path / "reports"
    reports.mkdir()
    script = _monitor_script(render(*SITE, "--set", f"monitor.reports.dir={reports}",
                                    "--set-json", "monitor.windowDays=1.5"))
    assert "--window 1.5" in script
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    ok = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=300,
                        check=False, env={**env, "HYPERMARKER_DATABASE_URL": f"sqlite:///{db}"})
    assert ok.returncode == 3, ok.stdout + ok.stderr
    assert "CANNOT JUDGE" in ok.stdout + ok.stderr
    assert sorted(p.suffix for p in reports.iterdir()) == [".html", ".json"]

    missing = tmp_path / "missing" / "audit.db"
    bad = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=300,
                         check=False, env={**env, "HYPERMARKER_DATABASE_URL": f"sqlite:///{missing}"})
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "cannot" in bad.stderr
