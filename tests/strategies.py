"""Hypothesis strategies for patients and regimens."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from fhir_mappings.features import FeatureVector
from vocabulary.drug_classes import CLASS_ORDER, RAS_BLOCKERS, DrugClass
from vocabulary.feature_table import PATIENT_FEATURES, Kind, Missing

#: Realistic ranges for generated values (inside the table's plausibility bounds).
RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 100), "bmi": (16, 55), "sbp_clinic": (100, 220), "dbp_clinic": (50, 130),
    "sbp_home": (95, 215), "dbp_home": (50, 125), "egfr": (5, 130), "potassium": (2.8, 6.8),
    "sodium": (122, 150), "urine_acr": (0, 400), "hba1c": (25, 120), "heart_rate": (35, 130),
    "potassium_previous": (2.8, 6.8),
}


def _value(spec_name: str, kind: Kind, missing: Missing) -> st.SearchStrategy[float | None]:
    if kind is Kind.BINARY:
        base: st.SearchStrategy[float | None] = st.sampled_from((0.0, 1.0))
    else:
        lo, hi = RANGES[spec_name]
        base = st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 1))
    if missing is Missing.UNKNOWN_AS_NAN:
        return st.one_of(st.none(), base)
    return base


patient_values = st.fixed_dictionaries(
    {f.name: _value(f.name, f.kind, f.missing) for f in PATIENT_FEATURES}
)


@st.composite
def regimens(draw: st.DrawFn) -> dict[DrugClass, float]:
    classes = draw(st.lists(st.sampled_from(CLASS_ORDER), max_size=4, unique=True))
    if set(classes) >= RAS_BLOCKERS:
        classes.remove(DrugClass.ARB)
    return {c: draw(st.sampled_from((0.5, 1.0, 2.0))) for c in classes}


@st.composite
def patients(draw: st.DrawFn) -> FeatureVector:
    values = draw(patient_values)
    if values["sex_female"] == 0.0 or (values["age"] or 0) > 55:
        values["pregnancy"] = 0.0
    return FeatureVector(date(2026, 11, 24), values, draw(regimens()), False,
                         draw(st.integers(0, 300)))
