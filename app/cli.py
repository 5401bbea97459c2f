"""The `bank` command: one entry point for migrations, the three processes and admin tasks.

Expected operational failures (bad settings, database or Redis unreachable) print one clear line
and exit non-zero; tracebacks are for bugs.
"""

from __future__ import annotations

import click

from app.operational import load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bank() -> None:
    """Event-sourced bank ledger: write API, projectors, query API and admin tools."""


@bank.command()
def migrate() -> None:
    """Create or upgrade the event store schema (Alembic `upgrade head`)."""
    from app.operational import explain_operational_errors
    from write_side.store.migrate import upgrade_to_head

    settings = load_settings()
    with explain_operational_errors("migrate the event store"):
        upgrade_to_head(settings.store.database_url)
    click.echo("event store is up to date")


def _serve(factory: str, host: str, port: int, workers: int) -> None:
    from app.serving import serve

    serve(factory, host, port, workers)


@bank.command("write-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def write_api(host: str, port: int, workers: int) -> None:
    """Serve the write API (commands in, events appended)."""
    from app.personal_data_cli import refuse_without_master_key

    refuse_without_master_key(load_settings())
    click.echo(f"write API on http://{host}:{port} (docs: http://{host}:{port}/schema)")
    _serve("app.wiring:write_api_from_env", host, port, workers)


@bank.command("query-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def query_api(host: str, port: int, workers: int) -> None:
    """Serve the query API (read models from Redis)."""
    load_settings()
    click.echo(f"query API on http://{host}:{port} (docs: http://{host}:{port}/schema)")
    _serve("app.wiring:query_api_from_env", host, port, workers)


@bank.command()
@click.option(
    "--burst", is_flag=True, help="Drain the queue, catch every projection up, then exit."
)
def worker(burst: bool) -> None:
    """Run the RQ projection worker (and its periodic safety sweep)."""
    from app.logs import configure_logging
    from app.operational import explain_operational_errors
    from app.personal_data_cli import refuse_without_master_key
    from projectors.worker import run_worker

    settings = load_settings()
    refuse_without_master_key(settings)
    configure_logging(settings.log)
    with explain_operational_errors("run the projection worker"):
        run_worker(settings, burst=burst)


@bank.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface for both APIs.")
@click.option("--write-port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--query-port", default=8001, show_default=True, type=click.IntRange(1, 65535))
def up(host: str, write_port: int, query_port: int) -> None:
    """Migrate, then run the write API, the query API and a worker until Ctrl-C."""
    from pathlib import Path

    from app.operational import explain_operational_errors
    from app.personal_data_cli import with_local_master_key
    from app.stack import LOCAL_KEY_FILE, StackPorts, run_stack
    from auth.local_key import ensure_local_key
    from write_side.store.database import create_sync_store_engine
    from write_side.store.migrate import upgrade_to_head

    settings = with_local_master_key(load_settings())
    token = None
    with explain_operational_errors("migrate the event store"):
        upgrade_to_head(settings.store.database_url)
        if settings.auth.enabled:
            engine = create_sync_store_engine(settings.store.database_url)
            try:
                token = ensure_local_key(engine, LOCAL_KEY_FILE)
            finally:
                engine.dispose()
    click.echo(f"event store: {_redacted(settings.store.database_url)}")
    try:
        code = run_stack(StackPorts(host, write_port, query_port), Path("var"), settings, token)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)


@bank.command()
@click.option("--accounts", default=100, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--events", default=10_000, show_default=True, type=click.IntRange(1, 100_000_000))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--seed", type=int, default=None, help="Make the traffic reproducible.")
def demo(accounts: int, events: int, concurrency: int, seed: int | None) -> None:
    """Fill the store with random traffic through the real command path."""
    import asyncio

    from app.operational import explain_operational_errors
    from write_side.demo import run_demo

    if events < accounts:
        raise click.BadParameter("must be at least --accounts (each account opens with one event)")
    settings = load_settings()

    def progress(done: int, total: int) -> None:
        click.echo(f"  {done:,} / {total:,} events", err=True)

    with explain_operational_errors("run the demo traffic"):
        report = asyncio.run(
            run_demo(settings, accounts, events, concurrency, seed, progress=progress)
        )
    rate = report.events / report.seconds if report.seconds else 0.0
    click.echo(
        f"appended {report.events:,} events to {report.accounts:,} accounts "
        f"in {report.seconds:.1f}s ({rate:,.0f} events/s)"
    )


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register_groups() -> None:
    from app.apikey_cli import apikey
    from app.audit_cli import digest, export_command, import_command, verify
    from app.personal_data_cli import forget
    from app.projections_cli import projections

    bank.add_command(apikey)
    bank.add_command(projections)
    for command in (verify, digest, export_command, import_command):
        bank.add_command(command)
    bank.add_command(forget)


_register_groups()


def main() -> None:
    bank(prog_name="bank")


if __name__ == "__main__":
    main()
