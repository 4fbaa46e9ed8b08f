"""The ``marketsync`` command line: run the daemon, check its configuration, inspect it.

This module only parses arguments and calls the core; behaviour lives in ``core``.
Plugins add their own commands through the ``register_commands`` hook.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import partial

import click
import trio

from marketsync import __version__
from marketsync.core.runtime import logs
from marketsync.core.config.schema import Config, load_config, mask_url
from marketsync.core.errors import ConfigError
from marketsync.core.runtime.plugins import Plugins, build as build_plugins

log = logging.getLogger("marketsync")

CONFIG_ENV = "MARKETSYNC_CONFIG"
DEFAULT_CONFIG = "/etc/marketsync/marketsync.yaml"
EXIT_CONFIG = 2  #: invalid configuration (click's usage-error code)
EXIT_DATABASE = 3  #: database unreachable
EXIT_IN_USE = 2  #: another daemon holds the SQLite database (run --standby waits instead)


class State:
    """What the group passes to its commands: options, and plugins/config loaded lazily."""

    def __init__(self, config_path: str | None, log_format: str, log_level: str | None):
        self.config_path = config_path
        self.log_format = log_format
        self.log_level = log_level
        self._config: Config | None = None
        self._failures_reported = False

    @property
    def plugins(self) -> Plugins:
        return loaded_plugins()

    def config(self, path: str | None = None) -> Config:
        """Load and validate the configuration, or exit 2 listing every error."""
        if self._config is not None and path is None:
            return self._config
        path = path or self.config_path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
        try:
            config = load_config(path, self.plugins.infos(), unavailable=self.plugins.unavailable())
        except ConfigError as error:
            for line in error.errors:
                click.echo(line, err=True)
            click.echo(f"{len(error.errors)} error(s) in {path}", err=True)
            sys.exit(EXIT_CONFIG)
        if self.plugins.failures and not self._failures_reported:
            self._failures_reported = True  # once per process, however often config() runs
            for failure in self.plugins.failures:
                click.echo(f"warning: plugin {failure.name}: {failure.reason}", err=True)
        if config.pii.key:
            from marketsync.core.domain.pii import PiiCipher, PiiKeyError

            try:
                PiiCipher.from_text(config.pii.key.reveal())
            except PiiKeyError as error:
                click.echo(f"{config.source}: pii.key: {error}", err=True)
                sys.exit(EXIT_CONFIG)
        # --log-format wins; else the file's log.format (systemd's unit may set either)
        logs.setup(self.log_format or config.log.format, self.log_level or config.log.level)
        self._config = config
        return config

    def store(self, config: Config):
        """The configured store, checked; exits 3 naming the (masked) URL if unreachable."""
        from marketsync.core.store import Store
        from marketsync.core.store.engine import StoreError

        store = Store(config.database)
        try:
            store.check()
        except StoreError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_DATABASE)
        return store


pass_state = click.make_pass_decorator(State)

_plugins: Plugins | None = None


def loaded_plugins() -> Plugins:
    """Plugins are loaded once per process: for plugin commands and for the config."""
    global _plugins
    if _plugins is None:
        _plugins = build_plugins()
    return _plugins


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketsync")
@click.option("-c", "--config", "config_path", envvar=CONFIG_ENV, type=click.Path(),
              help=f"YAML configuration (default: ${CONFIG_ENV} or {DEFAULT_CONFIG}).")
@click.option("--log-format", type=click.Choice(["human", "json"]), default=None,
              help="json: one object per line, for log shippers [default: log.format "
                   "from the configuration, else human].")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
              default=None, help="Overrides log.level from the configuration.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_format: str | None,
        log_level: str | None):
    """marketsync keeps your order book and stock in step with your sales channels."""
    ctx.obj = State(config_path, log_format, log_level)
    logs.setup(log_format or "human", log_level or "INFO")


@cli.command("check-config")
@click.argument("file", required=False, type=click.Path())
@click.option("-c", "--config", "config_option", type=click.Path(),
              help="The file to check, as the global -c (either works).")
@click.option("--explain", is_flag=True, help="List every setting with its type and default.")
@pass_state
def check_config(state: State, file: str | None, config_option: str | None, explain: bool):
    """Validate a configuration file and list every problem (exit 2 when invalid).

    FILE, -c FILE after the command, the global -c FILE, $MARKETSYNC_CONFIG or
    /etc/marketsync/marketsync.yaml, in that order.
    """
    if file and config_option and file != config_option:
        raise click.UsageError(f"two files to check: {file} and {config_option}")
    file = file or config_option
    if explain:
        from marketsync.core.config.schema import explain as explain_settings

        click.echo(explain_settings(state.plugins.infos()))
        return
    config = state.config(file)
    problems = _document_problems(config)
    if problems:
        for line in problems:
            click.echo(line, err=True)
        click.echo(f"{len(problems)} error(s) in document templates", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(f"{config.source}: OK — {len(config.integrations)} integration(s): "
               + ", ".join(f"{i.alias} ({i.channel} {i.marketplace})" for i in config.integrations))
    click.echo(f"database: {mask_url(config.database)}")


def _document_problems(config: Config) -> list[str]:
    """Templates named in the configuration must parse (WeasyPrint is only loaded to print)."""
    from marketsync.core.documents.pdf import check_seller
    from marketsync.core.documents.content import Seller

    problems = []
    for integration in config.integrations:
        if integration.documents is not None:
            problems += [f"integrations[{integration.alias}].documents: {p}"
                         for p in check_seller(Seller.from_config(integration))]
    return problems


@cli.command()
@click.option("--standby", is_flag=True,
              help="SQLite: if another daemon holds the database, wait and take over when it "
                   "stops (instead of exiting 2).")
@pass_state
def run(state: State, standby: bool):
    """Run the daemon until SIGTERM or SIGINT (Ctrl-C)."""
    from marketsync.core.cli.service import run_service
    from marketsync.core.store.daemon_lock import DaemonLock

    config = state.config()
    store = state.store(config)
    os.umask(0o077)  # what the daemon creates (database, WAL, documents) is the seller's alone
    lock = DaemonLock.for_url(store.url)
    if lock is not None and not lock.try_acquire() and not standby:
        click.echo(f"error: {lock.refusal(store.masked_url)}", err=True)
        sys.exit(EXIT_IN_USE)
    _prove_pii_key(config, store)
    from marketsync.core.errors import address_in_use

    try:
        trio.run(partial(run_service, lock=lock),
                 state.config_path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG,
                 config, store, state.plugins)
    except BaseException as error:  # noqa: BLE001 - one case is the operator's to fix
        if address_in_use(error) is None:
            raise
        click.echo(f"error: cannot listen on {config.http.listen} (http.listen): the address "
                   "is already in use — is another marketsync running?", err=True)
        sys.exit(EXIT_CONFIG)


def _prove_pii_key(config: Config, store) -> None:
    """Migrate, then prove pii.key against the database's check values: a wrong or
    missing key is one line and exit 2, before the daemon touches a row."""
    from marketsync.core.domain import pii_key_check
    from marketsync.core.domain.pii import PiiCipher, PiiKeyError
    from marketsync.core.store.engine import StoreError

    cipher = PiiCipher.from_text(config.pii.key.reveal()) if config.pii.key else None
    try:
        store.upgrade()
        store.run_blocking(pii_key_check.verify, cipher)
    except PiiKeyError as error:
        click.echo(f"{config.source}: pii.key: {error}", err=True)
        sys.exit(EXIT_CONFIG)
    except StoreError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_DATABASE)


@cli.group()
def db():
    """Database schema: upgrade, current revision."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: State):
    """Apply every pending migration (the daemon also does this at start)."""
    config = state.config()
    store = state.store(config)
    before = store.revision()
    store.upgrade()
    click.echo(f"{mask_url(config.database)}: {before or 'empty'} -> {store.revision()}")


@db.command("current")
@pass_state
def db_current(state: State):
    """Print the schema revision of the configured database."""
    config = state.config()
    store = state.store(config)
    click.echo(store.revision() or "empty (run `marketsync db upgrade`)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def status(state: State, as_json: bool):
    """Integrations with their state, and each job's last and next run and last error."""
    from marketsync.core.runtime.status import collect, render

    config = state.config()
    store = state.store(config)
    report = store.run_blocking(collect)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(render(report))


def _one_shot(state: "State", work):
    """Run ``work(daemon)`` in trio with the configured daemon (not serving)."""
    from marketsync.core.runtime.daemon import Daemon

    config = state.config()
    store = state.store(config)

    async def main():
        daemon = Daemon(config, plugins=state.plugins, store=store)
        try:
            return await work(daemon)
        finally:
            for integration in daemon.integrations.values():
                if integration.http is not None:
                    await integration.http.aclose()

    try:
        return trio.run(main)
    except Exception as error:  # noqa: BLE001 - shown to the user as one line
        from marketsync.core.domain.pii import PiiKeyError
        from marketsync.core.errors import MarketsyncError

        if isinstance(error, PiiKeyError):
            click.echo(f"{config.source}: pii.key: {error}", err=True)
            sys.exit(EXIT_CONFIG)
        if isinstance(error, MarketsyncError):
            raise click.ClickException(str(error)) from None
        raise


@cli.command()
@click.argument("alias")
@click.option("--redirect", "pasted", metavar="URL_OR_CODE",
              help="The address the browser was sent back to (or just the code).")
@pass_state
def connect(state: State, alias: str, pasted: str | None):
    """Connect integration ALIAS to the seller's account (OAuth consent).

    Without --redirect: prints the consent URL. Open it, approve, and the channel sends
    the browser back to the daemon's callback, which completes the connect. If the daemon
    is not running, copy the address the browser shows and run this command again with
    --redirect 'ADDRESS'.
    """
    from marketsync.core.cli import oneshot

    if pasted is None:
        url = _one_shot(state, lambda daemon: oneshot.consent_url(daemon, alias))
        click.echo("Open this address, sign in and approve the application:\n")
        click.echo(f"  {url}\n")
        click.echo("The channel then sends your browser to this daemon's callback, which "
                   "finishes the connect.\nIf the daemon is not running, copy the address "
                   f"the browser shows and run:\n\n  marketsync connect {alias} --redirect "
                   "'ADDRESS'")
        return
    params = oneshot.redirect_params(pasted)
    new_state, reason = _one_shot(state, lambda daemon: oneshot.complete(daemon, alias, params))
    click.echo(f"{alias}: {new_state}" + (f" — {reason}" if reason else ""))
    if new_state != "LIVE":
        sys.exit(1)


@cli.command()
@click.argument("alias")
@pass_state
def retry(state: State, alias: str):
    """Check ALIAS's credentials again now (the status page's Retry button)."""
    from marketsync.core.cli import oneshot

    async def work(daemon):
        if await oneshot.ask_running_daemon(daemon, alias):
            return None
        return await oneshot.check(daemon, alias)

    outcome = _one_shot(state, work)
    if outcome is None:
        click.echo(f"{alias}: asked the running daemon to retry; see `marketsync status`")
        return
    new_state, reason = outcome
    click.echo(f"{alias}: {new_state}" + (f" — {reason}" if reason else ""))
    if new_state != "LIVE":
        sys.exit(1)


@cli.command()
@click.argument("alias")
@click.argument("kind")
@click.option("--since", default=None, metavar="WHEN",
              help="import_orders: read the order history again from WHEN (30d, 12h or an "
                   "ISO date), then go on as before.")
@pass_state
def sync(state: State, alias: str, kind: str, since: str | None):
    """Run one job (import_orders, push_stock, ...) of ALIAS now.

    An import goes on until the channel has nothing more to give — a whole backfill or a
    first product import — with a progress line in a terminal; Ctrl-C stops it and loses
    nothing (each page is committed with its cursor). With --since, orders already stored
    are merged, never doubled (see docs/operations.md).
    """
    from marketsync.core.cli import oneshot

    answer = _one_shot(state, lambda daemon: oneshot.sync(daemon, alias, kind, since=since))
    if isinstance(answer, oneshot.Refusal):
        click.echo(answer, err=True)
        sys.exit(answer.exit_code)
    click.echo(answer)
    from marketsync.core.runtime import jobs

    if kind in jobs.IMPORTS:  # imported orders reserve units, products bring listings
        from types import SimpleNamespace

        from marketsync.core.cli.daemon_link import PUSHES, tell_daemon
        tell_daemon(SimpleNamespace(config=state.config()), *PUSHES)


@cli.group()
def notifications():
    """Channel notifications over SQS (new orders in seconds): status, subscribe, unsubscribe."""


@notifications.command("status")
@pass_state
def notifications_status(state: State):
    """Per account: the queue, notifications received, the last one, and the orders polling
    found that no notification announced (missed)."""
    from marketsync.core.store import notifications_seen

    config = state.config()
    store = state.store(config)
    shown = False
    for name, account in sorted(config.accounts.items()):
        settings = getattr(account, "notifications", None)
        if settings is None:
            continue
        shown = True
        summary = store.run_blocking(notifications_seen.summary, name)
        last = f"{summary['last']:%Y-%m-%d %H:%M:%S}" if summary["last"] else "never"
        click.echo(f"{name}: {settings.queue_url}")
        click.echo(f"  received {summary['received']}, last {last}, missed by notifications "
                   f"(found by polling) {summary['missed']}")
    if not shown:
        click.echo("no account has a notifications section (see docs/operations.md)")


@notifications.command("subscribe")
@click.argument("account")
@pass_state
def notifications_subscribe(state: State, account: str):
    """Have the channel publish ACCOUNT's changes to its configured queue (idempotent)."""
    from marketsync.core.cli import oneshot

    for line in _one_shot(state, lambda d: oneshot.notifications(d, account, "subscribe")):
        click.echo(f"{account}: {line}")


@notifications.command("unsubscribe")
@click.argument("account")
@pass_state
def notifications_unsubscribe(state: State, account: str):
    """Stop the channel's notifications for ACCOUNT (polling carries on)."""
    from marketsync.core.cli import oneshot

    for line in _one_shot(state, lambda d: oneshot.notifications(d, account, "unsubscribe")):
        click.echo(f"{account}: {line}")


@cli.command("plugins")
@pass_state
def list_plugins(state: State):
    """Loaded plugins, the channel each serves and the hooks it implements."""
    for name, hooks in sorted(state.plugins.channels.items()):
        click.echo(f"{name}: {hooks.info.title}")
        click.echo(f"  hooks: {', '.join(sorted(hooks.implemented))}")
    for failure in state.plugins.failures:
        click.echo(f"{failure.name}: NOT LOADED — {failure.reason}")


def _add_core_groups() -> None:
    from marketsync.core.cli import GROUPS
    from marketsync.core.cli.documents import documents
    from marketsync.core.cli.demo import demo

    for group in (*GROUPS, documents, demo):
        cli.add_command(group)


def _add_plugin_commands() -> None:
    """Plugins add commands (``register_commands``); a broken one costs only itself."""
    try:
        plugins = loaded_plugins()
    except Exception as error:  # pragma: no cover - reported again when a command runs
        click.echo(f"warning: plugins not loaded: {error}", err=True)
        return
    plugins.broadcast("register_commands", cli=cli)


_add_core_groups()
_add_plugin_commands()


if __name__ == "__main__":  # pragma: no cover
    cli()
