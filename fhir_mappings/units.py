"""Unit normalisation for the quantities the mapping reads (pure functions).

FHIR R4 (4.0.1) Quantity carries a UCUM ``code`` (https://ucum.org) and a display ``unit``;
real systems send either, and spell them loosely ("mmHg", "mEq/L", "umol/l", "µmol/L"). A unit
is normalised (case-folded, spaces removed, micro signs read as "u", UCUM annotations such as
``{creat}`` dropped) and looked up per measured quantity. Each conversion is affine,
``canonical = (value + offset) * scale``, so it can be inverted exactly.

Factors: 1 kPa = 7.50062 mmHg; creatinine 1 mg/dL = 88.42 umol/L (molar mass 113.12 g/mol);
urine ACR 1 mg/mmol = 8.84 mg/g; HbA1c IFCC mmol/mol = (NGSP % - 2.15) x 10.929 (IFCC-NGSP
master equation); K+ and Na+ are monovalent, so mEq/L = mmol/L.

A quantity without a unit is read in the canonical unit only where no other unit is in common
use (mmHg, beats/min, mmol/L for K+ and Na+, eGFR, BMI, LVEF %); creatinine, ACR and HbA1c
without a unit are ambiguous and are not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Final


class Quantity(StrEnum):
    """Measured quantities, each with one canonical unit (the feature table's)."""

    PRESSURE = "mmHg"
    HEART_RATE = "beats/min"
    ELECTROLYTE = "mmol/L"
    CREATININE = "umol/L"
    EGFR = "mL/min/1.73m2"
    ACR = "mg/mmol"
    HBA1C = "mmol/mol"
    BMI = "kg/m2"
    PERCENT = "%"


@dataclass(frozen=True, slots=True)
class Conversion:
    """``canonical = (value + offset) * scale``."""

    scale: float = 1.0
    offset: float = 0.0

    def to_canonical(self, value: float) -> float:
        return (value + self.offset) * self.scale

    def from_canonical(self, value: float) -> float:
        return value / self.scale - self.offset


IDENTITY: Final = Conversion()
KPA_TO_MMHG: Final = 7.50062
CREATININE_MG_DL_TO_UMOL_L: Final = 88.42
ACR_MG_G_PER_MG_MMOL: Final = 8.84
HBA1C_NGSP_TO_IFCC: Final = Conversion(scale=10.929, offset=-2.15)

_UNITS: Final[dict[Quantity, dict[str, Conversion]]] = {
    Quantity.PRESSURE: {"mm[hg]": IDENTITY, "mmhg": IDENTITY,
                        "kpa": Conversion(KPA_TO_MMHG)},
    Quantity.HEART_RATE: {"/min": IDENTITY, "beats/min": IDENTITY, "beat/min": IDENTITY,
                          "bpm": IDENTITY, "1/min": IDENTITY, "min-1": IDENTITY},
    Quantity.ELECTROLYTE: {"mmol/l": IDENTITY, "meq/l": IDENTITY, "mequiv/l": IDENTITY},
    Quantity.CREATININE: {"umol/l": IDENTITY, "mmol/l": Conversion(1000.0),
                          "mg/dl": Conversion(CREATININE_MG_DL_TO_UMOL_L)},
    Quantity.EGFR: {"ml/min/1.73m2": IDENTITY, "ml/min/1.73.m2": IDENTITY,
                    "ml/min/1.73m^2": IDENTITY, "ml/min/1.73": IDENTITY,
                    "ml/min/1.73msq": IDENTITY, "ml/min/1.73sqm": IDENTITY},
    Quantity.ACR: {"mg/mmol": IDENTITY, "g/mol": IDENTITY,
                   "mg/g": Conversion(1.0 / ACR_MG_G_PER_MG_MMOL),
                   "ug/mg": Conversion(1.0 / ACR_MG_G_PER_MG_MMOL)},
    Quantity.HBA1C: {"mmol/mol": IDENTITY, "%": HBA1C_NGSP_TO_IFCC},
    Quantity.BMI: {"kg/m2": IDENTITY, "kg/m^2": IDENTITY},
    Quantity.PERCENT: {"%": IDENTITY},
}

#: Quantities read in the canonical unit when the unit is missing.
UNITLESS_OK: Final = frozenset({Quantity.PRESSURE, Quantity.HEART_RATE, Quantity.ELECTROLYTE,
                                Quantity.EGFR, Quantity.BMI, Quantity.PERCENT})

_ANNOTATION = re.compile(r"\{[^}]*\}")


def normalise_unit(unit: str) -> str:
    """Case-fold, drop spaces and UCUM annotations, read micro signs as ``u``."""
    u = unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()
    stripped = _ANNOTATION.sub("", u)
    # "mL/min/{1.73_m2}" -> "ml/min/" : keep the body-surface normalisation visible
    if "1.73" in u and "1.73" not in stripped:
        stripped = stripped.rstrip("/") + "/1.73m2"
    return stripped.replace("_", "").replace("1.73.m2", "1.73m2")


def conversion(quantity: Quantity, unit: str | None) -> Conversion | None:
    """The conversion of ``unit`` to ``quantity``'s canonical unit (None: unknown unit)."""
    if not unit:
        return IDENTITY if quantity in UNITLESS_OK else None
    return unit_conversion(quantity, unit)


@lru_cache(maxsize=1024)
def unit_conversion(quantity: Quantity, unit: str) -> Conversion | None:
    """Unit strings are vocabulary, not patient data: a bounded cache across requests."""
    return _UNITS[quantity].get(normalise_unit(unit))


def to_canonical(quantity: Quantity, value: float, unit: str | None) -> float | None:
    """``value`` in ``quantity``'s canonical unit, or None when the unit is not understood."""
    conv = conversion(quantity, unit)
    return None if conv is None else conv.to_canonical(value)


def from_canonical(quantity: Quantity, value: float, unit: str) -> float:
    """The inverse of :func:`to_canonical` (raises KeyError for an unknown unit)."""
    conv = conversion(quantity, unit)
    if conv is None:
        raise KeyError(unit)
    return conv.from_canonical(value)


def known_units(quantity: Quantity) -> tuple[str, ...]:
    return tuple(_UNITS[quantity])
