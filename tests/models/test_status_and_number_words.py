"""What a clinician reads of an option's status and of small numbers (review of issue 15):
a caution on an option beyond the guideline's step says both (the card's table reads
the same ``status_words``: tests/service/test_cds_hooks.py), and a value that rounds to zero
is never written "-0.0"."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from models.assessment import OptionStatus
from models.assessment_text import render_text
from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.pipeline import Pipeline
from models.scorer import Scorer
from models.uncertainty_words import effect_short, effect_words

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patient-view.json"


def test_a_value_that_rounds_to_zero_is_not_negative_zero() -> None:
    words = effect_words(-6.4, (-6.44, -0.04), 0.8)
    short = effect_short(-0.04, (-3.0, 0.02), 0.8)

    assert "-0.0" not in words
    assert "-0.0" not in short
    assert words.endswith("-6.4 to 0.0)")
    assert short.startswith("0.0 (80%: -3.0 to 0.0)")


def test_a_caution_beyond_the_step_says_both(scorer: Scorer,
                                                               explainer: Explainer) -> None:
    pipeline = Pipeline(scorer, explainer, NICE, explain_top=None)
    a = pipeline.assess_fhir(json.loads(EXAMPLE.read_text())).assessment
    beyond = [o for o in a.options if o.rank is not None and not o.in_step]
    assert beyond, "the example patient has ranked options beyond the step"
    o = replace(beyond[0], status=OptionStatus.CAUTION)
    a = replace(a, options=tuple(o if x.option.id == o.option.id else x for x in a.options))

    assert o.status_words == "caution, beyond the guideline's step"
    assert "CAUTION, BEYOND THE GUIDELINE'S STEP" in render_text(a)
