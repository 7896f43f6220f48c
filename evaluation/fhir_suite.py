"""The FHIR suite: map every Bundle of a folder (by default the Synthea fixtures vendored in
the repository, ``tests/fixtures/synthea-r4``, with their licence note) and assess it,
reporting feature coverage, mapping errors and data-quality issues by type, and the reasons
for "cannot assess". A folder without bundles is refused (:class:`NoBundlesError`): a suite
without inputs proves nothing.

Each bundle is assessed as of ``as_of`` when given, else as of the latest date of a blood
pressure panel (LOINC 85354-9) or an Encounter in the bundle, so that old synthetic records
are judged at the time they describe rather than years later.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from fhir_mappings.errors import InputError
from models.explainer import Explainer
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.pipeline import Pipeline
from models.scorer import Scorer
from vocabulary.feature_table import PATIENT_FEATURES, Kind, Missing

DEFAULT_FHIR_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "synthea-r4"
BP_PANEL = "85354-9"


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


def run_fhir_suite(folder: Path, scorer: Scorer, profile: GuidelineProfile,
                   as_of: date | None = None,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
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
        first = a.first
        if first is not None and max_severity(first.findings) is Severity.BLOCK:
            contraindicated_first += 1
        per_bundle.append({"file": f.name, "as_of": fv.as_of.isoformat(), "status": a.status,
                           "reasons": list(a.reasons),
                           "first_option": first.option.id if first else None})
    n = max(mapped, 1)
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
        "contraindicated_first": contraindicated_first,
        "feature_coverage": {k: v / n for k, v in known.items()},
        "feature_coverage_note": "share of mapped bundles with a known value; for flags "
                                 "whose absence means no (conditions, drugs), a recorded yes",
        "issues_by_kind": dict(issues.most_common()),
        "bundles_detail": per_bundle,
    }
