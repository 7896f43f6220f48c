"""Remove each control of docs/safety/hazard-log.md in turn and check that its tests fail.

Run from the repository root: ``uv run python tests/safety/check_controls.py [NAME ...]``.
Each mutation replaces one exact piece of source (asserted to occur once), runs the tests
named for the control, and restores the file (also on error). A control whose tests still pass
without it is listed at the end and the script exits 1. Not collected by pytest: it edits the
working tree, so run it on a clean checkout, not beside other work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = "tests/fhir_mappings/test_identity_and_availability.py"
SERVICE = "tests/service/test_patient_safety.py"
BUNDLE = "tests/fhir_mappings/test_bundle.py"
STOPS = "tests/models/test_stops.py"
PREGNANCY = "tests/fhir_mappings/test_pregnancy_evidence.py"
STEPS = "tests/models/test_guideline_steps.py"
BP = "tests/fhir_mappings/test_blood_pressure.py"
STORE = "tests/audit_store/test_store.py"
RULES = "tests/models/test_safety_rules.py"
CHECKS = "tests/models/test_prescribing_checks.py"
CITES = "tests/models/test_citations.py"
LABELS = "tests/models/test_option_labels.py"
PRESCRIBING = "tests/models/test_prescribing.py"
ALLERGIES = "tests/fhir_mappings/test_allergies.py"
MEDS = "tests/fhir_mappings/test_medications.py"
BRANDS = "tests/fhir_mappings/test_brands.py"
CONDITIONS = "tests/fhir_mappings/test_conditions.py"
ORDER_HOOKS = "tests/service/test_order_hooks.py"
FEEDBACK = "tests/service/test_feedback_checks.py"
RANKING = "tests/models/test_ranking.py"
CASES = "tests/safety/test_cases.py"
DECISIONS = "tests/evaluation/test_decisions.py"
EXPLAIN = "tests/models/test_explanations.py"
RUNTIME = "tests/models/test_runtime.py"
CDS = "tests/service/test_cds_hooks.py"
PANEL = "tests/service/test_panel_html.py"
VERIFIER = "tests/rationale/test_verifier.py"
PLANTED = "tests/rationale/test_planted_errors.py"
FACTS = "tests/rationale/test_facts.py"
DELIVERY = "tests/service/test_rationale_delivery.py"
DELIVERY_SETTINGS = "tests/service/test_rationale_delivery_settings.py"
CLIENT = "tests/rationale/test_client.py"
WRITER = "tests/rationale/test_writer.py"


class Mutation(NamedTuple):
    """Replace ``old`` by ``new`` in ``path``: the control of hazard ``name`` is gone."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation('H-01 subjects swept', 'fhir_mappings/patient_record.py',
             '    for res in resources:\n        key = _SUBJECT_KEYS.get(res.resource_type)',
             '    for res in ():\n        key = _SUBJECT_KEYS.get(res.resource_type)',
             (IDENTITY,)),
    Mutation('H-01 about_patient raises', 'fhir_mappings/mapping_context.py',
             '        if other:\n            raise PatientMismatch(',
             '        if False:\n            raise PatientMismatch(',
             (BUNDLE, SERVICE)),
    Mutation('H-01 context patient', 'fhir_mappings/patient_record.py',
             '    if expected is not None and patient.id != expected:',
             '    if False:',
             (IDENTITY, SERVICE)),
    Mutation('H-01 patient id required', 'fhir_mappings/patient_record.py',
             '    if not patient.id:\n        raise PatientMismatch',
             '    if False:\n        raise PatientMismatch',
             (IDENTITY, SERVICE)),
    Mutation('H-01 draft order subject', 'service/orders.py',
             '        _check_subject(mr, hook.context.patientId)\n',
             '',
             (SERVICE,)),
    Mutation('H-01 refusal audited', 'service/audit_writing.py',
             '    await record_assessment(state, record, [])\n',
             '',
             (SERVICE,)),
    Mutation('H-02 absent key unavailable', 'fhir_mappings/bundle.py',
             '            if key not in doc:\n                self.lacks',
             '            if False:\n                self.lacks',
             (IDENTITY,)),
    Mutation('H-02 cannot assess when unavailable', 'models/assessment.py',
             '        why = p.unavailable.get(domain.value)\n        if why is not None:',
             '        why = p.unavailable.get(domain.value)\n        if False:',
             (STOPS, SERVICE)),
    Mutation('H-02 resolver reasons passed', 'service/api/hooks.py',
             'unavailable=unavailable_domains(resolved.unavailable))',
             'unavailable=None)',
             (SERVICE,)),
    Mutation('H-03 severe', 'models/guideline/stops.py',
             ' *_pregnancy(p), *_severe(p),',
             ' *_pregnancy(p),',
             (STOPS, SERVICE)),
    Mutation('H-04 potassium', 'models/guideline/stops.py',
             '    return (*_potassium(p), *_pregnancy(p),',
             '    return (*_pregnancy(p),',
             (STOPS,)),
    Mutation('H-04 rising', 'models/guideline/stops.py',
             '    if k >= K_RISING and taking and prev is not None and k > prev:',
             '    if False:',
             (STOPS,)),
    Mutation('H-05 kidney', 'models/guideline/stops.py',
             ' *_kidney_failure(p),',
             '',
             (STOPS,)),
    Mutation('H-06 low', 'models/guideline/stops.py',
             ' *_low(p, target))',
             ')',
             (STOPS, SERVICE)),
    Mutation('H-07 pregnancy stop', 'models/guideline/stops.py',
             ' *_pregnancy(p), *_severe(p),',
             ' *_severe(p),',
             (STOPS,)),
    Mutation('H-07 pregnancy observations', 'fhir_mappings/observations.py',
             '            evidence = _pregnancy_evidence(ctx, res, kind, when)',
             '            evidence = None',
             (PREGNANCY,)),
    Mutation('H-07 unknown never cancels', 'fhir_mappings/observations.py',
             '    if coded & no:\n',
             '    if coded & no or not coded & yes:\n',
             (PREGNANCY,)),
    Mutation('H-08 breastfeeding rule', 'models/guideline/safety.py',
             '    ras_in_pregnancy, breastfeeding, ras_childbearing_potential,',
             '    ras_in_pregnancy, ras_childbearing_potential,',
             (STOPS,)),
    Mutation('H-09 diastolic counts', 'models/guideline/nice.py',
             '    return sbp >= target.systolic or (dbp is not None and dbp >= target.diastolic)',
             '    return sbp >= target.systolic',
             (STEPS, SERVICE)),
    Mutation('H-09 no suggestions at target', 'service/cards.py',
             '    suggestions = _suggestions(a, ctx) if order_hook and treat else []',
             '    suggestions = _suggestions(a, ctx) if order_hook else []',
             (SERVICE,)),
    Mutation('H-09 over-treatment named', 'service/cards.py',
             '        elif not treat:\n',
             '        elif False:\n',
             (SERVICE,)),
    Mutation('H-10 latest consultation', 'fhir_mappings/blood_pressure.py',
             '        visit = [r for r in clinic if _consultation(r) == latest]',
             '        visit = clinic',
             (BP,)),
    Mutation('H-10 conflicts', 'fhir_mappings/blood_pressure.py',
             '        quality.extend(_conflicts(visit))',
             '        pass',
             (BP,)),
    Mutation('H-11 data findings', 'models/assessment.py',
             '    out = _data_findings(p)\n',
             '    out = []\n',
             (STOPS,)),
    Mutation('H-12 child/deceased first', 'models/assessment.py',
             '    reasons = _patient_reasons(p)\n    if reasons:',
             '    reasons = []\n    if reasons:',
             (STOPS,)),
    Mutation('H-13 migration keeps audit rows', 'audit_store/migrate.py',
             '            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")\n',
             '',
             (STORE,)),
    Mutation('H-07 severe BP in pregnancy', 'models/guideline/stops.py',
             '    if severe:\n',
             '    if False:\n',
             (STOPS,)),
    Mutation('H-14 orders checked under a stop', 'service/cards.py',
             '        if blocks:\n',
             '        if False:\n',
             (SERVICE,)),
    Mutation('H-15 old results are warnings', 'models/guideline/stops.py',
             '    if urgency is Urgency.CRITICAL and (days is None or days > RECENT_DAYS):',
             '    if False:',
             (STOPS,)),
    Mutation('H-16 caution, not avoid', 'models/guideline/stops.py',
             '                     "illness.", policy("low blood pressure (systolic < 100): NG136 '
             'gives no "\n                                        "lower limit"), '
             'caution=ALL_CLASSES)]',
             '                     "illness.", policy("low blood pressure (systolic < 100): NG136 '
             'gives no "\n                                        "lower limit"), '
             'ALL_CLASSES)]',
             (STOPS, SERVICE)),
    Mutation('H-20 rules read increases', 'models/guideline/safety.py',
             '        elif k > 5.0 and (up := o.increased_set & K_RAISING):',
             '        elif False:',
             (RULES,)),
    Mutation('H-21 renoprotection', 'models/guideline/safety.py',
             '        if o.stopped_set & RAS_BLOCKERS and not o.after_set & RAS_BLOCKERS:',
             '        if False:',
             (RULES,)),
    Mutation('H-22 fifth drug', 'models/guideline/safety.py',
             '        if o.started and len(o.after_set) > len(p.regimen):',
             '        if False:',
             (RULES,)),
    Mutation('H-23 white coat', 'models/guideline/nice.py',
             '    if home_s >= goal_s or (clinic_d_high and (home_d is None or home_d >= goal_d)):',
             '    if True:',
             (CHECKS,)),
    Mutation('H-24 HFrEF to NG106', 'models/guideline/nice.py',
             '    if p.flag("hfref"):\n        # NG136 1.4.31',
             '    if False:\n        # NG136 1.4.31',
             (CHECKS,)),
    Mutation('H-27 citations listed', 'models/guideline/safety.py',
             'nice("1.4.52"))',
             'nice("1.4.99"))',
             (CITES,)),
    Mutation('H-25 angioedema in words', 'fhir_mappings/allergies.py',
             '    return (any(w in text for w in codes.SWELLING_WORDS)',
             '    return False and (any(w in text for w in codes.SWELLING_WORDS)',
             (ALLERGIES,)),
    Mutation('H-25 diltiazem treated', 'fhir_mappings/features.py',
             '        return (len(self.regimen) + (1 if self.flag("non_dhp_ccb") else 0)',
             '        return (len(self.regimen) + 0',
             (MEDS,)),
    Mutation('H-25 aliskiren rule', 'models/guideline/safety.py',
             '    if not p.flag("aliskiren"):\n        return',
             '    if True:\n        return',
             (RULES,)),
    Mutation('H-25 airways therapy caution', 'models/guideline/safety.py',
             '        if airways:\n',
             '        if False:\n',
             (RULES,)),
    Mutation('H-26 licensed maximum', 'models/guideline/safety.py',
             '            elif mg > limit + 1e-9:\n',
             '            elif False:\n',
             (RULES,)),
    Mutation('H-26 starting-dose orders', 'service/cards.py',
             '        "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg",',
             '        "doseAndRate": [{"doseQuantity": {"value": dose * 4, "unit": "mg",',
             (SERVICE,)),
    Mutation('H-21 renal artery stenosis', 'models/guideline/safety.py',
             '    if not p.flag("renal_artery_stenosis"):\n        return',
             '    if True:\n        return',
             (RULES,)),
    Mutation('H-21 sick sinus', 'models/guideline/safety.py',
             '        if sick_sinus:\n',
             '        if False:\n',
             (RULES,)),
    Mutation('H-26 own drug named', 'models/assessment.py',
             '        return personal_label(o, self.current_drugs)',
             '        return o.label',
             (LABELS,)),
    Mutation('H-26 renal dose notes', 'models/guideline/safety.py',
             '    if egfr is None or egfr >= 60:\n        return',
             '    if True:\n        return',
             (RULES,)),
    Mutation('H-20 current drug reviewed', 'models/assessment.py',
             '    out += _current_contraindicated(p)\n',
             '',
             (CHECKS,)),
    Mutation('H-25 anaphylaxis to an ACEi', 'fhir_mappings/allergies.py',
             '        elif acei and _has_anaphylaxis_reaction(res):',
             '        elif False:',
             (ALLERGIES,)),
    Mutation('H-21 sacubitril/valsartan', 'models/guideline/safety.py',
             '    if not p.flag("sacubitril_valsartan"):\n        return',
             '    if True:\n        return',
             (RULES,)),
    Mutation('H-21 stop aliskiren', 'models/assessment.py',
             '    if p.flag("aliskiren") and regimen & RAS_BLOCKERS:',
             '    if False:',
             (CHECKS,)),
    Mutation('H-20 beta-blocker rate in the 50s', 'models/assessment.py',
             '            if f.code == "beta-blocker-bradycardia" and hr is not None and hr >= 50:',
             '            if False:',
             (CHECKS,)),
    Mutation('H-26 the patient\'s starting product', 'models/prescribing.py',
             '    if drug_class is DrugClass.ARB and (heart_failure or (egfr is not None and egfr '
             '< 60)):',
             '    if False:',
             (PRESCRIBING,)),
    Mutation('H-25 duplicate therapy named', 'fhir_mappings/medications.py',
             '        if isinstance(key, DrugClass) and len(drugs_of_class) > 1:',
             '        if False:',
             (MEDS,)),
    Mutation('H-23 white coat reads the diastolic', 'models/guideline/nice.py',
             '    if home_s >= goal_s or (clinic_d_high and (home_d is None or home_d >= goal_d)):',
             '    if home_s >= goal_s:',
             (CHECKS,)),
    Mutation('H-23 home readings since the regimen changed', 'fhir_mappings/blood_pressure.py',
             '    chosen = in_time_order(r for r in window if since is None or r.when.day > since)',
             '    chosen = in_time_order(r for r in window)',
             (BP,)),
    Mutation('H-28 irrelevant orders get no card', 'service/cards.py',
             '    if not (ctx.ordered or ctx.ordered_facts):\n        return []  # not an order '
             'this service checks (a statin, an imaging request)\n    if is_antihypertensive('
             'ctx.ordered, ctx.ordered_facts):',
             '    if True:',
             (ORDER_HOOKS,)),
    Mutation('H-28 no suggestion of the drafted class', 'service/cards.py',
             '        if above is not None and rank >= above:\n            break',
             '        if False:\n            break',
             (ORDER_HOOKS,)),
    Mutation('H-29 feedback only on issued cards', 'service/api/feedback.py',
             '    if lookup == "unknown":\n        raise FeedbackMismatch(',
             '    if False:\n        raise FeedbackMismatch(',
             (FEEDBACK,)),
    Mutation('H-29 only offered reasons', 'service/api/feedback.py',
             '        if chosen is None:\n            raise FeedbackMismatch(',
             '        if False:\n            raise FeedbackMismatch(',
             (FEEDBACK,)),
    Mutation('H-21 no CCB within a month of an MI', 'models/guideline/safety.py',
             '    recent = acs and (days is None or days <= RECENT_CORONARY_DAYS)',
             '    recent = False',
             (RULES,)),
    Mutation('H-21 acute coronary date is the latest', 'fhir_mappings/conditions.py',
             '            latest = max(dated) if len(dated) == len(items) else None',
             '            latest = min(dated) if dated else None',
             (CONDITIONS,)),
    Mutation('H-25 diltiazem is the C of A/C/D', 'models/guideline/nice.py',
             '    has_c, has_d = CCB in current or non_dhp, THZ in current',
             '    has_c, has_d = CCB in current, THZ in current',
             (STEPS,)),
    Mutation('H-25 a second CCB on diltiazem', 'models/guideline/safety.py',
             '        if non_dhp and CCB in o.started_set:',
             '        if False:',
             (RULES,)),
    Mutation('H-30 the step before the options beyond it', 'models/ranking.py',
             '                            Tier.IN_STEP if o.id in preferred or '
             'optimises_dose(o)\n                            else Tier.BEYOND_STEP,',
             '                            Tier.IN_STEP,',
             (CASES,)),
    Mutation('H-38 the harness reads the order rank_options gives', 'evaluation/decisions.py',
             '    ranked = [c.row for c in g.ranked]\n',
             '    ranked = [c.row for c in g.candidates]\n',
             (DECISIONS,)),
    Mutation('H-30 small differences are ties', 'models/ranking.py',
             '        handicap = margin * (int(self.caution) + int(not self.guideline_choice))',
             '        handicap = 0.0',
             (RANKING,)),
    Mutation('H-30 not-lowering options not offered', 'models/ranking.py',
             '    return sbp_change < 0.0',
             '    return True',
             (RANKING,)),
    Mutation('H-31 drivers explain the expected effect', 'models/explainer.py',
             'EXPLAINED_OUTPUT = "effect_change"',
             'EXPLAINED_OUTPUT = "sbp_change"',
             (EXPLAIN, RUNTIME)),
    Mutation('H-31 no-effect features never shown', 'models/driver_words.py',
             '    n for n in PATIENT_MODEL_FEATURE_NAMES if n not in NO_EFFECT_FEATURES)',
             '    n for n in PATIENT_MODEL_FEATURE_NAMES)',
             (EXPLAIN,)),
    Mutation('H-31 an untreated patient takes no regimen', 'models/driver_words.py',
             '    if not regimen:\n        return "on no blood-pressure drug yet"',
             '    if not regimen:\n        return "the current regimen"',
             (EXPLAIN,)),
    Mutation('H-32 chance of target only where meaningful', 'models/uncertainty_words.py',
             '    return (ranked and target is not None and clinic_systolic is not None\n'
             '            and clinic_systolic >= target.systolic)',
             '    return ranked',
             (EXPLAIN,)),
    Mutation('H-32 the card shows the expected effect', 'service/cards.py',
             'f"{effect_short(o.expected_effect, o.effect_interval, o.effect_coverage)} "',
             'f"{effect_short(o.predicted_sbp_change, o.interval, o.interval_coverage)} "',
             (CDS,)),
    Mutation('H-32 the reading range named as one reading', 'models/uncertainty_words.py',
             'return (f"one clinic reading at 12 weeks: {coverage:.0%} between',
             'return (f"interval: {coverage:.0%} between',
             (EXPLAIN, CDS)),
    Mutation('H-33 ids in words on the panel', 'service/panel_words.py',
             '    text = _REF_RE.sub(_resource, text)\n',
             '    return text\n',
             (PANEL,)),
    Mutation('H-33 one scale for every driver bar', 'service/panel_options.py',
             'chart = render_chart(driver_bars(o), scale,',
             'chart = render_chart(driver_bars(o), Scale.covering(driver_bars(o)),',
             (PANEL,)),
    Mutation('H-34 verifier checks numbers', 'rationale/verifier.py',
             '    for n in dict.fromkeys(numbers(text)):',
             '    for n in ():',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks drugs and classes', 'rationale/verifier.py',
             '        if not licensed(cid, terms):',
             '        if False:',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks citations', 'rationale/verifier.py',
             '        if token not in terms:',
             '        if False:',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks unknown fact ids', 'rationale/verifier.py',
             '            elif fid not in known:',
             '            elif False:',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier bounds the sentences', 'rationale/verifier.py',
             '    if not 1 <= len(items) <= MAX_SENTENCES:',
             '    if not items:',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks required facts are cited', 'rationale/verifier.py',
             '    for f in facts.required:\n        citing',
             '    for f in ():\n        citing',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks required facts are said', 'rationale/verifier.py',
             '        elif f.keys and not any(says_key(',
             '        elif False and not any(says_key(',
             (VERIFIER,)),
    Mutation('H-34 verifier checks direction', 'rationale/verifier.py',
             '    yield from _direction(clauses, cited, i)\n',
             '',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks the first option', 'rationale/verifier.py',
             '    yield from _wrong_first(facts, clauses, i)\n',
             '',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks contraindicated called safe', 'rationale/verifier.py',
             '    yield from _contraindicated_safe(facts, clauses, i)\n',
             '',
             (VERIFIER, PLANTED)),
    Mutation('H-34 verifier checks the target', 'rationale/verifier.py',
             '    yield from _target(facts, clauses, i)',
             '    yield from ()',
             (VERIFIER, PLANTED)),
    Mutation('H-34 contraindications are required facts', 'rationale/facts.py',
             '                                 f"({f.citation})", True, keys))',
             '                                 f"({f.citation})", False, keys))',
             (FACTS, VERIFIER)),
    Mutation('H-34 stops are required facts', 'rationale/facts.py',
             'out.append(make_fact(f"stop-{s.code}", FactKind.STOP, text, True, keys))',
             'out.append(make_fact(f"stop-{s.code}", FactKind.STOP, text, False, keys))',
             (FACTS, PLANTED)),
    Mutation('H-34 at target, specialist advice and a current drug to review are required',
             'rationale/facts.py', '    "at-target": ("no step-up",),\n', '',
             ("tests/rationale/test_fallback_cases.py",)),
    Mutation('H-34 a rejected answer is never shown (benchmark)', 'evaluation/rationale_suite.py',
             '*_shown(case, verdict.rationale if verdict.ok else None)',
             '*_shown(case, verdict.rationale)',
             (PLANTED,)),
    Mutation('H-36 the card never waits for the LLM', 'service/api/hooks.py',
             '        state.rationale.in_background(result.assessment, '
             'Asker(done.request_id, "card", patient),\n'
             '                                      token)',
             '        await state.rationale.within_budget(result.assessment, '
             'Asker(done.request_id, "card", patient))',
             (DELIVERY,)),
    Mutation('H-36 background writing is bounded', 'service/rationale_delivery.py',
             '        if len(self._jobs) >= self._max_pending:\n'
             '            self._metrics.rationale_dropped.inc()\n            return False',
             '        if False:\n            return False',
             (DELIVERY,)),
    Mutation('H-36 the operation waits at most its budget', 'service/rationale_delivery.py',
             'return await asyncio.wait_for(asyncio.shield(job), self._wait_s)',
             'return await job',
             (DELIVERY,)),
    Mutation('H-36 the client budget covers the retries', 'rationale/client.py',
             '            if time.monotonic() + wait >= deadline:',
             '            if False:',
             (CLIENT,)),
    Mutation('H-34 the writer shows only verified text', 'rationale/writer.py',
             '        if verdict.ok and verdict.rationale is not None:',
             '        if verdict.rationale is not None:',
             (WRITER, DELIVERY)),
    Mutation('H-37 plain http to the LLM only inside the cluster', 'service/settings.py',
             '    return host in _LOOPBACK or "." not in host or host.endswith(',
             '    return True or host.endswith(',
             (DELIVERY_SETTINGS,)),
)


def main(only: list[str]) -> int:
    bad = []
    for m in MUTATIONS:
        if only and not any(o in m.name for o in only):
            continue
        path = ROOT / m.path
        src = path.read_text()
        assert src.count(m.old) == 1, (m.name, src.count(m.old))
        path.write_text(src.replace(m.old, m.new))
        try:
            r = subprocess.run(["uv", "run", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                *m.tests], cwd=ROOT, capture_output=True, text=True,
                               timeout=600, check=False)
        finally:
            path.write_text(src)
        lines = r.stdout.strip().splitlines()
        tail = lines[-1] if lines else r.stderr[-200:]
        bites = r.returncode != 0
        print(f"{'FAILS (good)' if bites else 'STILL PASSES'} | {m.name} | {tail}", flush=True)
        if not bites:
            bad.append(m.name)
    print("controls whose tests do not bite:", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
