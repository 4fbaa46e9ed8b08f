"""The lease table under concurrent acquirers: threads, each with its own connection pool.

Each thread is a replica: it tries to take the lease, and while it believes it holds it
writes fenced journal rows (``check`` first in the same transaction), renews, sometimes
"pauses" past the TTL, sometimes releases. The threads run on the real clock with a short
TTL, so the interleavings are the scheduler's and differ from run to run; whatever they
are, these must hold (research/wave2.md §3.5):

- in commit order, the journal's tokens never go backwards: no write of an old owner
  lands after a write of a newer one;
- one token, one owner; no token is handed out twice;
- the contention was real: several replicas held the lease in turn.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

from sqlalchemy import text

from marketsync.core.store import Store, leases

NAME = "amazon-de/push_stock"
TTL = 0.15
THREADS = 6
SECONDS = 2.0
WRITES = 40
LIMIT = 20.0


def _journal(session, owner: str, token: int) -> None:
    session.execute(text("INSERT INTO lease_journal (owner, token) VALUES (:o, :t)"),
                    {"o": owner, "t": token})


def _fenced_write(store: Store, owner: str, token: int) -> bool:
    def work(session):
        leases.check(session, NAME, owner, token)
        _journal(session, owner, token)

    try:
        store.run_blocking(work)
    except leases.LeaseLost:
        return False
    return True


def _done(stop: float, report: dict) -> bool:
    """At least SECONDS and WRITES (a loaded machine gets fewer per second), at most LIMIT."""
    now = time.monotonic()
    return now > stop + LIMIT - SECONDS or (now > stop and len(report["written"]) >= WRITES)


def _replica(url: str, owner: str, seed: int, stop: float, report: dict) -> None:
    rng = random.Random(seed)
    store = Store(url)
    try:
        while not _done(stop, report):
            token = store.run_blocking(leases.acquire, NAME, owner, TTL)
            if token is None:
                time.sleep(rng.uniform(0.0, TTL / 3))
                continue
            report["acquired"].append((owner, token))
            for _ in range(rng.randint(1, 8)):
                if rng.random() < 0.15:
                    time.sleep(TTL * rng.uniform(1.2, 2.0))  # paused past the expiry
                    report["paused"].append((owner, token))
                if not _fenced_write(store, owner, token):
                    report["refused"].append((owner, token))
                    break
                report["written"].append((owner, token))
                if not store.run_blocking(leases.renew, NAME, owner, token, TTL):
                    break
                time.sleep(rng.uniform(0.0, TTL / 4))
            else:
                if rng.random() < 0.5:
                    store.run_blocking(leases.release, NAME, token)
    finally:
        store.close()


def test_concurrent_acquirers_never_write_out_of_token_order(store_url: str) -> None:
    with Store(store_url) as setup:
        setup.upgrade()
        setup.run_blocking(lambda s: s.execute(text(
            "CREATE TABLE lease_journal (id INTEGER PRIMARY KEY "
            + ("AUTOINCREMENT" if setup.is_sqlite else "GENERATED ALWAYS AS IDENTITY")
            + ", owner TEXT NOT NULL, token BIGINT NOT NULL)")))
    report: dict[str, list] = defaultdict(list)
    stop = time.monotonic() + SECONDS
    seed = random.randrange(1 << 30)
    threads = [threading.Thread(target=_replica,
                                args=(store_url, f"replica-{n}", seed + n, stop, report))
               for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with Store(store_url) as check:
        rows = check.run_blocking(lambda s: s.execute(text(
            "SELECT owner, token FROM lease_journal ORDER BY id")).all())
    where = f"(seed {seed})"
    assert len(rows) > 20, f"too little contention to say anything {where}"
    tokens = [token for _, token in rows]
    assert tokens == sorted(tokens), f"a stale owner wrote after a newer one {where}"
    owners: dict[int, set[str]] = defaultdict(set)
    for owner, token in rows:
        owners[token].add(owner)
    assert all(len(o) == 1 for o in owners.values()), f"a token with two owners {where}"
    acquired = [token for _, token in report["acquired"]]
    assert len(acquired) == len(set(acquired)), f"a token handed out twice {where}"
    assert len({owner for owner, _ in report["acquired"]}) > 1, f"no takeover happened {where}"
