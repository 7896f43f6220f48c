"""Blood-pressure targets.

NICE NG136 1.4.20-1.4.23 with the NG203 CKD amendment (research/clinical.md section 1.3):

| group                                          | clinic  | home / ambulatory |
|------------------------------------------------|---------|-------------------|
| age < 80, no CKD with ACR >= 70                | <140/90 | <135/85           |
| age >= 80, no CKD                              | <150/90 | <145/85           |
| age >= 80, CKD with ACR < 70                   | <140/90 | <135/85           |
| CKD with ACR >= 70 mg/mmol (any age)           | <130/80 | <125/75 [derived] |

Home and ambulatory targets are the clinic target minus 5 mmHg (NG136 1.4.18-1.4.19); NICE does
not state the out-of-office target for ACR >= 70, so it is derived the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from models.guideline.citations import Citation, nice

OUT_OF_OFFICE_OFFSET = 5.0  # NICE NG136 1.4.18-1.4.19
ACR_THRESHOLD = 70.0  # mg/mmol, NICE NG203 / NG136 2022 target table


class Setting(StrEnum):
    CLINIC = "clinic"
    HOME = "home"


@dataclass(frozen=True, slots=True)
class Target:
    """A BP target: reach systolic < ``systolic`` and diastolic < ``diastolic``."""

    systolic: float
    diastolic: float
    setting: Setting
    citation: Citation


def nice_target(age: float, ckd: bool, acr: float | None, setting: Setting = Setting.CLINIC
                ) -> Target:
    """NICE target for one patient. An unknown ACR in CKD is taken as < 70 (the target the
    guideline applies until albuminuria is measured); the rule layer reports the missing ACR."""
    if ckd and acr is not None and acr >= ACR_THRESHOLD:
        sys_, dia, cit = 130.0, 80.0, nice("1.4.20-1.4.23 target table (CKD, ACR >= 70 mg/mmol)")
    elif age >= 80 and not ckd:
        sys_, dia, cit = 150.0, 90.0, nice("1.4.21")
    else:
        sys_, dia, cit = 140.0, 90.0, nice("1.4.20" if age < 80 else "1.4.21 (CKD, ACR < 70)")
    if setting is Setting.HOME:
        sys_, dia = sys_ - OUT_OF_OFFICE_OFFSET, dia - OUT_OF_OFFICE_OFFSET
    return Target(sys_, dia, setting, cit)


def nice_clinic_systolic_target(age: npt.NDArray[np.float64], ckd: npt.NDArray[np.float64],
                                acr: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Vectorised clinic systolic target of :func:`nice_target` (NaN ACR = unknown)."""
    high_acr = (ckd > 0.5) & (np.nan_to_num(acr, nan=0.0) >= ACR_THRESHOLD)
    out = np.where(age >= 80, np.where(ckd > 0.5, 140.0, 150.0), 140.0)
    return np.where(high_acr, 130.0, out).astype(np.float64)
