"""``marketsync quarantine``: records a channel sent that could not be imported.

A quarantined merchant order reserves no stock and is never shipped, so it must not sit
unnoticed: ``list`` shows them, ``show`` one with its reason and the fields kept (never
buyer data), ``retry`` asks the channel for it again after an upgrade that fixes the
mapping, ``drop`` removes it once a person has dealt with it.
"""

from __future__ import annotations

import json

import click

from marketsync.core.cli.context import CliContext, pass_cli
from marketsync.core.domain import products
from marketsync.core.store import quarantine as store_quarantine
from marketsync.core.store.models import IntegrationRow


@click.group()
def quarantine() -> None:
    """Records that could not be imported, kept aside for a person."""


def _aliases(session) -> dict[int, str]:
    return {row.id: row.alias for row in session.query(IntegrationRow)}


@quarantine.command("list")
@click.option("--integration", "alias", help="Only this integration.")
@pass_cli
def list_(cli: CliContext, alias: str | None) -> None:
    """Quarantined records, most recently seen first."""
    def work(session):
        integration_id = products.integration_id(session, alias) if alias else None
        return _aliases(session), store_quarantine.list_records(session, integration_id)
    aliases, records = cli.store.run_blocking(work)
    if not records:
        click.echo("quarantine is empty")
        return
    for record in records:
        reason = record.reason.splitlines()[0][:120]
        click.echo(f"{record.id:>6}  {aliases.get(record.integration_id, '?')}  {record.kind}  "
                   f"{record.record_id}  seen {record.times_seen}x, last "
                   f"{record.last_seen_at:%Y-%m-%d %H:%M}  {reason}")
    click.echo(f"{len(records)} record(s); `marketsync quarantine show ID` for one")


@quarantine.command("show")
@click.argument("quarantined_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_cli
def show(cli: CliContext, quarantined_id: int, as_json: bool) -> None:
    """One quarantined record: reason, where the mapping failed, the fields kept."""
    def work(session):
        return _aliases(session), store_quarantine.get(session, quarantined_id)
    aliases, record = cli.store.run_blocking(work)
    if record is None:
        raise click.ClickException(f"no quarantined record #{quarantined_id}")
    details = {
        "id": record.id, "integration": aliases.get(record.integration_id),
        "kind": record.kind, "record_id": record.record_id, "reason": record.reason,
        "trace": record.trace, "times_seen": record.times_seen,
        "first_seen": record.created_at.isoformat(), "last_seen": record.last_seen_at.isoformat(),
        "kept_fields": record.raw,
    }
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if key == "kept_fields":
            click.echo(f"{key}:\n{json.dumps(value, indent=2)}")
        elif value is not None:
            click.echo(f"{key}: {value}")


@quarantine.command("drop")
@click.argument("quarantined_ids", type=int, nargs=-1, required=True)
@pass_cli
def drop(cli: CliContext, quarantined_ids: tuple[int, ...]) -> None:
    """Remove records a person has dealt with (an order entered by hand, say)."""
    missing = []
    for quarantined_id in quarantined_ids:
        if not cli.store.run_blocking(store_quarantine.release, quarantined_id):
            missing.append(quarantined_id)
    dropped = len(quarantined_ids) - len(missing)
    click.echo(f"dropped {dropped} record(s)")
    if missing:
        raise click.ClickException("no quarantined record " + ", ".join(f"#{i}" for i in missing))


@quarantine.command("retry")
@click.argument("quarantined_id", type=int)
@click.pass_context
def retry(ctx: click.Context, quarantined_id: int) -> None:
    """Ask the channel for the record again and import it if it maps now (after an upgrade)."""
    import trio

    from marketsync.core.cli import oneshot
    from marketsync.core.runtime.daemon import Daemon

    state = ctx.find_root().obj
    if not hasattr(state, "plugins"):
        raise click.ClickException("retry needs the daemon's configuration (marketsync -c FILE)")
    config = state.config()
    store = state.store(config)

    async def main() -> str:
        daemon = Daemon(config, plugins=state.plugins, store=store)
        try:
            return await oneshot.retry_quarantined(daemon, quarantined_id)
        finally:
            for integration in daemon.integrations.values():
                if integration.http is not None:
                    await integration.http.aclose()

    line = trio.run(main)
    click.echo(line)
    if "imported" in line:  # an imported order reserves units: the channels offer fewer
        from types import SimpleNamespace

        from marketsync.core.cli.daemon_link import PUSHES, tell_daemon
        tell_daemon(SimpleNamespace(config=config), *PUSHES)
    if "imported" not in line:
        ctx.exit(1)
