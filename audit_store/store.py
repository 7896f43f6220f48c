"""The audit store: every assessment, feedback and follow-up BP, durable before the response.

A write goes to the database (one short transaction, committed) or, when the database is down,
slow or rejects it, to the fsync'ed spool (:mod:`audit_store.spool`). Either way the record
is durable when the call returns; :class:`AuditUnavailable` is raised only when both fail, so
the caller can refuse to answer rather than answer unrecorded.

After a database failure a short circuit breaker (``retry_interval_s``) sends writes straight
to the spool, so an outage costs each request one fsync, not a connect timeout. The next
successful write (or an explicit :meth:`AuditStore.replay_spool`, which the app calls at startup
and periodically) moves the spool into the database; unique keys (request_id, the feedback key,
the outcome key) make the replay idempotent.

The API is synchronous and thread-safe (the app calls it from a threadpool). Nothing here logs
record contents: only kinds, counts and exception class names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import structlog
from sqlalchemy import Column, Connection, Engine, Table, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from audit_store import migrate as migrations
from audit_store.engine import create_audit_engine, insert_ignoring_duplicates
from audit_store.records import (
    AssessmentRecord,
    AuditRecord,
    FeedbackRecord,
    IssuedCard,
    OutcomeRecord,
    RationaleRecord,
    kind_of,
    utc,
)
from audit_store.schema import assessment_cards, assessments, feedback, outcomes, rationales
from audit_store.spool import ReplayReport, Spool, TransientSinkError
from audit_store.table_rows import (
    Via,
    assessment_from_row,
    assessment_row,
    card_rows,
    feedback_from_row,
    feedback_row,
    outcome_from_row,
    outcome_row,
    rationale_from_row,
    rationale_row,
)

log = structlog.get_logger(__name__)

Destination = Literal["database", "spool"]
#: What :meth:`AuditStore.find_card` says when it has no record of the card: "unknown" (the
#: database answered and no spooled record is waiting: the service never issued it) or
#: "pending" (the card's assessment may still be in the spool, or the database cannot be asked
#: now).
CardLookup = IssuedCard | Literal["unknown", "pending"]
_T = TypeVar("_T")
_R = TypeVar("_R")

#: Failures that say "the database is not there right now" (vs. "it rejects this record").
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


class AuditUnavailable(Exception):
    """Neither the database nor the spool could make a record durable."""


class _WriterLock:
    """The SQLite writer queue. A writer that waits longer than the store's timeout, or finds
    after waiting that the database was found down meanwhile, fails as transient (its record
    goes to the spool) instead of adding its own wait to the queue's."""

    def __init__(self, store: AuditStore, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._store = store
        self._timeout_s = timeout_s

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise PoolTimeout("timed out waiting for the SQLite writer")
        if self._store.tripped():
            self._lock.release()
            raise PoolTimeout("the database was found down while this writer waited")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class AuditStore:
    """See the module docstring. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, engine: Engine, spool: Spool, *, migrate: bool = True,
                 retry_interval_s: float = 1.0, auto_replay: bool = True,
                 writer_timeout_s: float = 2.0) -> None:
        self._engine = engine
        self._spool = spool
        # SQLite has one writer at a time; threads that meet its lock back off in sleeps of up
        # to 100 ms (its busy handler). Queueing them on a Python lock instead wakes the next
        # writer as soon as the previous commit ends (PostgreSQL needs no such lock).
        self._writer: AbstractContextManager[Any] = (
            _WriterLock(self, writer_timeout_s) if engine.dialect.name == "sqlite"
            else nullcontext())
        self._migrate = migrate
        self._schema_ready = not migrate
        self._schema_lock = threading.Lock()
        self._retry_interval_s = retry_interval_s
        self._down_until = 0.0
        self._probe = threading.Lock()
        self._auto_replay = auto_replay
        self._pending = spool.depth() > 0
        self._bg: threading.Thread | None = None
        self._bg_lock = threading.Lock()
        self._closed = False
        self.last_replay = ReplayReport()

    @classmethod
    def open(cls, url: str, spool_dir: Path, *, migrate: bool = True, timeout_s: float = 2.0,
             statement_timeout_s: float = 5.0, retry_interval_s: float = 1.0,
             auto_replay: bool = True, replay_on_open: bool = True) -> AuditStore:
        """Open the store at ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://...``).

        With ``migrate`` the schema is brought to head now; if the database is unreachable
        the store still opens (writes spool) and migrates on the first successful contact.
        With ``replay_on_open`` a spool left by an earlier run is replayed now.
        """
        engine = create_audit_engine(url, timeout_s=timeout_s,
                                     statement_timeout_s=statement_timeout_s)
        try:
            store = cls(engine, Spool(spool_dir), migrate=migrate,
                        retry_interval_s=retry_interval_s, auto_replay=auto_replay,
                        writer_timeout_s=timeout_s)
            try:
                store._ensure_schema()
            except TRANSIENT_ERRORS as exc:
                store._trip()
                log.warning("audit.database_unreachable_at_open", error=type(exc).__name__)
        except BaseException:
            engine.dispose()
            raise
        if replay_on_open and store._schema_ready and store._pending:
            try:
                store.replay_spool()
            except Exception as exc:  # the spool is intact; the next replay tries again
                log.error("audit.spool_replay_failed", error=type(exc).__name__)
        return store

    # -- writing ----------------------------------------------------------------------------

    def record_assessment(self, rec: AssessmentRecord,
                          observed: Sequence[OutcomeRecord] = ()) -> Destination:
        """Record ``rec``, and in the same transaction the outcomes (BP readings) its data
        showed; returns where it is now durable: ``"database"`` or ``"spool"``."""
        def insert(conn: Connection, r: AssessmentRecord, via: Via) -> bool:
            new = self._insert_assessment(conn, r, via)
            for o in observed:  # a reading seen by an earlier call is kept once (unique key)
                self._insert_outcome(conn, o, via)
            return new

        destination, _ = self._record(rec, insert)
        if destination == "spool":
            for o in observed:
                try:
                    self._spool.append(o)
                except Exception as exc:  # re-read from the EHR at the next call
                    log.warning("audit.outcome_not_spooled", error=type(exc).__name__)
        return destination

    def spool_assessment(self, rec: AssessmentRecord,
                         observed: Sequence[OutcomeRecord] = ()) -> Destination:
        """Put ``rec`` (and its outcomes) in the spool without waiting on the database: the
        caller's in-line write did not finish in time (a stalled database that still
        acknowledges packets). The breaker trips, so the next writes go to the spool at once
        until a probe finds the database again; if the stalled write commits after all, the
        replay finds the duplicate and skips it."""
        self._trip()
        try:
            self._spool.append(rec)
        except Exception as exc:
            log.error("audit.unavailable", kind="assessment", error=type(exc).__name__)
            raise AuditUnavailable("could not spool an audit assessment record") from exc
        for o in observed:
            try:
                self._spool.append(o)
            except Exception as exc:  # re-read from the EHR at the next call
                log.warning("audit.outcome_not_spooled", error=type(exc).__name__)
        self._pending = True
        log.warning("audit.database_write_timed_out", kind="assessment")
        return "spool"

    def record_feedback(self, rec: FeedbackRecord) -> bool:
        """Record feedback once per key; False if the database already held this feedback.

        A spooled feedback returns True (whether it repeats a stored one is decided, and the
        repeat skipped, at replay), as does a write that had to be retried on a fresh
        connection (the first attempt may have committed it).
        """
        _, new = self._record(rec, self._insert_feedback)
        return new

    def record_outcome(self, rec: OutcomeRecord) -> None:
        """Record an observed follow-up BP (an identical observation is stored once)."""
        self._record(rec, self._insert_outcome)

    def record_rationale(self, rec: RationaleRecord) -> Destination:
        """Record an LLM rationale (once per ``rationale_id``); returns where it is durable."""
        destination, _ = self._record(rec, self._insert_rationale)
        return destination

    def _record(self, rec: _T, insert: Callable[[Connection, _T, Via], bool]
                ) -> tuple[Destination, bool]:
        assert isinstance(rec, AssessmentRecord | FeedbackRecord | OutcomeRecord
                          | RationaleRecord)
        kind = kind_of(rec)
        gate = self._gate()
        if gate is not None:
            try:
                new, retried = self._in_transaction(lambda conn: insert(conn, rec, "direct"))
            except Exception as exc:  # any failure: the spool keeps the record
                transient = isinstance(exc, TRANSIENT_ERRORS)
                if transient:
                    self._trip()
                log.warning("audit.database_write_failed", kind=kind,
                            error=type(exc).__name__, transient=transient)
            else:
                self._healthy()
                return "database", new or retried
            finally:
                if gate == "probe":
                    self._probe.release()
        try:
            self._spool.append(rec)
        except Exception as exc:
            log.error("audit.unavailable", kind=kind, error=type(exc).__name__)
            raise AuditUnavailable(f"could not store or spool an audit {kind} record") from exc
        self._pending = True
        return "spool", True

    def _in_transaction(self, work: Callable[[Connection], _R]) -> tuple[_R, bool]:
        """Run ``work`` in one committed transaction; retry once on a fresh connection if the
        pooled one turned out to be dead (the database restarted). Returns (result, retried)."""
        for attempt in range(2):
            try:
                self._ensure_schema()
                with self._writer, self._engine.begin() as conn:
                    return work(conn), attempt > 0
            except DBAPIError as exc:
                if attempt == 0 and exc.connection_invalidated:
                    continue
                raise
        raise AssertionError("unreachable")

    def _insert(self, conn: Connection, table: Table, row: Mapping[str, Any]) -> bool:
        """Insert one row unless its unique key is taken; True if it was new. (RETURNING says
        so on both back ends; rowcount does not once SQLAlchemy adds its own RETURNING.)"""
        stmt = insert_ignoring_duplicates(self._engine, table).returning(table.c.id)
        return conn.execute(stmt, dict(row)).first() is not None

    def _insert_assessment(self, conn: Connection, rec: AssessmentRecord, via: Via) -> bool:
        if not self._insert(conn, assessments, assessment_row(rec, via)):
            if via == "direct":  # (in a replay, a duplicate is expected and counted)
                log.warning("audit.duplicate_request_id", kind="assessment")
            return False
        cards = card_rows(rec)
        if cards:
            conn.execute(insert_ignoring_duplicates(self._engine, assessment_cards), cards)
        return True

    def _insert_feedback(self, conn: Connection, rec: FeedbackRecord, via: Via) -> bool:
        return self._insert(conn, feedback, feedback_row(rec, via))

    def _insert_outcome(self, conn: Connection, rec: OutcomeRecord, via: Via) -> bool:
        return self._insert(conn, outcomes, outcome_row(rec, via))

    def _insert_rationale(self, conn: Connection, rec: RationaleRecord, via: Via) -> bool:
        return self._insert(conn, rationales, rationale_row(rec, via))

    def _insert_any(self, conn: Connection, rec: AuditRecord, via: Via) -> bool:
        if isinstance(rec, AssessmentRecord):
            return self._insert_assessment(conn, rec, via)
        if isinstance(rec, FeedbackRecord):
            return self._insert_feedback(conn, rec, via)
        if isinstance(rec, RationaleRecord):
            return self._insert_rationale(conn, rec, via)
        return self._insert_outcome(conn, rec, via)

    # -- schema, breaker --------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                migrations.upgrade(self._engine)
                self._schema_ready = True

    def _gate(self) -> Literal["closed", "probe"] | None:
        """Circuit breaker: "closed" (database in use), "probe" (the one caller that tries the
        database after a failure, once ``retry_interval_s`` has passed), None (spool)."""
        if self._closed:
            return None
        if self._down_until == 0.0:
            return "closed"
        if time.monotonic() < self._down_until or not self._probe.acquire(blocking=False):
            return None
        return "probe"

    def tripped(self) -> bool:
        """True while writes go to the spool after a database failure."""
        return time.monotonic() < self._down_until

    def _trip(self) -> None:
        self._down_until = time.monotonic() + self._retry_interval_s

    def _healthy(self) -> None:
        self._down_until = 0.0
        if self._pending and self._auto_replay:
            self._schedule_replay()

    # -- replay -----------------------------------------------------------------------------

    def replay_spool(self) -> int:
        """Move spooled records into the database; returns how many were newly stored.

        Safe to call from several threads and processes at once, and after a crash at any
        point. Details (duplicates skipped, records kept because the database failed again,
        unreadable lines quarantined) are in :attr:`last_replay`.
        """
        report = self._spool.replay(self._sink)
        self.last_replay = report
        self._pending = self._spool.depth() > 0
        if report.files:
            log.info("audit.spool_replayed", files=report.files, replayed=report.replayed,
                     duplicates=report.duplicates, kept=report.kept,
                     quarantined=report.quarantined)
        if report.stopped_early:
            self._trip()
        elif report.files:
            self._down_until = 0.0  # the database took the whole spool: it is back
        return report.replayed

    def _sink(self, records: Sequence[AuditRecord]) -> int:
        def work(conn: Connection) -> int:
            return sum(self._insert_any(conn, rec, "spool") for rec in records)
        try:
            new, _ = self._in_transaction(work)
        except TRANSIENT_ERRORS as exc:
            raise TransientSinkError(type(exc).__name__) from exc
        return new

    def _schedule_replay(self) -> None:
        with self._bg_lock:
            if self._closed or (self._bg is not None and self._bg.is_alive()):
                return
            self._bg = threading.Thread(target=self._background_replay,
                                        name="audit-spool-replay", daemon=True)
            self._bg.start()

    def _background_replay(self) -> None:
        try:
            self.replay_spool()
        except Exception as exc:  # keep serving; the spool is intact and retried later
            log.error("audit.spool_replay_failed", error=type(exc).__name__)

    # -- health -----------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers (and the schema is in place). A readiness probe
        calls this every few seconds, so a successful ping also starts a pending replay."""
        try:
            self._in_transaction(lambda conn: conn.execute(text("SELECT 1")).scalar_one())
        except Exception:
            return False
        self._healthy()
        return True

    def spool_depth(self) -> int:
        """Records waiting in the spool for the database."""
        return self._spool.depth()

    def quarantine_depth(self) -> int:
        """Spool lines that could not be read or stored, kept for a person to inspect."""
        return self._spool.quarantine_depth()

    # -- reading (monitoring) ---------------------------------------------------------------

    def assessments(self, since: datetime | None = None, until: datetime | None = None
                    ) -> Iterator[AssessmentRecord]:
        """Stored assessments with ``since <= received_at < until``, oldest first."""
        return self._read(assessments, assessments.c.received_at, since, until,
                          assessment_from_row)

    def feedback(self, since: datetime | None = None, until: datetime | None = None
                 ) -> Iterator[FeedbackRecord]:
        """Stored feedback with ``since <= received_at < until``, oldest first."""
        return self._read(feedback, feedback.c.received_at, since, until, feedback_from_row)

    def outcomes(self, since: datetime | None = None, until: datetime | None = None
                 ) -> Iterator[OutcomeRecord]:
        """Observed follow-up BP with ``since <= observed_at < until``, oldest first."""
        return self._read(outcomes, outcomes.c.observed_at, since, until, outcome_from_row)

    def rationales(self, since: datetime | None = None, until: datetime | None = None
                   ) -> Iterator[RationaleRecord]:
        """Stored LLM rationales with ``since <= received_at < until``, oldest first."""
        return self._read(rationales, rationales.c.received_at, since, until,
                          rationale_from_row)

    def assessment(self, request_id: str) -> AssessmentRecord | None:
        stmt = select(assessments).where(assessments.c.request_id == request_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else assessment_from_row(row)

    def assessment_for_card(self, card_uuid: str) -> AssessmentRecord | None:
        """The assessment that showed card ``card_uuid`` (joins feedback to its assessment)."""
        stmt = (select(assessments)
                .join(assessment_cards,
                      assessment_cards.c.request_id == assessments.c.request_id)
                .where(assessment_cards.c.card_uuid == card_uuid)
                .order_by(assessments.c.received_at.desc()).limit(1))
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else assessment_from_row(row)

    def find_card(self, card_uuid: str) -> CardLookup:
        """The issued card ``card_uuid`` as its assessment's record shows it (the newest such
        record), "unknown" or "pending" (see :data:`CardLookup`). Never raises for a database
        that is down: it trips the breaker and answers "pending"."""
        # Looked at before the query: a record that left the spool before this point was
        # committed first, so the query sees it; one still spooled makes a miss "pending".
        spooled = bool(self._spool.pending_files())
        if self.tripped():
            return "pending"
        stmt = (select(assessments.c.request_id, assessments.c.service_id, assessments.c.cards)
                .join(assessment_cards,
                      assessment_cards.c.request_id == assessments.c.request_id)
                .where(assessment_cards.c.card_uuid == card_uuid)
                .order_by(assessments.c.received_at.desc()).limit(1))
        try:
            self._ensure_schema()
            with self._engine.connect() as conn:
                row = conn.execute(stmt).first()
        except TRANSIENT_ERRORS as exc:
            self._trip()
            log.warning("audit.card_lookup_failed", error=type(exc).__name__)
            return "pending"
        if row is None:
            return "pending" if spooled else "unknown"
        entry = next((c for c in row.cards if c.get("uuid") == card_uuid), {"uuid": card_uuid})
        return IssuedCard.from_entry(row.request_id, row.service_id, entry)

    def _read(self, table: Table, when: Column[datetime], since: datetime | None,
              until: datetime | None, convert: Callable[[Mapping[Any, Any]], _R]
              ) -> Iterator[_R]:
        stmt = select(table).order_by(when, table.c.id)
        if since is not None:
            stmt = stmt.where(when >= utc(since, "since"))
        if until is not None:
            stmt = stmt.where(when < utc(until, "until"))
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=500).execute(stmt)
            for row in result.mappings():
                yield convert(row)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def spool_dir(self) -> Path:
        return self._spool.directory

    def close(self) -> None:
        """Wait for a background replay, then release the connections. Idempotent."""
        with self._bg_lock:
            self._closed = True
            bg = self._bg
        if bg is not None:
            bg.join()
        self._engine.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
