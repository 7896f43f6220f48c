"""Blood pressure Observations -> clinic BP, home/ambulatory mean, days since the last reading.

FHIR release: R4 (4.0.1): vital-signs BP profile http://hl7.org/fhir/StructureDefinition/bp
(panel LOINC 85354-9 with components 8480-6 systolic and 8462-4 diastolic; older Synthea
uses 55284-4), separate 8480-6/8462-4 Observations, self-measured means 96607-7 (CardX,
Vitals IG), 24-hour ABPM 97844-5/8490-5/8472-3 (Vitals IG) and the UK SNOMED observables
for daytime ABPM (314446007/314461008) and home BP (413606001/413605002);
shared/research/clinical.md 6.1 and 6.6.

A panel or reading counts as out-of-office when its method, category or Vitals-IG
MeasurementSetting extension says home/ambulatory, or its performer is the patient
(:mod:`fhir_mappings.codes`). Individual ambulatory readings taken 22:00-07:00 (local) are
night-time and not used.

Summaries (NICE NG136): ``sbp_clinic`` comes from the latest consultation (the Encounter of
the latest plausible clinic reading within 12 months when the record names one, else its
calendar day): the lower of its last two systolic readings
(1.2.2; if it has only one, that one; readings of earlier visits are never combined with it)
and ``dbp_clinic`` is the diastolic of the same reading. Two different readings at the same
instant, and implausible readings newer than the one used, are data-quality warnings that the
card shows (``BloodPressure.data_quality``). ``sbp_home`` is
the mean of home and daytime-ambulatory systolic readings of the last 90 days (1.2.6-1.2.7;
24-hour and night means are not used); ``days_since_bp`` is the age in days of the latest
clinic reading. Units: mm[Hg]; kPa x 7.50062. Entered-in-error and cancelled readings are
dropped before this module sees them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import NamedTuple

import orjson

from fhir_mappings import codes
from fhir_mappings.codes import ObsKind
from fhir_mappings.dates import When
from fhir_mappings.mapping_context import MappingContext
from fhir_mappings.measurements import Measurement, in_time_order, read_quantity
from fhir_mappings.raw_resource import RawResource, literal_reference
from fhir_mappings.sourced_fact import Fact, unknown
from fhir_mappings.units import Quantity
from vocabulary.feature_table import FEATURES_BY_NAME


class Setting(StrEnum):
    CLINIC = "clinic"
    HOME = "home"
    ABPM_DAY = "ambulatory daytime"
    ABPM_24H = "ambulatory 24-hour"
    ABPM_NIGHT = "ambulatory night-time"


_SINGLE_SETTING = {
    ObsKind.HOME_SBP: (Setting.HOME, True), ObsKind.HOME_DBP: (Setting.HOME, False),
    ObsKind.ABPM_DAY_SBP: (Setting.ABPM_DAY, True),
    ObsKind.ABPM_DAY_DBP: (Setting.ABPM_DAY, False),
    ObsKind.ABPM_24H_SBP: (Setting.ABPM_24H, True),
    ObsKind.ABPM_24H_DBP: (Setting.ABPM_24H, False),
    ObsKind.ABPM_NIGHT_SBP: (Setting.ABPM_NIGHT, True),
    ObsKind.ABPM_NIGHT_DBP: (Setting.ABPM_NIGHT, False),
}
BP_KINDS = frozenset({ObsKind.BP_PANEL, ObsKind.SBP, ObsKind.DBP, ObsKind.HOME_PANEL,
                      ObsKind.ABPM_24H_PANEL, *_SINGLE_SETTING})
_OUT_OF_OFFICE = (Setting.HOME, Setting.ABPM_DAY)
#: Any of the words (one regex search instead of a substring test per word).
_AMBULATORY = re.compile("|".join(re.escape(w) for w in codes.AMBULATORY_WORDS))
_HOME = re.compile("|".join(re.escape(w) for w in codes.HOME_WORDS))
#: systolic (True) or diastolic (False) -> its plausible range and label
_PRESSURES = {True: (FEATURES_BY_NAME["sbp_clinic"], "systolic BP"),
              False: (FEATURES_BY_NAME["dbp_clinic"], "diastolic BP")}


class BpReading(NamedTuple):
    """One systolic/diastolic pair (either may be missing) in one setting (immutable)."""

    setting: Setting
    when: When
    sbp: Measurement | None
    dbp: Measurement | None

    @property
    def res(self) -> RawResource:
        m = self.sbp or self.dbp
        assert m is not None
        return m.res

    @property
    def sort_key(self) -> tuple[object, ...]:
        return (self.when.instant, self.res.ref)

    def text(self) -> str:
        s = f"{self.sbp.value:.0f}" if self.sbp else "?"
        d = f"{self.dbp.value:.0f}" if self.dbp and self.dbp.plausible else "?"
        return f"{s}/{d} mmHg on {self.when.day} ({self.res.ref})"


@dataclass(frozen=True, slots=True)
class BloodPressure:
    facts: dict[str, Fact]
    days_since_bp: int | None
    data_quality: tuple[str, ...] = ()


def read_bp(ctx: MappingContext, res: RawResource, kind: ObsKind, when: When) -> (
        list[tuple[Setting, bool | None, Measurement | None, Measurement | None]]):
    """(setting, is_single_systolic, sbp, dbp) of one BP Observation."""
    if kind in _SINGLE_SETTING or kind in (ObsKind.SBP, ObsKind.DBP):
        if kind in _SINGLE_SETTING:
            setting, systolic = _SINGLE_SETTING[kind]
        else:
            setting, systolic = _marked_setting(ctx, res, when), kind is ObsKind.SBP
        spec, label = _PRESSURES[systolic]
        m = read_quantity(ctx, res, res.data, "", Quantity.PRESSURE, label, spec.low, spec.high,
                          when)
        return [(setting, systolic, m if systolic else None, None if systolic else m)]
    if kind is ObsKind.ABPM_24H_PANEL:
        setting = Setting.ABPM_24H
    elif kind is ObsKind.HOME_PANEL:
        marked = _marked_setting(ctx, res, when)
        setting = marked if marked is not Setting.CLINIC else Setting.HOME
    else:
        setting = _marked_setting(ctx, res, when)
    sbp = dbp = None
    for path, comp in res.objects(res.data, "component"):
        codings, _ = res.concept(comp, "code", path)
        for system, code, _display in codings:
            is_sbp = codes.BP_COMPONENTS.get((system, code))
            if is_sbp is None:
                continue
            spec, label = _PRESSURES[is_sbp]
            m = read_quantity(ctx, res, comp, path, Quantity.PRESSURE, label, spec.low,
                              spec.high, when)
            if is_sbp and sbp is None:
                sbp = m
            elif not is_sbp and dbp is None:
                dbp = m
            break
    return [(setting, None, sbp, dbp)]


def _marked_setting(ctx: MappingContext, res: RawResource, when: When) -> Setting:
    d = res.data
    setting: object = None
    if (d.get("extension") is None and d.get("method") is None
            and d.get("performer") is None):
        # then only the category decides: the same categories recur on every reading of a
        # record, so their verdict is kept for the run
        try:
            key = ("bp-category", orjson.dumps(d.get("category")))
        except (TypeError, orjson.JSONEncodeError):
            key = None
        if key is not None:
            setting = ctx.memo.get(key, _UNKNOWN)
            if setting is _UNKNOWN:
                setting = ctx.memo[key] = _setting_of(ctx, res)
        else:
            setting = _setting_of(ctx, res)
    else:
        setting = _setting_of(ctx, res)
    if setting is None:  # ambulatory: daytime or night-time by the hour of the reading
        if when.hour is not None and (when.hour >= 22 or when.hour < 7):
            return Setting.ABPM_NIGHT
        return Setting.ABPM_DAY
    assert isinstance(setting, Setting)
    return setting


_UNKNOWN = object()


def _setting_of(ctx: MappingContext, res: RawResource) -> Setting | None:
    """The setting a BP Observation is marked with; None: ambulatory, and the hour of the
    reading decides between daytime and night-time."""
    d = res.data
    words: list[str] = []
    coded: set[tuple[str, str]] = set()
    for path, ext in res.objects(d, "extension"):
        if res.string(ext, "url", path) == codes.MEASUREMENT_SETTING_EXTENSION:
            codings, text = res.concept(ext, "valueCodeableConcept", path)
            coded.update((s, c) for s, c, _ in codings)
            words.append(text)
    codings, text = res.concept(d, "method")
    words.append(text)
    coded.update((s, c) for s, c, _ in codings)
    words.extend(disp for _, _, disp in codings)
    for codings, text in res.concepts(d, "category"):
        words.append(text)
        words.extend(c for _, c, _ in codings)
        words.extend(disp for _, _, disp in codings)
    joined = " ".join(words).lower()
    if _AMBULATORY.search(joined):
        if "24" in joined:
            return Setting.ABPM_24H
        if "night" in joined:
            return Setting.ABPM_NIGHT
        return None
    if coded & codes.HOME_SETTING_CODES or _HOME.search(joined):
        return Setting.HOME
    for path, perf in res.objects(d, "performer"):
        ref = res.string(perf, "reference", path)
        if not ref:
            continue
        target = ctx.resolve(ref, res)
        rtype = target.resource_type if target else ref.rsplit("/", 2)[-2] if "/" in ref else ""
        if rtype in ("Patient", "RelatedPerson"):
            return Setting.HOME
    return Setting.CLINIC


def pair_readings(parts: list[tuple[Setting, bool | None, Measurement | None,
                                    Measurement | None, When]]) -> list[BpReading]:
    """Panels as they are; separate systolic/diastolic Observations paired by time."""
    readings: list[BpReading] = []
    singles: dict[tuple[Setting, object], tuple[list[Measurement], list[Measurement]]] = (
        defaultdict(lambda: ([], [])))
    for setting, single, sbp, dbp, when in parts:
        if single is None:
            if sbp is not None or dbp is not None:
                readings.append(BpReading(setting, when, sbp, dbp))
        elif single and sbp is not None:
            singles[(setting, when.instant)][0].append(sbp)
        elif not single and dbp is not None:
            singles[(setting, when.instant)][1].append(dbp)
    for (setting, _instant), (sbps, dbps) in singles.items():
        sbps = in_time_order(sbps)
        dbps = in_time_order(dbps)
        for i, s in enumerate(sbps):
            readings.append(BpReading(setting, s.when, s, dbps[i] if i < len(dbps) else None))
    return readings


def summarise(ctx: MappingContext, readings: list[BpReading],
              older: date | None = None, home_since: date | None = None) -> BloodPressure:
    """The NICE summaries (see module docstring); ``older``: latest reading before the
    clinic window (not read further); ``home_since``: the day the current regimen last
    changed (home readings on or before it are not used)."""
    facts: dict[str, Fact] = {}
    as_of = ctx.as_of
    start = ctx.months_before(ctx.policy.clinic_bp_months)
    window = f"last {ctx.policy.clinic_bp_months} months"
    clinic_all = in_time_order(r for r in readings if r.setting is Setting.CLINIC
                               and r.sbp is not None and r.when.day <= as_of)
    clinic = [r for r in clinic_all if r.when.day >= start]
    implausible = [r for r in clinic if r.sbp is not None and not r.sbp.plausible]
    clinic = [r for r in clinic if r.sbp is not None and r.sbp.plausible]
    days_since: int | None = None
    quality: list[str] = []
    if not clinic:
        note = f"no clinic blood pressure in the {window}"
        before = [r.when.day for r in clinic_all if r.when.day < start]
        latest_before = max([*before, *([older] if older else [])], default=None)
        if latest_before:
            note += f" (latest reading: {latest_before})"
        if implausible:
            note += f"; implausible readings not used: {_texts(implausible)}"
            quality.append(f"Clinic BP {_texts(implausible)} rejected as implausible.")
        facts["sbp_clinic"] = unknown(note)
        facts["dbp_clinic"] = unknown(note)
    else:
        latest_day = clinic[-1].when.day
        latest = _consultation(clinic[-1])
        visit = [r for r in clinic if _consultation(r) == latest]
        last_two = visit[-2:]
        chosen = min(reversed(last_two), key=lambda r: r.sbp.value if r.sbp else 0.0)
        for r in last_two:
            ctx.use(r.res)
            if r.dbp is not None:
                ctx.use(r.dbp.res)
        if len(last_two) == 2:
            note = (f"lower of the last two clinic readings of the latest consultation "
                    f"({latest_day}; NICE NG136 1.2.2): " + "; ".join(r.text() for r in last_two))
        else:
            note = f"the only clinic reading of the latest consultation ({latest_day})"
        if len(clinic) > len(visit):
            note += "; readings of earlier visits are not combined with it"
        later_bad = [r for r in implausible if r.sort_key > last_two[0].sort_key]
        if later_bad:
            note += f"; implausible readings not used: {_texts(later_bad)}"
            quality.append(f"Clinic BP {_texts(later_bad)} rejected as implausible; the "
                           f"assessment uses {chosen.text()}.")
        quality.extend(_conflicts(visit))
        assert chosen.sbp is not None
        facts["sbp_clinic"] = Fact(chosen.sbp.value, chosen.sbp.res.ref, chosen.when.day,
                                   _join(note, chosen.sbp.note))
        if chosen.dbp is not None and chosen.dbp.plausible:
            facts["dbp_clinic"] = Fact(chosen.dbp.value, chosen.dbp.res.ref, chosen.when.day,
                                       _join("diastolic of the reading chosen for sbp_clinic",
                                             chosen.dbp.note))
        elif chosen.dbp is not None:
            facts["dbp_clinic"] = unknown(
                f"the diastolic value of {chosen.res.ref} is implausible: not used")
            quality.append(f"Diastolic BP of {chosen.text()} rejected as implausible.")
        else:
            facts["dbp_clinic"] = unknown(
                f"the reading chosen for sbp_clinic ({chosen.res.ref}) has no diastolic value")
        days_since = (as_of - clinic[-1].when.day).days
    facts["sbp_home"], facts["dbp_home"], series = _home(ctx, readings, home_since)
    home = facts["sbp_home"]
    if home.value is not None:  # (no readings at all: not recorded, taken as absent)
        facts["home_bp_series"] = Fact(
            1.0 if series else 0.0, home.source, home.date,
            f"a recorded mean or at least {HOME_SERIES_MIN} readings" if series else
            f"fewer than {HOME_SERIES_MIN} readings and no recorded mean")
    return BloodPressure(facts, days_since, tuple(quality))


def _consultation(r: BpReading) -> object:
    """Which consultation a reading belongs to: its Encounter when the record names one (a
    visit across midnight stays one consultation), else its calendar day."""
    return literal_reference(r.res.data, "encounter") or r.when.day


def _conflicts(visit: list[BpReading]) -> list[str]:
    """Readings of one consultation taken at the same instant that disagree (the same
    reading sent twice is not a conflict)."""
    by_instant: dict[object, list[BpReading]] = defaultdict(list)
    for r in visit:
        by_instant[r.when.instant].append(r)
    out = []
    for group in by_instant.values():
        values = {(r.sbp.value if r.sbp else None,
                   r.dbp.value if r.dbp and r.dbp.plausible else None) for r in group}
        if len(values) > 1:
            out.append("Conflicting clinic BP readings at the same time: "
                       f"{_texts(group)}; the lower is used: check which is right.")
    return out


def _home(ctx: MappingContext, readings: list[BpReading], since: date | None
          ) -> tuple[Fact, Fact, bool]:
    """The home/daytime-ambulatory systolic and diastolic means, and whether they are a
    monitoring series. Only readings after the current regimen's last change count: a
    series taken on another regimen says nothing of this one."""
    days = ctx.policy.home_bp_days
    start = ctx.as_of - timedelta(days=days)
    window = [r for r in readings if r.setting in _OUT_OF_OFFICE and r.sbp is not None
              and r.sbp.plausible and start <= r.when.day <= ctx.as_of]
    chosen = in_time_order(r for r in window if since is None or r.when.day > since)
    if not chosen:
        note = f"no home or daytime ambulatory readings in the last {days} days"
        if window:
            note = (f"{len(window)} home or daytime ambulatory readings, all on or before "
                    f"the regimen change of {since}: not used")
        elif any(r.setting is Setting.ABPM_24H for r in readings):
            note += " (24-hour ABPM means are not used: NICE NG136 uses the daytime mean)"
        return unknown(note), unknown(note), False
    values = [r.sbp.value for r in chosen if r.sbp is not None]
    dias = [r.dbp.value for r in chosen if r.dbp is not None and r.dbp.plausible]
    for r in chosen:
        ctx.use(r.res)
    first, last = chosen[0], chosen[-1]
    kinds = sorted({r.setting.value for r in chosen})
    series = any(_is_mean(r.res) for r in chosen) or len(values) >= HOME_SERIES_MIN
    earlier = len(window) - len(chosen)
    note = (f"mean of {len(values)} {' and '.join(kinds)} systolic readings from "
            f"{first.when.day} to {last.when.day}"
            + (f"; {earlier} earlier readings, before the regimen change of {since}, not "
               "used" if earlier else "")
            + ("" if series else f"; fewer than {HOME_SERIES_MIN} readings and no recorded "
               "mean: not a monitoring series"))
    dbp = (Fact(sum(dias) / len(dias), last.res.ref, last.when.day,
                f"mean of the {len(dias)} diastolic values of the same readings") if dias
           else unknown("the home/ambulatory readings have no diastolic value"))
    return (Fact(sum(values) / len(values), last.res.ref, last.when.day, note), dbp,
            series)


#: A home/ambulatory systolic is a monitoring series (NICE NG136 1.2.6-1.2.7: ABPM at least 14
#: waking readings; HBPM 2 readings twice a day for 4-7 days) when it is a recorded mean (a
#: 96607-7 home mean, a daytime ABPM mean) or at least this many single readings (our
#: minimum, below NICE's full protocol).
HOME_SERIES_MIN = 8
_MEAN_KINDS = frozenset({ObsKind.HOME_PANEL, ObsKind.HOME_SBP, ObsKind.HOME_DBP,
                         ObsKind.ABPM_DAY_SBP, ObsKind.ABPM_DAY_DBP})


def _is_mean(res: RawResource) -> bool:
    """Whether an out-of-office Observation is a recorded mean of a series."""
    codings, _ = res.concept(res.data, "code")
    return any(codes.OBSERVATION_CODES.get((system, code)) in _MEAN_KINDS
               for system, code, _display in codings)


def _texts(readings: list[BpReading]) -> str:
    return ", ".join(r.text() for r in readings)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
