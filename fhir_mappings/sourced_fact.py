"""Fact: one value of the patient record with where it came from.

FHIR release: R4 (4.0.1). ``source`` is a literal reference to the resource the value came
from (``Observation/123``); ``date`` is its clinically relevant date (effective, onset,
authored); ``note`` says how the value was derived, or why it is unknown.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple


class Fact(NamedTuple):
    """A value (``None``: unknown) and its provenance (immutable; a tuple, because a
    mapping run makes dozens)."""

    value: float | None
    source: str | None = None
    date: date | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not None




def unknown(note: str) -> Fact:
    return Fact(None, None, None, note)


def present(source: str, when: date | None, note: str | None = None) -> Fact:
    """A binary fact that is recorded (1.0)."""
    return Fact(1.0, source, when, note)
