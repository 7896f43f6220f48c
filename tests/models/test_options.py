"""The treatment-option catalogue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.options import Action, dose_matrices, valid_options
from vocabulary.drug_classes import CLASS_ORDER, MAX_DOSE, RAS_BLOCKERS, DrugClass

regimens = st.dictionaries(
    st.sampled_from(CLASS_ORDER), st.sampled_from((0.5, 1.0, 2.0)), max_size=4
)


def test_treatment_naive_patients_get_every_start_and_the_four_combinations() -> None:
    """A naive patient can start any of the 7 classes or one of 4 low-dose SPCs."""
    options = valid_options({})

    assert [o.action for o in options].count(Action.START) == 7
    assert [o.action for o in options].count(Action.COMBINATION) == 4
    combos = [o for o in options if o.action is Action.COMBINATION]
    assert all(sum(d > 0 for d in o.dose_after) == 2 for o in combos)
    assert all(max(o.dose_after) == 0.5 for o in combos)


def test_on_an_ace_inhibitor_adding_an_arb_is_never_offered() -> None:
    """NICE NG136 1.4.34: never ACEi + ARB; switching ACEi to ARB is allowed."""
    ids = {o.id for o in valid_options({DrugClass.ACE_INHIBITOR: 1.0})}

    assert "opt-add-arb" not in ids
    assert "opt-switch-ace_inhibitor-to-arb" in ids
    assert "opt-titrate-ace_inhibitor" in ids
    assert "opt-add-ccb" in ids


@given(regimens)
def test_no_option_ever_combines_an_ace_inhibitor_and_an_arb(regimen: dict[DrugClass, float]
                                                              ) -> None:
    """Whatever the current regimen, no produced option holds both RAS blockers."""
    for o in valid_options(regimen):
        assert not set(o.classes_after) >= RAS_BLOCKERS


@given(regimens)
def test_options_are_unique_bounded_and_change_something(regimen: dict[DrugClass, float]
                                                         ) -> None:
    """Ids are unique, doses stay within 0..2x standard and every option changes the regimen."""
    options = valid_options(regimen)
    before, after = dose_matrices(options)

    assert len({o.id for o in options}) == len(options)
    assert (after >= 0).all()
    assert (after <= MAX_DOSE).all()
    assert all(o.dose_before != o.dose_after for o in options)
    if options:
        assert (before == before[0]).all()


def test_titration_stops_at_twice_the_standard_dose() -> None:
    """A class already at double dose cannot be titrated further."""
    ids = {o.id for o in valid_options({DrugClass.CCB: 2.0})}

    assert "opt-titrate-ccb" not in ids


def test_bad_doses_are_rejected_with_the_reason() -> None:
    """Negative or above-maximum doses raise ValueError naming the class."""
    with pytest.raises(ValueError, match="ccb"):
        valid_options({DrugClass.CCB: 3.0})
