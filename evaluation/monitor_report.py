"""The monitoring report as JSON (for machines) and a self-contained HTML page (for people).

The HTML page embeds its figures as base64 PNG (matplotlib, Agg backend) and needs no network:
per-feature drift (PSI and W1 against the clinical tolerance), drift over time windows, the
realised calibration curve of the option taken, and the override and alert picture. It is
rendered from a jinja2 string template with autoescape; the JSON, PNG and template helpers
are :mod:`evaluation.report_io`, shared with the evaluation report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.report_io import html_template, png, write_json

__all__ = ["figures", "render_html", "write_html", "write_json"]


def _png(fig: Any) -> str:
    return png(fig, dpi=96)


def figures(report: Mapping[str, Any]) -> dict[str, str]:
    """Base64 PNGs: ``feature_drift`` (PSI, distance / tolerance, missing-rate change per
    feature, coloured by status) and ``drift_over_time`` (when windows were requested)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    feats = report["drift"]["input"]["features"]
    if feats:
        names = [f["feature"] for f in feats]
        psi = [f["psi"] or 0.0 for f in feats]
        ratio = [abs(f["distance"]) / f["tolerance"]
                 if f["distance"] is not None and f["tolerance"] else 0.0 for f in feats]
        colour = {"alarm": "#c0392b", "warning": "#e67e22", "ok": "#27ae60",
                  "insufficient": "#95a5a6"}
        cols = [colour[f["status"]] for f in feats]
        missing = [abs(f["missing_rate"] - f["missing_rate_reference"])
                   if f["missing_rate"] is not None else 0.0 for f in feats]
        fig, axes = plt.subplots(1, 3, figsize=(13, 0.32 * len(names) + 1.2), sharey=True)
        axes[0].barh(names, psi, color=cols)
        axes[0].axvline(0.10, ls="--", c="#e67e22", lw=1)
        axes[0].axvline(0.25, ls="--", c="#c0392b", lw=1)
        axes[0].set_xlabel("PSI (deciles + missing bin)")
        axes[0].invert_yaxis()
        axes[1].barh(names, ratio, color=cols)
        axes[1].axvline(0.5, ls="--", c="#e67e22", lw=1)
        axes[1].axvline(1.0, ls="--", c="#c0392b", lw=1)
        axes[1].set_xlabel("|W1 or share difference| / clinical tolerance")
        axes[2].barh(names, missing, color=cols)
        axes[2].axvline(0.10, ls="--", c="#c0392b", lw=1)
        axes[2].set_xlabel("|change in missing rate|")
        fig.suptitle("Input drift against the training reference")
        out["feature_drift"] = _png(fig)
    windows = report.get("drift_over_time") or []
    if len(windows) >= 1:
        fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
        x = list(range(len(windows)))
        labels = [w["start"][:10] for w in windows]
        features = sorted({k for w in windows for k in w["psi"]})
        worst = sorted(features, key=lambda k: -max((w["psi"].get(k) or 0.0) for w in windows))
        for k in worst[:6]:
            axes[0].plot(x, [w["psi"].get(k) for w in windows], marker="o", label=k)
        axes[0].axhline(0.25, ls="--", c="#c0392b", lw=1)
        axes[0].axhline(0.10, ls="--", c="#e67e22", lw=1)
        axes[0].set_ylabel("PSI")
        axes[0].legend(fontsize=8, ncol=3)
        axes[0].set_title("Input drift per window (six largest)")
        axes[1].plot(x, [w["prediction_wasserstein_mmhg"] for w in windows], marker="o",
                     c="#2c3e50")
        axes[1].axhline(2.0, ls="--", c="#c0392b", lw=1)
        axes[1].set_ylabel("prediction W1 (mmHg)")
        axes[1].set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
        axes[1].set_title("Prediction drift per window")
        out["drift_over_time"] = _png(fig)
    curve = (report.get("calibration") or {}).get("curve")
    if curve and curve.get("predicted"):
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        xs, ys = curve["predicted"], curve["observed"]
        lo, hi = min([*xs, *ys]), max([*xs, *ys])
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1, label="ideal")
        ax.plot(xs, ys, marker="o", c="#1f5fa8", label="option taken (deciles)")
        ax.set_xlabel("predicted 12-week SBP change (mmHg)")
        ax.set_ylabel("observed change (mmHg)")
        ax.set_title("Realised calibration", fontsize=10)
        ax.legend(fontsize=8)
        out["calibration"] = _png(fig)
    return out


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hypermarker monitoring report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.fail,.alarm{color:#c0392b;font-weight:bold}.warning{color:#e67e22}.pass,.ok{color:#27ae60}
.insufficient{color:#7f8c8d}.banner{padding:0.6em 1em;font-size:1.2em}
.banner.passed{background:#e8f6ee}.banner.failed{background:#fdecea}.banner.unjudged{background:#fdf1dc}
img{max-width:100%}small{color:#666}
</style></head><body>
<h1>Monitoring report: {{ r.model.id }} {{ r.model.version }}</h1>
<p class="banner {{ 'passed' if r.passed else ('failed' if r.failed_gates else 'unjudged') }}">
{% if r.passed %}All safety gates passed{% elif r.failed_gates %}FAILED:
{{ r.failed_gates|join(', ') }}{% else %}CANNOT JUDGE (insufficient data):
{{ r.insufficient_gates|join(', ') }}{% endif %}
{% if r.warnings %}; warnings: {{ r.warnings|join(', ') }}{% endif %}</p>
<p>Window {{ r.window.since or 'start' }} to {{ r.window.until or 'now' }}
(assessments {{ r.window.first }} .. {{ r.window.last }}):
{{ r.counts.assessments }} assessments, {{ r.counts.feedback }} feedback,
{{ r.counts.outcomes }} outcomes. Monitor {{ r.monitor_version }}, plan
{{ r.plan_version or 'as given' }}.</p>
<h2>Gates</h2>
<table><tr><th class="l">gate</th><th class="l">metric</th><th>value</th><th>rule</th>
<th>n</th><th class="l">severity</th><th class="l">status</th><th class="l">rationale</th></tr>
{% for g in r.gates %}<tr><td class="l">{{ g.id }}</td><td class="l">{{ g.metric }}</td>
<td>{{ num(g.value) }}</td><td>{{ g.comparator }} {{ g.threshold }}</td>
<td>{{ g.n }} (min {{ g.min_n }})</td><td class="l">{{ g.severity }}</td>
<td class="l {{ g.status }}">{{ g.status }}</td>
<td class="l"><small>{{ g.rationale }}</small></td></tr>
{% endfor %}</table>
<h2>Input drift</h2>
{% if figs.get('feature_drift') %}<img alt="feature drift"
 src="data:image/png;base64,{{ figs.feature_drift }}">{% endif %}
<table><tr><th class="l">feature</th><th>n</th><th>PSI</th><th>W1 / share diff</th>
<th>normalised</th><th>tolerance</th><th>missing (ref)</th><th class="l">status</th></tr>
{% for f in r.drift.input.features %}<tr><td class="l">{{ f.feature }}</td><td>{{ f.n }}</td>
<td>{{ num(f.psi) }}</td><td>{{ num(f.distance) }}</td><td>{{ num(f.distance_normalised) }}</td>
<td>{{ f.tolerance }} {{ f.unit }}</td>
<td>{{ num(f.missing_rate) }} ({{ num(f.missing_rate_reference) }})</td>
<td class="l {{ f.status }}">{{ f.status }}</td></tr>{% endfor %}</table>
<h2>Drift over time</h2>
{% if figs.get('drift_over_time') %}<img alt="drift over time"
 src="data:image/png;base64,{{ figs.drift_over_time }}">
<table><tr><th class="l">window</th><th>n</th><th class="l">alarms</th><th>prediction W1</th></tr>
{% for w in r.get('drift_over_time', []) %}<tr><td class="l">{{ w.start[:16] }}</td>
<td>{{ w.n }}</td>
<td class="l {{ w.status }}">{{ w.alarms|join(', ') or w.status }}</td>
<td>{{ num(w.prediction_wasserstein_mmhg) }}</td></tr>{% endfor %}</table>
{% else %}<p>No windows requested (use --window).</p>{% endif %}
<h2>Predictions and SHAP drivers</h2>
<p>Predicted change over all options: PSI {{ num(r.drift.prediction.psi) }}, W1
{{ num(r.drift.prediction.wasserstein_mmhg) }} mmHg (tolerance
{{ r.drift.prediction.tolerance_mmhg }}), mean {{ num(r.drift.prediction.mean_prediction) }}
mmHg; first option mean {{ num(r.drift.prediction.mean_first_option_prediction) }} mmHg
(<span class="{{ r.drift.prediction.status }}">{{ r.drift.prediction.status }}</span>).</p>
<p>Top-driver shares of the first option: Jensen-Shannon distance
{{ num(r.drift.drivers.js_distance) }}
(<span class="{{ r.drift.drivers.status }}">{{ r.drift.drivers.status }}</span>).</p>
<table><tr><th class="l">feature</th><th>share</th><th>reference</th><th>difference</th></tr>
{% for c in r.drift.drivers.largest_changes %}<tr><td class="l">{{ c.feature }}</td>
<td>{{ num(c.share) }}</td><td>{{ num(c.reference_share) }}</td>
<td>{{ num(c.difference) }}</td></tr>
{% endfor %}</table>
<h2>Realised calibration</h2>
<p>{{ r.calibration.n }} assessments joined with a follow-up clinic SBP (6-26 weeks), each
against the prediction of the option taken. Calibration-in-the-large
{{ num(r.calibration.citl) }} mmHg (99% CI
{{ r.calibration.citl_ci99|map('round', 2)|list if r.calibration.citl_ci99 else 'n/a' }}),
slope {{ num(r.calibration.slope) }} (99% CI
{{ r.calibration.slope_ci99|map('round', 2)|list if r.calibration.slope_ci99 else 'n/a' }}),
intercept {{ num(r.calibration.intercept) }} mmHg, MAE {{ num(r.calibration.mae) }} mmHg,
interval coverage {{ num(r.calibration.coverage) }} (nominal
{{ r.calibration.nominal_coverage }}; 99% CI
{{ r.calibration.coverage_ci99|map('round', 3)|list if r.calibration.coverage_ci99 else 'n/a' }}).
</p>
<table><tr><th class="l">option taken known from</th><th>outcomes</th></tr>
{% for b, k in r.calibration.basis.items() %}<tr><td class="l">{{ b }}</td><td>{{ k }}</td></tr>
{% endfor %}{% for b, k in r.calibration.excluded.items() %}<tr><td class="l">left out:
{{ b }}</td><td>{{ k }}</td></tr>{% endfor %}</table>
<p><small>{{ r.calibration.basis_note }}</small></p>
{% if figs.get('calibration') %}<img alt="realised calibration"
src="data:image/png;base64,{{ figs['calibration'] }}">{% endif %}
<h2>Overrides and alerts</h2>
<table><tr><th class="l">indicator</th><th>cards</th><th>feedback</th><th>accepted</th>
<th>overridden</th><th>override rate</th></tr>
{% for ind, v in r.overrides.by_indicator.items() %}<tr><td class="l">{{ ind }}</td>
<td>{{ v.cards }}</td><td>{{ v.feedback }}</td><td>{{ v.accepted }}</td><td>{{ v.overridden }}</td>
<td>{{ num(v.override_rate) }}</td></tr>{% endfor %}</table>
<table><tr><th class="l">override reason</th><th>overridden</th><th>share</th></tr>
{% for code, v in r.overrides.by_reason.items() %}<tr><td class="l">{{ code }}</td>
<td>{{ v.overridden }}</td><td>{{ num(v.share) }}</td></tr>{% endfor %}</table>
<p>Alert rate (warning + critical cards) {{ num(r.alerts.alert_rate) }}; critical
{{ num(r.alerts.critical_rate) }}; cards by indicator {{ r.alerts.by_indicator }}.</p>
<h2>Latency</h2>
<p>p50 {{ num(r.latency.p50_ms) }} ms, p95 {{ num(r.latency.p95_ms) }} ms, p99
{{ num(r.latency.p99_ms) }} ms over {{ r.latency.n }} calls (SLO: p95 &lt;
{{ r.latency.slo_p95_ms }} ms).</p>
<p><small>Research software: the model was trained on simulated data and is not clinically
validated. Drift measures are effect sizes with clinically set thresholds
(evaluation/drift.py), not p-values.</small></p>
</body></html>
"""


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def render_html(report: Mapping[str, Any]) -> str:
    return html_template(_TEMPLATE, strict=True).render(r=report, figs=figures(report),
                                                        num=_num)


def write_html(report: Mapping[str, Any], path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")
