"""One-off work from the command line with the daemon's own wiring (connect, retry, sync).

These build a ``Daemon`` without serving it, so a command talks to the channel exactly as
the running daemon would: same configuration, stored credentials, governor and plugin.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import IO
from urllib.parse import parse_qsl, urlsplit

import httpx
import trio

from marketsync.core import clock
from marketsync.core.runtime import connect, jobs
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.cli.progress import progress
from marketsync.core.runtime.states import IntegrationState

log = logging.getLogger(__name__)

#: seconds between asks while the channel prepares an import's data (a report); the
#: daemon waits a minute, but someone is watching this one
PREPARING_POLL = 15.0
#: seconds of "still preparing" after which a command-line import stops waiting (the
#: daemon, or the next ``sync``, goes on following the same report: its id is stored)
PREPARING_LIMIT = 3600.0


async def prepared(daemon: Daemon, alias: str) -> None:
    await daemon.prepare()
    if alias not in daemon.runners:
        raise connect.ConnectError(f"no integration {alias!r} (known: "
                                   f"{', '.join(sorted(daemon.runners))})")


async def consent_url(daemon: Daemon, alias: str) -> str:
    await prepared(daemon, alias)
    return await connect.start(daemon, alias)


def redirect_params(url_or_code: str) -> dict[str, str]:
    """The parameters of a pasted redirect address, or ``{"code": ...}`` for a bare code."""
    if "?" in url_or_code or url_or_code.startswith(("http://", "https://")):
        return dict(parse_qsl(urlsplit(url_or_code).query))
    return {"code": url_or_code.strip()}


async def complete(daemon: Daemon, alias: str, params: Mapping[str, str]) -> tuple[str, str | None]:
    """Redeem a pasted code or redirect, store the credentials, check them.

    :returns: the integration's state and reason after the check.
    """
    await prepared(daemon, alias)
    await connect.finish(daemon, params, alias=alias)
    return await check(daemon, alias, prepare=False)


async def check(daemon: Daemon, alias: str, *, prepare: bool = True) -> tuple[str, str | None]:
    """Check credentials once (the "Retry"); the new state is stored for the daemon and status."""
    if prepare:
        await prepared(daemon, alias)
    runner = daemon.runners[alias]
    if runner.hooks is None:
        return IntegrationState.ERROR.value, runner.unavailable_reason
    await runner._attempt_setup()  # noqa: SLF001 - one attempt, no retry loop
    return runner.state.value, runner.reason


async def ask_running_daemon(daemon: Daemon, alias: str) -> bool:
    """Ask a running daemon's HTTP surface to retry; False when none answers."""
    http = daemon.config.http
    headers = {"authorization": f"Bearer {http.token.reveal()}"} if http.token else {}
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(f"{http.local_url}/integrations/{alias}/retry",
                                         headers=headers, follow_redirects=False)
    except httpx.HTTPError:
        return False
    return response.status_code in (200, 303)


class SinceError(ValueError):
    """``--since`` names no time, a time in the future, or more than the channel keeps."""


def since_time(text: str, now: datetime) -> datetime:
    """``--since``: a duration back from now (``30d``, ``12h``, ``1d12h``) or an ISO date or
    time (``2026-11-20``, ``2026-11-20T08:00``, UTC unless it names its zone)."""
    spelled = text.strip()
    if re.fullmatch(r"(?:\d+[smhd])+", spelled):
        from marketsync.core.config.parsers import Invalid, duration
        try:
            seconds = duration(spelled, None, "--since", 0)
        except Invalid as error:
            raise SinceError(f"--since {text!r}: {error}") from None
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(spelled)
    except ValueError:
        raise SinceError(f"--since {text!r} is neither a duration (30d, 12h) nor an ISO date "
                         "(2026-11-20)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment >= now:
        raise SinceError(f"--since {text!r} is not in the past")
    return moment


class Refusal(str):
    """A one-line answer that says nothing was done (an integration not LIVE, a job the
    channel lacks, a ``--since`` it cannot honour): printed like any answer, but the
    command exits non-zero, so a script or a timer unit that runs ``sync`` sees it."""

    exit_code = 1


class UsageRefusal(Refusal):
    """Refused because of what was asked (click's usage-error code, as for a bad file)."""

    exit_code = 2


async def sync(daemon: Daemon, alias: str, kind: str, *, stream: IO[str] | None = None,
               since: str | None = None) -> str:
    """Run one job of one integration now, after a credentials check.

    An import goes on until the channel has nothing more to give (a whole backfill or a
    first product import, however many of the daemon's runs that would take), with a
    progress line on ``stream`` (stdout by default) when that is a terminal.
    ``since`` (orders only) reads the history again from then on top of the cursor
    (``REREAD_FROM`` in ``core/types.py``), for the account's LIVE integrations.
    """
    runner = daemon.runners.get(alias)
    if runner is None or runner.state is not IntegrationState.LIVE:
        state, reason = await check(daemon, alias)
        if state != IntegrationState.LIVE.value:
            return Refusal(f"{alias} is {state}: {reason}")
    integration = daemon.integrations[alias]
    hooks = daemon.plugins.channel(integration.channel)
    if kind not in jobs.KINDS or not hooks.supports(kind):
        supported = ", ".join(k for k in jobs.KINDS if hooks.supports(k))
        return UsageRefusal(f"{alias}: no job {kind!r} (this channel runs: {supported})")
    if since is not None:
        return await _reread(daemon, alias, kind, since, stream)
    if kind in jobs.IMPORTS:
        return await _import_all(daemon, alias, kind, stream)
    await jobs.run(daemon, integration, hooks, kind)
    return f"{alias}: {kind} done"


async def _reread(daemon: Daemon, alias: str, kind: str, since: str,
                  stream: IO[str] | None) -> str:
    integration = daemon.integrations[alias]
    hooks = daemon.plugins.channel(integration.channel)
    if kind != "import_orders":
        return UsageRefusal(f"{alias}: --since is for import_orders only, not {kind}")
    days = hooks.info.reread_days
    if days <= 0:
        return UsageRefusal(f"{alias}: channel {integration.channel!r} cannot read its "
                            "order history again; run `marketsync sync` without --since")
    now = clock.now()
    try:
        start = since_time(since, now)
    except SinceError as error:
        return UsageRefusal(f"{alias}: {error}")
    if now - start > timedelta(days=days):
        return UsageRefusal(f"{alias}: --since {since} reaches {(now - start).days} days "
                            f"back; {integration.channel} keeps {days} days of order history")
    members = [integration]
    if jobs.is_account_scoped(hooks, kind):  # one report for the account's marketplaces
        members += [other for name, other in daemon.integrations.items()
                    if name != alias and other.account == integration.account
                    and other.channel == integration.channel and name in daemon.runners
                    and daemon.runners[name].state is IntegrationState.LIVE]
    return await _import_all(daemon, alias, kind, stream, members=members, reread_from=start)


async def _import_all(daemon: Daemon, alias: str, kind: str, stream: IO[str] | None, *,
                      members: list | None = None, reread_from: datetime | None = None) -> str:
    integration = daemon.integrations[alias]
    hooks = daemon.plugins.channel(integration.channel)
    total = runs = 0
    waited = 0.0
    with progress(f"{alias} {kind}", stream=stream) as bar:
        while True:
            outcome = await jobs.run_import(daemon, integration, hooks, kind,
                                            on_page=lambda page: bar.advance(len(page.items)),
                                            members=members,
                                            reread_from=reread_from if runs == 0 else None)
            total += outcome.items
            runs += 1
            if outcome.done:
                break
            if outcome.waiting:
                if waited >= PREPARING_LIMIT:
                    return Refusal(f"{alias}: {kind} stopped after {total:,} record(s): the "
                                   f"channel has been preparing the data for "
                                   f"{waited / 60:.0f} min; the daemon (or the next sync) "
                                   "goes on following it")
                bar.update(bar.done)  # redraw: the rate drops while the channel prepares
                await trio.sleep(PREPARING_POLL)
                waited += PREPARING_POLL
    return f"{alias}: {kind} done: {total:,} record(s) in {runs} run(s)"


async def notifications(daemon: Daemon, account: str, action: str) -> list[str]:
    """``subscribe`` or ``unsubscribe`` the account's queue with the channel, through the
    same plugin, credentials and governor as the daemon."""
    settings = getattr(daemon.config.accounts.get(account), "notifications", None)
    if account not in daemon.config.accounts:
        raise connect.ConnectError(f"no account {account!r} (known: "
                                   f"{', '.join(sorted(daemon.config.accounts))})")
    if settings is None:
        raise connect.ConnectError(f"account {account!r} has no notifications section")
    if not daemon.runners:
        await daemon.prepare()
    aliases = [a for a, i in daemon.integrations.items() if i.account == account]
    if not aliases:
        raise connect.ConnectError(f"account {account!r} has no integration")
    state, reason = await check(daemon, aliases[0], prepare=False)
    if state != IntegrationState.LIVE.value:
        return [f"{aliases[0]} is {state}: {reason}"]
    integration = daemon.integrations[aliases[0]]
    hooks = daemon.plugins.channel(integration.channel)
    hook = f"{action}_notifications"
    if not hooks.supports(hook):
        return [f"channel {integration.channel!r} has no notifications to {action}"]
    if action == "subscribe":
        return list(await hooks.call(hook, integration=integration,
                                     queue_url=settings.queue_url))
    return list(await hooks.call(hook, integration=integration))


async def retry_quarantined(daemon: Daemon, quarantined_id: int) -> str:
    """``marketsync quarantine retry``: fetch a quarantined record again and import it if it
    maps now; one line saying what happened."""
    from marketsync.core.store import quarantine
    from marketsync.core.store.models import IntegrationRow

    def find(session):
        record = quarantine.get(session, quarantined_id)
        row = session.get(IntegrationRow, record.integration_id) if record else None
        return record, row.alias if row else None

    record, alias = await daemon.store.read(find)
    if record is None:
        return f"no quarantined record #{quarantined_id} (see `marketsync quarantine list`)"
    runner = daemon.runners.get(alias)
    if runner is None or runner.state is not IntegrationState.LIVE:
        state, reason = await check(daemon, alias)
        if state != IntegrationState.LIVE.value:
            return f"{alias} is {state}: {reason}"
    integration = daemon.integrations[alias]
    hooks = daemon.plugins.channel(integration.channel)
    try:
        outcome = await jobs.retry_quarantined(daemon, integration, hooks, record)
    except ValueError as error:
        return f"#{quarantined_id}: {error}"
    if outcome == "imported":
        return f"#{quarantined_id} {record.record_id}: imported; removed from the quarantine"
    if outcome == "rejected":
        return (f"#{quarantined_id} {record.record_id}: still cannot be mapped (see "
                f"`marketsync quarantine show {quarantined_id}`)")
    return (f"#{quarantined_id} {record.record_id}: the channel did not return it; "
            f"`marketsync quarantine drop {quarantined_id}` removes it")
