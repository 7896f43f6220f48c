"""The patient's name for the panel's banner, read from the EHR the SMART launch came from.

The token response of a SMART launch names the patient by id only; the panel's scope
(``patient/Patient.rs``) lets it read that Patient. The name is shown only when the EHR
returns the very patient of the launch with a name; anything else (no answer, an error,
another id, no name) gives None and the banner says "Patient in the EPR's current context",
never an id. Reading the name never stops the panel from opening.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import httpx
import structlog

_log = structlog.get_logger(__name__)
MAX_NAME: Final = 120
_USES: Final = ("official", "usual", None)


def name_words(resource: Any, patient_id: str) -> str | None:
    """A display name from a FHIR R4 Patient whose id is ``patient_id`` (HumanName.text, or
    the given names and family name of the official, the usual, or the first name)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient" \
            or resource.get("id") != patient_id:
        return None
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    by_use = {n.get("use"): n for n in reversed(names)}
    chosen = next((by_use[u] for u in _USES if u in by_use), names[0] if names else None)
    if chosen is None:
        return None
    text = chosen.get("text")
    if not isinstance(text, str) or not text.strip():
        parts = [g for g in chosen.get("given") or [] if isinstance(g, str)]
        family = chosen.get("family")
        parts += [family] if isinstance(family, str) else []
        text = " ".join(parts)
    words = " ".join("".join(ch for ch in text if ch.isprintable()).split())
    return words[:MAX_NAME] or None


async def read_patient_name(http: httpx.AsyncClient, iss: str, patient_id: str,
                            access_token: str) -> str | None:
    """The launch patient's name from ``iss`` (a configured EHR), or None."""
    try:
        r = await http.get(f"{iss}/Patient/{quote(patient_id, safe='')}",
                           headers={"Authorization": f"Bearer {access_token}",
                                    "Accept": "application/fhir+json"})
        if r.status_code != 200:
            return None
        return name_words(r.json(), patient_id)
    except Exception as exc:  # any network or JSON failure: the banner goes without a name
        _log.info("panel_patient_name_unavailable", error=type(exc).__name__)
        return None
