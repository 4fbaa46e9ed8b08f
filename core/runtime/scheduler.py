"""Periodic jobs per (integration, kind): when they run, never how they work.

One task per job sleeps until the job is due or woken (trio-util's ``periodic`` and
``MailboxRepeatedEvent``): no polling, no task per tick, so a simulated day under
``MockClock`` costs a few thousand wake-ups. The scheduler knows nothing about orders or
stock; it calls ``run_job(spec)`` and keeps the job healthy around it:

- a run never overlaps itself, and is cut off after ``spec.timeout`` (counted as a failure);
- on success the next run is ``every ± jitter`` after the previous one *started*, so the
  run's own duration does not stretch the period; an overrun starts the next run at once;
- on failure the job backs off exponentially (``core.runtime.backoff``) from when the run ended,
  and the streak is logged once when it starts and once when it ends (Home Assistant's
  coordinator), not on every failed poll;
- any ordinary exception is caught inside the job's own task, so one broken job never
  cancels or delays its siblings; what to do about it (an auth failure pausing the
  integration) is the caller's policy, told through ``on_outcome``;
- ``trigger`` asks for a run soon; triggers within the debounce window collapse into one
  run, and a trigger during a run queues exactly one more run after it, because a change
  made while a push is in flight must be pushed again.

Shutdown follows hypercorn: stop starting runs, give runs in flight a grace deadline, then
cancel. ``watch_signals`` turns SIGTERM/SIGINT into that and SIGHUP into a reload.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import trio

from marketsync.core import clock
from marketsync.core.errors import MarketsyncError, Throttled
from marketsync.core.runtime import logs
from marketsync.core.runtime.backoff import Backoff, jittered
from marketsync.core.runtime.db_health import is_outage
from marketsync.core.types import JobDefault, Priority

log = logging.getLogger(__name__)

#: the job whose run is in progress in this task (and the threads it starts); the
#: governed HTTP transport reads its priority so that plugins never pass one around
current_job: contextvars.ContextVar["JobSpec | None"] = contextvars.ContextVar(
    "marketsync_current_job", default=None
)

_ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One periodic job of one integration, as configured."""

    integration: str  #: the integration's alias
    kind: str  #: e.g. "import_orders"
    every: float  #: seconds between the starts of two successful runs
    priority: Priority  #: carried to the governor through ``current_job``
    timeout: float  #: a run still going after this many seconds is a failure
    jitter: float = 0.1  #: fraction of ``every`` (and of each backoff delay) to spread by
    backoff_base: float = 30.0
    backoff_cap: float = 1800.0
    #: seconds from the scheduler start (or from ``add``) to the first run; ``None``
    #: spreads first runs over ``[0, jitter * every)`` so a restart neither waits a whole
    #: period (6 h for tracking) nor fires every integration in the same instant
    first_delay: float | None = None
    #: an account-scoped job: every integration it serves (``integration`` is the first);
    #: it pauses only when all of them are paused and answers triggers from any of them
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"job {self.kind!r} of integration {self.integration!r}"
        if not self.integration or not self.kind:
            raise ValueError(f"{where}: integration and kind must not be empty")
        if self.members and self.members[0] != self.integration:
            raise ValueError(f"{where}: members must start with the integration, "
                             f"got {self.members!r}")
        for name in ("every", "timeout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {name} must be a positive number of seconds, got {value!r}")
        if self.first_delay is not None and not (0 <= self.first_delay < math.inf):
            raise ValueError(f"{where}: first_delay must be >= 0 seconds, got {self.first_delay!r}")
        try:
            self.backoff  # validates jitter, base and cap together
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    @property
    def key(self) -> tuple[str, str]:
        return (self.integration, self.kind)

    @property
    def covers(self) -> tuple[str, ...]:
        """The integrations this job works for."""
        return self.members or (self.integration,)

    @property
    def backoff(self) -> Backoff:
        return Backoff(base=self.backoff_base, cap=self.backoff_cap, jitter=self.jitter)

    @classmethod
    def from_default(cls, integration: str, default: JobDefault, **overrides: Any) -> "JobSpec":
        """The spec for a channel's ``JobDefault``, with the YAML's per-integration overrides."""
        values: dict[str, Any] = dict(
            integration=integration,
            kind=default.kind,
            every=default.every,
            priority=default.priority,
            timeout=default.timeout,
        )
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutcome:
    """What one finished run amounted to, for the integration runner and metrics."""

    spec: JobSpec
    ok: bool
    started: datetime
    finished: datetime
    duration: float
    failures: int  #: consecutive failures including this run; 0 after a success
    next_due: datetime
    timed_out: bool = False
    error: str | None = None
    #: the exception ``run_job`` raised, so the caller can map its type to a state
    exception: Exception | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobState:
    """A job's health for ``marketsync status`` and /metrics; wall times are UTC."""

    integration: str
    kind: str
    every: float
    runs: int  #: runs started
    failures: int  #: consecutive failures
    total_failures: int
    last_started: datetime | None
    last_finished: datetime | None
    last_duration: float | None
    last_error: str | None
    next_due: datetime | None
    running: bool
    paused: bool


@dataclass(slots=True, eq=False)
class _Job:
    spec: JobSpec
    due: float | None = None  #: trio time of the next scheduled run
    trigger_due: float | None = None  #: trio time an on-demand run was asked for
    trigger_forced: bool = False
    wake: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope | None = None
    removed: bool = False
    running: bool = False
    runs: int = 0
    failures: int = 0
    total_failures: int = 0
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_duration: float | None = None
    last_error: str | None = None

    def effective_due(self) -> float:
        assert self.due is not None
        if self.trigger_due is None or (self.failures and not self.trigger_forced):
            # a failing job keeps its backoff: stock changes must not hammer a broken channel
            return self.due
        return min(self.due, self.trigger_due)


class Scheduler:
    """Runs every added ``JobSpec`` on its schedule until cancelled or stopped."""

    def __init__(
        self,
        run_job: Callable[[JobSpec], Awaitable[None]],
        *,
        rng: random.Random | None = None,
        on_outcome: Callable[[JobOutcome], None] | None = None,
        debounce: float = 2.0,
        may_run: Callable[[JobSpec], bool] | None = None,
    ) -> None:
        """``may_run``: whether this process may start a job's run now (replicas: it holds
        the job's lease). A job it refuses sleeps without a deadline until ``trigger``
        wakes it, which is what the lease keeper does when it wins the lease."""
        if not (0 <= debounce < math.inf):
            raise ValueError(f"scheduler debounce must be >= 0 seconds, got {debounce!r}")
        self._run_job = run_job
        self._rng = rng if rng is not None else random.Random()
        self._on_outcome = on_outcome
        self._debounce = debounce
        self._may_run = may_run
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._paused: set[str] = set()
        self._held = False  #: every job waits (the database is unavailable)
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self._stop_requested = trio.Event()
        self._done = trio.Event()

    # --- configuration, callable before and while running -----------------------------

    def add(self, spec: JobSpec) -> None:
        """Schedule a job; its first run is ``spec.first_delay`` from now (or from ``run``)."""
        if spec.key in self._jobs:
            raise ValueError(
                f"job {spec.kind!r} of integration {spec.integration!r} is already scheduled;"
                " remove it first to change it"
            )
        if self._stopping:
            raise RuntimeError(f"cannot add job {spec.kind!r} of {spec.integration!r}: scheduler is stopping")
        for member in spec.covers:
            owner = self._job_for(member, spec.kind)
            if owner is not None:
                raise ValueError(f"integration {member!r} already has a job {spec.kind!r} "
                                 f"({owner.spec.integration!r}); remove it first")
        job = _Job(spec)
        self._jobs[spec.key] = job
        if self._nursery is not None:
            self._nursery.start_soon(self._loop, job, name=f"job {spec.integration}/{spec.kind}")

    def has(self, integration: str, kind: str) -> bool:
        """Whether a job of this kind serves the integration (its own or its account's)."""
        return self._job_for(integration, kind) is not None

    def _job_for(self, integration: str, kind: str) -> "_Job | None":
        job = self._jobs.get((integration, kind))
        if job is not None:
            return job
        for (_, job_kind), job in self._jobs.items():
            if job_kind == kind and integration in job.spec.members:
                return job
        return None

    def remove(self, integration: str, kind: str | None = None) -> int:
        """Forget one job, or every job of an integration; a run in progress is cancelled.

        Returns how many jobs were removed (0 is not an error: removal is idempotent).
        """
        keys = [key for key in self._jobs if key[0] == integration and kind in (None, key[1])]
        for key in keys:
            job = self._jobs.pop(key)
            job.removed = True
            if job.scope is not None:
                job.scope.cancel()
        return len(keys)

    def pause(self, integration: str) -> None:
        """Start no more runs for this integration (it went INCOMPLETE or ERROR).

        A run in progress finishes; the jobs keep their schedule and pending triggers.
        Pausing an integration with no jobs yet also holds jobs added later.
        """
        self._paused.add(integration)
        self._wake(integration)

    def resume(self, integration: str) -> None:
        """Let runs start again; a job whose due time passed while paused runs at once."""
        self._paused.discard(integration)
        self._wake(integration)

    def hold(self) -> None:
        """Start no more runs of any job (the database is down); runs in progress go on."""
        self._held = True

    def release(self) -> None:
        """Undo ``hold``: jobs whose due time passed meanwhile run at once."""
        self._held = False
        for job in self._jobs.values():
            job.wake.set()

    @property
    def held(self) -> bool:
        return self._held

    def trigger(
        self, integration: str, kind: str, *, delay: float | None = None, force: bool = False
    ) -> None:
        """Ask for a run within ``delay`` seconds (default: the debounce window).

        Triggers within the window collapse into one run; one during a run queues exactly
        one more run after it. A run answers the triggers due by its start; one asked for
        a later time (``delay``) still gets its run then. While the job is backing off after failures the trigger
        waits for the backoff, unless ``force`` (a user's explicit "sync now").
        """
        job = self._job_for(integration, kind)
        if job is None:
            raise KeyError(f"no job {kind!r} scheduled for integration {integration!r}")
        delay = self._debounce if delay is None else delay
        if not (0 <= delay < math.inf):
            raise ValueError(f"trigger delay must be >= 0 seconds, got {delay!r}")
        when = trio.current_time() + delay
        if force and not job.trigger_forced:
            # an earlier trigger held back by the backoff must not make this one instant
            job.trigger_due, job.trigger_forced = when, True
        elif job.trigger_due is None or when < job.trigger_due:
            job.trigger_due = when
        job.wake.set()

    def snapshot(self) -> list[JobState]:
        """Every job's health, sorted by integration and kind."""
        mono, wall = clock.monotonic(), clock.now()
        states = []
        for key in sorted(self._jobs):
            job = self._jobs[key]
            due = None if job.due is None else wall + timedelta(seconds=job.effective_due() - mono)
            states.append(
                JobState(
                    integration=job.spec.integration,
                    kind=job.spec.kind,
                    every=job.spec.every,
                    runs=job.runs,
                    failures=job.failures,
                    total_failures=job.total_failures,
                    last_started=job.last_started,
                    last_finished=job.last_finished,
                    last_duration=job.last_duration,
                    last_error=job.last_error,
                    next_due=due,
                    running=job.running,
                    paused=self._is_paused(job.spec),
                )
            )
        return states

    # --- running and stopping ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the job loops until cancelled or until ``stop`` has finished."""
        if self._nursery is not None or self._done.is_set():
            raise RuntimeError("a Scheduler runs once; make a new one to run again")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for job in list(self._jobs.values()):
                    await nursery.start(self._loop, job)
                task_status.started()
                await self._stop_requested.wait()
        finally:
            self._nursery = None
            self._done.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Start no more runs; cancel runs still going after ``grace`` seconds; wait for the end.

        Calling it again with a shorter grace (a second Ctrl-C) brings the deadline forward.
        """
        self._stopping = True
        self._stop_requested.set()
        for job in self._jobs.values():
            job.wake.set()
        if self._nursery is None:
            return
        scope = self._nursery.cancel_scope
        scope.deadline = min(scope.deadline, trio.current_time() + max(grace, 0.0))
        await self._done.wait()

    def _wake(self, integration: str) -> None:
        for job in self._jobs.values():
            if integration in job.spec.covers:
                job.wake.set()

    def _is_paused(self, spec: JobSpec) -> bool:
        return all(member in self._paused for member in spec.covers)

    async def _loop(self, job: _Job, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            job.scope = scope
            if job.removed:
                scope.cancel()
            if job.due is None:
                first = job.spec.first_delay
                if first is None:
                    first = self._rng.uniform(0.0, job.spec.jitter * job.spec.every)
                job.due = trio.current_time() + first
            task_status.started()
            while await self._wait_until_due(job):
                await self._run_once(job)

    async def _wait_until_due(self, job: _Job) -> bool:
        """Sleep until the job is due; False when the scheduler is stopping."""
        while not self._stopping:
            job.wake = trio.Event()
            if self._held or self._is_paused(job.spec) or (
                    self._may_run is not None and not self._may_run(job.spec)):
                deadline = math.inf  # resume()/release()/trigger() wake us; remove() and stop() too
            else:
                deadline = job.effective_due()
                if deadline <= trio.current_time():
                    return True
            with trio.move_on_at(deadline):
                await job.wake.wait()
        return False

    async def _run_once(self, job: _Job) -> None:
        spec = job.spec
        started = trio.current_time()
        if job.trigger_due is not None and job.trigger_due <= started:
            job.trigger_due, job.trigger_forced = None, False  # this run answers it
        # else a trigger asked for later ("poll that feed in 60 s") stays: a run that
        # happens earlier for another reason must not swallow it
        job.running = True
        job.runs += 1
        job.last_started = clock.now()
        error: Exception | None = None
        token = current_job.set(spec)
        logs.current_integration.set(spec.integration)  # this task's own context
        try:
            with trio.move_on_after(spec.timeout) as timeout:
                try:
                    await self._run_job(spec)
                except Exception as caught:  # noqa: BLE001 — one job's bug must not stop others
                    error = caught
        finally:
            current_job.reset(token)
            job.running = False
        finished = trio.current_time()
        job.last_finished = clock.now()
        job.last_duration = finished - started
        timed_out = timeout.cancelled_caught
        if error is None and not timed_out:
            job.due = started + jittered(spec.every, spec.jitter, self._rng)
            if job.failures:
                log.info("%s/%s recovered after %d failed runs", spec.integration, spec.kind, job.failures)
            job.failures = 0
            job.last_error = None
        else:
            job.failures += 1
            job.total_failures += 1
            delay = spec.backoff.delay(job.failures, self._rng)
            if isinstance(error, Throttled) and error.retry_after:
                delay = max(delay, error.retry_after)
            job.due = finished + delay
            text = f"timed out after {spec.timeout:g}s" if timed_out else _describe(error)
            job.last_error = text
            if job.failures == 1:
                # a type we know is an expected condition; anything else is a plugin bug
                # whose traceback is worth one log line per streak
                expected = timed_out or isinstance(error, MarketsyncError) or is_outage(error)
                log.warning(
                    "%s/%s failing: %s (retrying in %.0fs; logged once until it recovers)",
                    spec.integration, spec.kind, text, delay, exc_info=None if expected else error,
                )
            else:
                log.debug("%s/%s failed again (%d in a row): %s",
                          spec.integration, spec.kind, job.failures, text)
        self._report(job, started, finished, timed_out, error)

    def _report(
        self, job: _Job, started: float, finished: float, timed_out: bool, error: Exception | None
    ) -> None:
        if self._on_outcome is None:
            return
        assert job.due is not None and job.last_started is not None and job.last_finished is not None
        outcome = JobOutcome(
            spec=job.spec,
            ok=not (timed_out or error),
            started=job.last_started,
            finished=job.last_finished,
            duration=finished - started,
            failures=job.failures,
            next_due=job.last_finished + timedelta(seconds=job.due - finished),
            timed_out=timed_out,
            error=job.last_error,
            exception=error,
        )
        try:
            self._on_outcome(outcome)
        except Exception:  # noqa: BLE001 — a broken listener must not kill the job
            log.exception("on_outcome listener failed for %s/%s", job.spec.integration, job.spec.kind)


def _describe(error: Exception | None) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[: _ERROR_TEXT_LIMIT - 1] + "…"


Target = Scheduler | trio.CancelScope | Callable[[], Awaitable[None] | None]


async def watch_signals(
    scope_or_callback: Target,
    *,
    reload: Callable[[], Awaitable[None] | None] | None = None,
    grace: float = 5.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Turn SIGTERM/SIGINT into a graceful stop and SIGHUP into ``reload()``.

    ``scope_or_callback`` is what a stop means: a ``Scheduler`` (``stop(grace)``), a
    ``CancelScope`` (cancelled), or a callable (called, awaited if it returns an
    awaitable). A second SIGTERM/SIGINT while stopping stops a Scheduler without grace.
    Returns once the stop has finished. Must run in the main thread (trio's rule); start
    it with ``nursery.start`` so that signals are caught from the moment it reports ready.
    """
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            stopping = False
            async for signum in signals:
                if signum == signal.SIGHUP:
                    nursery.start_soon(_reload, reload)
                    continue
                name = signal.Signals(signum).name
                log.warning("received %s: %s", name, "stopping now" if stopping else "stopping")
                if isinstance(scope_or_callback, Scheduler):
                    if stopping:
                        nursery.start_soon(scope_or_callback.stop, 0.0)
                    else:
                        nursery.start_soon(_stop_then_cancel, scope_or_callback, grace, nursery.cancel_scope)
                    stopping = True
                    continue
                if isinstance(scope_or_callback, trio.CancelScope):
                    scope_or_callback.cancel()
                elif inspect.isawaitable(result := scope_or_callback()):
                    await result
                return


async def _stop_then_cancel(scheduler: Scheduler, grace: float, watcher: trio.CancelScope) -> None:
    await scheduler.stop(grace)
    watcher.cancel()  # the stop is complete: stop listening, let watch_signals return


async def _reload(reload: Callable[[], Awaitable[None] | None] | None) -> None:
    if reload is None:
        log.warning("received SIGHUP but no reload is configured; ignoring it")
        return
    log.info("received SIGHUP: reloading")
    try:
        result = reload()
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 — a bad reload must not take the daemon down
        log.exception("reload after SIGHUP failed; keeping the running configuration")
