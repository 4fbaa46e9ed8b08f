"""What the status page shows and offers: pictures, queues, quarantine, Connect."""

from __future__ import annotations

import re

import trio

from marketsync.core.store import quarantine
from marketsync.core.store.integrations import integration_id
from marketsync.core.web.server import create_web_app

from .test_guard import client_for, csrf_of
from .test_server import e2e_clock, make_daemon, world  # noqa: F401 - fixtures


async def test_the_page_draws_orders_latency_and_rate_budget(make_daemon, e2e_clock):
    """After a few hours of imports and two pushes: 24 hourly bars summing to the orders
    bought in the last day, p50/p95 of the pushes in the last hour, a budget bar per bucket."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(3 * 3600)
        daemon.stats.push_latency.observe("amazon-uk", 4.0)
        daemon.stats.push_latency.observe("amazon-uk", 40.0)
        async with client_for(create_web_app(daemon)) as client:
            page = (await client.get("/")).text
            report = (await client.get("/", headers={"accept": "application/json"})).json()
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    bars = re.findall(r"<title>\d\d:00 UTC: (\d+) order\(s\)</title>", page)
    assert len(bars) == 24
    assert [int(b) for b in bars] == report["orders_per_hour"]
    assert sum(report["orders_per_hour"]) > 0
    assert f"Orders per hour, last 24 h ({sum(report['orders_per_hour'])} in all)" in page
    assert "last hour: p50 4 s, p95 40 s over 2 push(es)" in page
    assert "id='latency-chart'" in page
    budget = page.split('id="buckets"')[1]
    assert budget.count("class='budget'") == len(daemon.governor.snapshot())
    assert "searchOrders" in budget and "eu" in budget


async def test_queues_and_quarantine_have_counts_and_a_list(make_daemon, e2e_clock):
    """A quarantined record is counted on its integration's card with a link to a list
    that shows its reason (escaped)."""
    daemon = make_daemon()
    await daemon.prepare()

    def bad_record(session):
        quarantine.add(session, integration_id(session, "amazon-uk"), "orders",
                       "305-0000000-0000001", "<b>orderItems is missing</b>", {"x": 1})
    await daemon.store.run(bad_record)
    async with client_for(create_web_app(daemon)) as client:
        page = (await client.get("/")).text
        listing = await client.get("/integrations/amazon-uk/quarantine")
        unknown = await client.get("/integrations/nope/quarantine")
    card = page.split("data-alias='amazon-uk'")[1].split("</article>")[0]
    assert "<dt>quarantined records</dt><dd><a href='/integrations/amazon-uk/quarantine'>1</a>" \
        in card and "1 record(s) in quarantine" in card
    assert "<dt>shipments to confirm</dt><dd>0</dd>" in card
    assert listing.status_code == 200
    assert "305-0000000-0000001" in listing.text and "&lt;b&gt;orderItems" in listing.text
    assert unknown.status_code == 404


async def test_connect_starts_the_consent_flow_from_the_page(make_daemon, e2e_clock):
    """Reconnect posts, with the page's CSRF token, and answers a page that sends the
    browser on to the simulator's consent URL with a one-time state; without pii.key it
    says why instead."""
    daemon = make_daemon()
    await daemon.prepare()
    app = create_web_app(daemon)
    async with client_for(app) as client:
        page = (await client.get("/")).text
        answer = await client.post("/integrations/amazon-uk/connect",
                                   data={"csrf": csrf_of(page)},
                                   headers={"origin": "http://127.0.0.1:8470"})
        forged = await client.post("/integrations/amazon-uk/connect",
                                   headers={"origin": "http://evil.example"})
    assert "action='/integrations/amazon-uk/connect'" in page and ">Reconnect</button>" in page
    assert answer.status_code == 200
    target = re.search(r"content='0;url=([^']+)'", answer.text).group(1)
    assert target.startswith("http://sandbox.local/apps/authorize/consent?")
    assert "state=" in target and "redirect_uri=http%3A%2F%2F127.0.0.1%3A8470" in target
    assert forged.status_code == 403


async def test_held_pushes_are_on_the_card_with_what_releases_them(make_daemon, e2e_clock):
    """A push held by the safety valve shows on its integration's card with the reason
    and the commands that release it; the other integration shows no hold."""
    from marketsync.core.store.models import IntegrationRow

    daemon = make_daemon()
    await daemon.prepare()

    def hold(session):
        row = session.get(IntegrationRow, integration_id(session, "amazon-de"))
        row.push_hold, row.push_hold_reason = "valve", "would zero 12 of 20 listings"
    await daemon.store.run(hold)
    async with client_for(create_web_app(daemon)) as client:
        page = (await client.get("/")).text
    de = page.split("data-alias='amazon-de'")[1].split("</article>")[0]
    uk = page.split("data-alias='amazon-uk'")[1].split("</article>")[0]
    assert "pushes held: safety valve: would zero 12 of 20 listings" in de
    assert "marketsync stock plan amazon-de" in de
    assert "safety valve" not in uk
