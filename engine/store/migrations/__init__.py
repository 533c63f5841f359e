"""Alembic revisions of the engine's own tables (docs/upgrading.md). Run through
:mod:`engine.store.schema`, never by an ``alembic`` command: the engine configures Alembic
itself, so a bank needs no ``alembic.ini``."""
