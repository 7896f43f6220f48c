"""Unit conversions (Hypothesis: every conversion round-trips)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings.units import (
    Quantity,
    conversion,
    from_canonical,
    known_units,
    normalise_unit,
    to_canonical,
)

PAIRS = [(q, u) for q in Quantity for u in known_units(q)]


@given(pair=st.sampled_from(PAIRS),
       value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_every_conversion_round_trips(pair: tuple[Quantity, str], value: float) -> None:
    quantity, unit = pair
    canonical = to_canonical(quantity, value, unit)
    assert canonical is not None
    assert from_canonical(quantity, canonical, unit) == pytest.approx(value, rel=1e-9,
                                                                      abs=1e-9)


@given(value=st.floats(min_value=0.1, max_value=50, allow_nan=False))
def test_kpa_mmhg_round_trip(value: float) -> None:
    mmhg = to_canonical(Quantity.PRESSURE, value, "kPa")
    assert mmhg == pytest.approx(value * 7.50062)
    assert from_canonical(Quantity.PRESSURE, mmhg, "kPa") == pytest.approx(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("quantity", "value", "unit", "expected"), [
    (Quantity.PRESSURE, 20.0, "kPa", 150.0124),
    (Quantity.CREATININE, 1.0, "mg/dL", 88.42),
    (Quantity.ACR, 30.0, "mg/g", 30 / 8.84),
    (Quantity.ACR, 30.0, "mg/g{creat}", 30 / 8.84),
    (Quantity.HBA1C, 6.5, "%", 47.5),
    (Quantity.ELECTROLYTE, 4.2, "mEq/L", 4.2),
    (Quantity.EGFR, 71.0, "mL/min/{1.73_m2}", 71.0),
    (Quantity.EGFR, 71.0, "mL/min/1.73 m2", 71.0),
    (Quantity.CREATININE, 90.0, "µmol/L", 90.0),
    (Quantity.CREATININE, 90.0, "μmol/l", 90.0),
    (Quantity.HEART_RATE, 70.0, "{beats}/min", 70.0),
])
def test_known_conversions(quantity: Quantity, value: float, unit: str,
                           expected: float) -> None:
    assert to_canonical(quantity, value, unit) == pytest.approx(expected, rel=1e-3)


def test_unknown_and_missing_units() -> None:
    assert to_canonical(Quantity.PRESSURE, 1.0, "cmH2O") is None
    assert conversion(Quantity.PRESSURE, None) is not None      # mmHg is the only usual unit
    assert conversion(Quantity.CREATININE, None) is None        # mg/dL or umol/L: ambiguous
    assert conversion(Quantity.HBA1C, "") is None


def test_normalise_unit() -> None:
    assert normalise_unit(" mL/min/{1.73_m2} ") == "ml/min/1.73m2"
    assert normalise_unit("mm[Hg]") == "mm[hg]"
