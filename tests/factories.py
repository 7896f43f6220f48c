"""Test factories: feature vectors for patients described by their differences from a baseline."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappings.features import FeatureVector
from vocabulary.drug_classes import DrugClass
from vocabulary.feature_table import PATIENT_FEATURES, Kind

BASELINE: dict[str, float | None] = {
    "age": 60.0, "sex_female": 0.0, "ethnicity_black": 0.0, "ethnicity_south_asian": 0.0,
    "bmi": 28.0, "sbp_clinic": 158.0, "dbp_clinic": 92.0, "sbp_home": 151.0, "dbp_home": 89.0,
    "egfr": 80.0, "potassium": 4.2, "sodium": 140.0, "urine_acr": 1.5, "hba1c": 38.0,
    "heart_rate": 72.0,
}


def patient(regimen: dict[DrugClass, float] | None = None, days_since_bp: int | None = 20,
            deceased: bool = False, **overrides: Any) -> FeatureVector:
    """A 60-year-old man with stage 2 hypertension, normal labs and no comorbidity, changed by
    ``overrides`` (feature name -> value, None for unknown)."""
    values: dict[str, float | None] = {}
    for spec in PATIENT_FEATURES:
        values[spec.name] = BASELINE.get(spec.name, 0.0 if spec.kind is Kind.BINARY else None)
    for k, v in overrides.items():
        if k not in values:
            raise KeyError(k)
        values[k] = None if v is None else float(v)
    return FeatureVector(date(2026, 11, 24), values, regimen or {}, deceased, days_since_bp)
