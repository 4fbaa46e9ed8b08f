"""The daemon: wires configuration, plugins, store, governor, scheduler and runners.

``Daemon.serve`` is the whole long-running process in one nursery: the scheduler, one
runner per integration and (when configured) the HTTP surface. It reports started only
after every integration has had its first credentials check, so systemd's READY=1 and
the tests' ``nursery.start`` mean "all integrations tried".
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import trio
from sqlalchemy import select

from marketsync.core import clock

from marketsync.core.runtime import jobs, notifications

from marketsync.core.domain import pii, pii_key_check
from marketsync.core.config.schema import Config
from marketsync.core.runtime.connect import stored_credentials
from marketsync.core.runtime.db_health import DatabaseHealth, DatabaseUnavailable, is_outage
from marketsync.core.runtime.governor import Governor, current_priority
from marketsync.core.runtime.http import make_client
from marketsync.core.domain.pii import PiiCipher
from marketsync.core.runtime.plugins import Plugins, build as build_plugins
from marketsync.core.runtime.replicas import LeaseKeeper
from marketsync.core.runtime.shared_buckets import SharedBuckets
from marketsync.core.runtime.runner import IntegrationRunner
from marketsync.core.runtime.scheduler import JobOutcome, JobSpec, Scheduler
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.runtime.stats import Stats
from marketsync.core.runtime.plugin_state import StoredState
from marketsync.core.store import Store
from marketsync.core.store import integrations as store_integrations
from marketsync.core.store import quarantine
from marketsync.core.store.leases import LeaseLost
from marketsync.core.store.models import Account
from marketsync.core.types import ChannelInfo, Integration

log = logging.getLogger(__name__)

#: A transport factory receives the account name; tests return an ASGITransport.
TransportFactory = Callable[[str], httpx.AsyncBaseTransport]

#: Jobs every channel gets when it implements the hook, even if its channel_info does not
#: list them: following submissions and confirming shipments are the core's duties.
HEARTBEAT = 15.0
#: how often buyer data past its retention is purged (Amazon's Data Protection Policy:
#: 30 days after delivery)
HOUSEKEEPING_EVERY = 3600.0
#: share of every published rate the daemon leaves unused (see Governor)
RATE_MARGIN = 0.02

#: Pushes and polls are also triggered the moment there is work (a stock change, a
#: submission's poll_after), so these periods only catch work from other processes (the
#: CLI) and after a restart; a run with nothing to do costs one database read.
CORE_JOBS = {"poll_submission": 300.0, "confirm_shipment": 120.0, "push_stock": 60.0,
             "push_prices": 120.0}
#: Job health is written at most this often per job while nothing changes (status shows
#: it to the minute); failures and recoveries are written at once.
HEALTH_WRITE_EVERY = 60.0


def _seller_ids(session) -> dict[str, str | None]:
    return dict(session.execute(select(Account.name, Account.seller_id)).all())


class Daemon:
    """Everything one marketsync process runs."""

    def __init__(
        self,
        config: Config,
        *,
        plugins: Plugins | None = None,
        store: Store | None = None,
        transport_factory: TransportFactory | None = None,
        rng: random.Random | None = None,
    ):
        self.config = config
        self.plugins = plugins or build_plugins(disabled=config.plugins.disabled)
        self.store = store or Store(config.database)
        self.rng = rng or random.Random()
        shared = not self.store.is_sqlite and config.replicas.shared_rate_limits
        self.governor = Governor(SharedBuckets(self.store) if shared else None,
                                 rate_margin=RATE_MARGIN)
        self.stats = Stats()
        #: on PostgreSQL every job runs under a lease (several replicas may share the
        #: database); built in ``serve`` once the jobs are known. SQLite has one daemon.
        self.leases: LeaseKeeper | None = None
        self.scheduler = Scheduler(self._run_job, rng=self.rng, on_outcome=self._on_outcome,
                                   may_run=self._may_run)
        self.database = DatabaseHealth(self.store, on_down=self.scheduler.hold,
                                       on_up=self._database_back, rng=self.rng)
        self._transport_factory = transport_factory or (lambda account: httpx.AsyncHTTPTransport())
        self._account_runtime: dict[str, dict[str, Any]] = {}
        self.integrations: dict[str, Integration] = {}
        self.integration_ids: dict[str, int] = {}
        #: account name → its running notifications consumer (``notifications status``)
        self.notification_consumers: dict[str, "notifications.Consumer"] = {}
        self.runners: dict[str, IntegrationRunner] = {}
        self._pending_outcomes: trio.MemorySendChannel | None = None
        self.cipher = PiiCipher.from_text(config.pii.key.reveal()) if config.pii.key else None
        self.started = trio.Event()
        self._heartbeat = float("-inf")
        self._health_written: dict[tuple[str, str], tuple[bool | None, float]] = {}

    # --- building ------------------------------------------------------------------------------

    def channel_info(self, alias: str) -> ChannelInfo | None:
        hooks = self.plugins.channels.get(self.config.integration(alias).channel)
        return hooks.info if hooks else None

    def _make_integration(self, alias: str) -> Integration:
        cfg = self.config.integration(alias)
        account = self.config.accounts[cfg.account]
        hooks = self.plugins.channels.get(cfg.channel)
        integration = self.config.make_integration(
            alias,
            log=logging.LoggerAdapter(logging.getLogger(f"marketsync.{cfg.channel}"),
                                      {"integration": alias}),
            account_runtime=self._account_runtime.setdefault(cfg.account, {}),
            account_state=StoredState.of_account(self.store, cfg.channel, cfg.account),
            state=StoredState.of_integration(self.store, cfg.channel, alias),
        )
        if hooks is not None:
            info = hooks.info
            bucket_key = info.bucket_key or (
                lambda integration, operation: (info.name, integration.account, operation))
            integration.http = make_client(
                self._transport_factory(cfg.account),
                self.governor,
                bucket_for=lambda operation: bucket_key(integration, operation),
                plan_for=info.usage_plans.get,
                rate_header=info.rate_limit_header,
                base_url=account.endpoint,
                on_call=self.stats.on_call,
                rng=self.rng,
            )
            integration.report_quota = self._quota_reporter(integration, bucket_key, info)
        return integration

    def _quota_reporter(self, integration: Integration, bucket_key, info: ChannelInfo) -> Callable:
        """``Integration.report_quota`` for ``integration``: live daily figures to the governor,
        defining the operation's bucket from its published plan if no call has yet."""
        def report(operation: str, limit: int, remaining: int, resets_at) -> None:
            key = bucket_key(integration, operation)
            plan = info.usage_plans.get(operation)
            if key is None or plan is None or plan.daily is None:
                return
            if key not in self.governor:
                self.governor.define(key, plan.rate, plan.burst)
            self.governor.define_quota(key, plan.daily)
            self.governor.adopt_quota(key, limit, remaining, resets_at)
        return report

    def integration_config(self, alias: str):
        """The YAML settings of integration ``alias`` (``jobs.JobContext``)."""
        return self.config.integration(alias)

    def use_credentials(self, account: str, credentials: dict[str, str]) -> None:
        """Stored credentials (from a connect) win over the YAML's; cached tokens of the
        account are dropped so the next call uses them."""
        for integration in self.integrations.values():
            if integration.account == account:
                integration.credentials = {**integration.credentials, **credentials}
        self._account_runtime.setdefault(account, {}).clear()

    def learn_seller_id(self, account: str, seller_id: str) -> None:
        """Hand the seller id a credentials check learnt to every integration of the account
        (channel APIs such as Amazon's listings need it in their paths)."""
        for integration in self.integrations.values():
            if integration.account == account and not integration.credentials.get("seller_id"):
                integration.credentials = {**integration.credentials, "seller_id": seller_id}

    def job_specs(self, alias: str) -> list[JobSpec]:
        """The integration's jobs: what its channel implements, on the YAML's schedule."""
        cfg = self.config.integration(alias)
        hooks = self.plugins.channels[cfg.channel]
        specs = []
        defaults = {job.kind: job for job in hooks.info.jobs}
        for kind in jobs.KINDS:
            if not hooks.supports(kind) or not jobs.wanted(kind, cfg):
                continue
            default = defaults.get(kind)
            if default is not None and default.scope == "account":
                specs.append(self._account_spec(alias, default))
                continue
            every = cfg.schedule.get(kind) or (default.every if default else CORE_JOBS.get(kind))
            if every is None:
                continue
            priority = default.priority if default else jobs.PRIORITIES[kind]
            timeout = default.timeout if default else 600.0
            specs.append(JobSpec(integration=alias, kind=kind, every=every, priority=priority,
                                 timeout=timeout))
        return specs

    def account_members(self, alias: str, kind: str) -> list[str]:
        """The enabled integrations of ``alias``'s account and channel that want ``kind``, in
        the configuration's order: whom one run of an account-scoped job serves."""
        cfg = self.config.integration(alias)
        return [other.alias for other in self.config.integrations
                if other.account == cfg.account and other.channel == cfg.channel
                and other.enabled and jobs.wanted(kind, other)]

    def _account_spec(self, alias: str, default) -> JobSpec:
        """One job for the whole account, named after its first integration; a YAML
        ``schedule`` on any of them overrides the channel's period (the shortest wins)."""
        members = self.account_members(alias, default.kind) or [alias]
        overrides = [self.config.integration(m).schedule.get(default.kind) for m in members]
        overrides = [every for every in overrides if every]
        return JobSpec(integration=members[0], kind=default.kind,
                       every=min(overrides) if overrides else default.every,
                       priority=default.priority, timeout=default.timeout,
                       members=tuple(members))

    def _sync_rows(self, session) -> dict[str, int]:
        ids = {}
        for cfg in self.config.integrations:
            ids[cfg.alias] = store_integrations.ensure_integration(
                session, alias=cfg.alias, channel=cfg.channel, account=cfg.account,
                marketplace=cfg.marketplace, enabled=cfg.enabled)
        store_integrations.retire_missing(session, ids)
        return ids

    # --- running --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Upgrade the database and create runners; separate so tests can inspect first."""
        await clock.run_in_thread(self.store.upgrade)
        # before any row is read or written: a wrong key must stop here, in one line
        await self.store.run(pii_key_check.verify, self.cipher)
        # read before the one write of the configuration (the integration rows), so that a
        # reload whose database fails half-way leaves the rows as the running daemon has them
        stored = await self.store.read(stored_credentials, self.cipher)
        seller_ids = await self.store.read(_seller_ids)
        self.integration_ids = await self.store.run(self._sync_rows)
        failures = self.plugins.unavailable()
        for cfg in self.config.integrations:
            hooks = self.plugins.channels.get(cfg.channel)
            reason = None
            if hooks is None:
                why = failures.get(cfg.channel)
                reason = f"channel {cfg.channel!r} unavailable" + (f": {why}" if why else
                                                                     ": no plugin serves it")
            integration = self._make_integration(cfg.alias)
            self.integrations[cfg.alias] = integration
            self.runners[cfg.alias] = IntegrationRunner(
                self, integration, hooks, enabled=cfg.enabled, unavailable_reason=reason,
                rng=self.rng)
        for account, credentials in stored.items():
            self.use_credentials(account, credentials)
        for account, seller_id in seller_ids.items():
            if seller_id:
                self.learn_seller_id(account, seller_id)

    async def discard(self) -> None:
        """Close what ``prepare`` opened, for a daemon that will never serve (a refused
        reload)."""
        for integration in self.integrations.values():
            if integration.http is not None:
                with trio.CancelScope(shield=True):
                    await integration.http.aclose()

    def _lease_keeper(self) -> LeaseKeeper:
        """Every job of every integration under a lease; the keeper has its own connections,
        so that a heartbeat never queues behind the jobs' queries."""
        keys = [spec.key for alias, runner in self.runners.items() if runner.hooks
                for spec in self.job_specs(alias)]
        ttl = self.config.replicas.lease_ttl
        return LeaseKeeper(Store(self.store.url), keys, rng=self.rng, ttl=ttl, poll=ttl / 10,
                           margin=ttl / 4, on_acquired=lambda key: self.trigger(*key),
                           on_stock_moved=self.stock_changed,
                           on_error=self._lease_look_failed)

    def _lease_look_failed(self, error: BaseException) -> None:
        """Without a lease no job runs, so no job reports the outage: the keeper does."""
        if is_outage(error):
            self.database.failed(error)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if not self.runners:
            await self.prepare()
        if not self.store.is_sqlite and self.leases is None:
            self.leases = self._lease_keeper()  # several replicas may share PostgreSQL
        send, receive = trio.open_memory_channel[JobOutcome](1000)
        self._pending_outcomes = send
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.scheduler.run)
                nursery.start_soon(self._handle_outcomes, receive)
                nursery.start_soon(self.database.watch)
                nursery.start_soon(self._beat)
                nursery.start_soon(self._persist_heartbeat)
                nursery.start_soon(self._housekeeping)
                if self.leases is not None:
                    await nursery.start(self.leases.run)
                async with trio.open_nursery() as starting:
                    for runner in self.runners.values():
                        starting.start_soon(self._start_runner, nursery, runner)
                notifications.start_all(self, self.config, nursery)  # a trigger, not the truth
                log.info("marketsync running %d integration(s): %s", len(self.runners),
                         ", ".join(f"{a}={r.state.value}" for a, r in self.runners.items()))
                self.started.set()
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self._mark_stopped()
            if self.leases is not None:
                self.leases.store.close()
            for integration in self.integrations.values():
                if integration.http is not None:
                    with trio.CancelScope(shield=True):
                        await integration.http.aclose()

    async def _persist_heartbeat(self) -> None:
        """The database copy of the heartbeat, for ``status`` in other processes; a failed
        write is logged once and tried again at the next beat."""
        from marketsync.core.store import heartbeats

        started, failing = clock.now(), False
        while True:
            try:
                await self.store.run(heartbeats.beat, self.heartbeat_owner, started)
            except Exception as error:  # noqa: BLE001 - the daemon goes on without it
                if not failing:
                    log.warning("cannot record the daemon's heartbeat: %s", error)
                failing = True
            else:
                failing = False
            await trio.sleep(heartbeats.HEARTBEAT_EVERY)

    async def _mark_stopped(self) -> None:
        from marketsync.core.store import heartbeats

        try:
            await self.store.run(heartbeats.stopped, self.heartbeat_owner)
        except Exception as error:  # noqa: BLE001 - status will call it stale instead
            log.warning("cannot record that the daemon stopped: %s", error)

    @property
    def heartbeat_owner(self) -> str:
        import os
        import socket

        return f"{socket.gethostname()}:{os.getpid()}"

    def scheduler_alive(self, within: float = 4 * HEARTBEAT) -> bool:
        """The scheduler's heartbeat is fresh: the event loop turns and jobs can run."""
        return self.started.is_set() and clock.monotonic() - self._heartbeat < within

    async def _housekeeping(self) -> None:
        """Purge buyer data that is past its retention, hourly; a failure is logged and
        tried again at the next hour, never fatal."""
        while True:
            try:
                purged = await self.store.run(pii.purge_due, clock.now())
            except Exception as error:  # noqa: BLE001 - logged, retried next hour
                if is_outage(error):
                    self.database.failed(error)
                    log.warning("purging expired buyer data waits for the database; trying "
                                "again in an hour")
                else:
                    log.exception("purging expired buyer data failed; trying again in an hour")
            else:
                if purged:
                    log.info("purged the buyer data of %d order(s) 30 days after delivery",
                             purged)
            try:
                expired = await self.store.run(quarantine.expire, clock.now())
            except Exception:  # noqa: BLE001 - logged, retried next hour
                log.exception("expiring old quarantined records failed; trying again in an hour")
            else:
                if expired:
                    log.warning("dropped %d quarantined record(s) not seen for %d days",
                                expired, quarantine.RETENTION.days)
            await trio.sleep(HOUSEKEEPING_EVERY)

    async def refresh_quarantine_counts(self) -> None:
        """Read the quarantine counts into ``stats`` (for /metrics): the table also changes
        from the command line, so the count is read, not kept in step by hand."""
        summaries = await self.store.read(quarantine.summaries)
        self.stats.quarantined = {alias: summaries[row_id].count if row_id in summaries else 0
                                  for alias, row_id in self.integration_ids.items()}

    async def _beat(self) -> None:
        while True:
            self._heartbeat = clock.monotonic()
            await trio.sleep(HEARTBEAT)

    async def _start_runner(self, nursery: trio.Nursery, runner: IntegrationRunner) -> None:
        await nursery.start(runner.run)

    async def stop(self, grace: float = 5.0) -> None:
        await self.scheduler.stop(grace)

    # --- jobs ------------------------------------------------------------------------------------

    def _may_run(self, spec: JobSpec) -> bool:
        return self.leases is None or self.leases.holds(spec.key)

    async def _run_job(self, spec: JobSpec) -> None:
        current_priority.set(spec.priority)
        integration = self.integrations[spec.integration]
        hooks = self.plugins.channels[integration.channel]

        async def body() -> None:
            if spec.members:
                live = [self.integrations[m] for m in spec.members
                        if self.runners[m].state is IntegrationState.LIVE]
                if live:  # those paused keep their watermarks and catch up when back
                    await jobs.run_account(self, live, hooks, spec.kind)
                return
            await jobs.run(self, integration, hooks, spec.kind)

        if self.leases is None:
            await body()
            return
        try:
            with self.leases.fenced(spec.key) as scope:
                await body()
        except LeaseLost as error:
            # another replica owns the job now: not a failure of the job, just not ours
            self.leases.lost(spec.key)
            log.warning("%s/%s stopped: %s", spec.integration, spec.kind, error)
            return
        if scope.cancelled_caught:
            log.warning("%s/%s cut short: this replica could not renew its lease in time",
                        spec.integration, spec.kind)

    def _on_outcome(self, outcome: JobOutcome) -> None:
        self.stats.jobs[(outcome.spec.integration, outcome.spec.kind, outcome.ok)] += 1
        if not outcome.ok and is_outage(outcome.exception):
            self.database.failed(outcome.exception)  # holds the jobs until a probe commits
        if self._pending_outcomes is not None:
            try:
                self._pending_outcomes.send_nowait(outcome)
            except trio.WouldBlock:  # pragma: no cover - 1000 outcomes unhandled
                log.warning("job outcome queue full; dropping %s", outcome.spec.key)

    async def _handle_outcomes(self, receive: trio.MemoryReceiveChannel) -> None:
        """Persist job health and let failures change integration states, off the job path.

        A database outage costs the health row of this outcome (the next one writes it),
        never the daemon; a job that failed because of the outage says nothing about its
        integration, so it changes no state."""
        async for outcome in receive:
            spec = outcome.spec
            for alias in spec.covers:  # an account's job is every member's job too
                key = (alias, spec.kind)
                integration_id = self.integration_ids.get(alias)
                last_ok, last_written = self._health_written.get(key, (None, float("-inf")))
                now = clock.monotonic()
                if integration_id is not None and self._may_run(spec) and (
                        not outcome.ok or last_ok is not True
                        or now - last_written >= HEALTH_WRITE_EVERY):
                    try:
                        await self.database.write(jobs.record_outcome, integration_id, outcome)
                    except DatabaseUnavailable:
                        pass  # logged once by DatabaseHealth; the next outcome writes it
                    else:
                        self._health_written[key] = (outcome.ok, now)
                runner = self.runners[alias]
                # an account's run spoke for its LIVE members only; an outage for no one
                if not outcome.ok and outcome.exception is not None \
                        and not is_outage(outcome.exception) and (
                        not spec.members or runner.state is IntegrationState.LIVE):
                    await runner.job_failed(outcome)

    async def _database_back(self) -> None:
        """Write what the outage kept in memory, then let the jobs run again."""
        for runner in self.runners.values():
            await runner.save_state()
        self.scheduler.release()

    def trigger(self, alias: str, kind: str, *, delay: float | None = None) -> None:
        """Ask for a run soon (debounced), e.g. a push after a stock change."""
        runner = self.runners.get(alias)
        if runner is not None and runner.state is IntegrationState.LIVE:
            try:
                self.scheduler.trigger(alias, kind, delay=delay)
            except KeyError:
                pass  # the channel does not implement that job, or the settings skip it

    async def fetch_record(self, alias: str, kind: str, record_id: str) -> bool | None:
        """Fetch and store one record a notification announced, now, at the priority of
        its import and through the governor like every call (``jobs.import_record``).

        :returns: None when there is nothing to do here (the integration is not LIVE, or
            its channel cannot fetch one record: the caller runs the import instead),
            else whether the channel gave the record back.
        """
        runner = self.runners.get(alias)
        if (runner is None or runner.hooks is None or runner.state is not IntegrationState.LIVE
                or not runner.hooks.supports("fetch_record")):
            return None
        hooks = runner.hooks
        members = []
        if jobs.is_account_scoped(hooks, kind):
            members = [self.integrations[m] for m in self.account_members(alias, kind)
                       if self.runners[m].state is IntegrationState.LIVE]
        token = current_priority.set(jobs.PRIORITIES.get(kind, current_priority.get()))
        try:
            return await jobs.import_record(self, self.integrations[alias], hooks, kind,
                                            record_id, members)
        finally:
            current_priority.reset(token)

    def nudge(self, kinds: Iterable[str]) -> None:
        """Something changed in another process (the CLI): run these jobs of every
        integration now rather than at their next scheduled run."""
        for kind in kinds:
            for alias in self.runners:
                self.trigger(alias, kind)

    def stock_changed(self) -> None:
        """Local availability changed: every integration that pushes stock should look.

        A push with nothing pending costs one database query and no channel call, so
        asking all of them is cheaper than working out which listings moved here."""
        for alias in self.runners:
            self.trigger(alias, "push_stock")
