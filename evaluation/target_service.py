"""Target mode: send the suites' cases to a running service and score what comes back, so
that the same harness checks the deployed system end to end.

For every case the simulated patient is written as a FHIR record
(:mod:`evaluation.fhir_generator`) and sent twice:

* as a CDS Hooks ``patient-view`` request with a full prefetch
  (``POST /cds-services/hypertension-treatment``): latency, and whether a card came back;
* as a FHIR Bundle to ``POST /fhir/$hypertension-options``: the scored answer. Parsing the top
  option out of a card's free text would be fragile, so the options are read from the
  operation's RiskAssessment resources (option id in ``code``, rank in
  ``prediction.rationale``, status and predicted change in extensions) and the guideline
  default from the GuidanceResponse note.

Both carry a client JWT (``aud`` = the exact URL called) when a private key and issuer are
given. The service's answers are checked independently: the first option's findings are
re-derived from the rules on the record as mapped here, so a deployed ranking that put a
contraindicated option first is counted; "agreement" compares the service's first option with
the in-process assessment of the same Bundle (same mapping, same date), which is what a
correct deployment must reproduce exactly. Decision quality uses the simulated true change.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from evaluation.cohort import CaseSet, feature_vector, simulated_case_set
from evaluation.fhir_generator import (
    cds_request,
    collection_bundle,
    patient_resources,
    unexpressed,
)
from evaluation.safety_matrix import matrix_patients
from fhir_mappings.features import FeatureVector
from models.assessment import AssessmentStatus
from models.explainer import Explainer
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.options import valid_options
from models.pipeline import Pipeline
from models.scorer import Scorer
from models.training.metrics import captured_fraction, percentiles

HOOK_PATH = "/cds-services/hypertension-treatment"
OPERATION_PATH = "/fhir/$hypertension-options"
EXT_SBP_SUFFIX = "/StructureDefinition/predicted-sbp-change"
EXT_STATUS_SUFFIX = "/StructureDefinition/option-status"
DEFAULT_SAFETY_CASES = 300
_RANK = re.compile(r"^rank (\d+|-);")
_DEFAULT = re.compile(r"guideline default: ([^.]*)\.")


def _algorithm(pem: bytes) -> str:
    key = load_pem_private_key(pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS384"
    raise ValueError("the private key must be an EC (P-256/384/521) or RSA key")


@dataclass
class TargetClient:
    """HTTP client of a running service; signs a fresh client JWT per call when keyed."""

    base_url: str
    http: httpx.Client
    private_key: bytes | None = None
    iss: str | None = None
    kid: str | None = None
    algorithm: str = "ES384"
    latencies: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def create(cls, base_url: str, private_key: Path | None = None, iss: str | None = None,
               kid: str | None = None, timeout: float = 30.0) -> TargetClient:
        if (private_key is None) != (iss is None):
            raise ValueError("give both --private-key and --iss to sign requests, or neither")
        pem = private_key.read_bytes() if private_key is not None else None
        return cls(base_url.rstrip("/"), httpx.Client(timeout=timeout), pem, iss, kid,
                   _algorithm(pem) if pem is not None else "ES384")

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.private_key is not None and self.iss is not None:
            now = int(time.time())
            claims = {"iss": self.iss, "aud": url, "iat": now, "exp": now + 60,
                      "jti": str(uuid.uuid4())}
            jose = {"typ": "JWT", **({"kid": self.kid} if self.kid else {})}
            token = jwt.encode(claims, self.private_key, algorithm=self.algorithm,
                               headers=jose)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON body or None) of one signed GET."""
        url = self.base_url + path
        r = self.http.get(url, headers=self._headers(url))
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TargetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, path: str, body: dict[str, Any] | None = None, *,
             content: bytes | None = None) -> tuple[int, Any, float]:
        """(status, JSON body or None, latency ms) of one signed POST of ``body`` (as JSON)
        or of the raw bytes ``content`` (sent as they are, malformed or not)."""
        url = self.base_url + path
        t0 = time.perf_counter()
        if content is not None:
            r = self.http.post(url, content=content, headers=self._headers(url))
        else:
            r = self.http.post(url, json=body, headers=self._headers(url))
        ms = (time.perf_counter() - t0) * 1000.0
        self.latencies.setdefault(path, []).append(ms)
        try:
            return r.status_code, r.json(), ms
        except ValueError:
            return r.status_code, None, ms


@dataclass(frozen=True, slots=True)
class ServiceOption:
    id: str
    rank: int | None
    status: str | None
    predicted_sbp_change: float | None


def parse_operation(bundle: Any) -> tuple[list[ServiceOption], list[str] | None, str]:
    """Options (RiskAssessment), the guideline default (GuidanceResponse note) and the
    GuidanceResponse status of a ``$hypertension-options`` answer."""
    options: list[ServiceOption] = []
    default: list[str] | None = None
    status = "missing"
    for e in (bundle or {}).get("entry") or []:
        r = e.get("resource") or {}
        if r.get("resourceType") == "GuidanceResponse":
            status = str(r.get("status"))
            for note in r.get("note") or []:
                if m := _DEFAULT.search(note.get("text", "")):
                    default = [] if m.group(1) == "none" else m.group(1).split(", ")
        elif r.get("resourceType") == "RiskAssessment":
            oid = r["code"]["coding"][0]["code"]
            rationale = (r.get("prediction") or [{}])[0].get("rationale", "")
            m = _RANK.match(rationale)
            rank = int(m.group(1)) if m and m.group(1) != "-" else None
            st, pred = None, None
            for ext in r.get("extension") or []:
                if ext.get("url", "").endswith(EXT_STATUS_SUFFIX):
                    st = ext.get("valueCode")
                elif ext.get("url", "").endswith(EXT_SBP_SUFFIX):
                    pred = next((x["valueQuantity"]["value"] for x in ext.get("extension", [])
                                 if x.get("url") == "value"), None)
            options.append(ServiceOption(oid, rank, st, pred))
    return options, default, status


def _cases(suite: str, patients: int, seed: int, limit: int | None
           ) -> tuple[list[FeatureVector], CaseSet | None]:
    if suite == "safety":
        return list(islice(matrix_patients(), limit or DEFAULT_SAFETY_CASES)), None
    cases = simulated_case_set(suite, patients, seed)
    return [feature_vector(f, d) for f, d in zip(cases.cohort.features,
                                                 cases.cohort.current_doses, strict=True)], cases


def run_target_suite(client: TargetClient, suite: str, scorer: Scorer,
                     profile: GuidelineProfile, patients: int, seed: int,
                     limit: int | None = None,
                     progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Send every case of a suite to the service and score its answers (module docstring);
    ``progress`` is called with the number of cases sent."""
    people, cases = _cases(suite, patients, seed, limit)
    truth_by_patient: list[dict[str, float]] = []
    if cases is not None:
        starts = cases.rows.group_starts()
        ends = np.append(starts[1:], len(cases.rows))
        truth_by_patient = [dict(zip(cases.rows.option_ids[s:e].tolist(),
                                     cases.true_change[s:e].tolist(), strict=True))
                            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    # the service's own pipeline, in process, for the agreement check (no SHAP needed)
    pipeline = Pipeline(scorer, Explainer.load(scorer.manifest), profile, explain_top=0)
    today = datetime.now(UTC).date()
    http_errors: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    cards = {"with_card": 0, "without_card": 0}
    counts = {"contraindicated_first": 0, "contraindicated_status_ranked": 0, "agree": 0,
              "compared": 0, "no_safe_option": 0}
    sums = {"model_first": 0.0, "guideline_default": 0.0, "best_safe_option": 0.0,
            "random_safe_option": 0.0}
    n_default = concordant = 0
    for i, p in enumerate(people):
        if progress is not None:
            progress(i)
        pid = f"eval-{suite}-{i}"
        parts = patient_resources(p, pid, today)
        missing.update(unexpressed(p))
        code, body, _ = client.post(HOOK_PATH, cds_request(parts, pid, str(uuid.uuid4())))
        if code != 200:
            http_errors[f"cds-hooks {code}"] += 1
        else:
            cards["with_card" if (body or {}).get("cards") else "without_card"] += 1
        bundle = collection_bundle(parts)
        code, body, _ = client.post(OPERATION_PATH, bundle)
        if code != 200:
            http_errors[f"operation {code}"] += 1
            continue
        options, default, gr_status = parse_operation(body)
        statuses[gr_status] += 1
        checked = pipeline.assess_fhir(bundle, today)
        local, local_fv = checked.assessment, checked.features
        first = next((o for o in options if o.rank == 1), None)
        counts["compared"] += 1
        counts["agree"] += (first.id if first else None) == (
            local.first.option.id if local.first else None)
        counts["contraindicated_status_ranked"] += sum(
            1 for o in options if o.rank is not None and o.status == "contraindicated")
        if first is None:
            counts["no_safe_option"] += local.status is AssessmentStatus.ASSESSED
            continue
        catalogue = {o.id: o for o in valid_options(local_fv.regimen)}
        if first.id not in catalogue or max_severity(
                option_findings(local_fv, catalogue[first.id])) is Severity.BLOCK:
            counts["contraindicated_first"] += 1
        if truth_by_patient and default:
            truth = truth_by_patient[i]
            safe = [o.id for o in options if o.rank is not None and o.id in truth]
            if first.id in truth and safe and all(d in truth for d in default):
                n_default += 1
                concordant += first.id in default
                sums["model_first"] += truth[first.id]
                sums["guideline_default"] += float(np.mean([truth[d] for d in default]))
                sums["best_safe_option"] += min(truth[s] for s in safe)
                sums["random_safe_option"] += float(np.mean([truth[s] for s in safe]))
    n = max(n_default, 1)
    mean = {k: v / n for k, v in sums.items()}
    out: dict[str, Any] = {
        "suite": f"target:{suite}",
        "target": client.base_url,
        "patients": len(people),
        "http_errors": sum(http_errors.values()),
        "http_errors_by_kind": dict(http_errors),
        "guidance_status": dict(statuses),
        "cards": cards,
        "contraindicated_first": counts["contraindicated_first"],
        "contraindicated_status_ranked": counts["contraindicated_status_ranked"],
        "no_safe_option": counts["no_safe_option"],
        "agreement_with_in_process": counts["agree"] / max(counts["compared"], 1),
        "agreement_definition": "share of patients whose first option from the service equals "
                                "the in-process assessment of the same Bundle and date",
        "facts_not_expressed_in_fhir": dict(missing),
        "latency_ms": percentiles(client.latencies.get(HOOK_PATH, [])),
        "latency_ms_fhir_operation": percentiles(client.latencies.get(OPERATION_PATH, [])),
    }
    if truth_by_patient:
        out.update({
            "patients_with_guideline_default": n_default,
            "guideline_concordance": concordant / n,
            "mean_true_change": mean,
            "captured_fraction": {
                "model_first": captured_fraction(mean["model_first"],
                                                 mean["random_safe_option"],
                                                 mean["best_safe_option"]),
                "guideline_default": captured_fraction(mean["guideline_default"],
                                                       mean["random_safe_option"],
                                                       mean["best_safe_option"])},
            "benefit_vs_guideline_default_mmhg": mean["guideline_default"]
            - mean["model_first"],
        })
    client.latencies.clear()
    return out
