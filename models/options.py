"""Treatment-option catalogue: the next regimens that can be offered for a current regimen.

A treatment option is the regimen after the next step (DESIGN.md section 3):

* ``start``: a treatment-naive patient starts one class at standard dose;
* ``combination``: a treatment-naive patient starts a two-drug single-pill combination at low
  (half standard) dose of each, RAS blocker + CCB or RAS blocker + thiazide-like diuretic
  (ESC 2024 class I; Salam et al. J Hypertens 2019 on low-dose dual therapy);
* ``add``: a class not yet taken is added at standard dose;
* ``switch``: one current class is stopped and another started at standard dose;
* ``titrate``: the dose of one current class is doubled (up to twice standard).

An ACE inhibitor and an ARB are never combined (NICE NG136 1.4.34), so no option whose
regimen contains both is ever produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from vocabulary.drug_classes import (
    CLASS_INFO,
    CLASS_ORDER,
    MAX_DOSE,
    RAS_BLOCKERS,
    DrugClass,
)


class Action(StrEnum):
    """Kind of step an option takes."""

    START = "start"
    COMBINATION = "combination"
    ADD = "add"
    SWITCH = "switch"
    TITRATE = "titrate"


#: Two-drug single-pill combinations offered to treatment-naive patients (ESC 2024).
SINGLE_PILL_COMBINATIONS: tuple[tuple[DrugClass, DrugClass], ...] = (
    (DrugClass.ACE_INHIBITOR, DrugClass.CCB),
    (DrugClass.ARB, DrugClass.CCB),
    (DrugClass.ACE_INHIBITOR, DrugClass.THIAZIDE_LIKE),
    (DrugClass.ARB, DrugClass.THIAZIDE_LIKE),
)
COMBINATION_DOSE = 0.5

Regimen = Mapping[DrugClass, float]


@dataclass(frozen=True, slots=True)
class TreatmentOption:
    """One candidate next regimen.

    ``dose_before`` and ``dose_after`` are dose multiples per class in
    :data:`~vocabulary.drug_classes.CLASS_ORDER`. Everything derived from them (the classes
    started, stopped, increased and taken after the option) is computed once, when the option
    is made: the guideline rules read these for every patient.
    """

    id: str
    action: Action
    label: str
    classes: tuple[DrugClass, ...]
    """The classes this option starts, stops or titrates (in the order the label names them)."""
    dose_before: tuple[float, ...]
    dose_after: tuple[float, ...]
    classes_after: tuple[DrugClass, ...] = field(init=False, repr=False, compare=False)
    """Classes taken after the option (canonical order)."""
    started: tuple[DrugClass, ...] = field(init=False, repr=False, compare=False)
    """Classes the patient is not taking now and would take after this option."""
    stopped: tuple[DrugClass, ...] = field(init=False, repr=False, compare=False)
    """Classes the patient takes now and would not take after this option."""
    dose_change: tuple[float, ...] = field(init=False, repr=False, compare=False)
    after_set: frozenset[DrugClass] = field(init=False, repr=False, compare=False)
    """:attr:`classes_after` as a set."""
    started_set: frozenset[DrugClass] = field(init=False, repr=False, compare=False)
    """:attr:`started` as a set."""
    increased_set: frozenset[DrugClass] = field(init=False, repr=False, compare=False)
    """Classes whose dose the option raises (started or titrated)."""
    stopped_set: frozenset[DrugClass] = field(init=False, repr=False, compare=False)
    """:attr:`stopped` as a set."""

    def __post_init__(self) -> None:
        pairs = tuple(zip(CLASS_ORDER, self.dose_before, self.dose_after, strict=True))
        after = tuple(c for c, _, a in pairs if a > 0)
        started = tuple(c for c, b, a in pairs if b == 0 and a > 0)
        stopped = tuple(c for c, b, a in pairs if b > 0 and a == 0)
        derived: dict[str, object] = {
            "classes_after": after, "started": started, "stopped": stopped,
            "dose_change": tuple(a - b for _, b, a in pairs),
            "after_set": frozenset(after), "started_set": frozenset(started),
            "increased_set": frozenset(c for c, b, a in pairs if a > b),
            "stopped_set": frozenset(stopped),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


def regimen_vector(regimen: Regimen) -> tuple[float, ...]:
    """Dose multiples in canonical class order; rejects unknown classes and bad doses."""
    for c, d in regimen.items():
        if not isinstance(c, DrugClass):
            raise ValueError(f"unknown drug class {c!r}")
        if not (0.0 <= d <= MAX_DOSE) or np.isnan(d):
            raise ValueError(f"dose multiple for {c} must be within 0-{MAX_DOSE}, got {d!r}")
    return tuple(float(regimen.get(c, 0.0)) for c in CLASS_ORDER)


def _name(c: DrugClass) -> str:
    info = CLASS_INFO[c]
    return info.drug if info.drug == info.short else f"{info.drug} ({info.short})"


def _has_both_ras(dose: tuple[float, ...]) -> bool:
    return all(dose[CLASS_ORDER.index(c)] > 0 for c in RAS_BLOCKERS)


def valid_options(regimen: Regimen) -> tuple[TreatmentOption, ...]:
    """All options the catalogue offers for ``regimen``, in a stable order.

    Options whose regimen would combine an ACE inhibitor with an ARB are never produced. The
    catalogue of a regimen is built once and shared (options are immutable).
    """
    return _catalogue(regimen_vector(regimen))


@lru_cache(maxsize=1024)
def _catalogue(before: tuple[float, ...]) -> tuple[TreatmentOption, ...]:
    current = [c for c, d in zip(CLASS_ORDER, before, strict=True) if d > 0]
    out: list[TreatmentOption] = []

    def emit(oid: str, action: Action, label: str, classes: tuple[DrugClass, ...],
             after: list[float]) -> None:
        after_t = tuple(after)
        if not _has_both_ras(after_t):
            out.append(TreatmentOption(oid, action, label, classes, before, after_t))

    if not current:
        for c in CLASS_ORDER:
            after = [0.0] * len(CLASS_ORDER)
            after[CLASS_ORDER.index(c)] = 1.0
            emit(f"opt-start-{c}", Action.START, f"Start {_name(c)}", (c,), after)
        for a, b in SINGLE_PILL_COMBINATIONS:
            after = [0.0] * len(CLASS_ORDER)
            after[CLASS_ORDER.index(a)] = COMBINATION_DOSE
            after[CLASS_ORDER.index(b)] = COMBINATION_DOSE
            label = (f"Start low-dose single-pill combination of {CLASS_INFO[a].drug} "
                     f"and {CLASS_INFO[b].drug} ({CLASS_INFO[a].short} + {CLASS_INFO[b].short})")
            emit(f"opt-combination-{a}+{b}", Action.COMBINATION, label, (a, b), after)
        return tuple(out)

    absent = [c for c in CLASS_ORDER if c not in current]
    for c in absent:
        after = list(before)
        after[CLASS_ORDER.index(c)] = 1.0
        emit(f"opt-add-{c}", Action.ADD, f"Add {_name(c)}", (c,), after)
    for old in current:
        for new in absent:
            after = list(before)
            after[CLASS_ORDER.index(old)] = 0.0
            after[CLASS_ORDER.index(new)] = 1.0
            emit(f"opt-switch-{old}-to-{new}", Action.SWITCH,
                 f"Switch {_name(old)} to {_name(new)}",
                 (old, new), after)
    for c in current:
        i = CLASS_ORDER.index(c)
        if before[i] < MAX_DOSE:
            after = list(before)
            after[i] = min(MAX_DOSE, before[i] * 2.0)
            emit(f"opt-titrate-{c}", Action.TITRATE,
                 f"Increase {_name(c)} to {after[i]:g}x standard dose", (c,), after)
    return tuple(out)


def dose_matrices(
    options: tuple[TreatmentOption, ...],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(dose_before, dose_after) as [len(options), n_classes] arrays."""
    k = len(CLASS_ORDER)
    before = np.array([o.dose_before for o in options], dtype=np.float64).reshape(-1, k)
    after = np.array([o.dose_after for o in options], dtype=np.float64).reshape(-1, k)
    return before, after
