"""Code systems and value sets the mapping understands, as data with their sources.

FHIR release: R4 (4.0.1). Code-system URIs are the canonical ones of
https://hl7.org/fhir/R4/terminologies-systems.html. Sources are the files and tables of
``shared/research/clinical.md`` section 6 (abbreviated "clinical.md 6.x"), which names the
public value sets each code was checked against ([V]); codes marked [M] come from background
knowledge and were not re-checked against a source: check them before release. Terminology
versions: LOINC 2.7x, SNOMED CT International and UK editions 2020-2024, ICD-10 (WHO and
ICD-10-CM, matched by prefix), UK Core R4 1.x, US Core 3.1-7.0, CDC Race & Ethnicity 1.0.

There is no terminology server here, so "descendants" of a SNOMED concept are the descendants
listed explicitly (those seen in Synthea output and UK code sets); ICD-10 codes match by
prefix, with or without the dot (``E11.9``, ``E119``). The condition concepts and the pregnancy
Observation codes are data: curated value sets with their sources and dates in
``fhir_mappings/valuesets/*.toml``, loaded and validated by :mod:`fhir_mappings.valuesets`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# ConditionConcept lives in fhir_mappings.valuesets (with its loader); re-exported here.
from fhir_mappings.valuesets import ConditionConcept as ConditionConcept
from fhir_mappings.valuesets import load_conditions, load_pregnancy_observations

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM: Final = "http://unitsofmeasure.org"
CDC_RACE_ETHNICITY: Final = "urn:oid:2.16.840.1.113883.6.238"
ATC_SYSTEMS: Final = frozenset({
    "http://www.whocc.no/atc", "http://www.whocc.no/atc/", "urn:oid:2.16.840.1.113883.6.73",
})
#: dm+d codes travel as SNOMED CT (clinical.md 6.5); the dm+d URI is accepted as well.
DMD_SYSTEMS: Final = frozenset({SNOMED, "https://dmd.nhs.uk", "http://dmd.nhs.uk"})
ICD10_SYSTEMS: Final = frozenset({
    "http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10-uk", "http://hl7.org/fhir/sid/icd-10-de",
    "urn:oid:2.16.840.1.113883.6.3", "urn:oid:2.16.840.1.113883.6.90",
})


def normalise_icd10(code: str) -> str:
    return code.replace(".", "").strip().upper()


# --------------------------------------------------------------------------- observations


class ObsKind(StrEnum):
    """What an Observation code means to the mapping."""

    BP_PANEL = "bp_panel"              # clinic unless marked as home/ambulatory
    SBP = "sbp"
    DBP = "dbp"
    HOME_PANEL = "home_panel"          # self-measured mean (96607-7) or home average
    HOME_SBP = "home_sbp"
    HOME_DBP = "home_dbp"
    ABPM_DAY_SBP = "abpm_day_sbp"
    ABPM_DAY_DBP = "abpm_day_dbp"
    ABPM_24H_PANEL = "abpm_24h_panel"
    ABPM_24H_SBP = "abpm_24h_sbp"
    ABPM_24H_DBP = "abpm_24h_dbp"
    ABPM_NIGHT_SBP = "abpm_night_sbp"
    ABPM_NIGHT_DBP = "abpm_night_dbp"
    HEART_RATE = "heart_rate"
    POTASSIUM = "potassium"
    SODIUM = "sodium"
    CREATININE = "creatinine"
    EGFR = "egfr"
    URINE_ACR = "urine_acr"
    HBA1C = "hba1c"
    BMI = "bmi"
    LVEF = "lvef"
    PREGNANCY_STATUS = "pregnancy_status"
    HCG_QUALITATIVE = "hcg_qualitative"
    HCG_QUANTITATIVE = "hcg_quantitative"
    DELIVERY_DATE = "delivery_date"


#: (system, code) -> kind. Sources: clinical.md 6.1 (LOINC, [V] unless noted) and 6.6.
OBSERVATION_CODES: Final[dict[tuple[str, str], ObsKind]] = {
    # Clinic BP: panels and separate readings (US Core / CardX / Synthea; 55284-4 older Synthea)
    (LOINC, "85354-9"): ObsKind.BP_PANEL,
    (LOINC, "55284-4"): ObsKind.BP_PANEL,
    (LOINC, "8480-6"): ObsKind.SBP,
    (LOINC, "8462-4"): ObsKind.DBP,
    # SNOMED observables UK GP systems use for clinic BP [M]: blood pressure, systolic and
    # diastolic blood pressure, systolic arterial pressure
    (SNOMED, "75367002"): ObsKind.BP_PANEL,
    (SNOMED, "163020007"): ObsKind.BP_PANEL,
    (SNOMED, "271649006"): ObsKind.SBP,
    (SNOMED, "72313002"): ObsKind.SBP,
    (SNOMED, "271650006"): ObsKind.DBP,
    # UK GP "O/E - systolic/diastolic BP reading" (the readings under 163020007 "O/E - blood
    # pressure reading") [M]
    (SNOMED, "163030003"): ObsKind.SBP,
    (SNOMED, "163031004"): ObsKind.DBP,
    # Self-measured (home) means (CardX AverageSMBP; Vitals IG), clinical.md 6.1
    (LOINC, "96607-7"): ObsKind.HOME_PANEL,
    (LOINC, "96608-5"): ObsKind.HOME_SBP,
    (LOINC, "96609-3"): ObsKind.HOME_DBP,
    # UK SNOMED observables (GM-SDE tests/*-blood-pressure), clinical.md 6.6
    (SNOMED, "413606001"): ObsKind.HOME_SBP,
    (SNOMED, "413605002"): ObsKind.HOME_DBP,
    (SNOMED, "314446007"): ObsKind.ABPM_DAY_SBP,
    (SNOMED, "314461008"): ObsKind.ABPM_DAY_DBP,
    (SNOMED, "314449000"): ObsKind.ABPM_24H_SBP,
    (SNOMED, "314462001"): ObsKind.ABPM_24H_DBP,
    (SNOMED, "314445006"): ObsKind.ABPM_NIGHT_SBP,
    (SNOMED, "314460009"): ObsKind.ABPM_NIGHT_DBP,
    # 24-hour ABPM (Vitals IG TwentyFourHourBloodPressure), clinical.md 6.6
    (LOINC, "97844-5"): ObsKind.ABPM_24H_PANEL,
    (LOINC, "8490-5"): ObsKind.ABPM_24H_SBP,
    (LOINC, "8472-3"): ObsKind.ABPM_24H_DBP,
    (LOINC, "8867-4"): ObsKind.HEART_RATE,
    # Labs (eCQM value sets, clinical.md 6.1)
    (LOINC, "2823-3"): ObsKind.POTASSIUM,
    (LOINC, "6298-4"): ObsKind.POTASSIUM,
    (LOINC, "2951-2"): ObsKind.SODIUM,
    (LOINC, "2947-0"): ObsKind.SODIUM,
    (LOINC, "2160-0"): ObsKind.CREATININE,
    (LOINC, "38483-4"): ObsKind.CREATININE,
    (LOINC, "14682-9"): ObsKind.CREATININE,
    **{(LOINC, c): ObsKind.EGFR for c in (
        "98979-8", "98980-6", "62238-1", "69405-9", "33914-3", "77147-7", "76633-7",
        "50044-7", "48642-3", "48643-1", "88293-6", "88294-4")},
    (LOINC, "9318-7"): ObsKind.URINE_ACR,
    (LOINC, "14959-1"): ObsKind.URINE_ACR,
    (LOINC, "32294-1"): ObsKind.URINE_ACR,
    (LOINC, "4548-4"): ObsKind.HBA1C,
    (LOINC, "17856-6"): ObsKind.HBA1C,
    (LOINC, "59261-8"): ObsKind.HBA1C,
    # BMI (US Core bmi profile; Synthea), LVEF (Synthea 10230-1; 8806-2 echo [M])
    (LOINC, "39156-5"): ObsKind.BMI,
    (LOINC, "10230-1"): ObsKind.LVEF,
    (LOINC, "8806-2"): ObsKind.LVEF,
    (LOINC, "82810-3"): ObsKind.PREGNANCY_STATUS,
}

#: Component codes inside BP panels -> systolic (True) or diastolic (False).
BP_COMPONENTS: Final[dict[tuple[str, str], bool]] = {
    (LOINC, "8480-6"): True, (LOINC, "8462-4"): False,
    (LOINC, "96608-5"): True, (LOINC, "96609-3"): False,
    (LOINC, "8490-5"): True, (LOINC, "8472-3"): False,
    (SNOMED, "271649006"): True, (SNOMED, "72313002"): True, (SNOMED, "271650006"): False,
    (SNOMED, "163030003"): True, (SNOMED, "163031004"): False,
    (SNOMED, "413606001"): True, (SNOMED, "413605002"): False,
    (SNOMED, "314446007"): True, (SNOMED, "314461008"): False,
}

#: A BP Observation is out-of-office when its method, category or Vitals-IG
#: MeasurementSetting extension carries one of these codes (SNOMED 264362003 "Home
#: (environment)", Vitals IG examples) or words (method/category text), or when its performer
#: is the patient or a RelatedPerson (Vitals IG SelfMeasuredBloodPressure profile).
MEASUREMENT_SETTING_EXTENSION: Final = (
    "http://hl7.org/fhir/us/vitals/StructureDefinition/MeasurementSettingExt")
HOME_SETTING_CODES: Final = frozenset({(SNOMED, "264362003")})
HOME_WORDS: Final = ("home", "self-measured", "self measured", "hbpm", "smbp")
AMBULATORY_WORDS: Final = ("ambulatory", "abpm")

#: Pregnancy Observation codes (``fhir_mappings/valuesets/pregnancy_observations.toml``):
#: status codes (LOINC 82810-3, 11449-6), their "pregnant" values (SNOMED 77386006, LOINC
#: LA15173-0), hCG tests and expected delivery date codes.
PREGNANCY_OBSERVATIONS: Final = load_pregnancy_observations()
for _codes, _kind in ((PREGNANCY_OBSERVATIONS.status_codes, ObsKind.PREGNANCY_STATUS),
                      (PREGNANCY_OBSERVATIONS.hcg_qualitative_codes, ObsKind.HCG_QUALITATIVE),
                      (PREGNANCY_OBSERVATIONS.hcg_quantitative_codes, ObsKind.HCG_QUANTITATIVE),
                      (PREGNANCY_OBSERVATIONS.delivery_date_codes, ObsKind.DELIVERY_DATE)):
    for _system, _obs_code in _codes:
        OBSERVATION_CODES.setdefault((_system, _obs_code), _kind)
#: The kinds that are evidence of (or against) a current pregnancy.
PREGNANCY_KINDS: Final = frozenset({ObsKind.PREGNANCY_STATUS, ObsKind.HCG_QUALITATIVE,
                                    ObsKind.HCG_QUANTITATIVE, ObsKind.DELIVERY_DATE})

#: Pregnancy status values meaning "pregnant" (US Core pregnancy-status example; GECCO).
PREGNANT_VALUES: Final = PREGNANCY_OBSERVATIONS.pregnant_values


# --------------------------------------------------------------------------- conditions


#: Condition concepts, loaded from the curated value sets shipped as data
#: (``fhir_mappings/valuesets/<fact>.toml``, :mod:`fhir_mappings.valuesets`): SNOMED CT codes,
#: ICD-10 include/exclude prefixes, sources and curation date per concept.
CONDITIONS: Final[tuple[ConditionConcept, ...]] = load_conditions()

CONDITIONS_BY_SNOMED: Final[dict[str, tuple[ConditionConcept, ...]]] = {}
for _concept in CONDITIONS:
    for _code in _concept.snomed:
        CONDITIONS_BY_SNOMED[_code] = (*CONDITIONS_BY_SNOMED.get(_code, ()), _concept)

#: Condition codes that are understood but give no fact (not reported as unknown codes):
#: hypertension itself (clinical.md 6.2: 38341003 older Synthea, 59621000 current; ICD-10 I10).
KNOWN_WITHOUT_FACT_SNOMED: Final = frozenset({"38341003", "59621000"})
KNOWN_WITHOUT_FACT_ICD10: Final = ("I10",)

#: CKD stage (KDIGO G category) named by a code.
CKD_STAGE_BY_SNOMED: Final[dict[str, str]] = {
    "431855005": "G1", "431856006": "G2", "433144002": "G3", "700378005": "G3a",
    "700379002": "G3b", "431857002": "G4", "433146000": "G5", "714152005": "G5",
    "46177005": "G5",
}
CKD_STAGE_BY_ICD10: Final[dict[str, str]] = {
    "N181": "G1", "N182": "G2", "N183": "G3", "N1830": "G3", "N1831": "G3a", "N1832": "G3b",
    "N184": "G4", "N185": "G5", "N186": "G5",
}

#: Condition.clinicalStatus codes that mean current (R4 condition-clinical).
ACTIVE_CLINICAL_STATUS: Final = frozenset({"active", "recurrence", "relapse"})
#: verificationStatus codes that void a record (R4 condition-ver-status / allergy).
VOID_VERIFICATION_STATUS: Final = frozenset({"refuted", "entered-in-error"})


# --------------------------------------------------------------------------- allergies

#: AllergyIntolerance.code meaning an ACE inhibitor (substance or reaction), clinical.md 6.2.
ACE_INHIBITOR_ALLERGY_SNOMED: Final = frozenset({
    "372733002", "293500009", "407564000", "371627004", "609537003"})
#: Reaction manifestations meaning angioedema (clinical.md 6.2, LEGEND-HTN Angioedema.json).
ANGIOEDEMA_SNOMED: Final = frozenset({"41291007", "82966003", "371627004"})
ANGIOEDEMA_WORDS: Final = ("angioedema", "angio-oedema", "angiooedema", "angio-edema",
                           "quincke")
#: Anaphylaxis (SNOMED 39579001 "Anaphylaxis (disorder)" [M]) as a reaction manifestation.
ANAPHYLAXIS_SNOMED: Final = frozenset({"39579001"})
#: Angioedema in plain words: a swelling word and a site of the face or airway in the same
#: manifestation or description ("swelling of lips and tongue", "swollen face").
SWELLING_WORDS: Final = ("swelling", "swollen", "oedema", "edema")
SWELLING_SITES: Final = ("lip", "tongue", "face", "facial", "throat", "mouth", "eyelid",
                         "larynx", "laryngeal", "pharyn")


# --------------------------------------------------------------------------- ethnicity

#: UK Core ethnic category (clinical.md 6.8; UK Core Extension-UKCore-EthnicCategory,
#: CodeSystem UKCore-EthnicCategoryEngland v1.1.1; the retired 2-character UKCore-EthnicCategory
#: codes start with the parent letter; CareConnect STU3 carried the same letters).
UK_ETHNICITY_EXTENSIONS: Final = frozenset({
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
    "https://fhir.nhs.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-EthnicCategory-1",
})
UK_ETHNICITY_SYSTEMS: Final = frozenset({
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory",
    "https://fhir.nhs.uk/CodeSystem/UKCore-EthnicCategoryEngland",
    "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-EthnicCategory-1",
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-EthnicCategory-1",
})
UK_BLACK: Final = frozenset({"M", "N", "P"})
UK_MIXED_BLACK: Final = frozenset({"D", "E"})
UK_SOUTH_ASIAN: Final = frozenset({"H", "J", "K"})
UK_KNOWN: Final = frozenset("ABCDEFGHJKLMNPRS")
UK_UNKNOWN: Final = frozenset({"Z", "99"})

#: US Core race (clinical.md 6.8; US Core us-core-race, CDC Race & Ethnicity 1.0).
US_RACE_EXTENSION: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_BLACK: Final = frozenset({"2054-5"})
#: Detailed Black codes [M] (CDC R&E: Black 2056-0, African American 2058-6, African 2060-2,
#: Jamaican 2072-7, Haitian 2071-9, West Indian 2075-0).
US_BLACK_DETAILED: Final = frozenset({"2056-0", "2058-6", "2060-2", "2072-7", "2071-9",
                                      "2075-0"})
US_ASIAN: Final = "2028-9"
#: Asian Indian, Pakistani, Bangladeshi (task brief; CDC R&E detailed race).
US_SOUTH_ASIAN_DETAILED: Final = frozenset({"2029-7", "2044-4", "2030-5"})
#: OMB categories that are known and neither Black nor Asian.
US_OTHER_KNOWN: Final = frozenset({"1002-5", "2076-8", "2106-3"})
#: Unknown: v3 NullFlavor UNK/ASKU, "Other Race" 2131-1 (not an OMB category) and the
#: Synthea quirk of 2135-2 ("Hispanic or Latino", an *ethnicity*) in race.ombCategory.
US_UNKNOWN: Final = frozenset({"UNK", "ASKU", "2131-1", "2135-2"})
