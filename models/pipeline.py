"""The decision pipeline: FHIR data -> features -> the typed assessment.

One object for every caller: the service's routes, the ``assess`` CLI, the FHIR suite of the
harness and ``bench/``. :class:`Pipeline` holds the model (scorer + explainer, loaded and
verified once) and the guideline profile; it does no I/O after loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fhir_mappings import validation
from fhir_mappings.features import FeatureVector, feature_vector_from_document
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.patient_record import Input
from fhir_mappings.report import MappingReport
from models.assessment import Assessment, assess
from models.explainer import Explainer
from models.guideline.profiles import PROFILES, GuidelineProfile
from models.manifest import DEFAULT_ARTIFACTS
from models.scorer import Scorer

#: A made-up patient (not from any record) assessed once at start-up.
WARM_UP_FEATURES: dict[str, Any] = {
    "features": {"age": 60, "sex_female": 0, "sbp_clinic": 152, "dbp_clinic": 90,
                 "egfr": 70, "potassium": 4.2, "sodium": 139},
    "current_regimen": {"ccb": 1.0}, "days_since_bp": 7}


@dataclass(frozen=True)
class PipelineResult:
    features: FeatureVector
    report: MappingReport | None
    assessment: Assessment


class Pipeline:
    """Model + guideline profile; :meth:`assess_fhir` is the whole decision pipeline."""

    def __init__(self, scorer: Scorer, explainer: Explainer, profile: GuidelineProfile,
                 explain_top: int | None = 3) -> None:
        self.scorer = scorer
        self.explainer = explainer
        self.profile = profile
        self.explain_top = explain_top

    @classmethod
    def load(cls, artifacts_dir: Path = DEFAULT_ARTIFACTS, *, provider: str = "auto",
             threads: int = 1, guideline: str = "nice", explain_top: int | None = 3
             ) -> Pipeline:
        """Load and verify the model artifacts (checksums, feature schema) or raise."""
        scorer = Scorer.load(artifacts_dir, provider=provider,  # type: ignore[arg-type]
                             threads=threads)
        return cls(scorer, Explainer.load(scorer.manifest), PROFILES[guideline], explain_top)

    def assess_fhir(self, data: Input, as_of: date | None = None,
                    profile: GuidelineProfile | None = None, *, patient_id: str | None = None,
                    unavailable: Mapping[str, str] | None = None) -> PipelineResult:
        """Map a prefetch object or Bundle to features and assess under ``profile`` (default:
        the configured guideline). ``patient_id``: the patient the call is about (the input's
        Patient must be this one); ``unavailable``: prefetch keys that could not be obtained,
        with the reason. Raises InputError (PatientMismatch for another patient's data)."""
        fv, report = features_from_fhir(data, as_of=as_of, patient_id=patient_id,
                                        unavailable=unavailable)
        a = assess(fv, self.scorer, self.explainer, profile or self.profile,
                   explain_top=self.explain_top)
        return PipelineResult(fv, report, a)

    def warm_up(self) -> None:
        """Build what is built lazily (FHIR validators, ONNX and SHAP paths, rule tables) so
        that the first call is as fast as the others; the service calls it before it is ready."""
        validation.warm_up()
        self.full_assessment(feature_vector_from_document(WARM_UP_FEATURES))

    def assess_features(self, fv: FeatureVector) -> PipelineResult:
        """Assess a features document's patient (no FHIR mapping, so no mapping report)."""
        a = assess(fv, self.scorer, self.explainer, self.profile, explain_top=self.explain_top)
        return PipelineResult(fv, None, a)

    def full_assessment(self, fv: FeatureVector) -> Assessment:
        """The assessment with every option explained (for the panel)."""
        return assess(fv, self.scorer, self.explainer, self.profile)
