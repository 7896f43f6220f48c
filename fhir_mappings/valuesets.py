"""Curated value sets shipped as data: ``fhir_mappings/valuesets/*.toml``.

One TOML file per condition concept (a rule or model fact recorded as a Condition), one file
of pregnancy Observation codes and one of brand and product names (``brands.toml``: UK dm+d and
US RxNorm brand -> ingredients, read by :func:`load_brands`). Each file says when it was
curated (``updated``) and where its codes come from (``sources``, and a ``source`` per code);
see the files' header comments for the markers ([V] verified in a public value set, [S] seen
in a public source, [M] not verified).

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
OBSERVATION_FILES: Final = frozenset({"pregnancy_observations.toml", "brands.toml"})
BRANDS_FILE: Final = "brands.toml"

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


# --------------------------------------------------------------------------- brand names

_BRAND_KEYS: Final = frozenset({"ingredients", "region", "source", "status", "dmd", "rxnorm",
                                "aliases", "note"})
_REGIONS: Final = frozenset({"UK", "US"})
_STATUS: Final = frozenset({"V", "S", "M"})
_RXCUI = re.compile(r"[1-9][0-9]{0,8}")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise_name(text: str) -> str:
    """A drug name as matched: case-folded, every run of punctuation or space one space
    (``"Li-Liquid"`` and ``"li liquid"`` -> ``"li liquid"``)."""
    return _NOT_WORD.sub(" ", text.casefold()).strip()


@dataclass(frozen=True, slots=True)
class Brand:
    """A brand or product name (``brands.toml``) and the ingredients it contains, spelled as
    :data:`fhir_mappings.drug_codes.INGREDIENTS` spells them."""

    name: str
    ingredients: tuple[str, ...]
    regions: tuple[str, ...]
    source: str
    status: str
    dmd: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    note: str = ""


def load_brands(path: Traversable | None = None) -> dict[str, Brand]:
    """Normalised brand name (see :func:`normalise_name`; aliases too) -> :class:`Brand`
    (default: the shipped ``brands.toml``).

    Raises :class:`ValueSetError` naming the file and entry for a malformed entry, an
    ingredient :mod:`fhir_mappings.drug_codes` does not know, an unknown source key, two
    entries with the same normalised name, or a name that is another ingredient's name."""
    from fhir_mappings.drug_codes import INGREDIENTS  # here: drug_codes may import us later

    path = folder().joinpath(BRANDS_FILE) if path is None else path
    name = path.name
    doc = _read(path)
    unknown = set(doc) - {"updated", "sources", "brands"}
    if unknown:
        raise ValueSetError(f"{name}: unknown key(s) {sorted(unknown)}; expected updated, "
                            "sources, brands")
    _date(doc, name)
    sources = _table(doc, "sources", name)
    for key, text in sources.items():
        if not isinstance(text, str) or not text.strip():
            raise ValueSetError(f"{name} [sources]: {key!r} must be a non-empty string")
    table = _table(doc, "brands", name)
    if not table:
        raise ValueSetError(f"{name}: [brands] lists no brands")
    ingredient_of = {normalise_name(n): i.name for i in INGREDIENTS for n in i.all_names}
    out: dict[str, Brand] = {}
    for brand_name, entry in table.items():
        brand = _brand(brand_name, entry, f"{name} [brands.{brand_name!r}]", sources,
                       frozenset(ingredient_of.values()))
        for label in (brand.name, *brand.aliases):
            key = normalise_name(label)
            where = f"{name} [brands.{brand_name!r}]"
            if len(key) < 3:
                raise ValueSetError(f"{where}: name {label!r} is too short to match safely")
            if key in out:
                raise ValueSetError(f"{where}: name {label!r} is already defined by "
                                    f"{out[key].name!r}")
            other = ingredient_of.get(key)
            if other is not None and brand.ingredients != (other,):
                raise ValueSetError(f"{where}: name {label!r} is the ingredient name of "
                                    f"{other!r}")
            out[key] = brand
    return out


def brand_ingredients(path: Traversable | None = None) -> dict[str, tuple[str, ...]]:
    """Normalised brand name -> the names of its ingredients (:func:`load_brands`)."""
    return {key: brand.ingredients for key, brand in load_brands(path).items()}


def _brand(brand_name: str, entry: object, where: str, sources: Mapping[str, Any],
           known: frozenset[str]) -> Brand:
    if not isinstance(entry, dict):
        raise ValueSetError(f"{where}: must be a table (ingredients, region, source, status)")
    unknown = set(entry) - _BRAND_KEYS
    if unknown:
        raise ValueSetError(f"{where}: unknown key(s) {sorted(unknown)}; expected "
                            f"{sorted(_BRAND_KEYS)}")
    if not normalise_name(brand_name):
        raise ValueSetError(f"{where}: the brand name has no letters or digits")
    ingredients = _strings(entry, "ingredients", where, required=True)
    for ing in ingredients:
        if ing not in known:
            raise ValueSetError(f"{where}: ingredient {ing!r} is not in "
                                "fhir_mappings.drug_codes.INGREDIENTS")
    if len(set(ingredients)) != len(ingredients):
        raise ValueSetError(f"{where}: ingredients repeat")
    regions = _strings(entry, "region", where, required=True)
    if not set(regions) <= _REGIONS:
        raise ValueSetError(f"{where}: region must list {sorted(_REGIONS)}, not {regions}")
    source = entry.get("source")
    keys = (source,) if isinstance(source, str) else source
    if (not isinstance(keys, list | tuple) or not keys
            or not all(isinstance(k, str) and k in sources for k in keys)):
        raise ValueSetError(f"{where}: source must name one or more keys of [sources] "
                            f"({sorted(sources)}), not {source!r}")
    status = entry.get("status")
    if status not in _STATUS:
        raise ValueSetError(f"{where}: status must be one of {sorted(_STATUS)}, not "
                            f"{status!r}")
    dmd = _strings(entry, "dmd", where)
    if not all(_SCTID.fullmatch(c) for c in dmd):
        raise ValueSetError(f"{where}: dmd codes must be SNOMED CT ids (6-18 digits): {dmd}")
    rxnorm = _strings(entry, "rxnorm", where)
    if not all(_RXCUI.fullmatch(c) for c in rxnorm):
        raise ValueSetError(f"{where}: rxnorm codes must be RxCUIs (digits): {rxnorm}")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise ValueSetError(f"{where}: note must be a string")
    return Brand(brand_name, tuple(ingredients), tuple(regions), "; ".join(keys), status,
                 tuple(dmd), tuple(rxnorm), tuple(_strings(entry, "aliases", where)), note)


def _strings(entry: Mapping[str, Any], key: str, where: str,
             required: bool = False) -> list[str]:
    value = entry.get(key, [])
    if (not isinstance(value, list) or (required and not value)
            or not all(isinstance(v, str) and v.strip() for v in value)):
        need = "a non-empty list" if required else "a list"
        raise ValueSetError(f"{where}: {key} must be {need} of non-empty strings, not "
                            f"{value!r}")
    return value


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
