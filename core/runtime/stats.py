"""What the daemon counts while it runs: calls, throttles, job runs, records, push latency.

Kept in process and read at scrape time by ``core.web.metrics`` and by ``status``; one
instance per Daemon, so tests can run several daemons in one process.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

from marketsync.core import clock

from marketsync.core.runtime.http import CallRecord

#: Push latency buckets in seconds: the target is p95 ≤ 30 s.
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class PushLatency:
    """A histogram of "stock changed → accepted by the channel", per integration."""

    #: samples older than this are dropped: the page shows the last hour and day
    KEEP = 86400.0

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        #: (clock.monotonic() when observed, seconds) for the page's p50/p95
        self.recent: deque[tuple[float, float]] = deque(maxlen=100_000)

    def window(self, seconds: float) -> tuple[float | None, float | None, int]:
        """(p50, p95, count) of the latencies observed in the last ``seconds``."""
        since = clock.monotonic() - seconds
        values = sorted(v for at, v in self.recent if at >= since)
        if not values:
            return None, None, 0

        def rank(q: float) -> float:
            return values[max(math.ceil(q * len(values)) - 1, 0)]

        return rank(0.5), rank(0.95), len(values)

    def observe(self, alias: str, seconds: float) -> None:
        now = clock.monotonic()
        self.recent.append((now, seconds))
        while self.recent and self.recent[0][0] < now - self.KEEP:
            self.recent.popleft()
        counts = self.counts.setdefault(alias, [0] * (len(LATENCY_BUCKETS) + 1))
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[alias] = self.sums.get(alias, 0.0) + seconds



@dataclass
class Stats:
    """Counters for status and /metrics, kept in process (prometheus-client reads them)."""

    calls: Counter = field(default_factory=Counter)  #: (operation, status) -> count
    throttled: Counter = field(default_factory=Counter)  #: operation -> 429s seen
    jobs: Counter = field(default_factory=Counter)  #: (alias, kind, ok) -> count
    records: Counter = field(default_factory=Counter)  #: (alias, what) -> count
    push_latency: PushLatency = field(default_factory=PushLatency)
    valve_trips: Counter = field(default_factory=Counter)  #: alias -> pushes held by the valve
    #: alias -> records in quarantine, as last read from the database (at each scrape)
    quarantined: dict[str, int] = field(default_factory=dict)
    #: products whose open orders hold more than is on hand, as last read (at each scrape)
    short_products: int = 0

    def on_call(self, record: CallRecord) -> None:
        self.calls[(record.operation or "-", record.status)] += 1
        if record.throttled:
            self.throttled[record.operation or "-"] += 1
