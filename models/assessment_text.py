"""Plain-text rendering of an assessment document (``hypermarker assess --format text``)."""

from __future__ import annotations

from typing import Any


def _signed(v: float) -> str:
    return f"{v:+.1f}"


def driver_phrase(d: dict[str, Any]) -> str:
    """A SHAP driver of the assessment document in plain words (without its contribution)."""
    if d["feature"] in ("option", "current_regimen"):
        return str(d["label"])
    if d["value"] is None:
        return f"{d['label']} unknown"
    if d["unit"] == "" and d["value"] in (0, 1):
        return f"{d['label']}: {'yes' if d['value'] == 1 else 'no'}"
    unit = f" {d['unit']}" if d["unit"] else ""
    return f"{d['label']} {d['value']:g}{unit}"


def render_text(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    model = doc["model"]
    lines.append(f"Hypertension treatment options ({doc['guideline'].upper()} profile; model "
                 f"{model['id']} {model['version']} on {model['provider']})")
    lines.append("Decision support only: simulated training data, not clinically validated.")
    lines.append("")
    if doc["status"] == "cannot_assess":
        lines.append("CANNOT ASSESS:")
        lines.extend(f"  - {r}" for r in doc["reasons"])
        lines.extend(f"  [{f['severity'].upper()}] {f['message']} ({f['citation']})"
                     for f in doc["findings"])
        return "\n".join(lines) + "\n"
    if doc["status"] == "pathway":
        bp = doc.get("clinic_bp") or {}
        s, d = bp.get("systolic"), bp.get("diastolic")
        lines.append(f"Clinic BP: {'?' if s is None else f'{s:.0f}'}/"
                     f"{'?' if d is None else f'{d:.0f}'} mmHg")
        lines.append("NO RANKED OPTIONS: this patient needs something other than a next step:")
        for stop in doc["stops"]:
            lines.append(f"  [{stop['indicator'].upper()}] {stop['summary']}")
            lines.append(f"      {stop['action']} ({stop['citation']})")
        lines.extend(f"  [{f['severity'].upper()}] {f['message']} ({f['citation']})"
                     for f in doc["findings"])
        return "\n".join(lines) + "\n"
    t = doc["target"]
    current = ", ".join(f"{c} x{d:g}" for c, d in doc["current_regimen"].items()) or "none"
    lines.append(f"Target: below {t['systolic']:.0f}/{t['diastolic']:.0f} mmHg ({t['setting']}; "
                 f"{t['citation']})")
    lines.append(f"Current regimen: {current}")
    lines.append(f"Guideline step: {doc['guideline_step']}; guideline's own choice: "
                 f"{', '.join(doc['guideline_default']) or 'none available'}")
    for f in doc["findings"]:
        lines.append(f"  [{f['severity'].upper()}] {f['message']} ({f['citation']})")
    lines.append("")
    lines.append("Options (ranked by predicted 12-week change in clinic systolic BP; drivers are "
                 "SHAP contributions in mmHg")
    lines.append(f"relative to the model's average prediction of "
                 f"{_signed(doc['drivers_base_value'])} mmHg):")
    for o in doc["options"]:
        rank = f"{o['rank']:>2}." if o["rank"] is not None else " --"
        lo, hi = o["interval"]
        mark = " [guideline]" if o["guideline_preferred"] else ""
        lines.append(
            f"{rank} {o['label']}{mark}: {o['status'].upper()}; "
            f"{_signed(o['predicted_sbp_change'])} mmHg ({o['interval_coverage']:.0%} interval "
            f"{_signed(lo)} to {_signed(hi)}), P(target) {o['p_target']:.0%}")
        for f in o["findings"]:
            extra = f"; monitor: {f['monitoring']}" if f.get("monitoring") else ""
            lines.append(f"      [{f['severity'].upper()}] {f['message']} ({f['citation']}"
                         f"{extra})")
        if o["drivers"]:
            drv = "; ".join(f"{driver_phrase(d)} {_signed(d['contribution'])}"
                            for d in o["drivers"])
            lines.append(f"      drivers: {drv}")
    if doc["provenance"]:
        lines.append("")
        lines.append("Data provenance:")
        for p in doc["provenance"]:
            src = p["source"] or "-"
            lines.append(f"  {p['feature']}: {src} {p['date'] or ''} {p['note'] or ''}".rstrip())
    return "\n".join(lines) + "\n"
