"""Evaluation reports: JSON for machines, one self-contained HTML page for people
(calibration curves, subgroup bars and each gate's estimate with its confidence interval against
the goal line, as embedded PNGs; no external assets), with the run's provenance (time, commit,
artifact and plan hashes). The JSON, PNG and template helpers are :mod:`evaluation.report_io`,
shared with the monitoring report.

Statuses are drawn as they are: a failed gate red, an insufficient one (no figure, or too few
patients) amber and named as such, a warning (a check of severity ``warn`` outside its
threshold) in its own colour and never as a failure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from evaluation.plan import lookup
from evaluation.report_io import html_template, png, to_json, write_json

__all__ = ["figures", "gate_figures", "render_html", "to_json", "write_html", "write_json"]

#: Marker colour of a status in the gate figures.
STATUS_COLOURS = {"pass": "#176c2f", "fail": "#b00020", "insufficient": "#d08000",
                  "skipped": "#888888", "warning": "#b8860b"}
#: The goal of interval coverage: within this many points of nominal, in every subgroup.
COVERAGE_TOLERANCE = 0.02


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


def interval_plot(rows: list[dict[str, Any]], title: str, goals: list[float],
                  ideal: float | None = None, band: tuple[float, float] | None = None) -> str:
    """Estimates with their intervals (one row each: label, estimate, lower, upper, status),
    a dashed line at each goal threshold, a dotted line at the ideal value and a shaded goal
    band."""
    fig, ax = plt.subplots(figsize=(6.2, 0.32 * max(len(rows), 3) + 1.2))
    for i, r in enumerate(rows):
        colour = STATUS_COLOURS.get(r["status"], "#1f5fa8")
        est, lo, hi = r["estimate"], r["lower"], r["upper"]
        if lo is not None and hi is not None and est is not None:
            ax.errorbar([est], [i], xerr=[[est - lo], [hi - est]], fmt="o", color=colour,
                        capsize=3, ms=4)
        elif est is not None:
            ax.plot([est], [i], marker="o", color=colour, ms=4)
    if band is not None:
        ax.axvspan(band[0], band[1], color="#176c2f", alpha=0.08)
    for g in goals:
        ax.axvline(g, ls="--", color="#b00020", lw=1)
    if ideal is not None:
        ax.axvline(ideal, ls=":", color="grey", lw=1)
    ax.set_yticks(range(len(rows)), [f"{r['label']} (n={r['n']})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    goal_text = " and ".join(f"{g:g}" for g in goals)
    ax.set_title(f"{title}\ngoal line(s) at {goal_text}; 95% intervals", fontsize=9)
    return _png(fig)


def _rows_of(value: Any, statuses: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Plot rows of an estimate or a table of them."""
    if isinstance(value, Mapping) and "estimate" in value:
        value = {"estimate": value}
    out = []
    for label, e in (value or {}).items():
        if isinstance(e, Mapping) and "estimate" in e:
            out.append({"label": label, "estimate": e["estimate"], "lower": e.get("lower"),
                        "upper": e.get("upper"), "n": e.get("n"),
                        "status": (statuses or {}).get(label, "estimate")})
    return out


def gate_figures(suite: dict[str, Any], results: list[dict[str, Any]]
                 ) -> list[tuple[str, str]]:
    """(caption, base64 PNG): each gated metric of the suite that is an estimate, with its
    interval(s) against the goal line(s); and the interval coverage by subgroup against its
    nominal level (the coverage goal: within 2 points of nominal in every subgroup)."""
    name = suite.get("suite", "")
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["suite"] == name and r.get("bound") is not None:
            by_metric.setdefault(r["metric"], []).append(r)
    out = []
    for metric, checks in by_metric.items():
        if metric == "subgroup_estimates.interval_coverage":
            continue  # drawn below, against its nominal level
        statuses: dict[str, str] = {}
        for r in checks:
            for m in r.get("members") or []:
                worse = statuses.get(m["member"], "pass")
                statuses[m["member"]] = m["status"] if m["status"] != "pass" else worse
            if not r.get("members"):
                statuses["estimate"] = r["status"]
        rows = _rows_of(lookup(suite, metric), statuses)
        if not rows:
            continue
        goals = sorted({float(r["threshold"]) for r in checks})
        ideal = 1.0 if metric.endswith("calibration_slope") else None
        band = (goals[0], goals[-1]) if len(goals) == 2 else None
        ids = ", ".join(sorted({r["id"] for r in checks}))
        caption = f"{name}: {metric} ({ids}), goal {' to '.join(f'{g:g}' for g in goals)}"
        out.append((caption, interval_plot(rows, f"{name}: {metric}", goals, ideal, band)))
    coverage = lookup(suite, "subgroup_estimates.interval_coverage")
    nominal = lookup(suite, "interval.nominal")
    if coverage and isinstance(nominal, int | float):
        statuses = {}
        for r in results:
            if r["suite"] == name and r["metric"] == "subgroup_estimates.interval_coverage":
                statuses.update({m["member"]: m["status"] for m in r.get("members") or []})
        goals = [nominal - COVERAGE_TOLERANCE, nominal + COVERAGE_TOLERANCE]
        out.append((f"{name}: interval coverage by subgroup against the nominal {nominal:.2f} "
                    f"(goal: within {COVERAGE_TOLERANCE * 100:.0f} points in every subgroup)",
                    interval_plot(_rows_of(coverage, statuses),
                                  f"{name}: interval coverage (nominal {nominal:.2f})", goals,
                                  nominal, (goals[0], goals[1]))))
    return out


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
body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:0.9em;text-align:left}.pass{color:#176c2f}.fail{color:#b00020;font-weight:bold}
.insufficient{color:#d08000;font-weight:bold}.warning{color:#b8860b}
.skipped{color:#888}.banner{padding:0.6em 1em;border-radius:4px;font-weight:bold}
.ok{background:#e3f4e8}.bad{background:#fbe3e6}.unjudged{background:#fdf1dc}
figure{display:inline-block;margin:0.5em}figcaption{font-size:0.85em;max-width:40em}
</style></head><body>
<h1>Evaluation report</h1>
<p>Model <b>{{ model.id }}</b> version {{ model.version }} ({{ model.provider }}), mode
<b>{{ mode }}</b>{% if target %} against <code>{{ target }}</code>{% endif %};
plan {{ checks.plan_version }}. Research software on simulated data: not clinically validated.</p>
<h2>Run</h2>
<table>
<tr><th>time (UTC)</th><td>{{ prov.time_utc or '-' }}</td></tr>
<tr><th>commit</th><td><code>{{ prov.commit or 'unknown' }}</code>{% if prov.worktree_modified %}
(tracked files modified since){% endif %}</td></tr>
<tr><th>artifacts manifest sha256</th><td><code>{{ prov.artifacts_manifest_sha256 or '-' }}</code>
({{ prov.artifacts_manifest or '-' }})</td></tr>
<tr><th>plan sha256</th><td><code>{{ prov.plan_sha256 or '-' }}</code> ({{ prov.plan or '-' }},
version {{ checks.plan_version }})</td></tr>
<tr><th>command</th><td><code>{{ prov.command or '-' }}</code></td></tr>
</table>
<p class="banner {{ {'pass': 'ok', 'fail': 'bad'}.get(checks.status, 'unjudged') }}">
{% if checks.status == 'pass' %}All gates passed{% elif checks.status == 'fail' %}Gates failed:
{{ checks.gates_failed | join(', ') }}{% if checks.gates_insufficient %}; insufficient data:
{{ checks.gates_insufficient | join(', ') }}{% endif %}{% else %}Cannot judge (insufficient
data): {{ checks.gates_insufficient | join(', ') }}{% endif %}{% if checks.warnings %};
warnings (reported, not failures): {{ checks.warnings | join(', ') }}{% endif %}</p>
<h2>Checks</h2>
<p>A gate with a bound reads one end of the estimate's 95% interval (patient-level bootstrap):
it passes only when that end is on the goal's side. For a table of subgroups the row shows
the worst subgroup.</p>
<table><tr><th>check</th><th>suite</th><th>metric</th><th>estimate [95% interval]</th>
<th>compared</th><th>goal</th><th>severity</th><th>status</th><th>rationale</th></tr>
{% for r in checks.results %}<tr><td>{{ r.id }}</td><td>{{ r.suite }}</td>
<td>{{ r.metric }}{% if r.member %} [{{ r.member }}]{% endif %}</td>
<td>{% if r.estimate is not none %}{{ fmt(r.estimate) }} [{{ fmt(r.lower) }}, {{ fmt(r.upper) }}]
(n={{ r.n }}){% else %}{{ fmt(r.value) }}{% endif %}</td>
<td>{{ r.bound or 'value' }} = {{ fmt(r.value) }}</td>
<td>{{ r.comparator }} {{ r.threshold }}</td><td>{{ r.severity }}</td>
{% set shown = 'warning' if (r.severity == 'warn' and r.status == 'fail') else r.status %}
<td class="{{ shown }}">{{ shown }}</td><td>{{ r.rationale }}</td></tr>{% endfor %}
</table>
{% for s in suites %}
<h2>Suite: {{ s.report.suite }}</h2>
<table>{% for k, v in s.headline %}<tr><th>{{ k }}</th><td>{{ fmt(v) }}</td></tr>{% endfor %}
</table>
{% if s.decisions %}<h3>Decision metrics (95% intervals, patient-level bootstrap)</h3>
<table><tr><th>metric</th><th>estimate</th><th>95% interval</th><th>n</th></tr>
{% for k, e in s.decisions %}<tr><td>{{ k }}</td><td>{{ fmt(e.estimate) }}</td>
<td>[{{ fmt(e.lower) }}, {{ fmt(e.upper) }}]</td><td>{{ e.n }}</td></tr>{% endfor %}</table>
{% endif %}
{% if s.by_subgroup %}<h3>The policy's gains by subgroup (true change, mmHg; 95% intervals)</h3>
<table><tr><th>subgroup</th><th>over the guideline default</th>
<th>over the within-step comparator</th></tr>
{% for member, g, w in s.by_subgroup %}<tr><td>{{ member }}</td>
<td>{{ fmt(g.estimate) }} [{{ fmt(g.lower) }}, {{ fmt(g.upper) }}] (n={{ g.n }})</td>
<td>{% if w %}{{ fmt(w.estimate) }} [{{ fmt(w.lower) }}, {{ fmt(w.upper) }}] (n={{ w.n }}){% else
%}-{% endif %}</td></tr>{% endfor %}</table>
{% endif %}
{% for source, dist in s.distribution %}<h3>First options of the assessed patients: {{ source }}
({{ dist.assessed }} assessed)</h3>
<table><tr><th>kind and classes</th><th>count</th><th>share</th></tr>
{% for k, v in dist.by_class.items() %}<tr><td>{{ k }}</td><td>{{ v.count }}</td>
<td>{{ '%.1f' % (100 * v.share) }}%</td></tr>{% endfor %}</table>
<table><tr><th>guideline step</th><th>count</th><th>share</th></tr>
{% for k, v in dist.by_step.items() %}<tr><td>{{ k }}</td><td>{{ v.count }}</td>
<td>{{ '%.1f' % (100 * v.share) }}%</td></tr>{% endfor %}</table>
{% endfor %}
{% for caption, png in s.gate_figures %}<figure><img alt="{{ caption }}"
src="data:image/png;base64,{{ png }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
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
    ("interval nominal coverage", "interval.nominal"),
    ("target attainment AUROC", "target_attainment.auroc"),
    ("target attainment Brier", "target_attainment.brier"),
    ("Brier, prevalence baseline", "target_attainment.baseline_prevalence.brier"),
    ("guideline concordance", "guideline_concordance"),
    ("mean true change: model first", "mean_true_change.model_first"),
    ("mean true change: guideline default", "mean_true_change.guideline_default"),
    ("mean true change: best safe option", "mean_true_change.best_safe_option"),
    ("mean true change: random safe option", "mean_true_change.random_safe_option"),
    ("captured fraction over a random safe option: model", "captured_fraction.model_first"),
    ("captured fraction over a random safe option: guideline default",
     "captured_fraction.guideline_default"),
    ("largest subgroup MAE gap (mmHg)", "subgroups.largest_gap.mae_true.gap"),
    ("patient-options/s end to end (SHAP off)", "throughput.rows_per_second"),
    ("blocked option ranked", "blocked_option_ranked"),
    ("bundles", "bundles"), ("mapped", "mapped"), ("assessed", "assessed"),
    ("cannot assess", "cannot_assess"), ("errors", "errors"),
    ("agreement with in-process", "agreement_with_in_process"),
    ("latency p50 (ms)", "latency_ms.p50"), ("latency p99 (ms)", "latency_ms.p99"),
)

#: The decision metrics shown with their intervals (label, path in ``decision_metrics``).
DECISIONS = (
    ("captured fraction over the guideline default (goal)",
     "captured_fraction_vs_guideline_default"),
    ("captured fraction over a random safe option", "captured_fraction_vs_random_safe"),
    ("gain over the guideline default (mmHg; goal: interval above 0)",
     "gain_over_guideline_default_mmhg"),
    ("within-step comparator (the step's option with the best population-mean true effect): "
     "captured fraction", "within_step_comparator.captured_fraction_vs_guideline_default"),
    ("policy's gain over the within-step comparator (mmHg; goal: interval above 0)",
     "gain_over_within_step_comparator_mmhg"),
    ("policy's gain over the within-step comparator on population-mean predicted effects "
     "(mmHg)", "within_step_comparator_predicted.model_gain_mmhg"),
    ("non-personalised ranking (population-mean true effect): captured fraction",
     "population_ranking.captured_fraction_vs_guideline_default"),
    ("non-personalised ranking (population-mean true effect): captured fraction over a "
     "random safe option", "population_ranking.captured_fraction_vs_random_safe"),
    ("model's gain over it (mmHg): value of personalisation",
     "population_ranking.model_gain_mmhg"),
    ("non-personalised ranking (population-mean predicted effect): captured fraction",
     "population_ranking_predicted.captured_fraction_vs_guideline_default"),
    ("model's gain over it (mmHg)", "population_ranking_predicted.model_gain_mmhg"),
    ("off-guideline-first rate", "off_guideline_first_rate"),
    ("caution-first rate", "caution_first_rate"),
    ("contraindicated-first rate (must be 0)", "contraindicated_first_rate"),
    ("person-level oracle: benefit over the guideline default (mmHg)",
     "oracle.person_level.benefit_over_guideline_default_mmhg"),
    ("feature-explainable oracle: benefit over the guideline default (mmHg)",
     "oracle.feature_explainable.benefit_over_guideline_default_mmhg"),
    ("captured fraction against the feature-explainable oracle",
     "oracle.feature_explainable.captured_fraction"),
    ("feature-explainable share of the person-level benefit",
     "oracle.feature_explainable.share_of_person_level_benefit"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "-"
    return str(v)


def _by_subgroup(suite: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(subgroup, gain over the guideline default, gain over the within-step comparator)."""
    table = (suite.get("decision_metrics") or {}).get("by_subgroup") or {}
    default = table.get("gain_over_guideline_default_mmhg") or {}
    within = table.get("gain_over_within_step_comparator_mmhg") or {}
    return [(m, e, within.get(m)) for m, e in default.items()]


def _distribution(suite: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(source, distribution) of the fhir suite's first options (fixtures, generated, all)."""
    dist = suite.get("first_option_distribution") or {}
    names = {"fixtures": "FHIR fixtures", "generated": "generated FHIR bundles",
             "all": "both"}
    return [(names[k], dist[k]) for k in names if dist.get(k)]


def render_html(result: dict[str, Any]) -> str:
    suites = []
    results = result["checks"]["results"]
    for r in result["suites"]:
        headline = [(k, v) for k, p in HEADLINE if (v := lookup(r, p)) is not None]
        decisions = [(k, e) for k, p in DECISIONS
                     if isinstance(e := lookup(r, f"decision_metrics.{p}"), Mapping)]
        suites.append({"report": r, "headline": headline, "decisions": decisions,
                       "by_subgroup": _by_subgroup(r), "distribution": _distribution(r),
                       "gate_figures": gate_figures(r, results), "figures": figures(r)})
    checks = {"status": "pass" if result["checks"].get("gate_passed") else "fail",
              "gates_insufficient": [], **result["checks"]}
    html: str = _TEMPLATE.render(model=result["model"], mode=result.get("mode", "in-process"),
                                 target=result.get("target"), checks=checks,
                                 prov=result.get("provenance") or {}, suites=suites,
                                 fmt=_fmt)
    return html


def write_html(result: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(result), encoding="utf-8")
