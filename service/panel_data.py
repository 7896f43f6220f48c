"""What the panel says about the data: what was missing or set aside, in words, and where
each value came from (a table with headers, labels instead of feature ids, the kind of record
instead of its id)."""

from __future__ import annotations

from typing import Final

from fhir_mappings.features import Provenance
from models.assessment import Assessment
from service.panel_words import day_words, e, feature_label, plain, source_words

ABSENT_NOTE: Final = "not recorded: taken as absent"


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _is_absent(p: Provenance) -> bool:
    return p.source is None and (p.note or "").startswith(ABSENT_NOTE)


def missing_items(a: Assessment) -> list[str]:
    """Each part of the record not obtained, each value set aside, each value unknown."""
    out = [f"{_first_upper(d.label)} could not be obtained: {plain(why)}."
           for d, why in a.unavailable]
    out += [_first_upper(plain(text)) for text in a.data_quality]
    for p in a.provenance:
        if p.source is None and not _is_absent(p):
            why = plain(p.note) if p.note else "unknown"
            out.append(f"{_first_upper(feature_label(p.feature))}: {why}.")
    return out


def render_missing(a: Assessment) -> str:
    """The "Data missing or not used" section."""
    items = missing_items(a)
    body = ("<ul>" + "".join(f"<li>{e(t)}</li>" for t in items) + "</ul>" if items
            else "<p>Nothing was reported missing or set aside.</p>")
    absent = [feature_label(p.feature) for p in a.provenance if _is_absent(p)]
    if absent:
        body += ("<details><summary>Not recorded, so taken as absent "
                 f"({len(absent)})</summary><p>{e('; '.join(absent))}.</p></details>")
    return ("<section aria-labelledby='missing-h'><h2 id='missing-h'>Data missing or not "
            f"used</h2>{body}</section>")


def render_provenance(a: Assessment) -> str:
    """Where each value came from, in a collapsed table."""
    if not a.provenance:
        return ""
    rows = "".join(
        f"<tr><th scope='row'>{e(feature_label(p.feature))}</th>"
        f"<td>{e(source_words(p.source))}</td>"
        f"<td>{e('' if p.date is None else day_words(p.date))}</td>"
        f"<td>{e(plain(p.note or ''))}</td></tr>" for p in a.provenance)
    return ("<section aria-labelledby='prov-h'><h2 id='prov-h'>Where the data came from</h2>"
            f"<details><summary>Show the source of each data item ({len(a.provenance)})"
            "</summary><table class='provenance'><caption>Source of each data item the "
            "assessment read</caption><thead><tr><th scope='col'>Data item</th>"
            "<th scope='col'>From</th><th scope='col'>Date</th><th scope='col'>Note</th>"
            f"</tr></thead><tbody>{rows}</tbody></table></details></section>")
