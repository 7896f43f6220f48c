"""Guideline-first ranking (models/ranking.py, hazard H-30): the guideline's step first, the
model within it, small differences are ties that go to the guideline."""

from __future__ import annotations

from models.ranking import Candidate, Tier, guideline_first

MARGIN = 3.0


def _c(option_id: str, sbp: float, tier: Tier = Tier.IN_STEP, *, caution: bool = False,
       choice: bool = False) -> Candidate:
    return Candidate(0, option_id, sbp, tier, caution, choice)


def _ids(cands: list[Candidate]) -> list[str]:
    return [c.option_id for c in guideline_first(cands, MARGIN)]


def test_a_small_difference_goes_to_the_guideline_choice() -> None:
    """A dose increase predicted 0.3 (or 2.9) mmHg better does not displace the guideline's
    own choice; one predicted 3.5 mmHg better does."""
    assert _ids([_c("titrate", -10.3), _c("guideline", -10.0, choice=True)]) == [
        "guideline", "titrate"]
    assert _ids([_c("titrate", -12.9), _c("guideline", -10.0, choice=True)]) == [
        "guideline", "titrate"]
    assert _ids([_c("titrate", -13.5), _c("guideline", -10.0, choice=True)]) == [
        "titrate", "guideline"]


def test_a_caution_ranks_below_an_equivalent_option_without_one() -> None:
    assert _ids([_c("a", -11.0, choice=True, caution=True), _c("b", -9.0, choice=True)]) == [
        "b", "a"]
    assert _ids([_c("a", -14.0, choice=True, caution=True), _c("b", -9.0, choice=True)]) == [
        "a", "b"]


def test_an_option_beyond_the_step_never_comes_before_the_step() -> None:
    """However much better the model predicts it (the review's 0.3 mmHg bisoprolol, or a
    combination pill 5 mmHg stronger than NICE step 1)."""
    ranked = _ids([_c("combination", -14.2, Tier.BEYOND_STEP), _c("bisoprolol", -9.8,
                                                                  Tier.BEYOND_STEP),
                   _c("ccb", -9.5, choice=True)])
    assert ranked[0] == "ccb"
    assert ranked[1:] == ["combination", "bisoprolol"]


def test_options_not_expected_to_lower_bp_are_not_offered() -> None:
    ranked = _ids([_c("raises", 3.0, choice=True), _c("flat", 0.0), _c("lowers", -0.5)])
    assert ranked == ["lowers"]


def test_beyond_the_step_comes_first_only_when_the_step_has_nothing_left() -> None:
    assert _ids([_c("beyond", -8.0, Tier.BEYOND_STEP), _c("step", 1.0, choice=True)]) == [
        "beyond"]


def test_the_order_is_a_total_order_whatever_the_input_order() -> None:
    cands = [_c("a", -10.0, choice=True), _c("b", -12.5), _c("c", -15.0, caution=True),
             _c("d", -9.0, Tier.BEYOND_STEP), _c("e", -11.0, choice=True, caution=True)]
    expected = _ids(cands)
    for shift in range(len(cands)):
        assert _ids(cands[shift:] + cands[:shift]) == expected
