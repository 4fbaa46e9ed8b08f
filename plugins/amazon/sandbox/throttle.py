"""Amazon's token buckets, refilled lazily from the world clock.

SP-API limits each (selling-partner account, application, operation) with a bucket of
``burst`` tokens refilled at ``rate`` per second (usage-plans.tsv). Refilling on demand
from the timestamps of calls (as aiolimiter does) needs no background task and is exact
under trio's MockClock. Accounts are regional, so the marketplaces of one account share
a bucket by construction. The JSON_LISTINGS_FEED's per-region "5 per 5 minutes" is a
sliding window, offered here as ``window_allows`` for the feeds half.
"""

from __future__ import annotations

import csv
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

PLANS_FILE = Path(__file__).parent / "data" / "usage-plans.tsv"


@dataclass(frozen=True)
class Plan:
    api: str
    version: str
    method: str
    path: str
    operation: str
    rate: float
    burst: int

    @property
    def key(self) -> str:
        return f"{self.api}/{self.version}:{self.operation}"


@dataclass
class Bucket:
    tokens: float
    updated: datetime


def load_plans(path: Path = PLANS_FILE) -> dict[str, Plan]:
    """Plans by name: ``operationId``, ``api:operationId`` and ``api/version:operationId``.

    An operationId used by several APIs (``getOrder``: Orders v0, Orders 2026-01-01 and
    MCF 2026-07-04) resolves, unqualified, to the Orders API's newest version; the others
    must be named with their api (``fulfillmentOutbound:getOrder``, ``orders/v0:getOrder``).
    Operations without a published plan are absent (not throttled).
    """
    plans: dict[str, Plan] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if not row["rate_rps"]:
                continue
            plan = Plan(
                api=row["api"],
                version=row["version"],
                method=row["method"],
                path=row["path"],
                operation=row["operationId"],
                rate=float(row["rate_rps"]),
                burst=int(row["burst"]),
            )
            plans[plan.key] = plan
            plans[f"{plan.api}:{plan.operation}"] = _prefer(plans.get(f"{plan.api}:{plan.operation}"), plan)
            plans[plan.operation] = _prefer(plans.get(plan.operation), plan)
    return plans


def _prefer(old: Plan | None, new: Plan) -> Plan:
    if old is None:
        return new
    rank = lambda p: (p.api == "orders", not p.version.startswith("v"), p.version)  # noqa: E731  dated > v0
    return new if rank(new) > rank(old) else old


class Throttle:
    """Every bucket of the simulated Amazon, keyed by (seller id, plan key)."""

    def __init__(self, plans: dict[str, Plan] | None = None) -> None:
        self.plans = plans if plans is not None else load_plans()
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.windows: dict[str, deque[datetime]] = {}

    def plan(self, operation: str) -> Plan | None:
        return self.plans.get(operation)

    def take(self, seller_id: str, operation: str, now: datetime) -> float | None | bool:
        """Charge one token: the plan's rate when allowed, ``False`` when throttled,
        ``None`` when the operation has no usage plan (never throttled)."""
        plan = self.plans.get(operation)
        if plan is None:
            return None
        key = (seller_id, plan.key)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(tokens=float(plan.burst), updated=now)
        elapsed = max(0.0, (now - bucket.updated).total_seconds())
        bucket.tokens = min(float(plan.burst), bucket.tokens + elapsed * plan.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return plan.rate

    def tokens(self, seller_id: str, operation: str, now: datetime) -> float | None:
        """What is left in a bucket at ``now`` (for tests and /_sandbox/ inspection)."""
        plan = self.plans.get(operation)
        if plan is None:
            return None
        bucket = self.buckets.get((seller_id, plan.key))
        if bucket is None:
            return float(plan.burst)
        elapsed = max(0.0, (now - bucket.updated).total_seconds())
        return min(float(plan.burst), bucket.tokens + elapsed * plan.rate)

    def window_allows(
        self, key: str, now: datetime, *, limit: int = 5, window: timedelta = timedelta(minutes=5)
    ) -> bool:
        """Sliding-window limit (e.g. JSON_LISTINGS_FEED: 5 per 5 minutes per region):
        records and allows the event when fewer than ``limit`` happened in ``window``."""
        events = self.windows.setdefault(key, deque())
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) >= limit:
            return False
        events.append(now)
        return True
