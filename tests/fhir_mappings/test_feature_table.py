"""The shared feature table and its hash."""

from __future__ import annotations

import dataclasses

from vocabulary.drug_classes import CLASS_ORDER
from vocabulary.feature_table import (
    ALL_FEATURES,
    CHG_SLICE,
    CUR_SLICE,
    MODEL_FEATURE_NAMES,
    MODEL_FEATURES,
    Missing,
    model_feature_hash,
)


def test_names_are_unique_and_regimen_columns_follow_class_order() -> None:
    """Feature names are unique; cur_/chg_ columns sit where the slices say."""
    assert len({f.name for f in ALL_FEATURES}) == len(ALL_FEATURES)
    assert MODEL_FEATURE_NAMES[CUR_SLICE] == tuple(f"cur_{c}" for c in CLASS_ORDER)
    assert MODEL_FEATURE_NAMES[CHG_SLICE] == tuple(f"chg_{c}" for c in CLASS_ORDER)


def test_the_hash_changes_when_a_model_feature_changes_unit_or_policy() -> None:
    """Any change of name, unit or missing policy of a model feature changes the hash."""
    base = model_feature_hash()
    changed_unit = (dataclasses.replace(MODEL_FEATURES[0], unit="months"), *MODEL_FEATURES[1:])
    changed_policy = (
        dataclasses.replace(MODEL_FEATURES[0], missing=Missing.UNKNOWN_AS_NAN),
        *MODEL_FEATURES[1:],
    )
    reordered = MODEL_FEATURES[1:] + MODEL_FEATURES[:1]

    assert base == model_feature_hash()
    assert len({base, model_feature_hash(changed_unit), model_feature_hash(changed_policy),
                model_feature_hash(reordered)}) == 4


def test_age_and_clinic_systolic_are_required() -> None:
    """The model cannot score a patient without age and a clinic systolic reading."""
    required = {f.name for f in ALL_FEATURES if f.missing is Missing.REQUIRED}

    assert required == {"age", "sbp_clinic"}
