"""Helpers shared by the evaluation and the monitoring reports: standard JSON (non-finite
floats as null), writing it to a file, embedding a matplotlib figure as a base64 PNG, and the
one jinja2 environment both HTML pages render with (autoescape on, undefined names fail)."""

from __future__ import annotations

import base64
import io
import json
import math
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
