"""``marketsync usage``: orders per integration in a month (FBA orders count half)."""

from __future__ import annotations

import click

from marketsync.core import clock

from marketsync.core.domain import orders

from marketsync.core.cli.context import CliContext, pass_cli


@click.command()
@click.option("--month", metavar="YYYY-MM", help="Default: the current month (UTC).")
@pass_cli
def usage(cli: CliContext, month: str | None) -> None:
    """Orders per integration in a month; FBA orders count 0.5."""
    month = month or clock.now().strftime("%Y-%m")
    rows = cli.store.run_blocking(orders.usage, month)
    click.echo(f"usage {month}")
    for alias, count in rows:
        click.echo(f"  {alias}: {count:g}")
    click.echo(f"  total: {sum(count for _, count in rows):g}")
