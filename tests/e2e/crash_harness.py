"""Processes for the crash test: the simulator on a loopback port, the daemon under SIGKILL.

The crash test (``test_crash.py``) needs what the in-process e2e tests cannot give: a
daemon process that dies between any two instructions, with its SQLite WAL or PostgreSQL
transaction cut off, and a simulator that outlives it (the channel's memory of what it
was told). Both run on the real clock, so they agree on "now" without sharing a process.

Run as a script, this module is the simulator's process: ``python crash_harness.py
SCENARIO [--history-only]``. It serves the scenario with ``sandbox.serve`` and then makes the
world quick enough for a two-minute test (see :func:`quicken`), and prints ``READY <base
url>``. With ``--history-only`` the shop's history is placed and then no new sale is made,
so a test can compare the channel's quantities before and after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

from marketsync.core.store import models
from marketsync.core.store.engine import create_store_engine

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "crash" / "scenario.yaml"
SELLER = "A5CRASHSELLEREU"
CLIENT_ID = "amzn1.application-oa2-client.crash00000000000000000"
CLIENT_SECRET = "amzn1.oa2-cs.v1.crashsecret000000000000000000000000000"
REFRESH_TOKEN = "Atzr|crash-eu-000000000000000000000000000"
#: the daemon seals buyer data with it, as in production (a test key: 32 bytes 0..31)
PII_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
MARKETPLACES = {"amazon-uk": "UK", "amazon-de": "DE"}
MFN_SKUS = ("MUG-1", "KETTLE-1")
READY = "READY "
#: how much faster than Amazon's published plans the simulator refills its buckets
RATE_FACTOR = 200.0

#: The jobs on a short leash, so that a few seconds contain imports, pushes, polls and
#: confirmations. import_products must still finish a report (queue + processing, made
#: short by :func:`quicken`) before listings exist to push.
SCHEDULE = {
    "import_orders": "3s",
    "import_products": "20s",
    "import_stock": "30s",
    "push_stock": "2s",
    "push_prices": "30s",
    "poll_submission": "2s",
    "confirm_shipment": "2s",
    "fetch_tracking": "10m",
}


def marketsync_command() -> list[str]:
    """The ``marketsync`` console script's entry point (``marketsync.daemon:cli``) run by
    this interpreter: the same program, without depending on the script being installed
    at this moment (a concurrent ``pip install -e`` removes it for a while)."""
    return [sys.executable, "-c",
            "import sys; from marketsync.daemon import cli; sys.exit(cli(prog_name='marketsync'))"]


def daemon_command(config: Path) -> list[str]:
    return [*marketsync_command(), "-c", str(config), "run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_text(base_url: str, database: str, http_port: int) -> str:
    """The daemon's YAML: one EU account on the simulator, UK and DE, the short schedule."""
    schedule = "".join(f"      {kind}: {every}\n" for kind, every in SCHEDULE.items())
    integrations = "".join(
        f"  - alias: {alias}\n    account: eu\n    marketplace: {code}\n"
        f"    history_days: 1\n    review_first_push: false\n"
        f"    push_valve_zeroed_percent: 100\n    push_valve_cut_percent: 100\n"
        f"    schedule:\n{schedule}"
        for alias, code in MARKETPLACES.items())
    return (
        f"database: {json.dumps(database)}\n"
        f"http:\n  listen: 127.0.0.1:{http_port}\n"
        "log:\n  level: INFO\n"
        "pii:\n  key: ${CRASH_PII_KEY}\n"
        "accounts:\n  eu:\n    channel: amazon\n"
        f"    endpoint: {base_url}\n"
        "    credentials:\n"
        f"      client_id: {CLIENT_ID}\n"
        "      client_secret: ${CRASH_CLIENT_SECRET}\n"
        "      refresh_token: ${CRASH_REFRESH_TOKEN}\n"
        f"      seller_id: {SELLER}\n"
        f"integrations:\n{integrations}"
    )


def daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(CRASH_CLIENT_SECRET=CLIENT_SECRET, CRASH_REFRESH_TOKEN=REFRESH_TOKEN,
               CRASH_PII_KEY=PII_KEY, PYTHONUNBUFFERED="1")
    return env


# --- the simulator's process ------------------------------------------------------------------


def quicken(world: Any) -> None:
    """Make a simulated Amazon that a two-minute test can converge against.

    The published plans allow one ``searchOrders`` every three minutes once the burst is
    spent, and a daemon restarted twenty times spends it; reports take 90 s to be ready.
    Neither is what this test is about, so buckets refill ``RATE_FACTOR`` times faster
    (bursts unchanged) and reports are ready in two seconds. Everything else — data lag,
    the two-minute ``…Before`` rule, stock taken by orders — stays as it is.
    """
    throttle = world.throttle
    throttle.plans = {name: dataclasses.replace(plan, rate=plan.rate * RATE_FACTOR)
                      for name, plan in throttle.plans.items()}
    throttle.buckets.clear()
    world.catalog.timing.report_queue = timedelta(seconds=1)
    world.catalog.timing.report_processing = timedelta(seconds=1)
    world.catalog.timing.feed_queue = timedelta(seconds=1)
    world.catalog.timing.feed_processing = timedelta(seconds=2)


def stop_sales(world: Any) -> None:
    """Place the history up to now, then make no more orders (their timelines go on)."""
    world.generator.advance(world.now())
    world.generator.spec.orders_per_day = {}
    world.generator._plans = {}  # noqa: SLF001 - today's plan was drawn with the old rate


async def _serve_forever(scenario: str, history_only: bool = False) -> None:
    from marketsync.plugins.amazon.sandbox.serve import serve

    async with trio.open_nursery() as nursery:
        world = await nursery.start(
            lambda task_status: serve(scenario, "127.0.0.1", 0, 1.0, out=lambda text: None,
                                      task_status=task_status))
        quicken(world)
        if history_only:
            stop_sales(world)
        print(f"{READY}{world.base_url}", flush=True)


# --- the test's side ----------------------------------------------------------------------------


class Simulator:
    """The simulator subprocess and a client for its control API."""

    def __init__(self, process: trio.Process, base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)

    @classmethod
    async def start(cls, scenario: Path, log: Path, *, deadline: float = 30.0,
                    history_only: bool = False) -> "Simulator":
        with log.open("wb") as errors:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(Path(__file__).resolve()), str(scenario)]
                + (["--history-only"] if history_only else []),
                stdout=subprocess.PIPE, stderr=errors)
        seen = b""
        try:
            with trio.fail_after(deadline):
                while b"\n" not in seen:
                    chunk = await process.stdout.receive_some(4096)
                    if not chunk:
                        raise RuntimeError(f"the simulator exited at start; see {log}")
                    seen += chunk
        except BaseException:
            process.kill()
            await process.wait()
            raise
        line = seen.split(b"\n", 1)[0].decode()
        if not line.startswith(READY):
            process.kill()
            await process.wait()
            raise RuntimeError(f"the simulator said {line!r} instead of {READY!r}; see {log}")
        return cls(process, line.removeprefix(READY).strip())

    async def get(self, path: str, **params: str) -> Any:
        response = await self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    async def orders(self) -> list[dict[str, Any]]:
        return (await self.get("/_sandbox/orders", sellerId=SELLER))["orders"]

    async def catalog(self) -> dict[str, Any]:
        return await self.get(f"/_sandbox/catalog/{SELLER}")

    async def confirmations(self) -> list[dict[str, Any]]:
        return (await self.get("/_sandbox/confirmations"))["confirmations"]

    async def faults(self, **settings: Any) -> None:
        """Set the simulator's faults (``/_sandbox/faults``); none given: all off."""
        if settings:
            response = await self.http.post("/_sandbox/faults", json=settings)
        else:
            response = await self.http.delete("/_sandbox/faults")
        response.raise_for_status()

    async def calls(self, operation: str) -> list[dict[str, Any]]:
        return (await self.get("/_sandbox/calls", operation=operation, sellerId=SELLER))["calls"]

    async def now(self) -> str:
        return (await self.get("/_sandbox/credentials"))["now"]

    async def close(self) -> None:
        await self.http.aclose()
        if self.process.returncode is None:
            self.process.terminate()
        with trio.move_on_after(5):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()


#: tables whose writes record that a channel call happened (shipment confirmed, push
#: acknowledged, page imported); PostgreSQL locks them, SQLite has one lock for all
RECORD_TABLES = tuple(model.__tablename__ for model in (
    models.ShipmentRow, models.SubmissionRow, models.Listing, models.JobCursor, models.Order,
    models.StockMovement))


@asynccontextmanager
async def writes_held(url: str) -> AsyncIterator[None]:
    """Hold the database's write lock from another connection for the block's duration.

    The daemon's jobs call the channel and only then commit what it answered; with the
    lock held they block on that commit (within the busy/lock timeout), so a SIGKILL in
    the block lands exactly between "the channel did it" and "the store knows it", the
    window that idempotency keys and package references exist for.
    """
    engine = create_store_engine(url)
    raw = await trio.to_thread.run_sync(engine.raw_connection)
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            statement = "BEGIN IMMEDIATE"
        else:
            statement = f"LOCK TABLE {', '.join(RECORD_TABLES)} IN EXCLUSIVE MODE"
        await trio.to_thread.run_sync(cursor.execute, statement)
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(raw.rollback)
            await trio.to_thread.run_sync(raw.close)
            engine.dispose()


class DaemonProcess:
    """``marketsync -c CFG run`` in its own process, started and killed by the test."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.process: trio.Process | None = None
        self.log_path: Path | None = None
        self.runs = 0

    async def start(self) -> None:
        assert self.process is None, "the daemon is already running"
        self.runs += 1
        self.log_path = self.logs / f"daemon-{self.runs:03d}.log"
        with self.log_path.open("wb") as out:
            self.process = await trio.lowlevel.open_process(
                daemon_command(self.config), stdout=out, stderr=subprocess.STDOUT, env=daemon_env())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    async def wait_running(self, deadline: float = 30.0) -> None:
        """Until the daemon logs that every integration had its first check."""
        with trio.fail_after(deadline):
            while "marketsync running" not in self.log_text():
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"the daemon exited at start:\n{self.log_text()[-3000:]}")
                await trio.sleep(0.05)

    async def kill(self) -> int:
        """SIGKILL: no handler, no finally, no flush: the crash this test is about."""
        return await self._stop(signal.SIGKILL, 10.0)

    async def terminate(self, deadline: float = 20.0) -> int:
        return await self._stop(signal.SIGTERM, deadline)

    async def _stop(self, signum: int, deadline: float) -> int:
        process, self.process = self.process, None
        assert process is not None, "the daemon is not running"
        if process.returncode is None:
            process.send_signal(signum)
        with trio.fail_after(deadline):
            return await process.wait()

    async def cli(self, *args: str, deadline: float = 30.0) -> subprocess.CompletedProcess:
        """One ``marketsync`` command against the same configuration (another process)."""
        with trio.fail_after(deadline):
            return await trio.run_process(
                [*marketsync_command(), "-c", str(self.config), *args],
                capture_stdout=True, capture_stderr=True, check=False, env=daemon_env())

    async def aclose(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


if __name__ == "__main__":  # the simulator's process
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--history-only"]):
        sys.exit("usage: crash_harness.py SCENARIO.yaml [--history-only]")
    trio.run(_serve_forever, sys.argv[1], len(sys.argv) == 3)
