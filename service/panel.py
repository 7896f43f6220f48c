"""The clinician panel: one self-contained HTML page rendered from an assessment.

No external scripts, fonts or styles (the EPR's embedded browser may have no internet); all
text is HTML-escaped. The page shows the ranked options with predicted change and interval,
probability of reaching target, status, the SHAP drivers of each option, the guideline's own
choice, findings with citations and monitoring, and data provenance.
"""

from __future__ import annotations

from html import escape
from typing import Any

from models.assessment import Assessment, AssessmentStatus, OptionAssessment
from models.guideline.findings import Finding

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px;color:#1b1f23}
h1{font-size:18px;margin:0 0 4px}
.disclaimer{background:#fff4ce;border:1px solid #e0c36b;padding:6px 10px;margin:8px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #d0d7de;padding:6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.status{font-weight:600;text-transform:uppercase;font-size:12px}
.recommended{color:#1a7f37}.alternative{color:#57606a}.caution{color:#9a6700}
.contraindicated{color:#cf222e}.beyond-step,.not-lowering{color:#57606a}
.finding{font-size:12px;margin:2px 0}.block{color:#cf222e}.warn{color:#9a6700}
.info{color:#57606a}
.bar{display:inline-block;height:8px;background:#0969da;vertical-align:middle}
.pos{background:#cf222e}
small{color:#57606a}
"""


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _drivers(o: OptionAssessment) -> str:
    if not o.drivers:
        return ""
    biggest = max(abs(d.contribution) for d in o.drivers) or 1.0
    rows = []
    for d in o.drivers:
        width = int(60 * abs(d.contribution) / biggest)
        cls = "bar pos" if d.contribution > 0 else "bar"
        value = "" if d.value is None else f" = {_e(d.value)} {_e(d.unit)}"
        rows.append(f"<div class='finding'><span class='{cls}' style='width:{width}px'></span> "
                    f"{_e(d.label)}{value}: {d.contribution:+.1f} mmHg</div>")
    return "".join(rows)


def _findings(fs: tuple[Finding, ...]) -> str:
    out = []
    for f in fs:
        mon = f" Monitor: {_e(f.monitoring.rstrip('.'))}." if f.monitoring else ""
        sev = f.severity.label
        out.append(f"<div class='finding {_e(sev)}'>[{_e(sev.upper())}] "
                   f"{_e(f.message)} <small>({_e(f.citation)})</small>{mon}</div>")
    return "".join(out)


def render_panel(a: Assessment) -> str:
    m = a.model
    head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'>"
            f"<title>Hypertension treatment options</title><style>{CSS}</style></head><body>"
            f"<h1>Hypertension treatment options</h1>"
            f"<div class='disclaimer'>Decision support only. The model was trained on simulated "
            f"data and is not clinically validated; the clinician decides.</div>"
            f"<small>{_e(a.guideline.upper())} profile · model {_e(m.id)} "
            f"{_e(m.version)} · {_e(m.provider)}</small>")
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        reasons = "".join(f"<li>{_e(r)}</li>" for r in a.reasons)
        return (head + f"<h2>Cannot assess</h2><ul id='reasons'>{reasons}</ul>"
                + _findings(a.findings) + "</body></html>")
    if a.status is AssessmentStatus.PATHWAY:
        stops = "".join(
            f"<li class='stop {_e(s.urgency.value)}' data-stop='{_e(s.code)}'>"
            f"<b>{_e(s.summary)}</b><br>{_e(s.action)} <small>({_e(s.citation)})"
            f"</small></li>" for s in a.stops)
        return (head + "<h2>No ranked options: this patient needs another pathway</h2>"
                f"<ul id='stops'>{stops}</ul>" + _findings(a.findings)
                + "</body></html>")
    t = a.target
    assert t is not None  # an assessed patient has a target
    regimen = ", ".join(f"{_e(c.value)} ×{d:g}" for c, d in a.current_regimen.items()) or "none"
    parts = [head,
             f"<p id='target'><b>Target:</b> below {t.systolic:.0f}/{t.diastolic:.0f} mmHg"
             f" ({_e(t.setting.value)}; {_e(t.citation)}). <b>Current regimen:</b> {regimen}. "
             f"<b>Guideline step:</b> {_e(a.guideline_step)}.</p>",
             (f"<p id='choice-reason'><b>Not the guideline's choice:</b> "
              f"{_e(a.choice_reason)}</p>" if a.choice_reason else ""),
             _findings(a.findings),
             "<table id='options'><thead><tr><th>#</th><th>Option</th><th>Predicted 12-week "
             "change in clinic systolic BP</th><th>P(target)</th><th>Status</th>"
             "<th>Why (SHAP drivers) and flags</th></tr></thead><tbody>"]
    for o in a.options:
        lo, hi = o.interval
        g = " <small>(guideline's choice)</small>" if o.guideline_preferred else ""
        status = _e(o.status.value)
        parts.append(
            f"<tr data-option='{_e(o.option.id)}'><td>{o.rank if o.rank is not None else '–'}"
            f"</td><td>{_e(a.label(o.option))}{g}</td>"
            f"<td>{o.predicted_sbp_change:+.1f} mmHg<br><small>{o.interval_coverage:.0%}"
            f" interval {lo:+.1f} to {hi:+.1f}</small></td><td>{o.p_target:.0%}</td>"
            f"<td class='status {status}'>{status}</td>"
            f"<td>{_drivers(o)}{_findings(o.findings)}</td></tr>")
    parts.append("</tbody></table>")
    if a.drivers_base_value is not None:
        parts.append(f"<small>Drivers are SHAP contributions relative to the model's average "
                     f"prediction of {a.drivers_base_value:+.1f} mmHg.</small>")
    prov = "".join(
        f"<tr><td>{_e(p.feature)}</td><td>{_e(p.source or '')}</td>"
        f"<td>{_e('' if p.date is None else p.date.isoformat())}</td>"
        f"<td>{_e(p.note or '')}</td></tr>" for p in a.provenance)
    parts.append("<h2>Data provenance</h2><table id='provenance'><thead><tr><th>Feature</th>"
                 f"<th>Source</th><th>Date</th><th>Note</th></tr></thead><tbody>{prov}"
                 "</tbody></table></body></html>")
    return "".join(parts)
