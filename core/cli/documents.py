"""``marketsync documents``: invoices and packing slips as PDF, one order or a day's.

Invoice numbers are allocated and committed before the PDF is drawn, so a long batch
never holds the database's write lock while laying out pages; a print that fails
afterwards loses nothing, because the numbers stay with their orders and a reprint
shows the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from marketsync.core.domain import products
from marketsync.core.documents.pdf import render_pdf
from marketsync.core.documents.content import Kind, Selection, Seller, load_document, select_orders
from marketsync.core.types import OrderStatus

from marketsync.core.cli.context import CliContext, pass_cli


@click.group()
def documents() -> None:
    """Invoices and packing slips as PDF, from templates you can replace."""


class _Day(click.DateTime):
    """A calendar day; help shows YYYY-MM-DD rather than click's ``[%Y-%m-%d]``."""

    name = "date"

    def __init__(self) -> None:
        super().__init__(formats=["%Y-%m-%d"])

    def get_metavar(self, param: click.Parameter, *args: Any) -> str:
        return "YYYY-MM-DD"


def _selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("order_id", type=int, required=False),
        click.option("--date", "day", type=_Day(), metavar="YYYY-MM-DD",
                     help="Every order bought that day (UTC), one per page."),
        click.option("--status", type=click.Choice([s.value for s in OrderStatus]),
                     help="Every order in this status, e.g. New (with --date: both)."),
        click.option("--integration", "alias", help="Only orders of this integration."),
        click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
                     help="PDF file to write [default: named after the order or day]."),
        click.option("--template", type=click.Path(exists=True, dir_okay=False,
                                                   path_type=Path),
                     help="Use this template instead of the configured or shipped one."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


@documents.command()
@_selection_options
@pass_cli
def invoice(cli: CliContext, **options: Any) -> None:
    """Invoice of ORDER_ID, or of every order chosen by --date / --status.

    The first print gives an order the next invoice number of its integration; later
    prints show the same number.
    """
    _print(cli, "invoice", **options)


@documents.command("packing-slip")
@_selection_options
@pass_cli
def packing_slip(cli: CliContext, **options: Any) -> None:
    """Packing slip (no prices) of ORDER_ID, or of every order chosen by --date / --status."""
    _print(cli, "packing_slip", **options)


def _print(cli: CliContext, kind: Kind, *, order_id: int | None, day: datetime | None,
           status: str | None, alias: str | None, out: Path | None,
           template: Path | None) -> None:
    batch = day is not None or status is not None
    if order_id is not None and batch:
        raise click.UsageError("give either ORDER_ID or --date/--status, not both")
    if order_id is None and not batch:
        raise click.UsageError("give an ORDER_ID, or --date YYYY-MM-DD and/or --status")
    if order_id is not None and alias:
        raise click.UsageError("--integration only narrows --date/--status")
    sellers = {i.alias: Seller.from_config(i)
               for i in getattr(cli.config, "integrations", ()) or ()}
    selection = Selection(day=day.date() if day else None,
                          status=OrderStatus(status) if status else None)

    def load(session: Any) -> list[Any]:
        if order_id is not None:
            ids = [order_id]
        else:
            if alias:
                selection.integration_id = products.integration_id(session, alias)
            ids = select_orders(session, selection)
        return [load_document(session, i, kind, cipher=cli.cipher, sellers=sellers)
                for i in ids]

    loaded = cli.store.run_blocking(load)
    if not loaded:
        raise click.ClickException(f"no orders {_describe(selection.day, status, alias)}")
    target = out or Path(_default_name(kind, order_id, selection.day, status))
    target.write_bytes(render_pdf(kind, loaded, template=template))
    what = kind.replace("_", " ")
    if order_id is not None:
        number = f" {loaded[0].invoice_number}" if kind == "invoice" else ""
        click.echo(f"{what}{number} of order {order_id} ({loaded[0].number}): {target}")
    else:
        plural = "packing slips" if kind == "packing_slip" else "invoices"
        click.echo(f"{_count(len(loaded), what, plural)} for orders "
                   f"{_describe(selection.day, status, alias)}, one order per page: {target}")


def _count(n: int, one: str, many: str) -> str:
    return f"1 {one}" if n == 1 else f"{n} {many}"


def _describe(day: date | None, status: str | None, alias: str | None) -> str:
    parts = [f"bought on {day.isoformat()}" if day else "",
             f"with status {status}" if status else "", f"of {alias}" if alias else ""]
    return " ".join(p for p in parts if p)


def _default_name(kind: Kind, order_id: int | None, day: date | None,
                  status: str | None) -> str:
    stem = kind.replace("_", "-")
    if order_id is not None:
        return f"{stem}-{order_id}.pdf"
    return "-".join([stem + "s"] + [p for p in (day and day.isoformat(), status) if p]) + ".pdf"
