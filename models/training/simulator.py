"""Evidence-calibrated cohort simulator: patients, their regimens and their drug responses.

No real data can be reached, so the model is trained and benchmarked on simulated people whose
responses follow the published evidence (research/clinical.md sections 3-4; DESIGN.md section 4).
Everything is seeded and vectorised over patients; the only Python loops run over the seven drug
classes or over a fixed number of solver iterations.

**Patients.** Each site (:mod:`models.training.site_parameters`) sets the case-mix: age (scaled
Beta), sex, family origin (Black African/African-Caribbean, South Asian, other; a share is not
recorded and is NaN in both flags), BMI, and type 2 diabetes, CVD, heart failure (HFrEF
subset), asthma/COPD and gout through logistic models whose risk gradients (age, BMI, sex,
ethnicity, diabetes) are fixed here and whose intercepts are solved so that each condition hits
the site's prevalence. eGFR falls with age, urine ACR rises with diabetes and BP, CKD is eGFR<60
or ACR>=3 (coded for a site-specific share), and rarer rule-only facts (pregnancy, angioedema,
heart block, orthostatic hypotension rising with age, frailty, ACEi intolerance, NSAID, potassium
supplement, lithium) follow. A latent *renin* factor (standard-normal scale; higher when younger,
lower in Black patients) modifies drug response only; no lab value carries it (an earlier
version let K+ act as a renin proxy with no published basis; removed, issue 14). East Asian
family origin (a site share among people of "other" origin) is hidden from the model and raises
the ACE-inhibitor cough rate.

**Current regimen.** The number of classes taken (0-4) follows the site's mix, rising with age
and comorbidity. Which classes follow the NICE NG136 steps (step 1 by age 55, family origin and
T2DM; step 2 adds C or D; step 3 A+C+D; step 4 spironolactone if K+ <= 4.5 else alpha- or
beta-blocker; heart failure, CVD, pregnancy and contraindications shift the choice), with Gumbel
noise for off-guideline prescribing. A single RAS slot is filled by either an ACE inhibitor or an
ARB, so the two are never taken together. Doses are mostly standard, some half or double. Drugs
on board shift K+, Na+, ACR, eGFR and heart rate.

**Response.** For person i and class c the standard-dose lowering of usual clinic SBP is

    L_ic = max(0, E_c + b (U_i - 154) + beta_c Black_i + lambda_c renin_i + dev_ic)

with E_c the Law 2003 class effect at baseline 154 (ACE inhibitor and ARB equal, as in
head-to-head trials; the cross-trial table is a sensitivity switch, :func:`response_parameters`),
b = 0.1 (1.0 mmHg per 10 mmHg of
pretreatment SBP U, Law 2003), beta_c the direct part of the Black/non-Black difference (the
rest runs through the lower renin of Black patients so that the total matches Brewster 2013),
lambda_c > 0 for ACEi/ARB/beta-blocker and < 0 for CCB/thiazide/spironolactone, and dev_ic a
person x class deviation built from a general factor, an A/B factor, a RAS factor shared by
ACEi and ARB, a C/D factor and class-specific terms. The renin loadings and deviation SDs were
calibrated numerically so that, in a Dickerson-like population, true A-B and C-D responses
correlate 0.5 and 0.6 with other A/B-vs-C/D pairs uncorrelated, ACEi and ARB correlate about
0.9, and in a PHYSIC-like population the personal best of ACEi, ARB, thiazide and CCB beats the
mean of the other three by 4.4 mmHg. A person whose linear predictor is below zero does not
respond (the floor); no class raises usual SBP. Dose d scales the response by
1 + 0.22 log2 d (0.78 at half dose; Law 2003, Wald 2009) and classes add (Wald 2009
observed/expected 1.01). This is the pharmacological (trial) effect, what the anchors check
(:func:`efficacy_sbp_change`). In routine care each person gets a share e_i of it from every
drug they take (execution, Beta-distributed around the site's mean; Vrijens 2008), so the usual
SBP on the current regimen is U - e_i sum_c g(d_c) L_c. Sex, BMI and diabetes have no
response modifier (clinical.md 3.2: no robust class-specific effect). Spironolactone and the
alpha-blocker are calibrated to PATHWAY-2 in the simulated resistant subgroup.

**Blood pressure.** Everyone has a pretreatment usual SBP U (clinic scale; a shifted Gamma,
rising slightly with age; treated people started a few mmHg higher per class taken). The usual
SBP on the current regimen is S = U - e sum_c g(d_c) L_c(U). Treated people in the decision
population are uncontrolled (they are asking for the next step): a treated person whose S would
fall below the site's floor has U and responses redrawn (selection on response, vectorised over
the pending patients, a fixed number of rounds), so that, as in practice, people on several
drugs are the poorer responders with a high U. Baseline dependence always refers to U, so a
regimen's effect does not depend on the order in which classes were added. Changing regimen
changes usual SBP by -sum_c (g(d_after) - g(d_before)) L_c, which loses a stopped class's effect
in a switch. Effects are taken as fully developed by 12 weeks (Law's trials ran a median of 4
weeks) and there is no drift in usual SBP over those weeks.

The decision reading is selected: a person enters at the first visit whose recorded clinic SBP
is at or above the site's entry threshold (NICE 140 mmHg), so the reading the model sees is
biased high and the next one regresses to the mean (Salam 2019). The recorded clinic SBP is
the lower of two readings of a visit (NICE NG136 1.2.2), or at an AOBP site the mean of five
unattended readings at ambulatory level without a white-coat term (Roerecke 2019): visit
deviation plus reading noise, represented by a normal with the exact mean and variance of that
minimum (its skew is negligible once the visit deviation is added), so the probability of a
reading below target is exactly normal. The white-coat effect is defined against this recorded
value: E[recorded clinic] = usual + white coat. Home/ambulatory
daytime means sit 5 mmHg below usual (NICE NG136 1.4.18) with SD 5.5-6 (Warren 2010, Bo 2020).

**Outcomes.** For (patient, option) rows :func:`simulate_outcomes` gives the probability of >=1
attributable adverse effect (Law 2003 table 5 by class and dose, with sex, ethnicity and
combination modifiers) and one draw of it; whether the new or increased part of the option is
stopped by 12 weeks (non-persistence, or an adverse effect that ends it with probability
:data:`STOP_GIVEN_ADVERSE`); the person's expected 12-week change in usual SBP with that
stopping averaged out (``true_change``, :func:`true_sbp_change`: what ranking should rank by);
the realised change of the draw; and one observed change: the 12-week recorded clinic SBP minus
the decision reading, so it includes the regression to the mean.

Evidence tags as in research/clinical.md: [V] checked source, [S] secondary summary, [M]
background knowledge not re-checked, [derived] computed here, [calibrated] solved numerically
to the anchors named.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import erfc as special_erfc

from models.training.site_parameters import EXTERNAL, INTERNAL, SITES, SiteParameters
from vocabulary.drug_classes import CLASS_ORDER, DrugClass
from vocabulary.feature_table import PATIENT_FEATURES, Kind, Missing

__all__ = [
    "EXTERNAL",
    "FEATURE_INDEX",
    "INTERNAL",
    "RESPONSE",
    "SIMULATED_FEATURES",
    "SITES",
    "Cohort",
    "Outcomes",
    "ResponseParameters",
    "SiteParameters",
    "dose_factor",
    "simulate_cohort",
    "simulate_outcomes",
    "true_sbp_change",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

N_CLASSES: Final[int] = len(CLASS_ORDER)
_IDX: Final[dict[DrugClass, int]] = {c: i for i, c in enumerate(CLASS_ORDER)}
ACE: Final[int] = _IDX[DrugClass.ACE_INHIBITOR]
ARB: Final[int] = _IDX[DrugClass.ARB]
CCB: Final[int] = _IDX[DrugClass.CCB]
THZ: Final[int] = _IDX[DrugClass.THIAZIDE_LIKE]
BB: Final[int] = _IDX[DrugClass.BETA_BLOCKER]
SPI: Final[int] = _IDX[DrugClass.SPIRONOLACTONE]
ALP: Final[int] = _IDX[DrugClass.ALPHA_BLOCKER]

#: Column of each patient feature in :attr:`Cohort.features`.
FEATURE_INDEX: Final[dict[str, int]] = {f.name: i for i, f in enumerate(PATIENT_FEATURES)}

#: Patient features the simulator generates. A feature added to the table later and not listed
#: here is filled by its missing-value policy (absent_as_zero -> 0, unknown_as_nan -> NaN;
#: a required one raises) until the simulator models it; tests flag the gap.
SIMULATED_FEATURES: Final[tuple[str, ...]] = (
    "age", "sex_female", "ethnicity_black", "ethnicity_south_asian", "bmi", "sbp_clinic",
    "dbp_clinic", "sbp_home", "egfr", "potassium", "sodium", "urine_acr", "hba1c",
    "diabetes_t2", "ckd", "heart_failure", "cvd", "heart_rate", "hfref", "asthma", "gout",
    "pregnancy", "angioedema_history", "heart_block", "orthostatic_hypotension",
    "ace_inhibitor_intolerance", "frailty", "nsaid", "potassium_supplement", "lithium",
    "copd", "aortic_stenosis", "non_dhp_ccb", "breastfeeding", "dialysis", "potassium_previous",
    "aliskiren", "airways_therapy", "renal_artery_stenosis", "sick_sinus",
    "other_antihypertensive", "ace_inhibitor_hypersensitivity", "sacubitril_valsartan",
    "home_bp_series", "acute_coronary", "dbp_home",
)

#: NICE NG136 1.4.18: ABPM/HBPM run about 5 mmHg below clinic readings [V].
HOME_OFFSET: Final[float] = 5.0


def _per_class(values: Mapping[DrugClass, float]) -> tuple[float, ...]:
    return tuple(float(values[c]) for c in CLASS_ORDER)


@dataclass(frozen=True)
class ResponseParameters:
    """Drug-response biology (not site-dependent). Tuples are in ``CLASS_ORDER``."""

    reference_sbp: float = 154.0
    """Pretreatment SBP at which ``standard_effect`` applies: Law 2003 standardised its class
    effects to a pretreatment BP of about 154/97 [M]."""

    standard_effect: tuple[float, ...] = _per_class({
        # Law, Wald, Morris, Jordan BMJ 2003;326:1427, table 1 / Law 2009 [M]: placebo-
        # subtracted SBP lowering at standard dose, baseline 154. Mean of the five = 9.12,
        # matching the abstract's 9.1 mmHg [V]. ACE inhibitor and ARB are set EQUAL at the
        # mean of Law's two figures (8.5 and 10.3): Law's gap is a cross-trial comparison
        # whose "standard dose" differs by class, while head-to-head trials find no
        # difference: Matchar et al. Ann Intern Med 2008;148:16 (50 studies, "similar
        # long-term effects on blood pressure", strength of evidence high) [V]; ONTARGET
        # (NEJM 2008) ramipril vs telmisartan within about 1 mmHg [M]. The old table is kept
        # as a sensitivity switch (:func:`response_parameters`, "law2003_cross_trial").
        DrugClass.ACE_INHIBITOR: 9.4,
        DrugClass.ARB: 9.4,
        DrugClass.CCB: 8.8,
        DrugClass.THIAZIDE_LIKE: 8.8,
        DrugClass.BETA_BLOCKER: 9.2,
        # PATHWAY-2 (Williams, Lancet 2015) [V]: spironolactone -8.70 mmHg vs placebo as add-on
        # in resistant hypertension; doxazosin 4.03 mmHg less than spironolactone. The two
        # intercepts below are [calibrated] so that the mean standard-dose effect in the
        # simulated resistant subgroup (on A+C+D at >= standard dose, internal site) is 8.7
        # and 4.67 mmHg. They sit below the trial figures because that subgroup's pretreatment
        # SBP is high (about 181 mmHg, so baseline dependence adds about 2.7) and, for
        # spironolactone, its renin is low; its selection for poor response pulls the other
        # way. PATHWAY-2 measured home SBP; the simulator applies drug effects equally to
        # usual clinic and home SBP.
        DrugClass.SPIRONOLACTONE: 5.55,
        DrugClass.ALPHA_BLOCKER: 2.23,
    })

    baseline_slope: float = 0.10
    """Law 2003 [V]: each 10 mmHg higher pretreatment SBP gives 1.0 mmHg more lowering."""

    dose_slope: float = 0.22
    """Effect(d) = E (1 + 0.22 log2 d). Law 2003 [V]: half dose 7.1 vs 9.1 mmHg (0.78x);
    Wald 2009 [V]: doubling gives 0.22 of the gain from adding a class. [derived]"""

    renin_reference_age: float = 55.0
    """Age at which the renin factor averages 0 in non-Black people (NICE's age-55 split)."""

    renin_age_slope: float = -0.6
    """Renin factor change per decade of age (SD units). Younger people have higher renin
    (Dickerson 1999 [V], Turner 2010 [V]); the size is [calibrated] together with the loadings
    so that age explains a minority of renin variance (37% at the internal site) and A/B
    responses exceed C/D responses by about a third in young patients (Dickerson observed at
    least half; a steeper age slope would reach that only by letting age dominate renin)."""

    renin_black_shift: float = -0.8
    """Black patients have lower renin [M]; 0.8 SD. The Black/non-Black response gaps of
    Brewster 2013 are split into this renin-mediated part and ``black_direct``."""

    renin_loading: tuple[float, ...] = _per_class({
        # mmHg of standard-dose lowering per SD of the renin factor [calibrated]: higher renin
        # -> larger ACEi/ARB/beta-blocker and smaller CCB/thiazide responses (Dickerson 1999,
        # Turner 2010 PEAR, GERA PMC3816320 [V]); low renin -> larger spironolactone response
        # (PATHWAY-2 mechanisms substudy [M]); alpha-blocker renin-neutral [M].
        DrugClass.ACE_INHIBITOR: 2.0,
        DrugClass.ARB: 2.0,
        DrugClass.CCB: -1.5,
        DrugClass.THIAZIDE_LIKE: -1.5,
        DrugClass.BETA_BLOCKER: 2.0,
        DrugClass.SPIRONOLACTONE: -2.0,
        DrugClass.ALPHA_BLOCKER: 0.0,
    })

    black_direct: tuple[float, ...] = _per_class({
        # Direct Black-vs-non-Black difference in standard-dose lowering (mmHg, + = larger in
        # Black patients), on top of the renin-mediated part. [calibrated] so that the total
        # difference at the same baseline, after the non-response floor, matches Brewster &
        # Seedat BMC Med 2013 table 1 [V]: ACEi -4.6 (also Peck 2013 [V]), beta-blocker -6.0,
        # CCB +2.4, diuretic +3.5; ARB taken to behave like ACEi (same term) [derived].
        # Solved in untreated external-site patients with pretreatment SBP 150-158. The
        # renin-mediated part is renin_black_shift x renin_loading (-1.6 for ACEi/ARB/BB,
        # +1.2 for CCB/thiazide); the beta-blocker's direct term exceeds its total gap because
        # the floor trims the many Black non-responders to beta-blockers.
        DrugClass.ACE_INHIBITOR: -3.44,
        DrugClass.ARB: -3.44,
        DrugClass.CCB: 1.23,
        DrugClass.THIAZIDE_LIKE: 2.34,
        DrugClass.BETA_BLOCKER: -6.23,
        DrugClass.SPIRONOLACTONE: 0.0,  # no direct term; larger via low renin [M]
        DrugClass.ALPHA_BLOCKER: 0.0,   # no ethnicity evidence [M]
    })

    # Person x class heterogeneity (mmHg SDs), [calibrated] jointly with renin_age_slope and
    # renin_loading to: Dickerson 1999 [V] r(A,B) = 0.5 (with Deary 2002 [V] r = 0.71: pooled
    # 0.61 by Fisher z, see sd_bb_specific), r(C,D) = 0.6, other A/B-vs-C/D pairs
    # uncorrelated (young untreated, 161/98); PHYSIC (Sundström JAMA 2023) [V] personalised
    # choice 4.4 mmHg better than the mean of the other three drugs (age 40-75, 154/89);
    # r(ACEi, ARB) about 0.9 (PHYSIC excluded large lisinopril-candesartan differences;
    # clinical.md 3.3 [derived]).
    sd_general: float = 1.5
    """General responsiveness shared by all classes (offsets the renin factor's negative
    A/B-vs-C/D covariance so that those pairs are uncorrelated, as in Dickerson 1999)."""
    sd_ab: float = 1.0
    """Factor shared by ACEi, ARB and beta-blocker."""
    sd_ras: float = 1.16
    """Factor shared by ACEi and ARB only."""
    sd_ras_specific: float = 1.09
    """Own term of ACEi and of ARB."""
    sd_bb_specific: float = 2.5
    """Own term of the beta-blocker. It was 4.53, solved to Dickerson's r(A,B) = 0.5 alone and
    anchored to no study of the beta-blocker's own spread; with the non-response floor it
    favoured beta-blockers in every ranking. It is now the CCB/thiazide level (2.5), which
    gives the beta-blocker the same total person-level SD as the CCB (about 3.9 mmHg in the
    Dickerson-like population) and r(ACEi, beta-blocker) = 0.69: between Dickerson 1999
    (0.5, n = 36) and Deary 2002 (0.71, n = 34) [V], inside the anchor 0.61 +- 0.12 (their
    Fisher-z pool) [derived]."""
    sd_cd: float = 1.75
    """Factor shared by CCB and thiazide (and, scaled, spironolactone)."""
    sd_cd_specific: float = 2.5
    """Own term of CCB and of thiazide."""
    spiro_cd_loading: float = 1.0
    """Spironolactone's loading on the C/D (volume) factor [M]."""
    sd_spiro_specific: float = 3.0
    """Own term of spironolactone [M]; PATHWAY-2 gave no person-level SD."""
    sd_alpha_specific: float = 3.0
    """Own term of the alpha-blocker [M]."""


RESPONSE: Final[ResponseParameters] = ResponseParameters()

#: The pre-issue-14 cross-trial table (Law 2003: ARB 10.3 vs ACEi 8.5 mmHg, ARB direct
#: Black term -3.13), for the sensitivity run only (``TrainConfig.response_table``).
LAW2003_CROSS_TRIAL: Final[ResponseParameters] = dataclasses.replace(
    RESPONSE,
    standard_effect=tuple(
        {DrugClass.ACE_INHIBITOR: 8.5, DrugClass.ARB: 10.3}.get(c, RESPONSE.standard_effect[i])
        for i, c in enumerate(CLASS_ORDER)
    ),
    black_direct=tuple(
        -3.13 if c is DrugClass.ARB else RESPONSE.black_direct[i]
        for i, c in enumerate(CLASS_ORDER)
    ),
)

#: Response tables by name (the sensitivity switch).
RESPONSE_TABLES: Final[dict[str, ResponseParameters]] = {
    "head_to_head": RESPONSE,
    "law2003_cross_trial": LAW2003_CROSS_TRIAL,
}


def response_parameters(table: str = "head_to_head") -> ResponseParameters:
    """The drug-response biology by name: ``head_to_head`` (default: ACEi = ARB) or
    ``law2003_cross_trial`` (the old table, for the sensitivity run)."""
    try:
        return RESPONSE_TABLES[table]
    except KeyError:
        raise ValueError(f"unknown response table {table!r}; one of {sorted(RESPONSE_TABLES)}"
                         ) from None

# ------------------------------------------------------------------------------------------
# Adverse effects (not site-dependent).
# ------------------------------------------------------------------------------------------

#: Law 2003 table 5 [V]: excess prevalence (treated minus placebo) of >=1 symptom at half,
#: standard and double dose. ARB at half dose is -1.8% and taken as 0. Spironolactone and
#: alpha-blocker are not in Law's table: spironolactone about 6% at 25 mg (gynaecomastia/breast
#: tenderness in men, RALES [M]); doxazosin 4% postural symptoms at a 1 mg start (FDA label [V]).
ADVERSE_BY_DOSE: Final[dict[DrugClass, tuple[float, float, float]]] = {
    DrugClass.ACE_INHIBITOR: (0.039, 0.039, 0.039),
    DrugClass.ARB: (0.0, 0.0, 0.019),
    DrugClass.CCB: (0.016, 0.083, 0.149),
    DrugClass.THIAZIDE_LIKE: (0.020, 0.099, 0.178),
    DrugClass.BETA_BLOCKER: (0.055, 0.075, 0.094),
    DrugClass.SPIRONOLACTONE: (0.03, 0.06, 0.10),
    DrugClass.ALPHA_BLOCKER: (0.02, 0.04, 0.06),
}
#: ACEi cough is commoner in women (clinical.md section 4 [M]): x1.3 in women, x0.75 in men
#: (mean about 1 at a 50/50 sex mix) [derived].
ACEI_FEMALE_MULT: Final[float] = 1.3
ACEI_MALE_MULT: Final[float] = 0.75
#: East Asian (Chinese) patients: ACEi cough 11% vs 2% on placebo, RR 5.2 (clinical.md 4 [V]):
#: an attributable 9% instead of Law's 3.9%. East Asian origin is not a model feature (the
#: record codes only Black and South Asian family origin), so this modifier is hidden.
ACEI_EAST_ASIAN: Final[float] = 0.09
#: OCTAVE, enalapril, 24 weeks [V]: angioedema 0.68% overall, 1.62% in Black patients.
ACEI_ANGIOEDEMA: Final[float] = 0.0068
ACEI_ANGIOEDEMA_BLACK: Final[float] = 0.0162
#: Makani, Am J Med 2011 [V]: adding a RAS blocker cuts DHP-CCB oedema by 38% (RR 0.62).
CCB_WITH_RAS_MULT: Final[float] = 0.62
#: CCB oedema commoner in women (clinical.md 3.2 [M]).
CCB_FEMALE_MULT: Final[float] = 1.2
CCB_MALE_MULT: Final[float] = 0.8
#: Beta-blocker bronchospasm/wheeze in asthma or COPD [M]: +10% absolute.
BB_ASTHMA_EXTRA: Final[float] = 0.10
#: Spironolactone: gynaecomastia is a male effect [M] (x1.5 men, x0.5 women); hyperkalaemia
#: leading to stopping about 2% (RxFiles/PCR 2016 [S]), x2.5 if eGFR < 45 and x1.5 with a RAS
#: blocker (MHRA 2016 warning [S]) [derived].
SPIRO_MALE_MULT: Final[float] = 1.5
SPIRO_FEMALE_MULT: Final[float] = 0.5
SPIRO_HYPERK: Final[float] = 0.02
#: Alpha-blocker postural symptoms double with orthostatic hypotension or age >= 80
#: (NG136 1.1.6, doxazosin SmPC caution) [derived].
ALPHA_POSTURAL_MULT: Final[float] = 2.0

#: Share of attributable adverse effects that end the new drug (or the dose increase) within
#: 12 weeks [derived]: excess withdrawals over excess incidence, Makani 2011 CCB oedema
#: (2.1 - 0.5) / (10.7 - 3.2) = 0.21 [V figures]; Bangalore 2010 ACEi cough 2.6 / 11.5 =
#: 0.23 [V figures]. The stopped part of the option then has no effect at 12 weeks.
STOP_GIVEN_ADVERSE: Final[float] = 0.22


# ------------------------------------------------------------------------------------------
# Public types.
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """A simulated cohort: what the model sees, the current regimen, and the hidden truth."""

    site: str
    features: FloatArray
    """[n, len(PATIENT_FEATURES)] in feature-table order and units; NaN only where the policy
    is ``unknown_as_nan`` and the site did not measure or record the value."""
    current_doses: FloatArray
    """[n, 7] dose multiples (0, 0.5, 1, 2) in ``CLASS_ORDER``; never ACEi and ARB together."""
    latent: Mapping[str, FloatArray] = field(repr=False)
    """Truth the model never sees: ``sbp_usual`` (usual clinic-scale SBP on the current
    regimen), ``sbp_untreated``, ``white_coat``, ``renin``, ``deviation`` [n,7] (person x class
    random deviation), ``effect_std`` [n,7] (person's standard-dose lowering at their
    pretreatment SBP, after the floor), ``black``, ``south_asian``, ``female`` (true 0/1),
    ``recorded_sd`` (SD of a recorded clinic SBP), ``dbp_usual``, and true lab values
    ``egfr_true``, ``potassium_true``, ``sodium_true``, ``acr_true``, ``hba1c_true``,
    ``ckd_true``."""

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def feature(self, name: str) -> FloatArray:
        """One feature column by name."""
        return self.features[:, FEATURE_INDEX[name]]


@dataclass(frozen=True)
class Outcomes:
    """Outcomes of (patient, option) rows; see :func:`simulate_outcomes`."""

    true_change: FloatArray
    """[R] the person's expected 12-week change in usual clinic SBP in routine care (mmHg;
    negative = lowering): the drug effect at the person's execution, with the chance of
    stopping the new part (non-persistence, adverse effects) averaged out. What ranking
    should rank by; the effect interval bounds it."""
    realised_change: FloatArray
    """[R] the change in usual SBP of this draw: the new part of the option is lost where
    ``stopped``."""
    stopped: npt.NDArray[np.bool_]
    """[R] the new or increased drug was stopped within 12 weeks (non-persistence, or an
    attributable adverse effect that ended it)."""
    p_stop: FloatArray
    """[R] probability of ``stopped``."""
    observed_change: FloatArray
    """[R] the 12-week recorded clinic SBP minus the decision reading the model saw
    (``sbp_clinic``): realised_change + follow-up noise - screening noise. The screening
    reading was selected high, so this includes regression to the mean."""
    expected_observed_change: FloatArray
    """[R] the person's expected ``observed_change`` given the decision reading: true_change
    minus the screening noise (the regression to the mean this person will show). What the
    point prediction estimates; the same for every option of a patient."""
    followup_sbp_expected: FloatArray
    """[R] sbp_usual + reading_bias + true_change: the expected recorded 12-week clinic SBP."""
    followup_sbp_observed: FloatArray
    """[R] one recorded 12-week clinic SBP (the same draw as in observed_change)."""
    followup_sd: FloatArray
    """[R] SD of a recorded clinic SBP around its expectation given the realised change."""
    p_reading_below: Callable[[FloatArray], FloatArray] = field(repr=False)
    """P(12-week recorded clinic SBP < threshold) for a [R] threshold, exact: a two-point
    mixture (drug kept or stopped) of normal readings."""
    p_adverse: FloatArray
    """[R] probability of >= 1 attributable adverse effect by 12 weeks."""
    adverse_observed: npt.NDArray[np.bool_]
    """[R] one draw of the adverse-effect indicator."""


# ------------------------------------------------------------------------------------------
# Helpers.
# ------------------------------------------------------------------------------------------


def dose_factor(dose: FloatArray, slope: float = RESPONSE.dose_slope) -> FloatArray:
    """Response multiplier of a dose multiple: 1 + slope*log2(d) for d > 0, 0 for d = 0."""
    d = np.asarray(dose, dtype=np.float64)
    pos = d > 0
    safe = np.where(pos, d, 1.0)
    out: FloatArray = np.where(pos, np.maximum(1.0 + slope * np.log2(safe), 0.0), 0.0)
    return out


def _expit(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(x, -500.0, 500.0)))
    return out


def _rng(seed: int, stream: int, site: str) -> np.random.Generator:
    """Independent, reproducible stream per (seed, purpose, site)."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(stream, zlib.crc32(site.encode())))
    )


def _scaled_beta(
    rng: np.random.Generator, n: int, mean: float, sd: float, lo: float, hi: float
) -> FloatArray:
    m = (mean - lo) / (hi - lo)
    v = (sd / (hi - lo)) ** 2
    if v >= m * (1.0 - m):
        raise ValueError("age_sd too large for the age range")
    c = m * (1.0 - m) / v - 1.0
    out: FloatArray = lo + (hi - lo) * rng.beta(m * c, (1.0 - m) * c, n)
    return out


def _shifted_gamma(
    rng: np.random.Generator, n: int, floor: float, mean: float, sd: float
) -> FloatArray:
    excess = mean - floor
    if excess <= 0 or sd <= 0:
        raise ValueError("mean must exceed floor and sd must be positive")
    out: FloatArray = floor + rng.gamma((excess / sd) ** 2, sd**2 / excess, n)
    return out


def _at_prevalence(lp: FloatArray, target: float, u: FloatArray) -> BoolArray:
    """Bernoulli draws (from uniforms ``u``) of a logistic model with linear predictor ``lp``,
    its intercept solved (Newton) so that the mean risk equals ``target``."""
    if target <= 0.0:
        return np.zeros(lp.shape, dtype=np.bool_)
    if target >= 1.0:
        return np.ones(lp.shape, dtype=np.bool_)
    c = math.log(target / (1.0 - target)) - float(np.mean(lp))
    for _ in range(60):
        p = _expit(lp + c)
        err = float(np.mean(p)) - target
        if abs(err) < 1e-12:
            break
        slope = max(float(np.mean(p * (1.0 - p))), 1e-12)
        c -= float(np.clip(err / slope, -5.0, 5.0))
    out: BoolArray = u < _expit(lp + c)
    return out


def _sqrt_dose(d: FloatArray) -> FloatArray:
    """Dose scaling of metabolic side effects (K+, Na+, heart rate) [derived]."""
    out: FloatArray = np.sqrt(np.maximum(d, 0.0))
    return out


_N_FACTORS: Final[int] = 11
_SELECTION_ROUNDS: Final[int] = 40


def _deviation(zf: FloatArray, resp: ResponseParameters) -> FloatArray:
    """Person x class deviations [m, 7] from standard-normal factors ``zf`` [m, 11]."""
    dev = np.empty((zf.shape[0], N_CLASSES))
    general = resp.sd_general * zf[:, 0]
    ab = resp.sd_ab * zf[:, 1]
    ras = resp.sd_ras * zf[:, 2]
    cd = resp.sd_cd * zf[:, 3]
    dev[:, ACE] = general + ab + ras + resp.sd_ras_specific * zf[:, 4]
    dev[:, ARB] = general + ab + ras + resp.sd_ras_specific * zf[:, 5]
    dev[:, BB] = general + ab + resp.sd_bb_specific * zf[:, 6]
    dev[:, CCB] = general + cd + resp.sd_cd_specific * zf[:, 7]
    dev[:, THZ] = general + cd + resp.sd_cd_specific * zf[:, 8]
    dev[:, SPI] = general + resp.spiro_cd_loading * cd + resp.sd_spiro_specific * zf[:, 9]
    dev[:, ALP] = general + resp.sd_alpha_specific * zf[:, 10]
    return dev


def _standard_effect(
    zf: FloatArray, black: FloatArray, renin: FloatArray, sbp_untreated: FloatArray,
    resp: ResponseParameters,
) -> FloatArray:
    """Standard-dose lowering L [m, 7] = max(0, E + b (U - 154) + beta Black + lambda renin
    + deviation)."""
    lin = (
        np.asarray(resp.standard_effect)[None, :]
        + resp.baseline_slope * (sbp_untreated - resp.reference_sbp)[:, None]
        + np.asarray(resp.black_direct)[None, :] * black[:, None]
        + np.asarray(resp.renin_loading)[None, :] * renin[:, None]
        + _deviation(zf, resp)
    )
    out: FloatArray = np.maximum(lin, 0.0)
    return out


# ------------------------------------------------------------------------------------------
# Cohort.
# ------------------------------------------------------------------------------------------


def simulate_cohort(n: int, site: SiteParameters | str = "internal", seed: int = 0,
                    response: ResponseParameters | None = None) -> Cohort:
    """Simulate ``n`` patients of ``site`` (a name in :data:`SITES` or a parameter set) under
    ``response`` (default :data:`RESPONSE`; see :func:`response_parameters`)."""
    params = SITES[site] if isinstance(site, str) else site
    return _simulate_cohort(n, params, seed, RESPONSE if response is None else response)


def _simulate_cohort(
    n: int, site: SiteParameters, seed: int, resp: ResponseParameters
) -> Cohort:
    if n < 1:
        raise ValueError("n must be positive")
    rng = _rng(seed, 0, site.name)

    # --- demography ---------------------------------------------------------------------------
    age = _scaled_beta(rng, n, site.age_mean, site.age_sd, site.age_min, site.age_max)
    female = rng.random(n) < site.female_share
    u_eth = rng.random(n)
    black = u_eth < site.black_share
    south_asian = (u_eth >= site.black_share) & (
        u_eth < site.black_share + site.south_asian_share
    )
    sex_known = rng.random(n) >= site.sex_unknown_share
    ethnicity_known = rng.random(n) >= site.ethnicity_unknown_share
    fem = female.astype(np.float64)
    blk = black.astype(np.float64)
    sas = south_asian.astype(np.float64)

    # BMI: log-normal; South Asian about 1.5 kg/m2 lower, Black women about 2 higher, peaks in
    # late middle age [M].
    bmi = np.clip(np.exp(
        np.log(site.bmi_median) + site.bmi_log_sd * rng.standard_normal(n)
        - 0.05 * sas + 0.07 * blk * fem - 0.00015 * (age - 58.0) ** 2
    ), 15.0, 70.0)

    # --- comorbidities (risk gradients [M]; intercepts solved to the site prevalence) --------
    u_cond = rng.random((n, 8))
    # T2DM: odds x1.5/decade, x1.1 per kg/m2, South Asian OR 2.5, Black OR 1.6 [M].
    t2dm = _at_prevalence(
        0.04 * (age - 60.0) + 0.09 * (bmi - 29.0) + math.log(2.5) * sas + math.log(1.6) * blk,
        site.t2dm_prevalence, u_cond[:, 0],
    )
    dm = t2dm.astype(np.float64)
    # CVD (CHD, stroke, PAD): odds x1.8/decade, men OR 1.8, diabetes OR 2, SA OR 1.5 [M].
    cvd = _at_prevalence(
        0.06 * (age - 60.0) + math.log(1.8) * (1.0 - fem) + math.log(2.0) * dm
        + math.log(1.5) * sas,
        site.cvd_prevalence, u_cond[:, 1],
    )
    # Heart failure: odds x2/decade, CVD OR 3, diabetes OR 1.8 [M].
    hf = _at_prevalence(
        0.07 * (age - 60.0) + math.log(3.0) * cvd + math.log(1.8) * dm,
        site.hf_prevalence, u_cond[:, 2],
    )
    hfref = hf & (u_cond[:, 3] < site.hfref_share_of_hf)
    # Asthma/COPD: slight rise with age, women OR 1.2 [M].
    asthma = _at_prevalence(
        0.01 * (age - 60.0) + math.log(1.2) * fem, site.asthma_copd_prevalence, u_cond[:, 4]
    )
    # Gout: men OR 3, odds x1.3/decade, x1.06 per kg/m2 [M].
    gout = _at_prevalence(
        math.log(3.0) * (1.0 - fem) + 0.03 * (age - 60.0) + 0.06 * (bmi - 29.0),
        site.gout_prevalence, u_cond[:, 5],
    )
    hff = hf.astype(np.float64)

    # --- kidney -------------------------------------------------------------------------------
    # eGFR falls with age [M]; diabetes -5%, heart failure -10% [M].
    egfr_median = np.maximum(
        site.egfr_at_60 - site.egfr_decline_per_year * (age - 60.0), 15.0
    ) * np.exp(-0.05 * dm - 0.10 * hff)
    egfr_untreated = egfr_median * np.exp(site.egfr_log_sd * rng.standard_normal(n))
    # HbA1c (mmol/mol): non-diabetic ~36 rising with age and BMI, South Asian +2; diabetic
    # 42 + Gamma(3, 5), mean 57 [M].
    hba1c = np.where(
        t2dm,
        42.0 + rng.gamma(3.0, 5.0, n),
        36.0 + 0.08 * (age - 50.0) + 0.25 * (bmi - 28.0) + 2.0 * sas
        + 3.5 * rng.standard_normal(n),
    )
    z_acr = rng.standard_normal(n)

    # --- rule-only facts ----------------------------------------------------------------------
    # Drawn from their own stream so that adding a fact never shifts the calibrated draws.
    u_more = _rng(seed, 2, site.name).random((n, 3))
    # Of asthma-or-COPD, the COPD share rises with age: ~20% at 40, ~60% at 70 [M].
    copd = asthma & (u_more[:, 0] < _expit(-1.0 + 0.055 * (age - 45.0)))
    # Moderate/severe aortic stenosis: ~0.5% at 65, ~3% at 80 [M].
    aortic_stenosis = u_more[:, 1] < _expit(-5.3 + 0.12 * (age - 65.0))
    # Verapamil/diltiazem for rate control or angina: ~1.5% [M].
    non_dhp_ccb = u_more[:, 2] < 0.015 * np.where(cvd, 2.0, 1.0)
    u_rule = rng.random((n, 12))
    # NG136 1.4.29 / MHRA: pregnancy, planning or breastfeeding, women 18-45 only [design].
    pregnancy = female & (age <= 45.0) & (u_rule[:, 0] < site.pregnancy_rate_women_18_45)
    # Angioedema history 0.3%, Black x3 (OCTAVE ratio [V] 1.62/0.68 ~ 2.4; rounded) [M].
    angioedema = u_rule[:, 1] < 0.003 * np.where(black, 3.0, 1.0)
    # 2nd/3rd-degree heart block: ~0.3% at 60, ~1.5% at 85 [M].
    heart_block = u_rule[:, 2] < _expit(-5.8 + 0.065 * (age - 60.0))
    # Orthostatic hypotension: ~6% at 60, ~20% at 80, diabetes OR 1.6 [M].
    orthostatic = u_rule[:, 3] < _expit(
        -2.75 + 0.068 * (age - 60.0) + math.log(1.6) * dm
    )
    # Moderate/severe frailty (eFI): ~3% at 65, ~12% at 80, ~30% at 90 [M].
    frailty = u_rule[:, 4] < _expit(-3.45 + 0.102 * (age - 65.0))
    nsaid = u_rule[:, 5] < site.nsaid_share
    k_supp = u_rule[:, 6] < site.potassium_supplement_share
    lithium = u_rule[:, 7] < site.lithium_share

    # --- latent renin and untreated electrolytes ----------------------------------------------
    renin = (
        resp.renin_age_slope * (age - resp.renin_reference_age) / 10.0
        + resp.renin_black_shift * blk
        + rng.standard_normal(n)
    )
    # K+ mean 4.3, SD 0.33; rises as eGFR falls below 60 (+0.01/unit), diabetes +0.05 [M].
    # No renin term: an earlier version let K+ carry the renin factor (a "renin proxy") with no
    # published basis; it was removed (issue 14).
    potassium_untreated = (
        4.3
        + 0.01 * np.maximum(60.0 - egfr_untreated, 0.0) + 0.05 * dm
        + 0.33 * rng.standard_normal(n)
    )
    # Na+ 140, SD 2.3, slightly lower with age [M].
    sodium_untreated = 140.0 - 0.03 * (age - 60.0) + 2.3 * rng.standard_normal(n)

    # --- current regimen ----------------------------------------------------------------------
    # Number of classes: site mix, assigned by rank of a latent rising with age and
    # comorbidity [design].
    z_k = (
        0.03 * (age - 60.0) + 0.3 * dm + 0.4 * cvd + 0.6 * hff + rng.logistic(size=n)
    )
    cum = np.round(np.cumsum(site.class_count_probs)[:-1] * n)
    rank_k = np.empty(n, dtype=np.intp)
    rank_k[np.argsort(z_k, kind="stable")] = np.arange(n)
    n_classes = np.searchsorted(cum, rank_k, side="right")
    treated = n_classes > 0

    # ACEi intolerance (cough) recorded in ~7% of treated people, commoner in women
    # (Bangalore 2010 [V] 11.5% cough, 2.6% withdrawal; clinical.md 4) [M]; 1% of untreated
    # people (earlier trial) [design].
    ace_intolerance = u_rule[:, 8] < np.where(
        treated, 0.07 * np.where(female, 1.4, 0.65), 0.01
    )
    # RAS slot: ARB if ACEi intolerance or angioedema, 60% of Black patients (NG136 1.4.30),
    # else the site's ARB share.
    use_arb = (
        ace_intolerance | angioedema | (black & (u_rule[:, 9] < 0.6))
        | (u_rule[:, 10] < site.arb_share_of_ras)
    )

    acr_untreated = np.exp(
        np.log(site.acr_median) + 0.95 * dm + 0.5 * hff
        + 0.012 * (age - 60.0) + site.acr_log_sd * z_acr
    )
    scores = _regimen_scores(
        n, age=age, black=black, t2dm=t2dm, hf=hf, hfref=hfref, cvd=cvd, asthma=asthma,
        gout=gout, pregnancy=pregnancy, angioedema=angioedema, heart_block=heart_block,
        orthostatic=orthostatic, use_arb=use_arb, potassium=potassium_untreated,
        egfr=egfr_untreated, acr=acr_untreated,
    ) + rng.gumbel(0.0, site.regimen_noise, (n, N_CLASSES))
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(N_CLASSES), order.shape), axis=1)
    chosen = (ranks < n_classes[:, None]) & (scores > -1e5)
    u_dose = rng.random((n, N_CLASSES))
    p_half, p_std, _ = site.dose_probs
    dose_level = np.where(u_dose < p_half, 0.5, np.where(u_dose < p_half + p_std, 1.0, 2.0))
    current_doses: FloatArray = np.where(chosen, dose_level, 0.0)

    # --- person x class response and blood pressure ---------------------------------------
    # Pretreatment (untreated) usual SBP, clinic scale, rising slightly with age (+0.15/yr) [M];
    # treated people started higher by site.pretreatment_shift_per_class per class [design].
    age_bp = 0.15 * (age - site.age_mean)
    shift = site.pretreatment_shift_per_class * n_classes
    zf = rng.standard_normal((n, _N_FACTORS))
    sbp_untreated = _shifted_gamma(
        rng, n, site.untreated_sbp_floor, site.untreated_sbp_mean, site.untreated_sbp_sd
    ) + age_bp + shift
    # Practice latents from their own stream (so the calibrated draws above are unchanged):
    # execution (person-level share of the drug effect obtained, Beta; site.execution_*),
    # hidden East Asian origin among people of "other" origin, and the uniforms of the
    # entry-reading selection below.
    rng_practice = _rng(seed, 3, site.name)
    exec_a, exec_b = site.execution_beta
    execution = rng_practice.beta(exec_a, exec_b, n)
    other_share = 1.0 - site.black_share - site.south_asian_share
    east_asian = (~black & ~south_asian) & (
        rng_practice.random(n) < (site.east_asian_share / other_share if other_share > 0 else 0.0)
    )
    gd = dose_factor(current_doses, resp.dose_slope) * execution[:, None]
    # Selection on response: a treated person in the decision population is uncontrolled
    # (usual SBP >= site.treated_sbp_floor). Draw (responses, pretreatment SBP) and redraw
    # those whose regimen would have controlled them; a fixed number of rounds, vectorised
    # over the patients still pending (the few left after the last round are kept as drawn).
    pending = treated.copy()
    for _ in range(_SELECTION_ROUNDS):
        rows = np.flatnonzero(pending)
        if rows.size == 0:
            break
        eff = _standard_effect(zf[rows], blk[rows], renin[rows], sbp_untreated[rows], resp)
        on_treatment = sbp_untreated[rows] - np.sum(gd[rows] * eff, axis=1)
        bad = rows[on_treatment < site.treated_sbp_floor]
        pending[:] = False
        pending[bad] = True
        zf[bad] = rng.standard_normal((bad.size, _N_FACTORS))
        sbp_untreated[bad] = _shifted_gamma(
            rng, bad.size, site.untreated_sbp_floor, site.untreated_sbp_mean,
            site.untreated_sbp_sd,
        ) + age_bp[bad] + shift[bad]
    # Fallback for anyone still pending (vanishingly rare): fix the on-treatment SBP at the
    # floor and solve U = S + sum_c g_c L_c(U) by fixed-point iteration (a contraction:
    # b * sum g <= 0.1 * 4 * 1.22 < 0.5). ``gd`` includes the person's execution, so the
    # usual SBP is that of the regimen as actually taken.
    rows = np.flatnonzero(pending)
    for _ in range(60 if rows.size else 0):
        eff = _standard_effect(zf[rows], blk[rows], renin[rows], sbp_untreated[rows], resp)
        sbp_untreated[rows] = site.treated_sbp_floor + np.sum(gd[rows] * eff, axis=1)
    effect_std = _standard_effect(zf, blk, renin, sbp_untreated, resp)
    deviation = _deviation(zf, resp)
    sbp_usual: FloatArray = sbp_untreated - np.sum(gd * effect_std, axis=1)

    # White-coat effect: right-skewed (Gamma shape 2, capped at +35), mean 0 on top of the
    # 5 mmHg clinic-home offset, SD site.white_coat_sd [M].
    wc_scale = site.white_coat_sd / math.sqrt(2.0)
    white_coat = np.minimum(wc_scale * (rng.gamma(2.0, 1.0, n) - 2.0), 35.0)
    recorded_sd = site.clinic_recorded_sd
    # Expected recorded clinic SBP minus usual SBP: the white-coat effect for attended readings;
    # an AOBP reading sits at ambulatory level, usual - 5, with no white-coat term (Roerecke
    # 2019 [V]).
    reading_bias = np.full(n, -HOME_OFFSET) if site.aobp else white_coat
    # The decision reading: the first visit at or above the entry threshold (regression to
    # the mean; site.entry_threshold_sbp). Visits are redrawn, vectorised over the patients
    # whose reading is still below, for a fixed number of rounds; the few left (usual SBP far
    # below the threshold) keep their last reading.
    screening_noise = recorded_sd * rng.standard_normal(n)
    below = np.flatnonzero(sbp_usual + reading_bias + screening_noise < site.entry_threshold_sbp)
    for _ in range(_SELECTION_ROUNDS):
        if below.size == 0:
            break
        screening_noise[below] = recorded_sd * rng_practice.standard_normal(below.size)
        below = below[
            sbp_usual[below] + reading_bias[below] + screening_noise[below]
            < site.entry_threshold_sbp
        ]
    sbp_clinic = sbp_usual + reading_bias + screening_noise
    # DBP: falls with age, tracks SBP [M]; recorded noise about 0.65x the SBP noise
    # (clinical.md 3.3: ~6-8 vs 10-13 mmHg) [derived].
    dbp_usual = (
        28.0 + 0.42 * sbp_usual - 0.30 * (age - 55.0) + 7.0 * rng.standard_normal(n)
    )
    dbp_clinic = dbp_usual + 0.4 * reading_bias + 0.65 * recorded_sd * rng.standard_normal(n)
    sbp_home = sbp_usual - HOME_OFFSET + site.home_sd * rng.standard_normal(n)

    # --- labs on the current regimen ----------------------------------------------------------
    ras_dose = _sqrt_dose(current_doses[:, ACE] + current_doses[:, ARB])
    thz_dose = _sqrt_dose(current_doses[:, THZ])
    spi_dose = _sqrt_dose(current_doses[:, SPI])
    bb_dose = _sqrt_dose(current_doses[:, BB])
    # K+: ACEi/ARB +0.1 [M]; thiazide -0.25 (chlortalidone 0.2-0.4, clinical.md 4 [V]);
    # spironolactone +0.35 (RxFiles ~0.4 [S]); K supplement/K-sparing +0.2 [M].
    potassium = (
        potassium_untreated + 0.10 * ras_dose - 0.25 * thz_dose + 0.35 * spi_dose
        + 0.2 * k_supp
    )
    # Na+: thiazide -1.2, doubled over age 70 (Clayton 2006 OR 3.87 [V]) [derived];
    # spironolactone -0.5 [M].
    sodium = sodium_untreated - 1.2 * thz_dose * np.where(age > 70.0, 2.0, 1.0) - 0.5 * spi_dose
    # ACR: RAS blockade -35% [M]; also rises with usual SBP (+2.5%/mmHg) [M].
    acr = acr_untreated * np.exp(0.025 * (sbp_usual - 150.0)) * 0.65**ras_dose
    # eGFR: haemodynamic dip on RAS blockade (-4%) and spironolactone (-5%) [M].
    egfr = egfr_untreated * (1.0 - 0.04 * ras_dose) * (1.0 - 0.05 * spi_dose)
    heart_rate = np.clip(
        73.0 + 10.0 * rng.standard_normal(n) + 5.0 * hff - 9.0 * bb_dose, 38.0, 150.0
    )  # [M]
    ckd_true = (egfr < 60.0) | (acr >= 3.0)
    ckd = ckd_true & (u_rule[:, 11] < site.ckd_recorded_share)

    # --- measurement practice (NaN = not measured / not recorded) -----------------------------
    u_miss = rng.random((n, 10))
    nan = np.nan

    def measured(values: FloatArray, share: FloatArray | float, col: int) -> FloatArray:
        out: FloatArray = np.where(u_miss[:, col] < share, values, nan)
        return out

    values: dict[str, FloatArray] = {
        "age": age,
        "sex_female": np.where(sex_known, fem, nan),
        "ethnicity_black": np.where(ethnicity_known, blk, nan),
        "ethnicity_south_asian": np.where(ethnicity_known, sas, nan),
        "bmi": measured(bmi, site.bmi_measured, 0),
        "sbp_clinic": sbp_clinic,
        "dbp_clinic": measured(dbp_clinic, site.dbp_measured, 1),
        "sbp_home": measured(sbp_home, site.home_share, 2),
        "egfr": measured(egfr, site.egfr_measured, 3),
        "potassium": measured(potassium, site.potassium_measured, 4),
        "sodium": measured(sodium, site.sodium_measured, 5),
        "urine_acr": measured(
            acr, np.where(t2dm, site.acr_measured[1], site.acr_measured[0]), 6
        ),
        "hba1c": measured(
            hba1c, np.where(t2dm, site.hba1c_measured[1], site.hba1c_measured[0]), 7
        ),
        "diabetes_t2": dm,
        "ckd": ckd.astype(np.float64),
        "heart_failure": hff,
        "cvd": cvd.astype(np.float64),
        "heart_rate": measured(heart_rate, site.heart_rate_measured, 8),
        "hfref": hfref.astype(np.float64),
        "asthma": (asthma & ~copd).astype(np.float64),
        "copd": copd.astype(np.float64),
        "aortic_stenosis": aortic_stenosis.astype(np.float64),
        "non_dhp_ccb": non_dhp_ccb.astype(np.float64),
        "gout": gout.astype(np.float64),
        "pregnancy": pregnancy.astype(np.float64),
        "angioedema_history": angioedema.astype(np.float64),
        "heart_block": heart_block.astype(np.float64),
        "orthostatic_hypotension": orthostatic.astype(np.float64),
        "ace_inhibitor_intolerance": ace_intolerance.astype(np.float64),
        "frailty": frailty.astype(np.float64),
        "nsaid": nsaid.astype(np.float64),
        "potassium_supplement": k_supp.astype(np.float64),
        "lithium": lithium.astype(np.float64),
        # Stop-condition facts the cohort does not contain [design]: nobody breastfeeding or on
        # dialysis, one potassium result each (no trend). Set without random draws, so the
        # cohort and the trained model are unchanged by them.
        "breastfeeding": np.zeros(n),
        "dialysis": np.zeros(n),
        "potassium_previous": np.full(n, np.nan),
        # nobody on aliskiren; airways therapy only with asthma or COPD [design]
        "aliskiren": np.zeros(n),
        "airways_therapy": (asthma | copd).astype(np.float64),
        "renal_artery_stenosis": np.zeros(n),
        "sick_sinus": np.zeros(n),
        "other_antihypertensive": np.zeros(n),
        "ace_inhibitor_hypersensitivity": np.zeros(n),
        "sacubitril_valsartan": np.zeros(n),
        # no acute coronary event in the last month: the cohort is of primary-care patients
        # whose MI (if any) is in the cvd fact [design]
        "acute_coronary": np.zeros(n),
    }
    # the simulated home BP is a 7-day monitoring mean wherever it is measured [design]
    values["home_bp_series"] = (~np.isnan(values["sbp_home"])).astype(np.float64)
    # the home diastolic is not simulated [design]: the white-coat rule then needs the clinic
    # diastolic at target (a rule-only fact; the model does not read it)
    values["dbp_home"] = np.full(n, np.nan)
    assert set(values) == set(SIMULATED_FEATURES)
    features = np.empty((n, len(PATIENT_FEATURES)))
    for j, spec in enumerate(PATIENT_FEATURES):
        if spec.name in values:
            col = values[spec.name]
        elif spec.missing is Missing.ABSENT_AS_ZERO:
            col = np.zeros(n)  # a fact the simulator does not model: recorded as absent
        elif spec.missing is Missing.UNKNOWN_AS_NAN:
            col = np.full(n, np.nan)  # not modelled: unknown
        else:
            raise RuntimeError(f"required feature {spec.name!r} is not simulated")
        if spec.kind is Kind.CONTINUOUS:
            col = np.clip(col, spec.low, spec.high)
        features[:, j] = col

    latent: dict[str, FloatArray] = {
        "sbp_usual": sbp_usual,
        "sbp_untreated": sbp_untreated,
        "white_coat": white_coat,
        "reading_bias": reading_bias,
        "screening_noise": screening_noise,
        "execution": execution,
        "east_asian": east_asian.astype(np.float64),
        "nonpersistence": np.full(n, site.nonpersistence_12wk),
        "renin": renin,
        "deviation": deviation,
        "effect_std": effect_std,
        "black": blk,
        "south_asian": sas,
        "female": fem,
        "recorded_sd": np.full(n, recorded_sd),
        "dbp_usual": dbp_usual,
        "egfr_true": egfr,
        "potassium_true": potassium,
        "sodium_true": sodium,
        "acr_true": acr,
        "hba1c_true": hba1c,
        "ckd_true": ckd_true.astype(np.float64),
    }
    return Cohort(site=site.name, features=features, current_doses=current_doses,
                  latent=latent)


_BLOCK: Final[float] = -1e6


def _regimen_scores(
    n: int, *, age: FloatArray, black: BoolArray, t2dm: BoolArray, hf: BoolArray,
    hfref: BoolArray, cvd: BoolArray, asthma: BoolArray, gout: BoolArray,
    pregnancy: BoolArray, angioedema: BoolArray, heart_block: BoolArray,
    orthostatic: BoolArray, use_arb: BoolArray, potassium: FloatArray, egfr: FloatArray,
    acr: FloatArray,
) -> FloatArray:
    """Preference of each class in the NICE NG136 step order (higher = earlier step).

    Step 1 (1.4.32-1.4.39): ACEi/ARB if T2DM or age < 55 and not Black, else CCB; heart
    failure -> thiazide-like. Step 2 (1.4.40-1.4.43): add the other of A/C or D. Step 3
    (1.4.44): A + C + D. Step 4 (1.4.48-1.4.52): spironolactone if K+ <= 4.5, else alpha- or
    beta-blocker. Beta-blocker earlier with CVD or HFrEF, ACEi/ARB and spironolactone earlier
    with HFrEF (NG106 [M]); ACEi/ARB earlier with ACR >= 30 (NG203 [S]). Contraindications
    (clinical.md 2) push a class down or out (``_BLOCK``).
    """
    a_first = t2dm | ((age < 55.0) & ~black)
    low_k = potassium <= 4.5
    s = np.zeros((n, N_CLASSES))
    ras_score = np.where(a_first, 10.0, 8.5) + 4.0 * hfref + 2.0 * (acr >= 30.0)
    ras_score = np.where(pregnancy, _BLOCK, ras_score)
    s[:, ACE] = np.where(use_arb, _BLOCK, np.where(angioedema, _BLOCK, ras_score))
    s[:, ARB] = np.where(use_arb, ras_score - 3.0 * angioedema, _BLOCK)
    s[:, CCB] = np.where(a_first, 8.0, 10.0) + 2.0 * pregnancy
    s[:, THZ] = 8.0 + 3.0 * hf - 3.0 * gout - 3.0 * (egfr < 30.0) - 3.0 * pregnancy
    s[:, BB] = (
        np.where(low_k, 3.0, 4.0) + 5.0 * cvd + 8.0 * hfref - 5.0 * asthma + 6.0 * pregnancy
    )
    s[:, BB] = np.where(heart_block, _BLOCK, s[:, BB])
    s[:, SPI] = np.where(low_k, 4.0, 2.0) + 6.0 * hfref - 5.0 * (egfr < 30.0)
    s[:, SPI] = np.where((potassium > 5.0) | pregnancy, _BLOCK, s[:, SPI])
    s[:, ALP] = np.where(low_k, 2.5, 3.5) - 5.0 * orthostatic
    return s


# ------------------------------------------------------------------------------------------
# Outcomes.
# ------------------------------------------------------------------------------------------


def _check_rows(
    cohort: Cohort, patient_idx: npt.NDArray[np.intp], dose_after: FloatArray
) -> tuple[IntArray, FloatArray]:
    idx = np.asarray(patient_idx, dtype=np.intp)
    d1 = np.asarray(dose_after, dtype=np.float64)
    if idx.ndim != 1 or d1.shape != (idx.shape[0], N_CLASSES):
        raise ValueError("patient_idx must be [R] and dose_after [R, 7]")
    if idx.size and (idx.min() < 0 or idx.max() >= len(cohort)):
        raise IndexError("patient_idx out of range")
    if np.any(d1 < 0) or not np.all(np.isfinite(d1)):
        raise ValueError("dose_after must be finite and non-negative")
    return idx, d1


def efficacy_sbp_change(
    cohort: Cohort, patient_idx: npt.NDArray[np.intp], dose_after: FloatArray
) -> FloatArray:
    """Pharmacological 12-week change in usual clinic SBP of moving from the current regimen
    to ``dose_after`` with every dose taken and nothing stopped (trial conditions; what the
    anchors are calibrated to): -sum_c (g(d_after) - g(d_before)) L_c (mmHg)."""
    idx, d1 = _check_rows(cohort, patient_idx, dose_after)
    gain, loss = _parts(cohort, idx, d1)
    out: FloatArray = gain + loss
    return out


def true_sbp_change(
    cohort: Cohort, patient_idx: npt.NDArray[np.intp], dose_after: FloatArray
) -> FloatArray:
    """The person's expected 12-week change in usual clinic SBP in routine care (mmHg,
    negative = lowering): e (loss + (1 - p_stop) gain), with e the person's execution,
    ``gain`` the lowering of the new or increased drugs, ``loss`` the rise from stopped or
    reduced ones, and p_stop the chance that the new part is stopped (non-persistence or an
    attributable adverse effect, :data:`STOP_GIVEN_ADVERSE`)."""
    idx, d1 = _check_rows(cohort, patient_idx, dose_after)
    return _true_change(cohort, idx, d1)


def _parts(cohort: Cohort, idx: IntArray, d1: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(gain, loss) in mmHg at full execution: the change from increased classes (<= 0) and
    from reduced or stopped ones (>= 0)."""
    d0 = cohort.current_doses[idx]
    delta = dose_factor(d1) - dose_factor(d0)
    eff = cohort.latent["effect_std"][idx]
    gain: FloatArray = -np.einsum("rc,rc->r", np.maximum(delta, 0.0), eff)
    loss: FloatArray = -np.einsum("rc,rc->r", np.minimum(delta, 0.0), eff)
    return gain, loss


def _p_stop(cohort: Cohort, idx: IntArray, d1: FloatArray, p_adverse: FloatArray) -> FloatArray:
    """Probability that the new or increased part of an option is stopped by 12 weeks."""
    increases = np.any(d1 > cohort.current_doses[idx], axis=1)
    keep = (1.0 - cohort.latent["nonpersistence"][idx]) * (1.0 - STOP_GIVEN_ADVERSE * p_adverse)
    out: FloatArray = np.where(increases, 1.0 - keep, 0.0)
    return out


def _true_change(cohort: Cohort, idx: IntArray, d1: FloatArray) -> FloatArray:
    gain, loss = _parts(cohort, idx, d1)
    p_stop = _p_stop(cohort, idx, d1, _p_adverse(cohort, idx, d1))
    out: FloatArray = cohort.latent["execution"][idx] * (loss + (1.0 - p_stop) * gain)
    return out


def _adverse_curve(dose: FloatArray, table: tuple[float, float, float]) -> FloatArray:
    """Excess risk at a dose multiple: linear in log2 dose through Law's half/standard/double
    points, linear to 0 below half dose, flat above double [derived]."""
    half, std, dbl = table
    pos = dose > 0
    x = np.log2(np.where(pos, dose, 1.0))
    mid = np.where(x < 0.0, std + (std - half) * x, std + (dbl - std) * x)
    mid = np.where(x > 1.0, dbl, mid)
    mid = np.where(x < -1.0, half * dose / 0.5, mid)
    out: FloatArray = np.where(pos, np.maximum(mid, 0.0), 0.0)
    return out


def _p_adverse(cohort: Cohort, idx: IntArray, d1: FloatArray) -> FloatArray:
    d0 = cohort.current_doses[idx]
    female = cohort.latent["female"][idx] > 0.5
    black = cohort.latent["black"][idx] > 0.5
    east_asian = cohort.latent["east_asian"][idx] > 0.5
    age = cohort.features[idx, FEATURE_INDEX["age"]]
    asthma = cohort.features[idx, FEATURE_INDEX["asthma"]] > 0.5
    orthostatic = cohort.features[idx, FEATURE_INDEX["orthostatic_hypotension"]] > 0.5
    egfr = cohort.latent["egfr_true"][idx]
    ras_after = (d1[:, ACE] > 0) | (d1[:, ARB] > 0)
    none_left = np.ones(idx.shape[0])
    for c in CLASS_ORDER:
        j = _IDX[c]
        p0 = _adverse_curve(d0[:, j], ADVERSE_BY_DOSE[c])
        p1 = _adverse_curve(d1[:, j], ADVERSE_BY_DOSE[c])
        if c is DrugClass.ACE_INHIBITOR:
            mult = np.where(female, ACEI_FEMALE_MULT, ACEI_MALE_MULT) * np.where(
                east_asian, ACEI_EAST_ASIAN / ADVERSE_BY_DOSE[c][1], 1.0)
            started = (d0[:, j] == 0) & (d1[:, j] > 0)
            extra0 = np.zeros_like(p0)
            extra1 = np.where(
                started, np.where(black, ACEI_ANGIOEDEMA_BLACK, ACEI_ANGIOEDEMA), 0.0
            )
        elif c is DrugClass.CCB:
            mult = np.where(female, CCB_FEMALE_MULT, CCB_MALE_MULT) * np.where(
                ras_after, CCB_WITH_RAS_MULT, 1.0
            )
            extra0 = extra1 = np.zeros_like(p0)
        elif c is DrugClass.BETA_BLOCKER:
            mult = np.ones_like(p0)
            extra0 = np.where(asthma & (d0[:, j] > 0), BB_ASTHMA_EXTRA, 0.0)
            extra1 = np.where(asthma & (d1[:, j] > 0), BB_ASTHMA_EXTRA, 0.0)
        elif c is DrugClass.SPIRONOLACTONE:
            mult = np.where(female, SPIRO_FEMALE_MULT, SPIRO_MALE_MULT)
            hyperk = SPIRO_HYPERK * np.where(egfr < 45.0, 2.5, 1.0) * np.where(
                ras_after, 1.5, 1.0
            )
            extra0 = np.where(d0[:, j] > 0, hyperk, 0.0)
            extra1 = np.where(d1[:, j] > 0, hyperk, 0.0)
        elif c is DrugClass.ALPHA_BLOCKER:
            mult = np.where(orthostatic | (age >= 80.0), ALPHA_POSTURAL_MULT, 1.0)
            extra0 = extra1 = np.zeros_like(p0)
        else:
            mult = np.ones_like(p0)
            extra0 = extra1 = np.zeros_like(p0)
        q0 = np.clip(p0 * mult + extra0, 0.0, 0.95)
        q1 = np.clip(p1 * mult + extra1, 0.0, 0.95)
        # Attributable to the option: the new risk beyond what the current dose already
        # carried (the person has tolerated it so far); none for a stopped or reduced class.
        inc = np.clip((q1 - q0) / (1.0 - q0), 0.0, 1.0)
        none_left *= 1.0 - inc
    # Independent combination, which is less than additive (Law 2003 [V]: symptoms with two
    # drugs were less than additive).
    out: FloatArray = 1.0 - none_left
    return out


def simulate_outcomes(
    cohort: Cohort,
    patient_idx: npt.NDArray[np.intp],
    dose_after: FloatArray,
    seed: int = 0,
) -> Outcomes:
    """Outcomes of (patient, option) rows: ``patient_idx`` [R] into the cohort, ``dose_after``
    [R, 7] the regimen after the option (dose multiples; before = ``cohort.current_doses``).

    Noise is drawn from a stream independent of the cohort's (same seed or not). The observed
    change is measured from the decision reading the model saw, which was selected at or above
    the site's entry threshold, so it carries regression to the mean. Whether the new part of
    the option is stopped (non-persistence, or an attributable adverse effect that ends it with
    probability :data:`STOP_GIVEN_ADVERSE`) is drawn per row, with the adverse-effect draw.
    Rows that
    combine an ACE inhibitor with an ARB (forbidden, NICE NG136 1.4.34) are not rejected: their
    outcomes are simulated additively so that an evaluation can score every option; keeping
    such options out of recommendations is the guideline layer's job.
    """
    idx, d1 = _check_rows(cohort, patient_idx, dose_after)
    rng = _rng(seed, 1, cohort.site)
    r = idx.shape[0]
    sd = cohort.latent["recorded_sd"][idx]
    noise = rng.standard_normal((r, 2))
    followup_noise = sd * noise[:, 1]
    p_adverse = _p_adverse(cohort, idx, d1)
    adverse = rng.random(r) < p_adverse
    gain, loss = _parts(cohort, idx, d1)
    execution = cohort.latent["execution"][idx]
    p_stop = _p_stop(cohort, idx, d1, p_adverse)
    increases = np.any(d1 > cohort.current_doses[idx], axis=1)
    u = rng.random((r, 2))
    stopped = increases & (
        (u[:, 0] < cohort.latent["nonpersistence"][idx])
        | (adverse & (u[:, 1] < STOP_GIVEN_ADVERSE))
    )
    true_change = execution * (loss + (1.0 - p_stop) * gain)
    realised = execution * (loss + np.where(stopped, 0.0, gain))
    base = cohort.latent["sbp_usual"][idx] + cohort.latent["reading_bias"][idx]
    kept_mean = base + execution * (loss + gain)
    stopped_mean = base + execution * loss

    def p_below(threshold: FloatArray) -> FloatArray:
        t = np.asarray(threshold, dtype=np.float64)
        out: FloatArray = (1.0 - p_stop) * _ndtr((t - kept_mean) / sd) + p_stop * _ndtr(
            (t - stopped_mean) / sd)
        return out

    followup = base + realised + followup_noise
    screening_noise = cohort.latent["screening_noise"][idx]
    return Outcomes(
        true_change=true_change,
        realised_change=realised,
        stopped=stopped,
        p_stop=p_stop,
        observed_change=followup - (base + screening_noise),
        expected_observed_change=true_change - screening_noise,
        followup_sbp_expected=base + true_change,
        followup_sbp_observed=followup,
        followup_sd=sd.copy(),
        p_reading_below=p_below,
        p_adverse=p_adverse,
        adverse_observed=adverse,
    )


def _ndtr(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * special_erfc(-z / math.sqrt(2.0))
    return out

