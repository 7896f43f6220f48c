"""The panel's HTML as a clinician reads it (issue 15 item 5): no internal ids, options grouped
(recommended first, beyond-step and not-offered apart), every driver bar on one scale with an
axis, direction in words, BP with its date against the target, data missing in words, the
banner, the rationale hook, ordered headings and table headers. Browser checks (axe, 400 px,
keyboard) are in test_panel_browser.py."""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import pairwise

import pytest

from models.assessment import (
    Assessment,
    AssessmentStatus,
    ChoiceComparison,
    Driver,
    OptionStatus,
)
from models.explainer import Explainer
from models.scorer import Scorer
from service.panel import render_panel
from service.panel_chart import Bar, Scale
from service.panel_words import plain
from tests.service import panel_cases as cases


@pytest.fixture(scope="module")
def example(scorer: Scorer, explainer: Explainer) -> tuple[Assessment, str]:
    a, fv = cases.fhir_example(scorer, explainer)
    return a, render_panel(a, features=fv)


@pytest.fixture(scope="module")
def groups(scorer: Scorer, explainer: Explainer) -> tuple[Assessment, str]:
    a = cases.every_group(scorer, explainer)
    return a, render_panel(a)


def test_no_internal_id_reaches_the_clinician(scorer: Scorer, explainer: Explainer,
                                              example: tuple[Assessment, str],
                                              groups: tuple[Assessment, str]) -> None:
    """Assessed, every group, pathway, cannot-assess (with ids planted in the data-quality
    text, the provenance notes and the reasons by the earlier stages): none visible."""
    pages = {"example": example[1], "groups": groups[1],
             "pathway": render_panel(cases.pathway(scorer, explainer)),
             "cannot": render_panel(cases.cannot_assess(scorer, explainer))}

    found = {k: cases.internal_ids(p) for k, p in pages.items()}

    assert found == {k: [] for k in pages}
    assert "data-option='opt-" in pages["groups"]  # the ids stay in data-* for tooling


def test_the_words_replace_ids_with_labels() -> None:
    text = plain(cases.PLANTED_QUALITY + " cur_ace_inhibitor 1x; egfr unknown; thiazide_like")

    assert text == ("an observation: systolic 400 mmHg is implausible for clinic systolic BP "
                    "and was not used. current ACEi dose 1\u00d7; eGFR unknown; thiazide-like "
                    "diuretic")
    assert plain("step 3: ACEi/ARB + CCB") == "step 3: ACEi/ARB + CCB"


def _groups(page: str) -> list[str]:
    return re.findall(r"data-group='([a-z-]+)'", page)


def test_options_are_grouped_recommended_first_and_not_offered_apart(
        groups: tuple[Assessment, str]) -> None:
    a, page = groups

    assert _groups(page) == ["in-step", "beyond-step", "not-lowering", "contraindicated"]
    sections = page.split("data-group='")[1:]
    ranks = [[int(r) for r in re.findall(r"<h4>(\d+)\. ", s)] for s in sections]
    assert ranks[0][0] == 1
    assert ranks[0] == sorted(ranks[0])
    assert ranks[1] == sorted(ranks[1])
    assert min(ranks[1]) > max(ranks[0])
    assert ranks[2] == ranks[3] == []  # not offered: no rank
    statuses = [re.findall(r"data-status='([a-z-]+)'", s) for s in sections]
    assert set(statuses[2]) == {"not-lowering"}
    assert set(statuses[3]) == {"contraindicated"}
    text = cases.visible_text(page)
    assert "Beyond the guideline's current step" in text
    assert "Not offered: not expected to lower BP" in text
    assert "Not offered: contraindicated" in text
    n_blocked = sum(o.status is OptionStatus.CONTRAINDICATED for o in a.options)
    assert statuses[3].count("contraindicated") == n_blocked


def _bars(page: str) -> list[tuple[float, float, str]]:
    return [(float(c), float(p), side) for c, side, p in re.findall(
        r"data-contribution='(-?[\d.]+)'.*?style='(right|left):50%;width:[\d.]+%' "
        r"data-percent='([\d.]+)'", page)]


def test_every_driver_bar_is_on_one_scale_with_an_axis(
        example: tuple[Assessment, str]) -> None:
    a, page = example
    bars = _bars(page)
    scales = set(re.findall(r"data-scale='([\d.]+)'", page))
    n_drivers = sum(len(o.drivers) for o in a.options)

    assert len(bars) == n_drivers > 10
    assert len(scales) == 1
    limit = float(scales.pop())
    assert limit >= max(abs(c) for c, _, _ in bars)
    for c, pct, side in bars:
        assert pct == pytest.approx(50 * abs(c) / limit, abs=0.01)
        assert side == ("right" if c < 0 else "left")
    assert page.count("class='axis'") == page.count("<figure class='chart'")
    assert "mmHg: \u2190 more lowering" in page
    assert "<span class='tick tick-2' style='left:50%'>0</span>" in page


def test_direction_is_said_in_words_and_shape_not_colour_alone() -> None:
    from service.panel_chart import render_chart

    chart = render_chart([Bar("age 69", -2.0), Bar("sex", 1.0)], Scale(5.0), "c")

    assert "\u22122.0 mmHg: more lowering" in chart
    assert "+1.0 mmHg: less lowering" in chart
    assert "bar bar-lower" in chart
    assert "bar bar-higher" in chart
    assert Scale.covering([Bar("a", 3.4)]).limit == 5.0
    assert Scale.covering([Bar("a", 0.3)]).limit == 1.0
    assert Scale.covering([Bar("a", 12.0)]).limit == 20.0


def test_the_comparison_is_drawn_on_the_page_scale(example: tuple[Assessment, str]) -> None:
    """Drivers of the difference between the first option and the guideline's choice: their
    own section, the same scale as every option's drivers, direction as which option each
    favours."""
    a, _ = example
    drivers = (Driver(feature="age", label="age", value=69.0, unit="years", contribution=-9.0,
                      words="age 69: favours indapamide"),
               Driver(feature="other_factors", label="", value=None, unit="",
                      contribution=1.5, words="other factors together"))
    a2 = replace(a, comparison=ChoiceComparison(
        first="x", choice="y", first_label="Add indapamide", choice_label="Increase ramipril",
        difference=-7.5, drivers=drivers,
        summary="Indapamide is expected to lower systolic BP 7.5 mmHg more."))

    page = render_panel(a2)
    text = cases.visible_text(page)

    assert "Why the first option rather than the guideline's choice" in text
    assert "favours Add indapamide" in text
    assert "favours Increase ramipril" in text
    assert set(re.findall(r"data-scale='([\d.]+)'", page)) == {"10"}
    assert cases.internal_ids(page) == []


def test_bp_with_its_date_against_the_target_the_step_and_the_drugs(
        example: tuple[Assessment, str]) -> None:
    a, page = example
    text = cases.visible_text(page)

    assert re.search(r"162/94 mmHg on \d+ \w{3} \d{4}, \d+ days ago: not below the target",
                     text)
    assert "below 140/90 mmHg (clinic reading)" in text
    assert "NICE NG136 1.4.20" in text
    assert a.guideline_step
    assert "Guideline step" in text
    assert "ramipril 5 mg a day (ACE inhibitor)" in text
    assert "amlodipine 5 mg a day (dihydropyridine calcium-channel blocker)" in text
    assert "The guideline's choice" in text


def test_numbers_say_what_they_are(example: tuple[Assessment, str]) -> None:
    a, page = example
    first = a.options[0]
    text = cases.visible_text(page)

    assert f"Expected effect {first.expected_effect:+.1f} mmHg" in text
    assert "One clinic reading at 12 weeks: 80%" in text
    assert ("Chance that one clinic systolic reading at 12 weeks is below 140 mmHg" in text) \
        == any(o.p_target_shown for o in a.options)


def test_missing_and_rejected_data_in_words(scorer: Scorer, explainer: Explainer) -> None:
    a = cases.cannot_assess(scorer, explainer)
    page = render_panel(a)
    text = cases.visible_text(page)

    assert a.status is AssessmentStatus.CANNOT_ASSESS
    assert "Cannot assess this patient" in text
    assert "The current medication list could not be obtained: the FHIR server answered 503." \
        in text
    assert "An observation: systolic 400 mmHg is implausible for clinic systolic BP" in text
    assert ("Home or ambulatory daytime systolic BP: no home or ambulatory daytime systolic "
            "BP readings.") in text
    assert "Not recorded, so taken as absent (1)" in text
    assert "<th scope='row'>clinic systolic BP</th><td>an observation</td><td>4 Nov 2026</td>" \
        in page


def test_the_pathway_page_says_what_to_do(scorer: Scorer, explainer: Explainer) -> None:
    a = cases.pathway(scorer, explainer)
    page = render_panel(a)
    text = cases.visible_text(page)

    assert a.status is AssessmentStatus.PATHWAY
    assert "No ranked options: this patient needs another pathway first" in text
    assert [h for lvl, h in cases.headings(page) if lvl == 3] == [
        ("Urgent: " if s.urgency.value == "critical" else "") + plain(s.summary)
        for s in a.stops]
    assert "data-option" not in page
    assert plain(a.stops[0].action) in text
    assert "Safety check of the options, for an order placed now" in text


def test_the_banner_names_the_patient_only_when_given(
        example: tuple[Assessment, str], scorer: Scorer, explainer: Explainer) -> None:
    a, page = example
    _, fv = cases.fhir_example(scorer, explainer)

    assert "Patient in the EPR's current context (69 years, female)" in cases.visible_text(page)
    named = render_panel(a, features=fv, patient_name="Ada <Lovelace>")
    assert "<p class='patient'>Ada &lt;Lovelace&gt; <span class='facts'>(69 years, female)" \
        in named
    assert "Patient in the EPR" not in named
    assert "Blood-pressure response model, version 2.0.0; trained on simulated data" in page


def test_the_rationale_goes_under_explanation(example: tuple[Assessment, str]) -> None:
    a, page = example

    with_rationale = render_panel(a, rationale_html="<p id='r'>Because.</p>")

    assert "Explanation" not in page
    assert ("<h2 id='explanation-h'>Explanation</h2><p id='r'>Because.</p></section>"
            in with_rationale)


def test_headings_are_in_order_and_tables_have_headers(
        scorer: Scorer, explainer: Explainer, example: tuple[Assessment, str],
        groups: tuple[Assessment, str]) -> None:
    for page in (example[1], groups[1], render_panel(cases.pathway(scorer, explainer)),
                 render_panel(cases.cannot_assess(scorer, explainer))):
        levels = [lvl for lvl, _ in cases.headings(page)]
        assert levels[0] == 1
        assert levels.count(1) == 1
        assert all(b <= a + 1 for a, b in pairwise(levels)), levels
        for landmark in ("<html lang='en'>", "<header>", "<main ", "<footer>"):
            assert landmark in page
        assert page.count("<table") == page.count("<caption>")
        assert "<th>" not in page  # every header has its scope
        assert "<script" not in page
        assert "http" not in page.split("</head>")[0]
