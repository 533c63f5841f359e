"""Alembic's environment: the connection comes from :mod:`engine.store.schema`, which opened
it; SQLite alters tables in batch mode (copy and swap), as it cannot alter most things."""

from __future__ import annotations

from alembic import context

from engine.store.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
