"""The monitoring job (evaluation/, which never imports FastAPI) reads the audit store, so
``audit_store`` must stay importable without the web stack or the model runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_audit_store_imports_without_web_stack_or_models() -> None:
    code = ("import sys, audit_store, audit_store.migrate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'fastapi', 'starlette', 'uvicorn', 'models', 'onnxruntime', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
