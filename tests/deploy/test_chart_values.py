"""The chart's values and their schema, checked without helm: every setting the chart names
exists in service/settings.py, and the values carry no secret."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from service.settings import Settings
from tests.deploy.helpers import (
    CHART,
    CHART_SETTINGS,
    PRODUCTION_VALUES,
    SETTING_ENV,
    SITE_VALUES,
    camel_to_snake,
    load_yaml,
)

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = load_yaml(CHART / "values.yaml")


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"


def _merged(base: Any, override: Any) -> Any:
    """What helm does with ``-f``: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merged(base.get(k), v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override}
    return override


def _valid(values: Any) -> bool:
    return bool(jsonschema.Draft7Validator(SCHEMA).is_valid(values))


#: The defaults plus what a site must supply: valid (checked below), the base of every refusal.
SITE = _merged(VALUES, load_yaml(SITE_VALUES))


def _with(values: Any, *changes: tuple[str, Any]) -> Any:
    """A copy of ``values`` with each ``("a.b.c", value)`` set."""
    values = json.loads(json.dumps(values))
    for dotted, value in changes:
        *parents, last = dotted.split(".")
        target = values
        for key in parents:
            target = target[key]
        target[last] = value
    return values


@pytest.mark.parametrize("override", [load_yaml(SITE_VALUES), load_yaml(PRODUCTION_VALUES)],
                         ids=["site", "production"])
def test_the_values_files_meet_the_schema(override: dict[str, Any]) -> None:
    jsonschema.validate(_merged(VALUES, override), SCHEMA, cls=jsonschema.Draft7Validator)


def test_the_defaults_alone_are_refused_for_what_a_site_must_supply() -> None:
    """Production cannot start without a trusted CDS client and an https public URL: the
    schema refuses the defaults at install, naming exactly those two."""
    errors = jsonschema.Draft7Validator(SCHEMA).iter_errors(VALUES)
    assert {"/".join(map(str, e.absolute_path)) for e in errors} == {
        "settings/trustedIssuers", "settings/publicBaseUrl"}
    assert _valid(_with(VALUES, ("settings.profile", "local")))


@pytest.mark.parametrize("changes", [
    (("settings.authMode", "demo"),),
    (("settings.trustedIssuers", []),),
    (("settings.publicBaseUrl", ""),),
    (("settings.publicBaseUrl", "http://cds.example.org"),),
    (("settings.allowHttpFhir", True),),
    (("settings.corsOrigins", ["https://ehr.example.org", "*"]),),
    (("settings.corsOrigins", ["null"]),),
    (("secrets.keys.databaseUrl", ""), ("monitor.enabled", False)),
    (("secrets.keys.patientRefKey", ""),),
    (("secrets.keys.replayCacheUrl", ""),),
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c))
def test_the_schema_refuses_production_values_that_cannot_start(
        changes: tuple[tuple[str, Any], ...]) -> None:
    assert _valid(SITE)
    assert not _valid(_with(SITE, *changes))
    # The same values are the local profile's business (one pod, one worker).
    assert _valid(_with(SITE, ("settings.profile", "local"), ("replicaCount", 1), *changes))


@pytest.mark.parametrize("several", [(("replicaCount", 2),), (("workers", 2),),
                                     (("autoscaling.enabled", True),)],
                         ids=["replicas", "workers", "hpa"])
def test_several_processes_need_the_shared_redis(several: tuple[tuple[str, Any], ...]) -> None:
    """Panel state and the JWT replay cache are shared through Redis between processes."""
    local = _with(SITE, ("settings.profile", "local"), ("replicaCount", 1),
                  ("secrets.keys.replayCacheUrl", ""))
    assert _valid(local)
    assert not _valid(_with(local, *several))


def test_several_pods_share_the_spool_claim_read_write_many() -> None:
    rwo = ("spool.persistence.accessMode", "ReadWriteOnce")
    assert _valid(SITE)
    assert not _valid(_with(SITE, rwo))
    assert not _valid(_with(SITE, rwo, ("replicaCount", 1), ("autoscaling.enabled", True)))
    assert _valid(_with(SITE, rwo, ("replicaCount", 1)))
    assert _valid(_with(SITE, rwo, ("spool.existingClaim", "site-spool")))
    assert _valid(_with(SITE, rwo, ("spool.persistence.enabled", False)))


@pytest.mark.parametrize("changes", [
    (("ingress.enabled", True), ("ingress.host", "cds.example.org")),
    (("ingress.enabled", True), ("ingress.tlsSecretName", "cds-tls")),
    (("ingress.enabled", True), ("ingress.host", "https://cds.example.org"),
     ("ingress.tlsSecretName", "cds-tls")),
    (("migrations.secretKey", ""),),
    (("secrets.keys.databaseUrl", ""), ("settings.profile", "local")),
], ids=["ingress-without-tls", "ingress-without-host", "ingress-host-is-a-url",
        "migrations-without-a-url", "monitor-without-a-database"])
def test_the_schema_refuses_parts_without_what_they_need(
        changes: tuple[tuple[str, Any], ...]) -> None:
    assert not _valid(_with(SITE, *changes))


def test_an_ingress_with_host_and_tls_is_valid() -> None:
    assert _valid(_with(SITE, ("ingress.enabled", True), ("ingress.host", "cds.example.org"),
                        ("ingress.tlsSecretName", "cds-tls")))


def test_every_default_has_a_schema_entry() -> None:
    """The schema forbids unknown keys, so every key of values.yaml must be declared."""

    def walk(value: Any, schema: dict[str, Any], path: str) -> None:
        if not isinstance(value, dict) or "properties" not in schema:
            return
        for key, sub in value.items():
            assert key in schema["properties"], f"{path}{key} is not in values.schema.json"
            walk(sub, schema["properties"][key], f"{path}{key}.")

    walk(VALUES, SCHEMA, "")


@pytest.mark.parametrize(("path", "value"), [
    (("settings", "logLevl"), "DEBUG"),
    (("settings", "guideline"), "who"),
    (("settings", "fhirTimeoutS"), "1.5"),
    (("settings", "trustedIssuers"), [{"iss": "https://ehr.example.org"}]),
    (("secrets", "keys", "databaseUrl"), "postgresql://cds:hunter2@db/audit"),
    (("spool", "existingClaim"), "Not A Claim"),
    (("replicas",), 3),
    (("settings", "migrateOnStart"), "no"),
    (("spool", "persistence", "accessMode"), "ReadWriteAll"),
    (("monitor", "reports", "persistence", "size"), "5 GB"),
    (("prometheusRule", "spoolFor"), "ten minutes"),
])
def test_the_schema_rejects_mistakes(path: tuple[str, ...], value: Any) -> None:
    assert _valid(SITE)
    values = json.loads(json.dumps(SITE))
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, SCHEMA, cls=jsonschema.Draft7Validator)


def test_values_settings_mirror_the_settings_class() -> None:
    """values.settings + secrets.keys name every Settings field once, and nothing else."""
    plain = {camel_to_snake(k) for k in VALUES["settings"]}
    secret = {camel_to_snake(k) for k in VALUES["secrets"]["keys"]}
    assert not plain & secret
    assert plain | secret == CHART_SETTINGS
    assert set(SCHEMA["properties"]["settings"]["properties"]) == set(VALUES["settings"])


def test_the_defaults_agree_with_the_settings_class_where_they_should() -> None:
    """The chart differs from the service's local defaults only where production needs it."""
    local = Settings.model_construct()
    differs = {}
    for key, value in VALUES["settings"].items():
        if value in ("", None):  # unset: the service's default (or a derived one) applies
            continue
        field = camel_to_snake(key)
        ours = getattr(local, field)
        ours = ours.value if hasattr(ours, "value") else ours
        ours = str(ours) if field in {"spool_dir", "artifacts_dir"} else ours
        if value != ours:
            differs[field] = value
    assert differs == {"profile": "production", "allow_http_fhir": False, "log_format": "json",
                       "spool_dir": "/var/lib/hypermarker/spool"}


def test_the_templates_name_only_real_settings() -> None:
    names = set()
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            names |= set(re.findall(r"HYPERMARKER_[A-Z0-9_]+", template.read_text()))
    names.discard("HYPERMARKER_")  # the prefix the helper builds names from
    assert names
    assert names <= set(SETTING_ENV), names - set(SETTING_ENV)


def test_no_secret_in_the_values() -> None:
    lines = ((CHART / "values.yaml").read_text() + PRODUCTION_VALUES.read_text()).splitlines()
    text = "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "credentials in a URL"
    for key_name in VALUES["secrets"]["keys"].values():
        assert re.fullmatch(r"[a-z-]*", key_name)  # a key name, or "" (unset)
    assert not re.search(r"(?i)^\s*(password|token|secret)\s*:", text, re.MULTILINE)
