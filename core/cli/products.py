"""``marketsync products``: listings, mapping by hand, local prices, handling times."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from marketsync.core.cli import csvio

from marketsync.core.domain import products as catalog

from marketsync.core.cli.context import CliContext, pass_cli
from marketsync.core.cli.daemon_link import PUSHES, tell_daemon


@click.group()
def products() -> None:
    """Products (master SKUs) and their listings on each integration."""


@products.command("list")
@click.argument("sku", required=False)
@pass_cli
def list_(cli: CliContext, sku: str | None) -> None:
    """Listings per product and integration."""
    rows = cli.store.run_blocking(catalog.list_listings, sku)
    if not rows:
        click.echo("no listings yet")
    for row in rows:
        flags = [] if row["on_channel"] else ["off channel"]
        if row["push_error"]:
            retry = row["push_retry_at"]
            flags.append(f"refused by the channel: {row['push_error']}"
                         + (f"; next try {retry:%Y-%m-%d %H:%M} UTC" if retry else ""))
        elif row["pending"]:
            flags.append("push pending")
        if row["price_error"]:
            retry = row["price_retry_at"]
            flags.append(f"price refused by the channel: {row['price_error']}"
                         + (f"; next try {retry:%Y-%m-%d %H:%M} UTC" if retry else ""))
        price = f"{row['price']} {row['currency'] or ''}".strip() if row["price"] else "-"
        if row["wanted_price"] is not None and row["wanted_price"] != row["price"]:
            price += f" -> {row['wanted_price']}"
        quantity = row["wanted_quantity"] if row["wanted_quantity"] is not None \
            else row["channel_quantity"]
        click.echo(f"{row['sku'] or '(unmapped)'}  {row['integration']}:{row['channel_sku']}  "
                   f"{row['fulfillment']}  qty {quantity if quantity is not None else '-'}  "
                   f"price {price}" + (f"  [{', '.join(flags)}]" if flags else ""))


@products.command()
@click.argument("sku")
@click.option("--title", help="Name for people.")
@click.option("--ean", help="EAN/GTIN, used to map listings of other channels.")
@click.option("--mpn", help="Manufacturer part number, matched after the EAN (eBay's "
              "product.mpn); given for an existing product without one, it is added.")
@pass_cli
def add(cli: CliContext, sku: str, title: str | None, ean: str | None,
        mpn: str | None) -> None:
    """Create product SKU locally (channels' imports create theirs by themselves)."""
    try:
        created = cli.store.run_blocking(catalog.add_product, sku, title=title, ean=ean, mpn=mpn)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"{sku}: " + ("created" if created else "exists already")
               + (f" (MPN {mpn.strip()})" if mpn else ""))
    tell_daemon(cli, *PUSHES)  # a restored product's listings are pushed again


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def import_(cli: CliContext, file: Path) -> None:
    """Products from a CSV: sku and any of title, ean, mpn (all rows or none). New SKUs are
    created; existing ones get an EAN or MPN they lack, by which channel listings with
    other SKUs find them."""
    done = csvio.import_products(cli.store, file.read_text("utf-8"), str(file))
    click.echo(f"{file}: {done.applied} product(s) created, {done.already} existed already")
    tell_daemon(cli, *PUSHES)  # a restored product's listings are pushed again


@products.command()
@click.argument("sku")
@pass_cli
def delete(cli: CliContext, sku: str) -> None:
    """Hide product SKU here; nothing changes on any channel, and an import that still
    lists it brings it back."""
    cli.store.run_blocking(catalog.delete_product, sku)
    click.echo(f"{sku}: deleted locally")
    tell_daemon(cli, *PUSHES)  # nothing to send unless a push was pending: then it goes now


@products.command("map")
@click.argument("channel_sku")
@click.argument("sku")
@click.option("--integration", "alias", required=True, help="Alias of the integration.")
@pass_cli
def map_(cli: CliContext, channel_sku: str, sku: str, alias: str) -> None:
    """Map the listing CHANNEL_SKU of an integration to product SKU."""
    def work(session):
        catalog.map_listing(session, catalog.integration_id(session, alias), channel_sku, sku)
    cli.store.run_blocking(work)
    click.echo(f"{alias}:{channel_sku} -> {sku}")
    tell_daemon(cli, *PUSHES)


@products.command()
@click.argument("channel_sku")
@click.option("--integration", "alias", required=True, help="Alias of the integration.")
@pass_cli
def unmap(cli: CliContext, channel_sku: str, alias: str) -> None:
    """Detach the listing CHANNEL_SKU from its product (no longer pushed)."""
    def work(session):
        catalog.unmap_listing(session, catalog.integration_id(session, alias), channel_sku)
    cli.store.run_blocking(work)
    click.echo(f"{alias}:{channel_sku} unmapped")
    tell_daemon(cli, *PUSHES)


@products.command()
@click.argument("sku")
@click.argument("amount")
@click.option("--integration", "alias", required=True, help="Alias of the integration.")
@pass_cli
def price(cli: CliContext, sku: str, amount: str, alias: str) -> None:
    """Set the price of SKU on one integration; it is pushed to the channel."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise click.BadParameter(f"{amount!r} is not an amount like 19.99") from None

    def work(session):
        return catalog.set_price(session, sku, value, catalog.integration_id(session, alias))
    count = cli.store.run_blocking(work)
    click.echo(f"{sku} on {alias}: {value} ({count} listing(s) to push)")
    tell_daemon(cli, *PUSHES)


@products.command("handling-time")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def handling_time(cli: CliContext, file: Path) -> None:
    """Handling time per product from a CSV (sku,handling_time_days); all rows or none."""
    done = csvio.import_handling_times(cli.store, file.read_text("utf-8"), str(file))
    click.echo(f"{file}: {done.applied} row(s) applied")
    tell_daemon(cli, *PUSHES)
