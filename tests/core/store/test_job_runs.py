"""Job health is persisted so another process can show it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import trio

from marketsync.core import clock
from marketsync.core.store import Store, job_runs
from marketsync.core.store import integrations as rows

UTC = timezone.utc
START = datetime(2026, 3, 1, tzinfo=UTC)


async def test_started_finished_failures_and_recovery(store: Store, autojump_clock) -> None:
    clock.set_start(START)
    integration = await store.run(
        lambda s: rows.ensure_integration(
            s, alias="amazon-de", channel="amazon", account="acme", marketplace="DE"
        )
    )
    await store.run(job_runs.started, integration, "import_orders")
    await trio.sleep(10)
    assert await store.run(job_runs.finished, integration, "import_orders", error="timeout") == 1
    assert await store.run(job_runs.finished, integration, "import_orders", error="HTTP 503") == 2
    [failing] = await store.read(job_runs.health)
    assert (failing.alias, failing.kind, failing.consecutive_failures) == ("amazon-de", "import_orders", 2)
    assert failing.last_error == "HTTP 503" and failing.last_success is None
    assert failing.last_started == START

    await trio.sleep(50)
    next_run = START + timedelta(minutes=5)
    assert await store.run(
        job_runs.finished, integration, "import_orders", next_run_at=next_run
    ) == 0
    [healthy] = await store.read(job_runs.health, integration)
    assert healthy.last_success == START + timedelta(seconds=60)
    assert healthy.consecutive_failures == 0 and healthy.next_run_at == next_run
    assert healthy.last_error == "HTTP 503"  # kept for people, success is what counts


async def test_health_lists_every_job_by_alias_and_kind(store: Store) -> None:
    def setup(session) -> None:
        for alias in ("amazon-fr", "amazon-de"):
            integration = rows.ensure_integration(
                session, alias=alias, channel="amazon", account="acme", marketplace=alias[-2:]
            )
            for kind in ("push_stock", "import_orders"):
                job_runs.started(session, integration, kind)

    await store.run(setup)
    assert [(h.alias, h.kind) for h in await store.read(job_runs.health)] == [
        ("amazon-de", "import_orders"), ("amazon-de", "push_stock"),
        ("amazon-fr", "import_orders"), ("amazon-fr", "push_stock"),
    ]


async def test_long_errors_are_cut(store: Store) -> None:
    integration = await store.run(
        lambda s: rows.ensure_integration(
            s, alias="amazon-de", channel="amazon", account="acme", marketplace="DE"
        )
    )
    await store.run(job_runs.finished, integration, "import_orders", error="x" * 10_000)
    [health] = await store.read(job_runs.health)
    assert len(health.last_error) == job_runs.MAX_ERROR_CHARS
