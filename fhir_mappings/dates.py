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
from dataclasses import dataclass
from datetime import UTC, date, datetime

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


@dataclass(frozen=True, slots=True, order=True)
class When:
    """A point in time: UTC instant (ordering), the day and local hour as written (windows)."""

    instant: datetime
    day: date
    hour: int | None = None


def parse_when(text: str) -> When | None:
    """Parse a FHIR date, dateTime or instant; ``None`` if it is not one."""
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


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's last day)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(y, m + 1)[1]
    return date(y, m + 1, min(day.day, last))


def age_in_years(born: date, on: date) -> int:
    """Completed years from ``born`` to ``on``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
