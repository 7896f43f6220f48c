"""Evaluation reports: JSON for machines, one self-contained HTML page for people
(calibration curves and subgroup bars as embedded PNGs; no external assets). The JSON, PNG
and template helpers are :mod:`evaluation.report_io`, shared with the monitoring report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from evaluation.plan import lookup
from evaluation.report_io import html_template, png, to_json, write_json

__all__ = ["figures", "render_html", "to_json", "write_html", "write_json"]


def _png(fig: Any) -> str:
    return png(fig, dpi=90)


def calibration_plot(curve: dict[str, list[float]], title: str, xlabel: str) -> str:
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    xs, ys = curve["predicted"], curve["observed"]
    lo = min([*xs, *ys], default=0.0)
    hi = max([*xs, *ys], default=1.0)
    ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="ideal")
    ax.plot(xs, ys, marker="o", color="#1f5fa8", label="model (deciles)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("observed")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def subgroup_plot(table: dict[str, Any], metric: str, title: str) -> str:
    labels, values = [], []
    for var, entry in table.items():
        for level, row in entry["levels"].items():
            v = row.get(metric)
            if v is not None and math.isfinite(v):
                labels.append(f"{var}: {level}")
                values.append(v)
    fig, ax = plt.subplots(figsize=(5.5, 0.28 * max(len(labels), 4) + 1))
    ax.barh(labels, values, color="#3b8a5a")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return _png(fig)


def figures(suite: dict[str, Any]) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of one suite report's plots."""
    out = []
    name = suite.get("suite", "")
    if "sbp_change" in suite and suite["sbp_change"].get("curve"):
        out.append((f"{name}: calibration of predicted systolic change (mmHg)",
                    calibration_plot(suite["sbp_change"]["curve"], f"{name}: systolic change",
                                     "predicted change (mmHg)")))
    if "target_attainment" in suite and suite["target_attainment"].get("curve"):
        out.append((f"{name}: calibration of target attainment",
                    calibration_plot(suite["target_attainment"]["curve"],
                                     f"{name}: P(target reached)", "predicted probability")))
    if "subgroups" in suite:
        table = suite["subgroups"]["table"]
        out.append((f"{name}: MAE against the true change by subgroup (mmHg)",
                    subgroup_plot(table, "mae_true", f"{name}: MAE (true) by subgroup")))
        out.append((f"{name}: interval coverage by subgroup",
                    subgroup_plot(table, "coverage", f"{name}: interval coverage")))
    return out


_TEMPLATE = html_template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hypermarker evaluation: {{ model.id }} {{ model.version }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:0.9em;text-align:left}.pass{color:#176c2f}.fail{color:#b00020;font-weight:bold}
.skipped{color:#888}.banner{padding:0.6em 1em;border-radius:4px;font-weight:bold}
.ok{background:#e3f4e8}.bad{background:#fbe3e6}figure{display:inline-block;margin:0.5em}
figcaption{font-size:0.85em}
</style></head><body>
<h1>Evaluation report</h1>
<p>Model <b>{{ model.id }}</b> version {{ model.version }} ({{ model.provider }}), mode
<b>{{ mode }}</b>{% if target %} against <code>{{ target }}</code>{% endif %};
plan {{ checks.plan_version }}. Research software on simulated data: not clinically validated.</p>
<p class="banner {{ 'ok' if checks.gate_passed else 'bad' }}">
{% if checks.gate_passed %}All safety gates passed{% else %}Gates failed:
{{ checks.gates_failed | join(', ') }}{% endif %}{% if checks.warnings %};
warnings: {{ checks.warnings | join(', ') }}{% endif %}</p>
<h2>Checks</h2>
<table><tr><th>check</th><th>suite</th><th>metric</th><th>value</th><th>rule</th>
<th>severity</th><th>status</th><th>rationale</th></tr>
{% for r in checks.results %}<tr><td>{{ r.id }}</td><td>{{ r.suite }}</td><td>{{ r.metric }}</td>
<td>{{ fmt(r.value) }}</td><td>{{ r.comparator }} {{ r.threshold }}</td><td>{{ r.severity }}</td>
<td class="{{ r.status }}">{{ r.status }}</td><td>{{ r.rationale }}</td></tr>{% endfor %}
</table>
{% for s in suites %}
<h2>Suite: {{ s.report.suite }}</h2>
<table>{% for k, v in s.headline %}<tr><th>{{ k }}</th><td>{{ fmt(v) }}</td></tr>{% endfor %}
</table>
{% for caption, png in s.figures %}<figure><img alt="{{ caption }}"
src="data:image/png;base64,{{ png }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}{% endfor %}
</body></html>
""")

HEADLINE = (
    ("patients", "patients"), ("patient-options", "patient_options"),
    ("contraindicated first", "contraindicated_first"),
    ("MAE vs true change (mmHg)", "sbp_change.mae_true"),
    ("MAE vs observed change (mmHg)", "sbp_change.mae_observed"),
    ("baseline MAE vs observed, population mean", "sbp_change.baseline_population_mean."
     "mae_observed"),
    ("calibration slope", "sbp_change.calibration.slope"),
    ("calibration intercept", "sbp_change.calibration.intercept"),
    ("calibration-in-the-large (mmHg)", "sbp_change.calibration.in_the_large"),
    ("interval coverage", "interval.coverage"),
    ("target attainment AUROC", "target_attainment.auroc"),
    ("target attainment Brier", "target_attainment.brier"),
    ("Brier, prevalence baseline", "target_attainment.baseline_prevalence.brier"),
    ("guideline concordance", "guideline_concordance"),
    ("mean true change: model first", "mean_true_change.model_first"),
    ("mean true change: guideline default", "mean_true_change.guideline_default"),
    ("mean true change: best safe option", "mean_true_change.best_safe_option"),
    ("mean true change: random safe option", "mean_true_change.random_safe_option"),
    ("captured fraction: model", "captured_fraction.model_first"),
    ("captured fraction: guideline default", "captured_fraction.guideline_default"),
    ("largest subgroup MAE gap (mmHg)", "subgroups.largest_gap.mae_true.gap"),
    ("patient-options/s end to end (SHAP off)", "throughput.rows_per_second"),
    ("blocked option ranked", "blocked_option_ranked"),
    ("bundles", "bundles"), ("assessed", "assessed"), ("cannot assess", "cannot_assess"),
    ("errors", "errors"),
    ("agreement with in-process", "agreement_with_in_process"),
    ("latency p50 (ms)", "latency_ms.p50"), ("latency p99 (ms)", "latency_ms.p99"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "-"
    return str(v)


def render_html(result: dict[str, Any]) -> str:
    suites = []
    for r in result["suites"]:
        headline = [(k, v) for k, p in HEADLINE if (v := lookup(r, p)) is not None]
        suites.append({"report": r, "headline": headline, "figures": figures(r)})
    html: str = _TEMPLATE.render(model=result["model"], mode=result.get("mode", "in-process"),
                            target=result.get("target"), checks=result["checks"],
                            suites=suites, fmt=_fmt)
    return html


def write_html(result: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(result), encoding="utf-8")
