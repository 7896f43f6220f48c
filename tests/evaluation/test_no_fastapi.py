"""`evaluation/` never imports FastAPI (issue 6): target mode speaks plain HTTP."""

from __future__ import annotations

import subprocess
import sys

MODULES = ("evaluation.suites", "evaluation.target_service", "evaluation.target_fhir",
           "evaluation.fhir_suite",
           "evaluation.report", "evaluation.checks", "evaluation.fhir_generator",
           "hypermarker_cli.evaluate")


def test_the_harness_does_not_import_fastapi() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('fastapi', 'starlette', 'uvicorn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
