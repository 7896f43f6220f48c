"""Prometheus metrics (issue 12, deliverable 2): label values from closed sets ("other" for
anything else), and multiprocess mode, where any worker's /metrics adds up every worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from prometheus_client import generate_latest, values
from prometheus_client.parser import text_string_to_metric_families

from service.api.fhir_operation import OPERATION
from service.auth.verifier import AuthReason
from service.cards import OVERRIDE_REASONS
from service.discovery import PREFETCH, SERVICES
from service.metrics import (
    LABEL_VALUES,
    MULTIPROC_ENV,
    OTHER,
    Metrics,
    make_metrics,
    multiprocess_dir,
    prepare_multiprocess_dir,
)

ROOT = Path(__file__).resolve().parents[2]

#: One worker process: counts what a request would, then prints its /metrics.
WORKER = """
import sys
from prometheus_client import generate_latest
from service.metrics import make_metrics
m = make_metrics()
assert m.multiprocess_dir is not None
m.feedback.labels("overridden", "patient-refuses").inc()
m.feedback.labels("overridden", sys.argv[1]).inc()
m.cards.labels("info").inc()
m.latency.labels("patient-view", "assessed").observe(0.01)
m.spool_depth.set(3)
m.model.info({"id": "hm", "version": "1.0.0", "provider": "CPUExecutionProvider"})
sys.stdout.write(generate_latest(m.registry).decode())
"""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _worker(directory: Path, client_text: str) -> str:
    """Run one worker process; its /metrics output."""
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    done = subprocess.run([sys.executable, "-c", WORKER, client_text], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_every_worker_answers_for_all_workers(tmp_path: Path) -> None:
    """Two worker processes count; the second one's /metrics (and any other process reading
    the directory) shows the sums, and the gauges are not summed."""
    prepare_multiprocess_dir(tmp_path)
    _worker(tmp_path, "free text from one client")
    second = _samples(_worker(tmp_path, "and from another"))

    feedback = "hypermarker_feedback_total"
    assert second[(feedback, (("outcome", "overridden"), ("reason", "patient-refuses")))] == 2
    assert second[(feedback, (("outcome", "overridden"), ("reason", OTHER)))] == 2
    assert second[("hypermarker_cards_total", (("indicator", "info"),))] == 2
    assert second[("hypermarker_request_seconds_count",
                   (("hook", "patient-view"), ("status", "assessed")))] == 2
    assert second[("hypermarker_audit_spool_depth", ())] == 3
    assert second[("hypermarker_model_info", (("id", "hm"), ("provider", "CPUExecutionProvider"),
                                              ("version", "1.0.0")))] == 1
    assert not any("client" in str(key) for key in second)
    assert _samples(generate_latest(make_metrics(tmp_path).registry).decode()) == second


def test_prepare_empties_the_directory_of_value_files(tmp_path: Path) -> None:
    prepare_multiprocess_dir(tmp_path / "m")
    (tmp_path / "m" / "counter_123.db").write_bytes(b"x")
    (tmp_path / "m" / "README").write_text("kept")

    prepare_multiprocess_dir(tmp_path / "m")

    assert [p.name for p in (tmp_path / "m").iterdir()] == ["README"]


def test_multiprocess_mode_is_refused_when_set_too_late(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable must be in the environment the server starts with: set after
    prometheus_client chose its in-memory values, workers would write nothing."""
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.delenv(MULTIPROC_ENV.lower(), raising=False)
    assert multiprocess_dir() is None
    assert make_metrics().multiprocess_dir is None

    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="names no directory"):
        make_metrics()
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="set after prometheus_client was imported"):
        make_metrics()


def _count_everything(m: Metrics, value: str) -> None:
    m.latency.labels(value, value).observe(1)
    m.cards.labels(value).inc()
    m.feedback.labels(value, value).inc()
    m.prefetch_misses.labels(value, value).inc()
    m.auth_failures.labels(value).inc()
    m.audit_writes.labels(value, value).inc()


def test_client_text_cannot_grow_the_metrics() -> None:
    """5,000 distinct values (the reason text that grew /metrics from 7.5 KB to 3.2 MB) all
    count as "other"; every label value exposed is in its closed set."""
    m = make_metrics()
    _count_everything(m, "warm-up")
    size = len(generate_latest(m.registry))

    for i in range(5000):
        _count_everything(m, f"reason typed by a client {i}")

    text = generate_latest(m.registry).decode()
    assert len(text) < size + 100  # the counts grow by digits, not by series
    assert 'hypermarker_feedback_total{outcome="other",reason="other"} 5001.0' in text
    for fam in m.registry.collect():
        allowed = LABEL_VALUES.get(fam.name) or LABEL_VALUES.get(fam.name + "_total") or {}
        for s in fam.samples:
            for label, value in s.labels.items():
                if label in allowed:
                    assert value in allowed[label] | {OTHER}, (fam.name, label, value)


def test_known_values_keep_their_label() -> None:
    m = make_metrics()
    m.feedback.labels("accepted", "none").inc()
    m.latency.labels(OPERATION, "refused").observe(0.5)
    m.auth_failures.labels("bad_signature").inc()

    text = generate_latest(m.registry).decode()

    assert 'hypermarker_feedback_total{outcome="accepted",reason="none"} 1.0' in text
    assert 'hook="$hypertension-options",le="1.0",status="refused"' in text
    assert 'hypermarker_auth_failures_total{reason="bad_signature"} 1.0' in text
    with pytest.raises(ValueError, match="expected 2 label values"):
        m.feedback.labels("accepted")


def test_the_closed_sets_are_what_the_service_emits() -> None:
    """Hooks and the operation, the override reasons the cards offer, prefetch keys and the
    verifier's reasons: kept in step with the modules that make them."""
    assert LABEL_VALUES["hypermarker_request_seconds"]["hook"] == {
        *(s.hook for s in SERVICES), OPERATION}
    assert LABEL_VALUES["hypermarker_feedback_total"]["reason"] == {
        *(r.code for r in OVERRIDE_REASONS), "none"}
    assert LABEL_VALUES["hypermarker_prefetch_misses_total"]["key"] == set(PREFETCH)
    assert LABEL_VALUES["hypermarker_auth_failures_total"]["reason"] == set(get_args(AuthReason))
