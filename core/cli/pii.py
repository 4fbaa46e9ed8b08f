"""``marketsync pii``: how much buyer data the database holds, and until when.

Amazon's Data Protection Policy asks for buyer data to be deleted 30 days after delivery;
the daemon purges hourly (rules in docs/operations.md). This lets a seller, or an
auditor, see that it happens without reading the database.
"""

from __future__ import annotations

from datetime import datetime

import click

from marketsync.core import clock
from marketsync.core.cli.context import CliContext, pass_cli
from marketsync.core.domain import pii as buyer_data


@click.group()
def pii() -> None:
    """Buyer data kept for orders, and its purge."""


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


@pii.command("status")
@pass_cli
def status(cli: CliContext) -> None:
    """How many orders hold buyer data, and when the next purge is due."""
    report = cli.store.run_blocking(buyer_data.retention_report, clock.now())
    click.echo(f"orders holding buyer data: {report.holding}")
    if report.overdue:
        click.echo(f"past their purge date: {report.overdue} (the running daemon purges "
                   "them within the hour; is it running?)")
    if report.next_due is not None:
        click.echo(f"next purge due: {_when(report.next_due)} "
                   f"({report.next_due_orders} order(s) that day)")
    if report.latest_due is not None:
        click.echo(f"all buyer data held now is purged by: {_when(report.latest_due)}")
    click.echo(f"rule: {buyer_data.RETENTION.days} days after delivery (or shipping, or "
               f"cancellation), at most {buyer_data.HARD_CAP.days} days after purchase")
