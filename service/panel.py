"""The clinician panel: one self-contained, accessible HTML page rendered from an assessment.

No external scripts, fonts or styles (the EPR's embedded browser may have no internet); all
text from the assessment is HTML-escaped and put in words (:mod:`service.panel_words`: no
internal id reaches the clinician). The page is a banner (the patient: a name only where the
SMART launch gives one, age and sex where known; the guideline; the disclaimer), then for an
assessed patient the clinic BP with its date against the target, the guideline step, the
current drugs and doses, the guideline's choice, the findings with their citations, the
grouped options (:mod:`service.panel_options`) with their drivers on one scale
(:mod:`service.panel_chart`), an optional verified explanation, the data missing or set aside
and where each value came from (:mod:`service.panel_data`); the pathway and cannot-assess pages
say what to do instead and why. Readable at 400 px, with landmarks, ordered headings, table
headers and keyboard-operable disclosure widgets.
"""

from __future__ import annotations

from fhir_mappings.features import FeatureVector
from models.assessment import Assessment, AssessmentStatus
from models.guideline.profiles import PROFILES
from models.guideline.stops import Urgency
from service.panel_chart import Bar, Scale, render_chart
from service.panel_data import render_missing, render_provenance
from service.panel_options import driver_bars, findings_list, render_options
from service.panel_style import CSS
from service.panel_words import day_words, e, mmhg, plain, regimen_words, sex_words

TITLE = "Hypertension treatment options"
DISCLAIMER = ("Decision support only. The model was trained on simulated data and is not "
              "clinically validated; the clinician decides.")


def _guideline_title(a: Assessment) -> str:
    profile = PROFILES.get(a.guideline)
    return profile.title if profile is not None else a.guideline.upper()


def _banner(a: Assessment, features: FeatureVector | None, patient_name: str | None) -> str:
    who = e(patient_name or "Patient in the EPR's current context")
    facts = []
    if features is not None:
        age = features.get("age")
        if age is not None:
            facts.append(f"{age:.0f} years")
        sex = sex_words(features.get("sex_female"))
        if sex is not None:
            facts.append(sex)
    about = f" <span class='facts'>({e(', '.join(facts))})</span>" if facts else ""
    return (f"<header><h1>{TITLE}</h1><p class='patient'>{who}{about}</p>"
            f"<p class='meta'>Guideline: {e(_guideline_title(a))}</p>"
            f"<p class='disclaimer'>{e(DISCLAIMER)}</p></header>")


def _bp_words(a: Assessment, features: FeatureVector | None) -> str:
    sbp, dbp = a.clinic_bp
    if sbp is None:
        return "no clinic reading"
    text = f"{sbp:.0f}/{dbp:.0f} mmHg" if dbp is not None else f"{sbp:.0f} mmHg systolic"
    when = next((p.date for p in a.provenance if p.feature == "sbp_clinic" and p.date), None)
    if when is not None:
        ago = f", {(features.as_of - when).days} days ago" if features is not None else ""
        text += f" on {day_words(when)}{ago}"
    else:
        text += " (date unknown)"
    t = a.target
    if t is not None:
        below = sbp < t.systolic and (dbp is None or dbp < t.diastolic)
        text += ": below the target" if below else ": not below the target"
    return text


def _summary(a: Assessment, features: FeatureVector | None) -> str:
    rows = [("Clinic BP", e(_bp_words(a, features)))]
    t = a.target
    if t is not None:
        rows.append(("Target", f"below {t.systolic:.0f}/{t.diastolic:.0f} mmHg "
                               f"({e(t.setting.value)} reading) <cite>{e(t.citation)}</cite>"))
    if a.guideline_step:
        rows.append(("Guideline step", e(plain(a.guideline_step))))
    drugs = regimen_words(a.current_regimen, a.current_drugs)
    rows.append(("Current antihypertensives",
                 "<ul class='regimen'>" + "".join(f"<li>{e(d)}</li>" for d in drugs)
                 + "</ul>" if drugs else "none recorded"))
    choice = [plain(a.label(o.option)) for o in a.options if o.guideline_preferred]
    if a.status is AssessmentStatus.ASSESSED:
        rows.append(("The guideline's choice", e("; ".join(choice)) if choice
                     else "none available for this patient"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    why = (f"<p class='choice-reason'><strong>Why the first option is not the guideline's "
           f"choice:</strong> {e(plain(a.choice_reason))}</p>" if a.choice_reason else "")
    return ("<section class='summary' aria-labelledby='now-h'><h2 id='now-h'>Blood pressure "
            f"and treatment now</h2><dl>{body}</dl>{why}</section>")


def _findings_section(a: Assessment, title: str = "Findings for this patient") -> str:
    if not a.findings:
        return ""
    return (f"<section aria-labelledby='findings-h'><h2 id='findings-h'>{e(title)}</h2>"
            f"{findings_list(a.findings)}</section>")


def _baseline_words(a: Assessment) -> str:
    if a.drivers_baseline is not None:
        return a.drivers_baseline
    if a.drivers_base_value is None:
        return "the model's average prediction"
    return f"the model's average prediction ({mmhg(a.drivers_base_value)})"


def _comparison_bars(a: Assessment) -> tuple[Bar, ...]:
    c = a.comparison
    return () if c is None else tuple(Bar(plain(d.words), d.contribution) for d in c.drivers)


def page_scale(a: Assessment) -> Scale:
    """The one scale every chart of the page is drawn on."""
    return Scale.covering([*_comparison_bars(a), *(b for o in a.options
                                                   for b in driver_bars(o))])


def _comparison(a: Assessment, scale: Scale) -> str:
    c = a.comparison
    if c is None:
        return ""
    chart = render_chart(_comparison_bars(a), scale,
                         f"What makes the difference between {c.first_label} and "
                         f"{c.choice_label} for this patient",
                         lower=f"favours {c.first_label}", higher=f"favours {c.choice_label}")
    return ("<section aria-labelledby='why-h'><h2 id='why-h'>Why the first option rather than "
            f"the guideline's choice</h2><p>{e(plain(c.summary))}</p>{chart}</section>")


def _assessed(a: Assessment, features: FeatureVector | None,
              rationale_html: str | None) -> str:
    scale = page_scale(a)
    explanation = (f"<section aria-labelledby='explanation-h'><h2 id='explanation-h'>"
                   f"Explanation</h2>{rationale_html}</section>" if rationale_html else "")
    return (_summary(a, features) + _comparison(a, scale) + _findings_section(a)
            + explanation + "<section aria-labelledby='options-h'><h2 id='options-h'>Options</h2>"
            + render_options(a, scale, _baseline_words(a)) + "</section>")


def _pathway(a: Assessment, features: FeatureVector | None) -> str:
    stops = "".join(
        f"<li class='stop' data-stop='{e(s.code)}'><h3>"
        f"{'Urgent: ' if s.urgency is Urgency.CRITICAL else ''}{e(plain(s.summary))}</h3>"
        f"<p>{e(plain(s.action))} <cite>{e(s.citation)}</cite></p></li>" for s in a.stops)
    flagged = [(o, fs) for o, fs in a.checked if fs]
    checked = "".join(f"<li><strong>{e(plain(a.label(o)))}</strong>{findings_list(fs)}</li>"
                      for o, fs in flagged)
    check = (f"<details><summary>Safety check of the options, for an order placed now "
             f"({len(flagged)} with a finding)</summary><ul>{checked}</ul></details>"
             if flagged else "")
    return ("<section aria-labelledby='pathway-h'><h2 id='pathway-h'>No ranked options: this "
            f"patient needs another pathway first</h2><ul class='stops'>{stops}</ul>{check}"
            "</section>" + _summary(a, features) + _findings_section(a, "Notes"))


def _cannot_assess(a: Assessment) -> str:
    reasons = "".join(f"<li>{e(plain(r))}</li>" for r in a.reasons)
    return ("<section aria-labelledby='cannot-h'><h2 id='cannot-h'>Cannot assess this "
            f"patient</h2><p>No options are ranked, because:</p><ul class='reasons'>{reasons}"
            "</ul></section>" + _findings_section(a, "Notes"))


def _footer(a: Assessment) -> str:
    m = a.model
    return (f"<footer><p>Blood-pressure response model, version {e(m.version)}; trained on "
            f"simulated data, not clinically validated. Guideline rules: "
            f"{e(_guideline_title(a))}.</p></footer>")


def render_panel(a: Assessment, *, features: FeatureVector | None = None,
                 patient_name: str | None = None, rationale_html: str | None = None) -> str:
    """The whole page.

    ``features``: the patient's features (age, sex, and the date the panel is read on), when
    the caller has them. ``patient_name``: only a name the SMART launch or the record gives;
    without it the banner names the EPR's context, never an id. ``rationale_html``: a
    pre-rendered, already verified and escaped HTML fragment (issue 16) shown under the heading
    "Explanation"; the caller is responsible for its safety.
    """
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        body = _cannot_assess(a)
    elif a.status is AssessmentStatus.PATHWAY:
        body = _pathway(a, features)
    else:
        body = _assessed(a, features, rationale_html)
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{TITLE}</title><style>{CSS}</style></head><body>"
            f"{_banner(a, features, patient_name)}<main data-status='{e(a.status)}'>{body}"
            f"{render_missing(a)}{render_provenance(a)}</main>{_footer(a)}</body></html>")
