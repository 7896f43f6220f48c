"""Patient -> age at the assessment date, sex, deceased, and family origin (ethnicity).

FHIR release: R4 (4.0.1), https://hl7.org/fhir/R4/patient.html. Ethnicity comes from the UK
Core ethnic-category extension (NHS Data Dictionary "Ethnic Category", 2001-census letters)
or the US Core race extension (OMB categories and CDC detailed codes); see
:mod:`fhir_mappings.codes` and shared/research/clinical.md 6.8. NICE NG136 asks about "Black
African or African-Caribbean family origin"; South Asian family origin is a model input.
Unknown stays unknown (``None``): nothing is inferred from names, language or address.

Decisions: UK Core wins when both extensions are present (it records family origin, the
concept NICE uses). UK D/E (mixed White and Black) count as Black only when
``MappingPolicy.mixed_black_as_black`` is set. US "Asian" (2028-9) alone does not say South
Asian (Chinese, Filipino ... are Asian too): South Asian origin is then unknown, unless a
detailed code (Asian Indian 2029-7, Pakistani 2044-4, Bangladeshi 2030-5) says so. A partial
birthDate (year, or year-month) counts from the middle of its period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fhir_mappings import codes
from fhir_mappings.dates import age_in_years
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.raw_resource import RawResource
from fhir_mappings.sourced_fact import Fact, unknown


@dataclass(frozen=True, slots=True)
class Demographics:
    """What other mappers need from the Patient (CKD-EPI needs age and sex)."""

    birth_date: date | None
    female: bool | None


def map_patient(ctx: MappingContext) -> tuple[dict[str, Fact], Fact, Demographics]:
    """Facts (age, sex_female, ethnicity_*), the deceased fact and demographics."""
    res = ctx.patient
    ctx.use(res)
    d = res.data
    ref = res.ref
    facts: dict[str, Fact] = {}

    birth_text = res.string(d, "birthDate")
    birth, partial = _birth_date(res, birth_text)
    if birth is None:
        facts["age"] = unknown("no birthDate on the Patient")
    elif birth > ctx.as_of:
        facts["age"] = unknown(f"birthDate {birth_text} is after the assessment date")
    else:
        note = f"born {birth_text}" + (" (partial date: mid-period assumed)" if partial else "")
        facts["age"] = Fact(float(age_in_years(birth, ctx.as_of)), ref, birth, note)

    gender = res.string(d, "gender")
    if gender == "female":
        facts["sex_female"] = Fact(1.0, ref, None, "gender female")
    elif gender == "male":
        facts["sex_female"] = Fact(0.0, ref, None, "gender male")
    else:
        facts["sex_female"] = unknown(f"gender {gender or 'not recorded'}: sex unknown")

    facts.update(_ethnicity(ctx, res))
    deceased = _deceased(ctx, res)
    female = None if facts["sex_female"].value is None else facts["sex_female"].value == 1.0
    return facts, deceased, Demographics(birth, female)


def _birth_date(res: RawResource, text: str | None) -> tuple[date | None, bool]:
    if text is None:
        return None, False
    parts = text.split("-")
    try:
        if len(parts) == 1 and len(text) == 4:
            return date(int(text), 7, 1), True
        if len(parts) == 2:
            return date(int(parts[0]), int(parts[1]), 15), True
        if len(parts) == 3 and len(text) == 10:
            return date.fromisoformat(text), False
    except (ValueError, OverflowError):
        pass
    raise res.error("is not a FHIR date", ".birthDate")


def _deceased(ctx: MappingContext, res: RawResource) -> Fact:
    d = res.data
    flag = res.boolean(d, "deceasedBoolean")
    if flag is not None:
        return Fact(1.0 if flag else 0.0, res.ref, None, f"deceasedBoolean {str(flag).lower()}")
    when = ctx.when(res, d, "deceasedDateTime")
    if when is None:
        return Fact(0.0, None, None, "not recorded as deceased")
    if when.day <= ctx.as_of:
        return Fact(1.0, res.ref, when.day, "deceasedDateTime")
    return Fact(0.0, res.ref, when.day, "deceasedDateTime is after the assessment date")


# --------------------------------------------------------------------------- ethnicity

_BLACK = "ethnicity_black"
_SOUTH_ASIAN = "ethnicity_south_asian"


def _ethnicity(ctx: MappingContext, res: RawResource) -> dict[str, Fact]:
    uk: list[tuple[str, str]] = []       # (code, display)
    race_omb: list[str] = []
    race_detailed: list[str] = []
    race_text = ""
    for path, ext in res.objects(res.data, "extension"):
        url = res.string(ext, "url", path)
        if url in codes.UK_ETHNICITY_EXTENSIONS:
            codings, text = res.concept(ext, "valueCodeableConcept", path)
            uk.extend((c, disp or text) for s, c, disp in codings
                      if s in codes.UK_ETHNICITY_SYSTEMS and c)
        elif url == codes.US_RACE_EXTENSION:
            for spath, sub in res.objects(ext, "extension", path):
                surl = res.string(sub, "url", spath)
                coding = res.obj(sub, "valueCoding", spath)
                code = res.string(coding, "code", f"{spath}.valueCoding") if coding else None
                if surl == "ombCategory" and code:
                    race_omb.append(code)
                elif surl == "detailed" and code:
                    race_detailed.append(code)
                elif surl == "text":
                    race_text = res.string(sub, "valueString", spath) or ""
    if uk:
        return _uk_ethnicity(ctx, res.ref, uk)
    if race_omb or race_detailed:
        return _us_race(res.ref, race_omb, race_detailed, race_text)
    note = "no ethnic category or race recorded: unknown"
    return {_BLACK: unknown(note), _SOUTH_ASIAN: unknown(note)}


def _uk_ethnicity(ctx: MappingContext, ref: str, coded: list[tuple[str, str]]) -> (
        dict[str, Fact]):
    # the 2-character codes of the retired code system start with the category letter
    letters = sorted({c if c in codes.UK_UNKNOWN else c[:1].upper() for c, _ in coded})
    label = ", ".join(f"{c} {d}".strip() for c, d in sorted(coded))
    known = [x for x in letters if x in codes.UK_KNOWN]
    if not known:
        note = f"UK ethnic category {label}: not stated or not known"
        return {_BLACK: unknown(note), _SOUTH_ASIAN: unknown(note)}
    note = f"UK Core ethnic category {label}"
    black = any(x in codes.UK_BLACK for x in known)
    mixed = any(x in codes.UK_MIXED_BLACK for x in known)
    black_note = note
    if mixed and not black:
        black = ctx.policy.mixed_black_as_black
        black_note += (" (mixed White and Black: counted as Black by policy)" if black else
                       " (mixed White and Black: not counted as Black by policy)")
    south_asian = any(x in codes.UK_SOUTH_ASIAN for x in known)
    return {_BLACK: Fact(float(black), ref, None, black_note),
            _SOUTH_ASIAN: Fact(float(south_asian), ref, None, note)}


def _us_race(ref: str, omb: list[str], detailed: list[str], text: str) -> dict[str, Fact]:
    all_codes = set(omb) | set(detailed)
    label = ", ".join(sorted(all_codes)) + (f" ({text})" if text else "")
    note = f"US Core race {label}"
    known = all_codes - codes.US_UNKNOWN
    if not known:
        why = "not known"
        if "2135-2" in all_codes:
            why = "2135-2 is an ethnicity code in race.ombCategory (Synthea 'Other'): unknown"
        return {_BLACK: unknown(f"{note}: {why}"), _SOUTH_ASIAN: unknown(f"{note}: {why}")}
    black = bool(known & (codes.US_BLACK | codes.US_BLACK_DETAILED))
    out = {_BLACK: Fact(float(black), ref, None, note)}
    if known & codes.US_SOUTH_ASIAN_DETAILED:
        out[_SOUTH_ASIAN] = Fact(1.0, ref, None, note)
    elif codes.US_ASIAN in known:
        out[_SOUTH_ASIAN] = unknown(
            f"{note}: Asian (OMB) without a detailed South Asian code: South Asian origin "
            "unknown")
    else:
        out[_SOUTH_ASIAN] = Fact(0.0, ref, None, note)
    return out
