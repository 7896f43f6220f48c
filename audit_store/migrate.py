"""Run the audit store's alembic migrations from code (no alembic.ini needed).

The migration scripts ship inside the package (``audit_store/migrations``), so an installed
wheel can upgrade its own database. Concurrent starters (several workers or pods) are
serialised: PostgreSQL by a transaction-scoped advisory lock, SQLite by an exclusive ``flock``
on ``<database>.migrate-lock``; the second starter then finds the schema at head.

Command line (e.g. a Kubernetes init job): ``python -m audit_store.migrate DATABASE_URL``.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import NoSuchTableError

from audit_store.engine import create_audit_engine, sqlite_path

MIGRATIONS_DIR: Final = Path(__file__).resolve().with_name("migrations")
VERSION_TABLE: Final = "audit_alembic_version"
#: pg_advisory_xact_lock key: "hmaudit" as an integer, arbitrary but fixed.
_PG_LOCK_KEY: Final = 0x686D6175646974


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
        except NoSuchTableError:
            return None


@contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    lock_path = sqlite_path(engine.url).with_name(sqlite_path(engine.url).name + ".migrate-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the audit schema to ``revision`` (default head); a no-op when already there."""
    if engine.dialect.name == "sqlite":
        with _sqlite_lock(engine), engine.connect() as conn:
            # SQLite rebuilds a table to change a constraint (alembic batch mode), and with
            # foreign keys on, dropping the old table would cascade-delete the rows that refer
            # to it (assessment_cards): the audit trail. Foreign keys go off for the migration
            # (a PRAGMA that only works outside a transaction), are checked before the commit,
            # and come back on before the connection returns to the pool.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            try:
                with conn.begin():
                    command.upgrade(alembic_config(conn), revision)
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"audit migration broke {len(broken)} foreign "
                                           "key(s); rolled back")
            finally:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Tests and operators only: the audit trail is never downgraded in service."""
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m audit_store.migrate DATABASE_URL", file=sys.stderr)
        return 2
    engine = create_audit_engine(args[0])
    try:
        upgrade(engine)
        print(f"audit schema at {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
