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

from fhir_mappings.feature_table import PATIENT_FEATURES
from fhir_mappings.features import FeatureVector
from fhir_mappings.vocabulary import CLASS_ORDER
from models.training.dataset import OptionRows, option_rows
from models.training.simulator import Cohort, simulate_cohort, true_sbp_change

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


def feature_vector(features: npt.NDArray[np.float64], doses: npt.NDArray[np.float64],
                   days_since_bp: int = 30) -> FeatureVector:
    """A FeatureVector from one simulated patient's feature row and current doses."""
    values = {spec.name: (None if np.isnan(v) else float(v))
              for spec, v in zip(PATIENT_FEATURES, features, strict=True)}
    regimen = {c: float(d) for c, d in zip(CLASS_ORDER, doses, strict=True) if d > 0}
    return FeatureVector(AS_OF, values, regimen, False, days_since_bp)
