"""Plain-text rendering of an assessment (``hypermarker assess --format text``)."""

from __future__ import annotations

from models.assessment import Assessment, AssessmentStatus, Driver
from models.guideline.findings import Finding


def _signed(v: float) -> str:
    return f"{v:+.1f}"


def driver_phrase(d: Driver) -> str:
    """A SHAP driver in plain words (without its contribution)."""
    if d.feature in ("option", "current_regimen"):
        return d.label
    if d.value is None:
        return f"{d.label} unknown"
    if d.unit == "" and d.value in (0, 1):
        return f"{d.label}: {'yes' if d.value == 1 else 'no'}"
    unit = f" {d.unit}" if d.unit else ""
    return f"{d.label} {d.value:g}{unit}"


def _finding(f: Finding, indent: str = "  ", *, monitoring: bool = False) -> str:
    extra = f"; monitor: {f.monitoring}" if monitoring and f.monitoring else ""
    return f"{indent}[{f.severity.label.upper()}] {f.message} ({f.citation}{extra})"


def _bp(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def render_text(a: Assessment) -> str:
    lines: list[str] = []
    model = a.model
    lines.append(f"Hypertension treatment options ({a.guideline.upper()} profile; model "
                 f"{model.id} {model.version} on {model.provider})")
    lines.append("Decision support only: simulated training data, not clinically validated.")
    lines.append("")
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        lines.append("CANNOT ASSESS:")
        lines.extend(f"  - {r}" for r in a.reasons)
        lines.extend(_finding(f) for f in a.findings)
        return "\n".join(lines) + "\n"
    if a.status is AssessmentStatus.PATHWAY:
        s, d = a.clinic_bp
        lines.append(f"Clinic BP: {_bp(s)}/{_bp(d)} mmHg")
        lines.append("NO RANKED OPTIONS: this patient needs something other than a next step:")
        for stop in a.stops:
            lines.append(f"  [{stop.urgency.value.upper()}] {stop.summary}")
            lines.append(f"      {stop.action} ({stop.citation})")
        lines.extend(_finding(f) for f in a.findings)
        return "\n".join(lines) + "\n"
    t = a.target
    assert t is not None  # an assessed patient has a target
    current = ", ".join(f"{c.value} x{d:g}" for c, d in a.current_regimen.items()) or "none"
    lines.append(f"Target: below {t.systolic:.0f}/{t.diastolic:.0f} mmHg ({t.setting.value}; "
                 f"{t.citation})")
    lines.append(f"Current regimen: {current}")
    lines.append(f"Guideline step: {a.guideline_step}; guideline's own choice: "
                 f"{', '.join(a.guideline_default) or 'none available'}")
    if a.choice_reason:
        lines.append(f"Not the guideline's choice: {a.choice_reason}")
    lines.extend(_finding(f) for f in a.findings)
    lines.append("")
    lines.append("Options (ranked by predicted 12-week change in clinic systolic BP; drivers are "
                 "SHAP contributions in mmHg")
    base = a.drivers_base_value
    lines.append(f"relative to the model's average prediction of "
                 f"{'?' if base is None else _signed(base)} mmHg):")
    for o in a.options:
        rank = f"{o.rank:>2}." if o.rank is not None else " --"
        lo, hi = o.interval
        mark = " [guideline]" if o.guideline_preferred else ""
        lines.append(
            f"{rank} {a.label(o.option)}{mark}: {o.status.value.upper()}; "
            f"{_signed(o.predicted_sbp_change)} mmHg ({o.interval_coverage:.0%} interval "
            f"{_signed(lo)} to {_signed(hi)}), P(target) {o.p_target:.0%}")
        lines.extend(_finding(f, "      ", monitoring=True) for f in o.findings)
        if o.drivers:
            drv = "; ".join(f"{driver_phrase(d)} {_signed(d.contribution)}" for d in o.drivers)
            lines.append(f"      drivers: {drv}")
    if a.provenance:
        lines.append("")
        lines.append("Data provenance:")
        for p in a.provenance:
            day = "" if p.date is None else p.date.isoformat()
            lines.append(f"  {p.feature}: {p.source or '-'} {day} {p.note or ''}".rstrip())
    return "\n".join(lines) + "\n"
