"""Simulated case sets: patients of a site as FeatureVectors, with counterfactual truth.

The simulator knows the true expected 12-week change of every option for every patient, which
no real data set can give; the decision metrics (regret against the best option and against the
guideline default) rest on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from fhir_mappings.features import FeatureVector
from models.guideline.targets import nice_clinic_systolic_target
from models.training.dataset import OptionRows, option_rows
from models.training.simulator import (
    Cohort,
    simulate_cohort,
    simulate_outcomes,
    true_sbp_change,
)
from vocabulary.drug_classes import CLASS_ORDER
from vocabulary.feature_table import PATIENT_FEATURES

AS_OF = date(2026, 11, 24)


@dataclass(frozen=True, slots=True)
class CaseSet:
    """Patients of one simulated site, their option rows and the true change of every row."""

    site: str
    cohort: Cohort
    rows: OptionRows
    true_change: npt.NDArray[np.float64]

    @property
    def n_patients(self) -> int:
        return len(self.cohort)


def simulated_case_set(site: str, n: int, seed: int) -> CaseSet:
    cohort = simulate_cohort(n, site, seed)
    rows = option_rows(cohort)
    return CaseSet(site, cohort, rows, true_sbp_change(cohort, rows.patient_idx, rows.dose_after))


@dataclass(frozen=True, slots=True)
class ObservedOutcomes:
    """One simulated 12-week follow-up of every option row (as if each were taken)."""

    observed_change: npt.NDArray[np.float64]
    target: npt.NDArray[np.float64]
    reached: npt.NDArray[np.bool_]


def simulated_outcomes(cases: CaseSet, seed: int) -> ObservedOutcomes:
    """Observed change (true change + measurement noise) and target attainment (a recorded
    12-week clinic systolic below the patient's NICE clinic target) of every row."""
    out = simulate_outcomes(cases.cohort, cases.rows.patient_idx, cases.rows.dose_after, seed)
    target = nice_clinic_systolic_target(cases.cohort.feature("age"),
                                         cases.cohort.feature("ckd"),
                                         cases.cohort.feature("urine_acr"))[cases.rows.patient_idx]
    return ObservedOutcomes(out.observed_change, target, out.followup_sbp_observed < target)


def subgroups(cases: CaseSet) -> dict[str, dict[str, npt.NDArray[np.bool_]]]:
    """Row masks by age band, sex, family origin (as recorded), CKD and type 2 diabetes."""
    idx = cases.rows.patient_idx
    c = cases.cohort

    def col(name: str) -> npt.NDArray[np.float64]:
        v: npt.NDArray[np.float64] = c.feature(name)[idx]
        return v

    age, female = col("age"), col("sex_female")
    black, sa = col("ethnicity_black"), col("ethnicity_south_asian")
    unknown = np.isnan(black) | np.isnan(sa)
    return {
        "age_band": {"18-59": age < 60, "60-79": (age >= 60) & (age < 80), "80+": age >= 80},
        "sex": {"female": female == 1.0, "male": female == 0.0, "unknown": np.isnan(female)},
        "ethnicity": {"black": black == 1.0, "south_asian": sa == 1.0,
                      "other": (black == 0.0) & (sa == 0.0), "unknown": unknown},
        "ckd": {"yes": col("ckd") == 1.0, "no": col("ckd") != 1.0},
        "diabetes": {"yes": col("diabetes_t2") == 1.0, "no": col("diabetes_t2") != 1.0},
    }


def feature_vector(features: npt.NDArray[np.float64], doses: npt.NDArray[np.float64],
                   days_since_bp: int = 30) -> FeatureVector:
    """A FeatureVector from one simulated patient's feature row and current doses."""
    values = {name: (None if v != v else v)  # NaN (v != v) is unknown
              for name, v in zip(_NAMES, features.tolist(), strict=True)}
    regimen = {c: d for c, d in zip(CLASS_ORDER, doses.tolist(), strict=True) if d > 0}
    return FeatureVector(AS_OF, values, regimen, False, days_since_bp)


_NAMES = tuple(spec.name for spec in PATIENT_FEATURES)
