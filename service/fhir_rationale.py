"""The rationale in the ``$hypertension-options`` answer (issue 16): one ``rationale``
parameter in the Parameters that GuidanceResponse.outputParameters references
(service/fhir_output.py), with parts ``status`` (verified: the LLM's text, checked against this
record; rejected | unavailable | timeout: the text built from the record instead, and why),
one ``sentence`` per sentence shown, and ``model`` (the LLM's served name) when the text is the
LLM's. Part names: CodeSystem ``output-parameter`` (service/fhir_contract.py).
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.parameters import Parameters

from rationale.writer import RationaleOutcome, RationaleStatus


def rationale_parameter(o: RationaleOutcome) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "status", "valueCode": o.status.value}]
    parts += [{"name": "sentence", "valueString": s.text} for s in o.shown.sentences]
    if o.status is RationaleStatus.VERIFIED and o.model:
        parts.append({"name": "model", "valueString": o.model})
    return {"name": "rationale", "part": parts}


def add_rationale(bundle: dict[str, Any], o: RationaleOutcome) -> None:
    """Add the ``rationale`` parameter to the Bundle's output Parameters (validated)."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Parameters":
            resource.setdefault("parameter", []).append(rationale_parameter(o))
            Parameters.model_validate(resource)
            return
    raise ValueError("the Bundle has no output Parameters")
