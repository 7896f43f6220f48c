"""Choices the mapping makes that a deployment may change: lookbacks and ethnicity policy.

FHIR release: R4 (4.0.1). Defaults and their reasons:

* clinic BP: readings of the last 12 months; ``sbp_clinic`` is the lower of the last two
  (NICE NG136 1.2.2 "record the lower of the last two readings");
* home/ambulatory daytime BP: readings of the last 90 days (a recent HBPM/ABPM series,
  NG136 1.2.6-1.2.7); the 24-hour and night-time ABPM means are not used (NG136 uses the
  daytime mean);
* heart rate: latest within 12 months;
* labs (K+, Na+, creatinine, eGFR, ACR, HbA1c): latest plausible result within 15 months
  (annual monitoring plus a quarter's grace);
* BMI: latest within 24 months; LVEF: latest ever; pregnancy status: within 280 days;
* CKD from labs: two abnormal results (eGFR < 60 or ACR >= 3 mg/mmol) at least 90 days apart
  with no normal result between them (NICE NG203 / KDIGO: abnormality for more than 3 months);
* ethnicity: UK "Mixed - White and Black Caribbean/African" (D/E) is not counted as Black by
  default (NICE does not define mixed family origin): ``mixed_black_as_black`` switches it;
* medication name text is used as a last resort (and flagged) unless ``match_names`` is off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MappingPolicy:
    """Lookback windows and policy switches (see module docstring for the defaults)."""

    clinic_bp_months: int = 12
    home_bp_days: int = 90
    heart_rate_months: int = 12
    lab_months: int = 15
    bmi_months: int = 24
    pregnancy_status_days: int = 280
    ckd_persistence_days: int = 90
    mixed_black_as_black: bool = False
    match_names: bool = True


DEFAULT_POLICY = MappingPolicy()
