"""The antihypertensive being ordered on order-select / order-sign.

The draft MedicationRequest(s) are classified by the same FHIR mapping that reads the record
(RxNorm, ATC, dm+d/SNOMED, medicationReference, name text as a last resort): each draft is
mapped as if it were active, alone, and the classes it would add are the ordered classes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappings.errors import PatientMismatch
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.vocabulary import DrugClass
from service.schemas.cds_hooks import HookRequest

_STUB_PATIENT = {"resourceType": "Patient", "id": "draft-order-classification"}


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


def ordered_medication(hook: HookRequest) -> tuple[tuple[DrugClass, ...], dict[str, Any] | None]:
    """Classes of the antihypertensive(s) being ordered, and the first such draft order."""
    if hook.hook == "patient-view":
        return (), None
    requests, medications = _drafts(hook)
    classes: list[DrugClass] = []
    first: dict[str, Any] | None = None
    for mr in requests:
        _check_subject(mr, hook.context.patientId)
        active = {**mr, "status": "active", "intent": "order",
                  "subject": {"reference": "Patient/draft-order-classification"}}
        entries = [{"resource": r} for r in (_STUB_PATIENT, active, *medications)]
        fv, _ = features_from_fhir({"resourceType": "Bundle", "type": "collection",
                                    "entry": entries}, as_of=date.today())
        found = [c for c in fv.regimen if c not in classes]
        if found and first is None:
            first = mr
        classes.extend(found)
    return tuple(classes), first
