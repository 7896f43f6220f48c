"""MedicationRequest / MedicationStatement -> current regimen (class -> dose multiple) and
drug rule facts (NSAID, potassium, lithium, verapamil/diltiazem) plus other drugs of note.

FHIR release: R4 (4.0.1): https://hl7.org/fhir/R4/medicationrequest.html,
https://hl7.org/fhir/R4/medicationstatement.html, https://hl7.org/fhir/R4/medication.html.

Current means: MedicationRequest with status ``active``, intent ``order`` (or one of its
specialisations) or ``plan``, not ``doNotPerform``, authored on or before the assessment
date; MedicationStatement with status ``active`` or ``intended`` whose effective period has
not ended before the assessment date. Drafts (CDS Hooks draftOrders) are not current.

The drug is read from ``medicationCodeableConcept`` or ``medicationReference`` (contained
``#id``, a resource in the input by ``Type/id``, full URL or ``urn:uuid``; a Medication's
``code``, else its ``ingredient`` items with strength). Codings are tried in this order:
RxNorm product (SCD/SBD/SCDC), RxNorm ingredient, dm+d VMP (SNOMED), ATC ingredient, ATC
group; as a last resort the text and displays are searched for ingredient names and for the
brand and product names of ``fhir_mappings/valuesets/brands.toml`` (UK dm+d and US RxNorm
brands, e.g. "Priadel 400mg MR" -> lithium, "Zestoretic 20/12.5" -> lisinopril +
hydrochlorothiazide; whole words, case- and punctuation-insensitive), reported as a name-text
match that names the brand. All code data is in :mod:`fhir_mappings.drug_codes`.

Dose multiple = daily dose / the ingredient's standard daily dose, rounded to the nearest
model level 0.5, 1 or 2 (on a log scale; below 0.5 -> 0.5, above 2 -> 2, both noted). Daily
dose = strength x units per dose x doses per day from ``dosageInstruction`` (``doseQuantity``
and ``timing``); without a dosage, one unit once daily is assumed (noted); without a
strength, the standard dose is assumed (noted). When two current medications give the same
class (a repeat prescription, or a request and a statement), the higher dose is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from fhir_mappings import codes, drug_codes, valuesets
from fhir_mappings.dates import When
from fhir_mappings.drug_codes import DrugGroup, Ingredient
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.raw_resource import (
    JsonObject,
    RawResource,
    concept_words,
    displays,
    first_text,
)
from fhir_mappings.report import IssueKind
from fhir_mappings.sourced_fact import Fact, present
from vocabulary.drug_classes import CLASS_INFO, DOSE_LEVELS, MAX_DOSE, DrugClass

REQUEST_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order",
                             "instance-order", "plan"})
STATEMENT_STATUS = frozenset({"active", "intended"})
_TIMING_CODES = {"QD": 1.0, "AM": 1.0, "PM": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0,
                 "QOD": 0.5, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0, "Q24H": 1.0}
_PERIOD_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7,
                   "mo": 1 / 30, "a": 1 / 365}
_MASS_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "microgram": 0.001,
            "micrograms": 0.001, "µg": 0.001, "μg": 0.001}


def _any_word(names: list[str]) -> re.Pattern[str]:
    """Any of ``names`` as whole words, tried in the order given (``\\b(name|name|...)\\b``);
    the names are grouped by their first letter (``a(?:mlodipine|...)|b(?:...)``), which
    matches the same (only one group can start at a position) in half the time."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n[0], []).append(re.escape(n[1:]))
    return re.compile(r"\b(" + "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})"
                                         for first, rests in groups.items()) + r")\b")


#: Any ingredient name, the longest first.
_NAMES = _any_word(sorted((n for i in drug_codes.INGREDIENTS for n in i.all_names),
                          key=lambda n: len(re.escape(n)), reverse=True))
_NAME_TO_INGREDIENT = {n: i for i in drug_codes.INGREDIENTS for n in i.all_names}
#: Normalised brand name -> brand (``valuesets/brands.toml``).
_BRANDS = valuesets.load_brands()


#: Any normalised brand name (in normalised text), the longest first (so "beta adalat" wins
#: over "adalat", "exforge hct" over "exforge").
_BRAND_NAMES = _any_word(sorted(_BRANDS, key=len, reverse=True))
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|micrograms?|mcg|ug|µg|μg|g)\b")
_BRAND_STRENGTH = re.compile(r" (\d+)(?: (\d+))? ?(mg|micrograms?|mcg|ug|g)\b")


@dataclass(frozen=True, slots=True)
class Part:
    """One ingredient of a medication with its strength (mg per unit) if known."""

    ingredient: Ingredient | None
    classes: tuple[DrugClass | DrugGroup, ...]
    mg: float | None
    how: str


@dataclass(frozen=True, slots=True)
class _Use:
    """One class or group contribution of one current medication."""

    key: DrugClass | DrugGroup
    multiple: float | None
    res: RawResource
    when: date | None
    note: str
    drug: str | None = None
    daily_mg: float | None = None


@dataclass(frozen=True, slots=True)
class MedicationFacts:
    regimen: dict[DrugClass, Fact]
    facts: dict[str, Fact]
    #: per class, the patient's own drug (ingredient) and its daily dose in mg when known
    drugs: dict[DrugClass, tuple[str, float | None]] = field(default_factory=dict)


def map_medications(ctx: MappingContext, requests: Iterable[RawResource],
                    statements: Iterable[RawResource]) -> MedicationFacts:
    uses: list[_Use] = []
    for res in requests:
        when = _request_current(ctx, res)
        if when is not False:
            uses.extend(_uses(ctx, res, when, "dosageInstruction"))
    for res in statements:
        when = _statement_current(ctx, res)
        if when is not False:
            uses.extend(_uses(ctx, res, when, "dosage"))

    by_key: dict[DrugClass | DrugGroup, list[_Use]] = {}
    for use in uses:
        by_key.setdefault(use.key, []).append(use)
    regimen: dict[DrugClass, Fact] = {}
    facts: dict[str, Fact] = {}
    drugs: dict[DrugClass, tuple[str, float | None]] = {}
    for key, items in by_key.items():
        items.sort(key=lambda u: (-(u.multiple or 0.0), u.res.ref))
        best = items[0]
        note = best.note
        others = sorted({u.res.ref for u in items[1:]} - {best.res.ref})
        if others:
            note += f"; also current: {', '.join(others)}"
        for u in items:
            ctx.use(u.res)
        drugs_of_class = sorted({u.drug for u in items if u.drug is not None})
        if isinstance(key, DrugClass) and len(drugs_of_class) > 1:
            # two different drugs of one class current (two ACE inhibitors, spironolactone
            # and eplerenone ...): duplicate therapy the prescriber must resolve
            ctx.report.issue(IssueKind.DUPLICATE_THERAPY, best.res.ref,
                             f"two current drugs of one class ({' and '.join(drugs_of_class)}):"
                             " duplicate therapy? review and stop one")
        if isinstance(key, DrugClass):
            assert best.multiple is not None
            regimen[key] = Fact(best.multiple, best.res.ref, best.when, note)
            if best.drug is not None:
                drugs[key] = (best.drug, best.daily_mg)
        else:
            facts[key.value] = present(best.res.ref, best.when, note)
    return MedicationFacts(regimen, facts, drugs)


# --------------------------------------------------------------------------- current?


def _request_current(ctx: MappingContext, res: RawResource) -> When | bool | None:
    """The authored date of a current MedicationRequest, None if undated, False if not."""
    d = res.data
    if res.string(d, "status") != "active" or res.string(d, "intent") not in REQUEST_INTENTS:
        return False
    if res.boolean(d, "doNotPerform"):
        return False
    authored = ctx.when(res, d, "authoredOn")
    if authored is not None and authored.day > ctx.as_of:
        return False
    return authored


def _statement_current(ctx: MappingContext, res: RawResource) -> When | bool | None:
    d = res.data
    if res.string(d, "status") not in STATEMENT_STATUS:
        return False
    start, end = ctx.period_when(res, d, "effectivePeriod")
    when = ctx.when(res, d, "effectiveDateTime") or start or ctx.when(res, d, "dateAsserted")
    if end is not None and end.day < ctx.as_of:
        return False
    if when is not None and when.day > ctx.as_of:
        return False
    return when


# --------------------------------------------------------------------------- drug identity


def _uses(ctx: MappingContext, res: RawResource, when: When | bool | None,
          dosage_key: str) -> list[_Use]:
    day = when.day if isinstance(when, When) else None
    parts, label = _identify(ctx, res)
    if not parts:
        return []
    per_day, dose_mg, dose_note = _dosage(res, dosage_key)
    uses = []
    single = len([p for p in parts if p.ingredient is not None]) == 1
    for part in parts:
        for key in part.classes:
            if key is DrugGroup.NOT_ANTIHYPERTENSIVE:
                continue  # recognised (not an unknown code) but nothing to record
            if isinstance(key, DrugGroup):
                uses.append(_Use(key, None, res, day, f"{label} ({part.how})"))
                continue
            multiple, note, daily = _multiple(key, part, per_day, dose_mg if single else None,
                                              dose_note)
            uses.append(_Use(key, multiple, res, day, f"{label} ({part.how}): {note}",
                             part.ingredient.name if part.ingredient else None, daily))
    return uses


def _identify(ctx: MappingContext, res: RawResource) -> tuple[list[Part], str]:
    """The parts of the medication and a label, trying codes, then text (see module doc)."""
    d = res.data
    texts: list[str] = []
    owner, subpath = res, ".medicationCodeableConcept"
    concept = res.obj(d, "medicationCodeableConcept")
    if concept is None:
        ref_obj = res.obj(d, "medicationReference")
        if ref_obj is None:
            return [], ""
        ref = res.string(ref_obj, "reference", ".medicationReference")
        texts.append(res.string(ref_obj, "display", ".medicationReference") or "")
        target = ctx.resolve(ref, res) if ref else None
        if target is None or target.resource_type != "Medication":
            ctx.report.issue(IssueKind.UNRESOLVED_REFERENCE, res.ref,
                             f"medicationReference {ref or '(none)'} is not in the input")
        else:
            ctx.use(target)
            owner, subpath = target, ".code"
            concept = target.obj(target.data, "code")
            parts = _from_codes(target, concept, subpath) if concept is not None else []
            parts = parts or _from_ingredients(target)
            if parts:
                return parts, _label(target, concept)
    codings = owner.codings(concept, subpath) if concept is not None else []
    if concept is not None:
        parts = _from_codes(owner, concept, subpath, codings)
        if parts:
            return parts, _label(owner, concept, codings)
        texts.append(owner.string(concept, "text", subpath) or "")
        texts.extend(disp for _, _, disp in codings)
    text = " / ".join(t for t in dict.fromkeys(texts) if t)
    if ctx.policy.match_names and text:
        parts, brands = _from_text(text, "name text match")
        if parts:
            detail = ("medication identified by name text: "
                      + ", ".join(p.ingredient.name for p in parts if p.ingredient))
            if brands:
                detail += f" (brand {', '.join(brands)})"
            ctx.report.issue(IssueKind.NAME_TEXT_MATCH, res.ref, detail)
            return parts, text
    for system, code, _ in codings[:1]:
        ctx.report.unknown_code(res.resource_type, system, code)
    return [], ""


def _label(owner: RawResource, concept: JsonObject | None,
           codings: list[tuple[str, str, str]] | None = None) -> str:
    if concept is None:
        return owner.ref
    if codings is None:
        codings = owner.codings(concept)
    return first_text(owner.string(concept, "text") or "", *displays(codings)) or owner.ref


def _from_codes(owner: RawResource, concept: JsonObject, subpath: str,
                codings: list[tuple[str, str, str]] | None = None) -> list[Part]:
    """Parts from the codings of ``concept`` (``codings``: when already read)."""
    if codings is None:
        codings = owner.codings(concept, subpath)
    concept_text = owner.string(concept, "text", subpath) or ""
    for system, code, _display in codings:
        if system == codes.RXNORM:
            product = drug_codes.RXNORM_PRODUCTS.get(code)
            if product:
                return _product_parts(product, f"RxNorm {code}")
            ing = drug_codes.INGREDIENTS_BY_RXNORM.get(code)
            if ing:
                return [_ingredient_part(ing, concept_words(codings, concept_text),
                                         f"RxNorm ingredient {code}")]
    for system, code, _display in codings:
        if system in codes.DMD_SYSTEMS:
            product = drug_codes.DMD_PRODUCTS.get(code)
            if product:
                return _product_parts(product, f"dm+d {code}")
    for system, code, _display in codings:
        if system in codes.ATC_SYSTEMS:
            ing = drug_codes.INGREDIENTS_BY_ATC.get(code)
            if ing:
                return [_ingredient_part(ing, concept_words(codings, concept_text),
                                         f"ATC {code}")]
            group = drug_codes.atc_group(code)
            if group:
                return [Part(None, group, None, f"ATC group {code}")]
    return []


def _from_ingredients(med: RawResource) -> list[Part]:
    """Parts from Medication.ingredient (itemCodeableConcept + strength in mg per unit)."""
    parts: list[Part] = []
    for path, item in med.objects(med.data, "ingredient"):
        concept = med.obj(item, "itemCodeableConcept", path)
        if concept is None:
            continue
        found = _from_codes(med, concept, f"{path}.itemCodeableConcept")
        mg = _ratio_mg(med, item, path)
        parts.extend(Part(p.ingredient, p.classes, mg if mg is not None else p.mg, p.how)
                     for p in found)
    return parts


def _ratio_mg(med: RawResource, item: JsonObject, path: str) -> float | None:
    strength = med.obj(item, "strength", path)
    if strength is None:
        return None
    num = med.obj(strength, "numerator", f"{path}.strength")
    if num is None:
        return None
    npath = f"{path}.strength.numerator"
    value = med.number(num, "value", npath)
    factor = _mg_per_unit(med.quantity_unit(num, npath))
    return None if value is None or factor is None else value * factor


def _mg_per_unit(unit: str) -> float | None:
    """Milligrams in one ``unit`` of mass (None: not a mass unit)."""
    return _MASS_MG.get(unit.lower())


def _product_parts(product: drug_codes.Product, how: str) -> list[Part]:
    out = []
    for name, mg in product.parts:
        ing = drug_codes.INGREDIENTS_BY_NAME[name]
        out.append(Part(ing, _classes(ing), mg,
                        f"{how}{'; ' + product.note if product.note else ''}"))
    return out


def _ingredient_part(ing: Ingredient, text: str, how: str) -> Part:
    strengths = _strengths_by_ingredient(text.lower())
    return Part(ing, _classes(ing), strengths.get(ing.name), how)


def _classes(ing: Ingredient) -> tuple[DrugClass | DrugGroup, ...]:
    if ing.drug_class is not None:
        return (ing.drug_class,)
    return (ing.group,) if ing.group is not None else ()


def _from_text(text: str, how: str) -> tuple[list[Part], list[str]]:
    """Parts named in free text (ingredient names, then brand names) and the brands read."""
    lowered = text.lower()
    strengths = _strengths_by_ingredient(lowered)
    seen: dict[str, Part] = {}
    for m in _NAMES.finditer(lowered):
        ing = _NAME_TO_INGREDIENT[m[1]]
        if ing.name not in seen:
            seen[ing.name] = Part(ing, _classes(ing), strengths.get(ing.name), how)
    brands: list[str] = []
    normalised = valuesets.normalise_name(text)
    for m in _BRAND_NAMES.finditer(normalised):
        brand = _BRANDS[m[1]]
        added = False
        for name in brand.ingredients:
            if name in seen:
                continue
            ing = drug_codes.INGREDIENTS_BY_NAME[name]
            mg = _brand_strength(normalised, m.end()) if len(brand.ingredients) == 1 else None
            seen[name] = Part(ing, _classes(ing), mg, f"{how}, brand {brand.name}")
            added = True
        if added and brand.name not in brands:
            brands.append(brand.name)
    return [p for p in seen.values() if p.classes], brands


def _brand_strength(normalised: str, end: int) -> float | None:
    """Strength written right after a single-ingredient brand ("zestril 20mg"), read from
    the normalised text (a decimal point is a space there: "2 5mg" is 2.5 mg)."""
    m = _BRAND_STRENGTH.match(normalised, end)
    if m is None:
        return None
    value = float(f"{m[1]}.{m[2]}" if m[2] else m[1])
    return value * _MASS_MG.get(m[3], 1.0)


def _strengths_by_ingredient(lowered: str) -> dict[str, float]:
    """Strength written after each ingredient name ("lisinopril 20 MG / hctz 12.5 MG")."""
    names = [(m.start(), _NAME_TO_INGREDIENT[m[1]].name) for m in _NAMES.finditer(lowered)]
    out: dict[str, float] = {}
    for i, (pos, name) in enumerate(names):
        end = names[i + 1][0] if i + 1 < len(names) else len(lowered)
        m = _STRENGTH.search(lowered, pos, end)
        if m and name not in out:
            out[name] = float(m[1]) * _MASS_MG.get(m[2], 1.0)
    return out


# --------------------------------------------------------------------------- dose


def _dosage(res: RawResource, key: str) -> tuple[float | None, float | None, str]:
    """(units per day, mg per dose if given in mass, note) from the first dosage."""
    for path, dosage in res.objects(res.data, key):
        times = None
        timing = res.obj(dosage, "timing", path)
        if timing is not None:
            tpath = f"{path}.timing"
            repeat = res.obj(timing, "repeat", tpath)
            if repeat is not None:
                rpath = f"{tpath}.repeat"
                freq = res.number(repeat, "frequency", rpath) or 1.0
                period = res.number(repeat, "period", rpath)
                unit = res.string(repeat, "periodUnit", rpath)
                if period and unit in _PERIOD_PER_DAY:
                    times = freq / period * _PERIOD_PER_DAY[unit]
            if times is None:
                codings, _ = res.concept(timing, "code", tpath)
                times = next((_TIMING_CODES[c.upper()] for _, c, _ in codings
                              if c.upper() in _TIMING_CODES), None)
        units, mg = None, None
        for dpath, dr in res.objects(dosage, "doseAndRate", path):
            q = res.obj(dr, "doseQuantity", dpath)
            if q is None:
                continue
            qpath = f"{dpath}.doseQuantity"
            value = res.number(q, "value", qpath)
            factor = _mg_per_unit(res.quantity_unit(q, qpath))
            if value is not None and factor is not None:
                mg = value * factor
            elif value is not None:
                units = value
            break
        if times is None and units is None and mg is None:
            continue
        per_day = (units or 1.0) * (times or 1.0) if mg is None else (times or 1.0)
        note = ("dose from the dosage instructions" if times is not None
                else "dose from the dosage instructions, once daily assumed")
        return per_day, (mg * (times or 1.0) if mg is not None else None), note
    return None, None, "no dosage instructions: one unit once daily assumed"


def _multiple(drug_class: DrugClass, part: Part, per_day: float | None,
              daily_mg_given: float | None, dose_note: str) -> tuple[float, str, float | None]:
    """Dose multiple of the class's standard dose, rounded to a model level, a note, and the
    daily dose in mg when known."""
    ing = part.ingredient
    standard = drug_codes.standard_mg(ing) if ing else None
    if daily_mg_given is not None:
        daily = daily_mg_given
    elif part.mg is not None:
        daily = part.mg * (per_day if per_day is not None else 1.0)
    else:
        daily = None
    if ing is None or standard is None or daily is None:
        what = ing.name if ing else CLASS_INFO[drug_class].name
        return 1.0, f"{what}, strength unknown: standard dose assumed (1x)", None
    raw = daily / standard
    level = round_dose(raw)
    note = (f"{ing.name} {daily:g} mg/day = {raw:.2g}x the standard {standard:g} mg "
            f"-> {level:g}x; {dose_note}")
    if raw < DOSE_LEVELS[0] / math.sqrt(2):
        note += f"; below {DOSE_LEVELS[0]:g}x: taken as {DOSE_LEVELS[0]:g}x"
    elif raw > MAX_DOSE * math.sqrt(2):
        note += f"; above {MAX_DOSE:g}x: capped at {MAX_DOSE:g}x"
    return level, note, daily


def round_dose(multiple: float) -> float:
    """The nearest model dose level (0.5, 1, 2) on a log scale; non-positive -> 0.5."""
    if not multiple > 0 or math.isinf(multiple):
        return DOSE_LEVELS[0] if not multiple > 0 else MAX_DOSE
    return min(DOSE_LEVELS, key=lambda lv: (abs(math.log(multiple / lv)), lv))
