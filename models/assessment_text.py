"""Plain-text rendering of an assessment (``hypermarker assess --format text``).

What a clinician reads: drugs and doses, never internal ids; each option's expected effect
with its interval, the range of one clinic reading labelled as such, and the chance of a
reading below target only where it means something (:mod:`models.uncertainty_words`); the
drivers in words against their stated baseline, and the first option against the guideline's
choice.
"""

from __future__ import annotations

from models.assessment import Assessment, AssessmentStatus, ChoiceComparison, Driver
from models.driver_words import current_words
from models.guideline.findings import Finding
from models.uncertainty_words import effect_words, p_target_words, reading_words
from vocabulary.feature_table import FEATURES_BY_NAME


def _signed(v: float) -> str:
    return f"{v:+.1f}"


def driver_phrase(d: Driver) -> str:
    """A SHAP driver in plain words with its contribution: "age 69: favours amlodipine
    (...) (-1.2 mmHg)"."""
    return f"{d.words} ({_signed(d.contribution)} mmHg)"


def comparison_lines(c: ChoiceComparison) -> list[str]:
    """The first option against the guideline's choice: the summary, then each driver of the
    difference."""
    return [c.summary, *(f"- {driver_phrase(d)}" for d in c.drivers)]


def guideline_choice_words(a: Assessment) -> str:
    """The guideline's own choice as option labels (never ids)."""
    labels = [a.label(o.option) for o in a.options if o.guideline_preferred]
    return "; ".join(labels) or "none available"


def _finding(f: Finding, indent: str = "  ", *, monitoring: bool = False) -> str:
    extra = f"; monitor: {f.monitoring}" if monitoring and f.monitoring else ""
    return f"{indent}[{f.severity.label.upper()}] {f.message} ({f.citation}{extra})"


def _bp(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


def render_text(a: Assessment) -> str:
    lines: list[str] = []
    model = a.model
    lines.append(f"Hypertension treatment options ({a.guideline.upper()} profile; model "
                 f"{model.id} {model.version})")
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
    lines.append(f"Target: below {t.systolic:.0f}/{t.diastolic:.0f} mmHg ({t.setting.value}; "
                 f"{t.citation})")
    s, d = a.clinic_bp
    lines.append(f"Clinic BP: {_bp(s)}/{_bp(d)} mmHg; "
                 f"{current_words(a.current_regimen, a.current_drugs)}")
    lines.append(f"Guideline step: {a.guideline_step}; guideline's own choice: "
                 f"{guideline_choice_words(a)}")
    if a.choice_reason:
        lines.append(f"Not the guideline's choice: {a.choice_reason}")
    if a.comparison is not None:
        lines.append("First option against the guideline's choice: "
                     + "\n  ".join(comparison_lines(a.comparison)))
    lines.extend(_finding(f) for f in a.findings)
    lines.append("")
    lines.append("Options (ranked by expected effect on systolic BP at 12 weeks within the "
                 "guideline's step; mmHg, negative lowers).")
    if a.drivers_baseline:
        lines.append(f"Drivers: what makes an option's expected effect differ from "
                     f"{a.drivers_baseline}.")
    for o in a.options:
        rank = f"{o.rank:>2}." if o.rank is not None else " --"
        mark = " [guideline's choice]" if o.guideline_preferred else ""
        lines.append(f"{rank} {a.label(o.option)}{mark}: {o.status_words.upper()}; "
                     f"{effect_words(o.expected_effect, o.effect_interval, o.effect_coverage)}")
        detail = [reading_words(o.interval, o.interval_coverage)]
        if o.p_target_shown:
            detail.append(p_target_words(o.p_target, t))
        lines.append("      " + "; ".join(detail))
        lines.extend(_finding(f, "      ", monitoring=True) for f in o.findings)
        if o.drivers:
            lines.append("      drivers: " + "; ".join(driver_phrase(d) for d in o.drivers))
    if a.provenance:
        lines.append("")
        lines.append("Data provenance:")
        for p in a.provenance:
            day = "" if p.date is None else p.date.isoformat()
            label = FEATURES_BY_NAME[p.feature].label if p.feature in FEATURES_BY_NAME \
                else p.feature
            lines.append(f"  {label}: {p.source or '-'} {day} {p.note or ''}".rstrip())
    return "\n".join(lines) + "\n"
