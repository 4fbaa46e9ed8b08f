"""The HTTP surface over a real Daemon on the in-process simulator (status, Retry, health, metrics)."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from marketsync.core import clock
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.config.schema import parse_config
from marketsync.core.runtime.states import IntegrationState
from marketsync.core.store import Store
from marketsync.core.web.server import create_web_app, render_status
from marketsync.plugins.amazon.sandbox import World, create_app

from ...e2e.conftest import ENV, EU, START, config_text, scenario

EU_ONLY = [("amazon-uk", "eu", "UK"), ("amazon-de", "eu", "DE")]
TOKEN_ENV = {**ENV, "WEB_TOKEN": "s3cret-web-token"}


@pytest.fixture
def e2e_clock():
    return trio.testing.MockClock(autojump_threshold=0.005)


@pytest.fixture
async def world() -> World:
    clock.set_start(START)
    return World(scenario(), base_url="http://sandbox.local")


@pytest.fixture
def make_daemon(world, tmp_path):
    from marketsync.core.runtime import plugins as plugin_loading

    plugins = plugin_loading.build(load_entry_points=False)
    app = create_app(world)

    def make(extra: str = "") -> Daemon:
        config = parse_config(config_text(EU_ONLY, extra), plugins.infos(),
                              filename=str(tmp_path / "marketsync.yaml"), environ=TOKEN_ENV)
        return Daemon(config, plugins=plugins,
                      store=Store(f"sqlite:///{tmp_path / 'marketsync.sqlite'}"),
                      transport_factory=lambda account: httpx.ASGITransport(app=app))

    return make


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_client(daemon: Daemon, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_web_app(daemon), client=(client_host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8470")


async def running(nursery: trio.Nursery, daemon: Daemon, settle: float = 600) -> None:
    await nursery.start(daemon.serve)
    await trio.sleep(settle)


async def stop(nursery: trio.Nursery, daemon: Daemon) -> None:
    await daemon.stop(grace=1)
    nursery.cancel_scope.cancel()


async def wait_for_state(daemon: Daemon, alias: str, state: IntegrationState,
                         within: float = 3600) -> None:
    with trio.fail_after(within):
        while daemon.runners[alias].state is not state:
            await trio.sleep(5)


async def test_status_page_lists_integrations_jobs_pending_pushes_and_rate_budget(make_daemon, e2e_clock):
    """The page names each integration with its state, every job's last/next run, the
    pending-push column and a rate-budget row per bucket; JSON carries the same report."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await running(nursery, daemon)
        async with web_client(daemon) as client:
            page = await client.get("/")
            as_json = await client.get("/", headers={"accept": "application/json"})
        await stop(nursery, daemon)
    assert page.status_code == 200
    html = page.text
    for alias in ("amazon-uk", "amazon-de"):
        assert f"data-alias='{alias}'" in html
        assert f"action='/integrations/{alias}/retry'" in html
    assert html.count("data-state='LIVE'") == 2
    job = html.split("data-kind='import_orders'>")[1].split("</tr>")[0]
    assert re.search(r"last \d+[smh] ago", job) and re.search(r"next in \d+[smh]", job)
    assert job.endswith("<td>ok</td>")
    assert "pending pushes / in flight" in html
    assert "searchOrders" in html and "id=\"buckets\"" in html
    report = as_json.json()
    assert {i["alias"]: i["state"] for i in report["integrations"]} == {
        "amazon-uk": "LIVE", "amazon-de": "LIVE"}
    kinds = {job["kind"] for job in report["integrations"][0]["jobs"]}
    assert {"import_orders", "import_products"} <= kinds
    assert all("pending_pushes" in i and "submissions_in_flight" in i for i in report["integrations"])


async def test_retry_needs_the_configured_token(make_daemon, e2e_clock):
    """With http.token set, Retry without it or with a wrong one is 403, even from
    loopback; the right one in the form or as a bearer header is accepted."""
    daemon = make_daemon("http:\n  token: ${WEB_TOKEN}\n")
    await daemon.prepare()
    async with web_client(daemon) as client:
        bare = await client.post("/integrations/amazon-uk/retry")
        wrong = await client.post("/integrations/amazon-uk/retry", data={"token": "guess"})
        form = await client.post("/integrations/amazon-uk/retry", data={"token": "s3cret-web-token"})
        header = await client.post("/integrations/amazon-de/retry",
                                   headers={"authorization": "Bearer s3cret-web-token"})
        unknown = await client.post("/integrations/nope/retry", data={"token": "s3cret-web-token"})
        page = await client.get("/")
    assert bare.status_code == 403 and "token" in bare.text
    assert wrong.status_code == 403
    assert form.status_code == 303 and form.headers["location"] == "/?retried=amazon-uk"
    assert header.status_code == 303
    assert unknown.status_code == 404
    assert "name='token' type='password'" in page.text  # the page asks for it


async def test_without_a_token_retry_is_loopback_only(make_daemon, e2e_clock):
    """No http.token: a request from another address is refused, loopback is accepted."""
    daemon = make_daemon()
    await daemon.prepare()
    async with web_client(daemon, client_host="192.0.2.7") as remote:
        refused = await remote.post("/integrations/amazon-uk/retry")
    async with web_client(daemon, client_host="::1") as local:
        accepted = await local.post("/integrations/amazon-uk/retry")
    assert refused.status_code == 403 and "loopback" in refused.text
    assert accepted.status_code == 303


async def test_retry_brings_an_incomplete_integration_back(make_daemon, world, e2e_clock):
    """A revoked refresh token makes the account INCOMPLETE; once the seller grants it
    again, Retry on the status page checks credentials at once and it goes LIVE."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await running(nursery, daemon, settle=300)
        assert world.revoke_refresh_tokens(seller_id=EU) >= 1
        world.expire_access_tokens()
        await wait_for_state(daemon, "amazon-uk", IntegrationState.INCOMPLETE)
        async with web_client(daemon) as client:
            before = (await client.get("/")).text
            for grant in world.grants.values():  # the seller consents again
                if grant.seller_id == EU:
                    grant.revoked = False
            await trio.sleep(60)  # a person takes a while; the plugin forgets the refusal
            assert daemon.runners["amazon-uk"].state is IntegrationState.INCOMPLETE
            answer = await client.post("/integrations/amazon-uk/retry")
            with trio.fail_after(120):  # far sooner than the runner would look by itself
                while daemon.runners["amazon-uk"].state is not IntegrationState.LIVE:
                    await trio.sleep(1)
            after = (await client.get("/?retried=amazon-uk")).text
        await stop(nursery, daemon)
    assert "data-state='INCOMPLETE'" in before
    assert answer.status_code == 303
    row = after.split("data-alias='amazon-uk'")[1].split("</tr>")[0]
    assert "data-state='LIVE'" in row
    assert "retry requested for amazon-uk" in after


async def test_healthz_follows_the_scheduler_and_the_database(make_daemon, e2e_clock, tmp_path):
    """503 before the daemon runs, 200 while it runs, 503 when the scheduler's heartbeat
    is stale or the database does not answer."""
    daemon = make_daemon()
    async with web_client(daemon) as client:
        before = await client.get("/healthz")
        async with trio.open_nursery() as nursery:
            await running(nursery, daemon, settle=60)
            healthy = await client.get("/healthz")
            beat = daemon._heartbeat
            daemon._heartbeat = clock.monotonic() - 120  # as if the event loop had wedged
            stale = await client.get("/healthz")
            daemon._heartbeat = beat
            store = daemon.store
            daemon.store = Store(f"postgresql+psycopg://ms:pw@127.0.0.1:{closed_port()}/x")
            try:
                broken = await client.get("/healthz")
            finally:
                daemon.store = store
            await stop(nursery, daemon)
    assert before.status_code == 503 and "scheduler" in before.text
    assert healthy.status_code == 200 and healthy.text == "ok"
    assert stale.status_code == 503 and "scheduler not running" in stale.text
    assert broken.status_code == 503 and "database" in broken.text


async def test_metrics_parse_as_prometheus_text(make_daemon, world, e2e_clock):
    """/metrics is valid exposition text with job runs and failures, API calls by
    operation and status, throttled calls, tokens per bucket and the push latency histogram."""
    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await running(nursery, daemon, settle=300)
        world.faults.error_share = {429: 0.5}
        world.faults.operations = {"searchOrders"}
        await trio.sleep(900)
        # an outage of every import's first call: retries run out, those jobs fail (the
        # throttled searchOrders may be waiting for its slowed-down bucket meanwhile)
        world.faults.operations = {"searchOrders", "getInventorySummaries", "createReport"}
        world.faults.error_share = {503: 1.0}
        await trio.sleep(900)
        world.faults.error_share = {}
        # a label of its own: the integrations' real pushes (handling times after the
        # first product import, say) land in theirs
        daemon.stats.push_latency.observe("amazon-probe", 4.0)
        daemon.stats.push_latency.observe("amazon-probe", 45.0)
        async with web_client(daemon) as client:
            answer = await client.get("/metrics")
        await stop(nursery, daemon)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    runs = families["marketsync_job_runs"].samples
    assert any(s.labels["outcome"] == "ok" and s.value > 0 for s in runs)
    assert any(s.labels["outcome"] == "failed" for s in runs)  # the outage failed some
    calls = families["marketsync_api_calls"].samples
    assert any(s.labels == {"operation": "searchOrders", "status": "200"} and s.value > 0
               for s in calls)
    throttled = families["marketsync_api_throttled"].samples
    assert any(s.labels["operation"] == "searchOrders" and s.value > 0 for s in throttled)
    tokens = families["marketsync_bucket_tokens"].samples
    assert tokens and all(s.value >= 0 for s in tokens)
    latency = {(s.name, s.labels.get("le")): s.value
               for s in families["marketsync_push_latency_seconds"].samples
               if s.labels["integration"] == "amazon-probe"}
    assert latency[("marketsync_push_latency_seconds_bucket", "5.0")] == 1
    assert latency[("marketsync_push_latency_seconds_bucket", "+Inf")] == 2
    assert latency[("marketsync_push_latency_seconds_count", None)] == 2
    assert latency[("marketsync_push_latency_seconds_sum", None)] == 49.0


async def test_render_escapes_channel_text(make_daemon, e2e_clock):
    """A reason or error from a channel is text, never markup, on the page."""
    daemon = make_daemon()
    report = {"time": clock.now(), "integrations": [{
        "alias": "amazon-uk", "channel": "amazon", "marketplace": "UK", "state": "ERROR",
        "reason": "<script>alert(1)</script>", "pending_pushes": 0, "refused_pushes": 0, "submissions_in_flight": 0,
        "jobs": [{"kind": "import_orders", "last_finished": None, "next_run": None,
                  "failures": 2, "last_error": "<b>bad</b>"}]}]}
    html = render_status(daemon, report, ask_token=False)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bad</b>" not in html and "failing ×2" in html


async def test_the_page_says_when_pushes_are_held(make_daemon, e2e_clock):
    """A tripped safety valve (or a review) shows beside the pushes, with its reason."""
    daemon = make_daemon()
    report = {"time": clock.now(), "integrations": [{
        "alias": "amazon-uk", "channel": "amazon", "marketplace": "UK", "state": "LIVE",
        "reason": None, "pending_pushes": 7, "refused_pushes": 0, "submissions_in_flight": 0,
        "push_hold": "valve", "push_hold_reason": "7 of 9 listings with stock would go to 0",
        "jobs": []}]}
    html = render_status(daemon, report, ask_token=False)
    assert "pushes held: safety valve" in html and "marketsync stock plan amazon-uk" in html
    assert "title='7 of 9 listings with stock would go to 0'" in html


async def test_consent_callback_connects_the_account(make_daemon, world, e2e_clock):
    """The connect flow end to end: consent URL, the simulated Seller Central redirect,
    the callback on the status surface; a new refresh token is stored and used. From
    another address (no http.token) the callback is refused; a replayed state fails."""
    from urllib.parse import urlsplit

    from marketsync.core.runtime import connect

    daemon = make_daemon()  # the harness's configuration sets pii.key
    await daemon.prepare()
    consent = urlsplit(await connect.start(daemon, "amazon-uk"))
    assert consent.netloc == "sandbox.local"  # the simulator's Seller Central, not Amazon's
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                                 base_url="http://sandbox.local") as amazon:
        answer = await amazon.get(f"{consent.path}?{consent.query}")
    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    assert back.path == "/channels/amazon/callback"
    tokens_before = set(world.accounts[EU].refresh_tokens)
    async with web_client(daemon, client_host="192.0.2.7") as remote:
        refused = await remote.get(f"{back.path}?{back.query}")
    async with web_client(daemon) as client:
        connected = await client.get(f"{back.path}?{back.query}")
        replayed = await client.get(f"{back.path}?{back.query}")
    assert refused.status_code == 403
    assert connected.status_code == 200 and "connected amazon-uk" in connected.text
    assert replayed.status_code == 400 and "not connected" in replayed.text
    new_tokens = set(world.accounts[EU].refresh_tokens) - tokens_before
    assert len(new_tokens) == 1
    assert daemon.integrations["amazon-uk"].credentials["refresh_token"] in new_tokens


async def test_a_stock_change_from_the_cli_is_pushed_at_once(make_daemon, world, e2e_clock):
    """POST /stock-changed (what `marketsync stock set` sends) triggers the push now, not
    at the next periodic run; refused from a non-loopback address without a token."""
    from marketsync.core.domain import inventory

    daemon = make_daemon()
    async with trio.open_nursery() as nursery:
        await running(nursery, daemon, settle=900)
        await daemon.store.run(inventory.set_on_hand, "MUG-1", 321, note="another process")
        level = await daemon.store.read(inventory.stock_level, "MUG-1")
        async with web_client(daemon, client_host="203.0.113.9") as outsider:
            refused = await outsider.post("/stock-changed")
        async with web_client(daemon) as client:
            answer = await client.post("/stock-changed")
        await trio.sleep(4)  # 2 s debounce + one patch: far sooner than the 60 s backstop
        quantity = world.catalog.view(EU)["MUG-1"]["quantity"]
        await stop(nursery, daemon)
    assert refused.status_code == 403
    assert answer.status_code == 202
    assert quantity == level.available
