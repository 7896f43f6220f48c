"""The feature table: one definition of every input, shared by training and serving.

Each row of the model's input is a (patient, treatment option) pair: the patient's features
followed by the regimen before the option (``cur_<class>``, dose multiples) and the dose change
the option makes (``chg_<class>``; positive to start, add or titrate, negative to stop in a
switch). The FHIR mapping produces the patient part; ``models.options`` produces the regimen
part. The model's manifest stores :func:`model_feature_hash`, and the scorer refuses artifacts
whose hash differs from the code's, so training and serving cannot silently disagree.

Missing-value policy, per feature:

* ``required``: the row cannot be scored without it; the assessment says "cannot assess".
* ``unknown_as_nan``: unknown values are passed to the model as NaN (LightGBM learns a
  direction for missing values; the training cohort contains missing values at realistic
  rates), and the guideline layer treats them as findings, never as normal values.
* ``absent_as_zero``: a coded condition or drug that is not recorded is taken as absent (0);
  this is the usual problem-list semantics and is stated in the provenance.

Rule-only facts are in the table too (role ``rule``) so that the features document has one
schema, but they are not model inputs and are not part of the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Final

from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER


class Kind(StrEnum):
    """Value type of a feature."""

    CONTINUOUS = "continuous"
    BINARY = "binary"
    DOSE = "dose"


class Missing(StrEnum):
    """What an unknown value means (see module docstring)."""

    REQUIRED = "required"
    UNKNOWN_AS_NAN = "unknown_as_nan"
    ABSENT_AS_ZERO = "absent_as_zero"


class Role(StrEnum):
    """Whether the model reads the feature or only the guideline rules do."""

    MODEL = "model"
    RULE = "rule"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature: its name, type, unit, missing-value policy, plausible range and label."""

    name: str
    kind: Kind
    unit: str
    missing: Missing
    role: Role
    label: str
    low: float
    high: float


def _c(name: str, unit: str, label: str, low: float, high: float,
       missing: Missing = Missing.UNKNOWN_AS_NAN, role: Role = Role.MODEL) -> FeatureSpec:
    return FeatureSpec(name, Kind.CONTINUOUS, unit, missing, role, label, low, high)


def _b(name: str, label: str, missing: Missing = Missing.ABSENT_AS_ZERO,
       role: Role = Role.MODEL) -> FeatureSpec:
    return FeatureSpec(name, Kind.BINARY, "", missing, role, label, 0.0, 1.0)


PATIENT_FEATURES: Final[tuple[FeatureSpec, ...]] = (
    # (from 0: a child's age is known, and the assessment says it is for adults, not "unknown")
    _c("age", "years", "age", 0, 115, Missing.REQUIRED),
    _b("sex_female", "female sex", Missing.UNKNOWN_AS_NAN),
    _b("ethnicity_black", "Black African or African-Caribbean family origin",
       Missing.UNKNOWN_AS_NAN),
    _b("ethnicity_south_asian", "South Asian family origin", Missing.UNKNOWN_AS_NAN),
    _c("bmi", "kg/m2", "body-mass index", 12, 80),
    _c("sbp_clinic", "mmHg", "clinic systolic BP", 70, 260, Missing.REQUIRED),
    _c("dbp_clinic", "mmHg", "clinic diastolic BP", 30, 160),
    _c("sbp_home", "mmHg", "home or ambulatory daytime systolic BP", 70, 260),
    _c("dbp_home", "mmHg", "home or ambulatory daytime diastolic BP", 30, 160, role=Role.RULE),
    _c("egfr", "mL/min/1.73m2", "eGFR", 2, 200),
    _c("potassium", "mmol/L", "serum potassium", 2.0, 8.0),
    _c("sodium", "mmol/L", "serum sodium", 110, 170),
    _c("urine_acr", "mg/mmol", "urine albumin:creatinine ratio", 0, 3000),
    _c("hba1c", "mmol/mol", "HbA1c", 15, 200),
    _b("diabetes_t2", "type 2 diabetes"),
    _b("ckd", "chronic kidney disease"),
    _b("heart_failure", "heart failure"),
    _b("cvd", "established cardiovascular disease"),
    # Rule-only facts: read by the guideline layer, not by the model.
    _c("heart_rate", "beats/min", "resting heart rate", 20, 250, role=Role.RULE),
    _b("hfref", "heart failure with reduced ejection fraction", role=Role.RULE),
    _b("asthma", "asthma", role=Role.RULE),
    _b("copd", "chronic obstructive pulmonary disease", role=Role.RULE),
    _b("gout", "gout", role=Role.RULE),
    _b("pregnancy", "current pregnancy", role=Role.RULE),
    _b("breastfeeding", "breastfeeding or expressing milk", role=Role.RULE),
    _b("dialysis", "on renal dialysis", role=Role.RULE),
    _c("potassium_previous", "mmol/L", "the serum potassium before the latest", 2.0, 8.0,
       role=Role.RULE),
    _b("angioedema_history", "history of angioedema", role=Role.RULE),
    _b("heart_block", "second- or third-degree heart block", role=Role.RULE),
    _b("orthostatic_hypotension", "orthostatic (postural) hypotension", role=Role.RULE),
    _b("ace_inhibitor_intolerance", "ACE-inhibitor intolerance (cough)", role=Role.RULE),
    _b("ace_inhibitor_hypersensitivity", "serious hypersensitivity reaction to an ACE inhibitor "
       "(anaphylaxis)", role=Role.RULE),
    _b("frailty", "moderate or severe frailty", role=Role.RULE),
    _b("nsaid", "current NSAID", role=Role.RULE),
    _b("potassium_supplement", "current potassium supplement or K-sparing drug",
       role=Role.RULE),
    _b("lithium", "current lithium", role=Role.RULE),
    _b("aortic_stenosis", "aortic stenosis", role=Role.RULE),
    _b("renal_artery_stenosis", "renal artery stenosis", role=Role.RULE),
    _b("sick_sinus", "sick sinus syndrome", role=Role.RULE),
    _b("acute_coronary", "acute myocardial infarction or unstable angina on record (dated "
       "event)", role=Role.RULE),
    _b("non_dhp_ccb", "current verapamil or diltiazem", role=Role.RULE),
    _b("aliskiren", "current aliskiren", role=Role.RULE),
    _b("home_bp_series", "home/ambulatory BP from a monitoring series", role=Role.RULE),
    _b("sacubitril_valsartan", "current sacubitril/valsartan", role=Role.RULE),
    _b("other_antihypertensive", "current other antihypertensive (hydralazine, methyldopa, "
       "moxonidine, clonidine, minoxidil)", role=Role.RULE),
    _b("airways_therapy", "current inhaled or oral asthma/COPD therapy", role=Role.RULE),
)

REGIMEN_FEATURES: Final[tuple[FeatureSpec, ...]] = tuple(
    FeatureSpec(f"cur_{c}", Kind.DOSE, "x standard dose", Missing.ABSENT_AS_ZERO, Role.MODEL,
                f"current {CLASS_INFO[c].short} dose", 0.0, 2.0)
    for c in CLASS_ORDER
) + tuple(
    FeatureSpec(f"chg_{c}", Kind.DOSE, "x standard dose", Missing.ABSENT_AS_ZERO, Role.MODEL,
                f"option's change in {CLASS_INFO[c].short} dose", -2.0, 2.0)
    for c in CLASS_ORDER
)

ALL_FEATURES: Final[tuple[FeatureSpec, ...]] = PATIENT_FEATURES + REGIMEN_FEATURES
FEATURES_BY_NAME: Final[dict[str, FeatureSpec]] = {f.name: f for f in ALL_FEATURES}

#: Ordered model inputs (the ONNX input's columns).
MODEL_FEATURES: Final[tuple[FeatureSpec, ...]] = tuple(
    f for f in ALL_FEATURES if f.role is Role.MODEL
)
MODEL_FEATURE_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in MODEL_FEATURES)
PATIENT_MODEL_FEATURE_NAMES: Final[tuple[str, ...]] = tuple(
    f.name for f in PATIENT_FEATURES if f.role is Role.MODEL
)
RULE_FEATURE_NAMES: Final[tuple[str, ...]] = tuple(
    f.name for f in PATIENT_FEATURES if f.role is Role.RULE
)
N_PATIENT_MODEL: Final[int] = len(PATIENT_MODEL_FEATURE_NAMES)
CUR_SLICE: Final[slice] = slice(N_PATIENT_MODEL, N_PATIENT_MODEL + len(CLASS_ORDER))
CHG_SLICE: Final[slice] = slice(N_PATIENT_MODEL + len(CLASS_ORDER),
                                N_PATIENT_MODEL + 2 * len(CLASS_ORDER))


def model_feature_hash(features: tuple[FeatureSpec, ...] = MODEL_FEATURES) -> str:
    """sha256 of the ordered model feature table (names, kinds, units, missing policy)."""
    doc = [
        {k: v for k, v in asdict(f).items() if k in ("name", "kind", "unit", "missing")}
        for f in features
    ]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
