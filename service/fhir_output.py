"""The assessment as FHIR R4: GuidanceResponse + RiskAssessment per option + DetectedIssue per
finding + the Parameters that link them, in a ``collection`` Bundle, each resource validated
with ``fhir.resources.R4B`` (and, in the tests, with the HL7 R4 JSON Schema and the
StructureDefinitions' FHIRPath invariants: tests/fhir_validator/).

For systems that do not speak CDS Hooks (``POST /fhir/$hypertension-options``).

The ranking is data, not only text. R4 GuidanceResponse.outputParameters (0..1
Reference(Parameters)): "The output parameters of the evaluation, if any. ... modules may
define specific outputs that would be returned as the result of the evaluation, and these
would be returned in this element." It references a Parameters entry with one ``option`` per
RiskAssessment, in rank order (parts ``rank``, ``status``, ``riskAssessment``), and one
``issue`` per DetectedIssue (names: CodeSystem ``output-parameter``). GuidanceResponse.result
(0..1 Reference(CarePlan | RequestGroup)) is "the actions, if any, produced by the
evaluation": the operation proposes no orderable action as a resource (a RequestGroup action
needs a resource or sub-actions, rqg-1), so it is absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.guidanceresponse import GuidanceResponse
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.riskassessment import RiskAssessment

from models.assessment import Assessment, AssessmentStatus
from models.assessment_text import comparison_lines, driver_phrase
from models.guideline.findings import Finding, Severity
from models.guideline.stops import Stop, Urgency
from models.uncertainty_words import effect_words, p_target_words, reading_words
from service.fhir_canonical import (
    EXT_EFFECT,
    EXT_SBP,
    EXT_STATUS,
    FINDING_SYSTEM,
    OPTION_SYSTEM,
)

UCUM = "http://unitsofmeasure.org"
SEVERITY: Final[Mapping[Severity, str]] = {
    Severity.BLOCK: "high", Severity.WARN: "moderate", Severity.INFO: "low"}
GUIDELINE_URLS = {"NICE NG136": "https://www.nice.org.uk/guidance/ng136",
                  "NICE NG203": "https://www.nice.org.uk/guidance/ng203",
                  "NICE NG106": "https://www.nice.org.uk/guidance/ng106",
                  "NICE NG133": "https://www.nice.org.uk/guidance/ng133",
                  "ESC 2024": "https://doi.org/10.1093/eurheartj/ehae178"}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _mmhg(v: float) -> dict[str, Any]:
    return {"value": v, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def _guideline_url(citation: str) -> str | None:
    """The published guideline a citation string names, if one of GUIDELINE_URLS."""
    return next((u for g, u in GUIDELINE_URLS.items() if citation.startswith(g)), None)


def _issue(f: Finding, patient: dict[str, str], implicated: str | None, when: str
           ) -> dict[str, Any]:
    citation = str(f.citation)
    d: dict[str, Any] = {
        "resourceType": "DetectedIssue", "status": "final",
        "code": {"coding": [{"system": FINDING_SYSTEM, "code": f.code}], "text": f.code},
        "severity": SEVERITY[f.severity], "patient": patient, "identifiedDateTime": when,
        "detail": f"{f.message} ({citation})",
    }
    url = _guideline_url(citation)
    if url:
        d["reference"] = url
    if implicated:
        d["implicated"] = [{"reference": implicated}]
    if f.monitoring:
        d["mitigation"] = [{"action": {"text": f"Monitor: {f.monitoring}"}}]
    return d


def _stop_issue(stop: Stop, patient: dict[str, str], when: str) -> dict[str, Any]:
    citation = str(stop.citation)
    d: dict[str, Any] = {
        "resourceType": "DetectedIssue", "status": "final",
        "code": {"coding": [{"system": FINDING_SYSTEM, "code": stop.code}],
                 "text": stop.summary},
        "severity": "high" if stop.urgency is Urgency.CRITICAL else "moderate",
        "patient": patient, "identifiedDateTime": when,
        "detail": f"{stop.summary} ({citation})",
        "mitigation": [{"action": {"text": stop.action}}],
    }
    url = _guideline_url(citation)
    if url:
        d["reference"] = url
    return d


def _output_parameters(entries: list[dict[str, Any]],
                       options: list[tuple[str, int | None, str]],
                       guidance: dict[str, Any]) -> dict[str, Any]:
    """The Parameters entry that GuidanceResponse.outputParameters references (module
    docstring): ``option`` per (RiskAssessment fullUrl, rank, status) of ``options``, in the
    document's rank order, then ``issue`` per DetectedIssue of ``entries``."""
    params: list[dict[str, Any]] = []
    for ra_url, rank, status in options:
        parts: list[dict[str, Any]] = (
            [{"name": "rank", "valueInteger": rank}] if rank is not None else [])
        parts += [{"name": "status", "valueCode": status},
                  {"name": "riskAssessment", "valueReference": {"reference": ra_url}}]
        params.append({"name": "option", "part": parts})
    params += [{"name": "issue", "valueReference": {"reference": e["fullUrl"]}}
               for e in entries if e["resource"]["resourceType"] == "DetectedIssue"]
    url = _urn()
    guidance["outputParameters"] = {"reference": url}
    resource: dict[str, Any] = {"resourceType": "Parameters"}
    if params:  # an empty list is not valid FHIR JSON
        resource["parameter"] = params
    return {"fullUrl": url, "resource": resource}


def assessment_bundle(a: Assessment, patient_id: str | None, module_uri: str,
                      request_id: str) -> dict[str, Any]:
    """Build and validate the Bundle for one assessment; ``module_uri`` is the canonical of
    the module (service/fhir_canonical.py MODULE_URI)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    patient = {"reference": f"Patient/{patient_id}"} if patient_id else {
        "display": "patient in the submitted bundle"}
    entries: list[dict[str, Any]] = []
    options: list[tuple[str, int | None, str]] = []  # (RiskAssessment fullUrl, rank, status)
    gr_url = _urn()
    guidance: dict[str, Any] = {
        "resourceType": "GuidanceResponse", "requestIdentifier": {"value": request_id},
        "moduleUri": module_uri, "subject": patient, "occurrenceDateTime": now,
    }
    if a.status is AssessmentStatus.CANNOT_ASSESS:
        guidance["status"] = "data-required"
        guidance["note"] = [{"text": "Cannot assess: " + "; ".join(a.reasons)}]
        entries.append({"fullUrl": gr_url, "resource": guidance})
        entries += [{"fullUrl": _urn(), "resource": _issue(f, patient, None, now)}
                    for f in a.findings]
    elif a.status is AssessmentStatus.PATHWAY:
        # A stop condition: what to do instead of a ranked list, one DetectedIssue each.
        guidance["status"] = "success"
        guidance["note"] = [
            {"text": "No ranked options: " + "; ".join(s.summary for s in a.stops)},
            {"text": "Decision support only: simulated training data, not clinically "
                     "validated."}]
        entries.append({"fullUrl": gr_url, "resource": guidance})
        entries += [{"fullUrl": _urn(), "resource": _stop_issue(s, patient, now)}
                    for s in a.stops]
        entries += [{"fullUrl": _urn(), "resource": _issue(f, patient, None, now)}
                    for f in a.findings]
    else:
        guidance["status"] = "success"
        t = a.target
        assert t is not None  # an assessed patient has a target
        ranked = [o for o in a.options if o.rank is not None]
        guidance["note"] = [
            {"text": f"Target below {t.systolic:.0f}/{t.diastolic:.0f} mmHg "
                     f"({t.citation}); guideline step: {a.guideline_step}; guideline "
                     f"default: {', '.join(a.guideline_default) or 'none'}."
                     + (f" Not the guideline's choice: {a.choice_reason}"
                        if a.choice_reason else "")},
            {"text": "Ranked options (expected effect on systolic BP): " + "; ".join(
                f"{o.rank}. {a.label(o.option)} ({o.expected_effect:+.1f} mmHg)"
                for o in ranked)},
            *([{"text": "First option against the guideline's choice: "
                + " ".join(comparison_lines(a.comparison))}] if a.comparison else []),
            {"text": "Decision support only: simulated training data, not clinically "
                     "validated."}]
        entries.append({"fullUrl": gr_url, "resource": guidance})
        m = a.model
        for o in a.options:
            ra_url = _urn()
            lo, hi = o.interval
            status = o.status.value
            e_lo, e_hi = o.effect_interval
            effect = effect_words(o.expected_effect, o.effect_interval, o.effect_coverage)
            prediction: dict[str, Any] = {
                "outcome": {"text": f"one clinic systolic reading below {t.systolic:.0f} mmHg "
                                    "at 12 weeks"},
                "whenRange": {"low": {"value": 12, "unit": "wk", "system": UCUM,
                                      "code": "wk"},
                              "high": {"value": 12, "unit": "wk", "system": UCUM,
                                       "code": "wk"}},
                "rationale": f"rank {o.rank if o.rank is not None else '-'}; "
                             f"status {status}; "
                             f"{effect}; "
                             f"{reading_words(o.interval, o.interval_coverage)}"
                             + (f"; {p_target_words(o.p_target, t)}" if o.p_target_shown
                                else "")}
            if o.p_target_shown:  # only where it means something (models.uncertainty_words)
                prediction["probabilityDecimal"] = o.p_target
            ra: dict[str, Any] = {
                "resourceType": "RiskAssessment", "status": "final", "subject": patient,
                "occurrenceDateTime": now,
                "code": {"coding": [{"system": OPTION_SYSTEM, "code": o.option.id}],
                         "text": a.label(o.option)},
                "method": {"text": f"{m.id} {m.version} ({m.provider})"},
                "extension": [
                    {"url": EXT_STATUS, "valueCode": status},
                    {"url": EXT_EFFECT, "extension": [
                        {"url": "value", "valueQuantity": _mmhg(o.expected_effect)},
                        {"url": "lower", "valueQuantity": _mmhg(e_lo)},
                        {"url": "upper", "valueQuantity": _mmhg(e_hi)},
                        {"url": "coverage", "valueDecimal": o.effect_coverage}]},
                    {"url": EXT_SBP, "extension": [
                        {"url": "value", "valueQuantity": _mmhg(o.predicted_sbp_change)},
                        {"url": "lower", "valueQuantity": _mmhg(lo)},
                        {"url": "upper", "valueQuantity": _mmhg(hi)},
                        {"url": "coverage", "valueDecimal": o.interval_coverage}]}],
                "prediction": [prediction],
            }
            if o.drivers:
                ra["note"] = [{"text": f"Drivers, against {a.drivers_baseline}: " + "; ".join(
                    driver_phrase(d) for d in o.drivers)}]
            options.append((ra_url, o.rank, status))
            entries.append({"fullUrl": ra_url, "resource": ra})
            entries += [{"fullUrl": _urn(), "resource": _issue(f, patient, ra_url, now)}
                        for f in o.findings if f.severity is not Severity.INFO]
        entries += [{"fullUrl": _urn(), "resource": _issue(f, patient, None, now)}
                    for f in a.findings]
    entries.append(_output_parameters(entries, options, guidance))
    validators: dict[str, Any] = {"GuidanceResponse": GuidanceResponse,
                                  "RiskAssessment": RiskAssessment,
                                  "DetectedIssue": DetectedIssue, "Parameters": Parameters}
    for e in entries:
        validators[e["resource"]["resourceType"]].model_validate(e["resource"])
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": now,
              "entry": entries}
    Bundle.model_validate(bundle)
    return bundle
