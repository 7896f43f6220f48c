"""``fhir_mappings`` re-exports nothing, so its light modules stay light.

The models and the service import ``fhir_mappings.features``, ``errors``, ``availability``,
``codes`` and ``report`` and the ``vocabulary`` package; none of them may pull in fhir.resources
and the whole mapping (an eager re-export in ``fhir_mappings/__init__.py`` would).
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import fhir_mappings

LIGHT = ("fhir_mappings.features", "fhir_mappings.errors", "fhir_mappings.availability",
         "fhir_mappings.codes", "fhir_mappings.report", "vocabulary.drug_classes",
         "vocabulary.feature_table")


def test_the_package_re_exports_nothing() -> None:
    names = [n for n, v in vars(fhir_mappings).items()
             if not n.startswith("__") and not isinstance(v, ModuleType)]
    assert names == []


def test_light_modules_do_not_import_fhir_resources() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in LIGHT)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fhir', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
