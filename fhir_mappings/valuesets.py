"""Curated value sets shipped as data: ``fhir_mappings/valuesets/*.toml``.

One TOML file per condition concept (a rule or model fact recorded as a Condition) and one file
of pregnancy Observation codes. Each file says when it was curated (``updated``) and where its
codes come from (``sources``, and a ``source`` per code); see the files' header comments for
the markers ([V] verified in a public value set, [S] seen in a public source, [M] not verified).

A condition file::

    fact = "pregnancy"                 # the fact it sets; the file is named <fact>.toml
    title = "Pregnancy (current)"
    history = false                    # true: resolved/inactive records still count
    updated = 2026-12-06               # TOML date (or "2026-12-06")
    sources = ["...", "..."]
    [snomed]                           # SNOMED CT concept id -> display and source
    "77386006" = { display = "Pregnancy (finding)", source = "..." }
    [icd10.include]                    # ICD-10 prefixes, normalised (no dot, upper case)
    "O1" = { display = "...", source = "..." }
    [icd10.exclude]
    "O85" = { display = "...", source = "..." }

ICD-10 codes match by prefix; the longest matching prefix decides (an exclude prefix beats a
shorter include prefix, a longer include prefix beats a shorter exclude prefix; equal length:
exclude). The files are read with :mod:`importlib.resources`, so they load from an installed
wheel too; every file is validated on load and a malformed one raises :class:`ValueSetError`
naming the file and the problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final

_PACKAGE: Final = "fhir_mappings"
_FOLDER: Final = "valuesets"
#: Files of the folder that are not condition concepts.
OBSERVATION_FILES: Final = frozenset({"pregnancy_observations.toml"})

_LOINC: Final = "http://loinc.org"
_SNOMED: Final = "http://snomed.info/sct"
#: Short system names used in the observation file -> canonical FHIR R4 URIs.
_SYSTEMS: Final[Mapping[str, str]] = {"loinc": _LOINC, "snomed": _SNOMED}

_FACT = re.compile(r"[a-z][a-z0-9_]*")
_SCTID = re.compile(r"[1-9][0-9]{5,17}")
_ICD10_PREFIX = re.compile(r"[A-Z][0-9][0-9A-Z]*")
_LOINC_CODE = re.compile(r"(LA|LP|LL)?[0-9]{1,7}-[0-9]")
_CONDITION_KEYS: Final = frozenset({"fact", "title", "history", "updated", "sources", "snomed",
                                    "icd10"})


class ValueSetError(ValueError):
    """A value-set file that is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class ConditionConcept:
    """A rule or model fact recorded as a Condition: SNOMED codes and ICD-10 prefixes.

    ``icd10`` and ``exclude`` are normalised ICD-10 prefixes (see :meth:`matches_icd10`);
    ``history``: a resolved or inactive record still counts (a past MI is CVD); ``updated``:
    the date the concept's file was curated.
    """

    fact: str
    snomed: frozenset[str]
    icd10: tuple[str, ...]
    source: str
    history: bool = False
    exclude: tuple[str, ...] = ()
    updated: date | None = None
    title: str = ""

    def matches_icd10(self, normalised: str) -> bool:
        """Whether a normalised ICD-10 code (no dot, upper case) belongs to the concept: the
        longest matching prefix decides, and an exclude prefix wins a tie."""
        include = max((len(p) for p in self.icd10 if normalised.startswith(p)), default=0)
        if include == 0:
            return False
        exclude = max((len(p) for p in self.exclude if normalised.startswith(p)), default=0)
        return include > exclude


@dataclass(frozen=True, slots=True)
class PregnancyObservationCodes:
    """Observation codes that carry pregnancy evidence, as (system URI, code) pairs."""

    status_codes: frozenset[tuple[str, str]]
    pregnant_values: frozenset[tuple[str, str]]
    not_pregnant_values: frozenset[tuple[str, str]]
    hcg_qualitative_codes: frozenset[tuple[str, str]]
    hcg_positive_values: frozenset[tuple[str, str]]
    hcg_negative_values: frozenset[tuple[str, str]]
    hcg_quantitative_codes: frozenset[tuple[str, str]]
    #: UCUM unit of the thresholds; > ``hcg_positive_above`` positive, < ``hcg_negative_below``
    #: negative, in between equivocal.
    hcg_unit: str
    hcg_positive_above: float
    hcg_negative_below: float
    hcg_threshold_source: str
    delivery_date_codes: frozenset[tuple[str, str]]
    updated: date
    sources: tuple[str, ...]


# --------------------------------------------------------------------------- loading


def folder() -> Traversable:
    """The shipped ``fhir_mappings/valuesets`` folder."""
    return files(_PACKAGE).joinpath(_FOLDER)


def load_conditions(directory: Traversable | None = None) -> tuple[ConditionConcept, ...]:
    """Every condition concept of ``directory`` (default: the shipped folder), by file name.

    Raises :class:`ValueSetError` for a malformed file, a file not named after its fact, or
    two files with the same fact."""
    base = folder() if directory is None else directory
    paths = sorted((p for p in base.iterdir()
                    if p.name.endswith(".toml") and p.name not in OBSERVATION_FILES),
                   key=lambda p: p.name)
    if not paths:
        raise ValueSetError(f"no condition value-set files (*.toml) in {base}")
    concepts = tuple(load_condition_file(p) for p in paths)
    seen: dict[str, str] = {}
    for path, concept in zip(paths, concepts, strict=True):
        if concept.fact in seen:
            raise ValueSetError(f"{path.name}: fact {concept.fact!r} is already defined by "
                                f"{seen[concept.fact]}")
        seen[concept.fact] = path.name
    return concepts


def load_condition_file(path: Traversable) -> ConditionConcept:
    """One condition concept file (validated; raises :class:`ValueSetError`)."""
    name = path.name
    doc = _read(path)
    unknown = set(doc) - _CONDITION_KEYS
    if unknown:
        raise ValueSetError(f"{name}: unknown key(s) {sorted(unknown)}; expected "
                            f"{sorted(_CONDITION_KEYS)}")
    fact = _str(doc, "fact", name)
    if not _FACT.fullmatch(fact):
        raise ValueSetError(f"{name}: fact {fact!r} is not a lower-case identifier")
    if name != f"{fact}.toml":
        raise ValueSetError(f"{name}: file name must be {fact}.toml (its fact)")
    history = doc.get("history", False)
    if not isinstance(history, bool):
        raise ValueSetError(f"{name}: history must be true or false, not {history!r}")
    snomed = _entries(doc.get("snomed", {}), f"{name} [snomed]")
    for code in snomed:
        if not _SCTID.fullmatch(code):
            raise ValueSetError(f"{name} [snomed]: {code!r} is not a SNOMED CT concept id "
                                "(6-18 digits)")
    icd10 = doc.get("icd10", {})
    if not isinstance(icd10, dict) or set(icd10) - {"include", "exclude"}:
        raise ValueSetError(f"{name}: [icd10] takes only the tables include and exclude")
    include = _icd10(icd10.get("include", {}), f"{name} [icd10.include]")
    exclude = _icd10(icd10.get("exclude", {}), f"{name} [icd10.exclude]")
    both = set(include) & set(exclude)
    if both:
        raise ValueSetError(f"{name}: ICD-10 prefix(es) {sorted(both)} both included and "
                            "excluded")
    if not snomed and not include:
        raise ValueSetError(f"{name}: no codes (neither [snomed] nor [icd10.include])")
    sources = _sources(doc, name)
    return ConditionConcept(
        fact=fact, snomed=frozenset(snomed), icd10=tuple(include),
        source="; ".join(sources), history=history, exclude=tuple(exclude),
        updated=_date(doc, name), title=_str(doc, "title", name))


def load_pregnancy_observations(path: Traversable | None = None) -> PregnancyObservationCodes:
    """The pregnancy Observation codes (default: the shipped ``pregnancy_observations.toml``)."""
    path = folder().joinpath("pregnancy_observations.toml") if path is None else path
    name = path.name
    doc = _read(path)
    quantitative = _table(doc, "hcg_quantitative", name)
    unit = _str(quantitative, "unit", f"{name} [hcg_quantitative]")
    above = _number(quantitative, "positive_above", name)
    below = _number(quantitative, "negative_below", name)
    if not 0.0 <= below <= above:
        raise ValueSetError(f"{name}: hCG thresholds need 0 <= negative_below <= "
                            f"positive_above (got {below} and {above})")
    return PregnancyObservationCodes(
        status_codes=_coded(doc, ("status", "code"), name),
        pregnant_values=_coded(doc, ("status", "pregnant"), name),
        not_pregnant_values=_coded(doc, ("status", "not_pregnant"), name),
        hcg_qualitative_codes=_coded(doc, ("hcg_qualitative", "code"), name),
        hcg_positive_values=_coded(doc, ("hcg_qualitative", "positive"), name),
        hcg_negative_values=_coded(doc, ("hcg_qualitative", "negative"), name),
        hcg_quantitative_codes=_coded(doc, ("hcg_quantitative", "code"), name),
        hcg_unit=unit, hcg_positive_above=above, hcg_negative_below=below,
        hcg_threshold_source=_str(quantitative, "threshold_source",
                                  f"{name} [hcg_quantitative]"),
        delivery_date_codes=_coded(doc, ("delivery_date", "code"), name),
        updated=_date(doc, name), sources=_sources(doc, name))


# --------------------------------------------------------------------------- validation


def _read(path: Traversable) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueSetError(f"{path.name}: not valid TOML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ValueSetError(f"{path.name}: cannot be read: {e}") from e


def _str(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueSetError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _number(doc: Mapping[str, Any], key: str, where: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueSetError(f"{where}: {key} must be a number, not {value!r}")
    return float(value)


def _date(doc: Mapping[str, Any], where: str) -> date:
    value = doc.get("updated")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as e:
            raise ValueSetError(f"{where}: updated {value!r} is not a YYYY-MM-DD date") from e
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise ValueSetError(f"{where}: updated must be a date (YYYY-MM-DD), not {value!r}")
    return value


def _sources(doc: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = doc.get("sources")
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, str) and s.strip() for s in value)):
        raise ValueSetError(f"{where}: sources must be a non-empty list of strings")
    return tuple(value)


def _table(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise ValueSetError(f"{where}: [{key}] table missing")
    return value


def _entries(table: object, where: str) -> dict[str, tuple[str, str]]:
    """code -> (display, source) of a table of ``"code" = { display, source }`` entries."""
    if not isinstance(table, dict):
        raise ValueSetError(f"{where}: must be a table of codes")
    out: dict[str, tuple[str, str]] = {}
    for code, entry in table.items():
        if not isinstance(entry, dict) or set(entry) != {"display", "source"}:
            raise ValueSetError(f"{where}: {code!r} must be {{ display = ..., source = ... }}")
        display, source = entry["display"], entry["source"]
        if not (isinstance(display, str) and display.strip()
                and isinstance(source, str) and source.strip()):
            raise ValueSetError(f"{where}: {code!r} needs a non-empty display and source")
        out[code] = (display, source)
    return out


def _icd10(table: object, where: str) -> list[str]:
    prefixes = list(_entries(table, where))
    for p in prefixes:
        if p != p.replace(".", "").strip().upper() or not _ICD10_PREFIX.fullmatch(p):
            raise ValueSetError(f"{where}: {p!r} is not a normalised ICD-10 prefix (upper "
                                "case, no dot, a letter then a digit, e.g. 'O10' or 'Z3A')")
    return prefixes


def _coded(doc: Mapping[str, Any], keys: Iterable[str], where: str) -> frozenset[tuple[str, str]]:
    """The (system URI, code) pairs of ``<keys>.<system>`` tables."""
    node: object = doc
    path = ".".join(keys)
    for key in keys:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            raise ValueSetError(f"{where}: [{path}] table missing")
        node = node[key]
    assert isinstance(node, dict)
    out: set[tuple[str, str]] = set()
    for system, table in node.items():
        uri = _SYSTEMS.get(system)
        if uri is None:
            raise ValueSetError(f"{where}: [{path}.{system}]: unknown system (expected one of "
                                f"{sorted(_SYSTEMS)})")
        for code in _entries(table, f"{where} [{path}.{system}]"):
            ok = _SCTID.fullmatch(code) if uri == _SNOMED else _LOINC_CODE.fullmatch(code)
            if not ok:
                raise ValueSetError(f"{where} [{path}.{system}]: {code!r} is not a valid "
                                    f"{system} code")
            out.add((uri, code))
    if not out:
        raise ValueSetError(f"{where}: [{path}] lists no codes")
    return frozenset(out)
