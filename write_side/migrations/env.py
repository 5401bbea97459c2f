"""Alembic environment: migrations run on a synchronous engine for the configured DATABASE_URL."""

from __future__ import annotations

from alembic import context

from auth.key_store import auth_metadata
from kernel.settings import Settings
from write_side.store.database import create_sync_store_engine
from write_side.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().store.database_url

engine = create_sync_store_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=[metadata, auth_metadata], render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
