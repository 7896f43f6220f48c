"""FHIR date/dateTime parsing (fhir_mappings.dates): the fast paths give what the general
rules give."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings.dates import When, parse_when, shift_dates

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def reference(text: str) -> When | None:
    """The general rules, without fast paths."""
    m = _DATE.match(text)
    try:
        if m:
            day = date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
            return When(datetime(day.year, day.month, day.day, tzinfo=UTC), day)
        if len(text) < 16 or text[10] != "T":
            return None
        dt = datetime.fromisoformat(text)
        day = dt.date()
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return When(dt.astimezone(UTC), day, dt.hour)
    except (ValueError, OverflowError):
        return None


CHARS = st.sampled_from([*"0123456789-T:+Z. W", "\n", "\u0661", "\uff11", "a"])


@st.composite
def date_like(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(["2026-11-16", "2024-02-29", "2023-02-29", "2026-10-31T09:30:00Z",
                                 "2026-10-31T09:30:00.123+05:30", "2026", "2026-05",
                                 "0000-01-01", "9999-12-31T23:59:59-14:00"]))
    chars = list(base)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(chars)))
        how = draw(st.sampled_from(["set", "insert", "delete"]))
        if how == "set" and i < len(chars):
            chars[i] = draw(CHARS)
        elif how == "insert":
            chars.insert(i, draw(CHARS))
        elif chars and i < len(chars):
            del chars[i]
    return "".join(chars)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(date_like(), st.text(max_size=12)))
def test_parse_when_agrees_with_the_general_rules(text: str) -> None:
    assert parse_when(text) == reference(text)


def test_parse_when_examples() -> None:
    w = parse_when("2026-11-16")
    assert w == When(datetime(2026, 11, 16, tzinfo=UTC), date(2026, 11, 16))
    assert w is not None
    assert w.hour is None
    w = parse_when("2026-10-31T23:30:00-02:00")
    assert w is not None
    assert w.day == date(2026, 10, 31)
    assert w.hour == 23
    assert w.instant == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    for bad in ("2026-13-01", "2026-02-30", "2026-W01-1", "20261116", "", "2026-1-01"):
        assert parse_when(bad) is None, bad


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, 3), st.sampled_from("abc"),
                                st.floats(0, 10, allow_nan=False)), max_size=6),
       reverse=st.booleans())
def test_in_time_order_is_the_full_key_order(items: list[tuple[int, str, float]],
                                             reverse: bool) -> None:
    """Sorting by the instant alone (when no two share one) keeps the full-key order."""
    from fhir_mappings.measurements import Measurement, in_time_order
    from fhir_mappings.raw_resource import RawResource

    ms = []
    for hour, rid, value in items:
        when = When(datetime(2026, 1, 1, hour, tzinfo=UTC), date(2026, 1, 1), hour)
        res = RawResource("Observation", rid, {}, f"$[{len(ms)}]")
        ms.append(Measurement(value, when, res, True))
    expected = sorted(ms, key=lambda m: m.sort_key, reverse=reverse)
    assert [id(m) for m in in_time_order(ms, reverse)] == [id(m) for m in expected]


def test_shift_dates_moves_full_dates_and_keeps_the_rest() -> None:
    """Dates, dateTimes and instants move (time and offset kept); partial dates, ids, codes
    and impossible dates stay as written; the input is not changed."""
    doc = {"birthDate": "1959-03-01", "effectiveDateTime": "2026-11-09T10:30:00+01:00",
           "issued": "2026-11-09T09:31:02.5Z", "recordedDate": "2026-11", "onset": "2019",
           "id": "bp-2026-11-09", "code": {"coding": [{"code": "85354-9"}]},
           "valueQuantity": {"value": 158}, "odd": "2026-02-30", "component": [
               {"valueDateTime": "2024-02-29"}]}

    out = shift_dates(doc, 365)

    assert out == {"birthDate": "1960-02-29", "effectiveDateTime": "2027-11-09T10:30:00+01:00",
                   "issued": "2027-11-09T09:31:02.5Z", "recordedDate": "2026-11",
                   "onset": "2019", "id": "bp-2026-11-09",
                   "code": {"coding": [{"code": "85354-9"}]}, "valueQuantity": {"value": 158},
                   "odd": "2026-02-30", "component": [{"valueDateTime": "2025-02-28"}]}
    assert doc["birthDate"] == "1959-03-01"
    assert shift_dates(out, -365)["effectiveDateTime"] == doc["effectiveDateTime"]
