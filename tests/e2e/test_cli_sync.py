"""``marketsync sync ALIAS KIND``: a whole backfill or first product import from the
command line, going on over as many runs as it takes, with a progress line (issue 6)."""

from __future__ import annotations

import io
import re

import pytest
import trio
from sqlalchemy import func, select

from marketsync.core.runtime import jobs
from marketsync.plugins.amazon import order_report

from marketsync.core.cli import oneshot
from marketsync.core.store.models import Listing, Order

from .conftest import SCENARIO
from .test_daemon import visible_orders


class Terminal(io.StringIO):
    """What the command writes to when a person is watching."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def scenario_changes():
    # a few hundred US orders visible at the start (several searchOrders pages), with the
    # stock to sell them
    stocked = [{**item, **({"fba_quantity": 10**6} if "fba_quantity" in item
                          else {"mfn_quantity": 10**6})} for item in SCENARIO["catalog"]]
    return {"catalog": stocked,
            "generator": {**SCENARIO["generator"], "orders_per_day": {"US": 300}}}


def _stored_orders(session):
    ids = set(session.execute(select(Order.channel_order_id)).scalars())
    return ids, session.execute(select(func.count()).select_from(Order)).scalar()


async def test_a_backfill_goes_on_over_several_runs_until_every_order_is_in(
        make_daemon, world, e2e_clock, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_PAGES_PER_RUN", 1)  # the daemon would hand over after each page
    # the searchOrders backfill (the fallback of a failed report); the report path's own
    # sync is tests/e2e/test_order_backfill.py
    monkeypatch.setattr(order_report, "ENABLED", False)
    daemon = make_daemon(integrations=[("amazon-us", "na", "US")])
    expected = visible_orders(world, {"US"})
    screen = Terminal()

    message = await oneshot.sync(daemon, "amazon-us", "import_orders", stream=screen)

    ids, total = await daemon.store.read(_stored_orders)
    assert len(expected) > 2 * 100  # more than two pages
    assert expected <= ids and total == len(ids)
    found = re.fullmatch(r"amazon-us: import_orders done: ([\d,]+) record\(s\) in (\d+) run\(s\)",
                         message)
    assert found, message
    records, runs = int(found[1].replace(",", "")), int(found[2])
    assert records >= len(expected) and runs > 1
    last_line = screen.getvalue().rstrip("\n").split("\r")[-1]
    assert last_line.startswith("amazon-us import_orders")
    assert f"{records:,} done" in last_line
    assert screen.getvalue().endswith("\n")  # later output starts on a clean line


async def test_a_first_product_import_waits_for_the_report_and_draws_nothing_when_piped(
        make_daemon, world, e2e_clock):
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    piped = io.StringIO()  # not a terminal: a cron mail or journald gets no bar

    message = await oneshot.sync(daemon, "amazon-de", "import_products", stream=piped)

    listed = await daemon.store.read(lambda session: set(session.execute(
        select(Listing.channel_sku)).scalars()))
    assert {"MUG-1", "KETTLE-1"} <= listed
    assert re.fullmatch(r"amazon-de: import_products done: \d+ record\(s\) in (\d+) run\(s\)",
                        message), message
    assert int(message.rsplit(" in ", 1)[1].split()[0]) > 1  # asked again while Amazon prepared it
    assert piped.getvalue() == ""


async def test_a_job_the_channel_does_not_run_is_named(make_daemon, world, e2e_clock):
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    message = await oneshot.sync(daemon, "amazon-de", "import_everything")
    assert message.startswith("amazon-de: no job 'import_everything'")
    assert "import_orders" in message


async def test_a_report_that_never_comes_ends_the_wait_with_a_clear_line(
        make_daemon, world, e2e_clock, monkeypatch):
    async def never_ready(*args, **kwargs):
        return jobs.ImportRun(items=0, done=False, waiting=True)

    monkeypatch.setattr(jobs, "run_import", never_ready)
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    started = trio.current_time()

    message = await oneshot.sync(daemon, "amazon-de", "import_products")

    waited = trio.current_time() - started
    assert oneshot.PREPARING_LIMIT <= waited < oneshot.PREPARING_LIMIT + 60
    assert message == ("amazon-de: import_products stopped after 0 record(s): the channel has "
                       "been preparing the data for 60 min; the daemon (or the next sync) goes "
                       "on following it")
