"""Alembic environment for the audit store.

Run programmatically by :func:`audit_store.migrate.upgrade`, which hands over an open
connection in ``config.attributes["connection"]``; with none (``alembic`` on the command line,
``-x url=...``), it opens its own. The version table is ``audit_alembic_version`` so the audit
schema can share a database with other alembic-managed schemas.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from audit_store.engine import create_audit_engine
from audit_store.schema import metadata

VERSION_TABLE = "audit_alembic_version"


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      version_table=VERSION_TABLE, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=... or use audit_store.migrate")
    engine = create_audit_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported for the audit store")
_main()
