"""structlog configuration: JSON lines in containers, console in a terminal, PHI redaction.

Every event passes the :class:`Redact` processor, which drops keys that can carry patient data
or secrets (an allow-list would be safer still; here the deny-list is checked by a test that
runs real requests and scans every event), and masks bearer tokens wherever they appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: Keys that never leave the process in a log event.
DENY_KEYS = frozenset({
    "access_token", "authorization", "fhirAuthorization", "token", "jwt", "prefetch",
    "patient", "patientId", "patient_id", "features", "name", "birthDate", "body", "context",
    "resource", "draftOrders", "detail", "summary",
})
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9\-_.~+/=]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


class Redact:
    """Drop denied keys and mask bearer tokens and JWT-shaped strings in values."""

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
        for key in [k for k in event if k in DENY_KEYS]:
            event[key] = "[redacted]"
        for key, value in event.items():
            if isinstance(value, str) and ("earer" in value or "eyJ" in value):
                event[key] = _JWT.sub("[jwt]", _BEARER.sub("Bearer [redacted]", value))
        return event


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (structlog.processors.JSONRenderer() if json_out
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            Redact(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
