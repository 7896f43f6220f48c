"""Assessment: ranking among safe options, statuses, cannot-assess, and safety properties."""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings.features import FeatureVector
from models.assessment import assess
from models.assessment_document import assessment_document
from models.explainer import Explainer
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import ESC, NICE
from models.guideline.safety import after, increased, option_findings, started
from models.options import valid_options
from models.scorer import Scorer
from tests.factories import patient
from tests.strategies import patients
from vocabulary.drug_classes import DrugClass as D

SLOW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_invariants(a_doc: dict[str, object]) -> None:
    """The guideline-first ranking (models/ranking.py): contraindicated and not-lowering
    options unranked; the step's options before those beyond it; within a tier no later
    option is better than an earlier one by the margin or more."""
    options = a_doc["options"]
    assert isinstance(options, list)
    ranked = [o for o in options if o["rank"] is not None]
    assert [o["rank"] for o in ranked] == list(range(1, len(ranked) + 1))
    for o in options:
        blocked = any(f["severity"] == "block" for f in o["findings"])
        assert blocked == (o["status"] == "contraindicated")
        not_lowering = not blocked and o["expected_effect"] >= 0
        assert not_lowering == (o["status"] == "not-lowering")
        assert (blocked or not_lowering) == (o["rank"] is None)
        assert not (blocked and o["id"] in a_doc["guideline_default"])
        if o["status"] == "recommended":
            assert o["in_step"]
            assert o["rank"] == 1
        if o["status"] == "beyond-step":
            assert not o["in_step"]
    steps = [o["in_step"] for o in ranked]
    assert steps == sorted(steps, reverse=True)  # the step's options first
    margin = NICE.tie_margin_mmhg if a_doc["guideline"] == "nice" else ESC.tie_margin_mmhg

    def key(o: dict[str, object]) -> tuple[bool, float]:
        handicap = margin * ((o["status"] == "caution") + (not o["guideline_preferred"]))
        return (not o["in_step"], float(o["expected_effect"]) + handicap)  # type: ignore[arg-type]

    keys = [key(o) for o in ranked]
    assert all(k1[0] < k2[0] or (k1[0] == k2[0] and k1[1] <= k2[1] + 0.01)
               for k1, k2 in pairwise(keys))
    if ranked:
        first = ranked[0]
        assert first["status"] in ("recommended", "caution", "beyond-step")
        assert (a_doc["choice_reason"] is None) == first["guideline_preferred"]


def test_a_blocked_option_with_the_best_prediction_is_never_first(scorer: Scorer,
                                                                    explainer: Explainer) -> None:
    """Asthma blocks the beta-blocker even where the model would rank it high."""
    p = patient({D.ACE_INHIBITOR: 1.0, D.CCB: 1.0, D.THIAZIDE_LIKE: 1.0}, asthma=1,
                potassium=4.8)
    a = assess(p, scorer, explainer)
    doc = assessment_document(a)

    bb = next(o for o in a.options if o.option.id == "opt-add-beta_blocker")
    assert bb.rank is None
    assert bb.status == "contraindicated"
    assert a.first is not None
    assert a.first.option.id != "opt-add-beta_blocker"
    assert doc["guideline_default"] == ["opt-add-alpha_blocker"]
    _check_invariants(doc)


def test_the_document_has_the_design_fields(scorer: Scorer, explainer: Explainer) -> None:
    """DESIGN.md section 9 fields, with drivers that add up to the expected effect from their
    stated baseline (the mean over the ranked options), but for the features that change no
    drug's effect in the simulated truth and contributions under 0.05 mmHg, not shown."""
    a = assess(patient({D.ACE_INHIBITOR: 1.0}), scorer, explainer, n_drivers=50)
    doc = assessment_document(a)

    assert doc["status"] == "assessed"
    assert doc["target"] == {"systolic": 140.0, "diastolic": 90.0, "setting": "clinic",
                             "citation": "NICE NG136 1.4.20"}
    assert doc["current_classes"] == ["ace_inhibitor"]
    assert doc["model"]["provider"] == "CPUExecutionProvider"
    first = doc["options"][0]
    assert {"id", "label", "action", "classes_after", "rank", "status", "predicted_sbp_change",
            "interval", "interval_coverage", "p_target", "findings", "drivers"} <= set(first)
    assert {"expected_effect", "effect_interval", "p_target_shown"} <= set(first)
    assert doc["drivers_baseline"] is not None
    total = doc["drivers_base_value"] + sum(d["contribution"] for d in first["drivers"])
    assert total == pytest.approx(first["expected_effect"], abs=0.2)


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"deceased": True}, "deceased"),
    ({"age": 17}, "adults"),
    ({"sbp_clinic": None}, "no clinic blood pressure"),
    ({"days_since_bp": 400}, "400 days old"),
    ({"age": None}, "age unknown"),
])
def test_cannot_assess_says_why(scorer: Scorer, explainer: Explainer,
                                overrides: dict[str, object], reason: str) -> None:
    """Too little or unusable data gives cannot_assess with the reason, and no options."""
    kwargs = {k: v for k, v in overrides.items() if k in ("deceased", "days_since_bp")}
    feats = {k: v for k, v in overrides.items() if k not in kwargs}
    a = assess(patient(**kwargs, **feats), scorer, explainer)  # type: ignore[arg-type]

    assert a.status == "cannot_assess"
    assert any(reason in r for r in a.reasons)
    assert a.options == ()


def test_esc_profile_changes_target_and_default(scorer: Scorer, explainer: Explainer) -> None:
    """The same naive 60-year-old: NICE target 140 and CCB; ESC target 130 and an SPC."""
    p = patient()
    nice_doc = assessment_document(assess(p, scorer, explainer, NICE))
    esc_doc = assessment_document(assess(p, scorer, explainer, ESC))

    assert (nice_doc["target"]["systolic"], esc_doc["target"]["systolic"]) == (140, 130)
    assert nice_doc["guideline_default"] == ["opt-start-ccb"]
    assert all(i.startswith("opt-combination-") for i in esc_doc["guideline_default"])


@SLOW
@given(patients())
def test_no_generated_patient_ever_gets_a_blocked_option_first(
        scorer: Scorer, explainer: Explainer, p: FeatureVector) -> None:
    """Whatever the patient, blocked options are unranked and the first option is not blocked."""
    for profile in (NICE, ESC):
        a = assess(p, scorer, explainer, profile)
        if a.status == "assessed":
            assert a.first is None or not a.first.blocked
            _check_invariants(assessment_document(a))


CONDITIONS = ["pregnancy", "angioedema_history", "asthma", "copd", "gout", "heart_block",
              "orthostatic_hypotension", "aortic_stenosis", "lithium", "potassium_supplement",
              "non_dhp_ccb", "nsaid", "ace_inhibitor_intolerance", "hfref",
              "renal_artery_stenosis", "sick_sinus", "aliskiren", "airways_therapy",
              "breastfeeding", "dialysis", "other_antihypertensive",
              "ace_inhibitor_hypersensitivity", "sacubitril_valsartan"]


@SLOW
@given(patients(), st.sampled_from(CONDITIONS))
def test_adding_a_contraindicating_condition_never_promotes_an_option(
        scorer: Scorer, explainer: Explainer, p: FeatureVector, condition: str) -> None:
    """With the condition added, no option's severity falls, no blocked option is unblocked, an
    option that gains a finding is at best a caution, and no option moves up among the options
    that stay available (ranks of others may close up when an option above is blocked)."""
    without = p if not p.flag(condition) else dataclasses.replace(
        p, values={**p.values, condition: 0.0})
    with_ = dataclasses.replace(without, values={**without.values, condition: 1.0})
    a0 = {o.option.id: o for o in assess(without, scorer, explainer).options}
    a1 = {o.option.id: o for o in assess(with_, scorer, explainer).options}

    for oid, o1 in a1.items():
        o0 = a0[oid]
        s0 = max_severity(o0.findings) or Severity.INFO
        s1 = max_severity(o1.findings) or Severity.INFO
        assert s1 >= s0
        if o0.blocked:
            assert o1.blocked
        gained = {f.code for f in o1.findings if f.severity > Severity.INFO} - {
            f.code for f in o0.findings}
        if gained:
            assert o1.status in ("caution", "contraindicated")
    # Options that gained nothing keep their order among themselves; one that gained a
    # finding never moves up past any of them.
    survivors = [i for i in a1 if a1[i].rank is not None and a0[i].rank is not None]
    gained_any = {i for i in survivors if {f.code for f in a1[i].findings}
                  - {f.code for f in a0[i].findings}}
    same = [i for i in survivors if i not in gained_any]
    assert sorted(same, key=lambda i: a0[i].rank or 0) == sorted(same,
                                                                 key=lambda i: a1[i].rank or 0)
    for g in gained_any:
        for i in same:
            if (a0[g].rank or 0) > (a0[i].rank or 0):
                assert (a1[g].rank or 0) > (a1[i].rank or 0)


LABS = [
    # (lab, worse direction, options it applies to)
    ("potassium", +1, lambda o: bool(increased(o) & {D.ACE_INHIBITOR, D.ARB,
                                                     D.SPIRONOLACTONE})
     and D.THIAZIDE_LIKE not in started(o)),
    # (not with a K-raising class in the regimen after: K+ >= 6.0 says stop it)
    ("potassium", -1, lambda o: D.THIAZIDE_LIKE in started(o)
     and not after(o) & {D.ACE_INHIBITOR, D.ARB, D.SPIRONOLACTONE}),
    ("egfr", -1, lambda o: True),
    ("sodium", -1, lambda o: True),
    ("heart_rate", -1, lambda o: True),
]


@settings(max_examples=200, deadline=None)
@given(patients(), st.sampled_from(range(len(LABS))), st.floats(0, 1), st.floats(0, 1))
def test_a_worse_lab_value_never_relaxes_a_finding(p: FeatureVector, lab_i: int, u: float,
                                                   v: float) -> None:
    """Moving a lab value in its harmful direction never lowers any option's severity."""
    lab, direction, applies = LABS[lab_i]
    lo, hi = {"potassium": (2.8, 6.8), "egfr": (5, 130), "sodium": (120, 150),
              "heart_rate": (35, 130)}[lab]
    a, b = sorted((lo + u * (hi - lo), lo + v * (hi - lo)))
    better, worse = (a, b) if direction > 0 else (b, a)
    p_better = dataclasses.replace(p, values={**p.values, lab: better})
    p_worse = dataclasses.replace(p, values={**p.values, lab: worse})

    for o in valid_options(p.regimen):
        if applies(o):
            s_b = max_severity(option_findings(p_better, o)) or Severity.INFO
            s_w = max_severity(option_findings(p_worse, o)) or Severity.INFO
            assert s_w >= s_b, (o.id, lab, better, worse)
