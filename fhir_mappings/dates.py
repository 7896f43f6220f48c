"""FHIR R4 (4.0.1) ``date`` / ``dateTime`` / ``instant`` values and lookback windows.

FHIR allows partial dates (``2024``, ``2024-05``) and date-times with a UTC offset
(https://hl7.org/fhir/R4/datatypes.html#dateTime). A :class:`When` keeps both the calendar day
as written (used for windows and for what a clinician sees) and a UTC instant (used to order
readings taken on the same day). Partial dates count from their first day; a date-time without
an offset (not valid FHIR, but sent by some systems) is read as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_MIDNIGHT_UTC = time(tzinfo=UTC)


class When(NamedTuple):
    """A point in time: UTC instant (ordering), the day and local hour as written (windows).

    Immutable and ordered by (instant, day, hour); a tuple, because one is made for every
    dated element read."""

    instant: datetime
    day: date
    hour: int | None = None




def parse_when(text: str) -> When | None:
    """Parse a FHIR date, dateTime or instant; ``None`` if it is not one."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:  # the common full date, YYYY-MM-DD (anything else takes the general path)
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return When(datetime.combine(day, _MIDNIGHT_UTC), day, None)
    try:
        if len(text) >= 16 and text[10] == "T":  # a dateTime or instant (never a _DATE)
            dt = datetime.fromisoformat(text)
            day = dt.date()
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return When(dt.astimezone(UTC), day, dt.hour)
        m = _DATE.match(text)
        if m:
            day = date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
            return When(datetime.combine(day, _MIDNIGHT_UTC), day)
        return None
    except (ValueError, OverflowError):
        return None


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's last day)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(y, m + 1)[1]
    return date(y, m + 1, min(day.day, last))


def age_in_years(born: date, on: date) -> int:
    """Completed years from ``born`` to ``on``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


_FULL_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?=$|T)")


def shift_dates(value: Any, days: int) -> Any:
    """A copy of a FHIR JSON value with every full date, dateTime and instant string moved by
    ``days`` (the time of day and offset kept; partial dates such as ``2026`` or ``2026-11``
    kept as written). Date shifting keeps intervals, ages and order intact: it is how an
    example or a de-identified record is brought up to the present."""
    if isinstance(value, dict):
        return {k: shift_dates(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_dates(v, days) for v in value]
    if isinstance(value, str) and (m := _FULL_DATE_PREFIX.match(value)):
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return value
        return (day + timedelta(days=days)).isoformat() + value[10:]
    return value
