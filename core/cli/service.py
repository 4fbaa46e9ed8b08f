"""``marketsync run``: the daemon under signals, with a graceful stop and config reload.

SIGTERM/SIGINT stop within the scheduler's grace (5 s) and well under systemd's
TimeoutStopSec; SIGHUP reloads the configuration: validated first, a bad file is refused
with its errors and the running configuration stays.

READY=1 is sent only when every integration has had its first credentials check *and*
the HTTP surface is bound: a supervisor that sees READY can scrape /healthz at once.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from marketsync.core.runtime import systemd
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.runtime.db_health import describe, is_outage
from marketsync.core.config.schema import Config, load_config
from marketsync.core.errors import ConfigError
from marketsync.core.runtime.plugins import Plugins
from marketsync.core.runtime.scheduler import watch_signals
from marketsync.core.store import Store
from marketsync.core.store.daemon_lock import DaemonLock
from marketsync.core.web.server import serve_web

log = logging.getLogger(__name__)

STOP_GRACE = 5.0
#: seconds between a standby's attempts to take the SQLite database's daemon lock
STANDBY_POLL = 1.0


async def run_service(config_path: str, config: Config, store: Store, plugins: Plugins, *,
                      daemon: Daemon | None = None, lock: DaemonLock | None = None) -> None:
    """Run until SIGTERM/SIGINT; ``daemon`` lets the demo pass one with its own transport.

    ``lock`` is the SQLite database's daemon lock; when another process holds it (``run
    --standby``) this one waits as a standby, trying every ``STANDBY_POLL`` seconds, and
    starts the moment the holder is gone. The lock is released when the service ends.

    A valid SIGHUP reload stops the running daemon gracefully (in-flight jobs get the
    grace period; submissions and cursors are in the database) and starts one on the new
    configuration, in the same process: integrations added, removed or changed take effect
    without a restart by systemd, and a reload never loses work.
    """
    current = {"daemon": daemon or Daemon(config, plugins=plugins, store=store)}
    reloaded = trio.Event()
    pending: dict[str, Config] = {}

    async def stop() -> None:
        systemd.notify("STOPPING=1")
        await current["daemon"].stop(STOP_GRACE)
        outer.cancel_scope.cancel()

    async def reload() -> None:
        if reloaded.is_set():
            log.warning("reload ignored: the previous one is still being applied")
            return
        try:
            new = await trio.to_thread.run_sync(
                lambda: load_config(config_path, plugins.infos(), unavailable=plugins.unavailable()))
        except ConfigError as error:
            log.error("reload refused, keeping the running configuration:\n%s",
                      "\n".join(error.errors))
            return
        # the new generation is prepared (migrated, key checked, integration rows synced)
        # while the running one goes on: a database that cannot do that now refuses the
        # reload instead of stopping the integrations and exiting half-way through it
        running = current["daemon"]
        candidate = await _prepare(new, plugins, store if new.database == running.config.database
                                   else Store(new.database), shared=store)
        if candidate is None:
            return
        log.warning("configuration %s is valid: restarting the integrations on it "
                    "(%d integration(s))", new.source, len(new.integrations))
        pending["daemon"] = candidate
        reloaded.set()

    try:
        async with trio.open_nursery() as outer:
            await outer.start(partial(watch_signals, stop, reload=reload))
            if lock is not None and not lock.held:
                await _standby(lock, store)
            outer.start_soon(_watchdog, current)
            while True:
                running = current["daemon"]
                async with trio.open_nursery() as generation:
                    await generation.start(running.serve)
                    url = await generation.start(serve_web, running)
                    states = ", ".join(f"{alias} {runner.state.value}"
                                       for alias, runner in running.runners.items())
                    systemd.notify("READY=1", f"STATUS=running {len(running.runners)} "
                                   f"integration(s): {states or 'none'}; status page {url}")
                    await reloaded.wait()
                    systemd.notify("RELOADING=1", "STATUS=reloading the configuration")
                    await running.stop(STOP_GRACE)
                    generation.cancel_scope.cancel()
                reloaded = trio.Event()
                current["daemon"] = pending.pop("daemon")
    finally:
        if lock is not None:
            lock.release()


async def _prepare(config: Config, plugins: Plugins, store: Store, *,
                   shared: Store) -> Daemon | None:
    """A daemon on ``config`` ready to serve, or None (logged) when its database cannot be
    prepared now. ``shared`` is the running store, which is not closed on failure."""
    daemon = Daemon(config, plugins=plugins, store=store)
    try:
        # bounded: psycopg's connect timeout ends a silent server's connection attempts
        await daemon.prepare()
    except Exception as error:  # noqa: BLE001 - any failure keeps the running generation
        await daemon.discard()
        if store is not shared:
            store.close()
        if is_outage(error):
            log.error("reload refused, keeping the running configuration: the database %s "
                      "is unavailable (%s); send SIGHUP again once it is back",
                      store.masked_url, describe(error))
        else:
            log.error("reload refused, keeping the running configuration: preparing it "
                      "failed: %s", error)
        return None
    return daemon


async def _standby(lock: DaemonLock, store: Store) -> None:
    """Wait for the daemon holding the SQLite database to stop, then take its place."""
    holder = lock.holder()
    log.warning("standby: the database %s is in use by %s; taking over when it stops",
                store.masked_url, holder)
    systemd.notify(f"STATUS=standby behind {holder}")
    while not await trio.to_thread.run_sync(lock.try_acquire):
        await trio.sleep(STANDBY_POLL)
    log.warning("standby: the previous daemon (%s) is gone; starting", holder)


async def _watchdog(current: dict) -> None:
    """Ping systemd's watchdog for whichever daemon generation is running."""
    interval = systemd.watchdog_interval()
    if interval is None:
        return
    while True:
        if current["daemon"].scheduler_alive():
            systemd.notify("WATCHDOG=1")
        await trio.sleep(interval)
