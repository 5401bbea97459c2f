"""`bank verify`, `bank digest`, `bank export` and `bank import`: the audit commands.

They work on the event store only (the SQL database of DATABASE_URL), never on Redis; after an
import, `bank projections rebuild --all` builds the read models from the imported events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa

from app.operational import explain_operational_errors, load_settings
from app.progress import Progress


@contextmanager
def _store(doing: str) -> Iterator[sa.Engine]:
    from write_side.store.database import create_sync_store_engine

    settings = load_settings()
    with explain_operational_errors(doing):
        engine = create_sync_store_engine(settings.store.database_url)
        try:
            yield engine
        finally:
            engine.dispose()


@click.command()
@click.option(
    "--digest",
    "digest_text",
    metavar="POSITION:HASH",
    help="Also check that the chain still passes through this digest (from `bank digest`).",
)
def verify(digest_text: str | None) -> None:
    """Walk the hash chain; exit 1 naming the first position that does not verify."""
    from write_side.audit.chain_rows import head
    from write_side.audit.verify import Digest, verify_chain

    try:
        digest = Digest.parse(digest_text) if digest_text is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--digest") from None
    with (
        _store("verify the event store") as engine,
        Progress("verifying", head(engine)[0]) as progress,
    ):
        verdict = verify_chain(engine, digest, progress.advance)
    if not verdict.ok:
        click.echo(f"position {verdict.failed_at} does not verify: {verdict.reason}", err=True)
        raise SystemExit(1)
    through = f"; passes through digest {digest}" if digest is not None else ""
    click.echo(
        f"{verdict.events} events verified; head {verdict.head.hash} at position "
        f"{verdict.head.position}{through}"
    )


@click.command()
def digest() -> None:
    """Print the chain's head as POSITION:HASH, to keep elsewhere for `bank verify --digest`."""
    from kernel.chain import GENESIS
    from write_side.audit.chain_rows import head

    with _store("read the event store") as engine:
        position, hash_ = head(engine)
    click.echo(f"{position}:{hash_ or GENESIS}")


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def export_command(file: str) -> None:
    """Write every event, in position order, as JSON Lines to FILE (`-`: standard output)."""
    from write_side.audit.chain_rows import head
    from write_side.audit.export import export_events

    with (
        _store("export the event store") as engine,
        click.open_file(file, "w", encoding="utf-8") as out,
        Progress("exporting", head(engine)[0]) as progress,
    ):
        export_events(engine, out, progress.advance)


def _line_count(file: str) -> int:
    """The bar's length: an export has one line per position (standard input: unknown, 0)."""
    if file == "-":
        return 0
    with open(file, "rb") as lines:
        return sum(1 for _ in lines)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, exists=True))
def import_command(file: str) -> None:
    """Load an export into an empty store, verifying the chain line by line."""
    from write_side.audit.importer import ImportRefused, import_events

    with _store("import into the event store") as engine:
        try:
            with (
                click.open_file(file, "r", encoding="utf-8") as lines,
                Progress("importing", _line_count(file)) as progress,
            ):
                count = import_events(engine, lines, progress.advance)
        except ImportRefused as refused:
            raise click.ClickException(f"nothing imported: {refused}") from None
    click.echo(f"imported {count} events; serve them with `bank projections rebuild --all`")
