"""``marketsync orders``: the order book, local cancel and shipment, MCF, manual orders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from marketsync.core.cli import csvio

from marketsync.core.domain import orders as book, pii, products, recipients, shipments
from marketsync.core.store.models import IntegrationRow, Order, ShipmentRow

from marketsync.core.cli.context import CliContext, pass_cli
from marketsync.core.cli.daemon_link import PUSHES, tell_daemon


@click.group()
def orders() -> None:
    """The order book of every integration."""


@orders.command("list")
@click.option("--integration", "alias", help="Only this integration.")
@click.option("--status", type=click.Choice(["New", "PartiallyShipped", "Shipped", "Canceled"]))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@pass_cli
def list_(cli: CliContext, alias: str | None, status: str | None, limit: int) -> None:
    """Newest orders first (no buyer data)."""
    def work(session):
        query = (select(Order, IntegrationRow.alias)
                 .join(IntegrationRow, IntegrationRow.id == Order.integration_id)
                 .order_by(Order.purchased_at.desc(), Order.id.desc()).limit(limit))
        if alias:
            query = query.where(Order.integration_id == products.integration_id(session, alias))
        if status:
            query = query.where(Order.status == status)
        return [(o.id, a, o.channel_order_id, o.status.value, o.fulfillment.value,
                 o.purchased_at, sum(i.quantity for i in o.items))
                for o, a in session.execute(query)]
    rows = cli.store.run_blocking(work)
    if not rows:
        click.echo("no orders")
        return
    table = [("ID", "INTEGRATION", "ORDER", "STATUS", "FULFILLMENT", "BOUGHT (UTC)", "UNITS")]
    table += [(str(oid), alias_, channel_id, status_, fulfillment,
               f"{purchased:%Y-%m-%d %H:%M}", str(units))
              for oid, alias_, channel_id, status_, fulfillment, purchased, units in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [row[0].rjust(widths[0])] + [c.ljust(w) for c, w in zip(row[1:-1], widths[1:-1])]
        click.echo("  ".join(cells + [row[-1].rjust(widths[-1])]))


def _details(session, order_id: int, cipher: pii.PiiCipher | None) -> dict[str, Any]:
    order = book.get_order(session, order_id)
    alias = session.get(IntegrationRow, order.integration_id).alias
    buyer: dict[str, Any] = {}
    if order.pii_available and cipher is not None:
        for column in ("buyer_name", "buyer_email", "buyer_phone", "ship_to_address"):
            aad = pii.order_aad(column, order.integration_id, order.channel_order_id)
            buyer[column] = cipher.open_optional(getattr(order, column), aad)
        if buyer.get("ship_to_address"):
            buyer["ship_to_address"] = json.loads(buyer["ship_to_address"])
    return {
        "id": order.id, "integration": alias, "channel_order_id": order.channel_order_id,
        "status": order.status.value, "channel_status": order.channel_status,
        "fulfillment": order.fulfillment.value, "purchased_at": order.purchased_at,
        "canceled_by": order.canceled_by, "ship_to_country": order.ship_to_country,
        "pii": "purged or withheld" if not buyer and not order.pii_available else
               ("encrypted (no key given)" if cipher is None else "shown"),
        "buyer": buyer,
        "items": [(i.channel_item_id, i.channel_sku, i.quantity, i.quantity_shipped)
                  for i in order.items],
        "shipments": [(r.carrier, r.tracking_number, r.confirm_state) for r in session.execute(
            select(ShipmentRow).where(ShipmentRow.order_id == order.id)
            .order_by(ShipmentRow.id)).scalars()],
    }


def label(details: dict[str, Any], integration: Any) -> dict[str, Any]:
    """What a shipping label would get: the buyer's address, and from the integration's
    settings the return address, IOSS number and contact (prefill only where the buyer
    gave none, or overwrite)."""
    to = dict(details["buyer"].get("ship_to_address") or {})
    result: dict[str, Any] = {"ship_to": to or {"country_code": details["ship_to_country"]}}
    if integration is None:
        return result
    if integration.ioss_number:
        result["ioss_number"] = integration.ioss_number
    if integration.return_address is not None:
        result["return_address"] = integration.return_address.to_address()
    contact = integration.contact
    if contact is not None:
        overwrite = contact.mode == "overwrite"
        phone = details["buyer"].get("buyer_phone") or to.get("phone")
        email = details["buyer"].get("buyer_email")
        result["phone"] = contact.phone if overwrite or not phone else phone
        result["email"] = contact.email if overwrite or not email else email
    return result


@orders.command()
@click.argument("order_id", type=int)
@pass_cli
def show(cli: CliContext, order_id: int) -> None:
    """One order with its items, buyer data (with the PII key) and label data."""
    details = cli.store.run_blocking(_details, order_id, cli.cipher)
    for key in ("id", "integration", "channel_order_id", "status", "channel_status",
                "fulfillment", "purchased_at", "canceled_by", "pii"):
        if details[key] is not None:
            click.echo(f"{key}: {details[key]}")
    for item_id, sku, quantity, shipped in details["items"]:
        click.echo(f"  item {item_id}: {sku} x{quantity} (shipped {shipped})")
    for carrier, tracking, state in details["shipments"]:
        click.echo(f"  shipment: {carrier} {tracking} (channel: {state})")
    for key, value in details["buyer"].items():
        if value:
            click.echo(f"{key}: {value}")
    click.echo(f"label: {label(details, cli.integration(details['integration']))}")


@orders.command()
@click.argument("order_id", type=int)
@pass_cli
def cancel(cli: CliContext, order_id: int) -> None:
    """Cancel locally: restocks unless shipped; nothing is cancelled on the channel."""
    changed = cli.store.run_blocking(book.cancel_locally, order_id)
    click.echo(f"order {order_id}: " + ("canceled" if changed else "was already canceled"))
    if changed:
        tell_daemon(cli, *PUSHES)  # the units are back on sale


@orders.command()
@click.argument("order_id", type=int)
@click.option("--carrier", required=True)
@click.option("--tracking", required=True, help="Tracking number.")
@click.option("--method", help="Ship method, e.g. Standard.")
@click.option("--correct", is_flag=True,
              help="Fix the carrier or tracking number of the order's shipment instead of "
                   "adding one; the channel is told again (Amazon edits its package).")
@click.option("--was", metavar="TRACKING",
              help="With --correct: the tracking number being fixed, when the order has "
                   "several shipments.")
@pass_cli
def ship(cli: CliContext, order_id: int, carrier: str, tracking: str,
         method: str | None, correct: bool, was: str | None) -> None:
    """Record a shipment; the channel is told by the confirm_shipment job."""
    if was is not None and not correct:
        raise click.UsageError("--was goes with --correct")
    if correct:
        key = cli.store.run_blocking(shipments.correct_shipment, order_id, carrier=carrier,
                                     tracking_number=tracking, ship_method=method, was=was)
        click.echo(f"order {order_id}: shipment {key} now {carrier} {tracking}; "
                   "confirmation queued again")
        tell_daemon(cli, "confirm_shipment")
        return
    key = cli.store.run_blocking(book.ship_order, order_id, carrier=carrier,
                                 tracking_number=tracking, ship_method=method)
    click.echo(f"order {order_id}: shipped ({key}); confirmation queued")
    tell_daemon(cli, "confirm_shipment")


@orders.command("ship-import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def ship_import(cli: CliContext, file: Path) -> None:
    """Shipments from CSV (order_id,carrier,tracking_number[,ship_method,correct,was]);
    a row with correct=yes fixes the order's shipment instead of adding one."""
    keys = cli.store.run_blocking(csvio.import_shipments, file.read_text("utf-8"), str(file))
    click.echo(f"{file}: {len(keys)} shipment(s); confirmations queued")
    tell_daemon(cli, "confirm_shipment")


@orders.command("fulfill-mcf")
@click.argument("order_id", type=int)
@click.option("--integration", "alias", required=True,
              help="Alias of the integration whose fulfilment network ships it.")
@pass_cli
def fulfill_mcf(cli: CliContext, order_id: int, alias: str) -> None:
    """Have an order fulfilled by Amazon MCF; tracking follows by itself."""
    def work(session):
        return book.fulfill_mcf(session, order_id, products.integration_id(session, alias))
    click.echo(f"order {order_id}: MCF order {cli.store.run_blocking(work)}")
    tell_daemon(cli, "fetch_tracking", *PUSHES)  # sends the MCF order; its units come free


@orders.command()
@click.argument("order_id")
@click.argument("items", nargs=-1, required=True, metavar="SKU:QTY...")
@click.option("--buyer-name", help="The recipient's name (also on the address).")
@click.option("--buyer-email", help="The recipient's e-mail (Amazon MCF mails tracking to it).")
@click.option("--phone", help="The recipient's phone number.")
@click.option("--address-line", "lines", multiple=True, metavar="TEXT",
              help="An address line; up to three, in order.")
@click.option("--city")
@click.option("--state", help="State, region or county.")
@click.option("--postal-code")
@click.option("--country", help="Two-letter country code, e.g. DE.")
@pass_cli
def add(cli: CliContext, order_id: str, items: tuple[str, ...], buyer_name: str | None,
        buyer_email: str | None, phone: str | None, lines: tuple[str, ...], city: str | None,
        state: str | None, postal_code: str | None, country: str | None) -> None:
    """Enter a manual order, e.g. `orders add PHONE-17 MUG:2 CUP:1`; with an address it
    can be shipped by Amazon MCF (`orders fulfill-mcf`). Buyer data is stored encrypted."""
    parsed = []
    for item in items:
        sku, _, quantity = item.rpartition(":")
        if not sku or not quantity.isdigit():
            raise click.BadParameter(f"{item!r} is not SKU:QTY", param_hint="items")
        parsed.append((sku, int(quantity)))
    if len(lines) > 3:
        raise click.BadParameter("at most three address lines", param_hint="--address-line")
    lines = lines + (None,) * (3 - len(lines))
    buyer, address = recipients.checked(recipients.Recipient(
        name=buyer_name, email=buyer_email, phone=phone, line1=lines[0], line2=lines[1],
        line3=lines[2], city=city, state=state, postal_code=postal_code, country_code=country))
    new_id = cli.store.run_blocking(book.add_manual_order, order_id, parsed, buyer=buyer,
                                    address=address, cipher=cli.cipher)
    click.echo(f"order {new_id}: {order_id} (manual)")
    tell_daemon(cli, *PUSHES)  # its units are reserved: the channels offer fewer


@orders.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_cli
def import_(cli: CliContext, file: Path) -> None:
    """Manual orders from CSV (order_id,sku,quantity[,buyer_name,buyer_email,phone,
    address_line1,address_line2,address_line3,city,state,postal_code,country])."""
    ids = csvio.import_manual_orders(cli.store, file.read_text("utf-8"), str(file),
                                     cipher=cli.cipher)
    click.echo(f"{file}: {len(ids)} order(s)")
    tell_daemon(cli, *PUSHES)
