"""The stock, orders, products and usage commands against a SQLite store."""

from __future__ import annotations

import shutil

import base64
from datetime import datetime, timezone

import click
import pytest
from click.testing import CliRunner

from marketsync.core.domain import inventory, orders, pii
from marketsync.core.cli import GROUPS, CliContext
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.types import Buyer, ChannelOrder, ChannelOrderItem, Fulfillment, OrderStatus

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def store(tmp_path, _sqlite_template):
    """A SQLite store of this test's own, copied from the migrated template."""
    from marketsync.core.store import Store

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    db = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def world(session):
        ensure_integration(session, alias="amazon-de", channel="amazon", account="acme",
                           marketplace="DE")
        inventory.ensure_product(session, "MUG")
        inventory.ensure_product(session, "CUP")
    db.run_blocking(world)
    yield db
    db.close()


@pytest.fixture
def invoke(store):
    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = CliContext(store=store, _cipher=pii.PiiCipher.from_text(KEY),
                             cipher_given=True)
    for group in GROUPS:
        root.add_command(group)

    def call(*args: str):
        return CliRunner().invoke(root, list(args), catch_exceptions=False)
    return call


def test_stock_set_adjust_show(invoke):
    assert invoke("stock", "set", "MUG", "10").output.strip() == \
        "MUG: on hand 10, reserved 0, available 10"
    result = invoke("stock", "adjust", "MUG", "-3", "--reason", "breakage")
    assert result.exit_code == 0 and "on hand 7" in result.output
    assert "on hand 9" in invoke("stock", "adjust", "MUG", "+2", "--reason", "found").output
    shown = invoke("stock", "show").output.splitlines()
    assert shown == ["CUP: on hand 0, reserved 0, available 0",
                     "MUG: on hand 9, reserved 0, available 9"]


def test_unknown_sku_is_a_clear_error(invoke):
    for args in (("stock", "set", "NOPE", "1"), ("stock", "show", "NOPE"),
                 ("stock", "adjust", "NOPE", "1", "--reason", "x"),
                 ("orders", "add", "M1", "NOPE:1")):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert "unknown SKU 'NOPE'" in result.output
        assert "Traceback" not in result.output


def test_adjust_needs_a_reason(invoke):
    assert invoke("stock", "adjust", "MUG", "1").exit_code == 2


def test_stock_import_reports_bad_rows(invoke, tmp_path):
    bad = tmp_path / "stock.csv"
    bad.write_text("sku,quantity\nMUG,4\nNOPE,2\nCUP,x\n")
    result = invoke("stock", "import", str(bad))
    assert result.exit_code == 1
    assert "stock.csv:line 3, column 1: unknown SKU 'NOPE'" in result.output
    assert "stock.csv:line 4, column 2: quantity 'x' is not a whole number" in result.output
    assert "on hand 0" in invoke("stock", "show", "MUG").output
    bad.write_text("sku,quantity\nMUG,4\n")
    assert "1 row(s) applied" in invoke("stock", "import", str(bad)).output
    assert "on hand 4" in invoke("stock", "show", "MUG").output
    bad.write_text("sku,delta,reason\nMUG,-5,breakage\n")
    result = invoke("stock", "import", str(bad))
    assert result.exit_code == 1
    assert "line 2, column 2: delta -5 would take on hand of 'MUG' to -1" in result.output
    assert "1 row(s) applied" in invoke("stock", "import", "--force", str(bad)).output
    assert "on hand -1" in invoke("stock", "show", "MUG").output


def test_stock_adjust_below_zero_needs_force(invoke):
    invoke("stock", "set", "MUG", "2")
    result = invoke("stock", "adjust", "MUG", "-3", "--reason", "breakage")
    assert result.exit_code == 1
    assert "would take on hand from 2 to -1, below 0 (--force allows it)" in result.output
    assert "Traceback" not in result.output
    result = invoke("stock", "adjust", "MUG", "-3", "--reason", "breakage", "--force")
    assert result.exit_code == 0 and "on hand -1" in result.output


def test_orders_add_ship_cancel_show(invoke, store):
    invoke("stock", "set", "MUG", "5")
    added = invoke("orders", "add", "PHONE-1", "MUG:2", "--buyer-name", "Erika Muster",
                   "--buyer-email", "erika@example.org")
    assert added.exit_code == 0, added.output
    oid = added.output.split()[1].rstrip(":")
    assert "reserved 2" in invoke("stock", "show", "MUG").output
    listed = invoke("orders", "list").output
    assert "PHONE-1" in listed and "New" in listed and "Erika" not in listed
    header, row = listed.splitlines()[:2]
    assert header.split() == ["ID", "INTEGRATION", "ORDER", "STATUS", "FULFILLMENT",
                              "BOUGHT", "(UTC)", "UNITS"]
    assert header.index("ORDER") == row.index("PHONE-1")  # columns line up
    assert row.split()[-1] == "2"
    shown = invoke("orders", "show", oid).output
    assert "buyer_name: Erika Muster" in shown and "item 1: MUG x2" in shown
    assert invoke("orders", "ship", oid, "--carrier", "DHL", "--tracking", "T1").exit_code == 0
    assert "on hand 3, reserved 0" in invoke("stock", "show", "MUG").output
    assert "canceled" in invoke("orders", "cancel", oid).output
    assert "on hand 3, reserved 0, available 3" in invoke("stock", "show", "MUG").output
    again = invoke("orders", "ship", oid, "--carrier", "UPS", "--tracking", "T2")
    assert again.exit_code == 1 and "cancelled" in again.output
    assert invoke("orders", "show", "999").exit_code == 1


def test_orders_cancel_new_restocks(invoke):
    invoke("stock", "set", "CUP", "4")
    oid = invoke("orders", "add", "P2", "CUP:3").output.split()[1].rstrip(":")
    assert "available 1" in invoke("stock", "show", "CUP").output
    invoke("orders", "cancel", oid)
    assert "available 4" in invoke("stock", "show", "CUP").output
    assert "already" in invoke("orders", "cancel", oid).output


def test_a_count_below_open_orders_is_flagged_not_negative(invoke):
    """Counting 1 while an order holds 3: channels get 0 and `stock show` says SHORT."""
    invoke("stock", "set", "CUP", "4")
    invoke("orders", "add", "P3", "CUP:3")
    invoke("stock", "set", "CUP", "1")
    shown = invoke("stock", "show", "CUP").output
    assert "on hand 1, reserved 3, available 0  SHORT 2" in shown


def test_orders_import_csv(invoke, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,sku,quantity\nX1,MUG,1\nX1,CUP,1\nX2,MUG,1\n")
    assert "2 order(s)" in invoke("orders", "import", str(path)).output
    assert "reserved 2" in invoke("stock", "show", "MUG").output


def test_products_price_map_handling_time(invoke, store, tmp_path):
    from marketsync.core.domain import products
    from marketsync.core.types import ChannelListing, Money
    from decimal import Decimal

    def listing(session):
        products.apply_channel_listings(session, 1, [ChannelListing(
            channel_sku="MUG", price=Money(amount=Decimal("9.99"), currency="EUR"),
            quantity=0), ChannelListing(channel_sku="AMZ-CUP", quantity=0)])
    store.run_blocking(listing)
    assert "(MUG)" not in invoke("products", "list").output
    out = invoke("products", "price", "MUG", "12.50", "--integration", "amazon-de")
    assert out.exit_code == 0 and "1 listing(s) to push" in out.output
    assert "9.99 EUR -> 12.50" in invoke("products", "list", "MUG").output
    assert invoke("products", "price", "MUG", "1", "--integration", "nope").exit_code == 1
    assert invoke("products", "unmap", "AMZ-CUP", "--integration", "amazon-de").exit_code == 0
    assert "(unmapped)" in invoke("products", "list").output
    assert invoke("products", "map", "AMZ-CUP", "CUP", "--integration", "amazon-de") \
        .exit_code == 0
    assert "CUP  amazon-de:AMZ-CUP" in invoke("products", "list", "CUP").output
    csv = tmp_path / "h.csv"
    csv.write_text("sku,handling_time_days\nMUG,3\n")
    assert "1 row(s)" in invoke("products", "handling-time", str(csv)).output


def test_usage(invoke, store):
    def work(session):
        when = datetime(2026, 10, 5, tzinfo=timezone.utc)
        orders.apply_channel_orders(session, 1, [ChannelOrder(
            channel_order_id=f"F{n}", marketplace="DE", status=OrderStatus.SHIPPED,
            channel_status="Shipped", fulfillment=Fulfillment.FBA, purchased_at=when,
            updated_at=when, items=(ChannelOrderItem(channel_item_id="1", channel_sku="MUG",
                                                     quantity=1),)) for n in range(3)])
    store.run_blocking(work)
    out = invoke("usage", "--month", "2026-10").output
    assert "amazon-de: 1.5" in out and "total: 1.5" in out
    assert invoke("usage", "--month", "October").exit_code == 1


def test_products_add_and_delete(invoke):
    assert "created" in invoke("products", "add", "JUG", "--title", "Jug").output
    assert "exists already" in invoke("products", "add", "JUG").output
    assert "JUG: on hand 0" in invoke("stock", "show", "JUG").output
    assert "deleted locally" in invoke("products", "delete", "JUG").output
    assert "JUG" not in invoke("stock", "show").output
    assert "created" in invoke("products", "add", "JUG").output
    assert invoke("products", "delete", "NOPE").exit_code == 1


def test_products_add_carries_an_mpn_and_refuses_a_placeholder(invoke):
    assert "created (MPN DR-18V-2)" in invoke("products", "add", "DRILL", "--mpn",
                                              " DR-18V-2").output
    refused = invoke("products", "add", "SAW", "--mpn", "Does not apply")
    assert refused.exit_code != 0 and "not a part number" in refused.output
    clash = invoke("products", "add", "DRILL", "--mpn", "DR-20V")
    assert clash.exit_code != 0 and "has MPN 'DR-18V-2' already" in clash.output


def test_products_import_carries_ean_and_mpn_all_rows_or_none(invoke, store, tmp_path):
    from sqlalchemy import select

    from marketsync.core.store.models import Product

    invoke("products", "add", "DRILL", "--mpn", "DR-18V-2")
    bad = tmp_path / "products.csv"
    bad.write_text("sku,title,ean,mpn\nSAW,Saw,,Does not apply\nDRILL,,,DR-20V\n"
                   "BIT,Bits,12AB,\nBIT,Bits again,,\n")
    result = invoke("products", "import", str(bad))
    assert result.exit_code == 1
    for expected in ("line 2, column 4: mpn 'Does not apply' is not a part number",
                     "line 3, column 4: product 'DRILL' has MPN 'DR-18V-2' already",
                     "line 4, column 3: ean '12AB' is not 8 to 14 digits",
                     "line 5, column 1: sku 'BIT' again"):
        assert expected in result.output, result.output
    assert "SAW" not in invoke("stock", "show").output  # nothing applied
    good = tmp_path / "good.csv"
    good.write_text("sku,mpn,ean\nSAW,SAW-9,\nKETTLE,,012345678905\nDRILL,DR-18V-2,\n")
    assert "2 product(s) created, 1 existed already" in invoke("products", "import",
                                                               str(good)).output
    found = store.read_blocking(lambda s: {p.sku: (p.ean, p.mpn) for p in s.execute(
        select(Product).where(Product.sku.in_(["SAW", "KETTLE", "DRILL"]))).scalars()})
    assert found == {"SAW": (None, "SAW-9"), "KETTLE": ("0012345678905", None),
                     "DRILL": (None, "DR-18V-2")}


def test_commands_work_under_the_daemon_state_object(store):
    """daemon.py's root object has config() and store(); the groups build a CliContext."""
    class State:
        def config(self):
            return None

        def store(self, config):
            return store

    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = State()
    for group in GROUPS:
        root.add_command(group)
    result = CliRunner().invoke(root, ["stock", "show", "MUG"])
    assert result.exit_code == 0 and "MUG: on hand 0" in result.output


def test_label_prefills_or_overwrites_contact_and_adds_ioss():
    """`orders show` label data: the integration's IOSS, return address and contact."""
    from types import SimpleNamespace

    from marketsync.core.cli.orders import label

    details = {"buyer": {"buyer_phone": "+49 1", "buyer_email": None,
                         "ship_to_address": {"city": "Berlin", "country_code": "DE"}},
               "ship_to_country": "DE"}
    returns = SimpleNamespace(to_address=lambda: "RETURN")
    integration = SimpleNamespace(
        ioss_number="IM0123456789", return_address=returns,
        contact=SimpleNamespace(phone="+49 999", email="shop@example.org", mode="prefill"))
    prefilled = label(details, integration)
    assert prefilled["ioss_number"] == "IM0123456789"
    assert prefilled["return_address"] == "RETURN"
    assert (prefilled["phone"], prefilled["email"]) == ("+49 1", "shop@example.org")
    assert prefilled["ship_to"]["city"] == "Berlin"
    integration.contact.mode = "overwrite"
    overwritten = label(details, integration)
    assert (overwritten["phone"], overwritten["email"]) == ("+49 999", "shop@example.org")
    assert label({"buyer": {}, "ship_to_country": "FR"}, None) == {
        "ship_to": {"country_code": "FR"}}


def test_orders_ship_correct_fixes_the_tracking_number(invoke, store):
    """`orders ship --correct`: the same shipment, the new number, pending again."""
    from sqlalchemy import select

    from marketsync.core.store.models import ShipmentRow

    invoke("stock", "set", "MUG", "5")
    oid = invoke("orders", "add", "PHONE-9", "MUG:2").output.split()[1].rstrip(":")
    assert invoke("orders", "ship", oid, "--carrier", "DHL", "--tracking", "JJD-TYPO").exit_code == 0
    assert invoke("orders", "ship", oid, "--carrier", "DHL", "--tracking", "X",
                  "--was", "JJD-TYPO").exit_code == 2
    fixed = invoke("orders", "ship", oid, "--carrier", "DHL", "--tracking", "JJD-RIGHT",
                   "--correct")
    assert fixed.exit_code == 0 and "now DHL JJD-RIGHT" in fixed.output
    rows = store.run_blocking(lambda s: [(r.tracking_number, r.confirm_state)
                                         for r in s.execute(select(ShipmentRow)).scalars()])
    assert rows == [("JJD-RIGHT", "pending")]
    assert "on hand 3, reserved 0" in invoke("stock", "show", "MUG").output
    other = invoke("orders", "add", "PHONE-10", "MUG:1").output.split()[1].rstrip(":")
    unshipped = invoke("orders", "ship", other, "--carrier", "DHL", "--tracking", "Y", "--correct")
    assert unshipped.exit_code == 1 and "no shipment to correct" in unshipped.output


def test_orders_ship_import_ships_and_corrects(invoke, store, tmp_path):
    invoke("stock", "set", "MUG", "5")
    first = invoke("orders", "add", "P-1", "MUG:1").output.split()[1].rstrip(":")
    second = invoke("orders", "add", "P-2", "MUG:1").output.split()[1].rstrip(":")
    path = tmp_path / "shipments.csv"
    path.write_text(f"order_id,carrier,tracking_number\n{first},DHL,T-1\n{second},UPS,T-2\n")
    assert "2 shipment(s)" in invoke("orders", "ship-import", str(path)).output
    path.write_text(f"order_id,carrier,tracking_number,correct\n{first},DHL,T-1b,yes\n")
    assert "1 shipment(s)" in invoke("orders", "ship-import", str(path)).output
    shown = invoke("orders", "ship-import", str(path))
    assert shown.exit_code == 0  # the same correction again changes nothing
    assert "on hand 3, reserved 0" in invoke("stock", "show", "MUG").output


def test_orders_add_with_an_address_can_go_to_mcf(invoke, store):
    """`orders add` takes the recipient; it is shown with the key, and MCF accepts the order
    (the "no shipping address" refusal is gone)."""
    from marketsync.core.domain import fulfillment

    added = invoke("orders", "add", "PHONE-20", "MUG:1", "--buyer-name", "Ada Buyer",
                   "--buyer-email", "ada@example.org", "--phone", "+44 20 7946 0000",
                   "--address-line", "1 Example Street", "--address-line", "Flat 2",
                   "--city", "London", "--postal-code", "SW1A 1AA", "--country", "gb")
    assert added.exit_code == 0, added.output
    oid = added.output.split()[1].rstrip(":")
    shown = invoke("orders", "show", oid).output
    assert "'line2': 'Flat 2'" in shown and "'country_code': 'GB'" in shown
    assert "MCF order ms-" in invoke("orders", "fulfill-mcf", oid, "--integration",
                                     "amazon-de").output
    from marketsync.core.domain import products

    de = store.run_blocking(products.integration_id, "amazon-de")
    _, problems = store.run_blocking(fulfillment.unsent, de, pii.PiiCipher.from_text(KEY))
    # the address is there; only the FBA listing is missing in this store
    assert list(problems.values()) == ["no FBA listing on this integration for MUG"]
    bad = invoke("orders", "add", "PHONE-21", "MUG:1", "--address-line", "1 Road",
                 "--country", "Germany")
    assert bad.exit_code == 1
    assert "recipient's name" in bad.output and "two-letter code" in bad.output


def test_orders_import_csv_with_recipients(invoke, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,sku,quantity,buyer_name,address_line1,city,postal_code,country,phone\n"
                    "R1,MUG,1,Kim Lee,2 High St,Leeds,LS1 1AA,GB,+44 113 000\n"
                    "R1,CUP,1,,,,,,\n"
                    "R2,MUG,1,,,,,,\n")
    assert "2 order(s)" in invoke("orders", "import", str(path)).output
    listed = invoke("orders", "list").output.splitlines()
    r1 = next(line.split()[0] for line in listed if " R1 " in line)
    shown = invoke("orders", "show", r1).output
    assert "Kim Lee" in shown and "'city': 'Leeds'" in shown and "+44 113 000" in shown
    path.write_text("order_id,sku,quantity,buyer_name,address_line1,country\n"
                    "R3,MUG,1,Kim Lee,2 High St,GB\n")
    bad = invoke("orders", "import", str(path))
    assert bad.exit_code == 1 and "line 2: an address needs a city or a postal code" in bad.output


def test_stock_plan_and_accept_name_what_they_act_on(invoke):
    """No integration held: the plan says nothing changes; an unknown alias is named."""
    assert "nothing would change on any channel" in invoke("stock", "plan").output
    refused = invoke("stock", "accept", "amazon-xx")
    assert refused.exit_code == 1 and "unknown integration 'amazon-xx'" in refused.output


def test_quarantine_list_show_drop(invoke, store):
    """A quarantined record is listed, shown with its reason and kept fields, and dropped."""
    from marketsync.core.store import quarantine
    from marketsync.core.store.models import IntegrationRow

    def add(session):
        integration_id = session.query(IntegrationRow).one().id
        quarantine.add(session, integration_id, "import_orders", "305-1", "TypeError: odd",
                       {"orderId": "305-1", "programs": 5, "buyer": {"buyerName": "E. M."}},
                       trace="orders.py:250 in map_order")
    assert "quarantine is empty" in invoke("quarantine", "list").output
    store.run_blocking(add)
    listed = invoke("quarantine", "list").output
    assert "amazon-de  import_orders  305-1  seen 1x" in listed and "TypeError: odd" in listed
    [line] = [l for l in listed.splitlines() if "305-1" in l]
    record_id = line.split()[0]
    shown = invoke("quarantine", "show", record_id).output
    assert "reason: TypeError: odd" in shown and "trace: orders.py:250 in map_order" in shown
    assert '"buyer": "<object>"' in shown and "E. M." not in shown
    assert invoke("quarantine", "show", "999").exit_code == 1
    assert "dropped 1 record(s)" in invoke("quarantine", "drop", record_id).output
    assert invoke("quarantine", "drop", record_id).exit_code == 1
    assert "quarantine is empty" in invoke("quarantine", "list").output


def test_pii_status_counts_buyer_data_and_the_next_purge(invoke, store):
    """`pii status`: orders holding buyer data and when their purge is due."""
    assert "orders holding buyer data: 0" in invoke("pii", "status").output

    def add(session):
        from marketsync.core.store.models import IntegrationRow

        integration_id = session.query(IntegrationRow).one().id
        purchased = datetime(2030, 1, 1, tzinfo=timezone.utc)
        orders.apply_channel_orders(session, integration_id, [ChannelOrder(
            channel_order_id="A-1", marketplace="DE", status=OrderStatus.NEW,
            channel_status="UNSHIPPED", fulfillment=Fulfillment.MFN, purchased_at=purchased,
            updated_at=purchased, buyer=Buyer(name="Erika Muster"),
            items=(ChannelOrderItem(channel_item_id="1", channel_sku="MUG", quantity=1),))],
            cipher=pii.PiiCipher.from_text(KEY))
    store.run_blocking(add)
    shown = invoke("pii", "status").output
    assert "orders holding buyer data: 1" in shown
    assert "next purge due: 2030-03-02 00:00 UTC (1 order(s) that day)" in shown
    assert "at most 60 days after purchase" in shown and "Erika" not in shown
