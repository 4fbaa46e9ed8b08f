"""Several daemons on one PostgreSQL database: who runs which job, and what stops a stale one.

Each job (integration, kind) has a lease row (``core/store/leases.py``). A replica runs a
job only while it holds that job's lease; every write the job makes checks the lease's
fencing token in the same transaction (``Store.run`` does it through
``leases.current_fence``), so a replica that was paused (SIGSTOP, a VM freeze, a long GC)
and wakes after another took over cannot write anything on the job's behalf.

The keeper, one per daemon, looks every ``poll`` seconds (research/wave2.md §3.3, with
the same numbers: TTL 20 s, a look every 2 s, trust ending 5 s before the expiry):

1. renews the replica's presence lease (``replica:<owner>``) in one statement; the job
   leases it holds live as long as that one does, so a look costs the same for 3 jobs or
   3,000, and a fenced write's share lock on a job row never holds up the renewal. When
   the presence had lapsed (the process was paused, or cut off from the database), every
   job stops and the replica joins again;
2. reads which job rows still name it: one taken over meanwhile is lost, its job
   cancelled at once;
3. counts the live replicas and takes free leases (no owner, or a dead one) up to its
   fair share, a whole integration at a time so that a push and the poll of its feed,
   which trigger each other, stay on one replica; gives back whole integrations beyond
   its share (not while one of their jobs runs), so a replica that joins gets work within
   a few looks;
4. tells the daemon when the stock ledger grew (another replica's sale must be pushed by
   the integrations this one owns).

Trust is local: a lease is trusted until ``start of the look + TTL − margin`` on this
process's monotonic clock, so a delay after the database answered only shortens it. A
running job's cancel scope has that deadline and is pushed forward by each look; a
process that slept past it is cancelled before its next checkpoint.

A replica killed with SIGKILL stops renewing; its presence expires ``ttl`` seconds after
the last renewal and the others take its jobs at their next look: fail-over within
``ttl + poll`` (22 s with the defaults). On a graceful stop the keeper gives everything
back, so the others take over at their next look.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import trio

from marketsync.core import clock
from sqlalchemy import func, select

from marketsync.core.runtime.db_health import describe, is_outage
from marketsync.core.store import Store, leases
from marketsync.core.store.models import StockMovement

log = logging.getLogger(__name__)

#: seconds a lease lasts without renewal: a dead replica's jobs move after at most this
LEASE_TTL = 20.0
#: seconds between two looks (renew, count replicas, take free leases)
LEASE_POLL = 2.0
#: seconds before the expiry at which a replica stops trusting its own lease
TRUST_MARGIN = 5.0

JobKey = tuple[str, str]


def lease_name(key: JobKey) -> str:
    integration, kind = key
    return f"{integration}/{kind}"


def replica_id() -> str:
    """host:pid:random — unique per process, readable in ``status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(eq=False, slots=True)
class _Held:
    token: int
    trusted_until: float
    scopes: set[trio.CancelScope] = field(default_factory=set)


class LeaseKeeper:
    """Holds this replica's share of the job leases and fences its jobs' writes.

    :param keys: every (integration, kind) the configuration runs; all replicas share
        one configuration, so they agree on the set.
    :param on_acquired: called with each key won (the daemon asks that job to run soon:
        the previous owner may have died half-way).
    """

    def __init__(self, store: Store, keys: Iterable[JobKey], *, owner: str | None = None,
                 ttl: float = LEASE_TTL, poll: float = LEASE_POLL,
                 margin: float = TRUST_MARGIN,
                 on_acquired: Callable[[JobKey], None] | None = None,
                 on_stock_moved: Callable[[], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 rng: random.Random | None = None) -> None:
        """``on_stock_moved``: called at a look when the stock ledger grew since the last
        one. A sale imported by one replica moves stock that another replica's
        integrations must push; the in-process trigger cannot reach them, so each replica
        looks at the ledger's newest row with every heartbeat (one indexed query) and
        pushes within a look of the change, as a single daemon does."""
        if not 0 < margin < ttl or not 0 < poll < ttl - margin:
            raise ValueError(f"lease timing: need 0 < poll ({poll}) < ttl ({ttl}) - margin "
                             f"({margin}) and margin > 0")
        self.store = store
        self.owner = owner or replica_id()
        self.ttl, self.poll, self.margin = ttl, poll, margin
        self._keys = {lease_name(key): key for key in keys}
        self._groups: dict[str, list[str]] = {}
        for name, (integration, _) in self._keys.items():
            self._groups.setdefault(integration, []).append(name)
        self._presence_token: int | None = None
        self._held: dict[str, _Held] = {}
        self._running: dict[str, int] = {}
        self._on_acquired = on_acquired
        self._on_stock_moved = on_stock_moved
        self._last_movement: int | None = None
        self._on_error = on_error  #: told of a failed look (the daemon's database health)
        self._rng = rng or random.Random()
        self.live_replicas = 1
        self.takeovers = 0  #: leases won since start
        self.losses = 0  #: leases lost (not given back) since start

    # --- what the daemon asks ---------------------------------------------------------------

    def holds(self, key: JobKey) -> bool:
        """Whether this replica may start ``key``'s job now."""
        held = self._held.get(lease_name(key))
        return held is not None and held.trusted_until > clock.monotonic()

    def owned(self) -> list[JobKey]:
        return sorted(self._keys[name] for name in self._held if name in self._keys)

    @contextmanager
    def fenced(self, key: JobKey) -> Iterator[trio.CancelScope]:
        """Run a job under its lease: writes carry the token, and the run is cancelled
        when trust in the lease ends. Raises ``leases.LeaseLost`` when not held now."""
        name = lease_name(key)
        held = self._held.get(name)
        if held is None or held.trusted_until <= clock.monotonic():
            raise leases.LeaseLost(f"lease {name!r} is not held by {self.owner!r}")
        scope = trio.CancelScope(deadline=held.trusted_until)
        held.scopes.add(scope)
        self._running[name] = self._running.get(name, 0) + 1
        token = leases.current_fence.set(leases.Fence(
            name, self.owner, held.token, idle_limit_ms=max(1000, int(self.ttl * 1000))))
        try:
            with scope:
                yield scope
        finally:
            leases.current_fence.reset(token)
            held.scopes.discard(scope)
            self._running[name] -= 1

    def lost(self, key: JobKey) -> None:
        """A fenced write was refused: forget the lease at once (the look confirms it)."""
        self._drop(lease_name(key), why="a write was refused")

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Look every ``poll`` seconds until cancelled; give everything back on the way out.

        Reports started after the first look, or after the first one that failed because
        the database is away (a daemon started by a reload just as it went): the keeper
        then goes on looking, and the jobs wait for their leases."""
        ensured = started = False
        failed = 0  # looks failed in a row: one line when an outage starts and ends
        failing_since = 0.0
        try:
            while True:
                try:
                    if not ensured:
                        await self.store.run(leases.ensure, list(self._keys))
                        ensured = True
                    await self.look()
                except Exception as error:  # noqa: BLE001 - a database hiccup: trust runs out on its own
                    if not started and not is_outage(error):
                        raise  # a bug before the first look: the daemon's start fails
                    failed += 1
                    if failed == 1:
                        failing_since = clock.monotonic()
                        self._log_first_failure(error)
                    else:
                        log.debug("lease look failed again (%d in a row): %s", failed,
                                  describe(error))
                    if self._on_error is not None:
                        self._on_error(error)
                else:
                    if failed:
                        log.warning("lease looks work again after %d failed over %.0fs",
                                    failed, clock.monotonic() - failing_since)
                        failed = 0
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(self.poll * self._rng.uniform(0.8, 1.0))
        finally:
            with trio.CancelScope(shield=True):
                await self.release_all()

    def _log_first_failure(self, error: BaseException) -> None:
        """The database being away is expected, and says so in one line; anything else is
        a bug and keeps its traceback (once: the next looks fail the same way)."""
        if is_outage(error):
            log.warning("lease look failed: %s; jobs stop when trust in their leases ends "
                        "(%.0fs), and the keeper looks every %.1fs until the database "
                        "answers", describe(error), self.ttl - self.margin, self.poll)
        else:
            log.warning("lease look failed; trying again every %.1fs", self.poll,
                        exc_info=error)

    async def look(self) -> None:
        """Heartbeat, check what is still ours, count replicas, take or give back.

        The usual look is one unit of work (``leases.look``); joining again after a lapse
        and taking or giving back leases add their own."""
        started = clock.monotonic()
        extra = _latest_movement if self._on_stock_moved is not None else None
        seen = None
        if self._presence_token is not None:
            seen = await self.store.run(leases.look, self.owner, self._presence_token,
                                        self.ttl, extra)
        if seen is None or not seen.alive:
            if self._presence_token is not None:
                # one line for all of them: a node of 500 integrations holds ~1,500 leases
                integrations = sorted({self._keys[n][0] for n in self._held if n in self._keys})
                shown = ", ".join(integrations[:10]) + (" …" if len(integrations) > 10 else "")
                log.warning("this replica's presence lapsed (paused or cut off from the "
                            "database for over %.0fs): lost the lease of its %d job(s) on %s; "
                            "they stop until it is back", self.ttl, len(self._held),
                            shown or "no integration")
                for name in list(self._held):
                    self._drop(name, why="this replica was not alive for a while", quiet=True)
            self._presence_token = await self.store.run(leases.join, self.owner, self.ttl)
            seen = await self.store.run(leases.look, self.owner, self._presence_token,
                                        self.ttl, extra)
        trusted_until = started + self.ttl - self.margin
        rows = seen.owned
        for name in list(self._held):
            if rows.get(name) != self._held[name].token:
                self._drop(name, why="another replica took it over")
        regained = []
        for name, token in rows.items():
            held = self._held.get(name)
            if held is None:
                # still ours in the table (nobody took it while we were away): same token,
                # so no write of anyone else came in between
                held = self._held[name] = _Held(token, 0.0)
            if held.trusted_until <= started and name in self._keys:
                regained.append(self._keys[name])
            held.trusted_until = trusted_until
            for scope in held.scopes:
                scope.deadline = trusted_until
        if self._on_acquired is not None:
            for key in regained:
                self._on_acquired(key)
        self.live_replicas = max(1, seen.live)
        await self._balance(trusted_until)
        if self._on_stock_moved is not None:
            if self._last_movement is not None and seen.extra != self._last_movement:
                self._on_stock_moved()
            self._last_movement = seen.extra

    async def _balance(self, trusted_until: float) -> None:
        mine = {self._keys[name][0] for name in self._held if name in self._keys}
        share = math.ceil(len(self._groups) / self.live_replicas)
        if len(mine) > share:
            idle = [g for g in sorted(mine)
                    if not any(self._running.get(name) for name in self._groups[g])]
            give_back = idle[:len(mine) - share]
            if give_back:
                names = [name for g in give_back for name in self._groups[g]
                         if name in self._held]
                await self.store.run(leases.give_back, self.owner, names)
                for name in names:
                    self._held.pop(name, None)
                log.info("gave back %d integration(s) for the other %d replica(s): %s",
                         len(give_back), self.live_replicas - 1, ", ".join(give_back))
            return
        incomplete = [g for g in mine if any(n not in self._held for n in self._groups[g])]
        if len(mine) >= share and not incomplete:
            return  # the usual look: a heartbeat, a read and a count
        missing = [name for name in self._keys if name not in self._held]
        free = await self.store.read(leases.free, missing)
        if not free:
            return
        # integrations partly ours first (finish the set), then free ones in random order
        # so that replicas looking at the same moment rarely reach for the same ones
        others = [g for g in self._groups
                  if g not in mine and any(name in free for name in self._groups[g])]
        self._rng.shuffle(others)
        wanted = incomplete + others[:max(0, share - len(mine))]
        names = [name for g in wanted for name in self._groups[g] if name in free]
        if not names:
            return
        won = await self.store.run(leases.take_free, names, self.owner)
        for name, token in won.items():
            self._held[name] = _Held(token, trusted_until)
        if won:
            self.takeovers += len(won)
            log.info("took %d job lease(s): %s", len(won), ", ".join(sorted(won)))
            if self._on_acquired is not None:
                for name in sorted(won):
                    self._on_acquired(self._keys[name])

    async def release_all(self) -> None:
        """Graceful stop: give every lease back so that peers take over at their next look."""
        self._held.clear()
        token, self._presence_token = self._presence_token, None
        if token is None:
            return
        try:
            await self.store.run(leases.leave, self.owner, token)
        except Exception:  # noqa: BLE001 - they expire with the presence
            log.warning("could not give the job leases back; they move in %.0fs", self.ttl,
                        exc_info=True)

    def _drop(self, name: str, *, why: str, quiet: bool = False) -> None:
        held = self._held.pop(name, None)
        if held is None:
            return
        self.losses += 1
        for scope in held.scopes:
            scope.cancel()
        (log.debug if quiet else log.warning)("lost the lease %s (token %d): %s; its job stops here", name, held.token,
                    why)


def _latest_movement(session) -> int:
    return session.execute(select(func.coalesce(func.max(StockMovement.id), 0))).scalar_one()
