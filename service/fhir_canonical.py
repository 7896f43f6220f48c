"""The canonical URLs of everything the service defines in FHIR: extensions, CodeSystems and
the ``$hypertension-options`` OperationDefinition (also the GuidanceResponse ``moduleUri``).

``CANONICAL_BASE`` is the project's canonical namespace: a stable identifier that does not
change with where a service is deployed, not a promise that a server answers at that address.
The service itself serves the resources these URLs name under its own ``/fhir`` base
(``/fhir/CodeSystem/finding``, ``/fhir/OperationDefinition/hypertension-options``), and
``/fhir/metadata`` says which canonical each one carries.
"""

from __future__ import annotations

from typing import Final

#: The project's canonical namespace (not a resolvable server; see the module docstring).
CANONICAL_BASE: Final = "https://hypermarker.org/fhir"

EXT_SBP: Final = f"{CANONICAL_BASE}/StructureDefinition/predicted-sbp-change"
#: The option's expected effect on systolic BP and its interval for a patient like this one
#: (what the ranking compares; EXT_SBP is one 12-week clinic reading's change and range).
EXT_EFFECT: Final = f"{CANONICAL_BASE}/StructureDefinition/expected-sbp-effect"
EXT_STATUS: Final = f"{CANONICAL_BASE}/StructureDefinition/option-status"
FINDING_SYSTEM: Final = f"{CANONICAL_BASE}/CodeSystem/finding"
OPTION_SYSTEM: Final = f"{CANONICAL_BASE}/CodeSystem/treatment-option"
#: The Parameters part names of the GuidanceResponse.outputParameters (service/fhir_output.py).
OUTPUT_SYSTEM: Final = f"{CANONICAL_BASE}/CodeSystem/output-parameter"
OPERATION_CODE: Final = "hypertension-options"
OPERATION_DEFINITION: Final = f"{CANONICAL_BASE}/OperationDefinition/{OPERATION_CODE}"
#: GuidanceResponse.moduleUri: the module that produced the guidance is the operation.
MODULE_URI: Final = OPERATION_DEFINITION
