"""`bank forget`, the master key of `bank up`, and the check that processes which read personal
data do not start without the master key once the store holds encrypted data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec
import sqlalchemy.exc

from kernel.master_key import MAKE_ONE, new_master_key_text
from kernel.settings import PersonalDataSettings, Settings, StoreSettings

if TYPE_CHECKING:
    from write_side.forget import Forgotten

LOCAL_MASTER_KEY_FILE = Path("var") / "master-key"


def refuse_without_master_key(settings: Settings) -> None:
    """One clear line and exit 1 when the store holds sealed personal data and no key was given.
    A store that cannot be reached is left to the process itself (it answers 503 until it can)."""
    if settings.personal_data.master_key:
        return
    from write_side.store.database import create_sync_store_engine
    from write_side.store.personal_keys import holds_sealed_data

    engine = create_sync_store_engine(settings.store.database_url)
    try:
        sealed = holds_sealed_data(engine)
    except sqlalchemy.exc.SQLAlchemyError:
        return
    finally:
        engine.dispose()
    if sealed:
        raise click.ClickException(
            "the event store holds encrypted personal data: set BANK_MASTER_KEY to the master "
            f"key it was written with (a new store's key can be made with {MAKE_ONE})"
        )


def with_kept_local_master_key(
    settings: Settings, key_file: Path = LOCAL_MASTER_KEY_FILE
) -> Settings:
    """Any command on the embedded default store (no DATABASE_URL) without BANK_MASTER_KEY: the
    key `bank up` keeps in ./var/master-key, if there is one (never made here), so an admin's
    `bank projections rebuild` next to `bank up` reads what it sealed."""
    local_store = settings.store.database_url == StoreSettings().database_url
    if settings.personal_data.master_key or not local_store or not key_file.is_file():
        return settings
    text = key_file.read_text(encoding="utf-8").strip()
    return msgspec.structs.replace(settings, personal_data=PersonalDataSettings(master_key=text))


def with_local_master_key(settings: Settings, key_file: Path = LOCAL_MASTER_KEY_FILE) -> Settings:
    """`bank up` without BANK_MASTER_KEY: the key kept in ./var/master-key (made on first use,
    mode 0600), like the local API key."""
    if settings.personal_data.master_key:
        return settings
    try:
        text = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = new_master_key_text()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        partial = key_file.with_name(key_file.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.chmod(partial, 0o600)
        os.replace(partial, key_file)
    return msgspec.structs.replace(settings, personal_data=PersonalDataSettings(master_key=text))


@click.command()
@click.argument("account_id")
def forget(account_id: str) -> None:
    """Erase ACCOUNT_ID's personal data: destroy its key and record `PersonalDataErased`.

    The owner then reads as "[erased]" everywhere (audit trail, aggregate, read models, rebuilds);
    the account, its money and its history stay.
    """
    import asyncio

    from app.operational import explain_operational_errors, load_settings
    from kernel.identifiers import ACCOUNT_ID

    if not ACCOUNT_ID.matches(account_id):
        raise click.BadParameter(f"must be {ACCOUNT_ID.description}", param_hint="ACCOUNT_ID")
    settings = load_settings()
    with explain_operational_errors("forget the account"):
        outcome = asyncio.run(_forget(settings, account_id))
    if outcome is None:
        raise click.ClickException(f"account {account_id!r} does not exist")
    if outcome.position is None:
        click.echo(f"{account_id}: personal data was already erased")
    else:
        click.echo(f"{account_id}: personal data erased (position {outcome.position})")


async def _forget(settings: Settings, account_id: str) -> Forgotten | None:
    from kernel.master_key import master_key_of
    from projectors.nudge import RedisNudgePublisher
    from write_side.domain.errors import AccountNotFound
    from write_side.forget import forget_account
    from write_side.personal_data import PersonalData
    from write_side.repository import AccountRepository
    from write_side.store.database import create_async_store_engine
    from write_side.store.event_store import EventStore
    from write_side.store.personal_keys import PersonalKeys

    engine = create_async_store_engine(settings.store.database_url, pool_size=2)
    publisher = RedisNudgePublisher(settings)
    personal_data = PersonalData(PersonalKeys(engine, master_key_of(settings)))
    repository = AccountRepository(
        EventStore(engine, settings.store.idempotency_retention),
        settings.store.snapshot_every,
        personal_data,
    )
    try:
        return await forget_account(repository, personal_data, publisher, account_id)
    except AccountNotFound:
        return None
    finally:
        await publisher.close()
        await engine.dispose()
