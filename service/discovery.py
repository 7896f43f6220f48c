"""CDS Hooks discovery: the services this CDS service offers and their prefetch templates.

Prefetch keys are the portable subset of FHIR search (cdshooks.md 1.3): type-level searches by
patient and token codes, ``_sort`` and ``_count``. ``patient`` and ``bp`` are required: without
them no assessment is possible, so a call that cannot get them answers 412.
"""

from __future__ import annotations

from typing import Final

from fhir_mappings.codes import LOINC, OBSERVATION_CODES, ObsKind
from service.schemas.cds_hooks import ServiceDefinition

_BP_KINDS = {ObsKind.BP_PANEL, ObsKind.SBP, ObsKind.DBP, ObsKind.HOME_PANEL, ObsKind.HOME_SBP,
             ObsKind.HOME_DBP, ObsKind.ABPM_24H_PANEL, ObsKind.ABPM_24H_SBP,
             ObsKind.ABPM_24H_DBP}


def _codes(kinds: set[ObsKind] | None = None, exclude: set[ObsKind] | None = None) -> str:
    picked = sorted(
        f"{system}|{code}" for (system, code), kind in OBSERVATION_CODES.items()
        if system == LOINC and (kinds is None or kind in kinds)
        and (exclude is None or kind not in exclude)
    )
    return ",".join(picked)


P = "{{context.patientId}}"
PREFETCH: Final[dict[str, str]] = {
    "patient": f"Patient/{P}",
    "bp": f"Observation?patient={P}&code={_codes(_BP_KINDS)}&_sort=-date&_count=100",
    "labs": f"Observation?patient={P}&code={_codes(exclude=_BP_KINDS)}&_sort=-date&_count=200",
    "conditions": f"Condition?patient={P}&_count=200",
    "medications": f"MedicationRequest?patient={P}&status=active&_count=100",
    "statements": f"MedicationStatement?patient={P}&status=active&_count=100",
    "allergies": f"AllergyIntolerance?patient={P}&_count=100",
}
REQUIRED_PREFETCH: Final[frozenset[str]] = frozenset({"patient", "bp"})

USAGE = ("Needs the prefetch data or a fhirServer with fhirAuthorization to fetch it; without "
         "the patient and blood-pressure data it answers 412. Research software: simulated "
         "training data, not clinically validated.")

SERVICES: Final[tuple[ServiceDefinition, ...]] = (
    ServiceDefinition(
        hook="patient-view", id="hypertension-treatment",
        title="Hypertension: next treatment options",
        description="Ranks the next antihypertensive options for adults with hypertension by "
        "predicted 12-week systolic BP change, with NICE NG136 safety rules and citations.",
        prefetch=PREFETCH, usageRequirements=USAGE),
    ServiceDefinition(
        hook="order-select", id="hypertension-order-select",
        title="Hypertension: check the selected antihypertensive",
        description="When an antihypertensive is selected, flags contraindications and offers "
        "the top safe option as a replacement suggestion.",
        prefetch=PREFETCH, usageRequirements=USAGE),
    ServiceDefinition(
        hook="order-sign", id="hypertension-order-sign",
        title="Hypertension: check the antihypertensive being signed",
        description="Before signing, flags contraindications of the antihypertensive ordered "
        "and offers the top safe option as a replacement suggestion.",
        prefetch=PREFETCH, usageRequirements=USAGE),
)
SERVICES_BY_ID: Final[dict[str, ServiceDefinition]] = {s.id: s for s in SERVICES}
