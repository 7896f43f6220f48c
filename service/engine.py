"""The decision pipeline the routes call: FHIR data -> features -> assessment document.

Routes stay thin: parse, call :meth:`Engine.assess_fhir`, serialise. The engine holds the model
(scorer + explainer, loaded and verified once) and the guideline profiles; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings import features_from_fhir, validation
from fhir_mappings.features import FeatureVector, feature_vector_from_document
from fhir_mappings.report import MappingReport
from models.assessment import Assessment, assess
from models.explainer import Explainer
from models.guideline.profiles import PROFILES, GuidelineProfile
from models.scorer import Scorer
from service.settings import Settings

#: A made-up patient (not from any record) assessed once at start-up.
WARM_UP_FEATURES: dict[str, Any] = {
    "features": {"age": 60, "sex_female": 0, "sbp_clinic": 152, "dbp_clinic": 90,
                 "egfr": 70, "potassium": 4.2, "sodium": 139},
    "current_regimen": {"ccb": 1.0}, "days_since_bp": 7}


@dataclass(frozen=True)
class EngineResult:
    features: FeatureVector
    report: MappingReport
    assessment: Assessment
    document: dict[str, Any]


class Engine:
    """Model + guideline profiles; :meth:`assess_fhir` is the whole decision pipeline."""

    def __init__(self, scorer: Scorer, explainer: Explainer, profile: GuidelineProfile,
                 explain_top: int | None = 3) -> None:
        self.scorer = scorer
        self.explainer = explainer
        self.profile = profile
        self.explain_top = explain_top

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        scorer = Scorer.load(settings.artifacts_dir, provider=settings.provider,  # type: ignore[arg-type]
                             threads=settings.onnx_threads)
        explainer = Explainer.load(scorer.manifest)
        return cls(scorer, explainer, PROFILES[settings.guideline], settings.explain_top)

    def assess_fhir(self, data: Mapping[str, Any], as_of: date | None = None,
                    profile: GuidelineProfile | None = None, *, patient_id: str | None = None,
                    unavailable: Mapping[str, str] | None = None) -> EngineResult:
        """Map a prefetch object or Bundle to features and assess under ``profile`` (default:
        the configured guideline). ``patient_id``: the patient the call is about (the input's
        Patient must be this one); ``unavailable``: prefetch keys that could not be obtained,
        with the reason. Raises InputError (PatientMismatch for another patient's data)."""
        fv, report = features_from_fhir(data, as_of=as_of, patient_id=patient_id,
                                        unavailable=unavailable)
        a = assess(fv, self.scorer, self.explainer, profile or self.profile,
                   explain_top=self.explain_top)
        return EngineResult(fv, report, a, a.to_document())

    def warm_up(self) -> None:
        """Build what is built lazily (FHIR validators, ONNX and SHAP paths, rule tables) so
        that the first call is as fast as the others; the service calls it before it is ready."""
        validation.warm_up()
        self.full_document(feature_vector_from_document(WARM_UP_FEATURES))

    def full_document(self, fv: FeatureVector) -> dict[str, Any]:
        """The assessment with every option explained (for the panel)."""
        return assess(fv, self.scorer, self.explainer, self.profile).to_document()
