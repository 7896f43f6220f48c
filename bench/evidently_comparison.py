"""Evidently's default data-drift test against the monitor's input-drift gate, on the same
simulated windows (the evidence behind "Why not Evidently" in README.md; not a test).

Run with Evidently in a throw-away environment (it is not a project dependency; 0.7.23 does
not import under pandas 3):

    uv run --with evidently==0.7.23 --with "pandas<3" python bench/evidently_comparison.py

Reference for Evidently: 5,000 simulated internal-site patients (its method for references
over 1,000 rows: normed Wasserstein for numeric columns, Jensen-Shannon for categorical,
threshold 0.1, dataset drift when half of the columns drift). Reference for the monitor: the
decile profile saved with the model. Current windows: 20 internal-site windows and one
external-site window of 250 patients each, over the 17 monitored patient features.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from evaluation import drift as D
from evaluation.cohort import simulated_case_set
from vocabulary.feature_table import PATIENT_FEATURES

WINDOW = 250
WINDOWS = 20


def frame(site: str, n: int, seed: int) -> Any:
    import pandas as pd

    cohort = simulated_case_set(site, n, seed).cohort
    names = [s.name for s in PATIENT_FEATURES]
    return pd.DataFrame(cohort.features, columns=names)[list(D.FEATURE_THRESHOLDS)]


def evidently_drifted(reference: Any, current: Any) -> int:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(reference_data=reference, current_data=current)
    for m in snapshot.dict()["metrics"]:
        if "DriftedColumnsCount" in str(m.get("metric_name", "")):
            return int(m["value"]["count"])
    raise RuntimeError("no DriftedColumnsCount in the Evidently report")


def monitor_alarms(current: Any, profile: D.ReferenceProfile) -> int:
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
             for k, v in r.items()} for r in current.to_dict("records")]
    return sum(f.status == "alarm" for f in D.input_drift(rows, profile))


def main() -> None:
    import evidently

    warnings.filterwarnings("ignore")
    profile = D.load_reference_profile()
    reference = frame("internal", 5000, 1)
    columns = len(reference.columns)
    ev, ours = [], []
    for k in range(WINDOWS):
        current = frame("internal", WINDOW, 100 + k)
        ev.append(evidently_drifted(reference, current))
        ours.append(monitor_alarms(current, profile))
    external = frame("external", WINDOW, 3)
    print(f"evidently {evidently.__version__}, {columns} features, windows of {WINDOW}")
    print(f"internal windows, Evidently columns flagged drifted: {ev} "
          f"(windows with any: {sum(c > 0 for c in ev)}/{WINDOWS}; dataset drift, >= half "
          f"the columns: {sum(c >= columns / 2 for c in ev)}/{WINDOWS})")
    print(f"internal windows, monitor input-drift alarms: {ours} "
          f"(windows with any: {sum(c > 0 for c in ours)}/{WINDOWS})")
    print(f"external window: Evidently {evidently_drifted(reference, external)}/{columns} "
          f"columns drifted; monitor {monitor_alarms(external, profile)} alarms")
    print(f"mean columns flagged per internal window: Evidently {np.mean(ev):.1f}, "
          f"monitor {np.mean(ours):.1f}")


if __name__ == "__main__":
    main()
