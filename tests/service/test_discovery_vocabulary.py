"""One BP vocabulary (issue 13): discovery's ``bp`` prefetch template asks for every code the
mapping reads as a blood pressure, so no reading the mapping would use is left unfetched or
arrives under another key."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fhir_mappings.blood_pressure import BP_KINDS
from fhir_mappings.codes import LOINC, OBSERVATION_CODES
from service.discovery import PREFETCH, SERVICES


def _codes(key: str) -> set[tuple[str, str]]:
    """The ``system|code`` tokens of a prefetch template's ``code`` parameter."""
    query = parse_qs(urlsplit(PREFETCH[key]).query)
    system_code = (t.rsplit("|", 1) for t in query["code"][0].split(","))
    return {(system, code) for system, code in system_code}


MAPPING_BP = {c for c, kind in OBSERVATION_CODES.items() if kind in BP_KINDS}


def test_every_bp_code_the_mapping_reads_is_in_the_bp_template() -> None:
    missing = MAPPING_BP - _codes("bp")
    assert not missing, f"BP codes the mapping reads but discovery does not prefetch: {missing}"


def test_the_bp_template_asks_for_bp_codes_only() -> None:
    assert _codes("bp") == MAPPING_BP


def test_every_bp_kind_has_a_code_in_the_bp_template() -> None:
    fetched = {OBSERVATION_CODES[c] for c in _codes("bp")}
    assert fetched == set(BP_KINDS)


def test_no_bp_code_arrives_under_labs() -> None:
    assert not _codes("labs") & MAPPING_BP
    assert {c for c, kind in OBSERVATION_CODES.items()
            if c[0] == LOINC and kind not in BP_KINDS} == _codes("labs")


def test_every_service_publishes_the_same_templates() -> None:
    assert all(s.prefetch == PREFETCH for s in SERVICES)
