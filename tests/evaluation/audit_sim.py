"""Simulated audit records for tests and demonstrations of the monitoring job.

:func:`simulate_audit` takes a simulated case set of one site (:mod:`evaluation.cohort`), runs
the real model on every patient (:func:`models.assessment.assess` with SHAP for the first option,
as a CDS call does), builds the cards the service would show (:func:`service.cards.build_cards`)
and returns what the service would have written to the audit store:

* one :class:`AssessmentRecord` per patient, spread evenly over ``[start, start + span)``,
  with a simulated latency (log-normal, median ``latency_median_ms``);
* a :class:`FeedbackRecord` for a share of cards: accepted (with the card's first
  suggestion, if it has any), or overridden with a reason;
* the option the clinician then treats with (:func:`_taken`): the accepted suggestion's
  option, the first-ranked option after an accepted card, another of the next three ranked
  options after an override, and without feedback the first-ranked option with probability
  ``follow_share`` (else another), so that the monitor's rank-1 fallback is sometimes wrong,
  as it would be in practice;
* an :class:`OutcomeRecord` for a share of patients: the clinic SBP observed about 12 weeks
  later under that option, i.e. the recorded clinic SBP plus the simulator's observed 12-week
  change of that option (:func:`models.training.simulator.simulate_outcomes`), which is
  exactly the quantity the model was trained to predict.

Card records name each suggestion's option (``{"uuid", "option"}``), which is how the
monitor learns which option an accepted suggestion ordered; ``name_suggestion_options=False``
writes bare uuids instead, as ``service/api/hooks.py`` records them today. No follow-up
assessment is simulated (its regimen is the monitor's most direct evidence of the option
taken; tests/evaluation/test_monitor.py covers that path on its own).

Nothing here is used by the service; :func:`write_audit` puts the records into a store. It is
a test helper (it builds the service's own cards, so it lives with the tests: the harness in
``evaluation/`` never imports the web service).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from audit_store import (
    AssessmentRecord,
    AuditStore,
    FeedbackRecord,
    OutcomeRecord,
    feature_hash,
    patient_ref,
)
from evaluation.cohort import feature_vector, simulated_case_set
from models.assessment import Assessment, assess
from models.assessment_document import assessment_document
from models.explainer import Explainer
from models.options import dose_matrices, valid_options
from models.scorer import Scorer
from models.training.simulator import simulate_outcomes
from service.cards import OVERRIDE_REASONS, CardContext, build_cards
from vocabulary.drug_classes import CLASS_ORDER, DrugClass

#: Pseudonymisation key of simulated patients (a deployment secret in production).
SIM_KEY = b"hypermarker-simulated-audit"
FOLLOW_UP = timedelta(days=84)


@dataclass(frozen=True, slots=True)
class SimulatedAudit:
    """Records of one simulated site and period, in the order the service would write them."""

    site: str
    assessments: list[AssessmentRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Model:
    """The committed artifacts, loaded once."""

    scorer: Scorer
    explainer: Explainer

    @classmethod
    def load(cls) -> Model:
        scorer = Scorer.load()
        return cls(scorer, Explainer.load(scorer.manifest))


def _suggestion_option(label: str, options: list[dict[str, Any]]) -> str | None:
    """The option a suggestion orders: its label is the option's label and the predicted
    change in brackets (service/cards.py)."""
    found = [o for o in options if label.startswith(f"{o['label']} (")]
    return max(found, key=lambda o: len(o["label"]))["id"] if found else None


def _card_summaries(a: Assessment, doc: dict[str, Any], hook: str,
                    ordered: tuple[DrugClass, ...],
                    patient_id: str, name_options: bool
                    ) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """The card records (suggestions as ``{"uuid", "option"}`` when ``name_options``, else
    bare uuids as the service records them) and the option of every suggestion uuid."""
    cards = build_cards(a, CardContext(hook, "hypermarker-bp", "https://example.org/panel",
                                         patient_id, ordered), app_context="{}")
    docs = [c.model_dump(exclude_none=True) for c in cards]
    option_of = {str(s.get("uuid")): _suggestion_option(s.get("label", ""), doc["options"])
                 for c in docs for s in c.get("suggestions", [])}
    return [{"uuid": c.get("uuid"), "indicator": c["indicator"], "summary": c["summary"],
             "suggestions": [
                 {"uuid": s.get("uuid"), "option": option_of[str(s.get("uuid"))]}
                 if name_options else s.get("uuid") for s in c.get("suggestions", [])]}
            for c in docs], option_of


def _uuid_of(suggestion: Any) -> str:
    return str(suggestion["uuid"] if isinstance(suggestion, dict) else suggestion)


def _taken(doc: dict[str, Any], answered: list[str], rng: np.random.Generator,
           follow_share: float) -> str | None:
    """The option the simulated clinician treats with: after an override another of the
    next three ranked options; the option of an accepted suggestion; the first-ranked option
    after an accepted card; without feedback the first-ranked option with probability
    ``follow_share``, else another. None when nothing is ranked (or nothing else is)."""
    ranked = sorted((o for o in doc["options"] if o["rank"] is not None),
                    key=lambda o: int(o["rank"]))
    if not ranked:
        return None
    others = ranked[1:4]

    def other() -> str | None:
        return str(others[int(rng.integers(len(others)))]["id"]) if others else None

    if "overridden" in answered:
        return other()
    suggested = next((x for x in answered if x != "accepted"), None)
    if suggested is not None:
        return suggested
    if "accepted" in answered or rng.random() < follow_share:
        return str(ranked[0]["id"])
    return other()


def simulate_audit(site: str, n: int, seed: int, start: datetime, span: timedelta,
                   model: Model | None = None, *, outcome_share: float = 0.9,
                   feedback_share: float = 0.6, override_prob: float = 0.2,
                   order_share: float = 0.3, follow_share: float = 0.8,
                   name_suggestion_options: bool = True, latency_median_ms: float = 60.0
                   ) -> SimulatedAudit:
    """Audit records of ``n`` simulated patients of ``site`` (see the module docstring)."""
    model = model or Model.load()
    cases = simulated_case_set(site, n, seed)
    cohort = cases.cohort
    rng = np.random.default_rng([seed, 7919])
    out = SimulatedAudit(site)
    first_rows: list[tuple[int, str]] = []
    step = span / max(n, 1)
    for i in range(n):
        fv = feature_vector(cohort.features[i], cohort.current_doses[i])
        a = assess(fv, model.scorer, model.explainer, explain_top=1)
        doc = assessment_document(a)
        pid = f"{site}-{seed}-{i}"
        ref = patient_ref(pid, SIM_KEY)
        received = start + step * i
        if rng.random() < order_share:
            hook = "order-select"
            ordered: tuple[DrugClass, ...] = (CLASS_ORDER[int(rng.integers(len(CLASS_ORDER)))],)
        else:
            hook, ordered = "patient-view", ()
        cards, option_of = _card_summaries(a, dict(doc), hook, ordered, pid,
                                            name_suggestion_options)
        regimen = {c.value: d for c, d in fv.regimen.items()}
        options = [{
            "id": o["id"], "rank": o["rank"], "status": o["status"],
            "predicted_sbp_change": o["predicted_sbp_change"], "interval": o["interval"],
            "p_target": o["p_target"], "guideline_preferred": o["guideline_preferred"],
            "findings": [{"code": f["code"], "severity": f["severity"],
                          "citation": f["citation"]} for f in o["findings"]],
            "drivers": o["drivers"],
        } for o in doc["options"]]
        out.assessments.append(AssessmentRecord(
            request_id=f"sim-{site}-{seed}-{i}", hook=hook, hook_instance=f"sim-{seed}-{i}",
            service_id="hypermarker-bp", received_at=received, patient_ref=ref,
            model_id=doc["model"]["id"], model_version=doc["model"]["version"],
            provider=doc["model"]["provider"], guideline=doc["guideline"],
            status=doc["status"], feature_hash=feature_hash(fv.values, regimen),
            features=dict(fv.values), regimen=regimen, options=options,
            findings=[{"code": f["code"], "severity": f["severity"],
                       "citation": f["citation"]} for f in doc["findings"]],
            cards=cards,
            latency_ms=float(latency_median_ms * np.exp(0.45 * rng.standard_normal())),
            prefetch_fetched=[]))
        answered: list[str] = []  # "overridden" | "accepted" | option id of a suggestion
        for c in cards:
            if not c["uuid"] or rng.random() >= feedback_share:
                continue
            when = received + timedelta(minutes=float(rng.uniform(1, 30)))
            if rng.random() < override_prob:
                reason = OVERRIDE_REASONS[int(rng.integers(len(OVERRIDE_REASONS)))]
                out.feedback.append(FeedbackRecord(
                    "hypermarker-bp", c["uuid"], "overridden", [], reason.code,
                    reason.system, reason.display, None, when, when))
                answered.append("overridden")
            else:
                accepted = [_uuid_of(x) for x in c["suggestions"][:1]]
                out.feedback.append(FeedbackRecord(
                    "hypermarker-bp", c["uuid"], "accepted", accepted, None, None,
                    None, None, when, when))
                answered.append((option_of.get(accepted[0]) if accepted else None)
                                or "accepted")
        taken = _taken(doc, answered, rng, follow_share)
        if taken is not None and doc["status"] == "assessed" and rng.random() < outcome_share:
            first_rows.append((i, taken))
    if first_rows:
        idx = np.array([i for i, _ in first_rows], dtype=np.intp)
        after = np.empty((len(idx), len(CLASS_ORDER)), dtype=np.float64)
        for k, (i, option_id) in enumerate(first_rows):
            regimen_i = {c: float(d) for c, d in zip(CLASS_ORDER, cohort.current_doses[i],
                                                     strict=True) if d > 0}
            catalogue = valid_options(regimen_i)
            _, dose_after = dose_matrices(catalogue)
            after[k] = dose_after[[o.id for o in catalogue].index(option_id)]
        sim = simulate_outcomes(cohort, idx, after, seed + 1)
        for k, i in enumerate(idx):
            baseline = out.assessments[int(i)].features["sbp_clinic"]
            assert baseline is not None  # assessed patients have a clinic SBP
            observed = out.assessments[int(i)].received_at + FOLLOW_UP + timedelta(
                days=float(rng.uniform(-10, 10)))
            out.outcomes.append(OutcomeRecord(
                out.assessments[int(i)].patient_ref, observed,
                round(baseline + float(sim.observed_change[k]), 1), "clinic", "simulated"))
    return out


def write_audit(store: AuditStore, audit: SimulatedAudit) -> None:
    """Write every record of ``audit`` into ``store``."""
    for a in audit.assessments:
        store.record_assessment(a)
    for f in audit.feedback:
        store.record_feedback(f)
    for o in audit.outcomes:
        store.record_outcome(o)
