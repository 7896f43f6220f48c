"""MappingReport: what the FHIR mapping used, ignored and could not understand.

FHIR release: R4 (4.0.1). The report counts resources by type (used: contributed a fact or
was needed to decide one; ignored: everything else), lists codes nobody maps, and keeps each
data-quality issue (implausible value, unknown unit, unresolved reference, medication matched
by name text, prefetch error ...) with the resource it came from. It holds codes, units and
values but no names or identifiers of the patient; nothing here is logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class IssueKind(StrEnum):
    IMPLAUSIBLE_VALUE = "implausible_value"
    UNKNOWN_UNIT = "unknown_unit"
    NO_VALUE = "no_value"
    NO_DATE = "no_date"
    NAME_TEXT_MATCH = "name_text_match"
    UNRESOLVED_REFERENCE = "unresolved_reference"
    OTHER_PATIENT = "other_patient"
    PREFETCH_ERROR = "prefetch_error"
    INCOMPLETE_SEARCH = "incomplete_search"
    DUPLICATE = "duplicate"
    UNREAD_BP = "unread_bp"
    DUPLICATE_THERAPY = "duplicate_therapy"


@dataclass(frozen=True, slots=True, order=True)
class Issue:
    """One data-quality issue: its kind, the resource it concerns and what happened."""

    kind: IssueKind
    resource: str
    detail: str


@dataclass(frozen=True, slots=True)
class MappingReport:
    """Counts and issues of one mapping run (order-independent: everything is sorted)."""

    resources_used: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    resources_ignored: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    resources_validated: int = 0
    unknown_codes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    issues: tuple[Issue, ...] = ()

    def count(self, kind: IssueKind | str) -> int:
        """Number of issues of one kind."""
        wanted = IssueKind(kind)
        return sum(1 for i in self.issues if i.kind == wanted)

    @property
    def implausible_values(self) -> int:
        return self.count(IssueKind.IMPLAUSIBLE_VALUE)

    @property
    def name_text_matches(self) -> int:
        return self.count(IssueKind.NAME_TEXT_MATCH)


class ReportBuilder:
    """Mutable collector used while mapping; :meth:`freeze` gives the report."""

    def __init__(self) -> None:
        self.used: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.issues: set[Issue] = set()
        self.validated = 0

    def issue(self, kind: IssueKind, resource: str, detail: str) -> None:
        self.issues.add(Issue(kind, resource, detail))

    def unknown_code(self, resource_type: str, system: str, code: str) -> None:
        self.unknown[f"{resource_type} {system}|{code}"] += 1

    def freeze(self) -> MappingReport:
        return MappingReport(
            MappingProxyType(dict(sorted(self.used.items()))),
            MappingProxyType(dict(sorted(self.ignored.items()))),
            self.validated,
            MappingProxyType(dict(sorted(self.unknown.items()))),
            tuple(sorted(self.issues)),
        )
