"""``marketsync stock``: the local stock master by hand."""

from __future__ import annotations

from pathlib import Path

import click

from marketsync.core.cli import csvio

from marketsync.core.domain import inventory

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
@pass_cli
def adjust(cli: CliContext, sku: str, delta: int, reason: str) -> None:
    """Add (+N) or remove (-N) units of SKU."""
    _show(cli.store.run_blocking(inventory.adjust, sku, delta, reason=reason))
    tell_daemon_stock_changed(cli)


@stock.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def import_(cli: CliContext, file: Path) -> None:
    """Set (sku,quantity) or adjust (sku,delta,reason) many SKUs; all rows or none."""
    count = cli.store.run_blocking(csvio.import_stock, file.read_text("utf-8"), str(file))
    click.echo(f"{file}: {count} row(s) applied")
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
