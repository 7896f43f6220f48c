"""The FHIR suite: map every Bundle of a folder (by default the Synthea fixtures vendored in
the repository, ``tests/fixtures/synthea-r4``, with their licence note) and assess it,
reporting feature coverage, mapping errors and data-quality issues by type, and the reasons
for "cannot assess". A folder without bundles is refused (:class:`NoBundlesError`): a suite
without inputs proves nothing.

Each bundle is assessed as of ``as_of`` when given, else as of the latest date of a blood
pressure panel (LOINC 85354-9) or an Encounter in the bundle, so that old synthetic records
are judged at the time they describe rather than years later.

With ``generated`` > 0 the suite also writes that many simulated internal-site patients as FHIR
bundles (:mod:`evaluation.fhir_generator`, what target mode sends a service) and assesses them
through the same pipeline (``generated`` in the report; their contraindicated first options
count in the suite's ``contraindicated_first``, which the safety gate reads). The first options
of the assessed patients are reported by kind and classes and by guideline step
(``first_option_distribution``: the fixtures', the generated bundles' and both together; counts
and shares of the assessed patients, "none" for a patient with no option ranked).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from evaluation.cohort import AS_OF, feature_vector
from evaluation.fhir_generator import collection_bundle, patient_resources
from fhir_mappings.errors import InputError
from models.assessment import Assessment, AssessmentStatus
from models.explainer import Explainer
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.options import TreatmentOption
from models.pipeline import Pipeline
from models.scorer import Scorer
from models.training.simulator import simulate_cohort
from vocabulary.drug_classes import CLASS_INFO
from vocabulary.feature_table import PATIENT_FEATURES, Kind, Missing

DEFAULT_FHIR_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "synthea-r4"
BP_PANEL = "85354-9"
#: Simulated patients the fhir suite writes as FHIR bundles beside the fixtures (CLI default).
GENERATED_PATIENTS = 200
#: The bucket of an assessed patient with no option ranked.
NO_OPTION = "none (no option ranked)"


class NoBundlesError(ValueError):
    """The folder holds no FHIR bundle (``*.json``)."""


def bundle_files(folder: Path) -> list[Path]:
    """The ``*.json`` files of a folder, sorted; empty when it is not a folder."""
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _resources(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for e in doc.get("entry") or []:
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                yield e["resource"]


def _day(value: Any) -> date | None:
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def latest_encounter_or_bp(doc: Any) -> date | None:
    """The latest date of a BP panel Observation or an Encounter start in a Bundle."""
    days = []
    for r in _resources(doc):
        if r.get("resourceType") == "Encounter":
            days.append(_day((r.get("period") or {}).get("start")))
        elif r.get("resourceType") == "Observation":
            codes = [c.get("code") for c in (r.get("code") or {}).get("coding") or []
                     if isinstance(c, dict)]
            if BP_PANEL in codes:
                days.append(_day(r.get("effectiveDateTime")))
    found = [d for d in days if d is not None]
    return max(found) if found else None


def option_kind(o: TreatmentOption) -> str:
    """An option's kind and classes, as the distribution counts it: "add: CCB",
    "combination: ACEi + thiazide-like", "titrate: ARB", "switch: ACEi to ARB"."""
    def names(classes: Iterable[Any]) -> str:
        return " + ".join(CLASS_INFO[c].short for c in classes)

    if o.stopped and o.started:
        return f"{o.action.value}: {names(o.stopped)} to {names(o.started)}"
    return f"{o.action.value}: {names(o.classes)}"


def first_option_distribution(assessments: Iterable[Assessment]) -> dict[str, Any]:
    """The first options of the assessed patients (status ``assessed``) by kind and classes
    (:func:`option_kind`), by guideline step, and by both: counts and shares of the assessed
    patients; a patient with no option ranked counts as :data:`NO_OPTION`, so each table sums
    to ``assessed``."""
    by_kind: Counter[str] = Counter()
    by_step: Counter[str] = Counter()
    both: dict[str, Counter[str]] = {}
    for a in assessments:
        if a.status is not AssessmentStatus.ASSESSED:
            continue
        kind = option_kind(a.first.option) if a.first is not None else NO_OPTION
        step = a.guideline_step or "no step"
        by_kind[kind] += 1
        by_step[step] += 1
        both.setdefault(step, Counter())[kind] += 1
    n = sum(by_kind.values())

    def table(c: Counter[str]) -> dict[str, dict[str, float]]:
        return {k: {"count": v, "share": v / n} for k, v in sorted(
            c.items(), key=lambda kv: (-kv[1], kv[0]))}

    return {"assessed": n, "by_class": table(by_kind), "by_step": table(by_step),
            "by_step_and_class": {step: table(c) for step, c in sorted(both.items())}}


def _generated(pipeline: Pipeline, n: int, seed: int, as_of: date | None
               ) -> tuple[dict[str, Any], list[Assessment]]:
    """``n`` simulated internal-site patients written as FHIR bundles and assessed through the
    pipeline, as of the case set's day (or ``as_of``)."""
    cohort = simulate_cohort(n, "internal", seed)
    day = as_of or AS_OF
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    out: list[Assessment] = []
    contraindicated = 0
    for i in range(n):
        p = feature_vector(cohort.features[i], cohort.current_doses[i])
        bundle = collection_bundle(patient_resources(p, f"generated-{i}", day))
        try:
            a = pipeline.assess_fhir(bundle, day).assessment
        except (InputError, ValueError) as e:
            errors[type(e).__name__] += 1
            continue
        statuses[a.status] += 1
        first = a.first
        contraindicated += first is not None and max_severity(first.findings) is Severity.BLOCK
        out.append(a)
    return {"bundles": n, "seed": seed, "site": "internal", "as_of": day.isoformat(),
            "mapped": len(out), "errors": sum(errors.values()),
            "errors_by_type": dict(errors), "assessed": statuses.get("assessed", 0),
            "cannot_assess": statuses.get("cannot_assess", 0),
            "pathway": statuses.get("pathway", 0),
            "contraindicated_first": contraindicated}, out


def run_fhir_suite(folder: Path, scorer: Scorer, profile: GuidelineProfile,
                   as_of: date | None = None,
                   progress: Callable[[int], None] | None = None, generated: int = 0,
                   seed: int = 0) -> dict[str, Any]:
    """The suite over the bundles of ``folder``, and ``generated`` simulated patients written
    as FHIR bundles (seed ``seed``); see the module docstring."""
    files = bundle_files(folder)
    if not files:
        raise NoBundlesError(f"no FHIR bundles (*.json) in {folder}")
    # the decision pipeline the service runs (no SHAP: the suite reads no explanation)
    pipeline = Pipeline(scorer, Explainer.load(scorer.manifest), profile, explain_top=0)
    known = {s.name: 0 for s in PATIENT_FEATURES}
    errors: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    contraindicated_first = 0
    per_bundle: list[dict[str, Any]] = []
    assessments: list[Assessment] = []
    mapped = 0
    for i, f in enumerate(files):
        if progress is not None:
            progress(i)
        try:
            doc = json.loads(f.read_bytes())
            day = as_of or latest_encounter_or_bp(doc)
            result = pipeline.assess_fhir(doc, day)
        except (InputError, ValueError) as e:
            errors[type(e).__name__] += 1
            per_bundle.append({"file": f.name, "status": "error", "error": type(e).__name__})
            continue
        mapped += 1
        fv, report, a = result.features, result.report, result.assessment
        assert report is not None
        for s in PATIENT_FEATURES:
            v = fv.get(s.name)
            flag = s.kind is Kind.BINARY and s.missing is Missing.ABSENT_AS_ZERO
            known[s.name] += v is not None and (not flag or v == 1.0)
        for issue in report.issues:
            issues[issue.kind.value] += 1
        statuses[a.status] += 1
        reasons.update(a.reasons)
        assessments.append(a)
        first = a.first
        if first is not None and max_severity(first.findings) is Severity.BLOCK:
            contraindicated_first += 1
        per_bundle.append({"file": f.name, "as_of": fv.as_of.isoformat(), "status": a.status,
                           "reasons": list(a.reasons),
                           "first_option": first.option.id if first else None})
    n = max(mapped, 1)
    gen, gen_assessments = _generated(pipeline, generated, seed, as_of) if generated else (
        None, [])
    return {
        "suite": "fhir",
        "folder": str(folder),
        "as_of": as_of.isoformat() if as_of else "latest BP panel or Encounter per bundle",
        "bundles": len(files),
        "patients": len(files),
        "mapped": mapped,
        "errors": sum(errors.values()),
        "errors_by_type": dict(errors),
        "assessed": statuses.get("assessed", 0),
        "cannot_assess": statuses.get("cannot_assess", 0),
        "cannot_assess_reasons": dict(reasons.most_common()),
        "contraindicated_first": contraindicated_first + (gen or {}).get(
            "contraindicated_first", 0),
        "first_option_distribution": {
            "definition": "first options of the assessed patients by kind and classes "
                          "(by_class), by guideline step (by_step) and by both: counts and "
                          "shares of the assessed patients",
            "fixtures": first_option_distribution(assessments),
            "generated": first_option_distribution(gen_assessments) if gen else None,
            "all": first_option_distribution([*assessments, *gen_assessments]),
        },
        "generated": gen,
        "feature_coverage": {k: v / n for k, v in known.items()},
        "feature_coverage_note": "share of mapped bundles with a known value; for flags "
                                 "whose absence means no (conditions, drugs), a recorded yes",
        "issues_by_kind": dict(issues.most_common()),
        "bundles_detail": per_bundle,
    }
