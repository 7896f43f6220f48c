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
    PRODUCTION_VALUES,
    SETTING_ENV,
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


@pytest.mark.parametrize("override", [{}, load_yaml(PRODUCTION_VALUES)],
                         ids=["default", "production"])
def test_the_values_files_meet_the_schema(override: dict[str, Any]) -> None:
    jsonschema.validate(_merged(VALUES, override), SCHEMA, cls=jsonschema.Draft7Validator)


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
])
def test_the_schema_rejects_mistakes(path: tuple[str, ...], value: Any) -> None:
    values = json.loads(json.dumps(VALUES))
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
    assert plain | secret == set(Settings.model_fields)
    assert set(SCHEMA["properties"]["settings"]["properties"]) == set(VALUES["settings"])


def test_the_defaults_agree_with_the_settings_class_where_they_should() -> None:
    """The chart differs from the service's local defaults only where production needs it."""
    local = Settings.model_construct()
    differs = {}
    for key, value in VALUES["settings"].items():
        field = camel_to_snake(key)
        ours = getattr(local, field)
        ours = ours.value if hasattr(ours, "value") else ours
        ours = str(ours) if field in {"spool_dir", "artifacts_dir"} else ours
        if value not in ("", None) and value != ours:
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
        assert re.fullmatch(r"[a-z-]+", key_name)
    assert not re.search(r"(?i)^\s*(password|token|secret)\s*:", text, re.MULTILINE)
