"""Benchmark of the cohort simulator: one cohort and about 1,000,000 (patient, option) rows.

Plain script (not a test): ``uv run python bench/bench_simulator.py [--patients N]``.
Requirement: the whole run (cohort + options + outcomes) under 30 s on a 2-core CPU.
Each patient gets 11 options: titrate (double) each class taken, add each absent class
(never a second RAS blocker), and one switch (the first class taken is stopped and an absent
class started); options beyond 11 are dropped and short lists are padded with "add" rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from models.training.simulator import (
    ACE,
    ARB,
    N_CLASSES,
    simulate_cohort,
    simulate_outcomes,
)

OPTIONS_PER_PATIENT = 11


def build_options(
    current: npt.NDArray[np.float64], rng: np.random.Generator
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """A realistic option matrix: start/add one absent class, titrate, or switch (vectorised)."""
    n = current.shape[0]
    k = OPTIONS_PER_PATIENT
    patient_idx = np.repeat(np.arange(n, dtype=np.intp), k)
    dose_after = np.repeat(current, k, axis=0)
    on_ras = (current[:, ACE] > 0) | (current[:, ARB] > 0)
    # Candidate class per option slot: a random permutation of the 7 classes, then extra slots.
    perm = np.argsort(rng.random((n, N_CLASSES)), axis=1)
    slot_class = np.concatenate([perm, perm[:, : k - N_CLASSES]], axis=1).reshape(-1)
    rows = np.arange(n * k)
    taken = dose_after[rows, slot_class] > 0
    # Titrate a class taken (double, capped at 2); add a class not taken at standard dose.
    dose_after[rows, slot_class] = np.where(
        taken, np.minimum(dose_after[rows, slot_class] * 2.0, 2.0), 1.0
    )
    # Never a second RAS blocker: an "add ARB/ACEi" on top of the other becomes a switch.
    ras_clash = np.repeat(on_ras, k) & ~taken & ((slot_class == ACE) | (slot_class == ARB))
    other = np.where(slot_class == ACE, ARB, ACE)
    dose_after[rows[ras_clash], other[ras_clash]] = 0.0
    # The last slot of each patient is a switch when something is taken: stop the first class.
    last = np.arange(k - 1, n * k, k)
    first_taken = np.argmax(current > 0, axis=1)
    has_any = current.max(axis=1) > 0
    stop_rows = last[has_any]
    dose_after[stop_rows, first_taken[has_any]] = 0.0
    return patient_idx, dose_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=91_000)
    parser.add_argument("--site", default="internal")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    cohort = simulate_cohort(args.patients, args.site, seed=args.seed)
    t1 = time.perf_counter()
    patient_idx, dose_after = build_options(
        cohort.current_doses, np.random.default_rng(args.seed)
    )
    t2 = time.perf_counter()
    outcomes = simulate_outcomes(cohort, patient_idx, dose_after, seed=args.seed)
    t3 = time.perf_counter()

    rows = patient_idx.shape[0]
    total = t3 - t0
    print(f"site={args.site} patients={len(cohort):,} rows={rows:,}")
    print(f"simulate_cohort   {t1 - t0:7.3f} s  ({len(cohort) / (t1 - t0):,.0f} patients/s)")
    print(f"build options     {t2 - t1:7.3f} s")
    print(f"simulate_outcomes {t3 - t2:7.3f} s  ({rows / (t3 - t2):,.0f} rows/s)")
    print(f"total             {total:7.3f} s  ({rows / total:,.0f} rows/s end to end)")
    print(
        f"mean true change {outcomes.true_change.mean():.2f} mmHg, "
        f"mean p_adverse {outcomes.p_adverse.mean():.3f}"
    )
    print("PASS" if total < 30.0 else "FAIL", "(budget 30 s)")


if __name__ == "__main__":
    main()
