"""Turn a simulated cohort into (patient, option) rows for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.model_rows import PATIENT_MODEL_COLUMNS, assemble
from models.options import dose_matrices, valid_options
from models.training.simulator import Cohort
from vocabulary.drug_classes import CLASS_ORDER, DrugClass


@dataclass(frozen=True, slots=True)
class OptionRows:
    """All catalogue options of every patient, grouped by patient (rows of one patient are
    contiguous, in catalogue order)."""

    patient_idx: npt.NDArray[np.intp]
    option_ids: npt.NDArray[np.str_]
    dose_before: npt.NDArray[np.float64]
    dose_after: npt.NDArray[np.float64]
    features: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.patient_idx)

    def group_starts(self) -> npt.NDArray[np.intp]:
        """Index of the first row of each patient's group."""
        change = np.flatnonzero(np.diff(self.patient_idx)) + 1
        return np.concatenate([[0], change]).astype(np.intp)

    def take(self, mask: npt.NDArray[np.bool_]) -> OptionRows:
        return OptionRows(self.patient_idx[mask], self.option_ids[mask], self.dose_before[mask],
                          self.dose_after[mask], self.features[mask])


def option_rows(cohort: Cohort) -> OptionRows:
    """Enumerate :func:`models.options.valid_options` for every patient, vectorised by regimen."""
    regimens, inverse = np.unique(cohort.current_doses, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    idx_parts: list[npt.NDArray[np.intp]] = []
    id_parts: list[npt.NDArray[np.str_]] = []
    after_parts: list[npt.NDArray[np.float64]] = []
    for u, regimen in enumerate(regimens):
        options = valid_options(
            {DrugClass(c): float(d) for c, d in zip(CLASS_ORDER, regimen, strict=True) if d > 0}
        )
        patients = np.flatnonzero(inverse == u)
        _, after = dose_matrices(options)
        idx_parts.append(np.repeat(patients, len(options)))
        id_parts.append(np.tile(np.array([o.id for o in options]), len(patients)))
        after_parts.append(np.tile(after, (len(patients), 1)))
    patient_idx = np.concatenate(idx_parts)
    order = np.argsort(patient_idx, kind="stable")
    patient_idx = patient_idx[order]
    after = np.concatenate(after_parts)[order]
    before = cohort.current_doses[patient_idx]
    patient_block = cohort.features[patient_idx][:, PATIENT_MODEL_COLUMNS]
    return OptionRows(patient_idx, np.concatenate(id_parts)[order], before, after,
                      assemble(patient_block, before, after))
