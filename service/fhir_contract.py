"""The FHIR contract of the service: the CodeSystems it defines, the OperationDefinition of
``$hypertension-options`` and the CapabilityStatement of ``GET /fhir/metadata``.

Built once (they depend on no request) except the CapabilityStatement, which names the
service's own base URL and its authentication mode. Routes: ``service/api/fhir_metadata.py``.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.metadata import version
from typing import Any, Final

from models.guideline.profiles import PROFILES
from models.options import Action, valid_options
from service.fhir_canonical import (
    FINDING_SYSTEM,
    OPERATION_CODE,
    OPERATION_DEFINITION,
    OPTION_SYSTEM,
    OUTPUT_SYSTEM,
)
from vocabulary.drug_classes import CLASS_ORDER, DrugClass

FHIR_VERSION: Final = "4.0.1"
#: The day the definitions below last changed (their ``date`` element).
CONTRACT_DATE: Final = "2026-12-06"
PUBLISHER: Final = "Hypermarker project"
SOFTWARE_VERSION: Final = version("hypermarker")
RESEARCH_NOTE: Final = ("Research software: simulated training data, not clinically validated; "
                        "decision support only.")

#: Every finding and stop code the guideline rules emit (DetectedIssue.code); a test checks
#: this list against the rules' source (tests/service/test_fhir_contract.py).
FINDING_CODES: Final[tuple[str, ...]] = (
    "above-licensed-maximum", "acei-angioedema", "acei-black-origin", "acei-breastfeeding",
    "acei-hypersensitivity", "acei-intolerance", "acei-plus-arb", "acei-plus-arb-current",
    "acei-sacubitril", "aliskiren-ras", "aliskiren-with-ras-current",
    "alpha-blocker-breastfeeding", "alpha-blocker-elderly", "alpha-blocker-heart-failure",
    "alpha-blocker-orthostatic", "arb-angioedema", "arb-breastfeeding",
    "arb-breastfeeding-continued", "at-target", "beta-blocker-airways-therapy",
    "beta-blocker-asthma", "beta-blocker-bradycardia", "beta-blocker-copd",
    "beta-blocker-heart-block", "beta-blocker-hypotension", "beta-blocker-sick-sinus",
    "beta-blocker-verapamil", "bp-date-unknown", "breastfeeding", "ccb-aortic-stenosis",
    "ccb-coronary-undated", "ccb-recent-coronary", "ccb-with-verapamil-diltiazem",
    "check-adherence", "consider-treatment", "current-contraindicated", "data-quality",
    "discuss-treatment", "diuretic-breastfeeding", "diuretic-pregnancy", "egfr-unknown",
    "family-origin-unknown", "fifth-drug", "guideline-step-contraindicated",
    "heart-rate-unknown", "hfref-non-dhp-ccb", "hfref-stops-prognostic", "hyperkalaemia",
    "hyperkalaemia-emergency", "kidney-failure", "labs-stale", "labs-unavailable", "low-bp",
    "maximum-not-checked", "measure-standing-bp", "non-dhp-ccb-treated", "not-ranked",
    "offer-treatment", "overtreatment", "postural-hypotension", "potassium-high-increase",
    "potassium-high-start", "potassium-rising", "potassium-stop", "potassium-unknown",
    "pregnancy", "pregnancy-severe-hypertension", "ras-childbearing", "ras-egfr-under-30",
    "ras-k-supplement", "ras-lithium", "ras-pregnancy", "ras-renal-artery-stenosis",
    "removes-renoprotection", "renal-dose-candesartan", "renal-dose-ramipril",
    "sacubitril-titration", "severe-hypertension", "sodium-unknown", "specialist-advice",
    "spironolactone-egfr-under-30", "spironolactone-hyponatraemia",
    "spironolactone-k-supplement", "spironolactone-potassium-over-4.5",
    "spironolactone-reduced-egfr", "spironolactone-with-ras", "step-up",
    "step4-potassium-unknown", "thiazide-egfr-under-30", "thiazide-gout",
    "thiazide-hypokalaemia", "thiazide-hyponatraemia", "thiazide-lithium",
    "treatment-not-indicated", "triple-whammy", "white-coat",
)

#: The Parameters parts of GuidanceResponse.outputParameters (service/fhir_output.py).
OUTPUT_PARAMETERS: Final[dict[str, str]] = {
    "option": "One treatment option, in rank order (ranked first, then the unranked by id)",
    "rank": "The option's rank (absent for an option that is not ranked)",
    "status": "The option's status (recommended, alternative, caution, contraindicated, "
              "not-ranked), or the rationale's (verified: the LLM's text, checked against the "
              "record; rejected, unavailable, timeout: the text built from the record instead)",
    "riskAssessment": "The RiskAssessment with the option's predicted 12-week change in clinic "
                      "systolic BP",
    "issue": "A DetectedIssue: a finding about the patient or an option, or a stop condition",
    "rationale": "The explanation of the assessment for the clinician, when an LLM is "
                 "configured: parts status, sentence and model",
    "sentence": "One sentence of the rationale shown, in order",
    "model": "The served name of the LLM that wrote the rationale (status verified only)",
}


def _option_concepts() -> list[dict[str, str]]:
    """Every option id the catalogue can emit, with a generic display: the union of the
    catalogues of no treatment and of each single class (every start, combination, add,
    switch and increase)."""
    seen: dict[str, str] = {}
    regimens: list[dict[DrugClass, float]] = [{}] + [{c: 1.0} for c in CLASS_ORDER]
    for regimen in regimens:
        for o in valid_options(regimen):
            label = o.label.rsplit(" to ", 1)[0] if o.action is Action.TITRATE else o.label
            seen.setdefault(o.id, label)
    return [{"code": k, "display": v} for k, v in sorted(seen.items())]


def _code_system(cs_id: str, url: str, name: str, title: str, description: str,
                 concepts: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem", "id": cs_id, "url": url, "version": SOFTWARE_VERSION,
        "name": name, "title": title, "status": "active", "experimental": True,
        "date": CONTRACT_DATE, "publisher": PUBLISHER,
        "description": f"{description} {RESEARCH_NOTE}", "caseSensitive": True,
        "content": "complete", "count": len(concepts), "concept": concepts,
    }


@cache
def _code_systems() -> dict[str, dict[str, Any]]:
    systems = [
        _code_system("finding", FINDING_SYSTEM, "HypermarkerFinding", "Hypermarker findings",
                     "What a guideline rule found about the patient or one treatment option "
                     "(DetectedIssue.code); the DetectedIssue's detail says it in words and "
                     "cites the guideline.",
                     [{"code": c} for c in FINDING_CODES]),
        _code_system("treatment-option", OPTION_SYSTEM, "HypermarkerTreatmentOption",
                     "Hypermarker treatment options",
                     "The candidate next antihypertensive regimens the service ranks "
                     "(RiskAssessment.code): start, single-pill combination, add, switch, "
                     "increase.", _option_concepts()),
        _code_system("output-parameter", OUTPUT_SYSTEM, "HypermarkerOutputParameter",
                     "Hypermarker output parameters",
                     "The parameter and part names of the Parameters resource that "
                     "GuidanceResponse.outputParameters references.",
                     [{"code": k, "definition": v} for k, v in OUTPUT_PARAMETERS.items()]),
    ]
    return {cs["id"]: cs for cs in systems}


def code_system(cs_id: str) -> dict[str, Any] | None:
    """The CodeSystem with this id (a copy), or None."""
    cs = _code_systems().get(cs_id)
    return copy.deepcopy(cs) if cs is not None else None


def code_system_ids() -> list[str]:
    return list(_code_systems())


def operation_definition() -> dict[str, Any]:
    """The OperationDefinition of ``$hypertension-options`` (service/api/fhir_operation.py)."""
    guidelines = " | ".join(sorted(PROFILES))
    return {
        "resourceType": "OperationDefinition", "id": OPERATION_CODE, "url": OPERATION_DEFINITION,
        "version": SOFTWARE_VERSION, "name": "HypertensionOptions",
        "title": "Ranked antihypertensive treatment options", "status": "active",
        "kind": "operation", "experimental": True, "date": CONTRACT_DATE,
        "publisher": PUBLISHER,
        "description": "Ranks the candidate next antihypertensive treatments for one adult "
                       "patient by predicted 12-week change in clinic systolic BP and applies "
                       f"the guideline's safety rules. {RESEARCH_NOTE}",
        "affectsState": False, "code": OPERATION_CODE,
        "comment": "POST the patient's record as a Bundle (the patientData parameter posted "
                   "as the body), or a Parameters resource. Every call is audited "
                   "(pseudonymised). Errors are an OperationOutcome: 400 invalid input, "
                   "401 unauthenticated, 408 body not sent in time, 413 body too large, 422 "
                   "the data is not exactly one patient's, 503 not ready.",
        "system": True, "type": False, "instance": False,
        "parameter": [
            {"name": "patientData", "use": "in", "min": 1, "max": "1", "type": "Bundle",
             "documentation": "The patient's resources: one Patient (with an id) and their "
                              "Observations, MedicationRequests, MedicationStatements, "
                              "Conditions and AllergyIntolerances."},
            {"name": "guideline", "use": "in", "min": 0, "max": "1", "type": "code",
             "documentation": f"The guideline profile: {guidelines} (default: the service's "
                              "configured profile)."},
            {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle",
             "documentation": "A collection Bundle: the GuidanceResponse first (status "
                              "success, or data-required when the record cannot be "
                              "assessed), then one RiskAssessment per option, the "
                              "DetectedIssues, the Parameters that "
                              "GuidanceResponse.outputParameters references (each option in "
                              "rank order with its RiskAssessment, every DetectedIssue, and the "
                              "rationale when an LLM is configured)."},
        ],
    }


def capability_statement(fhir_base: str, auth: str, cors: bool) -> dict[str, Any]:
    """The CapabilityStatement of this instance; ``fhir_base`` is the service's ``/fhir`` URL,
    ``auth`` its authentication mode (jwt | demo)."""
    security = ("Operations need a CDS Hooks 2.0 client JWT (Authorization: Bearer), signed "
                "by a configured trusted issuer; a missing or bad token is a 401 "
                "OperationOutcome with WWW-Authenticate: Bearer. The conformance resources "
                "(metadata, CodeSystem, OperationDefinition) are public."
                if auth == "jwt" else
                "DEMO MODE: this instance accepts calls without authentication (never in the "
                "production profile). The conformance resources are public.")
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement", "status": "active", "experimental": True,
        "date": CONTRACT_DATE, "publisher": PUBLISHER, "kind": "instance",
        "name": "HypermarkerCapabilityStatement",
        "description": f"Hypermarker hypertension decision support. {RESEARCH_NOTE}",
        "software": {"name": "hypermarker", "version": SOFTWARE_VERSION},
        "implementation": {"description": "Hypermarker hypertension CDS service",
                           "url": fhir_base},
        "fhirVersion": FHIR_VERSION, "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": "FHIR interface of a CDS Hooks service: one system-level "
                             "operation and the definitions it uses.",
            "security": {"cors": cors, "description": security},
            "resource": [
                {"type": "CodeSystem", "interaction": read,
                 "documentation": "The code systems the service defines: "
                                  + ", ".join(code_system_ids()) + "."},
                {"type": "OperationDefinition", "interaction": read},
            ],
            "operation": [{"name": OPERATION_CODE, "definition": OPERATION_DEFINITION}],
        }],
    }
