"""Assessment -> CDS Hooks cards.

At most one card per call in normal cases (DESIGN.md section 6), summary under 140 characters.
On order hooks, only a relevant order gets a card (:mod:`service.orders`): an order that is
neither an antihypertensive nor a drug that interacts with the regimen (a statin, an imaging
request) gets none. A drug that interacts with the regimen (NSAID, potassium, lithium ...)
gets one card about the interaction, without the ranked options (none when it adds nothing
to the current regimen). What the card about an antihypertensive says follows the
assessment's status:

* ``pathway`` (a stop condition): the stop's own indicator (critical: act today; warning:
  review first), what the guideline asks for, and no suggestion; an order for a class the stop
  says to avoid is named in the summary and is always critical;
* ``cannot_assess``: the reasons; on order hooks a ``warning`` (the order was not checked);
* ``assessed``: the headline says "above target" only when clinic BP (systolic or diastolic)
  is at or above the target, and names the stage when an untreated patient is considered for
  treatment; at or below target, order hooks get no intensification suggestion and an order
  for an antihypertensive is named as over-treatment (``warning``); ``critical`` when the drug
  being ordered is contraindicated, ``warning`` when it needs a caution.

The interactions of the drug being ordered with the current regimen are named on the card and
raise its indicator (critical for a contraindication).

Each card carries a uuid (random: a resent hook instance is a new, separately audited answer),
the source label with the model id and version, override reasons, a SMART link to the panel
and, on order hooks above target, suggestions that create or replace the MedicationRequest for
the top safe options. A suggestion never orders a class the draft orders already (so never
replaces a draft of the same drug) and, when the draft starts a ranked option, only an option
ranked above it; its coding lists the orderable product (dm+d VMP, then RxNorm SCD) first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from fhir_mappings.availability import REQUIRED_DOMAINS
from models.assessment import Assessment, AssessmentStatus, OptionAssessment, OptionStatus
from models.assessment_text import driver_phrase
from models.guideline.findings import Finding, Severity, max_severity
from models.guideline.stops import Urgency
from models.options import Action as OptionAction
from models.options import TreatmentOption
from models.prescribing import StartingProduct
from models.uncertainty_words import P_TARGET_COLUMN, effect_short, reading_words
from service.orders import is_antihypertensive, order_label
from service.schemas.cds_hooks import (
    Action,
    Card,
    Link,
    OverrideReason,
    Source,
    Suggestion,
)
from vocabulary.drug_classes import CLASS_INFO, DrugClass, class_names
from vocabulary.feature_table import FEATURES_BY_NAME

OVERRIDE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
OVERRIDE_REASONS: tuple[OverrideReason, ...] = tuple(
    OverrideReason(code=c, system=OVERRIDE_SYSTEM, display=d) for c, d in (
        ("patient-contraindication", "Patient-specific contraindication"),
        ("risk-benefit-ratio", "Risk/benefit judged differently"),
        ("patient-refuses", "Patient declines"),
        ("does-not-align-preferences", "Does not match patient preferences"),
        ("cds-suboptimal-context", "Advice does not fit this context"),
        ("recipient-disagrees-evidence", "Disagree with the evidence"),
        ("need-more-info", "Need more information"),
    ))
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
DISCLAIMER = ("*Decision support only. The model was trained on simulated data and is not "
              "clinically validated; the clinician decides.*")


@dataclass(frozen=True, slots=True)
class CardContext:
    """What the cards need besides the assessment."""

    hook: str
    service_id: str
    panel_url: str
    patient_id: str
    ordered: tuple[DrugClass, ...] = ()
    draft_order: dict[str, Any] | None = None
    #: rule facts of the other drugs ordered (service.orders.ORDER_FACTS)
    ordered_facts: tuple[str, ...] = ()
    #: findings the ordered drugs add to the current regimen (service.orders.interactions)
    interactions: tuple[Finding, ...] = ()

    @property
    def drug(self) -> str:
        """What is being ordered, capitalised."""
        return order_label(self.ordered, self.ordered_facts)


def _uuid() -> str:
    return str(uuid.uuid4())


def _source(a: Assessment) -> Source:
    m = a.model
    return Source(label=f"Hypermarker {m.id} {m.version} ({a.guideline.upper()}; "
                        "simulated training data)")


def _fmt(v: float) -> str:
    return f"{v:+.1f}"


def _blocks(o: OptionAssessment) -> str:
    return ", ".join(f"{f.message} {f.citation}" for f in o.findings
                     if f.severity is Severity.BLOCK)


def _caution(f: Finding) -> str:
    monitor = f"; monitor: {f.monitoring}" if f.monitoring else ""
    return f"{f.message} ({f.citation}{monitor})"


#: Indication codes (models.guideline.nice.treatment_indication) that call for treatment.
_TREAT = {"step-up", "offer-treatment", "consider-treatment", "discuss-treatment"}


def _bp(a: Assessment) -> str:
    s, d = a.clinic_bp
    return f"{'?' if s is None else f'{s:.0f}'}/{'?' if d is None else f'{d:.0f}'}"


def _goal(a: Assessment) -> str:
    t = a.target
    return "?/?" if t is None else f"{t.systolic:.0f}/{t.diastolic:.0f}"


def _indication(a: Assessment) -> str | None:
    return next((f.code for f in a.findings
                 if f.code in _TREAT | {"at-target", "treatment-not-indicated",
                                        "white-coat"}), None)


def _notes(a: Assessment) -> list[str]:
    lines: list[str] = []
    notes = [f for f in a.findings if f.severity is not Severity.INFO]
    if notes:
        lines += ["", "**Notes:** " + "; ".join(f"{f.message} ({f.citation})" for f in notes)]
    unknown = [FEATURES_BY_NAME[p.feature].label if p.feature in FEATURES_BY_NAME
               else p.feature for p in a.provenance if p.source is None and p.note
               and not p.note.startswith("not recorded")]
    if unknown:
        lines += ["", "**Unknown data:** " + ", ".join(sorted(set(unknown)))]
    return lines


def _pathway_detail(a: Assessment) -> str:
    lines = [f"**Clinic BP** {_bp(a)} mmHg. **No ranked list:** this patient needs the "
             "pathway below first (not advice against treatment where it says to treat)."]
    for s in a.stops:
        lines += ["", f"**{s.summary}** ({s.urgency.value}). {s.action} ({s.citation})"]
    lines += _notes(a)
    lines += ["", DISCLAIMER]
    return "\n".join(lines)


def _detail(a: Assessment, max_options: int = 6) -> str:
    t = a.target
    assert t is not None  # an assessed patient has a target
    ranked = [o for o in a.options if o.rank is not None][:max_options]
    chance = any(o.p_target_shown for o in ranked)
    lines = [f"**Clinic BP** {_bp(a)} mmHg. "
             f"**Target** below {t.systolic:.0f}/{t.diastolic:.0f} mmHg "
             f"({t.setting.value}; {t.citation}). **Guideline step:** {a.guideline_step}.",
             "",
             "| # | option | expected effect on systolic BP, mmHg (range for a patient like "
             "this) |" + (f" {P_TARGET_COLUMN} ({t.systolic:.0f}) |" if chance else "")
             + " status |",
             "|---|---|---|" + ("---|" if chance else "") + "---|"]
    for o in ranked:
        g = " (guideline's choice)" if o.guideline_preferred else ""
        p = (f" {o.p_target:.0%} |" if o.p_target_shown else " not shown |") if chance else ""
        lines.append(f"| {o.rank} | {a.label(o.option)}{g} | "
                     f"{effect_short(o.expected_effect, o.effect_interval, o.effect_coverage)} "
                     f"|{p} {o.status_words} |")
    top = ranked[0] if ranked else None
    if top is not None:
        reading = reading_words(top.interval, top.interval_coverage)
        lines += ["", f"*{a.label(top.option)}, {reading} (measurement and visit-to-visit "
                  "variation: not the drug's effect).*"]
    if a.choice_reason:
        lines += ["", f"**Not the guideline's choice:** {a.choice_reason}"]
    if a.comparison is not None:
        c = a.comparison
        lines += ["", f"**First option against the guideline's choice:** {c.summary}"]
        if c.drivers:
            lines += [f"- {driver_phrase(d)}" for d in c.drivers]
    lines += ["", "*Expected effects are for the standard dose; a suggested order starts at "
              "the starting dose and is titrated to it.*"]
    blocked = [o for o in a.options if o.status is OptionStatus.CONTRAINDICATED]
    if blocked:
        lines += ["", "**Not offered (contraindicated):** " + "; ".join(
            f"{a.label(o.option)} ({_blocks(o)})" for o in blocked[:4])
            + ("; ..." if len(blocked) > 4 else "")]
    if top and top.drivers and a.comparison is None:
        lines += ["", f"**Why {a.label(top.option)}** (against {a.drivers_baseline}): "
                  + "; ".join(driver_phrase(d) for d in top.drivers)]
    cautions = [f for o in ranked[:3] for f in o.findings if f.severity is Severity.WARN]
    if cautions:
        lines += ["", "**Cautions:** " + "; ".join(_caution(f) for f in cautions[:4])]
    lines += _notes(a)
    lines += ["", DISCLAIMER]
    return "\n".join(lines)


#: The fields of a clinician's draft order a replacement keeps (a quantity, note or reason
#: written for another drug must not survive the replacement).
_DRAFT_KEEPS = ("resourceType", "id", "status", "intent", "subject", "encounter", "requester",
                "authoredOn")


def _medication_request(order: StartingProduct, patient_id: str,
                        base: dict[str, Any] | None) -> dict[str, Any]:
    """A draft order of the option's starting product (the assessment's ``order``, from
    :mod:`models.prescribing`: the patient's own starting dose, e.g. candesartan 4 mg in
    renal impairment): the orderable dm+d VMP first, an RxNorm SCD where known, never an
    ingredient code; the dose structured and in plain words; the prescriber's notes as the
    order's note and timing as the patient instruction, never in the dosage text."""
    coding = [{"system": SNOMED, "code": order.dmd_vmp, "display": order.dmd_name}]
    if order.rxnorm_scd:
        coding.append({"system": RXNORM, "code": order.rxnorm_scd,
                       "display": order.rxnorm_name or order.dmd_name})
    dose = order.dose_mg
    resource: dict[str, Any] = ({k: base[k] for k in _DRAFT_KEEPS if k in base} if base else {
        "resourceType": "MedicationRequest", "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"}})
    resource["medicationCodeableConcept"] = {"coding": coding,
                                             "text": order.dmd_name}
    dosage: dict[str, Any] = {
        "text": f"{dose:g} mg once daily",
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg",
                                          "system": "http://unitsofmeasure.org",
                                          "code": "mg"}}]}
    if order.patient_instruction:
        dosage["patientInstruction"] = order.patient_instruction
    resource["dosageInstruction"] = [dosage]
    if order.note:
        resource["note"] = [{"text": f"Starting dose. {order.note}"}]
    return resource


def _suggestions(a: Assessment, ctx: CardContext) -> list[Suggestion]:
    """At most two orders among the top three ranked options: never a class the draft
    orders already (the draft carries it: suggesting it again would replace a draft of the
    same drug) and, when the draft starts a ranked option, only options ranked above it."""
    out: list[Suggestion] = []
    ranked = sorted(((o, o.rank) for o in a.options if o.rank is not None),
                    key=lambda pair: pair[1])
    above = min((r for o, r in ranked
                 if _starts_ordered(o.option, a.current_regimen, ctx.ordered)), default=None)
    for o, rank in ranked[:3]:
        if above is not None and rank >= above:
            break
        if not o.in_step:
            continue  # beyond the guideline's step: shown, never offered as an order
        started = [c for c in o.option.classes_after if c not in a.current_regimen]
        # Only single-drug starts and additions become orders: a switch also stops a current
        # drug, which a replacement order alone would not do.
        if len(started) != 1 or o.option.action not in (OptionAction.START, OptionAction.ADD) or (
                started[0] in ctx.ordered):
            continue
        order = a.order(o.option)
        if order is None:
            continue
        replacing = ctx.draft_order is not None and ctx.draft_order.get("id")
        product = f"{order.drug} {order.dose_mg:g} mg"
        action = Action(
            type="update" if replacing else "create",
            description=(f"Replace the draft order with {product}" if replacing
                         else f"Order {product}"),
            resource=_medication_request(order, ctx.patient_id,
                                         ctx.draft_order if replacing else None))
        out.append(Suggestion.for_option(
            o.option.id, label=f"{a.label(o.option)} (expected {_fmt(o.expected_effect)} mmHg)",
            uuid=_uuid(), isRecommended=not out, actions=[action]))
        if len(out) == 2:
            break
    return out


def suggestion_options(cards: list[Card]) -> dict[str, str]:
    """Suggestion uuid -> the id of the option it orders (for the audit record)."""
    return {s.uuid: s.option for c in cards for s in c.suggestions or []
            if s.uuid and s.option}


def build_cards(a: Assessment, ctx: CardContext, app_context: str | None) -> list[Card]:
    """The cards for one call (empty when there is nothing to say, e.g. BP at target on
    patient-view, or an order that is neither an antihypertensive nor an interacting drug)."""
    source = _source(a)
    # no app context (the panel store could not keep the assessment): no link that cannot open
    links = None if app_context is None else [Link(
        label="Open the hypertension options panel", url=ctx.panel_url, type="smart",
        appContext=app_context)]
    if ctx.hook == "patient-view":
        return _cards(a, ctx, source, links)
    if not (ctx.ordered or ctx.ordered_facts):
        return []  # not an order this service checks (a statin, an imaging request)
    if is_antihypertensive(ctx.ordered, ctx.ordered_facts):
        return _with_interactions(_cards(a, ctx, source, links), a, ctx, source, links)
    # a drug that interacts with the regimen: the interaction, never the ranked options
    unavailable = [f"{d.label} could not be obtained ({why})" for d in REQUIRED_DOMAINS
                   if (why := a.unavailable_reason(d)) is not None]
    if unavailable:
        return [_not_checked(a, ctx, "; ".join(unavailable), source)]
    pathway = ([_pathway_card(a, ctx, source, links)]
               if a.status is AssessmentStatus.PATHWAY else [])
    return _with_interactions(pathway, a, ctx, source, links) if ctx.interactions else []


def _not_checked(a: Assessment, ctx: CardContext, reasons: str, source: Source) -> Card:
    """A warning on an order hook: the order could not be checked, and why."""
    return Card(uuid=_uuid(), summary=_clip(f"{ctx.drug} order not checked: {reasons}"),
                detail="\n".join(["Cannot assess: " + reasons, *_notes(a), "", DISCLAIMER]),
                indicator="warning", source=source)


Indicator = Literal["info", "warning", "critical"]
_INDICATOR: Final[Mapping[Severity, Indicator]] = {
    Severity.INFO: "info", Severity.WARN: "warning", Severity.BLOCK: "critical"}
_RANK: Final[Mapping[Indicator, int]] = {"info": 0, "warning": 1, "critical": 2}


def _with_interactions(cards: list[Card], a: Assessment, ctx: CardContext,
                       source: Source, links: list[Link] | None) -> list[Card]:
    """The cards with the order's interactions with the current regimen named first in the
    detail of the first card (a card of its own when there is none); an interaction more
    severe than the card's indicator becomes its summary and indicator."""
    if not ctx.interactions:
        return cards
    worst = max(ctx.interactions, key=lambda f: f.severity)
    indicator = _INDICATOR[worst.severity]
    summary = _clip(f"{ctx.drug} ordered: {worst.message}")
    current = class_names(set(a.current_regimen))
    checks = (f"**{ctx.drug} ordered with the current {current}:** "
              + "; ".join(_caution(f) for f in ctx.interactions)
              + " (the safety rules of the options, applied to the current regimen)")
    if not cards:
        return [Card(uuid=_uuid(), summary=summary, detail=f"{checks}\n\n{DISCLAIMER}",
                     indicator=indicator, source=source,
                     overrideReasons=list(OVERRIDE_REASONS), links=links)]
    first = cards[0]
    update: dict[str, Any] = {"detail": f"{checks}\n\n{first.detail or ''}".rstrip()}
    if _RANK[indicator] > _RANK[first.indicator]:
        update |= {"summary": summary, "indicator": indicator}
    return [first.model_copy(update=update), *cards[1:]]


def _cards(a: Assessment, ctx: CardContext, source: Source, links: list[Link] | None
           ) -> list[Card]:
    """The hypertension card of patient-view, or of an order hook for an antihypertensive."""
    order_hook = ctx.hook != "patient-view"
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        reasons = "; ".join(a.reasons)
        if order_hook:
            return [_not_checked(a, ctx, reasons, source)]
        return [Card(uuid=_uuid(), summary=_clip(f"Hypertension options not assessed: "
                                                 f"{reasons}"),
                     detail="\n".join(["Cannot assess: " + reasons, *_notes(a), "",
                                       DISCLAIMER]),
                     indicator="info", source=source)]
    if a.status is AssessmentStatus.PATHWAY:
        return [_pathway_card(a, ctx, source, links)]
    ranked = [o for o in a.options if o.rank is not None]
    indication = _indication(a)
    treat = indication in _TREAT
    ordered_opts = [o for o in a.options
                    if _starts_ordered(o.option, a.current_regimen, ctx.ordered)]
    if not ranked:
        return [Card(uuid=_uuid(), summary="No antihypertensive option is free of "
                     "contraindications for this patient: review", detail=_detail(a),
                     indicator="warning", source=source, links=links)]
    top = ranked[0]
    suggestions = _suggestions(a, ctx) if order_hook and treat else []
    indicator: Indicator
    if ordered_opts:
        worst = max(ordered_opts, key=_severity)
        sev = _severity(worst)
        drug = CLASS_INFO[ctx.ordered[0]].short
        if sev is Severity.BLOCK:
            reason = next(f.message for f in worst.findings if f.severity is Severity.BLOCK)
            summary = _clip(f"{drug} contraindicated: {reason}")
            indicator = "critical"
        elif indication == "white-coat":
            summary = _clip(f"{drug} ordered: home/ambulatory BP is at target (white-coat "
                            "effect): no intensification on clinic BP alone")
            indicator = "warning"
        elif not treat:
            summary = _clip(f"{drug} ordered while clinic BP {_bp(a)} is below the target of "
                            f"{_goal(a)}: if for BP, over-treatment (other uses not "
                            "assessed)")
            indicator = "warning"
        elif sev is Severity.WARN:
            reason = next(f.message for f in worst.findings if f.severity is Severity.WARN)
            summary = _clip(f"{drug}: caution ({reason})")
            indicator = "warning"
        else:
            summary = _clip(f"{drug} ordered; model's top option: {a.label(top.option)} "
                            f"(expected {_fmt(top.expected_effect)} mmHg)")
            indicator = "info"
        return [Card(uuid=_uuid(), summary=summary, detail=_detail(a), indicator=indicator,
                     source=source, suggestions=suggestions or None,
                     selectionBehavior="at-most-one" if suggestions else None,
                     overrideReasons=list(OVERRIDE_REASONS), links=links)]
    if not treat:
        return []  # at target, or treatment not indicated: nothing to intensify
    summary = _clip(f"{_headline(a, indication)}: top option {a.label(top.option)} "
                    f"(expected {_fmt(top.expected_effect)} mmHg)")
    return [Card(uuid=_uuid(), summary=summary, detail=_detail(a), indicator="info",
                 source=source, suggestions=suggestions or None,
                 selectionBehavior="at-most-one" if suggestions else None,
                 overrideReasons=list(OVERRIDE_REASONS), links=links)]


def _headline(a: Assessment, indication: str | None) -> str:
    """What the BP is, truthfully: above target (treated), or the stage (untreated)."""
    bp = _bp(a)
    if indication == "step-up":
        return f"BP {bp} above target {_goal(a)}"
    if indication == "offer-treatment":
        return f"Stage 2 hypertension ({bp})"
    verb = "consider" if indication == "consider-treatment" else "discuss"
    return f"Stage 1 hypertension ({bp}), {verb} treatment"


def _pathway_card(a: Assessment, ctx: CardContext, source: Source,
                  links: list[Link] | None) -> Card:
    """One card for the stop conditions, the most urgent first, never a suggestion. A drug
    being ordered is checked against every safety rule (a contraindication is critical),
    against the stops' ``avoid`` classes (critical) and their ``caution`` classes (a warning
    that asks whether it is for BP at all)."""
    stops = sorted(a.stops, key=lambda s: s.urgency is not Urgency.CRITICAL)
    first = stops[0]
    indicator: Indicator = "critical" if first.urgency is Urgency.CRITICAL else "warning"
    summary = first.summary
    detail = _pathway_detail(a)
    if ctx.ordered:
        cls = ctx.ordered[0]
        drug = CLASS_INFO[cls].short
        drug = drug[:1].upper() + drug[1:]
        checked = [f for o, fs in a.checked
                   if _starts_ordered(o, a.current_regimen, ctx.ordered) for f in fs]
        blocks = [f for f in checked if f.severity is Severity.BLOCK]
        cautions = [f for f in checked if f.severity is Severity.WARN]
        against = [s for s in stops if cls in s.avoid]
        careful = [s for s in stops if cls in s.caution]
        if blocks:
            summary, indicator = f"{drug} contraindicated: {blocks[0].message}", "critical"
        elif against:
            summary, indicator = f"{drug} ordered: not now. {against[0].summary}", "critical"
        elif careful:
            summary = (f"{drug} ordered: check it is needed (not for BP now). "
                       f"{careful[0].summary}")
        checks = blocks + cautions
        if checks:
            detail = (f"**{drug} ordered:** " + "; ".join(_caution(f) for f in checks[:4])
                      + "\n\n" + detail)
    return Card(uuid=_uuid(), summary=_clip(summary), detail=detail,
                indicator=indicator, source=source,
                overrideReasons=list(OVERRIDE_REASONS), links=links)


def _severity(o: OptionAssessment) -> Severity:
    return max_severity(o.findings) or Severity.INFO


#: The actions that start a class (the order being placed can be one of them).
_STARTS: Final = frozenset({OptionAction.START, OptionAction.ADD, OptionAction.SWITCH})


def _starts_ordered(o: TreatmentOption, current: Mapping[DrugClass, float],
                    ordered: Iterable[DrugClass]) -> bool:
    """Whether ``o`` starts one of the ordered classes (the order being placed) on top of
    the ``current`` regimen."""
    return o.action in _STARTS and any(c in o.after_set and c not in current for c in ordered)


def _clip(text: str, limit: int = 139) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
