"""Which parts of a patient's record the input holds, and which could not be obtained.

"Unknown is never none": an empty medication list means "no medication" only when the list
was actually obtained. Each part of the record the assessment reads is a :class:`Domain`:

* a CDS Hooks prefetch object carries it under one or more keys (the service's discovery keys,
  :data:`PREFETCH_KEY_DOMAINS`); a key that is present (``null`` or an empty searchset
  included) means "obtained"; a key that is absent, or holds an OperationOutcome (the client
  could not prefetch it), or a searchset with pages not sent, means "could not be obtained";
* a Bundle is taken as the patient's record as it stands, unless it says itself that it is
  not: an error OperationOutcome inside it, a batch-response entry that failed, or a
  searchset with pages that were not sent. Then the part it concerns (found from the search's
  ``self`` link or the resources in it) is unavailable, and all of them when that cannot be
  told.

The mapping reports the unavailable domains with the reason; the assessment declines to rank
when the medications, conditions or allergies are unavailable, and names unavailable labs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final


class Domain(StrEnum):
    """A part of the record the assessment reads."""

    MEDICATIONS = "medications"
    CONDITIONS = "conditions"
    ALLERGIES = "allergies"
    LABS = "labs"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: Final[dict[Domain, str]] = {
    Domain.MEDICATIONS: "the current medication list",
    Domain.CONDITIONS: "the problem list (conditions)",
    Domain.ALLERGIES: "the allergy and intolerance list",
    Domain.LABS: "laboratory results",
}

#: Without these the assessment cannot rank options (what is taken, what is contraindicated).
REQUIRED_DOMAINS: Final = (Domain.MEDICATIONS, Domain.CONDITIONS, Domain.ALLERGIES)

#: The service's prefetch keys (service.discovery) and the part of the record each carries.
PREFETCH_KEY_DOMAINS: Final[dict[str, Domain]] = {
    "medications": Domain.MEDICATIONS,
    "statements": Domain.MEDICATIONS,
    "conditions": Domain.CONDITIONS,
    "allergies": Domain.ALLERGIES,
    "labs": Domain.LABS,
}


def unavailable_domains(keys: Mapping[str, str]) -> dict[str, str]:
    """Prefetch keys that could not be had (key -> why) -> the part of the record each one
    is (:class:`Domain` value -> "key: why"; the first key of a part names it)."""
    out: dict[str, str] = {}
    for key, why in keys.items():
        domain = PREFETCH_KEY_DOMAINS.get(key)
        if domain is not None:
            out.setdefault(domain.value, f"{key}: {why}")
    return out

#: Resource type (or search type) -> the part of the record it belongs to.
TYPE_DOMAINS: Final[dict[str, Domain]] = {
    "MedicationRequest": Domain.MEDICATIONS,
    "MedicationStatement": Domain.MEDICATIONS,
    "Medication": Domain.MEDICATIONS,
    "Condition": Domain.CONDITIONS,
    "AllergyIntolerance": Domain.ALLERGIES,
    "Observation": Domain.LABS,
}


def search_domain(bundle: Mapping[str, Any]) -> Domain | None:
    """The part of the record a searchset Bundle holds: from its ``self`` link
    (``.../MedicationRequest?patient=...``), else from the resources in it when they agree."""
    links = bundle.get("link")
    if isinstance(links, list):
        for link in links:
            if isinstance(link, Mapping) and link.get("relation") == "self":
                url = link.get("url")
                if isinstance(url, str):
                    path = url.split("?", 1)[0].rstrip("/")
                    found = TYPE_DOMAINS.get(path.rsplit("/", 1)[-1])
                    if found is not None:
                        return found
    entries = bundle.get("entry")
    found_domains: set[Domain] = set()
    if isinstance(entries, list):
        for entry in entries:
            res = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(res, Mapping):
                domain = TYPE_DOMAINS.get(str(res.get("resourceType")))
                if domain is not None:
                    found_domains.add(domain)
    return found_domains.pop() if len(found_domains) == 1 else None


def error_outcome(outcome: Mapping[str, Any]) -> str | None:
    """The first error/fatal issue of an OperationOutcome as text, or None when it only
    warns or informs."""
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return None
    for issue in issues:
        if isinstance(issue, Mapping) and issue.get("severity") in ("error", "fatal"):
            code = issue.get("code")
            text = issue.get("diagnostics")
            parts = [p for p in (code, text) if isinstance(p, str) and p]
            return ": ".join(parts)[:200] or "error"
    return None
