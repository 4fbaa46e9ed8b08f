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

from marketsync.core import systemd
from marketsync.core.app import Daemon
from marketsync.core.config import Config, load_config
from marketsync.core.errors import ConfigError
from marketsync.core.plugins import Plugins
from marketsync.core.scheduler import watch_signals
from marketsync.core.store import Store
from marketsync.core.web import serve_web

log = logging.getLogger(__name__)

STOP_GRACE = 5.0


async def run_service(config_path: str, config: Config, store: Store, plugins: Plugins, *,
                      daemon: Daemon | None = None) -> None:
    """Run until SIGTERM/SIGINT; ``daemon`` lets the demo pass one with its own transport."""
    daemon = daemon or Daemon(config, plugins=plugins, store=store)
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def stop() -> None:
            systemd.notify("STOPPING=1")
            await daemon.stop(STOP_GRACE)
            nursery.cancel_scope.cancel()

        async def reload() -> None:
            try:
                new = await trio.to_thread.run_sync(
                    lambda: load_config(config_path, plugins.infos(), unavailable=plugins.unavailable()))
            except ConfigError as error:
                log.error("reload refused, keeping the running configuration:\n%s",
                          "\n".join(error.errors))
                return
            log.warning("configuration %s is valid; integrations changed take effect at the "
                        "next restart (%d integration(s) in the new file)",
                        new.source, len(new.integrations))

        await nursery.start(partial(watch_signals, stop, reload=reload))
        await nursery.start(daemon.serve)
        url = await nursery.start(serve_web, daemon)
        states = ", ".join(f"{alias} {runner.state.value}" for alias, runner in daemon.runners.items())
        systemd.notify("READY=1", f"STATUS=running {len(daemon.runners)} integration(s): "
                       f"{states or 'none'}; status page {url}")
        nursery.start_soon(systemd.watchdog, daemon)
        await done.wait()
