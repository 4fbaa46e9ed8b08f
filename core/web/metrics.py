"""Prometheus metrics, computed at scrape time from what the daemon already counts.

A custom collector (rather than module-level Counter objects) keeps every number tied to
one Daemon instance, so tests can run several daemons in one process and a scrape always
agrees with ``status``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from marketsync.core.runtime.stats import LATENCY_BUCKETS

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.runtime.daemon import Daemon

class DaemonCollector:
    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon

    def collect(self) -> Iterator:
        daemon, stats = self.daemon, self.daemon.stats
        calls = CounterMetricFamily("marketsync_api_calls", "Channel API calls by operation and status",
                                    labels=["operation", "status"])
        for (operation, status), count in sorted(stats.calls.items(), key=str):
            calls.add_metric([operation, str(status)], count)
        yield calls
        throttled = CounterMetricFamily("marketsync_api_throttled", "Calls answered 429",
                                        labels=["operation"])
        for operation, count in sorted(stats.throttled.items()):
            throttled.add_metric([operation], count)
        yield throttled
        runs = CounterMetricFamily("marketsync_job_runs", "Job runs by outcome",
                                   labels=["integration", "kind", "outcome"])
        for (alias, kind, ok), count in sorted(stats.jobs.items(), key=str):
            runs.add_metric([alias, kind, "ok" if ok else "failed"], count)
        yield runs
        records = CounterMetricFamily("marketsync_records_imported", "Records imported by job",
                                      labels=["integration", "kind"])
        for (alias, kind), count in sorted(stats.records.items()):
            records.add_metric([alias, kind], count)
        yield records
        tokens = GaugeMetricFamily("marketsync_bucket_tokens", "Tokens left per rate-limit bucket",
                                   labels=["bucket"])
        waiting = GaugeMetricFamily("marketsync_bucket_waiting", "Calls waiting per bucket",
                                    labels=["bucket"])
        for bucket in daemon.governor.snapshot():
            name = "/".join(map(str, bucket.key))
            tokens.add_metric([name], bucket.tokens)
            waiting.add_metric([name], bucket.waiting)
        yield tokens
        yield waiting
        database = GaugeMetricFamily("marketsync_database_up",
                                     "0 while the database cannot be written (jobs paused)")
        database.add_metric([], 1.0 if daemon.database.up else 0.0)
        yield database
        outages = CounterMetricFamily("marketsync_database_outages",
                                      "Times the database became unavailable")
        outages.add_metric([], daemon.database.outages)
        yield outages
        states = GaugeMetricFamily("marketsync_integration_live", "1 when the integration is LIVE",
                                   labels=["integration", "state"])
        for alias, runner in sorted(daemon.runners.items()):
            states.add_metric([alias, runner.state.value], 1.0 if runner.state.value == "LIVE" else 0.0)
        yield states
        trips = CounterMetricFamily("marketsync_push_valve_trips",
                                    "Stock pushes held by the safety valve until accepted",
                                    labels=["integration"])
        for alias, count in sorted(stats.valve_trips.items()):
            trips.add_metric([alias], count)
        yield trips
        consumers = getattr(daemon, "notification_consumers", {})
        handled = CounterMetricFamily("marketsync_notifications",
                                      "Queue messages by outcome (acted, fetched, fetch_failed, "
                                      "unrouted, duplicate, bad, foreign)",
                                      labels=["account", "outcome"])
        missed = GaugeMetricFamily("marketsync_notifications_missed",
                                   "Orders polling stored that no notification announced",
                                   labels=["account"])
        for account, consumer in sorted(consumers.items()):
            for outcome in ("acted", "fetched", "fetch_failed", "unrouted", "duplicate", "bad",
                            "foreign", "failed_polls"):
                handled.add_metric([account, outcome], consumer.counts[outcome])
            missed.add_metric([account], consumer.missed)
        yield handled
        yield missed
        quarantined = GaugeMetricFamily("marketsync_quarantined_records",
                                        "Records in quarantine (not imported) per integration",
                                        labels=["integration"])
        for alias, count in sorted(stats.quarantined.items()):
            quarantined.add_metric([alias], count)
        yield quarantined
        short = GaugeMetricFamily("marketsync_products_short",
                                  "Products whose open orders hold more than is on hand "
                                  "(offered as 0; `marketsync stock show` says which)")
        short.add_metric([], stats.short_products)
        yield short
        latency = HistogramMetricFamily("marketsync_push_latency_seconds",
                                        "Stock push sent to accepted by the channel (bench/push_latency.py measures change to acceptance)",
                                        labels=["integration"])
        for alias, counts in sorted(stats.push_latency.counts.items()):
            buckets = [(str(float(bound)), counts[i]) for i, bound in enumerate(LATENCY_BUCKETS)]
            buckets.append(("+Inf", counts[-1]))
            latency.add_metric([alias], buckets, stats.push_latency.sums[alias])
        yield latency
