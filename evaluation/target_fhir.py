"""Target mode of the fhir suite: every FHIR Bundle of a folder (the Synthea fixtures by
default) sent to a running service, its answers reported and compared with the in-process
assessment of the same input on the same day.

Each bundle is sent twice:

* as a CDS Hooks ``patient-view`` request (``POST /cds-services/hypertension-treatment``)
  whose prefetch is what an EHR would answer to the service's own prefetch templates, read
  from its discovery document (``GET /cds-services``): each template's resource type, ``code``
  tokens and ``status`` select resources of the bundle, ``_sort=-date`` orders them newest
  first and ``_count`` truncates (:func:`prefetch_from_bundle`); the ``patient`` search
  parameter is not evaluated, since a bundle holds one patient's record. The card says
  whether the patient was assessed and, if not, why ("Cannot assess: ..." in its detail).
* the file's bytes, unchanged, to ``POST /fhir/$hypertension-options``: the status
  (GuidanceResponse ``success`` or ``data-required`` with the reasons in its note), the
  options (RiskAssessment) and, for input the service refuses, the OperationOutcome.

The service assesses as of the day it receives a request, so the comparison is with the
in-process assessment as of that day (UTC), not with the in-process fhir suite's default of
each bundle's own latest date: the hook's answer is compared with the in-process assessment of
the exact prefetch sent, the operation's with that of the whole bundle. Status, "cannot
assess" reasons and (operation) the first option must agree, and a refusal must match an
in-process mapping error; any disagreement is a deployment or mapping fault and fails the
``target-agrees-with-in-process`` gate. The first option's findings are re-derived from the
rules on the record as mapped here, so a deployed ranking that put a contraindicated option
first is counted.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

import httpx

from evaluation.target_service import HOOK_PATH, OPERATION_PATH, TargetClient, parse_operation
from fhir_mappings.errors import InputError
from fhir_mappings.features import FeatureVector
from models.explainer import Explainer
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.options import valid_options
from models.pipeline import Pipeline
from models.scorer import Scorer
from models.training.metrics import percentiles

Json = dict[str, Any]
DISCOVERY_PATH: Final = "/cds-services"
SERVICE_ID: Final = "hypertension-treatment"
#: How the service's cannot-assess card and GuidanceResponse note say why (service/cards.py,
#: service/fhir_output.py): "Cannot assess: reason; reason".
CANNOT_ASSESS: Final = "Cannot assess: "
REASON_SEPARATOR: Final = "; "
#: Answers that are a refusal of the input (an OperationOutcome), not a fault of the service.
REFUSAL_CODES: Final = frozenset({400, 412, 413, 422})


class TargetFhirError(RuntimeError):
    """The service's discovery document cannot be read (nothing could be sent)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call (or the in-process equivalent) said about one input.

    ``status``: assessed | cannot_assess | refused (an OperationOutcome, or an in-process
    mapping error) | http-error (anything else: 5xx, transport, an unreadable answer)."""

    status: str
    reasons: tuple[str, ...] = ()
    first_option: str | None = None
    detail: str | None = None

    def same_as(self, other: Answer, options: bool) -> bool:
        if self.status != other.status:
            return False
        if self.status == "cannot_assess":
            return _normal(self.reasons) == _normal(other.reasons)
        if self.status == "assessed" and options:
            return self.first_option == other.first_option
        return True

    def to_dict(self) -> Json:
        return asdict(self)


def _normal(reasons: tuple[str, ...]) -> list[str]:
    """Reasons as the service writes them (joined) and as the harness reads them (split)."""
    return sorted(REASON_SEPARATOR.join(reasons).split(REASON_SEPARATOR))


def _reasons(text: str) -> tuple[str, ...]:
    body = text[len(CANNOT_ASSESS):].split("\n\n")[0] if text.startswith(CANNOT_ASSESS) else ""
    return tuple(body.split(REASON_SEPARATOR)) if body else ()


# -- prefetch from a bundle -------------------------------------------------------------------

def prefetch_templates(client: TargetClient, service_id: str = SERVICE_ID) -> dict[str, str]:
    """The prefetch templates of ``service_id`` from the target's discovery document."""
    try:
        code, body = client.get(DISCOVERY_PATH)
    except httpx.HTTPError as e:
        raise TargetFhirError(f"GET {DISCOVERY_PATH}: {type(e).__name__}") from e
    if code != 200 or not isinstance(body, dict):
        raise TargetFhirError(f"GET {DISCOVERY_PATH} answered {code}")
    for s in body.get("services") or []:
        if isinstance(s, dict) and s.get("id") == service_id:
            return {str(k): str(v) for k, v in (s.get("prefetch") or {}).items()}
    raise TargetFhirError(f"the discovery document lists no service {service_id!r}")


def _resources(doc: Any) -> Iterator[Json]:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for e in doc.get("entry") or []:
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                yield e["resource"]


def _codings(r: Json) -> set[tuple[str, str]]:
    code = r.get("code")
    return {(str(c.get("system", "")), str(c.get("code", "")))
            for c in (code if isinstance(code, dict) else {}).get("coding") or []
            if isinstance(c, dict)}


def _when(r: Json) -> str:
    for key in ("effectiveDateTime", "effectiveInstant", "issued", "authoredOn",
                "recordedDate", "onsetDateTime", "dateAsserted"):
        if isinstance(r.get(key), str):
            return str(r[key])
    period = r.get("effectivePeriod")
    return str(period.get("start", "")) if isinstance(period, dict) else ""


def _token_match(tokens: list[str], codings: set[tuple[str, str]]) -> bool:
    for t in tokens:
        system, bar, code = t.rpartition("|")
        if any(c == code and (not bar or s == system) for s, c in codings):
            return True
    return False


def answer_template(template: str, resources: list[Json]) -> Json | None:
    """What a FHIR server holding only ``resources`` would answer to one prefetch template:
    a resource for a read (``Patient/{{context.patientId}}``; None when absent), else a
    searchset Bundle (see the module docstring for the parameters evaluated)."""
    path, _, query = template.partition("?")
    if not query:
        rtype = path.split("/")[0]
        return next((r for r in resources if r.get("resourceType") == rtype), None)
    picked = [r for r in resources if r.get("resourceType") == path]
    params = dict(parse_qsl(query, keep_blank_values=True))
    if "code" in params:
        tokens = params["code"].split(",")
        picked = [r for r in picked if _token_match(tokens, _codings(r))]
    if "status" in params:
        allowed = set(params["status"].split(","))
        picked = [r for r in picked if r.get("status") in allowed]
    if params.get("_sort") == "-date":
        picked.sort(key=_when, reverse=True)
    if params.get("_count", "").isdigit():
        picked = picked[:int(params["_count"])]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(picked),
            "entry": [{"resource": r} for r in picked]}


def prefetch_from_bundle(doc: Any, templates: dict[str, str]) -> Json:
    """The prefetch object of every template that has an answer (a read may have none)."""
    resources = list(_resources(doc))
    out: Json = {}
    for key, template in templates.items():
        value = answer_template(template, resources)
        if value is not None:
            out[key] = value
    return out


# -- answers ----------------------------------------------------------------------------------

def _refusal_or_error(code: int, body: Any) -> Answer:
    if code in REFUSAL_CODES and isinstance(body, dict) and (
            body.get("resourceType") == "OperationOutcome"):
        issue = (body.get("issue") or [{}])[0]
        return Answer("refused", detail=f"{code} {issue.get('code', '?')}: "
                                         f"{issue.get('diagnostics', '')}"[:200])
    return Answer("http-error", detail=str(code))


def hook_answer(code: int, body: Any) -> Answer:
    """Status and reasons from a CDS Hooks answer (a cannot-assess card, or any other)."""
    if code != 200 or not isinstance(body, dict):
        return _refusal_or_error(code, body)
    for card in body.get("cards") or []:
        detail = str(card.get("detail") or "")
        if detail.startswith(CANNOT_ASSESS):
            return Answer("cannot_assess", _reasons(detail))
    return Answer("assessed")


def operation_answer(code: int, body: Any) -> Answer:
    """Status, reasons and first option from a ``$hypertension-options`` answer."""
    if code != 200 or not isinstance(body, dict):
        return _refusal_or_error(code, body)
    options, _default, status = parse_operation(body)
    if status == "data-required":
        note = next((str(n.get("text", "")) for e in body.get("entry") or []
                     if (e.get("resource") or {}).get("resourceType") == "GuidanceResponse"
                     for n in e["resource"].get("note") or []
                     if str(n.get("text", "")).startswith(CANNOT_ASSESS)), "")
        return Answer("cannot_assess", _reasons(note))
    if status != "success":
        return Answer("http-error", detail=f"GuidanceResponse status {status}")
    first = next((o.id for o in options if o.rank == 1), None)
    return Answer("assessed", first_option=first)


def local_answer(data: Any, pipeline: Pipeline, as_of: Any
                 ) -> tuple[Answer, FeatureVector | None]:
    """The in-process assessment of ``data`` (bytes or parsed JSON) as of ``as_of``."""
    try:
        result = pipeline.assess_fhir(data, as_of)
    except (InputError, ValueError) as e:
        return Answer("refused", detail=f"{type(e).__name__}: {e}"[:200]), None
    a = result.assessment
    return (Answer(a.status.value, tuple(a.reasons), a.first.option.id if a.first else None),
            result.features)


def _call(client: TargetClient, path: str, body: Json | None = None,
          content: bytes | None = None) -> tuple[int, Any]:
    try:
        code, answer, _ = client.post(path, body, content=content)
    except httpx.HTTPError as e:
        return 0, {"transport": type(e).__name__}
    return code, answer


# -- the suite --------------------------------------------------------------------------------

def run_target_fhir_suite(client: TargetClient, folder: Path, scorer: Scorer,
                          profile: GuidelineProfile,
                          progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Send every ``*.json`` Bundle of ``folder`` to the service (module docstring);
    ``progress`` is called with the number of bundles sent."""
    files = sorted(folder.glob("*.json"))
    templates = prefetch_templates(client)
    # the service's own pipeline, in process, for the agreement check (no SHAP needed)
    pipeline = Pipeline(scorer, Explainer.load(scorer.manifest), profile, explain_top=0)
    today = datetime.now(UTC).date()
    op_status: Counter[str] = Counter()
    hook_status: Counter[str] = Counter()
    local_status: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    hook_reasons: Counter[str] = Counter()
    local_reasons: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    http_errors: Counter[str] = Counter()
    disagreements: list[Json] = []
    detail: list[Json] = []
    contraindicated_first = agree = 0
    for i, f in enumerate(files):
        if progress is not None:
            progress(i)
        raw = f.read_bytes()
        entry: Json = {"file": f.name}
        ok = True
        # the FHIR operation: the file as it is
        op = operation_answer(*_call(client, OPERATION_PATH, content=raw))
        local, fv = local_answer(raw, pipeline, today)
        op_status[op.status] += 1
        local_status[local.status] += 1
        reasons.update(op.reasons)
        local_reasons.update(local.reasons)
        if op.status == "refused":
            errors[(op.detail or "").split(":")[0]] += 1
        elif op.status == "http-error":
            http_errors[f"operation {op.detail}"] += 1
        if not op.same_as(local, options=True):
            ok = False
            disagreements.append({"file": f.name, "call": "operation",
                                  "service": op.to_dict(), "in_process": local.to_dict()})
        if op.first_option is not None and fv is not None:
            catalogue = {o.id: o for o in valid_options(fv.regimen)}
            option = catalogue.get(op.first_option)
            if option is None or max_severity(option_findings(fv, option)) is Severity.BLOCK:
                contraindicated_first += 1
        entry["operation"], entry["in_process"] = op.to_dict(), local.to_dict()
        # the CDS hook: the prefetch an EHR would send (needs the bundle parsed)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            prefetch = prefetch_from_bundle(doc, templates)
            patient = prefetch.get("patient")
            pid = str(patient.get("id")) if isinstance(patient, dict) and patient.get(
                "id") else f.stem
            request = {"hookInstance": str(uuid.uuid4()), "hook": "patient-view",
                       "context": {"userId": "Practitioner/evaluation", "patientId": pid},
                       "prefetch": prefetch}
            hook = hook_answer(*_call(client, HOOK_PATH, request))
            hook_local, _ = local_answer(prefetch, pipeline, today)
            hook_status[hook.status] += 1
            hook_reasons.update(hook.reasons)
            if hook.status == "http-error":
                http_errors[f"cds-hooks {hook.detail}"] += 1
            if not hook.same_as(hook_local, options=False):
                ok = False
                disagreements.append({"file": f.name, "call": "cds-hooks",
                                      "service": hook.to_dict(),
                                      "in_process": hook_local.to_dict()})
            entry["cds_hooks"] = hook.to_dict()
        agree += ok
        detail.append(entry)
    n = len(files)
    out: dict[str, Any] = {
        "suite": "target:fhir",
        "target": client.base_url,
        "folder": str(folder),
        "as_of": today.isoformat(),
        "as_of_note": "the service assesses as of the day it receives a request (UTC); the "
                      "in-process comparison uses the same day",
        "bundles": n,
        "patients": n,
        "mapped": op_status["assessed"] + op_status["cannot_assess"],
        "errors": sum(errors.values()),
        "errors_by_type": dict(errors),
        "errors_definition": "bundles the FHIR operation refused with an OperationOutcome",
        "http_errors": sum(http_errors.values()),
        "http_errors_by_kind": dict(http_errors),
        "http_errors_definition": "answers that are neither an assessment nor a refusal with "
                                  "an OperationOutcome (5xx, transport, unreadable)",
        "assessed": op_status["assessed"],
        "cannot_assess": op_status["cannot_assess"],
        "cannot_assess_reasons": dict(reasons.most_common()),
        "cds_hooks": {"sent": sum(hook_status.values()), "by_status": dict(hook_status),
                      "cannot_assess_reasons": dict(hook_reasons.most_common())},
        "in_process": {"by_status": dict(local_status),
                       "cannot_assess_reasons": dict(local_reasons.most_common())},
        "contraindicated_first": contraindicated_first,
        "agreement_with_in_process": agree / n if n else float("nan"),
        "agreement_definition": "share of bundles whose every answer (operation: status, "
                                "reasons, first option or refusal; hook: status and reasons) "
                                "equals the in-process assessment of the same input and day",
        "disagreements": disagreements,
        "latency_ms": percentiles(client.latencies.get(HOOK_PATH, [])),
        "latency_ms_fhir_operation": percentiles(client.latencies.get(OPERATION_PATH, [])),
        "bundles_detail": detail,
    }
    client.latencies.clear()
    return out
