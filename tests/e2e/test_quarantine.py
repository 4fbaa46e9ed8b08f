"""Malformed orders end to end: quarantined one by one, visible, and without buyer data.

The daemon runs on the simulator with a PII key, a SQLite file and JSON logs at DEBUG;
orders of every malformed kind the simulator can make arrive between good ones. After
the run the raw database file (and its WAL) and the logs are searched for every buyer
name, e-mail and street the simulator generated: buyer data of good orders is sealed
(AES-GCM), so any hit is a leak — from the quarantine or anywhere else.
"""

from __future__ import annotations

import io
import json
import logging
import re

import httpx
import pytest
import trio
from sqlalchemy import select

from prometheus_client.parser import text_string_to_metric_families

from marketsync.core.cli import oneshot
from marketsync.core.runtime import logs
from marketsync.core.runtime.status import collect, render
from marketsync.core.store import quarantine
from marketsync.core.store.models import Order
from marketsync.core.web.server import create_web_app
from marketsync.plugins.amazon.sandbox import create_app
from marketsync.plugins.amazon.sandbox.control import MALFORMATIONS

from .conftest import SANDBOX, SCENARIO

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def scenario_changes():
    """Enough stock that every order the test places can be placed."""
    catalog = [dict(entry) for entry in SCENARIO["catalog"]]
    for entry in catalog:
        for key in ("mfn_quantity", "fba_quantity"):
            if key in entry:
                entry[key] = 5000
    return {"catalog": catalog}


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    logs.setup("json", "DEBUG", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if getattr(handler, "_marketsync", False):
            root.removeHandler(handler)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def buyer_texts(world) -> list[str]:
    texts = set()
    for order in world.orders.values():
        texts.update(v for v in (order.buyer.get("buyerName"), order.buyer.get("buyerEmail"),
                                 order.address.get("addressLine1")) if v)
    return sorted(texts)


async def test_malformed_orders_are_quarantined_alone_and_no_buyer_data_is_kept(
        make_daemon, world, e2e_clock, captured, tmp_path):
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url=SANDBOX)
    bad: dict[str, str] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(600)
        for kind in MALFORMATIONS:
            for fulfilled_by in ("MERCHANT", "AMAZON"):
                placed = await control.post("/_sandbox/orders", json={
                    "marketplace": "DE", "malformed": kind, "fulfilledBy": fulfilled_by,
                    "items": {"MUG-1" if fulfilled_by == "MERCHANT" else "SPORK-FBA": 1}})
                assert placed.status_code == 201, placed.text
                bad[placed.json()["orderId"]] = kind
            good = await control.post("/_sandbox/orders", json={"marketplace": "DE",
                                                                 "items": {"MUG-1": 1}})
            assert good.status_code == 201
        await trio.sleep(3 * 3600)  # paid, visible, imported (more than once: overlap)
        report = await daemon.store.read(collect)
        web = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_web_app(daemon), client=("127.0.0.1", 40000)),
            base_url="http://127.0.0.1:8470")
        metrics = (await web.get("/metrics")).text
        page = (await web.get("/")).text
        await web.aclose()
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    records = await daemon.store.read(quarantine.list_records)
    stored = set(await daemon.store.read(
        lambda s: s.execute(select(Order.channel_order_id)).scalars().all()))
    visible_good = {o.order_id for o in world.orders.values()
                    if o.marketplace_id == "A1PA6795UKMFR9" and o.order_id not in bad
                    and o.visible(world.now()) is not None}

    # every bad order is quarantined once, every good one imported: nothing blocked
    assert {r.record_id for r in records} == set(bad)
    assert all(r.times_seen >= 1 for r in records)
    assert not stored & set(bad)
    assert visible_good and visible_good <= stored
    # visible: status, its text form and the gauge count them; one warning per record
    [item] = report["integrations"]
    assert item["quarantined"] == len(bad) and len(item["quarantine_newest"]) == 3
    assert f"quarantined: {len(bad)} record(s)" in render(report)
    gauge = {s.labels["integration"]: s.value
             for f in text_string_to_metric_families(metrics)
             if f.name == "marketsync_quarantined_records" for s in f.samples}
    assert gauge == {"amazon-de": len(bad)}
    assert f"{len(bad)} record(s) in quarantine" in page
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    warned = [e for e in entries if e["level"] == "warning" and "quarantined:" in e["message"]]
    assert sorted(re.search(r"record (\S+) quarantined", e["message"]).group(1)
                  for e in warned) == sorted(bad)

    # no buyer data anywhere: not in the database file, not in the logs
    texts = buyer_texts(world)
    assert len(texts) > 30
    files = [p for p in tmp_path.iterdir() if p.name.startswith("marketsync.sqlite")]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"import_orders" in raw  # the file holds the quarantine rows searched
    in_db = [t for t in texts if t.encode() in raw]
    in_db += [key for key in ("buyerName", "buyerEmail", "addressLine1", "postalCode")
              if key.encode() in raw]
    assert not in_db, f"buyer data in the database file: {in_db[:5]}"
    output = captured.getvalue()
    in_logs = [t for t in texts if t in output]
    assert not in_logs, f"buyer data in the logs: {in_logs[:5]}"


async def test_retry_imports_a_record_the_channel_now_sends_well(make_daemon, world, e2e_clock):
    """`quarantine retry` asks the channel for the record again: once it maps it is
    imported (reserving stock) and leaves the quarantine; while it does not, it stays."""
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE")])
    control = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                base_url=SANDBOX)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        ids = []
        for kind in ("string_for_object", "unknown_enum"):
            placed = await control.post("/_sandbox/orders", json={
                "marketplace": "DE", "items": {"MUG-1": 1}, "malformed": kind})
            ids.append(placed.json()["orderId"])
        await trio.sleep(3600)
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    records = {r.record_id: r for r in await daemon.store.read(quarantine.list_records)}
    assert set(ids) <= set(records)
    world.orders[ids[0]].malformed = None  # what an upgrade of the mapping amounts to
    command = make_daemon(integrations=[("amazon-de", "eu", "DE")])  # as the CLI builds it
    fixed = await oneshot.retry_quarantined(command, records[ids[0]].id)
    still = await oneshot.retry_quarantined(command, records[ids[1]].id)
    missing = await oneshot.retry_quarantined(command, 999_999)
    left = {r.record_id for r in await command.store.read(quarantine.list_records)}
    stored = set(await command.store.read(
        lambda s: s.execute(select(Order.channel_order_id)).scalars().all()))
    assert "imported" in fixed and ids[0] in stored and ids[0] not in left
    assert "still cannot be mapped" in still and ids[1] in left and ids[1] not in stored
    assert "no quarantined record #999999" in missing
