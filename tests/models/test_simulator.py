"""Anchor tests of the evidence-calibrated cohort simulator (models/training/simulator.py).

Each anchor test states the published figure, its source (research/clinical.md) and the
tolerance. Populations are large enough that sampling error is well inside each tolerance.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.training.anchors import (
    ACE,
    ALP,
    ARB,
    BB,
    CCB,
    DICKERSON_LIKE,
    IDX,
    LAW_CLASSES,
    PHYSIC_LIKE,
    SPI,
    THZ,
    doubling_vs_adding,
    monotherapy_lowering,
    start,
    untreated,
)
from models.training.simulator import (
    ADVERSE_BY_DOSE,
    EXTERNAL,
    FEATURE_INDEX,
    HOME_OFFSET,
    INTERNAL,
    LAW2003_CROSS_TRIAL,
    RESPONSE,
    SIMULATED_FEATURES,
    SITES,
    STOP_GIVEN_ADVERSE,
    Cohort,
    efficacy_sbp_change,
    response_parameters,
    simulate_cohort,
    simulate_outcomes,
    true_sbp_change,
)
from vocabulary.drug_classes import CLASS_ORDER, DrugClass
from vocabulary.feature_table import PATIENT_FEATURES, Kind, Missing

F = npt.NDArray[np.float64]
@pytest.fixture(scope="module")
def internal() -> Cohort:
    return simulate_cohort(150_000, "internal", seed=1)


@pytest.fixture(scope="module")
def external() -> Cohort:
    return simulate_cohort(150_000, "external", seed=2)


# ------------------------------------------------------------------------------------------
# 1-3: average effects.
# ------------------------------------------------------------------------------------------


def test_law_mean_standard_dose_effect(internal: Cohort) -> None:
    """Law 2003 (BMJ 326:1427) [V]: the five classes at standard dose lower SBP by 9.1 mmHg on
    average at a pretreatment SBP of about 154. Untreated internal patients with true
    pretreatment SBP 150-158; tolerance ±0.6 mmHg."""
    u = internal.latent["sbp_untreated"]
    rows = np.flatnonzero(untreated(internal) & (u >= 150) & (u <= 158))
    assert rows.size > 10_000
    by_class = monotherapy_lowering(internal, rows).mean(axis=0)
    assert by_class.mean() == pytest.approx(9.1, abs=0.6)
    # Per class, Law 2003 table 1 as quoted in clinical.md [M] (CCB 8.8, thiazide 8.8,
    # beta-blocker 9.2), with ACEi and ARB both at the mean of Law's 8.5 and 10.3 (head-to-head
    # trials find them equal, Matchar 2008; issue 14), at a looser ±1.0 since those values are
    # unverified.
    np.testing.assert_allclose(by_class, [9.4, 9.4, 8.8, 8.8, 9.2], atol=1.0)


def test_baseline_dependence(internal: Cohort) -> None:
    """Law 2003 [V]: each 10 mmHg higher pretreatment SBP gives 1.0 mmHg more lowering.
    Slope of the mean five-class standard-dose lowering on pretreatment SBP across untreated
    internal patients (marginal, like Law's across-trial regression); tolerance ±0.3 per
    10 mmHg."""
    rows = np.flatnonzero(untreated(internal))
    y = monotherapy_lowering(internal, rows).mean(axis=1)
    u = internal.latent["sbp_untreated"][rows]
    slope = np.polyfit(u, y, 1)[0] * 10.0
    assert slope == pytest.approx(1.0, abs=0.3)


def test_black_acei_gap(external: Cohort) -> None:
    """Brewster & Seedat 2013 table 1 / Peck 2013 [V]: ACE inhibitors lower SBP 4.6 mmHg less
    in Black than in non-Black patients. Untreated external patients (about 30% Black) at the
    same pretreatment SBP (150-158); tolerance ±0.7 mmHg. The other Brewster gaps (beta-blocker
    -6.0, CCB +2.4, diuretic +3.5) are checked at ±1.0."""
    u = external.latent["sbp_untreated"]
    window = untreated(external) & (u >= 150) & (u <= 158)
    black = external.latent["black"] > 0.5
    rows_b, rows_w = np.flatnonzero(window & black), np.flatnonzero(window & ~black)
    assert min(rows_b.size, rows_w.size) > 2_000
    gap = monotherapy_lowering(external, rows_b).mean(0) - monotherapy_lowering(
        external, rows_w
    ).mean(0)
    law = dict(zip(LAW_CLASSES, gap, strict=True))
    assert law[ACE] == pytest.approx(-4.6, abs=0.7)
    assert law[BB] == pytest.approx(-6.0, abs=1.0)
    assert law[CCB] == pytest.approx(2.4, abs=1.0)
    assert law[THZ] == pytest.approx(3.5, abs=1.0)


# ------------------------------------------------------------------------------------------
# 4-5: heterogeneity.
# ------------------------------------------------------------------------------------------


def test_physic_personalised_benefit() -> None:
    """PHYSIC (Sundström JAMA 2023) [V]: each patient's best drug among lisinopril,
    candesartan, HCTZ and amlodipine gave 4.4 mmHg lower SBP than the mean of the other three.
    PHYSIC-like population (age 40-75, untreated, non-Black, baseline about 154), true
    standard-dose responses; tolerance ±0.6 mmHg."""
    c = simulate_cohort(60_000, PHYSIC_LIKE, seed=3)
    rows = np.arange(len(c), dtype=np.intp)
    resp = np.column_stack([-start(c, rows, k) for k in (ACE, ARB, THZ, CCB)])
    best = resp.max(axis=1)
    benefit = (best - (resp.sum(axis=1) - best) / 3.0).mean()
    assert c.latent["sbp_untreated"].mean() == pytest.approx(154.0, abs=2.0)
    assert benefit == pytest.approx(4.4, abs=0.6)


def test_dickerson_ab_cd_correlations() -> None:
    """Dickerson 1999 (Lancet 353:2008) [V]: in young untreated hypertensives (161/98)
    responses to A and B correlate r = 0.5, to C and D r = 0.6, other pairs uncorrelated.
    Dickerson-like population, true standard-dose responses; tolerance ±0.12 for the two
    correlations, |r| < 0.25 for every A/B-vs-C/D pair; ACEi-ARB about 0.9 (PHYSIC excluded
    large lisinopril-candesartan differences; clinical.md 3.3), checked at ±0.05."""
    c = simulate_cohort(60_000, DICKERSON_LIKE, seed=4)
    rows = np.arange(len(c), dtype=np.intp)
    resp = {k: -start(c, rows, k) for k in LAW_CLASSES}

    def r(a: int, b: int) -> float:
        return float(np.corrcoef(resp[a], resp[b])[0, 1])

    # Dickerson 1999 r = 0.5 (n = 36) and Deary 2002 r = 0.71 (n = 34) [V], pooled by Fisher z
    # to 0.61; the beta-blocker's own term is at the CCB/thiazide level (issue 14).
    assert r(ACE, BB) == pytest.approx(0.61, abs=0.12)
    assert resp[BB].std() < 1.1 * resp[CCB].std()
    assert r(CCB, THZ) == pytest.approx(0.6, abs=0.12)
    cross = [r(a, b) for a in (ACE, ARB, BB) for b in (CCB, THZ)]
    assert max(abs(x) for x in cross) < 0.25
    assert abs(float(np.mean(cross))) < 0.1  # "not correlated", not merely weakly negative
    assert r(ACE, ARB) == pytest.approx(0.9, abs=0.05)
    # Young people have higher renin: A/B responses exceed C/D ones (Dickerson: >=50%
    # observed; the calibrated model gives about a third, see the module docstring).
    ab = (resp[ACE].mean() + resp[BB].mean()) / 2
    cd = (resp[CCB].mean() + resp[THZ].mean()) / 2
    assert ab / cd > 1.2


# ------------------------------------------------------------------------------------------
# 6: dose-response and additivity.
# ------------------------------------------------------------------------------------------


def test_dose_response_and_additivity(internal: Cohort) -> None:
    """Law 2003 [V]: half standard dose gives 7.1/9.1 = 0.78 of the standard-dose effect
    (±0.02). Wald 2009 (Am J Med 122:290) [V]: combining classes is additive (observed/expected
    1.01, 95% CI 0.90-1.12; tolerance that CI), and doubling one drug's dose gives 0.22 (95%
    CI 0.19-0.25; tolerance that CI) of the extra lowering from adding a second class."""
    rows = np.flatnonzero(untreated(internal))[:20_000]
    full = monotherapy_lowering(internal, rows)
    half = np.column_stack([-start(internal, rows, k, 0.5) for k in LAW_CLASSES])
    responders = full > 0
    np.testing.assert_allclose(half[responders] / full[responders], 0.78, atol=0.02)

    # Additivity: A + C (and A + D, C + D) together vs the sum of each alone.
    for a, b in ((ACE, CCB), (ARB, THZ), (CCB, THZ), (ACE, BB)):
        after = internal.current_doses[rows].copy()
        after[:, a] = after[:, b] = 1.0
        both = -efficacy_sbp_change(internal, rows, after)
        ratio = both.sum() / (-start(internal, rows, a) - start(internal, rows, b)).sum()
        assert 0.90 <= ratio <= 1.12

    # Doubling vs adding, in people on one Law class at standard dose.
    assert 0.19 <= doubling_vs_adding(internal) <= 0.25


def test_switch_loses_stopped_class(internal: Cohort) -> None:
    """A switch stops one class (its effect is lost) and starts another: the change equals the
    new class's effect minus the stopped class's effect at its current dose."""
    d = internal.current_doses
    rows = np.flatnonzero((d[:, ACE] > 0) & (d[:, CCB] == 0))[:5_000]
    after = d[rows].copy()
    after[:, ACE] = 0.0
    after[:, CCB] = 1.0
    change = efficacy_sbp_change(internal, rows, after)
    lose = d[rows].copy()
    lose[:, ACE] = 0.0
    np.testing.assert_allclose(
        change, efficacy_sbp_change(internal, rows, lose) + start(internal, rows, CCB), atol=1e-9
    )
    assert np.all(efficacy_sbp_change(internal, rows, lose) >= 0.0)
    # In routine care the stopped class is lost in full (at the person's execution) while the
    # new one may itself be stopped: the switch is worth less than its pharmacology.
    routine = true_sbp_change(internal, rows, after)
    e = internal.latent["execution"][rows]
    np.testing.assert_allclose(true_sbp_change(internal, rows, lose),
                               e * efficacy_sbp_change(internal, rows, lose), atol=1e-9)
    assert np.all(routine >= e * change - 1e-9)


def test_pathway2_fourth_line(internal: Cohort) -> None:
    """PATHWAY-2 (Williams, Lancet 2015) [V]: in resistant hypertension on A + C + D,
    spironolactone lowered SBP 8.7 mmHg vs placebo and doxazosin 4.03 mmHg less than
    spironolactone. Internal patients on ACEi/ARB + CCB + thiazide at >= standard dose;
    tolerance ±0.8 mmHg each. Spironolactone's response is larger with low renin / low K+."""
    d = internal.current_doses
    rows = np.flatnonzero(
        ((d[:, ACE] >= 1) | (d[:, ARB] >= 1)) & (d[:, CCB] >= 1) & (d[:, THZ] >= 1)
        & (d[:, SPI] == 0) & (d[:, ALP] == 0)
    )
    assert rows.size > 2_000
    spiro = -start(internal, rows, SPI)
    alpha = -start(internal, rows, ALP)
    assert spiro.mean() == pytest.approx(8.7, abs=0.8)
    assert (spiro.mean() - alpha.mean()) == pytest.approx(4.03, abs=0.8)
    renin = internal.latent["renin"][rows]
    low = renin < np.median(renin)
    assert spiro[low].mean() > spiro[~low].mean() + 1.0


def test_potassium_is_no_renin_proxy(internal: Cohort) -> None:
    """Issue 14: K+ carried the renin factor with no published basis; it no longer does.
    Among untreated people (no drug shifts K+) the correlation is nil (|r| < 0.03)."""
    rows = np.flatnonzero(untreated(internal))
    k = internal.latent["potassium_true"][rows]
    assert abs(np.corrcoef(k, internal.latent["renin"][rows])[0, 1]) < 0.03


def test_ace_inhibitor_and_arb_are_equal_head_to_head(internal: Cohort) -> None:
    """Matchar et al. Ann Intern Med 2008 [V]: ACE inhibitors and ARBs have similar effects on
    BP in head-to-head trials. Mean standard-dose lowering differs by < 0.3 mmHg overall and in
    Black patients; the old cross-trial table (Law 2003: ARB 1.8 mmHg stronger) remains as the
    sensitivity switch and reproduces its gap."""
    rows = np.flatnonzero(untreated(internal))
    gap = (-start(internal, rows, ACE)).mean() - (-start(internal, rows, ARB)).mean()
    assert abs(gap) < 0.3
    black = internal.latent["black"][rows] > 0.5
    gap_black = (-start(internal, rows[black], ACE)).mean() - (
        -start(internal, rows[black], ARB)).mean()
    assert abs(gap_black) < 0.3
    assert response_parameters() is RESPONSE
    assert response_parameters("law2003_cross_trial") is LAW2003_CROSS_TRIAL
    with pytest.raises(ValueError, match="unknown response table"):
        response_parameters("nope")
    old = simulate_cohort(40_000, "internal", seed=1, response=LAW2003_CROSS_TRIAL)
    rows_old = np.flatnonzero(untreated(old))
    gap_old = (-start(old, rows_old, ACE)).mean() - (-start(old, rows_old, ARB)).mean()
    assert gap_old == pytest.approx(-1.8, abs=0.3)


# ------------------------------------------------------------------------------------------
# 7: determinism.
# ------------------------------------------------------------------------------------------


def test_determinism() -> None:
    """Same seed -> identical arrays (NaNs in the same places); different seed -> different."""
    a = simulate_cohort(3_000, "external", seed=7)
    b = simulate_cohort(3_000, "external", seed=7)
    c = simulate_cohort(3_000, "external", seed=8)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.current_doses, b.current_doses)
    for key in a.latent:
        np.testing.assert_array_equal(a.latent[key], b.latent[key])
    assert not np.array_equal(a.latent["sbp_usual"], c.latent["sbp_usual"])
    assert not np.array_equal(a.current_doses, c.current_doses)

    idx = np.repeat(np.arange(len(a), dtype=np.intp), 2)
    after = a.current_doses[idx].copy()
    after[:, CCB] = np.maximum(after[:, CCB], 1.0)
    o1 = simulate_outcomes(a, idx, after, seed=5)
    o2 = simulate_outcomes(b, idx, after, seed=5)
    o3 = simulate_outcomes(a, idx, after, seed=6)
    for name in ("observed_change", "followup_sbp_observed", "adverse_observed", "p_adverse"):
        np.testing.assert_array_equal(getattr(o1, name), getattr(o2, name))
    assert not np.array_equal(o1.observed_change, o3.observed_change)
    np.testing.assert_array_equal(o1.true_change, o3.true_change)


# ------------------------------------------------------------------------------------------
# 8: sanity.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", ["internal", "external"])
def test_features_follow_the_table(site: str, internal: Cohort, external: Cohort) -> None:
    """Features in PATIENT_FEATURES order: within each FeatureSpec's bounds; NaN only where the
    missing policy is unknown_as_nan; binaries 0/1; doses in {0, 0.5, 1, 2}, never ACEi + ARB."""
    c = internal if site == "internal" else external
    assert c.site == site
    assert len(c) == c.features.shape[0] == c.current_doses.shape[0]
    assert c.features.shape[1] == len(PATIENT_FEATURES)
    assert c.current_doses.shape[1] == len(CLASS_ORDER) == 7
    for j, spec in enumerate(PATIENT_FEATURES):
        col = c.features[:, j]
        nan = np.isnan(col)
        if spec.missing is not Missing.UNKNOWN_AS_NAN:
            assert not nan.any(), spec.name
        vals = col[~nan]
        if not vals.size:  # never known in the cohort (potassium_previous: one result each)
            continue
        assert vals.min() >= spec.low, spec.name
        assert vals.max() <= spec.high, spec.name
        if spec.kind is Kind.BINARY:
            assert set(np.unique(vals)) <= {0.0, 1.0}, spec.name
    # Lab missingness is realistic, not total.
    for name in ("egfr", "potassium", "urine_acr", "sbp_home", "hba1c"):
        share = np.isnan(c.feature(name)).mean()
        assert 0.02 < share < 0.8, (name, share)
    d = c.current_doses
    assert set(np.unique(d)) <= {0.0, 0.5, 1.0, 2.0}
    assert not np.any((d[:, ACE] > 0) & (d[:, ARB] > 0))
    n_classes = (d > 0).sum(axis=1)
    assert n_classes.max() <= 4
    # Pregnancy only in women 18-45; ethnicity unknown in both flags together.
    preg = c.feature("pregnancy") == 1
    assert np.all(c.latent["female"][preg] == 1)
    assert np.all(c.feature("age")[preg] <= 45)
    assert np.array_equal(np.isnan(c.feature("ethnicity_black")),
                          np.isnan(c.feature("ethnicity_south_asian")))
    # Treated people are uncontrolled on their regimen; untreated usual SBP is 150-165 on
    # average; home readings sit about 5 mmHg below usual clinic-scale SBP (NICE NG136
    # 1.4.18): the gap to the decision reading is that plus the reading's bias (white coat, or
    # -5 for AOBP) and its selected-high noise.
    treated = n_classes > 0
    assert c.latent["sbp_usual"][treated].min() >= SITES[site].treated_sbp_floor - 1e-9
    assert 150 <= c.latent["sbp_untreated"][~treated].mean() <= 165
    home = ~np.isnan(c.feature("sbp_home"))
    gap = (c.feature("sbp_clinic")[home] - c.feature("sbp_home")[home]).mean()
    expected_gap = (HOME_OFFSET + c.latent["reading_bias"] + c.latent["screening_noise"])[home]
    assert gap == pytest.approx(float(expected_gap.mean()), abs=0.5)


def test_regimens_follow_nice_steps(internal: Cohort) -> None:
    """NICE NG136 1.4.32-1.4.39: step 1 is ACEi/ARB under 55 (non-Black, no T2DM) and CCB at
    55+ (no T2DM); most monotherapy follows the step (with off-guideline noise)."""
    d = internal.current_doses
    mono = (d > 0).sum(axis=1) == 1
    age = internal.feature("age")
    no_dm = internal.feature("diabetes_t2") == 0
    nonblack = internal.latent["black"] == 0
    young = mono & no_dm & nonblack & (age < 55) & (internal.feature("heart_failure") == 0)
    old = mono & no_dm & (age >= 60) & (internal.feature("heart_failure") == 0)
    ras = (d[:, ACE] > 0) | (d[:, ARB] > 0)
    assert ras[young].mean() > 0.6
    assert (d[old, CCB] > 0).mean() > 0.6
    # Drugs on board shift potassium: thiazide lowers it, ACEi/ARB raise it.
    k = internal.latent["potassium_true"]
    assert k[(d[:, THZ] > 0) & ~ras].mean() < k[(d[:, THZ] == 0) & ras].mean() - 0.2


def test_external_site_differs(internal: Cohort, external: Cohort) -> None:
    """The external site is the designed drift scenario: older, about 30% Black, more T2DM
    and CKD, more home/ambulatory BP, different lab missingness, and (issue 14) a response in
    practice that differs: 15% East Asian (hidden) with their own ACE-inhibitor cough rate,
    unattended automated readings without a white-coat term, poorer adherence."""
    def known_black(c: Cohort) -> float:
        col = c.feature("ethnicity_black")
        return float(np.nanmean(col))

    assert known_black(internal) < 0.06
    assert known_black(external) == pytest.approx(0.30, abs=0.02)
    assert external.feature("age").mean() > internal.feature("age").mean() + 5
    assert external.feature("diabetes_t2").mean() > internal.feature("diabetes_t2").mean() + 0.08
    assert external.latent["ckd_true"].mean() > internal.latent["ckd_true"].mean() + 0.08
    assert external.feature("ckd").mean() > internal.feature("ckd").mean()

    def home_share(c: Cohort) -> float:
        return float((~np.isnan(c.feature("sbp_home"))).mean())

    assert home_share(external) > home_share(internal) + 0.15
    assert EXTERNAL.clinic_single_reading_sd > INTERNAL.clinic_single_reading_sd
    assert external.latent["east_asian"].mean() == pytest.approx(0.15, abs=0.01)
    assert internal.latent["east_asian"].mean() < 0.02
    np.testing.assert_array_equal(external.latent["reading_bias"], -HOME_OFFSET)
    np.testing.assert_array_equal(internal.latent["reading_bias"], internal.latent["white_coat"])
    assert external.latent["execution"].mean() < internal.latent["execution"].mean() - 0.05
    rows = np.flatnonzero(untreated(external))[:20_000]
    after = external.current_doses[rows].copy()
    after[:, ACE] = 1.0
    p = simulate_outcomes(external, rows, after).p_adverse
    east = external.latent["east_asian"][rows] > 0.5
    assert p[east].mean() > 2.0 * p[~east & (external.latent["black"][rows] < 0.5)].mean()
    acr_missing = [float(np.isnan(c.feature("urine_acr")).mean()) for c in (internal, external)]
    assert abs(acr_missing[0] - acr_missing[1]) > 0.1


def test_observed_outcomes_noise(internal: Cohort) -> None:
    """observed_change = the 12-week recorded SBP minus the decision reading the model saw:
    realised change + follow-up noise (mean 0, SD the recorded SD, ±2%) - screening noise. The
    realised change averages to the true (expected) change (±0.05 mmHg); the exact probability
    of a reading below a target matches the draws (±0.01)."""
    n = len(internal)
    idx = np.repeat(np.arange(n, dtype=np.intp), 2)
    after = internal.current_doses[idx].copy()
    after[0::2, CCB] = np.where(after[0::2, CCB] > 0, 2.0, 1.0)
    after[1::2, THZ] = np.where(after[1::2, THZ] > 0, 2.0, 1.0)
    ras_clash = (after[:, ACE] > 0) & (after[:, ARB] > 0)
    assert not ras_clash.any()
    o = simulate_outcomes(internal, idx, after, seed=9)
    sd = INTERNAL.clinic_recorded_sd
    screening = internal.latent["screening_noise"][idx]
    followup_noise = o.observed_change - (o.realised_change - screening)
    assert abs(followup_noise.mean()) < 0.1
    assert followup_noise.std() == pytest.approx(sd, rel=0.02)
    np.testing.assert_allclose(o.followup_sd, sd)
    assert abs((o.realised_change - o.true_change).mean()) < 0.05
    np.testing.assert_allclose(o.expected_observed_change, o.true_change - screening)
    assert o.stopped.mean() == pytest.approx(o.p_stop.mean(), abs=0.005)
    target = np.full(len(idx), 140.0)
    assert (o.followup_sbp_observed < target).mean() == pytest.approx(
        o.p_reading_below(target).mean(), abs=0.01)
    base = (internal.latent["sbp_usual"] + internal.latent["reading_bias"])[idx]
    np.testing.assert_allclose(o.followup_sbp_expected, base + o.true_change)
    # the follow-up noise is fresh: independent of the screening noise
    assert abs(np.corrcoef(screening, followup_noise)[0, 1]) < 0.02


def test_regression_to_the_mean(internal: Cohort, external: Cohort) -> None:
    """Issue 14: the decision reading is the first at or above the entry threshold (NICE
    140 mmHg), so it is selected high: every reading is >= 140 bar a tiny remainder, its noise
    averages well above zero, and the observed change from it is more negative than the true
    change by that amount (regression to the mean, Salam 2019)."""
    for c, site in ((internal, INTERNAL), (external, EXTERNAL)):
        reading = c.latent["sbp_usual"] + c.latent["reading_bias"] + c.latent["screening_noise"]
        assert (reading < site.entry_threshold_sbp).mean() < 0.002
        assert c.latent["screening_noise"].mean() > 2.0
        rows = np.arange(len(c), dtype=np.intp)
        same = simulate_outcomes(c, rows, c.current_doses.copy(), seed=3)
        np.testing.assert_array_equal(same.true_change, 0.0)
        assert same.observed_change.mean() == pytest.approx(
            -float(c.latent["screening_noise"].mean()), abs=0.15)


def test_adherence_and_stopping(internal: Cohort, external: Cohort) -> None:
    """Issue 14: partial adherence and stopping. The expected routine-care change of starting a
    class is the pharmacological effect x execution x (1 - p_stop), with p_stop = 1 - (1 -
    non-persistence)(1 - STOP_GIVEN_ADVERSE x p_adverse); execution averages the site's mean
    (Vrijens 2008: 0.90 internal; 0.80 external, an assumption); an unchanged regimen can not be
    stopped."""
    for c, site in ((internal, INTERNAL), (external, EXTERNAL)):
        assert c.latent["execution"].mean() == pytest.approx(site.execution_mean, abs=0.005)
        rows = np.flatnonzero(untreated(c))[:20_000]
        after = c.current_doses[rows].copy()
        after[:, CCB] = 1.0
        o = simulate_outcomes(c, rows, after, seed=4)
        expected_p = 1.0 - (1.0 - site.nonpersistence_12wk) * (
            1.0 - STOP_GIVEN_ADVERSE * o.p_adverse)
        np.testing.assert_allclose(o.p_stop, expected_p)
        np.testing.assert_allclose(
            o.true_change,
            c.latent["execution"][rows] * (1.0 - o.p_stop) * efficacy_sbp_change(c, rows, after),
        )
        # stopping follows the adverse-effect draw: commoner after an adverse effect
        assert o.stopped[o.adverse_observed].mean() > o.stopped[~o.adverse_observed].mean() + 0.1
    ratio_int = (true_sbp_change(internal, np.arange(1000, dtype=np.intp),
                                 np.where(internal.current_doses[:1000] > 0,
                                          internal.current_doses[:1000], 1.0))
                 / efficacy_sbp_change(internal, np.arange(1000, dtype=np.intp),
                                       np.where(internal.current_doses[:1000] > 0,
                                                internal.current_doses[:1000], 1.0)))
    assert 0.7 < float(np.nanmean(ratio_int)) < 0.85


def test_adverse_effects_follow_law_table5(internal: Cohort) -> None:
    """Law 2003 table 5 [V]: excess prevalence of >=1 symptom at standard dose: thiazide
    9.9%, beta-blocker 7.5%, ACEi 3.9%, ARB 0%, CCB 8.3%; not dose-related for ACEi; more at
    double dose for thiazide and CCB. Modifiers: ACEi cough higher in women; CCB oedema lower
    with a RAS blocker (Makani 2011, RR 0.62); combinations less than additive."""
    d = internal.current_doses
    rows = np.flatnonzero(untreated(internal))[:30_000]
    female = internal.latent["female"][rows] > 0.5
    asthma = internal.feature("asthma")[rows] > 0
    black = internal.latent["black"][rows] > 0
    for cls, (half, std, dbl) in ADVERSE_BY_DOSE.items():
        k = IDX[cls]
        after = d[rows].copy()
        after[:, k] = 1.0
        p = simulate_outcomes(internal, rows, after).p_adverse
        if cls in (DrugClass.THIAZIDE_LIKE, DrugClass.ARB):
            np.testing.assert_allclose(p, std, atol=1e-12)
        elif cls is DrugClass.ACE_INHIBITOR:
            assert p[female & ~black].mean() > p[~female & ~black].mean()
            assert p.mean() == pytest.approx(std + 0.007, abs=0.006)
        elif cls is DrugClass.BETA_BLOCKER:
            assert p[~asthma].mean() == pytest.approx(std, abs=1e-9)
        elif cls is DrugClass.CCB:
            assert p.mean() == pytest.approx(std, abs=0.01)
            ace_only = d[rows].copy()
            ace_only[:, ACE] = 1.0
            p_ace = simulate_outcomes(internal, rows, ace_only).p_adverse
            both = after.copy()
            both[:, ACE] = 1.0
            p_both = simulate_outcomes(internal, rows, both).p_adverse
            assert p_both.mean() < 0.9 * (p.mean() + p_ace.mean())  # less than additive
        after[:, k] = 2.0
        p2 = simulate_outcomes(internal, rows, after).p_adverse
        assert p2.mean() >= p.mean() - 1e-12
        assert half <= std <= dbl or cls is DrugClass.ACE_INHIBITOR
    # Continuing an unchanged regimen carries no new attributable risk.
    treated = np.flatnonzero(d.max(axis=1) > 0)[:1_000]
    same = simulate_outcomes(internal, treated, d[treated].copy())
    np.testing.assert_array_equal(same.p_adverse, 0.0)
    np.testing.assert_array_equal(same.true_change, 0.0)


def test_simulator_covers_the_feature_table() -> None:
    """Every patient feature of the table is simulated (a new feature is otherwise filled by its
    missing-value policy only, which this test flags)."""
    assert list(FEATURE_INDEX) == [f.name for f in PATIENT_FEATURES]
    assert set(SIMULATED_FEATURES) == set(FEATURE_INDEX)
    assert set(SITES) == {"internal", "external"}
