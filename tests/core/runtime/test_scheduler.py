"""The scheduler (core/runtime/scheduler.py) and its backoff policy (core/runtime/backoff.py).

Everything but the signal tests runs under trio's MockClock (``autojump_clock``), so due
times are asserted exactly and a simulated day passes in about a second.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest
import trio

from marketsync.core import clock
from marketsync.core.runtime.backoff import Backoff, jittered
from marketsync.core.errors import Throttled, TransientError
from marketsync.core.runtime.scheduler import (
    JobOutcome,
    JobSpec,
    Scheduler,
    current_job,
    watch_signals,
)
from marketsync.core.types import JobDefault, Priority

DAY = 86_400.0
EPS = 1e-6
#: the Amazon plugin's default schedule, in seconds
DEFAULT_SCHEDULE = {
    "import_orders": 600.0,
    "import_products": 2_700.0,
    "import_stock": 600.0,
    "fetch_tracking": 21_600.0,
}

Behaviour = Callable[[JobSpec, int], Awaitable[None]]


class Recorder:
    """A ``run_job`` that records start and end times per job and acts as told."""

    def __init__(self, t0: float = 0.0) -> None:
        self.t0 = t0
        self.starts: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.ends: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.cancelled: dict[tuple[str, str], int] = defaultdict(int)
        self.behaviour: dict[tuple[str, str], Behaviour] = {}
        self.active: dict[tuple[str, str], int] = defaultdict(int)
        self.max_active: dict[tuple[str, str], int] = defaultdict(int)
        self.seen_current: list[JobSpec | None] = []

    async def __call__(self, spec: JobSpec) -> None:
        key = spec.key
        self.starts[key].append(trio.current_time() - self.t0)
        self.seen_current.append(current_job.get())
        self.active[key] += 1
        self.max_active[key] = max(self.max_active[key], self.active[key])
        try:
            behaviour = self.behaviour.get(key)
            if behaviour is not None:
                await behaviour(spec, len(self.starts[key]))
        except trio.Cancelled:
            self.cancelled[key] += 1
            raise
        finally:
            self.active[key] -= 1
        self.ends[key].append(trio.current_time() - self.t0)


def sleeps(seconds: float) -> Behaviour:
    async def behaviour(spec: JobSpec, run: int) -> None:
        await trio.sleep(seconds)

    return behaviour


def fails_on(runs: set[int] | None = None, error: Exception | None = None) -> Behaviour:
    """Raise on the given run numbers (1-based), or on every run when ``runs`` is None."""

    async def behaviour(spec: JobSpec, run: int) -> None:
        if runs is None or run in runs:
            raise error or TransientError(f"channel unavailable (run {run})")

    return behaviour


def spec(integration: str = "amazon-de", kind: str = "import_orders", **values) -> JobSpec:
    values.setdefault("every", 600.0)
    values.setdefault("priority", Priority.ORDERS)
    values.setdefault("timeout", 300.0)
    values.setdefault("jitter", 0.0)
    values.setdefault("first_delay", 0.0)
    return JobSpec(integration=integration, kind=kind, **values)


@asynccontextmanager
async def running(scheduler: Scheduler):
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        yield nursery
        nursery.cancel_scope.cancel()


# --- the schedule ---------------------------------------------------------------------------


async def test_a_simulated_day_of_the_default_schedule_for_twelve_integrations(autojump_clock):
    """24 h of the default schedule: per job, first run, intervals and run count stay in bounds."""
    jitter = 0.1
    rec = Recorder(trio.current_time())
    for n in range(12):
        for kind in DEFAULT_SCHEDULE:
            rec.behaviour[(f"amazon-{n}", kind)] = sleeps(1.0)
    scheduler = Scheduler(rec, rng=random.Random(20261127))
    for n in range(12):
        for kind, every in DEFAULT_SCHEDULE.items():
            scheduler.add(JobSpec(f"amazon-{n}", kind, every, Priority.ORDERS, 300.0, jitter=jitter))
    async with running(scheduler):
        await trio.sleep(DAY)
        states = {(s.integration, s.kind): s for s in scheduler.snapshot()}

    assert len(states) == 48
    for (integration, kind), state in states.items():
        every = DEFAULT_SCHEDULE[kind]
        starts = rec.starts[(integration, kind)]
        # first run within [0, jitter*every); then every interval within every*(1 ± jitter)
        assert 0 <= starts[0] < jitter * every
        intervals = [b - a for a, b in zip(starts, starts[1:])]
        assert all(every * (1 - jitter) - EPS <= d <= every * (1 + jitter) + EPS for d in intervals)
        # hence the count: fewest runs when the first is late and every gap is longest;
        # most when the first is at once and every gap is shortest
        fewest = math.ceil((DAY - jitter * every) / (every * (1 + jitter)))
        most = math.floor(DAY / (every * (1 - jitter)) + EPS) + 1
        assert fewest <= len(starts) <= most, (integration, kind, len(starts), fewest, most)
        assert state.runs == len(starts)
        assert state.failures == 0 and state.total_failures == 0
        if len(intervals) > 1:
            assert len(set(intervals)) > 1, "jitter should vary the intervals"
    # e.g. import_orders: 24 h / 10 min = 144 nominal, bounds 131..161
    assert math.ceil((DAY - 60) / 660) == 131 and math.floor(DAY / 540 + EPS) + 1 == 161


async def test_a_run_longer_than_every_never_overlaps_itself(autojump_clock):
    """A 25 s run every 10 s: the next run starts when the previous one ends, never during."""
    rec = Recorder(trio.current_time())
    rec.behaviour[("amazon-de", "import_orders")] = sleeps(25.0)
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=10.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 99.0)
    assert rec.starts[("amazon-de", "import_orders")] == [0.0, 25.0, 50.0, 75.0]
    assert rec.max_active[("amazon-de", "import_orders")] == 1


async def test_each_run_sees_its_own_spec_in_current_job(autojump_clock):
    """current_job is set during a run (for the governor) and unset outside it."""
    rec = Recorder()
    scheduler = Scheduler(rec)
    orders, stock = spec(kind="import_orders"), spec(kind="push_stock", priority=Priority.URGENT)
    scheduler.add(orders)
    scheduler.add(stock)
    async with running(scheduler):
        await trio.sleep(1.0)
    assert sorted(rec.seen_current, key=lambda s: s.kind) == [orders, stock]
    assert current_job.get() is None


# --- triggers -------------------------------------------------------------------------------


async def test_500_triggers_within_the_debounce_window_collapse_into_one_run(autojump_clock):
    """500 triggers in 2 s give one run, 2 s after the first; a later trigger gives another."""
    rec = Recorder(trio.current_time())
    scheduler = Scheduler(rec, debounce=2.0)
    scheduler.add(spec(kind="push_stock", every=3600.0, first_delay=3600.0))
    key = ("amazon-de", "push_stock")
    async with running(scheduler):
        for _ in range(500):
            scheduler.trigger("amazon-de", "push_stock")
            await trio.sleep(0.0039)  # 500 triggers over 1.95 s
        await trio.sleep_until(rec.t0 + 100.0)
        assert rec.starts[key] == [2.0]
        scheduler.trigger("amazon-de", "push_stock")
        await trio.sleep(10.0)
    assert rec.starts[key] == [2.0, 102.0]


async def test_a_trigger_during_a_run_gives_exactly_one_more_run_after_it(autojump_clock):
    """Three triggers during a 10 s run: exactly one extra run, starting as the first ends."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "push_stock")
    rec.behaviour[key] = sleeps(10.0)
    scheduler = Scheduler(rec, debounce=2.0)
    scheduler.add(spec(kind="push_stock", every=3600.0))
    async with running(scheduler):
        for at in (1.0, 3.0, 5.0):
            await trio.sleep_until(rec.t0 + at)
            scheduler.trigger("amazon-de", "push_stock")
        await trio.sleep_until(rec.t0 + 200.0)
    assert rec.starts[key] == [0.0, 10.0]
    assert rec.ends[key] == [10.0, 20.0]


async def test_a_trigger_for_later_survives_an_earlier_run(autojump_clock):
    """"Poll that feed in 60 s", then a backstop run at 30 s: the poll still comes at 60.

    (It did not: every run cleared every trigger, and a feed waited for the next 300 s
    backstop run; the 10,000-SKU push benchmark showed 250 s lost that way.)"""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "poll_submission")
    scheduler = Scheduler(rec, debounce=2.0)
    scheduler.add(spec(kind="poll_submission", every=300.0, first_delay=30.0))
    async with running(scheduler):
        scheduler.trigger("amazon-de", "poll_submission", delay=60.0)
        await trio.sleep_until(rec.t0 + 200.0)
    assert rec.starts[key] == [30.0, 60.0]


async def test_triggers_wait_for_the_backoff_unless_forced(autojump_clock):
    """A failing job is not hammered by triggers; force=True runs it anyway."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "push_stock")
    rec.behaviour[key] = fails_on()
    scheduler = Scheduler(rec, debounce=2.0)
    scheduler.add(spec(kind="push_stock", every=60.0, backoff_base=1000.0, backoff_cap=1000.0))
    async with running(scheduler):
        await trio.sleep(10.0)
        scheduler.trigger("amazon-de", "push_stock")
        await trio.sleep(100.0)
        assert rec.starts[key] == [0.0]
        scheduler.trigger("amazon-de", "push_stock", force=True)
        await trio.sleep(10.0)
    assert rec.starts[key] == [0.0, 112.0]


async def test_trigger_for_an_unknown_job_names_it():
    """Triggering a job that is not scheduled raises KeyError naming job and integration."""
    scheduler = Scheduler(Recorder())
    scheduler.add(spec())
    with pytest.raises(KeyError, match="push_stock.*amazon-de"):
        scheduler.trigger("amazon-de", "push_stock")


# --- failures -------------------------------------------------------------------------------


async def test_timeout_counts_as_a_failure_and_the_job_continues(autojump_clock):
    """A run that hangs is cut off at its timeout, reported as failed, and retried after backoff."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = lambda spec, run: trio.sleep_forever() if run < 3 else trio.sleep(0)
    outcomes: list[JobOutcome] = []
    scheduler = Scheduler(rec, on_outcome=outcomes.append)
    scheduler.add(spec(every=600.0, timeout=5.0, backoff_base=30.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 50.0)
        [state] = scheduler.snapshot()
        assert state.failures == 2 and state.last_error == "timed out after 5s"
        await trio.sleep_until(rec.t0 + 200.0)
    # 0 → times out at 5 → +30; 35 → times out at 40 → +60; 100 succeeds
    assert rec.starts[key] == [0.0, 35.0, 100.0]
    assert rec.cancelled[key] == 2
    assert [(o.ok, o.timed_out, o.failures) for o in outcomes] == [
        (False, True, 1), (False, True, 2), (True, False, 0)]
    assert outcomes[0].duration == 5.0 and outcomes[0].error == "timed out after 5s"


async def test_backoff_doubles_from_30_s_up_to_the_cap(autojump_clock):
    """With jitter 0 a failing job retries 30, 60, 120, 240 s after each failure, then capped."""
    clock.set_start(datetime(2026, 11, 27, tzinfo=timezone.utc))
    start = clock.now()
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = fails_on()
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0, backoff_base=30.0, backoff_cap=240.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 1000.0)
        [state] = scheduler.snapshot()
    assert rec.starts[key] == [0.0, 30.0, 90.0, 210.0, 450.0, 690.0, 930.0]
    assert state.failures == 7 and state.total_failures == 7 and state.runs == 7
    assert state.next_due == start + timedelta(seconds=1170)
    assert state.last_started == start + timedelta(seconds=930)
    assert state.last_error == "TransientError: channel unavailable (run 7)"


async def test_backoff_resets_after_a_success(autojump_clock):
    """fail, fail, succeed, fail: the failure after the success backs off from the base again."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = fails_on({1, 2, 4})
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0, backoff_base=30.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 730.0)
        [state] = scheduler.snapshot()
    # 0 ✗ +30; 30 ✗ +60; 90 ✓ +600; 690 ✗ +30 (not +120); 720 ✓
    assert rec.starts[key] == [0.0, 30.0, 90.0, 690.0, 720.0]
    assert state.failures == 0 and state.total_failures == 3 and state.last_error is None


async def test_throttled_waits_at_least_its_retry_after(autojump_clock):
    """Throttled(retry_after=300) pushes the retry past the 30 s backoff to 300 s."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = fails_on({1}, Throttled("quota exceeded", retry_after=300.0))
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0, backoff_base=30.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 400.0)
    assert rec.starts[key] == [0.0, 300.0]


async def test_a_failing_job_does_not_delay_another(autojump_clock):
    """One job hanging and failing while another keeps its exact 10 s period."""
    rec = Recorder(trio.current_time())
    broken, healthy = ("amazon-de", "import_products"), ("amazon-de", "import_orders")
    rec.behaviour[broken] = lambda spec, run: (trio.sleep_forever() if run % 2 else fails_on()(spec, run))
    scheduler = Scheduler(rec)
    scheduler.add(spec(kind="import_products", every=10.0, timeout=25.0, backoff_base=1.0))
    scheduler.add(spec(kind="import_orders", every=10.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 95.0)
        states = {s.kind: s for s in scheduler.snapshot()}
    assert rec.starts[healthy] == [10.0 * n for n in range(10)]
    assert states["import_products"].total_failures >= 3
    assert states["import_orders"].failures == 0


async def test_failures_log_once_when_they_start_and_once_when_they_recover(autojump_clock, caplog):
    """Five failures in a row then a success: one "failing" line and one "recovered" line."""
    caplog.set_level(logging.DEBUG, logger="marketsync.core.runtime.scheduler")
    rec = Recorder(trio.current_time())
    rec.behaviour[("amazon-de", "import_orders")] = fails_on({1, 2, 3, 4, 5})
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0, backoff_base=1.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 100.0)
    messages = [r.getMessage() for r in caplog.records if r.name == "marketsync.core.runtime.scheduler"]
    assert len(rec.starts[("amazon-de", "import_orders")]) == 6
    assert len([m for m in messages if "failing" in m]) == 1
    assert len([m for m in messages if "recovered" in m]) == 1
    assert "amazon-de/import_orders recovered after 5 failed runs" in messages


async def test_an_unexpected_exception_is_logged_with_its_traceback_once(autojump_clock, caplog):
    """A plugin bug (not a MarketsyncError) keeps its traceback in the one failing line."""
    rec = Recorder(trio.current_time())
    rec.behaviour[("amazon-de", "import_orders")] = fails_on(None, KeyError("AmazonOrderId"))
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0, backoff_base=1.0))
    async with running(scheduler):
        await trio.sleep(10.0)
    [record] = [r for r in caplog.records if "failing" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


async def test_a_broken_outcome_listener_does_not_stop_the_job(autojump_clock):
    """on_outcome raising is logged; the job keeps its schedule."""
    rec = Recorder(trio.current_time())

    def listener(outcome: JobOutcome) -> None:
        raise RuntimeError("listener bug")

    scheduler = Scheduler(rec, on_outcome=listener)
    scheduler.add(spec(every=10.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 35.0)
    assert rec.starts[("amazon-de", "import_orders")] == [0.0, 10.0, 20.0, 30.0]


# --- pause, resume, add, remove ---------------------------------------------------------------


async def test_pause_holds_runs_and_resume_runs_what_came_due(autojump_clock):
    """Paused from 15 s to 45 s: no runs (not even triggered), then one at once on resume."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=10.0))
    scheduler.add(spec(integration="amazon-fr", every=10.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 15.0)
        scheduler.pause("amazon-de")
        scheduler.trigger("amazon-de", "import_orders", delay=0)
        await trio.sleep_until(rec.t0 + 45.0)
        assert [s.paused for s in scheduler.snapshot()] == [True, False]
        scheduler.resume("amazon-de")
        await trio.sleep_until(rec.t0 + 60.0 - EPS)
    assert rec.starts[key] == [0.0, 10.0, 45.0, 55.0]
    assert rec.starts[("amazon-fr", "import_orders")] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]


async def test_remove_cancels_the_run_in_progress_and_stops_the_job(autojump_clock):
    """remove(alias) cancels that integration's runs; remove(alias, kind) only one job."""
    rec = Recorder(trio.current_time())
    rec.behaviour[("amazon-de", "import_products")] = sleeps(100.0)
    scheduler = Scheduler(rec)
    for kind in ("import_orders", "import_products"):
        scheduler.add(spec(kind=kind, every=10.0))
        scheduler.add(spec(integration="amazon-fr", kind=kind, every=10.0))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 5.0)
        assert scheduler.remove("amazon-de") == 2
        assert scheduler.remove("amazon-fr", "import_products") == 1
        assert scheduler.remove("amazon-it") == 0
        await trio.sleep_until(rec.t0 + 25.0)
        remaining = [(s.integration, s.kind) for s in scheduler.snapshot()]
    assert remaining == [("amazon-fr", "import_orders")]
    assert rec.cancelled[("amazon-de", "import_products")] == 1
    assert rec.starts[("amazon-de", "import_orders")] == [0.0]
    assert rec.starts[("amazon-fr", "import_products")] == [0.0]
    assert rec.starts[("amazon-fr", "import_orders")] == [0.0, 10.0, 20.0]


async def test_jobs_added_while_running_start_after_their_first_delay(autojump_clock):
    """add() during run() starts a loop at once; a duplicate add names the job."""
    rec = Recorder(trio.current_time())
    scheduler = Scheduler(rec)
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 5.0)
        scheduler.add(spec(every=10.0, first_delay=1.0))
        with pytest.raises(ValueError, match="import_orders.*amazon-de.*already scheduled"):
            scheduler.add(spec())
        await trio.sleep_until(rec.t0 + 20.0)
    assert rec.starts[("amazon-de", "import_orders")] == [6.0, 16.0]


async def test_an_account_job_serves_its_members_and_pauses_only_with_all(autojump_clock):
    """One job for amazon-de and amazon-uk: it runs while either is live, a trigger for
    either wakes it, and only both paused hold it."""
    rec = Recorder(trio.current_time())
    key = ("amazon-de", "import_orders")
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=10.0, members=("amazon-de", "amazon-uk")))
    assert scheduler.has("amazon-uk", "import_orders") and scheduler.has("amazon-de", "import_orders")
    assert not scheduler.has("amazon-fr", "import_orders")
    with pytest.raises(ValueError, match="'amazon-uk' already has a job 'import_orders'"):
        scheduler.add(spec(integration="amazon-uk"))
    async with running(scheduler):
        await trio.sleep_until(rec.t0 + 3.0)
        scheduler.trigger("amazon-uk", "import_orders", delay=0)  # a member's trigger
        await trio.sleep_until(rec.t0 + 15.0)
        scheduler.pause("amazon-de")  # one member down: the job goes on
        await trio.sleep_until(rec.t0 + 25.0)
        scheduler.pause("amazon-uk")  # both down: held
        await trio.sleep_until(rec.t0 + 45.0)
        assert [s.paused for s in scheduler.snapshot()] == [True]
        scheduler.resume("amazon-uk")
        await trio.sleep_until(rec.t0 + 50.0 - EPS)
    assert rec.starts[key] == [0.0, 3.0, 13.0, 23.0, 45.0]
    assert len(rec.starts) == 1  # no job of its own for amazon-uk


def test_members_must_start_with_the_jobs_integration():
    with pytest.raises(ValueError, match="members must start with the integration"):
        spec(members=("amazon-uk", "amazon-de"))


# --- stopping -------------------------------------------------------------------------------


async def test_stop_lets_runs_finish_within_grace_and_cancels_the_rest(autojump_clock):
    """stop(grace=5) at 1 s: a 3 s run completes, a 100 s run is cancelled at 6 s, nothing new starts."""
    rec = Recorder(trio.current_time())
    quick, slow = ("amazon-de", "import_orders"), ("amazon-de", "import_products")
    rec.behaviour[quick] = sleeps(3.0)
    rec.behaviour[slow] = sleeps(100.0)
    scheduler = Scheduler(rec)
    scheduler.add(spec(kind="import_orders", every=2.0))
    scheduler.add(spec(kind="import_products", every=2.0))
    returned_at = []

    async def run_and_note(task_status=trio.TASK_STATUS_IGNORED):
        await scheduler.run(task_status=task_status)
        returned_at.append(trio.current_time() - rec.t0)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_and_note)
        await trio.sleep_until(rec.t0 + 1.0)
        await scheduler.stop(grace=5.0)
        stopped_at = trio.current_time() - rec.t0
    assert stopped_at == 6.0 and returned_at == [6.0]
    assert rec.starts[quick] == [0.0] and rec.ends[quick] == [3.0]
    assert rec.starts[slow] == [0.0] and rec.cancelled[slow] == 1 and rec.ends[slow] == []
    with pytest.raises(RuntimeError, match="stopping"):
        scheduler.add(spec(kind="push_stock"))


async def test_stop_with_nothing_running_returns_at_once(autojump_clock):
    """Idle jobs end immediately on stop: no waiting for the grace period."""
    rec = Recorder(trio.current_time())
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        await trio.sleep(1.0)
        await scheduler.stop(grace=5.0)
        assert trio.current_time() - rec.t0 == 1.0


async def test_a_scheduler_stopped_before_it_runs_runs_nothing(autojump_clock):
    """stop() before run(): run() returns at once without starting a job, and only runs once."""
    rec = Recorder(trio.current_time())
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0))
    await scheduler.stop()
    await scheduler.run()
    assert rec.starts == {} and trio.current_time() == rec.t0
    with pytest.raises(RuntimeError, match="runs once"):
        await scheduler.run()


# --- signals (real clock) -------------------------------------------------------------------


async def test_sigterm_stops_the_scheduler_gracefully():
    """SIGTERM to our own process: the run in flight finishes and run() returns."""
    rec = Recorder()
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = sleeps(0.2)
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=0.05))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            await nursery.start(partial(watch_signals, scheduler, grace=2.0))
            await trio.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)
    assert len(rec.starts[key]) == 1 and len(rec.ends[key]) == 1 and rec.cancelled[key] == 0
    [state] = scheduler.snapshot()
    assert not state.running


async def test_a_second_signal_cancels_without_waiting_for_grace():
    """SIGTERM then SIGINT: a 60 s run is cancelled at once instead of after the 30 s grace."""
    rec = Recorder()
    key = ("amazon-de", "import_orders")
    rec.behaviour[key] = sleeps(60.0)
    scheduler = Scheduler(rec)
    scheduler.add(spec(every=600.0))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            await nursery.start(partial(watch_signals, scheduler, grace=30.0))
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
    assert rec.cancelled[key] == 1


async def test_sighup_reloads_and_a_stop_callback_ends_the_watch():
    """SIGHUP calls reload (a failing reload is survived); SIGINT calls the stop callback."""
    reloads, stops = [], []

    async def reload():
        reloads.append(trio.current_time())
        if len(reloads) == 1:
            raise ValueError("bad YAML")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(watch_signals, lambda: stops.append(1), reload=reload))
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGHUP)
                await trio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
    assert len(reloads) == 2 and stops == [1]


async def test_a_signal_can_cancel_a_scope():
    """watch_signals(scope) cancels the scope on SIGTERM."""
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(watch_signals, scope)
                os.kill(os.getpid(), signal.SIGTERM)
                await trio.sleep_forever()
    assert scope.cancelled_caught


# --- specs and backoff policy ---------------------------------------------------------------


def test_job_spec_rejects_bad_values_naming_the_job():
    """Non-positive periods, jitter >= 1 and a cap below the base are refused with the job named."""
    with pytest.raises(ValueError, match="'import_orders' of integration 'amazon-de': every"):
        spec(every=0)
    with pytest.raises(ValueError, match="timeout"):
        spec(timeout=-1)
    with pytest.raises(ValueError, match="jitter"):
        spec(jitter=1.0)
    with pytest.raises(ValueError, match="cap"):
        spec(backoff_base=60.0, backoff_cap=30.0)
    with pytest.raises(ValueError, match="first_delay"):
        spec(first_delay=-5.0)


def test_job_spec_from_a_channel_default_with_overrides():
    """A channel's JobDefault becomes a spec; YAML overrides win."""
    default = JobDefault(kind="fetch_tracking", every=21_600.0, priority=Priority.URGENT, timeout=120.0)
    job = JobSpec.from_default("amazon-de", default, every=3_600.0)
    assert (job.key, job.every, job.priority, job.timeout, job.jitter) == (
        ("amazon-de", "fetch_tracking"), 3_600.0, Priority.URGENT, 120.0, 0.1)


def test_backoff_sequence_and_jitter_bounds():
    """30, 60, ... 1800 capped; jittered delays stay within ± the fraction; no overflow."""
    policy = Backoff()
    assert [policy.raw_delay(n) for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1800, 1800, 1800]
    assert policy.raw_delay(10_000) == 1800
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(1000)]
    assert all(108 <= d <= 132 for d in delays) and len(set(delays)) > 1
    assert jittered(50.0, 0.0, rng) == 50.0
    with pytest.raises(ValueError, match="at least one failure"):
        policy.raw_delay(0)
