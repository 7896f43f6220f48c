"""Site-dependent parameters of the cohort simulator: the internal and the external site.

Everything that differs between two care settings lives here: case-mix (age, sex, ethnicity,
BMI, comorbidity prevalence, kidney function), the treatment already on board (how many
classes, which doses, how often an ARB rather than an ACE inhibitor), and measurement practice
(clinic reading noise, how often home or ambulatory BP is recorded, how often each lab is
measured). The drug-response biology is *not* site-dependent and lives in
:mod:`models.training.simulator` (``ResponseParameters``).

Evidence tags follow research/clinical.md: **[V]** checked against source text, **[S]**
secondary summary, **[M]** background knowledge not re-checked, **[derived]** computed from
the cited numbers. Case-mix numbers are not in clinical.md; they are marked **[M]** where they
are background knowledge about UK primary care and **[design]** where they are a deliberate
choice that makes the external site a drift scenario (DESIGN.md section 4) rather than a fact.

INTERNAL is a UK primary-care-like practice population of people with hypertension who are
being considered for their first drug or their next step. EXTERNAL is another site: older,
more diabetes and CKD, about 30% Black and 15% East Asian patients (the latter hidden from the
model, with their own ACE-inhibitor cough rate), unattended automated clinic readings (AOBP,
no white-coat effect) instead of attended ones, poorer adherence, more home/ambulatory BP,
different lab-ordering habits and more double doses: its response in practice differs, not
only its case-mix.

Practice parameters (issue 14): the entry threshold on the recorded reading (regression to the
mean), the clinic measurement method, and adherence (execution of the doses and
non-persistence with a new drug) are site-dependent too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SiteParameters:
    """Every site-dependent number of the simulator (see the module docstring for the tags)."""

    name: str
    """Short site id, stored on each :class:`~models.training.simulator.Cohort`."""
    description: str

    # --- demography ---------------------------------------------------------------------------
    age_mean: float
    """Mean age (years) of the decision population; age is a scaled Beta on [age_min, age_max]."""
    age_sd: float
    age_min: float
    age_max: float
    female_share: float
    sex_unknown_share: float
    """Share whose administrative sex is not recorded (feature NaN)."""
    black_share: float
    """Black African or African-Caribbean family origin (true, whether or not recorded)."""
    south_asian_share: float
    ethnicity_unknown_share: float
    """Share whose ethnicity is not recorded: NaN in both ethnicity flags (UK Core Z / 99)."""
    bmi_median: float
    """Median BMI (kg/m2); log-normal around it."""
    bmi_log_sd: float

    # --- comorbidity prevalence (risk gradients are fixed in the simulator) --------------------
    t2dm_prevalence: float
    cvd_prevalence: float
    hf_prevalence: float
    hfref_share_of_hf: float
    asthma_copd_prevalence: float
    gout_prevalence: float
    pregnancy_rate_women_18_45: float
    """Pregnant, planning pregnancy or breastfeeding, among women aged 18-45."""
    nsaid_share: float
    potassium_supplement_share: float
    lithium_share: float
    egfr_at_60: float
    """Median eGFR (mL/min/1.73m2, CKD-EPI) at age 60 without diabetes or heart failure."""
    egfr_decline_per_year: float
    egfr_log_sd: float
    acr_median: float
    """Median urine ACR (mg/mmol) without diabetes at SBP 150, age 60; log-normal."""
    acr_log_sd: float
    ckd_recorded_share: float
    """Share of people meeting the CKD definition (eGFR<60 or ACR>=3) who carry a CKD code."""

    # --- blood pressure -----------------------------------------------------------------------
    untreated_sbp_floor: float
    """Untreated usual SBP (clinic scale) = floor + Gamma with the mean/sd below."""
    untreated_sbp_mean: float
    untreated_sbp_sd: float
    pretreatment_shift_per_class: float
    """Pretreatment SBP of treated people = the untreated distribution + this many mmHg per
    class now taken (people who needed more drugs started higher)."""
    treated_sbp_floor: float
    """Lowest usual SBP on the current regimen: treated people in the decision population are
    uncontrolled (they are asking for the next step). Responses and pretreatment SBP of a
    treated person whose on-treatment SBP falls below it are redrawn, so that people on
    several drugs are, realistically, the poorer responders."""
    white_coat_sd: float
    """SD of the person's white-coat effect (right-skewed, mean 0 on top of the clinic-home
    offset of 5 mmHg)."""

    # --- regimen mix --------------------------------------------------------------------------
    class_count_probs: tuple[float, float, float, float, float]
    """P(0, 1, 2, 3, 4 antihypertensive classes currently taken)."""
    dose_probs: tuple[float, float, float]
    """P(half, standard, double standard dose) of each class currently taken."""
    arb_share_of_ras: float
    """P(ARB rather than ACEi) for a non-Black person who tolerates ACEi."""
    regimen_noise: float
    """Gumbel scale of deviations from the NICE step order (0 = strictly by the book)."""

    # --- measurement practice -----------------------------------------------------------------
    clinic_visit_sd: float
    """SD of the visit-level deviation of clinic SBP (shared by the readings of one visit)."""
    clinic_reading_sd: float
    """SD of one reading around its visit mean; a single clinic reading has SD
    sqrt(visit^2 + reading^2)."""
    home_share: float
    """Share with a home (HBPM) or ambulatory daytime mean recorded (NaN otherwise)."""
    home_sd: float
    """SD of a home/ambulatory daytime mean around usual SBP - 5 mmHg."""
    dbp_measured: float
    bmi_measured: float
    egfr_measured: float
    potassium_measured: float
    sodium_measured: float
    acr_measured: tuple[float, float]
    """Share with a urine ACR result: (without diabetes, with diabetes)."""
    hba1c_measured: tuple[float, float]
    """Share with an HbA1c result: (without diabetes, with diabetes)."""
    heart_rate_measured: float

    # --- practice: selection, measurement method, adherence (issue 14) -----------------------
    entry_threshold_sbp: float = 140.0
    """A person enters the decision population at the first visit whose recorded clinic SBP is
    at or above this (NICE NG136 1.2.3 / 1.4.20: clinic 140 mmHg is the diagnosis and the
    treated-target threshold under 80 [V]). Visits below it did not prompt a decision, so the
    reading the model sees is selected high: its noise is not mean zero, the person's usual BP
    is lower than it, and the next reading regresses to the mean (Salam et al. J Hypertens
    2019: in BP-lowering trials most of the fall from a high baseline reading is regression to
    the mean [V])."""
    aobp: bool = False
    """Clinic SBP is an unattended automated office reading (the mean of ``aobp_readings``
    readings, patient alone) instead of the lower of two attended readings. Roerecke et al.
    JAMA Intern Med 2019 [V]: AOBP is about awake-ambulatory level (mean difference 0.3 mmHg)
    and has no white-coat effect; routine office readings are 14.5 mmHg higher. Here an AOBP
    reading sits at usual - 5 mmHg (the NICE clinic-ambulatory offset, so the clinic scale of
    the drug effects is kept) with no white-coat term."""
    aobp_readings: int = 5
    """Readings averaged by the AOBP device [M] (the BpTRU-style protocol of the AOBP studies)."""
    east_asian_share: float = 0.0
    """East Asian family origin (hidden: not a model feature). ACEi cough is commoner
    (``simulator.ACEI_EAST_ASIAN``), so more of them stop an ACE inhibitor."""
    execution_mean: float = 0.90
    """Mean share of the drug effect a person gets from taking the prescribed doses
    (execution): Vrijens et al. BMJ 2008 (4783 electronically monitored patients) [S]: on any
    day about 10% of patients still on treatment omitted the dose. Person-level, Beta
    distributed, applies to every drug the person takes (current and new)."""
    execution_sd: float = 0.10
    """Between-person SD of execution [assumption]."""
    nonpersistence_12wk: float = 0.12
    """Share who stop a newly started or increased drug within 12 weeks for reasons other than
    an attributable adverse effect: Vrijens 2008 [S] about half stopped within a year; a
    constant hazard gives 15% at 12 weeks, of which part is the adverse-effect stopping
    simulated separately, so 0.12 [derived]."""

    def __post_init__(self) -> None:
        for name in ("class_count_probs", "dose_probs"):
            probs = getattr(self, name)
            if abs(sum(probs) - 1.0) > 1e-9 or min(probs) < 0:
                raise ValueError(f"{self.name}: {name} must be probabilities summing to 1")
        if self.black_share + self.south_asian_share > 1.0:
            raise ValueError(f"{self.name}: ethnicity shares exceed 1")
        if not self.age_min < self.age_mean < self.age_max:
            raise ValueError(f"{self.name}: age_mean must lie inside (age_min, age_max)")
        if self.black_share + self.south_asian_share + self.east_asian_share > 1.0:
            raise ValueError(f"{self.name}: ethnicity shares exceed 1")
        if not 0.0 < self.execution_mean < 1.0 or not 0.0 <= self.nonpersistence_12wk < 1.0:
            raise ValueError(f"{self.name}: adherence parameters out of range")

    @property
    def clinic_single_reading_sd(self) -> float:
        """SD of one clinic reading around the person's usual clinic value."""
        return float((self.clinic_visit_sd**2 + self.clinic_reading_sd**2) ** 0.5)

    @property
    def clinic_recorded_sd(self) -> float:
        """SD of the recorded clinic SBP around its expectation: the lower of two readings
        (NICE NG136 1.2.2), or the mean of ``aobp_readings`` AOBP readings.

        The minimum of two readings with SD s has variance (1 - 1/pi) s^2; the visit deviation
        is shared by both readings.
        """
        if self.aobp:
            return float(math.sqrt(self.clinic_visit_sd**2
                                   + self.clinic_reading_sd**2 / self.aobp_readings))
        return float(
            math.sqrt(self.clinic_visit_sd**2 + (1.0 - 1.0 / math.pi) * self.clinic_reading_sd**2)
        )

    @property
    def execution_beta(self) -> tuple[float, float]:
        """Beta(a, b) parameters of person-level execution (mean, sd above)."""
        m, v = self.execution_mean, self.execution_sd**2
        if v >= m * (1.0 - m):
            raise ValueError(f"{self.name}: execution_sd too large for its mean")
        c = m * (1.0 - m) / v - 1.0
        return m * c, (1.0 - m) * c


INTERNAL = SiteParameters(
    name="internal",
    description="UK primary-care-like practice population with hypertension, considered for "
    "a first drug or the next step",
    # Age of treated/considered hypertensive adults in UK primary care: mean about 60 [M].
    age_mean=60.0, age_sd=13.0, age_min=18.0, age_max=100.0,
    # About half women among people with hypertension in England [M].
    female_share=0.49, sex_unknown_share=0.0,
    # England & Wales census 2021: Black 4.0%, Indian/Pakistani/Bangladeshi about 7% of the
    # population [M]; ethnicity not stated in about 10% of primary-care records [M].
    black_share=0.035, south_asian_share=0.065, ethnicity_unknown_share=0.10,
    east_asian_share=0.01,  # census 2021: Chinese 0.7% plus part of "other Asian" [M]
    # People with hypertension in England: median BMI about 29 [M].
    bmi_median=29.0, bmi_log_sd=0.17,
    # QOF-like prevalences among people with hypertension [M]: T2DM about 1 in 5, CHD/stroke
    # about 1 in 7, heart failure 3-4% (about half HFrEF), asthma or COPD about 1 in 7, gout
    # about 6%.
    t2dm_prevalence=0.20, cvd_prevalence=0.14, hf_prevalence=0.035, hfref_share_of_hf=0.5,
    asthma_copd_prevalence=0.15, gout_prevalence=0.06,
    pregnancy_rate_women_18_45=0.04,  # pregnant, planning or breastfeeding [design]
    nsaid_share=0.07, potassium_supplement_share=0.02, lithium_share=0.004,  # [M]
    # CKD-EPI eGFR about 80 at 60, falling about 0.75/yr [M]; ACR >= 3 in about 1 in 8
    # without diabetes and about 1 in 3 with it [M]; CKD under-recorded in UK practice [M].
    egfr_at_60=82.0, egfr_decline_per_year=0.75, egfr_log_sd=0.17,
    acr_median=0.8, acr_log_sd=1.0, ckd_recorded_share=0.8,
    # Decision population: untreated usual SBP about 150-165, treated people uncontrolled on
    # their regimen (they are asking for the next step) [design].
    untreated_sbp_floor=138.0, untreated_sbp_mean=158.0, untreated_sbp_sd=11.0,
    pretreatment_shift_per_class=6.0, treated_sbp_floor=135.0,
    white_coat_sd=7.0,  # [M] clinic-minus-daytime-ABPM spread
    # UK treated hypertensives: roughly 40/30/20/10% on 1/2/3/4+ drugs among treated [M];
    # here 40% are untreated newly diagnosed people [design].
    class_count_probs=(0.40, 0.30, 0.19, 0.09, 0.02),
    dose_probs=(0.15, 0.60, 0.25),
    arb_share_of_ras=0.30,  # ramipril/lisinopril dominate UK RAS prescribing [M]
    regimen_noise=1.0,
    # Warren et al. BJGP 2010 [V]: office SBP within-person CV 8.6% (about 12 mmHg at 145).
    # Visit 9.5 and reading 6.0 give a single reading SD 11.2 and a recorded (lower of two)
    # SD 10.7 mmHg [derived].
    clinic_visit_sd=9.5, clinic_reading_sd=6.0,
    # Warren 2010 [V]: one week of HBPM CV 4.2% (about 6 mmHg); clinical.md suggests 5-6.
    home_share=0.35, home_sd=5.5,
    dbp_measured=0.99, bmi_measured=0.85, egfr_measured=0.90, potassium_measured=0.88,
    sodium_measured=0.88, acr_measured=(0.35, 0.85), hba1c_measured=(0.70, 0.97),
    heart_rate_measured=0.75,  # lab-ordering habits [M]/[design]
    # attended clinic readings, lower of two; entry at 140; adherence as in the field
    # defaults (Vrijens 2008 [S])
)

EXTERNAL = SiteParameters(
    name="external",
    description="Second site (drift scenario): older, more diabetes and CKD, about 30% Black "
    "and 15% East Asian patients, unattended automated clinic readings (AOBP), poorer "
    "adherence, more home/ambulatory BP",
    age_mean=67.0, age_sd=12.0, age_min=18.0, age_max=100.0,  # [design]
    female_share=0.53, sex_unknown_share=0.005,  # [design]
    black_share=0.30, south_asian_share=0.04, ethnicity_unknown_share=0.15,  # [design]
    # 15% East Asian [design]: hidden (no feature), with their own ACEi cough rate (RR 5.2,
    # clinical.md 4 [V]), so ACE inhibitors are stopped more often than the model learned.
    east_asian_share=0.15,
    bmi_median=30.5, bmi_log_sd=0.18,  # [design]
    t2dm_prevalence=0.33, cvd_prevalence=0.22, hf_prevalence=0.07, hfref_share_of_hf=0.5,
    asthma_copd_prevalence=0.14, gout_prevalence=0.09,  # [design]
    pregnancy_rate_women_18_45=0.04,
    nsaid_share=0.09, potassium_supplement_share=0.03, lithium_share=0.003,  # [design]
    egfr_at_60=80.0, egfr_decline_per_year=0.8, egfr_log_sd=0.19,  # [design] more CKD
    acr_median=0.9, acr_log_sd=1.05, ckd_recorded_share=0.9,  # [design]
    untreated_sbp_floor=138.0, untreated_sbp_mean=162.0, untreated_sbp_sd=13.0,  # [design]
    pretreatment_shift_per_class=6.0, treated_sbp_floor=135.0,
    white_coat_sd=7.0,
    class_count_probs=(0.30, 0.28, 0.24, 0.13, 0.05),  # [design] more multi-drug regimens
    dose_probs=(0.10, 0.55, 0.35),  # [design] more double doses
    arb_share_of_ras=0.45,  # [design] ARB-leaning formulary
    regimen_noise=1.3,  # [design] less guideline-bound prescribing
    # Noisier single clinic readings: single reading SD 13.6, recorded SD 12.8 [design],
    # still within the 10-13.5 range of Warren 2010 / Muntner 2011 [V].
    clinic_visit_sd=11.0, clinic_reading_sd=8.0,
    # More ambulatory monitoring: daytime ABPM mean SD about 6 (Bo et al. 2020 [V]).
    home_share=0.60, home_sd=6.0,
    dbp_measured=0.97, bmi_measured=0.75, egfr_measured=0.95, potassium_measured=0.80,
    sodium_measured=0.80, acr_measured=(0.55, 0.80), hba1c_measured=(0.85, 0.95),
    heart_rate_measured=0.90,  # [design]
    # Measurement practice differs [design]: unattended automated office BP (Roerecke 2019
    # [V]: about awake-ambulatory level, no white-coat effect), mean of 5 readings.
    aobp=True, aobp_readings=5,
    # Poorer adherence [assumption]: execution 0.80 and 20% non-persistence at 12 weeks;
    # adherence varies widely between settings (Vrijens 2008 [S]); chosen to be a clear,
    # conservative difference from the internal site, not a measured figure.
    execution_mean=0.80, execution_sd=0.15, nonpersistence_12wk=0.20,
)

SITES: dict[str, SiteParameters] = {"internal": INTERNAL, "external": EXTERNAL}
