"""CDS Hooks discovery: the services this CDS service offers and their prefetch templates.

Prefetch keys are the portable subset of FHIR search (cdshooks.md 1.3): type-level searches by
patient and token codes, ``_sort`` and ``_count``. ``patient`` and ``bp`` are required: without
them no assessment is possible, so a call that cannot get them answers 412.

The ``bp`` key asks for every code the mapping reads as a blood pressure
(:data:`fhir_mappings.blood_pressure.BP_KINDS`, LOINC and SNOMED CT: clinic, home and
ambulatory), so the template and the mapping share one BP vocabulary; ``labs`` asks for the
other LOINC codes the mapping reads.
"""

from __future__ import annotations

from typing import Final

from fhir_mappings.blood_pressure import BP_KINDS
from fhir_mappings.codes import LOINC, OBSERVATION_CODES
from service.schemas.cds_hooks import ServiceDefinition


def _token_list(codes: list[tuple[str, str]]) -> str:
    """A FHIR token search value: ``system|code`` pairs, sorted, comma-separated."""
    return ",".join(sorted(f"{system}|{code}" for system, code in codes))


#: Every code the mapping reads as a blood pressure, in any code system.
BP_CODES: Final = _token_list([c for c, kind in OBSERVATION_CODES.items() if kind in BP_KINDS])
#: The other Observation codes the mapping reads (LOINC only, as before).
LAB_CODES: Final = _token_list([c for c, kind in OBSERVATION_CODES.items()
                                if c[0] == LOINC and kind not in BP_KINDS])


P = "{{context.patientId}}"
PREFETCH: Final[dict[str, str]] = {
    "patient": f"Patient/{P}",
    "bp": f"Observation?patient={P}&code={BP_CODES}&_sort=-date&_count=100",
    "labs": f"Observation?patient={P}&code={LAB_CODES}&_sort=-date&_count=200",
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
