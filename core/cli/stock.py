"""``marketsync stock``: the local stock master by hand."""

from __future__ import annotations

from pathlib import Path

import click

from marketsync.core.cli import csvio

from marketsync.core.domain import inventory, push_guard

from marketsync.core.cli.context import CliContext, pass_cli
from .daemon_link import tell_daemon_stock_changed


@click.group()
def stock() -> None:
    """Local stock: on hand, reserved by open orders, available to sell."""


def _show(level: inventory.StockLevel) -> None:
    # a shortfall is said, never shown as negative availability: channels get 0
    short = (f"  SHORT {level.short}: open orders hold more than is on hand"
             if level.short else "")
    click.echo(f"{level.sku}: on hand {level.on_hand}, reserved {level.reserved}, "
               f"available {level.available}{short}")


@stock.command("set")
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=0))
@pass_cli
def set_(cli: CliContext, sku: str, quantity: int) -> None:
    """Set the on-hand quantity of SKU (a shelf count)."""
    _show(cli.store.run_blocking(inventory.set_on_hand, sku, quantity, note="cli"))
    tell_daemon_stock_changed(cli)


@stock.command(context_settings={"ignore_unknown_options": True})
@click.argument("sku")
@click.argument("delta", type=int)
@click.option("--reason", required=True, help="Why, e.g. delivery, breakage.")
@click.option("--force", is_flag=True, help="Allow on hand to go below 0.")
@pass_cli
def adjust(cli: CliContext, sku: str, delta: int, reason: str, force: bool) -> None:
    """Add (+N) or remove (-N) units of SKU."""
    _show(cli.store.run_blocking(inventory.adjust, sku, delta, reason=reason, force=force))
    tell_daemon_stock_changed(cli)


@stock.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Allow deltas to take on hand below 0.")
@pass_cli
def import_(cli: CliContext, file: Path, force: bool) -> None:
    """Set (sku,quantity) or adjust (sku,delta,reason) many SKUs; every row is checked
    before any is applied, then they are applied in chunks (run it again after an
    interruption: rows already applied are skipped)."""
    done = csvio.import_stock(cli.store, file.read_text("utf-8"), str(file), force=force)
    click.echo(f"{file}: {done.applied} row(s) applied"
               + (f", {done.already} applied by an earlier run" if done.already else ""))
    tell_daemon_stock_changed(cli)


@stock.command()
@click.argument("sku", required=False)
@pass_cli
def show(cli: CliContext, sku: str | None) -> None:
    """Stock of SKU, or of every product."""
    if sku is not None:
        _show(cli.store.run_blocking(inventory.stock_level, sku))
        return
    levels = cli.store.run_blocking(inventory.stock_levels)
    if not levels:
        click.echo("no products yet")
    for level in levels:
        _show(level)


@stock.command()
@click.argument("alias", required=False)
@pass_cli
def plan(cli: CliContext, alias: str | None) -> None:
    """What the next pushes would change on the channel, listing by listing, and which
    integrations hold their pushes (review of a new connection, or the safety valve)."""
    try:
        found = cli.store.run_blocking(push_guard.plan, alias)
    except push_guard.UnknownAlias as exc:
        raise click.ClickException(str(exc)) from None
    for name, (hold, reason) in found.holds.items():
        if hold == push_guard.REVIEW:
            click.echo(f"{name}: held for review (new connection): "
                       f"`marketsync stock accept {name}` sends the changes below")
        elif hold == push_guard.VALVE:
            click.echo(f"{name}: HELD by the safety valve: {reason}; "
                       f"`marketsync stock accept {name}` sends the changes below")
    if not found.changes:
        click.echo("nothing would change on any channel" if alias is None
                   else f"{alias}: nothing would change on the channel")
    for change in found.changes:
        channel = "?" if change.channel_quantity is None else change.channel_quantity
        click.echo(f"{change.alias:<20} {change.channel_sku:<24} {change.marketplace:<4} "
                   f"{channel:>6} -> "
                   f"{change.wanted_quantity:<6} (product {change.sku})")


@stock.command()
@click.argument("alias")
@pass_cli
def accept(cli: CliContext, alias: str) -> None:
    """Release ALIAS's held stock pushes (after reading `marketsync stock plan ALIAS`)."""
    try:
        was = cli.store.run_blocking(push_guard.accept, alias)
    except push_guard.UnknownAlias as exc:
        raise click.ClickException(str(exc)) from None
    if was is None:
        click.echo(f"{alias}: nothing was held")
        return
    click.echo(f"{alias}: released ({'review' if was == push_guard.REVIEW else 'safety valve'});"
               " the pending pushes go out now")
    tell_daemon_stock_changed(cli)
