"""Helpers shared by the evaluation and the monitoring reports: standard JSON (non-finite
floats as null), writing it to a file, embedding a matplotlib figure as a base64 PNG, and the
one jinja2 environment both HTML pages render with (autoescape on, undefined names fail), and
the provenance of a run (:func:`run_provenance`)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2


def clean(value: Any) -> Any:
    """JSON-safe, recursively: non-finite floats become None, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def to_json(report: Any) -> str:
    """Indented standard JSON of a report (see :func:`clean`)."""
    return json.dumps(clean(report), indent=2, allow_nan=False)


def write_json(report: Any, path: Path) -> None:
    """Write :func:`to_json` of ``report`` and a final newline to ``path``."""
    path.write_text(to_json(report) + "\n", encoding="utf-8")


def png(fig: Any, dpi: int) -> str:
    """The figure as a base64 PNG (for a ``data:`` URI); closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def html_template(source: str, strict: bool = False) -> jinja2.Template:
    """A jinja2 template with autoescape on (report values never become markup); ``strict``
    makes an undefined name an error instead of an empty string."""
    env = jinja2.Environment(autoescape=True,
                             undefined=jinja2.StrictUndefined if strict else jinja2.Undefined)
    return env.from_string(source)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository (no optional locks: it never
    writes the index), or None where git or the repository is not there."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO_ROOT), *args],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


REPO_ROOT = Path(__file__).resolve().parents[1]


def run_provenance(plan: Path, manifest: Path, command: list[str] | None = None
                   ) -> dict[str, Any]:
    """What a report was made from: the time, the commit (and whether tracked files differ
    from it), the sha256 of the artifacts' manifest (which holds the sha256 of every artifact
    file) and of the plan, and the command line."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "worktree_modified": None if dirty is None else bool(dirty),
        "artifacts_manifest": str(manifest),
        "artifacts_manifest_sha256": _sha256(manifest),
        "plan": str(plan),
        "plan_sha256": _sha256(plan),
        "command": " ".join(command) if command is not None else None,
    }
