"""The draft orders of order-select / order-sign: what is being ordered, and whether the
hypertension service has anything to say about it.

Each draft MedicationRequest (on order-select, the selected ones) is classified by the same
FHIR mapping that reads the record (RxNorm, ATC, dm+d/SNOMED, medicationReference, names and
the brands of ``fhir_mappings/valuesets/brands.toml`` as a last resort): it is mapped as if it
were active, alone, and gives

* the model classes it would add (an antihypertensive of the model: ramipril, amlodipine ...);
* the drug rule facts it would set (:data:`ORDER_FACTS`): another antihypertensive
  (verapamil/diltiazem, methyldopa, hydralazine, aliskiren, sacubitril/valsartan ...) or a
  drug that interacts with an antihypertensive regimen (NSAID, potassium supplement or
  potassium-sparing drug, lithium, asthma/COPD therapy).

Anything else (a statin, an imaging ServiceRequest, a code the mapping does not know) is not
relevant: the order hooks answer it with no card.

The interactions of the drug being ordered with the current regimen are found by the safety
rules the options are checked with (:mod:`models.guideline.safety`), no rule of their own: the
regimen is checked as if it were started, on the record with the ordered drugs' facts set and
with them cleared; the findings that appear only with the drugs are the interactions (lithium
with a thiazide, an NSAID with a RAS blocker and a diuretic, potassium with spironolactone ...).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

from fhir_mappings.errors import PatientMismatch
from fhir_mappings.features import FeatureVector
from fhir_mappings.mapping import features_from_fhir
from models.guideline.findings import Finding
from models.guideline.safety import option_findings
from models.options import Action, TreatmentOption
from service.schemas.cds_hooks import HookRequest
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, DrugClass
from vocabulary.feature_table import FEATURES_BY_NAME

#: Rule facts of antihypertensives that are not model classes.
OTHER_ANTIHYPERTENSIVES: Final = frozenset({
    "non_dhp_ccb", "other_antihypertensive", "aliskiren", "sacubitril_valsartan"})
#: Every rule fact a drug being ordered can set that makes the order relevant (the
#: antihypertensives above and the drugs that interact with a regimen), in a fixed order.
ORDER_FACTS: Final = ("non_dhp_ccb", "other_antihypertensive", "aliskiren",
                      "sacubitril_valsartan", "nsaid", "potassium_supplement", "lithium",
                      "airways_therapy")

_STUB_PATIENT = {"resourceType": "Patient", "id": "draft-order-classification"}


@dataclass(frozen=True, slots=True)
class DraftOrders:
    """What the call's draft orders order, for the cards."""

    classes: tuple[DrugClass, ...] = ()
    """Model classes ordered (first draft first)."""
    facts: tuple[str, ...] = ()
    """Rule facts of the other drugs ordered (:data:`ORDER_FACTS`)."""
    draft: dict[str, Any] | None = None
    """The first draft order of a model class (a suggestion may replace it)."""
    interactions: tuple[Finding, ...] = ()
    """Findings (assessment-document form) the ordered drugs add to the current regimen."""

    @property
    def relevant(self) -> bool:
        """Whether the order hooks answer: an antihypertensive or an interacting drug."""
        return bool(self.classes or self.facts)


def is_antihypertensive(classes: tuple[DrugClass, ...], facts: tuple[str, ...]) -> bool:
    """Whether an order of these classes and facts is an antihypertensive."""
    return bool(classes) or any(f in OTHER_ANTIHYPERTENSIVES for f in facts)


def order_label(classes: tuple[DrugClass, ...], facts: tuple[str, ...]) -> str:
    """What is being ordered, in words, capitalised ("ACEi", "Lithium", "NSAID")."""
    if classes:
        text = CLASS_INFO[classes[0]].short
    elif facts:
        text = FEATURES_BY_NAME[facts[0]].label.removeprefix("current ")
    else:
        text = "order"
    return text[:1].upper() + text[1:]


def _drafts(hook: HookRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    bundle = hook.context.draftOrders or {}
    resources = [e["resource"] for e in bundle.get("entry") or []
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    requests = [r for r in resources if r.get("resourceType") == "MedicationRequest"]
    if hook.hook == "order-select" and hook.context.selections:
        wanted = {s.split("/")[-1] for s in hook.context.selections
                  if s.startswith("MedicationRequest/")}
        requests = [r for r in requests if r.get("id") in wanted]
    medications = [r for r in resources if r.get("resourceType") == "Medication"]
    return requests, medications


def _check_subject(order: dict[str, Any], patient_id: str) -> None:
    """A draft order for another patient than the call's is refused (PatientMismatch)."""
    subject = order.get("subject")
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if isinstance(ref, str) and "Patient/" in ref:
        pid = ref.rstrip("/").split("Patient/")[-1].split("/")[0]
        if pid != patient_id:
            raise PatientMismatch(
                f"the draft order MedicationRequest/{order.get('id')} is for patient "
                f"{pid!r}, not {patient_id!r}", "context.draftOrders",
                f"MedicationRequest/{order.get('id')}")


def _classify(order: dict[str, Any], medications: list[dict[str, Any]], as_of: date
              ) -> tuple[list[DrugClass], list[str]]:
    """The model classes and rule facts one draft order would add, mapped alone as active
    (its authoredOn dropped: a draft dated later today orders the same drug)."""
    active = {k: v for k, v in order.items() if k != "authoredOn"}
    active |= {"status": "active", "intent": "order",
               "subject": {"reference": "Patient/draft-order-classification"}}
    entries = [{"resource": r} for r in (_STUB_PATIENT, active, *medications)]
    fv, _ = features_from_fhir({"resourceType": "Bundle", "type": "collection",
                                "entry": entries}, as_of=as_of)
    return list(fv.regimen), [f for f in ORDER_FACTS if fv.flag(f)]


def interactions(patient: FeatureVector, facts: tuple[str, ...]) -> tuple[Finding, ...]:
    """Findings the safety rules make about the current regimen (checked as if started) with
    ``facts`` set that they do not make with them cleared (see the module docstring)."""
    if not facts or not patient.regimen:
        return ()
    zeros = (0.0,) * len(CLASS_ORDER)
    regimen = TreatmentOption("current-regimen", Action.START, "current regimen",
                              tuple(c for c in CLASS_ORDER if c in patient.regimen), zeros,
                              tuple(patient.regimen.get(c, 0.0) for c in CLASS_ORDER))

    def findings(value: float) -> tuple[Finding, ...]:
        values = {**patient.values, **dict.fromkeys(facts, value)}
        return option_findings(replace(patient, values=values), regimen)

    without = set(findings(0.0))
    return tuple(f for f in findings(1.0) if f not in without)


def draft_orders(hook: HookRequest, patient: FeatureVector, as_of: date) -> DraftOrders:
    """What the call's draft orders order (nothing on patient-view); raises PatientMismatch
    for a draft order of another patient."""
    if hook.hook == "patient-view":
        return DraftOrders()
    requests, medications = _drafts(hook)
    classes: list[DrugClass] = []
    facts: list[str] = []
    first: dict[str, Any] | None = None
    for mr in requests:
        _check_subject(mr, hook.context.patientId)
        found, flags = _classify(mr, medications, as_of)
        if found and first is None:
            first = mr
        classes.extend(c for c in found if c not in classes)
        facts.extend(f for f in flags if f not in facts)
    return DraftOrders(tuple(classes), tuple(facts), first,
                       interactions(patient, tuple(facts)))
