"""`bank projections ...`: where the projections stand, and rebuilding them from scratch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from app.operational import explain_operational_errors, load_settings
from app.progress import Progress
from kernel.settings import Settings
from read_side.views import ProjectionStatus

if TYPE_CHECKING:
    from projectors.catch_up import ProjectionContext


@click.group()
def projections() -> None:
    """Inspect and rebuild the Redis read models."""


async def _status(settings: Settings) -> list[ProjectionStatus]:
    from projectors.catch_up import open_context
    from read_side.readers import ReadModelReader

    async with open_context(settings) as ctx:
        head = await ctx.store.head_position()
        return await ReadModelReader(ctx.redis, settings.redis.prefix).projections(head)


@projections.command()
def status() -> None:
    """A table: each projection, its generation, checkpoint, the store's head, lag, last advance."""
    settings = load_settings()
    with explain_operational_errors("read the projection status"):
        rows = asyncio.run(_status(settings))
    header = ("projection", "generation", "checkpoint", "head", "lag", "last advanced")
    table = [
        header,
        *(
            (
                s.name,
                str(s.generation),
                str(s.checkpoint),
                str(s.head),
                str(s.lag),
                s.last_advanced_at or "never",
            )
            for s in rows
        ),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _chosen(names: Sequence[str], rebuild_all: bool) -> list[str]:
    from projectors.catch_up import PROJECTIONS

    known = [p.name for p in PROJECTIONS]
    if rebuild_all:
        return known
    if not names:
        raise click.UsageError(f"name a projection ({', '.join(known)}) or pass --all")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; known: {', '.join(known)}", param_hint="NAME")
    return list(dict.fromkeys(names))


async def _rebuild(
    settings: Settings,
    names: list[str],
    dry_run: bool,
    batch_size: int | None,
    runner_wait_s: float,
) -> int:
    from projectors.catch_up import open_context

    async with open_context(settings) as ctx:
        if dry_run:
            return await _dry_run(ctx, names, runner_wait_s)
        await _rebuild_together(ctx, names, batch_size, runner_wait_s)
        return 0


async def _rebuild_together(
    ctx: ProjectionContext, names: list[str], batch_size: int | None, runner_wait_s: float
) -> None:
    """One read of the store feeds every named projection (projectors/one_pass.py)."""
    from projectors.rebuild import REBUILD_BATCH_SIZE, projection_named, rebuild_projections

    head = await ctx.store.head_position()
    with Progress(f"{', '.join(names)} rebuild", head) as progress:
        results = await rebuild_projections(
            ctx,
            [projection_named(name) for name in names],
            batch_size=batch_size or REBUILD_BATCH_SIZE,
            on_batch=progress.advance,
            runner_wait_s=runner_wait_s,
        )
    for result in results:
        click.echo(
            f"{result.projection}: rebuilt from {result.events:,} events; generation "
            f"{result.old_generation} -> {result.new_generation} is live, "
            f"{result.deleted_keys:,} old keys deleted "
            f"(waited {result.runner_wait_s:.3f} s for the live runner)"
        )


async def _dry_run(ctx: ProjectionContext, names: list[str], runner_wait_s: float) -> int:
    """How many of the named projections differ from a replay of the store."""
    from projectors.consistency import check_projection
    from projectors.rebuild import projection_named

    differing = 0
    for name in names:
        head = await ctx.store.head_position()
        with Progress(f"{name} replay", head) as progress:
            comparison = await check_projection(
                ctx, projection_named(name), progress.advance, runner_wait_s=runner_wait_s
            )
        if comparison.consistent:
            click.echo(
                f"{name}: consistent with a replay of the store "
                f"({comparison.keys_compared:,} keys at position {comparison.position:,})"
            )
            continue
        differing += 1
        click.echo(f"{name}: {len(comparison.differences)} difference(s) from a replay:")
        for line in comparison.differences:
            click.echo(f"  {line}")
    return differing


@projections.command()
@click.argument("names", nargs=-1, metavar="[NAME ...]")
@click.option("--all", "rebuild_all", is_flag=True, help="Every projection.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Replay into a scratch generation and compare with the live read models; "
    "exit 1 when they differ. Changes nothing live.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    help="Events per batch of a rebuild (default 10,000).",
)
@click.option(
    "--runner-wait",
    "runner_wait_s",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds to wait for the live runner to hand over its lock before giving up.",
)
def rebuild(
    names: tuple[str, ...],
    rebuild_all: bool,
    dry_run: bool,
    batch_size: int | None,
    runner_wait_s: float,
) -> None:
    """Rebuild projections from position 0 beside the live ones, then switch atomically.

    Readers keep being served by the old generation until the switch; an interrupted rebuild leaves
    the live read models untouched and the next run starts cleanly.
    """
    from projectors.errors import RebuildError

    settings = load_settings()
    chosen = _chosen(names, rebuild_all)
    try:
        with explain_operational_errors("rebuild the projections"):
            differing = asyncio.run(_rebuild(settings, chosen, dry_run, batch_size, runner_wait_s))
    except RebuildError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: the live read models are untouched", err=True)
        raise SystemExit(130) from None
    if differing:
        raise SystemExit(1)
