"""What every benchmark shares: a scenario, a configuration, a daemon on the simulator, a clock.

The benchmarks run the whole daemon (``core.runtime.daemon.Daemon`` with the Amazon plugin, the
scheduler, the governor and a real database) against the in-process SP-API simulator,
exactly as ``tests/e2e`` does, under trio's ``MockClock``: simulated time is exact and a
simulated day passes in minutes. The clock jumps only after the run loop has been idle for
``threshold`` real seconds, so it does not race ahead while a database call works in a
thread; every figure in SIMULATED seconds therefore includes the daemon's own waiting
(schedules, debounce, governor) but not its CPU time. Real time (``time.perf_counter``) is
used only to report how long the run took on this machine, never to drive anything.
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import trio
import trio.testing

from marketsync.core import clock
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.config.schema import parse_config
from marketsync.core.store import Store
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
SANDBOX = "http://sandbox.local"
CLIENT_ID = "amzn1.application-oa2-client.bench"
CLIENT_SECRET = "amzn1.oa2-cs.v1.bench-secret"
APP_ID = "amzn1.sellerapps.app.bench"
SELLERS = {"NA": "A1BENCHNA00001", "EU": "A2BENCHEU00001", "FE": "A3BENCHFE00001"}
REFRESH = {region: f"Atzr|bench-{region.lower()}" for region in SELLERS}
ENV = {"BENCH_SECRET": CLIENT_SECRET, **{f"BENCH_REFRESH_{r}": t for r, t in REFRESH.items()}}
#: Real seconds of idleness before MockClock jumps (see the module docstring).
DEFAULT_THRESHOLD = 0.002
#: GIL switch interval for benchmark runs (see ``run``); Python's default is 0.005 s.
SWITCH_INTERVAL = 0.0005


# --- scenario and configuration ------------------------------------------------------------


def catalog(count: int, marketplaces: Iterable[str], *, prefix: str = "SKU", quantity: int = 100,
            fba: bool = False) -> list[dict[str, Any]]:
    """``count`` offers priced in every marketplace given: MFN, or FBA with ``fba``."""
    codes = list(marketplaces)
    items = []
    for n in range(count):
        item: dict[str, Any] = {
            "sku": f"{prefix}-{n:05d}", "asin": f"B0{prefix[:2].upper()}{n:06d}",
            "title": f"Bench item {prefix} {n}",
            "prices": {code: f"{10 + n % 90}.99" for code in codes}}
        if fba:
            item["fba_quantity"] = quantity
        else:
            item.update(mfn_quantity=quantity, handling_time=1 + n % 3)
        items.append(item)
    return items


def scenario(regions: Mapping[str, Sequence[str]], items: list[dict[str, Any]], *,
             orders_per_day: Mapping[str, float] | None = None, history_days: float = 0,
             seed: int = 4242, fba_share: float = 0.2, **generator: Any):
    """A parsed scenario: one regional account per key of ``regions`` (all with PII)."""
    data = {
        "seed": seed,
        "history_days": history_days,
        "data_lag_seconds": [60, 120],
        "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                          "application_id": APP_ID,
                          "redirect_uris": ["http://127.0.0.1:8470/channels/amazon/callback"]}],
        "accounts": [{"seller_id": SELLERS[region], "region": region,
                      "marketplaces": list(codes), "pii_access": True,
                      "refresh_tokens": [REFRESH[region]], "name": f"Bench {region}"}
                     for region, codes in regions.items()],
        "catalog": items,
        "generator": {"orders_per_day": dict(orders_per_day or {}), "fba_share": fba_share,
                      "cancel_by_buyer": 0.03, "cancel_by_amazon": 0.01, **generator},
    }
    return parse_scenario(data, source="bench")


def config_text(regions: Mapping[str, Sequence[str]], *, settings: str = "") -> str:
    """YAML with one account per region and one integration per marketplace.

    ``settings`` is YAML indented for an integration entry (e.g. ``"    history_days: 30"``),
    added to every integration.
    """
    lines = ["accounts:"]
    for region in regions:
        lines += [f"  {region.lower()}:", "    channel: amazon", f"    endpoint: {SANDBOX}",
                  "    credentials:", f"      client_id: {CLIENT_ID}",
                  "      client_secret: ${BENCH_SECRET}",
                  f"      refresh_token: ${{BENCH_REFRESH_{region}}}", f"      app_id: {APP_ID}",
                  f"      seller_id: {SELLERS[region]}"]
    lines.append("integrations:")
    for region, codes in regions.items():
        for code in codes:
            lines += [f"  - alias: amazon-{code.lower()}", f"    account: {region.lower()}",
                      f"    marketplace: {code}", "    review_first_push: false"]
            if settings:
                lines.append(settings.rstrip("\n"))
    return "\n".join(lines) + "\n"


def make_daemon(world: World, yaml_text: str, store_url: str, workdir: Path,
                meter: "SimulatorCpu | None" = None) -> Daemon:
    """The production daemon; only the network goes to the in-process simulator (whose
    CPU ``meter`` counts, when given)."""
    plugins = plugin_loading.build(load_entry_points=False)
    config = parse_config(yaml_text, plugins.infos(), filename=str(workdir / "marketsync.yaml"),
                          environ=ENV)
    app = create_app(world)
    if meter is not None:
        app = meter.wrap(app)
    return Daemon(config, plugins=plugins, store=Store(store_url),
                  transport_factory=lambda account: httpx.ASGITransport(app=app))


class SimulatorCpu:
    """CPU seconds spent inside the in-process simulator, to tell the daemon's own cost
    from the simulator's: both run in this process, on the trio thread.

    Each request's ASGI coroutine is stepped by ``_Stepped``, which reads the thread's CPU
    clock around every step, so the time other tasks run while a request waits is not
    counted. (httpx's ASGI glue, ``receive`` and ``send``, runs inside those steps and is
    counted as the simulator's: a few microseconds a request.)"""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.requests = 0

    def wrap(self, app: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def metered(scope: Any, receive: Any, send: Any) -> Any:
            self.requests += 1
            return await _Stepped(app(scope, receive, send), self)
        return metered


class UnitCpu:
    """Thread CPU seconds of the store's units of work, by function name (``_commit_page``,
    the lease keeper's ``heartbeat`` ...): a unit of work runs wholly in one worker thread,
    so its thread CPU clock is its own cost, whatever the machine's load."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    @contextmanager
    def installed(self) -> Iterator["UnitCpu"]:
        transaction, readonly = Store._transaction, Store._readonly

        def timed(fn: Callable[..., Any], run: Callable[[], Any]) -> Any:
            started = time.thread_time()
            try:
                return run()
            finally:
                name = getattr(fn, "__name__", repr(fn))
                self.seconds[name] += time.thread_time() - started
                self.calls[name] += 1

        def measured_transaction(maker, now, fn, args, kwargs, fence=None):
            return timed(fn, lambda: transaction(maker, now, fn, args, kwargs, fence))

        def measured_readonly(store, now, fn, args, kwargs):
            return timed(fn, lambda: readonly(store, now, fn, args, kwargs))

        Store._transaction = staticmethod(measured_transaction)  # type: ignore[method-assign]
        Store._readonly = measured_readonly  # type: ignore[method-assign]
        try:
            yield self
        finally:
            Store._transaction = staticmethod(transaction)  # type: ignore[method-assign]
            Store._readonly = readonly  # type: ignore[method-assign]


class _Stepped:
    """Awaits a coroutine step by step, adding each step's thread CPU time to a meter."""

    def __init__(self, coroutine: Any, meter: SimulatorCpu) -> None:
        self.coroutine, self.meter = coroutine, meter

    def __await__(self) -> Any:
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                step = (self.coroutine.throw(error) if error is not None
                        else self.coroutine.send(value))
            except StopIteration as done:
                return done.value
            finally:
                self.meter.seconds += time.thread_time() - started
            value, error = None, None
            try:
                value = yield step
            except BaseException as raised:  # cancellation and the like go on inside
                error = raised


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def database(url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh database: SQLite in ``workdir``, or a new schema in the PostgreSQL ``url``
    (dropped afterwards), so a benchmark never meets an earlier run's rows."""
    if not url:
        yield f"sqlite:///{workdir / 'bench.sqlite'}"
        return
    import sqlalchemy

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- running -----------------------------------------------------------------------------------


class ThreadGuard:
    """Stops MockClock from jumping while any ``trio.to_thread.run_sync`` call is running.

    Autojump fires whenever the run loop has been idle for the threshold, and a loop
    waiting for a database thread *is* idle: with a 3 ms threshold, a 300 ms transaction
    let the clock race through a hundred 1-second sleeps, so jobs timed out and latencies
    grew by whole minutes that no real machine would see. While a thread runs, the
    threshold is infinite; in between, a tiny threshold keeps days short. Simulated times
    therefore exclude local CPU and database time, which the wall-time figures report.
    """

    def __init__(self, mock: trio.testing.MockClock, threshold: float) -> None:
        self.mock, self.threshold, self.active = mock, threshold, 0
        self.original = trio.to_thread.run_sync
        self.calls = 0  #: thread calls made (nearly all are database units of work)
        self.busy = 0.0  #: real seconds during which at least one thread call was running
        self._busy_since = 0.0

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.active:
            self._busy_since = time.perf_counter()
        self.active += 1
        self.calls += 1
        self.mock.autojump_threshold = math.inf
        try:
            return await self.original(fn, *args, **kwargs)
        finally:
            self.active -= 1
            if not self.active:
                self.busy += time.perf_counter() - self._busy_since
                self.mock.autojump_threshold = self.threshold

    @contextmanager
    def installed(self) -> Iterator[None]:
        trio.to_thread.run_sync = self.run_sync  # type: ignore[assignment]
        try:
            yield
        finally:
            trio.to_thread.run_sync = self.original  # type: ignore[assignment]


#: the guard of the last ``run``, for its figures
GUARD: ThreadGuard | None = None


def run(main: Callable[[], Awaitable[Any]], threshold: float = DEFAULT_THRESHOLD) -> Any:
    """``main`` in one trio run under MockClock, the simulated wall time pinned to START;
    the clock never jumps while a database call runs (ThreadGuard; ``core.clock`` now
    does the same for the store's own calls, this also covers any other thread)."""
    global GUARD

    async def pinned() -> Any:
        clock.set_start(START)
        return await main()

    # The database threads hand the GIL back and forth with the run loop for every row;
    # with the default 5 ms switch interval that handoff, not SQL, dominated the wall time
    # (measured: the quick push benchmark went from ~45 s to ~22 s). Simulated figures do
    # not depend on it; wall-time figures say which interval they were measured with.
    sys.setswitchinterval(SWITCH_INTERVAL)
    mock = trio.testing.MockClock(autojump_threshold=threshold)
    GUARD = ThreadGuard(mock, threshold)
    with GUARD.installed():
        return trio.run(pinned, clock=mock)


def footer(timer: "WallTimer", log_counter: "LogCounter") -> None:
    """Local cost of the run and the daemon's complaints."""
    guard = GUARD
    threads = (f"; {guard.calls} thread calls (database units of work) holding "
               f"{guard.busy:.0f} real s" if guard else "")
    print(f"wall time {timer.seconds:.0f} s, CPU time {cpu_seconds():.0f} s (the machine is "
          f"shared: CPU is the steadier figure); peak RSS {peak_rss_mib():.0f} MiB{threads}")
    if log_counter.counts:
        print("daemon warnings/errors (count × first message):")
        print("\n".join(log_counter.report()))


@asynccontextmanager
async def serving(daemon: Daemon) -> AsyncIterator[Daemon]:
    """The daemon running (every integration checked) until the block ends."""
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        try:
            yield daemon
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(30):
                    await daemon.stop(grace=1)
            nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], *, every: float,
                     limit: float, what: str) -> float:
    """Poll ``predicate`` every ``every`` simulated seconds; the simulated seconds it took.
    Raises ``TimeoutError`` naming ``what`` after ``limit``."""
    started = trio.current_time()
    with trio.move_on_after(limit):
        while True:
            result = predicate()
            if not isinstance(result, bool):
                result = await result
            if result:
                return trio.current_time() - started
            await trio.sleep(every)
    raise TimeoutError(f"{what}: not reached within {limit:g} simulated seconds")


# --- figures -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def calls_by_operation(world: World, since: datetime | None = None) -> Counter:
    """(operation, status) -> count from the simulator's own call log."""
    return Counter((c.operation, c.status) for c in world.calls if since is None or c.at >= since)


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class WallTimer:
    """Real seconds spent, for "local cost" figures only."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class LogCounter(logging.Handler):
    """Counts warnings and errors by logger and message pattern, so a benchmark can report
    that the daemon complained without flooding its output."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter = Counter()
        self.examples: dict[tuple[str, str], str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.levelname, f"{record.name}: {record.msg}")
        self.counts[key] += 1
        if key not in self.examples:
            try:
                self.examples[key] = record.getMessage()[:300]
            except Exception:  # pragma: no cover - a broken log call must not end a run
                self.examples[key] = str(record.msg)[:300]

    def report(self, limit: int = 12) -> list[str]:
        lines = []
        for (level, _), count in self.counts.most_common(limit):
            example = self.examples[(level, _)]
            lines.append(f"  {count:6d} × {level}: {example}")
        return lines


def quiet_logging() -> LogCounter:
    """Keep the daemon's INFO lines out of the figures; count its warnings instead."""
    counter = LogCounter()
    root = logging.getLogger()
    root.handlers[:] = [counter]
    root.setLevel(logging.WARNING)
    return counter


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
              ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller run (< 1 minute)")
    parser.add_argument("--database", metavar="URL", default=None,
                        help="PostgreSQL URL (a fresh schema is made and dropped); "
                             "default: a temporary SQLite file")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="MockClock autojump threshold in real seconds")
    if extra:
        extra(parser)
    return parser.parse_args()


def header(title: str, args: argparse.Namespace) -> None:
    print(f"# {title}")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"database: {'PostgreSQL (fresh schema)' if args.database else 'SQLite (temporary file)'}"
          f"; MockClock autojump threshold {args.threshold:g} s, held while threads run; "
          f"GIL switch interval {SWITCH_INTERVAL:g} s")


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="marketsync-bench-") as name:
        yield Path(name)
