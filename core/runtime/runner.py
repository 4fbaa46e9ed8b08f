"""One integration's lifecycle: check credentials, run its jobs, stop them when it cannot.

The state machine lives here and nowhere else (Home Assistant's config-entry pattern):
every change goes through :meth:`IntegrationRunner.set_state`, which persists it, logs it
once and tells the plugins (``integration_state_changed``). Which exception leads to which
state is the table in ``core/errors.py``.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Protocol

import trio

from marketsync.core.runtime import logs
from marketsync.core.runtime.backoff import Backoff
from marketsync.core.runtime.db_health import DatabaseUnavailable
from marketsync.core.errors import (
    IntegrationAuthFailed,
    IntegrationError,
    IntegrationNotReady,
    TransientError,
)
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import integrations as store_integrations
from marketsync.core.types import AccountInfo, Integration

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.runtime.db_health import DatabaseHealth
    from marketsync.core.runtime.scheduler import JobSpec, Scheduler
    from marketsync.core.store import Store
    from marketsync.core.runtime.plugins import ChannelHooks, Plugins
    from marketsync.core.runtime.scheduler import JobOutcome

log = logging.getLogger(__name__)

#: Setup retries: 30 s, 60 s, ... up to 15 min, with jitter (HA starts at 5 s; a channel
#: that is down is rarely back within seconds, and each check costs a rate-limited call).
SETUP_BACKOFF = Backoff(base=30.0, cap=900.0, jitter=0.1)
SETUP_TIMEOUT = 60.0


def describe(error: BaseException) -> str:
    """A one-line reason for people; exception texts in the core never carry secrets."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__


class RunnerHost(Protocol):
    """What a runner needs of the daemon: where to record its state, whom to tell, and
    the scheduler that runs (or pauses) its jobs."""

    store: "Store"
    database: "DatabaseHealth"
    plugins: "Plugins"
    scheduler: "Scheduler"

    def job_specs(self, alias: str) -> "list[JobSpec]": ...

    def learn_seller_id(self, account: str, seller_id: str) -> None: ...


class IntegrationRunner:
    """Keeps one integration LIVE when it can, and says why when it cannot."""

    def __init__(
        self,
        daemon: RunnerHost,
        integration: Integration,
        hooks: "ChannelHooks | None",
        *,
        enabled: bool = True,
        unavailable_reason: str | None = None,
        rng: random.Random | None = None,
    ):
        self.daemon = daemon
        self.integration = integration
        self.alias = integration.alias
        self.hooks = hooks
        self.enabled = enabled
        self.unavailable_reason = unavailable_reason
        self.state = IntegrationState.CONNECTING
        self.reason: str | None = None
        self.account: AccountInfo | None = None
        self._rng = rng or random.Random()
        self._wake = trio.Event()
        self._jobs_added = False
        self.setup_failures = 0
        self._unsaved = False  #: the state changed while the database was down

    # --- state -----------------------------------------------------------------------------

    async def set_state(self, new: IntegrationState, reason: str | None = None) -> None:
        old = self.state
        self.state, self.reason = new, reason
        self._unsaved = True
        await self.save_state()
        if old is new:
            return
        line = "integration %s: %s -> %s%s"
        args = (self.alias, old.value, new.value, f" ({reason})" if reason else "")
        (log.warning if not new.recoverable or new is IntegrationState.RETRY else log.info)(
            line, *args, extra={"integration": self.alias})  # called from other tasks too
        self.daemon.plugins.broadcast("integration_state_changed", integration=self.integration,
                                      old=old.value, new=new.value, reason=reason)

    async def save_state(self) -> None:
        """Persist the state; during a database outage it stays in memory (status shows the
        outage) and the daemon calls this again when the database is back."""
        if not self._unsaved:
            return
        new, reason = self.state, self.reason
        try:
            await self.daemon.database.write(
                store_integrations.set_state, self.alias, new.value, reason,
                last_error=reason if not new.recoverable else None)
        except DatabaseUnavailable:
            return
        if (self.state, self.reason) == (new, reason):
            self._unsaved = False

    # --- the runner task ------------------------------------------------------------------

    def retry(self) -> None:
        """Check credentials again now (``marketsync retry``, the status page's Retry)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reports started after the first setup attempt, so READY means "tried them all"."""
        logs.current_integration.set(self.alias)  # the runner's own task and its children
        started = False

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        if not self.enabled:
            await self.set_state(IntegrationState.DISABLED, "enabled: false in the configuration")
            ready()
            return
        if self.hooks is None:
            await self.set_state(IntegrationState.ERROR, self.unavailable_reason)
            ready()
            return
        while True:
            self._wake = trio.Event()
            delay = await self._attempt_setup()
            ready()
            if delay is None:
                await self._wake.wait()  # LIVE, INCOMPLETE or ERROR: until retry() or a job's failure
            else:
                with trio.move_on_after(delay):
                    await self._wake.wait()

    async def _attempt_setup(self) -> float | None:
        """One credentials check. Returns seconds until the next attempt, or None to wait."""
        if self.state is not IntegrationState.RETRY:
            await self.set_state(IntegrationState.CONNECTING)
        try:
            with trio.fail_after(SETUP_TIMEOUT):
                account = await self.hooks.call("check_credentials", integration=self.integration)
        except IntegrationAuthFailed as error:
            await self._stop_jobs(IntegrationState.INCOMPLETE, describe(error))
            return None
        except IntegrationError as error:
            await self._stop_jobs(IntegrationState.ERROR, describe(error))
            return None
        except (IntegrationNotReady, TransientError, trio.TooSlowError, Exception) as error:
            if not isinstance(error, (IntegrationNotReady, TransientError, trio.TooSlowError)):
                log.exception("integration %s: check_credentials failed unexpectedly", self.alias)
            reason = "credentials check timed out" if isinstance(error, trio.TooSlowError) \
                else describe(error)
            self.setup_failures += 1
            await self._stop_jobs(IntegrationState.RETRY, reason)
            return SETUP_BACKOFF.delay(self.setup_failures, self._rng)
        self.setup_failures = 0
        self.account = account
        if account is not None and account.seller_id:
            try:
                await self.daemon.database.write(store_integrations.set_seller_id,
                                                 self.integration.account, account.seller_id)
            except DatabaseUnavailable:
                pass  # learnt again at the next credentials check
            self.daemon.learn_seller_id(self.integration.account, account.seller_id)
        await self.set_state(IntegrationState.LIVE)
        self._start_jobs()
        return None

    def _start_jobs(self) -> None:
        scheduler = self.daemon.scheduler
        if not self._jobs_added:
            for spec in self.daemon.job_specs(self.alias):
                if not scheduler.has(self.alias, spec.kind):  # an account's job: added once
                    scheduler.add(spec)
            self._jobs_added = True
        scheduler.resume(self.alias)

    async def _stop_jobs(self, state: IntegrationState, reason: str) -> None:
        if self._jobs_added:
            self.daemon.scheduler.pause(self.alias)
        await self.set_state(state, reason)

    # --- what jobs report ---------------------------------------------------------------------

    async def job_failed(self, outcome: "JobOutcome") -> None:
        """A job's exception may mean the whole integration cannot go on."""
        error = outcome.exception
        if isinstance(error, IntegrationAuthFailed):
            await self._stop_jobs(IntegrationState.INCOMPLETE, describe(error))
        elif isinstance(error, IntegrationError):
            await self._stop_jobs(IntegrationState.ERROR, describe(error))
        elif isinstance(error, IntegrationNotReady):
            await self._stop_jobs(IntegrationState.RETRY, describe(error))
            self._wake.set()  # the runner loop backs off and checks again
