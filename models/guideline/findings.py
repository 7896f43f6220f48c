"""Rule findings: what a guideline rule says about a patient or one option."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from models.guideline.citations import Citation


class Severity(IntEnum):
    """Ordered: a larger value is more severe."""

    INFO = 0
    WARN = 1
    """Caution: may be used with the monitoring the finding names."""
    BLOCK = 2
    """Contraindicated: never ranked, never suggested."""

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict, with its citation and, for cautions, the monitoring it needs."""

    severity: Severity
    code: str
    message: str
    citation: Citation
    monitoring: str | None = None


def max_severity(findings: tuple[Finding, ...] | list[Finding]) -> Severity | None:
    if not findings:
        return None
    return max(f.severity for f in findings)
