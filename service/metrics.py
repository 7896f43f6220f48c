"""Prometheus metrics (one registry per app, so tests and workers do not collide)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


@dataclass
class Metrics:
    registry: CollectorRegistry
    latency: Histogram
    cards: Counter
    feedback: Counter
    prefetch_misses: Counter
    auth_failures: Counter
    audit_writes: Counter
    spool_depth: Gauge
    model: Info


def make_metrics() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        latency=Histogram("hypermarker_request_seconds",
                          "CDS Hooks call (and $hypertension-options) latency by hook",
                          ["hook", "status"], registry=r,
                          buckets=(.002, .004, .006, .008, .01, .015, .02, .03, .05, .1, .25,
                                   .5, 1, 2)),
        cards=Counter("hypermarker_cards_total", "Cards returned by indicator", ["indicator"],
                      registry=r),
        feedback=Counter("hypermarker_feedback_total", "Feedback by outcome and reason",
                         ["outcome", "reason"], registry=r),
        prefetch_misses=Counter("hypermarker_prefetch_misses_total",
                                "Prefetch keys not sent by the client, by key and result",
                                ["key", "result"], registry=r),
        auth_failures=Counter("hypermarker_auth_failures_total", "Rejected client JWTs",
                              ["reason"], registry=r),
        audit_writes=Counter("hypermarker_audit_writes_total", "Audit writes by destination",
                             ["kind", "destination"], registry=r),
        spool_depth=Gauge("hypermarker_audit_spool_depth", "Audit records waiting in the spool",
                          registry=r),
        model=Info("hypermarker_model", "Model id, version and execution provider", registry=r),
    )
