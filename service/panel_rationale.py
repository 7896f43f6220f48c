"""The rationale as an HTML fragment for the panel (issue 16): the panel places it under its
"Explanation" heading (``render_panel(..., rationale_html=...)``, service/panel.py).

The label says what the text is: the LLM's text only when the verifier passed it against this
record ("Machine-written explanation, checked against this record"); otherwise the text is the
one built directly from the record, and the label says why the machine-written one is not
shown. All text is HTML-escaped; the status is also a data attribute for tests and styling.
"""

from __future__ import annotations

from html import escape
from typing import Final

from rationale.writer import RationaleOutcome, RationaleStatus

VERIFIED_LABEL: Final = "Machine-written explanation, checked against this record"
REJECTED_LABEL: Final = ("The machine-written explanation did not pass the check against the "
                         "record; this explanation is built directly from the record instead")
NOT_READY_LABEL: Final = ("The machine-written explanation is not available yet; this "
                          "explanation is built directly from the record")
UNAVAILABLE_LABEL: Final = ("The machine-written explanation is unavailable; this explanation "
                            "is built directly from the record")
LABELS: Final = {RationaleStatus.VERIFIED: VERIFIED_LABEL,
                 RationaleStatus.REJECTED: REJECTED_LABEL,
                 RationaleStatus.TIMEOUT: NOT_READY_LABEL,
                 RationaleStatus.UNAVAILABLE: UNAVAILABLE_LABEL}


def rationale_html(o: RationaleOutcome) -> str | None:
    """The fragment, or None when no LLM is configured (the panel then has no Explanation)."""
    if o.status is RationaleStatus.OFF:
        return None
    sentences = "".join(f"<li>{escape(s.text, quote=True)}</li>" for s in o.shown.sentences)
    return (f"<div class='rationale' data-rationale-status='{escape(o.status.value)}'>"
            f"<p class='rationale-label'><strong>{escape(LABELS[o.status])}</strong></p>"
            f"<ul class='rationale-text'>{sentences}</ul></div>")
