"""Model input rows: a patient's features joined with each option's regimen change.

The single place where the model's input matrix is laid out, used by training (in bulk) and by
serving (one patient's options), in :data:`vocabulary.feature_table.MODEL_FEATURE_NAMES`
order: patient model features, then ``cur_<class>``, then ``chg_<class>``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vocabulary.feature_table import (
    CHG_SLICE,
    CUR_SLICE,
    MODEL_FEATURE_NAMES,
    N_PATIENT_MODEL,
    PATIENT_FEATURES,
    PATIENT_MODEL_FEATURE_NAMES,
)

#: Column indices of the patient model features within PATIENT_FEATURES order.
PATIENT_MODEL_COLUMNS: tuple[int, ...] = tuple(
    i for i, f in enumerate(PATIENT_FEATURES) if f.name in PATIENT_MODEL_FEATURE_NAMES
)


def assemble(patient: npt.ArrayLike, dose_before: npt.ArrayLike, dose_after: npt.ArrayLike
             ) -> npt.NDArray[np.float32]:
    """Rows [R, F] from patient model features [R, P] (or [P], broadcast) and doses [R, 7]."""
    before = np.asarray(dose_before, dtype=np.float64)
    after = np.asarray(dose_after, dtype=np.float64)
    if before.shape != after.shape or before.ndim != 2:
        raise ValueError(f"dose matrices must match and be 2-D, got {before.shape}/{after.shape}")
    p = np.asarray(patient, dtype=np.float64)
    if p.ndim == 1:
        p = np.broadcast_to(p, (before.shape[0], p.shape[0]))
    if p.shape != (before.shape[0], N_PATIENT_MODEL):
        raise ValueError(f"patient block must be [R, {N_PATIENT_MODEL}], got {p.shape}")
    x = np.empty((before.shape[0], len(MODEL_FEATURE_NAMES)), dtype=np.float32)
    x[:, :N_PATIENT_MODEL] = p
    x[:, CUR_SLICE] = before
    x[:, CHG_SLICE] = after - before
    return x
