"""Reading numeric Observation values: unit conversion, plausibility, latest-in-window.

FHIR release: R4 (4.0.1), Observation.value[x] / component.value[x] as Quantity
(https://hl7.org/fhir/R4/datatypes.html#Quantity) or integer. Values are converted to the
feature table's unit (:mod:`fhir_mappings.units`) and checked against its plausible range
(:data:`vocabulary.feature_table.PATIENT_FEATURES`, ``low``/``high``). An implausible
value is reported (a provenance note and a counted issue) and not used: the previous
plausible value is used instead. A comparator (``>90``) keeps the bound and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from operator import attrgetter
from typing import NamedTuple, Protocol, TypeVar

from fhir_mappings.dates import When
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.raw_resource import JsonObject, RawResource
from fhir_mappings.report import IssueKind
from fhir_mappings.sourced_fact import Fact, unknown
from fhir_mappings.units import Quantity, conversion, unit_conversion


class Measurement(NamedTuple):
    """One numeric value in canonical units, when it was taken and where it came from
    (immutable; a tuple, because one is made for every value read)."""

    value: float
    when: When
    res: RawResource
    plausible: bool
    note: str = ""

    @property
    def sort_key(self) -> tuple[object, ...]:
        return (self.when.instant, self.res.ref, self.value)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"


def read_quantity(ctx: MappingContext, res: RawResource, obj: JsonObject, subpath: str,
                  quantity: Quantity, label: str, low: float, high: float,
                  when: When) -> Measurement | None:
    """The value at ``obj`` (an Observation or a component) or None (reported)."""
    vq = res.obj(obj, "valueQuantity", subpath)
    if vq is None:
        integer = obj.get("valueInteger")
        if isinstance(integer, int) and not isinstance(integer, bool):
            vq = {"value": integer}
        else:
            if "dataAbsentReason" not in obj:
                ctx.report.issue(IssueKind.NO_VALUE, res.ref, f"{label}: no numeric value")
            return None
    qpath = f"{subpath}.valueQuantity"
    value = res.number(vq, "value", qpath)
    if value is None:
        ctx.report.issue(IssueKind.NO_VALUE, res.ref, f"{label}: no numeric value")
        return None
    code = res.string(vq, "code", qpath)
    unit = res.string(vq, "unit", qpath)
    conv = unit_conversion(quantity, code) if code else None
    if conv is None:
        conv = conversion(quantity, unit) if unit or not code else None
    if conv is None:
        ctx.report.issue(IssueKind.UNKNOWN_UNIT, res.ref,
                         f"{label}: unit {code or unit or '(none)'!r} is not understood")
        return None
    canonical = conv.to_canonical(value)
    converted = conv.scale != 1.0 or conv.offset != 0.0
    note = f"converted from {_fmt(value)} {unit or code or ''}" if converted else ""
    comparator = res.string(vq, "comparator", qpath)
    if comparator:
        reported = f"reported as {comparator}{_fmt(value)} {unit or code or ''}".rstrip()
        note = f"{note}; {reported}" if note else reported
    plausible = low <= canonical <= high
    if not plausible:
        ctx.report.issue(
            IssueKind.IMPLAUSIBLE_VALUE, res.ref,
            f"{label} {_fmt(canonical)} {quantity.value} is outside the plausible range "
            f"{_fmt(low)}-{_fmt(high)}: not used")
    return Measurement(canonical, when, res, plausible, note)


def latest(ctx: MappingContext, items: Iterable[Measurement], label: str, start: date | None,
           window: str, unit: str) -> tuple[Fact, Measurement | None]:
    """The latest plausible measurement in [start, as_of] as a Fact (and the measurement).

    Implausible later values are named in the note; the chosen resource is marked used.
    """
    as_of = ctx.as_of
    in_window = in_time_order([m for m in items
                               if (start is None or m.when.day >= start)
                               and m.when.day <= as_of], reverse=True)
    skipped: list[Measurement] = []
    for m in in_window:
        if not m.plausible:
            skipped.append(m)
            continue
        ctx.use(m.res)
        note = m.note
        if skipped:
            note = f"{note}; {_skipped_note(skipped, unit)}" if note else _skipped_note(
                skipped, unit)
        return Fact(m.value, m.res.ref, m.when.day, note or None), m
    note = f"no {label} result in the {window}"
    if skipped:
        note += f" ({_skipped_note(skipped, unit)})"
    return unknown(note), None


_SORT_KEY = attrgetter("sort_key")
_INSTANT = attrgetter("when.instant")


class _Timed(Protocol):
    @property
    def when(self) -> When: ...

    @property
    def sort_key(self) -> tuple[object, ...]: ...


T = TypeVar("T", bound=_Timed)


def in_time_order(items: Iterable[T], reverse: bool = False) -> list[T]:
    """``sorted(items, key=sort_key, reverse=reverse)``; by the instant alone when no two
    items share one (the same order, without building every full key)."""
    out = list(items)
    if len(out) > 1:
        distinct = len(set(map(_INSTANT, out))) == len(out)
        out.sort(key=_INSTANT if distinct else _SORT_KEY, reverse=reverse)
    return out


def _skipped_note(skipped: list[Measurement], unit: str) -> str:
    items = ", ".join(f"{_fmt(m.value)} {unit} on {m.when.day} ({m.res.ref})" for m in skipped)
    return f"implausible value not used: {items}"
