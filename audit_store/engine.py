"""Engines for the audit store: SQLite (WAL, synchronous=FULL) or PostgreSQL (psycopg 3).

Both are set up to fail fast: a dead or unreachable database must send the record to the
spool within about ``timeout_s`` instead of holding the clinician's card. PostgreSQL gets a
libpq connect timeout, TCP user timeout and keepalives (a black-holed network), and server-side
statement, lock and idle-in-transaction timeouts; the pool wait is bounded too. SQLite gets a
busy timeout of ``timeout_s`` so a locked file is reported as an error rather than waited on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

from audit_store.schema import UNIQUE_KEYS

_PG_ALIASES: Final = frozenset({"postgres", "postgresql"})


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


#: JSON columns through orjson (the standard json module was a third of a record's write time).
_JSON_CODEC: Final[dict[str, Any]] = {"json_serializer": _dumps,
                                      "json_deserializer": orjson.loads}


def normalise_url(url: str | URL) -> URL:
    """Parse ``url``; a bare ``postgresql://`` (or ``postgres://``) uses psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in _PG_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"audit store supports sqlite and postgresql, not {backend!r}")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("the audit store needs a SQLite file: an in-memory database is "
                         "not durable")
    return parsed


def sqlite_path(url: URL) -> Path:
    if url.database is None:
        raise ValueError("SQLite URL without a file")
    return Path(url.database)


def create_audit_engine(url: str | URL, *, timeout_s: float = 2.0,
                        statement_timeout_s: float = 5.0) -> Engine:
    """An engine for ``url`` with the durability pragmas and fail-fast timeouts set."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, timeout_s)
    return _postgres_engine(parsed, timeout_s, statement_timeout_s)


def _sqlite_engine(url: URL, timeout_s: float) -> Engine:
    sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": timeout_s}, pool_timeout=timeout_s,
                           **_JSON_CODEC)
    busy_ms = max(1, int(timeout_s * 1000))

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r})")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        finally:
            cursor.close()

    return engine


def _postgres_engine(url: URL, timeout_s: float, statement_timeout_s: float) -> Engine:
    timeout_ms = max(1, int(timeout_s * 1000))
    statement_ms = max(1, int(statement_timeout_s * 1000))
    options = (f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} "
               f"-c idle_in_transaction_session_timeout={max(statement_ms, 60_000)}")
    connect_args: dict[str, Any] = {
        "connect_timeout": max(2, math.ceil(timeout_s)),  # libpq's floor is 2 s
        "tcp_user_timeout": timeout_ms + statement_ms,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "application_name": "hypermarker-audit",
        "options": options,
    }
    return create_engine(url, connect_args=connect_args, pool_size=5, max_overflow=10,
                         pool_timeout=timeout_s, pool_recycle=1800, **_JSON_CODEC)


def insert_ignoring_duplicates(engine: Engine, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT (unique key) DO NOTHING`` for the engine's dialect."""
    keys = UNIQUE_KEYS[table.name]
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
