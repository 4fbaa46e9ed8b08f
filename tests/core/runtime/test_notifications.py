"""The notifications consumer against a real SQS-protocol server (moto, on loopback):
signed long polls, dedupe by notification id, delete only after the store committed, a
bad message never poisons the queue, a dead queue never kills the daemon.

These tests run on trio's real clock: the server is another process.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import jsonschema
import pytest
import trio
from sqlalchemy import select

from marketsync.core.errors import BadNotification
from marketsync.core.runtime import notifications, sqs
from marketsync.core.store import notifications_seen
from marketsync.core.store.models import NotificationSeen
from marketsync.plugins.amazon import notifications as amazon_notifications
from . import sqs_server

SCHEMAS = sqs_server.SPAPI / "schemas"


@pytest.fixture(scope="session")
def sqs_endpoint():
    url, process = sqs_server.start_moto()
    yield url
    if process is not None:
        process.kill()
        process.wait()


class Host:
    """What the consumer sees of the daemon: the store, and a record of its triggers and
    of the single records it was asked to fetch (``fail`` makes those fetches fail)."""

    def __init__(self, store, fail: bool = False):
        self.store = store
        self.integration_ids: dict[str, int] = {}
        self.triggers: list[tuple[str, str]] = []
        self.delays: list[float | None] = []
        self.fetched: list[tuple[str, str, str]] = []
        self.fail = fail

    def trigger(self, alias: str, kind: str, *, delay: float | None = None) -> None:
        self.triggers.append((alias, kind))
        self.delays.append(delay)

    async def fetch_record(self, alias: str, kind: str, record_id: str) -> bool | None:
        if self.fail:
            raise httpx.ConnectError("Amazon unreachable")
        self.fetched.append((alias, kind, record_id))
        return True


def order_change(order_id: str = "111-0000000-0000001", notification_id: str | None = None,
                 seller: str = "A2TESTEU", marketplace: str = "A1PA6795UKMFR9") -> str:
    """An ORDER_CHANGE as the official schema shapes it (checked against it below)."""
    return json.dumps({
        "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
        "EventTime": "2026-11-02T12:00:00Z",
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel", "SellerId": seller, "AmazonOrderId": order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": "2026-11-02T12:00:00Z",
                                   "ChangeReason": "Order status changed"},
            "Summary": {"MarketplaceId": marketplace, "OrderStatus": "Unshipped",
                        "PurchaseDate": "2026-11-02T11:58:00Z", "DestinationPostalCode": "10115",
                        "FulfillmentType": "MFN", "OrderType": "StandardOrder",
                        "OrderItems": [{"OrderItemId": "1", "SellerSKU": "MUG-1",
                                        "SupplySourceId": None, "Quantity": 1}]}}},
        "NotificationMetadata": {"ApplicationId": "amzn1.sellerapps.app.test",
                                 "SubscriptionId": "sub-1", "PublishTime": "2026-11-02T12:00:01Z",
                                 "NotificationId": notification_id or str(uuid.uuid4())}})


def send(endpoint: str, queue_url: str, body: str) -> None:
    sqs_server.sqs(endpoint, "SendMessage", {"QueueUrl": queue_url, "MessageBody": body})


def waiting(endpoint: str, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs_server.sqs(endpoint, "GetQueueAttributes", {
        "QueueUrl": queue_url, "AttributeNames": ["All"]})["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])


def consumer(host, http, queue_url, **changes) -> notifications.Consumer:
    queue = sqs.SqsQueue(http, queue_url, access_key_id="AKIDEXAMPLE",
                         secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    values = dict(host=host, account="eu", queue=queue, aliases=("amazon-de", "amazon-uk"),
                  read=amazon_notifications.read_notification, wait_seconds=1,
                  seller_id=lambda: "A2TESTEU",
                  marketplaces={"DE": "amazon-de", "UK": "amazon-uk"})
    values.update(changes)
    return notifications.Consumer(**values)


async def until(condition, seconds: float = 15.0) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.05)


async def consume(host, endpoint: str, queue_url: str, done, *, drained: bool = True,
                  **changes) -> notifications.Consumer:
    """Run a consumer on the queue until ``done(counts)`` holds and (``drained``) the
    queue is empty, then stop it; the stopped consumer's counts are for the asserts."""
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        worker = consumer(host, http, queue_url, **changes)
        nursery.start_soon(worker.run)
        await until(lambda: done(worker.counts))
        if drained:
            await until(lambda: waiting(endpoint, queue_url) == 0)
        nursery.cancel_scope.cancel()
    return worker


def test_the_test_message_is_what_the_schema_says():
    schema_file = SCHEMAS / "OrderChangeNotification.json"
    if not schema_file.exists():
        pytest.skip(f"needs the official schemas at {SCHEMAS} (absent here)")
    jsonschema.validate(json.loads(order_change()), json.loads(schema_file.read_text()))


async def test_an_order_change_fetches_that_order_and_is_deleted_after_the_commit(
        store, sqs_endpoint):
    """One getOrder for the integration of the order's marketplace, not an account-wide
    import; the message goes once the store has its id."""
    queue_url = sqs_server.new_queue(sqs_endpoint)
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000042"))
    host = Host(store)
    worker = await consume(host, sqs_endpoint, queue_url,
                           lambda counts: counts["acted"] == 1)
    assert host.fetched == [("amazon-de", "import_orders", "111-0000000-0000042")]
    assert host.triggers == [] and worker.counts["fetched"] == 1
    rows = await store.read(lambda s: [(r.type, r.subject, r.account) for r in
                                       s.execute(select(NotificationSeen)).scalars()])
    assert rows == [("ORDER_CHANGE", "111-0000000-0000042", "eu")]


async def test_a_repeated_notification_acts_once_and_both_copies_go(store, sqs_endpoint):
    """SQS is at-least-once and Amazon may send twice: the id decides, whatever the order."""
    queue_url = sqs_server.new_queue(sqs_endpoint)
    same = str(uuid.uuid4())
    for body in (order_change("111-0000000-0000002", same), order_change("111-0000000-0000003"),
                 order_change("111-0000000-0000002", same)):
        send(sqs_endpoint, queue_url, body)
    host = Host(store)
    worker = await consume(host, sqs_endpoint, queue_url,
                           lambda counts: counts["received"] == 3)
    assert (worker.counts["acted"], worker.counts["duplicate"]) == (2, 1)
    assert [record for _, _, record in host.fetched] == ["111-0000000-0000002",
                                                          "111-0000000-0000003"]


async def test_an_order_of_a_marketplace_not_imported_here_is_counted_not_fetched(
        store, sqs_endpoint, caplog):
    """FR is the seller's but no integration imports it; an id Amazon may add later is
    no marketplace we know. Both are counted and said once, nothing is fetched, the
    message goes, and the log names no buyer data (the postal code stays out)."""
    queue_url = sqs_server.new_queue(sqs_endpoint)
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000010", marketplace="A13V1IB3VIYZZH"))
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000011", marketplace="A1NEWMARKET"))
    host = Host(store)
    with caplog.at_level("INFO", logger="marketsync.notifications"):
        worker = await consume(host, sqs_endpoint, queue_url,
                               lambda counts: counts["received"] == 2)
    assert (worker.counts["unrouted"], host.fetched, host.triggers) == (2, [], [])
    assert "marketplace FR, which no integration" in caplog.text
    assert "marketplace A1NEWMARKET, which no integration" in caplog.text
    assert "10115" not in caplog.text


async def test_a_failed_fetch_runs_the_import_instead(store, sqs_endpoint, caplog):
    queue_url = sqs_server.new_queue(sqs_endpoint)
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000012"))
    host = Host(store, fail=True)
    with caplog.at_level("WARNING", logger="marketsync.notifications"):
        worker = await consume(host, sqs_endpoint, queue_url,
                               lambda counts: counts["acted"] == 1)
    assert worker.counts["fetch_failed"] == 1
    assert host.triggers == [("amazon-de", "import_orders"), ("amazon-uk", "import_orders")]
    assert "fetching 111-0000000-0000012 announced by ORDER_CHANGE failed (ConnectError)" \
        in caplog.text


async def test_a_bad_or_foreign_message_is_dropped_not_retried_forever(store, sqs_endpoint):
    queue_url = sqs_server.new_queue(sqs_endpoint)
    for body in ("not json", json.dumps({"NotificationType": "ORDER_CHANGE"}),
                 order_change(seller="SOMEONE-ELSE")):
        send(sqs_endpoint, queue_url, body)
    host = Host(store)
    worker = await consume(host, sqs_endpoint, queue_url,
                           lambda counts: counts["received"] == 3)
    assert (worker.counts["bad"], worker.counts["foreign"], host.triggers) == (2, 1, [])


async def test_when_the_store_fails_the_message_stays_and_comes_back(store, sqs_endpoint):
    """No commit, no delete: after the visibility timeout SQS hands it out again, and then
    (the store back) it is acted on once."""
    queue_url = sqs_server.new_queue(sqs_endpoint, VisibilityTimeout="1")
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000009"))

    class Flaky:
        fail = True

        async def run(self, fn, *args, **kwargs):
            if Flaky.fail and fn is notifications_seen.remember:
                Flaky.fail = False
                raise RuntimeError("database is down")
            return await store.run(fn, *args, **kwargs)

        async def read(self, fn, *args, **kwargs):
            return await store.read(fn, *args, **kwargs)

    host = Host(Flaky())
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        worker = consumer(host, http, queue_url, visibility_timeout=1)
        nursery.start_soon(worker.run)
        await until(lambda: worker.counts["acted"] == 1, seconds=20)
        await until(lambda: waiting(sqs_endpoint, queue_url) == 0)
        nursery.cancel_scope.cancel()
    assert worker.counts["received"] == 2
    # fetched on both deliveries: the id was never stored the first time, and a fetch of
    # the current truth is harmless twice, while none at all would wait for the poll
    assert host.fetched == [("amazon-de", "import_orders", "111-0000000-0000009")] * 2


async def test_an_unreachable_queue_is_retried_and_never_fatal(store):
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = Host(store)
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        worker = consumer(host, http, f"http://127.0.0.1:{port}/123456789012/nowhere")
        nursery.start_soon(worker.run)
        await until(lambda: worker.counts["failed_polls"] >= 1)
        nursery.cancel_scope.cancel()
    assert host.triggers == []


async def test_a_missing_extra_is_one_clear_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_botocore(name, *args, **kwargs):
        if name.startswith("botocore"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_botocore)
    async with httpx.AsyncClient() as http:
        with pytest.raises(sqs.NotificationsUnavailable, match=r"marketsync\[notifications\]"):
            sqs.SqsQueue(http, "https://sqs.eu-west-1.amazonaws.com/1/q", access_key_id="a",
                         secret_access_key="b")


def test_region_comes_from_the_queue_url_unless_configured():
    assert sqs.region_of("https://sqs.eu-west-1.amazonaws.com/1/q", None) == "eu-west-1"
    assert sqs.region_of("https://sqs.eu-west-1.amazonaws.com/1/q", "us-east-2") == "us-east-2"
    assert sqs.region_of("http://127.0.0.1:5000/1/q", None) == "us-east-1"


def test_every_type_parses_to_its_subject():
    """Feeds and reports spell the envelope camelCase, the others PascalCase."""
    feed = json.dumps({"notificationVersion": "2020-09-04", "notificationType": "FEED_PROCESSING_FINISHED",
                       "payloadVersion": "2020-09-04", "eventTime": "2026-11-02T12:00:00Z",
                       "payload": {"feedProcessingFinishedNotification": {
                           "sellerId": "A2TESTEU", "accountId": "x", "feedId": "F-1",
                           "feedType": "JSON_LISTINGS_FEED", "processingStatus": "DONE"}},
                       "notificationMetadata": {"applicationId": "a", "subscriptionId": "s",
                                                "publishTime": "2026-11-02T12:00:00Z",
                                                "notificationId": "n-feed"}})
    parsed = amazon_notifications.read_notification(feed)
    assert (parsed.type, parsed.subject, parsed.seller_id) == (
        "FEED_PROCESSING_FINISHED", "F-1", "A2TESTEU")
    assert parsed.job == "poll_submission"
    order = amazon_notifications.read_notification(order_change("111-0000000-0000005", "n-1"))
    assert (order.notification_id, order.subject) == ("n-1", "111-0000000-0000005")
    assert order.event_time == datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
    with pytest.raises(BadNotification, match="AmazonOrderId"):
        amazon_notifications.read_notification(json.dumps({"NotificationType": "ORDER_CHANGE", "Payload": {},
                                        "NotificationMetadata": {"NotificationId": "n"}}))


def test_remembered_ids_are_forgotten_after_sqs_retention(store):
    def work(session):
        assert notifications_seen.remember(session, notification_id="n-1", account="eu",
                                           type="ORDER_CHANGE", subject="o", event_time=None)
        assert not notifications_seen.remember(session, notification_id="n-1", account="eu",
                                               type="ORDER_CHANGE", subject="o", event_time=None)
        now = datetime.now(timezone.utc)
        assert notifications_seen.forget_old(session, now) == 0
        assert notifications_seen.forget_old(session, now + timedelta(days=16)) == 1
    store.run_blocking(work)


async def test_the_simulator_publishes_through_sqs_to_the_consumer(store, sqs_endpoint):
    """Simulated Amazon → SendMessage to the loopback SQS → the consumer → an import
    trigger, for the order the simulator announced (its world clock moved by hand here)."""
    from marketsync.plugins.amazon.sandbox import World, create_app
    from marketsync.plugins.amazon.sandbox.notifications import deliver

    from ...plugins.amazon.sandbox.conftest import CLIENT_ID, CLIENT_SECRET, EU, REFRESH, small_scenario

    queue_url = sqs_server.new_queue(sqs_endpoint)
    arn = "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[1]
    moment = [datetime(2026, 11, 2, 12, tzinfo=timezone.utc)]
    world = World(small_scenario(), now=lambda: moment[0])
    amazon = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)),
                               base_url="http://sandbox.local")
    app_token = (await amazon.post("/auth/o2/token", data={
        "grant_type": "client_credentials", "scope": "sellingpartnerapi::notifications",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})).json()["access_token"]
    destination = (await amazon.post("/notifications/v1/destinations", json={
        "name": "q", "resourceSpecification": {"sqs": {"arn": arn}}},
        headers={"x-amz-access-token": app_token})).json()["payload"]["destinationId"]
    seller_token = (await amazon.post("/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": REFRESH[EU], "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET})).json()["access_token"]
    subscribed = await amazon.post("/notifications/v1/subscriptions/ORDER_CHANGE", json={
        "payloadVersion": "1.0", "destinationId": destination},
        headers={"x-amz-access-token": seller_token})
    assert subscribed.status_code == 200, subscribed.text
    placed = (await amazon.post("/_sandbox/orders", json={
        "marketplace": "DE", "items": {"MUG-1": 1}})).json()["orderId"]
    moment[0] += timedelta(hours=2)  # paid and visible
    host = Host(store)
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        assert await deliver(world, http, sqs_endpoint) >= 2
        worker = consumer(host, http, queue_url, seller_id=lambda: EU)
        nursery.start_soon(worker.run)
        await until(lambda: waiting(sqs_endpoint, queue_url) == 0)
        nursery.cancel_scope.cancel()
    seen = await store.read(lambda s: set(s.execute(select(NotificationSeen.subject)).scalars()))
    assert placed in seen
    assert worker.counts["bad"] == 0 and worker.counts["acted"] == len(world.notifications.sent)
    assert ("amazon-de", "import_orders", placed) in host.fetched and host.triggers == []


async def test_the_daemon_runs_a_consumer_per_configured_account(tmp_path, sqs_endpoint):
    """A ``notifications`` section in the YAML: the daemon reads that queue and a message
    makes the account's integrations import orders at once (the scheduler's trigger)."""
    from marketsync.core.config.schema import parse_config
    from marketsync.core.runtime import plugins as plugin_loading
    from marketsync.core.runtime.daemon import Daemon
    from marketsync.core.store import Store

    queue_url = sqs_server.new_queue(sqs_endpoint)
    plugins = plugin_loading.build(load_entry_points=False)
    text = f"""
accounts:
  local:
    channel: amazon
    endpoint: http://127.0.0.1:9
    credentials:
      client_id: amzn1.application-oa2-client.test
      client_secret: ${{LWA_SECRET}}
      refresh_token: ${{LWA_REFRESH}}
    notifications:
      queue_url: {queue_url}
      access_key_id: ${{AWS_KEY}}
      secret_access_key: ${{AWS_SECRET}}
      wait_seconds: 1
integrations:
  - alias: shop
    account: local
    marketplace: DE
"""
    # Amazon is not reachable (port 9): the integration is not LIVE, so the order cannot
    # be fetched alone, and the notification falls back to the import's trigger
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "m.yaml"),
                          environ={"AWS_KEY": "AKIDEXAMPLE", "AWS_SECRET": "secret",
                                   "LWA_SECRET": "s", "LWA_REFRESH": "Atzr|r"})
    daemon = Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'm.db'}"))
    triggered = []
    original = daemon.trigger
    daemon.trigger = lambda alias, kind, **kw: (triggered.append((alias, kind)),
                                                original(alias, kind, **kw))
    send(sqs_endpoint, queue_url, order_change("111-0000000-0000077", seller="ANY"))
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await until(lambda: ("shop", "import_orders") in triggered)
        await until(lambda: waiting(sqs_endpoint, queue_url) == 0)  # deleted after the trigger
        assert daemon.notification_consumers["local"].counts["acted"] == 1
        from prometheus_client import generate_latest
        from prometheus_client.core import CollectorRegistry

        from marketsync.core.web.metrics import DaemonCollector

        registry = CollectorRegistry()
        registry.register(DaemonCollector(daemon))
        scraped = generate_latest(registry).decode()
        assert 'marketsync_notifications_total{account="local",outcome="acted"} 1.0' in scraped
        assert 'marketsync_notifications_missed{account="local"} 0.0' in scraped
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()


def test_status_counts_the_orders_polling_found_that_no_notification_announced(store):
    from marketsync.core.domain import orders
    from marketsync.core.store.integrations import ensure_integration
    from marketsync.core.types import ChannelOrder, Fulfillment, OrderStatus

    def order(order_id):
        now = datetime.now(timezone.utc)
        return ChannelOrder(channel_order_id=order_id, marketplace="DE", status=OrderStatus.NEW,
                            channel_status="Unshipped", fulfillment=Fulfillment.FBA,
                            purchased_at=now, updated_at=now, items=())

    def work(session):
        de = ensure_integration(session, alias="amazon-de", channel="amazon", account="eu",
                                marketplace="DE")
        us = ensure_integration(session, alias="amazon-us", channel="amazon", account="na",
                                marketplace="US")
        notifications_seen.remember(session, notification_id="n-1", account="eu",
                                    type="ORDER_CHANGE", subject="A-1", event_time=None)
        orders.apply_channel_orders(session, de, [order("A-1"), order("A-2")])
        orders.apply_channel_orders(session, us, [order("B-1")])  # another account's queue
        summary = notifications_seen.summary(session, "eu")
        assert (summary["received"], summary["missed"]) == (1, 1)
        assert notifications_seen.summary(session, "na")["missed"] == 0  # none received yet
    store.run_blocking(work)


async def test_a_channel_that_cannot_read_notifications_gets_no_consumer(tmp_path, caplog):
    """Reading a message is the channel's (``read_notification``): an account of a channel
    without it is said once, and polling carries on; the core guesses no payload shape."""
    from marketsync.core.config.schema import parse_config
    from marketsync.core.runtime import plugins as plugin_loading
    from marketsync.core.runtime.daemon import Daemon
    from marketsync.core.store import Store

    plugins = plugin_loading.build(load_entry_points=False)
    assert not plugins.channel("manual").supports("read_notification")
    text = """
accounts:
  local:
    channel: manual
    notifications:
      queue_url: http://127.0.0.1:9/000000000000/q
      access_key_id: ${AWS_KEY}
      secret_access_key: ${AWS_SECRET}
integrations:
  - alias: shop
    account: local
    marketplace: LOCAL
"""
    config = parse_config(text, plugins.infos(), filename=str(tmp_path / "m.yaml"),
                          environ={"AWS_KEY": "AKIDEXAMPLE", "AWS_SECRET": "secret"})
    daemon = Daemon(config, plugins=plugins, store=Store(f"sqlite:///{tmp_path / 'm.db'}"))
    with caplog.at_level("ERROR", logger="marketsync.notifications"):
        async with trio.open_nursery() as nursery:
            notifications.start_all(daemon, config, nursery)
    assert daemon.notification_consumers == {}
    assert "local: its channel cannot read notifications" in caplog.text


def feed_finished(feed_id: str, report: bool = False, report_type: str = "") -> str:
    """FEED_PROCESSING_FINISHED (or REPORT_…) in the official schema's camelCase shape."""
    kind = "REPORT" if report else "FEED"
    inner = ({"reportId": feed_id, "reportType": report_type} if report else
             {"feedId": feed_id, "feedType": "JSON_LISTINGS_FEED"})
    return json.dumps({
        "notificationVersion": "2020-09-04", "notificationType": f"{kind}_PROCESSING_FINISHED",
        "payloadVersion": "2020-09-04", "eventTime": "2026-11-02T12:00:00Z",
        "payload": {f"{kind.lower()}ProcessingFinishedNotification": {
            "sellerId": "A2TESTEU", "accountId": "A2TESTEU", **inner,
            "processingStatus": "DONE"}},
        "notificationMetadata": {"applicationId": "a", "subscriptionId": "s",
                                 "publishTime": "2026-11-02T12:00:00Z",
                                 "notificationId": str(uuid.uuid4())}})


async def test_a_finished_feed_is_polled_now_by_the_integration_that_sent_it(store,
                                                                             sqs_endpoint):
    """The submission is made due at once (its own poll_after was minutes away) and only
    its integration polls; a feed that is not ours moves nothing."""
    from marketsync.core.store import submissions
    from marketsync.core.store.integrations import ensure_integration
    from marketsync.core.types import Submission

    def setup(session):
        ids = {alias: ensure_integration(session, alias=alias, channel="amazon", account="eu",
                                         marketplace=code)
               for alias, code in (("amazon-de", "DE"), ("amazon-uk", "UK"))}
        submissions.record(session, ids["amazon-uk"], Submission(
            kind="stock", channel_id="F-77", channel_skus=("MUG-1",), poll_after=600))
        return ids

    ids = await store.run(setup)
    queue_url = sqs_server.new_queue(sqs_endpoint)
    send(sqs_endpoint, queue_url, feed_finished("F-77"))
    send(sqs_endpoint, queue_url, feed_finished("F-SOMEONE-ELSES"))
    host = Host(store)
    host.integration_ids = ids
    worker = await consume(host, sqs_endpoint, queue_url,
                           lambda counts: counts["acted"] == 2, drained=False)
    assert host.triggers == [("amazon-uk", "poll_submission")]
    due = await store.read(lambda s: [(x.channel_id, x.poll_after <= datetime.now(timezone.utc))
                                      for x in submissions.in_flight(s)])
    assert due == [("F-77", True)]


def test_a_finished_report_follows_up_only_the_report_we_asked_for():
    listings = amazon_notifications.read_notification(
        feed_finished("R-1", report=True, report_type="GET_MERCHANT_LISTINGS_ALL_DATA"))
    assert (listings.job, listings.subject) == ("import_products", "R-1")
    backfill = amazon_notifications.read_notification(feed_finished(
        "R-3", report=True, report_type="GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"))
    assert backfill.job == "import_orders"  # the first import's order report is ready
    other = amazon_notifications.read_notification(
        feed_finished("R-2", report=True, report_type="GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"))
    assert other.job is None


def test_an_order_change_names_its_order_and_marketplace():
    notice = amazon_notifications.read_notification(order_change("111-0000000-0000020"))
    assert (notice.record_id, notice.marketplace, notice.job) == (
        "111-0000000-0000020", "DE", "import_orders")
    unknown = amazon_notifications.read_notification(
        order_change("111-0000000-0000021", marketplace="A1NEWMARKET"))
    assert unknown.marketplace == "A1NEWMARKET"  # kept, so the core counts it unrouted


def fba_change(sku: str) -> str:
    """FBA_INVENTORY_AVAILABILITY_CHANGES as the simulator sends it (the schema's shape)."""
    inventory = {"InboundQuantityBreakdown": {"Working": 0, "Shipped": 0, "Receiving": 0},
                 "Fulfillable": 5, "Unfulfillable": 0, "Researching": 0,
                 "ReservedQuantityBreakdown": {"WarehouseProcessing": 0, "WarehouseTransfer": 0,
                                               "PendingCustomerOrder": 1},
                 "FutureSupplyBuyable": 0, "PendingCustomerOrderInTransit": 0}
    return json.dumps({
        "NotificationVersion": "1.0", "NotificationType": "FBA_INVENTORY_AVAILABILITY_CHANGES",
        "PayloadVersion": "1.0", "EventTime": "2026-11-02T12:00:00Z",
        "Payload": {"SellerId": "A2TESTEU", "FNSKU": "X00TEST", "ASIN": "B0TEST0003", "SKU": sku,
                    "FulfillmentInventoryByMarketplace": [{
                        "MarketplaceId": "A1PA6795UKMFR9", "ItemName": "Spork",
                        "FulfillmentInventory": inventory}]},
        "NotificationMetadata": {"ApplicationId": "a", "SubscriptionId": "s",
                                 "PublishTime": "2026-11-02T12:00:00Z",
                                 "NotificationId": str(uuid.uuid4())}})


async def test_a_burst_of_fba_stock_notices_asks_for_one_snapshot_a_minute(store, sqs_endpoint):
    """One notice per SKU: each asks for the FBA import within a minute, so the
    scheduler (which keeps the earliest due time) makes one run of the burst."""
    queue_url = sqs_server.new_queue(sqs_endpoint)
    for sku in ("SPORK-1", "SPORK-2", "SPORK-3"):
        send(sqs_endpoint, queue_url, fba_change(sku))
    host = Host(store)
    worker = await consume(host, sqs_endpoint, queue_url,
                           lambda counts: counts["acted"] == 3, drained=False)
    assert set(host.triggers) == {("amazon-de", "import_stock"), ("amazon-uk", "import_stock")}
    assert set(host.delays) == {notifications.SNAPSHOT_EVERY["import_stock"]}
