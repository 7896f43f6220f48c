"""The safety rules run once per patient over a whole option catalogue: what they say about an
option never depends on the other options beside it, and the option's derived class sets (what
the rules read) follow from its doses."""

from __future__ import annotations

from hypothesis import given, settings

from fhir_mappings.features import FeatureVector
from models.guideline.safety import catalogue_findings, option_findings
from models.options import valid_options
from tests.strategies import patients, regimens
from vocabulary.drug_classes import CLASS_ORDER, DrugClass


@settings(max_examples=300, deadline=None)
@given(patients())
def test_an_options_findings_do_not_depend_on_the_rest_of_the_catalogue(
        p: FeatureVector) -> None:
    options = valid_options(p.regimen)
    together = catalogue_findings(p, options)
    assert len(together) == len(options)
    for o, found in zip(options, together, strict=True):
        assert found == option_findings(p, o), o.id
    reversed_ = catalogue_findings(p, options[::-1])
    assert reversed_ == together[::-1]


@settings(max_examples=200, deadline=None)
@given(regimens())
def test_the_derived_class_sets_follow_from_the_doses(regimen: dict[DrugClass, float]) -> None:
    for o in valid_options(regimen):
        doses = list(zip(CLASS_ORDER, o.dose_before, o.dose_after, strict=True))
        assert o.classes_after == tuple(c for c, _, a in doses if a > 0)
        assert o.started == tuple(c for c, b, a in doses if b == 0 and a > 0)
        assert o.stopped == tuple(c for c, b, a in doses if b > 0 and a == 0)
        assert o.dose_change == tuple(a - b for _, b, a in doses)
        assert o.after_set == frozenset(o.classes_after)
        assert o.started_set == frozenset(o.started)
        assert o.stopped_set == frozenset(o.stopped)
        assert o.increased_set == frozenset(c for c, b, a in doses if a > b)


def test_a_regimens_catalogue_is_built_once() -> None:
    assert valid_options({DrugClass.CCB: 1.0}) is valid_options({DrugClass.CCB: 1})
