"""Prometheus metrics, with bounded label values, for one process or for several workers.

Single process (the default). Each app gets its own :class:`CollectorRegistry`, so tests and
several apps in one process do not collide; ``/metrics`` shows that app's counts.

Several workers (``hypermarker serve --workers N``, or any process manager). Each worker is a
process with its own memory, so a per-process registry makes ``/metrics`` answer for whichever
worker took the scrape (counters jump back and forth between scrapes). Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory **before the processes start**
(prometheus_client chooses its value store when it is imported): every worker then writes its
values to memory-mapped files there, and ``/metrics`` in any worker adds up all of them
(counters and histograms summed; the spool-depth gauge and the model info take the most recent
value). The directory must be emptied when the server starts (not when a worker restarts:
a restarted worker's totals would go back) -- :func:`prepare_multiprocess_dir` does that; the
Helm chart mounts an ``emptyDir`` there. Info metrics do not work in multiprocess mode, so the
model info is then the gauge ``hypermarker_model_info{...} 1``, the same series the Info
metric exposes.

Bounded labels. Every label value comes from a closed set (:data:`LABEL_VALUES`): the hooks
and the operation, assessment statuses, card indicators, the override reason codes the cards
offer, the prefetch keys, the verifier's reasons, audit record kinds and destinations. Any
other value is counted as ``"other"``, so no client text can grow ``/metrics``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, TypeVar, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, values
from prometheus_client.multiprocess import MultiProcessCollector

from audit_store.records import AssessmentStatus, FeedbackOutcome, RationaleStatus, RecordKind
from service.auth.verifier import AuthReason
from service.cards import OVERRIDE_REASONS
from service.discovery import PREFETCH, SERVICES

#: The environment variable prometheus_client reads (at import) to store values in files.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
#: The value counted for anything outside a label's closed set.
OTHER: Final = "other"
#: The feedback reason label of feedback that gave no coded reason.
NO_REASON: Final = "none"
#: The ``$hypertension-options`` operation's "hook" in the latency metric (its audit hook).
OPERATION_HOOK: Final = "$hypertension-options"

#: What a rationale written by the LLM came to (audit_store.records.RationaleStatus).
RATIONALE_STATUSES: Final = frozenset(get_args(RationaleStatus))

#: Override reason codes the cards offer, and "none" for feedback without a coded reason.
FEEDBACK_REASONS: Final = frozenset({*(r.code for r in OVERRIDE_REASONS), NO_REASON})

#: The closed set of values of each label of each labelled metric.
LABEL_VALUES: Final[Mapping[str, Mapping[str, frozenset[str]]]] = {
    "hypermarker_request_seconds": {
        "hook": frozenset({*(s.hook for s in SERVICES), OPERATION_HOOK}),
        "status": frozenset(get_args(AssessmentStatus))},
    "hypermarker_cards_total": {"indicator": frozenset({"info", "warning", "critical"})},
    "hypermarker_feedback_total": {"outcome": frozenset(get_args(FeedbackOutcome)),
                                   "reason": FEEDBACK_REASONS},
    "hypermarker_prefetch_misses_total": {"key": frozenset(PREFETCH),
                                          "result": frozenset({"fetched", "unavailable"})},
    "hypermarker_auth_failures_total": {"reason": frozenset(get_args(AuthReason))},
    "hypermarker_audit_writes_total": {"kind": frozenset(get_args(RecordKind)),
                                       "destination": frozenset({"database", "spool"})},
    "hypermarker_rationale_total": {"status": RATIONALE_STATUSES},
    "hypermarker_rationale_seconds": {"status": RATIONALE_STATUSES},
    "hypermarker_llm_breaker_state": {"state": frozenset({"closed", "open", "half_open"})},
}

M = TypeVar("M", Counter, Gauge, Histogram)


def bounded(value: object, allowed: frozenset[str]) -> str:
    """``value`` as a label value if it is in ``allowed``, else :data:`OTHER`."""
    text = str(value)
    return text if text in allowed else OTHER


class Bounded(Generic[M]):
    """A labelled metric whose label values are mapped into their closed sets."""

    def __init__(self, metric: M, allowed: Sequence[frozenset[str]]) -> None:
        self.metric: M = metric
        self._allowed = tuple(allowed)

    def labels(self, *label_values: object) -> M:
        """The child for these values; any value outside its label's set counts as "other"."""
        if len(label_values) != len(self._allowed):
            raise ValueError(f"expected {len(self._allowed)} label values")
        child: M = self.metric.labels(
            *(bounded(v, a) for v, a in zip(label_values, self._allowed, strict=True)))
        return child


class ModelInfo:
    """``hypermarker_model_info{id=..., version=..., provider=...} 1``: an Info metric in one
    process; in multiprocess mode (where Info does not work) a gauge of the same series."""

    def __init__(self, registry: CollectorRegistry | None, multiprocess: bool) -> None:
        self._info = None if multiprocess else Info(
            "hypermarker_model", "Model id, version and execution provider", registry=registry)
        self._gauge: Gauge | None = None

    def info(self, labels: Mapping[str, str]) -> None:
        """Set the model's labels (from the model manifest, never from a request)."""
        if self._info is not None:
            self._info.info(dict(labels))
            return
        names = sorted(labels)
        if self._gauge is None:
            self._gauge = Gauge("hypermarker_model_info",
                                "Model id, version and execution provider", names,
                                registry=None, multiprocess_mode="mostrecent")
        self._gauge.labels(**labels).set(1)


@dataclass
class Metrics:
    """The service's metrics; :attr:`registry` is what ``/metrics`` exposes."""

    registry: CollectorRegistry
    latency: Bounded[Histogram]
    cards: Bounded[Counter]
    feedback: Bounded[Counter]
    prefetch_misses: Bounded[Counter]
    auth_failures: Bounded[Counter]
    audit_writes: Bounded[Counter]
    spool_depth: Gauge
    model: ModelInfo
    #: LLM rationales written, by what they came to (one per LLM request)
    rationale: Bounded[Counter]
    #: how long each LLM request took, by what it came to
    rationale_latency: Bounded[Histogram]
    #: cards whose rationale was not written: too many being written already
    rationale_dropped: Counter
    #: the LLM circuit breaker: 1 for the state it is in, 0 for the others
    llm_breaker: Bounded[Gauge]
    #: The directory the workers' values are added up from, None in single-process mode.
    multiprocess_dir: Path | None = None


def multiprocess_dir() -> Path | None:
    """The directory of multiprocess mode, or None; raises ``RuntimeError`` when the variable
    was set after prometheus_client was imported (this process would write no files) or names
    no directory."""
    raw = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        raise RuntimeError(f"{MULTIPROC_ENV} names no directory: {raw}")
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported; "
                           "set it in the environment the server starts with")
    return path


def prepare_multiprocess_dir(path: Path) -> None:
    """Create ``path`` and remove the value files a previous server run left in it. Call it
    once when the server starts, before any worker starts (never from a worker)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def make_metrics(directory: Path | None = None) -> Metrics:
    """The metrics of one app: multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set
    (``directory`` overrides where the values are read from), else a per-app registry."""
    directory = directory or multiprocess_dir()
    exposed = CollectorRegistry()
    own: CollectorRegistry | None = exposed
    if directory is not None:
        MultiProcessCollector(exposed, path=str(directory))  # type: ignore[no-untyped-call]
        own = None  # the live objects are not exposed: the files are

    def sets(name: str) -> list[frozenset[str]]:
        return list(LABEL_VALUES[name].values())

    def names(name: str) -> list[str]:
        return list(LABEL_VALUES[name])

    def counter(name: str, doc: str) -> Bounded[Counter]:
        return Bounded(Counter(name, doc, names(name), registry=own), sets(name))

    latency = "hypermarker_request_seconds"
    return Metrics(
        registry=exposed,
        latency=Bounded(Histogram(
            latency, "CDS Hooks call (and $hypertension-options) latency by hook",
            names(latency), registry=own,
            buckets=(.002, .004, .006, .008, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2)),
            sets(latency)),
        cards=counter("hypermarker_cards_total", "Cards returned by indicator"),
        feedback=counter("hypermarker_feedback_total",
                         "Feedback stored, by outcome and override reason code"),
        prefetch_misses=counter("hypermarker_prefetch_misses_total",
                                "Prefetch keys not sent by the client, by key and result"),
        auth_failures=counter("hypermarker_auth_failures_total", "Rejected client JWTs"),
        audit_writes=counter("hypermarker_audit_writes_total", "Audit writes by destination"),
        spool_depth=Gauge("hypermarker_audit_spool_depth", "Audit records waiting in the spool",
                          registry=own, multiprocess_mode="mostrecent"),
        model=ModelInfo(own, multiprocess=directory is not None),
        rationale=counter("hypermarker_rationale_total",
                          "LLM rationales written, by status (verified, rejected, unavailable, "
                          "timeout)"),
        rationale_latency=Bounded(Histogram(
            "hypermarker_rationale_seconds", "LLM rationale request time by status",
            names("hypermarker_rationale_seconds"), registry=own,
            buckets=(.1, .25, .5, 1, 1.5, 2, 3, 5, 10, 20, 60)),
            sets("hypermarker_rationale_seconds")),
        rationale_dropped=Counter("hypermarker_rationale_dropped_total",
                                  "Card rationales not written: too many being written",
                                  registry=own),
        llm_breaker=Bounded(Gauge("hypermarker_llm_breaker_state",
                                  "LLM circuit breaker: 1 for its current state",
                                  names("hypermarker_llm_breaker_state"), registry=own,
                                  multiprocess_mode="mostrecent"),
                            sets("hypermarker_llm_breaker_state")),
        multiprocess_dir=directory,
    )
