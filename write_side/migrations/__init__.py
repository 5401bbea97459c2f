"""Alembic migrations of the event store."""
