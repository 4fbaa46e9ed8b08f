"""``marketsync documents``: the commands write real PDFs, read back here."""

from __future__ import annotations

import base64
import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import click
import pypdf
import pytest
from click.testing import CliRunner
from PIL import Image

from marketsync.core.domain import orders, pii
from marketsync.core.cli import CliContext
from marketsync.core.cli.documents import documents
from marketsync.core.config.schema import ContactConfig, IntegrationConfig, ReturnAddressConfig
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.types import (
    Address,
    Buyer,
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    Money,
    OrderStatus,
)

KEY = base64.b64encode(bytes(range(32))).decode()
CIPHER = pii.PiiCipher.from_text(KEY)
DAY = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


def order(number: str, *, status: OrderStatus = OrderStatus.NEW, hour: int = 10) -> ChannelOrder:
    when = DAY.replace(hour=hour)
    return ChannelOrder(
        channel_order_id=number, marketplace="DE", status=status, channel_status=status.value,
        fulfillment=Fulfillment.MFN, purchased_at=when, updated_at=when, currency="EUR",
        items=(ChannelOrderItem(channel_item_id=f"{number}-1", channel_sku="MUG", quantity=1,
                                title="Mug", unit_price=Money(amount=Decimal("9.90"),
                                                              currency="EUR")),),
        total=Money(amount=Decimal("9.90"), currency="EUR"),
        buyer=Buyer(name="Erika Mustermann"),
        shipping_address=Address(name="Erika Mustermann", line1="Heidestr. 17",
                                 city="Köln", postal_code="51147", country_code="DE"),
    )


@pytest.fixture
def store(tmp_path, _sqlite_template):
    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as db:
        def world(session):
            integration = ensure_integration(session, alias="amazon-de", channel="amazon",
                                             account="acme", marketplace="DE")
            return orders.apply_channel_orders(
                session, integration,
                [order("O-1", hour=9), order("O-2", hour=12),
                 order("O-3", status=OrderStatus.SHIPPED, hour=15),
                 order("O-4", status=OrderStatus.CANCELED, hour=16)],
                cipher=CIPHER).order_ids
        db.ids = db.run_blocking(world)
        yield db


@pytest.fixture
def config(tmp_path):
    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), (200, 30, 30)).save(logo)
    integration = IntegrationConfig(
        alias="amazon-de", account="acme", channel="amazon", marketplace="DE", logo=logo,
        company_name="Acme GmbH", ioss_number="IM2760000001", contact=ContactConfig(email="shop@acme.example"),
        return_address=ReturnAddressConfig(name="Acme GmbH", line1="Lagerweg 4",
                                           city="Leipzig", postal_code="04109",
                                           country_code="DE"))
    return SimpleNamespace(integrations=(integration,))


@pytest.fixture
def invoke(store, config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = CliContext(store=store, config=config, _cipher=CIPHER, cipher_given=True)
    root.add_command(documents)

    def call(*args: str):
        return CliRunner().invoke(root, ["documents", *args], catch_exceptions=False)
    return call


def pages(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def test_invoice_of_one_order(invoke, store, tmp_path):
    """The default file name, the number in the message and the configured seller data."""
    result = invoke("invoice", str(store.ids[1]))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == \
        f"invoice amazon-de-000001 of order {store.ids[1]} (O-2): invoice-{store.ids[1]}.pdf"
    [page] = pages(tmp_path / f"invoice-{store.ids[1]}.pdf")
    for text in ("Acme GmbH", "Lagerweg 4", "shop@acme.example",
                 "Erika Mustermann", "51147 Köln", "9.90 EUR", "amazon-de-000001"):
        assert text in page, text
    assert page.splitlines()[0] == "Acme GmbH"  # the company, not the alias, heads it
    assert "IM2760000001" not in page  # DE→DE is no import: no IOSS number
    again = invoke("invoice", str(store.ids[1]), "--out", "again.pdf")
    assert "amazon-de-000001" in again.output  # a reprint keeps its number
    assert "amazon-de-000001" in pages(tmp_path / "again.pdf")[0]


def test_a_days_invoices_one_order_per_page(invoke, store, tmp_path):
    """The cancelled order is left out; the others are numbered in purchase order."""
    result = invoke("invoice", "--date", "2026-11-26")
    assert result.exit_code == 0, result.output
    assert "3 invoices for orders bought on 2026-11-26" in result.output
    printed = pages(tmp_path / "invoices-2026-11-26.pdf")
    assert len(printed) == 3
    for page, (number, invoice) in zip(printed, [("O-1", "000001"), ("O-2", "000002"),
                                                 ("O-3", "000003")]):
        assert number in page and f"amazon-de-{invoice}" in page
        assert "O-4" not in page


def test_packing_slips_for_new_orders(invoke, tmp_path):
    result = invoke("packing-slip", "--status", "New", "--out", str(tmp_path / "slips.pdf"))
    assert result.exit_code == 0, result.output
    printed = pages(tmp_path / "slips.pdf")
    assert len(printed) == 2 and "O-1" in printed[0] and "O-2" in printed[1]
    assert not any("EUR" in page for page in printed)


def test_integration_filter_and_template_option(invoke, tmp_path):
    own = tmp_path / "own.html"
    own.write_text("<p>SLIP {{ order.number }} FROM {{ seller.alias }}</p>")
    result = invoke("packing-slip", "--status", "New", "--integration", "amazon-de",
                    "--template", str(own))
    assert result.exit_code == 0, result.output
    printed = pages(tmp_path / "packing-slips-New.pdf")
    assert [p.strip() for p in printed] == ["SLIP O-1 FROM amazon-de",
                                            "SLIP O-2 FROM amazon-de"]


@pytest.mark.parametrize("args, message", [
    (("invoice",), "give an ORDER_ID"),
    (("invoice", "1", "--date", "2026-11-26"), "not both"),
    (("invoice", "1", "--integration", "amazon-de"), "--integration only narrows"),
])
def test_usage_mistakes(invoke, args, message):
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.output


def test_fixable_errors_are_one_line(invoke, store, tmp_path):
    """Unknown order, nothing on that day, cancelled order, unknown integration, bad
    template: exit 1 with a message, no traceback, no PDF."""
    bad = tmp_path / "bad.html"
    bad.write_text("<p>\n{{ order.nope }}\n</p>")
    cases = [(("invoice", "999"), "unknown order 999"),
             (("invoice", "--date", "2026-01-01"), "no orders bought on 2026-01-01"),
             (("invoice", str(store.ids[3])), "canceled"),
             (("invoice", "--status", "New", "--integration", "nope"), "nope"),
             (("invoice", str(store.ids[0]), "--template", str(bad)), f"{bad}:2:")]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert message in result.output and "Traceback" not in result.output, args
    assert not list(tmp_path.glob("*.pdf"))
