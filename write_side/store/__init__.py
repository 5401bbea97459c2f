"""The append-only event store (SQLAlchemy Core): PostgreSQL first, SQLite as the embedded default."""
