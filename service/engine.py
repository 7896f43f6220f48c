"""The decision pipeline the routes call: FHIR data -> features -> assessment document.

Routes stay thin: parse, call :meth:`Engine.assess_fhir`, serialise. The engine holds the model
(scorer + explainer, loaded and verified once) and the guideline profiles; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings import features_from_fhir
from fhir_mappings.features import FeatureVector
from fhir_mappings.report import MappingReport
from models.assessment import Assessment, assess
from models.explainer import Explainer
from models.guideline.profiles import PROFILES, GuidelineProfile
from models.scorer import Scorer
from service.settings import Settings


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

    def assess_fhir(self, data: Mapping[str, Any], as_of: date | None = None) -> EngineResult:
        """Map a prefetch object or Bundle to features and assess; raises InputError."""
        fv, report = features_from_fhir(data, as_of=as_of)
        a = assess(fv, self.scorer, self.explainer, self.profile, explain_top=self.explain_top)
        return EngineResult(fv, report, a, a.to_document())

    def full_document(self, fv: FeatureVector) -> dict[str, Any]:
        """The assessment with every option explained (for the panel)."""
        return assess(fv, self.scorer, self.explainer, self.profile).to_document()
