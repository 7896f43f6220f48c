"""Explanations and uncertainty a clinician can read (issue 15 items 3-4; hazard H-31).

The drivers explain the expected effect against a stated baseline, in words that name drugs,
never "the option itself" or a regimen the patient does not take; the features the simulated
truth does not use are never shown; the first option's difference from the guideline's
choice is decomposed exactly; the chance of a reading below target is shown only where it
means something.
"""

from __future__ import annotations

import numpy as np
import pytest

from fhir_mappings.features import FeatureVector
from models.assessment import Assessment, assess
from models.driver_words import NO_EFFECT_FEATURES, SHOWN_FEATURES, feature_phrase
from models.explainer import Explainer
from models.model_rows import assemble
from models.options import dose_matrices, valid_options
from models.scorer import Scorer
from models.training.simulator import simulate_cohort
from models.uncertainty_words import p_target_meaningful, reading_words
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D
from vocabulary.feature_table import PATIENT_MODEL_FEATURE_NAMES


def _comparison_patient() -> FeatureVector:
    """A simulated patient (internal site, seed 3, no. 97) whose first option (raising
    candesartan) is not the guideline's choice (spironolactone, which needs a caution)."""
    return patient({D.ARB: 0.5, D.CCB: 1.0, D.THIAZIDE_LIKE: 1.0}, age=31, bmi=23.9,
                   sbp_clinic=146.5, dbp_clinic=83.1, sbp_home=None, dbp_home=None, egfr=117.2,
                   potassium=3.8, sodium=140.8, urine_acr=0.3, hba1c=33.6, heart_rate=None)


def _all_words(a: Assessment) -> list[str]:
    drivers = [d for o in a.options for d in o.drivers]
    if a.comparison is not None:
        drivers += a.comparison.drivers
    return [f"{d.label} | {d.words}" for d in drivers]


PATIENTS = {
    "untreated": patient(),
    "untreated, 75, Black family origin": patient(age=75, ethnicity_black=1),
    "on ramipril": patient({D.ACE_INHIBITOR: 1.0}),
    "on A+C+D": patient({D.ACE_INHIBITOR: 1.0, D.CCB: 1.0, D.THIAZIDE_LIKE: 1.0}),
    "comparison": _comparison_patient(),
}


@pytest.mark.parametrize("name", list(PATIENTS))
def test_no_driver_is_the_option_itself_or_the_current_regimen(
        scorer: Scorer, explainer: Explainer, name: str) -> None:
    a = assess(PATIENTS[name], scorer, explainer)
    words = _all_words(a)
    assert words, "every assessed patient here has drivers"
    for w in words:
        assert "option itself" not in w
        assert "current regimen" not in w
    assert a.drivers_baseline is not None
    assert "average expected effect" in a.drivers_baseline


def test_an_untreated_patient_has_no_driver_of_a_regimen_taken(scorer: Scorer,
                                                             explainer: Explainer) -> None:
    a = assess(patient(), scorer, explainer)
    current = [d for o in a.options for d in o.drivers if d.feature == "current_drugs"]
    assert current, "the untreated regimen does contribute for this patient"
    for d in current:
        assert d.label == "on no blood-pressure drug yet"
        assert "already taking" not in d.words


def test_a_treated_patients_drugs_are_named_as_drugs(scorer: Scorer,
                                                    explainer: Explainer) -> None:
    p = patient({D.ACE_INHIBITOR: 1.0})
    p = FeatureVector(p.as_of, dict(p.values), p.regimen, False, p.days_since_bp,
                      current_drugs={D.ACE_INHIBITOR: ("ramipril", 5.0)})
    a = assess(p, scorer, explainer)
    current = {d.label for o in a.options for d in o.drivers if d.feature == "current_drugs"}
    assert current == {"already taking ramipril 5 mg"}
    changes = {d.label for o in a.options for d in o.drivers if d.feature == "drug_change"}
    assert "adding amlodipine" in changes
    assert not any("_" in c or " x1" in c for c in changes)  # no internal ids


def test_the_difference_drivers_add_up_to_the_served_difference(
        scorer: Scorer, explainer: Explainer) -> None:
    """phi(first) - phi(choice) sums to effect(first) - effect(choice) as served (ONNX):
    fails if the drivers explained another output than the expected effect."""
    p = _comparison_patient()
    a = assess(p, scorer, explainer)
    c = a.comparison
    assert c is not None
    assert a.first is not None
    assert c.first == a.first.option.id
    assert c.choice == "opt-add-spironolactone"
    assert c.first == "opt-titrate-arb"
    options = valid_options(p.regimen)
    x = assemble(p.model_vector(), *dose_matrices(options))
    served = dict(zip((o.id for o in options), scorer.score(x).effect_change.tolist(),
                      strict=True))
    assert c.difference == pytest.approx(served[c.first] - served[c.choice], abs=1e-3)
    assert sum(d.contribution for d in c.drivers) == pytest.approx(c.difference, abs=1e-3)
    assert c.drivers[-1].feature == "other_factors"
    assert "guideline's choice" in c.summary
    assert any("favours" in d.words for d in c.drivers)


def test_no_comparison_when_the_first_option_is_the_guidelines_choice(
        scorer: Scorer, explainer: Explainer) -> None:
    a = assess(patient(), scorer, explainer)
    assert a.first is not None
    assert a.first.guideline_preferred
    assert a.comparison is None


def test_option_drivers_are_measured_against_the_patients_mean(
        scorer: Scorer, explainer: Explainer) -> None:
    a = assess(patient({D.ACE_INHIBITOR: 1.0}), scorer, explainer, n_drivers=50)
    ranked = [o for o in a.options if o.rank is not None]
    assert a.drivers_base_value is not None
    assert a.drivers_base_value == pytest.approx(
        float(np.mean([o.expected_effect for o in ranked])), abs=0.01)
    for o in ranked:
        total = a.drivers_base_value + sum(d.contribution for d in o.drivers)
        # only the no-effect features and contributions under 0.05 mmHg are left out
        assert total == pytest.approx(o.expected_effect, abs=0.3)


def test_features_without_effect_in_the_simulated_truth_are_never_drivers(
        scorer: Scorer, explainer: Explainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over simulated patients, no driver (per option or of the comparison) names BMI,
    HbA1c, diabetes ... (H-31), even with no size threshold on what is shown."""
    monkeypatch.setattr("models.assessment.MIN_DRIVER_MMHG", 0.0)
    cohort = simulate_cohort(60, "internal", 11)
    from evaluation.cohort import feature_vector
    seen: set[str] = set()
    for i in range(len(cohort)):
        a = assess(feature_vector(cohort.features[i], cohort.current_doses[i]), scorer,
                   explainer, n_drivers=50)
        drivers = [d for o in a.options for d in o.drivers] + list(
            a.comparison.drivers if a.comparison else ())
        seen |= {d.feature for d in drivers}
    assert not seen & NO_EFFECT_FEATURES
    assert seen >= {"drug_change", "current_drugs", "age"}


def test_no_effect_features_carry_a_negligible_share_of_the_attributions(
        scorer: Scorer, explainer: Explainer) -> None:
    """The measured figure behind dropping them (models/artifacts/MODEL_CARD.md; the full
    measurement: bench/bench_driver_shares.py): under 1% of the mean |SHAP| of the expected
    effect, within each patient's options."""
    from evaluation.cohort import feature_vector
    cohort = simulate_cohort(150, "internal", 5)
    cols = [PATIENT_MODEL_FEATURE_NAMES.index(n) for n in NO_EFFECT_FEATURES]
    total, no_effect = 0.0, 0.0
    for i in range(len(cohort)):
        p = feature_vector(cohort.features[i], cohort.current_doses[i])
        x = assemble(p.model_vector(), *dose_matrices(valid_options(p.regimen)))
        phi = explainer.explain(x).contributions
        centred = np.abs(phi - phi.mean(axis=0)).mean(axis=0)
        total += float(centred.sum())
        no_effect += float(centred[cols].sum())
    assert no_effect / total < 0.01


def test_every_shown_feature_has_a_phrase_and_no_effect_ones_have_none() -> None:
    for name in SHOWN_FEATURES:
        assert feature_phrase(name, frozenset({D.CCB}))
    for name in NO_EFFECT_FEATURES:
        with pytest.raises(ValueError, match="no drug's effect"):
            feature_phrase(name, frozenset())
    assert "calcium-channel blockers lower BP more in older people" in feature_phrase(
        "age", frozenset({D.CCB}))


def test_p_target_is_hidden_when_clinic_systolic_is_already_below_target(
        scorer: Scorer, explainer: Explainer) -> None:
    """136/95 on ramipril: options are ranked (the diastolic is above target) but the chance
    of a systolic reading below 140 answers no question here."""
    a = assess(patient({D.ACE_INHIBITOR: 1.0}, sbp_clinic=136, dbp_clinic=95), scorer,
               explainer)
    assert [o for o in a.options if o.rank is not None]
    assert not any(o.p_target_shown for o in a.options)


def test_p_target_is_shown_only_for_ranked_options_above_target(
        scorer: Scorer, explainer: Explainer) -> None:
    a = assess(patient({D.ACE_INHIBITOR: 1.0}, asthma=1), scorer, explainer)
    for o in a.options:
        assert o.p_target_shown == (o.rank is not None)
    assert any(o.rank is None for o in a.options)
    assert a.target is not None
    assert not p_target_meaningful(True, a.target.systolic - 0.5, a.target)
    assert p_target_meaningful(True, a.target.systolic, a.target)
    assert not p_target_meaningful(False, 170.0, a.target)


def test_the_reading_range_is_worded_as_one_reading() -> None:
    words = reading_words((-30.3, 9.9), 0.8)
    assert words == ("one clinic reading at 12 weeks: 80% between -30 and +10 mmHg from "
                     "today's reading")


def _simulated_assessments(scorer: Scorer, explainer: Explainer, n: int, seed: int
                           ) -> list[Assessment]:
    from evaluation.cohort import feature_vector
    cohort = simulate_cohort(n, "internal", seed)
    return [assess(feature_vector(cohort.features[i], cohort.current_doses[i]), scorer,
                   explainer, n_drivers=50) for i in range(len(cohort))]


def test_no_reason_contradicts_its_direction_word(
        scorer: Scorer, explainer: Explainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review item 4: "clinic systolic BP 162: less lowering (a higher usual BP gives a larger
    fall ...)" said the opposite of its own reason. Over simulated patients and the hand-made
    ones, a BP reason of a larger fall goes only with more lowering, of a smaller fall only
    with less, and an age or family-origin reason naming one side's classes agrees with the
    patient's value and the direction."""
    from models.driver_words import _PLURAL
    monkeypatch.setattr("models.assessment.MIN_DRIVER_MMHG", 0.0)
    checked = 0
    for a in _simulated_assessments(scorer, explainer, 60, 23) + [
            assess(p, scorer, explainer, n_drivers=50) for p in PATIENTS.values()]:
        for o in a.options:
            for d in o.drivers:
                less = "less lowering" in d.words
                assert less != ("more lowering" in d.words), d.words
                if d.feature in ("sbp_clinic", "dbp_clinic", "sbp_home"):
                    checked += 1
                    assert not (less and "larger fall" in d.words), d.words
                    assert not (not less and "smaller fall" in d.words), d.words
                if d.feature == "age" and d.value is not None:
                    old = d.value >= 60
                    for c, name in _PLURAL.items():
                        for clause, favoured_old in ((f"{name} lower BP more in older", True),
                                                     (f"{name} lower BP more in younger",
                                                      False)):
                            if clause in d.words and c in o.option.increased_set:
                                # this option's class gains (or loses) from this age
                                assert (old == favoured_old) != less, (c, d.words)
    assert checked


def test_an_untreated_patient_is_never_told_of_a_further_drug(
        scorer: Scorer, explainer: Explainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review item 5: "on no blood-pressure drug yet: ... (what a further drug adds depends on
    what is taken)"; there is no further drug."""
    monkeypatch.setattr("models.assessment.MIN_DRIVER_MMHG", 0.0)
    untreated = [assess(p, scorer, explainer, n_drivers=50) for p in (
        patient(), patient(age=75, ethnicity_black=1), patient(age=40, sbp_clinic=170))]
    untreated += [a for a in _simulated_assessments(scorer, explainer, 40, 29)
                  if not a.current_regimen]
    seen = 0
    for a in untreated:
        drivers = [d for o in a.options for d in o.drivers] + list(
            a.comparison.drivers if a.comparison else ())
        for d in drivers:
            assert "further drug" not in d.words, d.words
            seen += d.feature == "current_drugs"
    assert seen


def test_an_age_reason_names_only_the_options_classes_that_depend_on_age(
        scorer: Scorer, explainer: Explainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review item 6: doxazosin's age driver listed every class's age effect although the
    simulator gives the alpha-blocker none. An option driver's age or family-origin reason
    names no class the option does not change, and never claims one for an alpha-blocker."""
    from models.driver_words import _PLURAL
    monkeypatch.setattr("models.assessment.MIN_DRIVER_MMHG", 0.0)
    a = assess(patient({D.ACE_INHIBITOR: 1.0, D.CCB: 1.0}, age=69), scorer, explainer,
               n_drivers=50)
    alpha = [d for o in a.options if D.ALPHA_BLOCKER in o.option.increased_set
             for d in o.drivers if d.feature == "age"]
    assert alpha, "the alpha-blocker option has an age driver here"
    for d in alpha:
        assert "relative to the other options" in d.words
        assert "lower BP more" not in d.words
    for b in [a, *_simulated_assessments(scorer, explainer, 40, 31)]:
        for o in b.options:
            for d in o.drivers:
                if d.feature not in ("age", "ethnicity_black"):
                    continue
                for c, name in _PLURAL.items():
                    if f"{name} lower" in d.words or f"{name} lowers" in d.words:
                        assert c in o.option.increased_set, (o.option.id, d.words)
                        assert c is not D.ALPHA_BLOCKER
