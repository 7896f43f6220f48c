"""Audit store: durable records of assessments, feedback and observed follow-up BP.

SQLite (WAL) by default, PostgreSQL in production, with alembic migrations shipped in the
package and an fsync'ed spool that keeps records while the database is down.
"""

from audit_store.records import (
    AssessmentRecord,
    FeedbackRecord,
    OutcomeRecord,
    feature_hash,
    patient_ref,
)
from audit_store.store import AuditStore, AuditUnavailable

__all__ = [
    "AssessmentRecord",
    "AuditStore",
    "AuditUnavailable",
    "FeedbackRecord",
    "OutcomeRecord",
    "feature_hash",
    "patient_ref",
]
