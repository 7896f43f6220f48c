"""The fhir suite's distribution of first options by kind and classes and by guideline step
(issue 15 item 6): the vendored Synthea fixtures and generated FHIR bundles through the real
pipeline; every table sums to the assessed patients, and the HTML report shows it."""

from __future__ import annotations

from typing import Any

import pytest

from evaluation.fhir_suite import DEFAULT_FHIR_DIR, NO_OPTION, option_kind, run_fhir_suite
from evaluation.report import render_html
from models.guideline.profiles import NICE
from models.options import valid_options
from models.scorer import Scorer
from vocabulary.drug_classes import DrugClass


@pytest.fixture(scope="module")
def report(scorer: Scorer) -> dict[str, Any]:
    return run_fhir_suite(DEFAULT_FHIR_DIR, scorer, NICE, generated=60, seed=5)


def _total(table: dict[str, dict[str, float]]) -> tuple[int, float]:
    return (sum(int(v["count"]) for v in table.values()),
            sum(v["share"] for v in table.values()))


def test_each_table_sums_to_the_assessed_patients(report: dict[str, Any]) -> None:
    dist = report["first_option_distribution"]
    fixtures, generated, both = dist["fixtures"], dist["generated"], dist["all"]
    assert fixtures["assessed"] == report["assessed"] >= 1
    assert generated["assessed"] == report["generated"]["assessed"] >= 30
    assert both["assessed"] == fixtures["assessed"] + generated["assessed"]
    for d in (fixtures, generated, both):
        for table in (d["by_class"], d["by_step"]):
            count, share = _total(table)
            assert count == d["assessed"]
            assert share == pytest.approx(1.0)
        assert sum(_total(t)[0] for t in d["by_step_and_class"].values()) == d["assessed"]
    for kind, v in both["by_class"].items():
        assert v["count"] == fixtures["by_class"].get(kind, {"count": 0})["count"] + generated[
            "by_class"].get(kind, {"count": 0})["count"]
    assert report["generated"]["contraindicated_first"] == 0
    assert report["contraindicated_first"] == 0


def test_the_html_report_shows_the_distribution(report: dict[str, Any]) -> None:
    result = {"model": {"id": "m", "version": "1", "provider": "cpu"},
              "checks": {"plan_version": "x", "status": "pass", "gate_passed": True,
                         "gates_failed": [], "gates_insufficient": [], "warnings": [],
                         "results": []},
              "suites": [report]}
    html = render_html(result)
    assert "First options of the assessed patients: generated FHIR bundles" in html
    kind = next(iter(report["first_option_distribution"]["all"]["by_class"]))
    assert kind in html


def test_option_kinds_name_the_action_and_classes() -> None:
    naive = {o.id: option_kind(o) for o in valid_options({})}
    assert "start: CCB" in naive.values()
    treated = [option_kind(o) for o in valid_options({DrugClass.ACE_INHIBITOR: 1.0})]
    assert "add: CCB" in treated
    assert "titrate: ACEi" in treated
    assert any(k.startswith("switch: ACEi to ") for k in treated)
    assert NO_OPTION not in naive.values()
