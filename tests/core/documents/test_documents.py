"""Invoices and packing slips: real PDFs rendered from the store, read back as text."""

from __future__ import annotations

import base64
import io
import subprocess
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import trio
from PIL import Image

from marketsync.core.domain import orders, pii
from marketsync.core.documents.pdf import (
    TemplateError,
    default_template,
    load_template,
    render_pdf,
)
from marketsync.core.documents.content import (
    DocumentError,
    Selection,
    Seller,
    load_document,
    select_orders,
)
from marketsync.core.domain.invoices import (
    InvoiceNumberFormatError,
    assign_invoice_number,
    peek_next_number,
)
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration, integration_id
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
WHEN = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
RETURNS = Address(name="Acme Returns", line1="Lagerweg 4", city="Leipzig",
                  postal_code="04109", country_code="DE")


def channel_order(number: str, *, marketplace: str = "DE", country: str | None = "DE",
                  buyer: str | None = "Łukasz Żółć", status: OrderStatus = OrderStatus.NEW,
                  when: datetime = WHEN, currency: str = "EUR") -> ChannelOrder:
    address = None
    if country is not None and buyer is not None:
        address = Address(name=buyer, line1="ul. Długa 5", city="Gdańsk",
                          postal_code="80-001", country_code=country)
    return ChannelOrder(
        channel_order_id=number, marketplace=marketplace, status=status,
        channel_status=status.value, fulfillment=Fulfillment.MFN, purchased_at=when,
        updated_at=when, currency=currency,
        items=(ChannelOrderItem(channel_item_id=f"{number}-1", channel_sku="MUG-RED",
                                quantity=2, title="Red mug, 300 ml",
                                unit_price=Money(amount=Decimal("12.50"), currency=currency),
                                tax=Money(amount=Decimal("3.99"), currency=currency)),
               ChannelOrderItem(channel_item_id=f"{number}-2", channel_sku="CUP-BLUE",
                                quantity=1, title="Blue cup",
                                unit_price=Money(amount=Decimal("7.00"), currency=currency))),
        total=Money(amount=Decimal("32.00"), currency=currency),
        buyer=Buyer(name=buyer, email="buyer@example.org") if buyer else None,
        shipping_address=address, pii_available=buyer is not None,
    )


def add_orders(store: Store, *incoming: ChannelOrder, alias: str = "amazon-de",
               cipher: pii.PiiCipher | None = CIPHER) -> list[int]:
    def work(session):
        integration = ensure_integration(session, alias=alias, channel="amazon",
                                         account="acme", marketplace="DE")
        return orders.apply_channel_orders(session, integration, list(incoming),
                                           cipher=cipher).order_ids
    return store.run_blocking(work)


def seller(**changes) -> dict[str, Seller]:
    values = dict(name="amazon-de", return_address=RETURNS, email="shop@acme.example",
                  ioss_number="IM2760000001")
    values.update(changes)
    return {"amazon-de": Seller(**values)}


def documents(store: Store, ids: list[int], kind: str = "invoice", **kwargs):
    kwargs.setdefault("cipher", CIPHER)
    kwargs.setdefault("sellers", seller())
    return store.run_blocking(lambda s: [load_document(s, i, kind, **kwargs) for i in ids])


def pdf_pages(data: bytes) -> list[str]:
    assert data.startswith(b"%PDF-")
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


@pytest.fixture
def sqlite_store(tmp_path, _sqlite_template):
    import shutil

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as db:
        yield db


# --- content -----------------------------------------------------------------------------


def test_invoice_shows_seller_buyer_items_and_totals(sqlite_store):
    """Every item of the issue's content list is on the page, in the order's currency."""
    [oid] = add_orders(sqlite_store, channel_order("305-1111111-0000001"))
    [page] = pdf_pages(render_pdf("invoice", documents(sqlite_store, [oid])))
    for expected in ("amazon-de", "Acme Returns", "Lagerweg 4", "04109 Leipzig",
                     "shop@acme.example", "Invoice amazon-de-000001", "305-1111111-0000001",
                     "2026-11-26", "Łukasz Żółć",
                     "ul. Długa 5", "80-001 Gdańsk", "buyer@example.org", "MUG-RED",
                     "Red mug, 300 ml", "CUP-BLUE", "12.50 EUR", "25.00 EUR", "3.99 EUR",
                     "7.00 EUR", "32.00 EUR", "Included tax"):
        assert expected in page, expected


def test_ioss_number_only_for_eu_destinations(sqlite_store):
    """From a seller shipping from China, a parcel to the US or to Great Britain carries
    no IOSS number; one to Poland does (test_golden.py has every IOSS rule)."""
    ids = add_orders(sqlite_store, channel_order("US-1", country="US", currency="USD"),
                     channel_order("GB-1", country="GB", currency="GBP"),
                     channel_order("PL-1", country="PL"))
    pages = pdf_pages(render_pdf("invoice", documents(sqlite_store, ids,
                                                      sellers=seller(ships_from="CN"))))
    assert ["IM2760000001" in page for page in pages] == [False, False, True]
    assert "32.00 USD" in pages[0] and "32.00 GBP" in pages[1]


def test_packing_slip_has_no_prices(sqlite_store):
    """What goes in the parcel: address, SKUs and quantities, and not a single amount."""
    [oid] = add_orders(sqlite_store, channel_order("305-2"))
    [page] = pdf_pages(render_pdf("packing_slip", documents(sqlite_store, [oid],
                                                            "packing_slip")))
    assert "Packing slip" in page and "MUG-RED" in page and "80-001 Gdańsk" in page
    assert "3 unit(s)" in page
    for price in ("EUR", "12.50", "32.00", "Invoice", "IM2760000001"):
        assert price not in page, price
    de = sqlite_store.run_blocking(integration_id, "amazon-de")
    assert sqlite_store.run_blocking(peek_next_number, de) == 1  # no number used up


def test_order_without_buyer_data_still_prints(sqlite_store):
    """An Australian order without PII access prints without addresses, key or not."""
    [oid] = add_orders(sqlite_store, channel_order("AU-1", marketplace="AU", country=None,
                                                   buyer=None, currency="AUD"), cipher=None)
    [doc] = documents(sqlite_store, [oid], cipher=None)
    assert doc.buyer_name is None and doc.ship_to is None
    [page] = pdf_pages(render_pdf("invoice", [doc]))
    assert "AU-1" in page and "32.00 AUD" in page
    assert "Bill to" not in page and "Ship to" not in page.replace("Shipping", "")


def test_encrypted_buyer_data_without_a_key_is_a_clear_error(sqlite_store):
    [oid] = add_orders(sqlite_store, channel_order("DE-9"))
    with pytest.raises(DocumentError, match="no PII key is configured"):
        documents(sqlite_store, [oid], cipher=None)


def test_buyer_text_is_escaped_not_markup(sqlite_store):
    """A buyer name that looks like HTML is printed as it is, never interpreted."""
    [oid] = add_orders(sqlite_store, channel_order("DE-X", buyer="<b>Eve</b> & Co"))
    [page] = pdf_pages(render_pdf("invoice", documents(sqlite_store, [oid])))
    assert "<b>Eve</b> & Co" in page


def test_canceled_order_gets_no_document(sqlite_store):
    [oid] = add_orders(sqlite_store, channel_order("DE-C", status=OrderStatus.CANCELED))
    with pytest.raises(DocumentError, match="canceled"):
        documents(sqlite_store, [oid])


def test_one_order_per_page_in_a_batch(sqlite_store):
    """A day's PDF: as many pages as orders, each page one order, in purchase order."""
    ids = add_orders(sqlite_store, channel_order("B-2", when=WHEN.replace(hour=11)),
                     channel_order("B-1", when=WHEN.replace(hour=8)),
                     channel_order("B-3", when=WHEN.replace(hour=15)))
    chosen = sqlite_store.run_blocking(select_orders, Selection(day=date(2026, 11, 26)))
    assert chosen == [ids[1], ids[0], ids[2]]
    pages = pdf_pages(render_pdf("packing_slip",
                                 documents(sqlite_store, chosen, "packing_slip")))
    assert len(pages) == 3
    assert [[n for n in ("B-1", "B-2", "B-3") if n in p] for p in pages] == \
        [["B-1"], ["B-2"], ["B-3"]]


def test_selection_by_day_and_status(sqlite_store):
    ids = add_orders(sqlite_store, channel_order("S-1"),
                     channel_order("S-2", status=OrderStatus.SHIPPED),
                     channel_order("S-3", status=OrderStatus.CANCELED),
                     channel_order("S-4", when=datetime(2026, 11, 27, 0, 0, tzinfo=timezone.utc)))
    run = sqlite_store.run_blocking
    assert run(select_orders, Selection(day=date(2026, 11, 26))) == ids[:2]
    assert run(select_orders, Selection(status=OrderStatus.NEW)) == [ids[0], ids[3]]
    assert run(select_orders, Selection(status=OrderStatus.CANCELED)) == [ids[2]]
    with pytest.raises(DocumentError, match="--date"):
        run(select_orders, Selection())


# --- logo, templates -----------------------------------------------------------------------


def test_png_logo_is_embedded(sqlite_store, tmp_path):
    logo = tmp_path / "logo.png"
    Image.new("RGB", (240, 80), (31, 111, 139)).save(logo)
    [oid] = add_orders(sqlite_store, channel_order("L-1"))
    data = render_pdf("invoice", documents(sqlite_store, [oid], sellers=seller(logo=logo)))
    page = pypdf.PdfReader(io.BytesIO(data)).pages[0]
    assert [image.image.size for image in page.images] == [(240, 80)]


def test_svg_logo_renders(sqlite_store, tmp_path):
    """SVG is drawn as vectors: its text ends up in the page's text."""
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="60">'
                    '<text x="10" y="40" font-size="30">ACMELOGO</text></svg>')
    [oid] = add_orders(sqlite_store, channel_order("L-2"))
    [page] = pdf_pages(render_pdf("invoice", documents(sqlite_store, [oid],
                                                       sellers=seller(logo=logo))))
    assert "ACMELOGO" in page


def test_seller_template_overrides_the_default(sqlite_store, tmp_path):
    own = tmp_path / "mine.html"
    own.write_text("<p>RECHNUNG {{ order.invoice_number }} für {{ order.buyer_name }}</p>\n"
                   "{% for line in order.lines %}<p>{{ line.sku }}={{ line.amount | money }}"
                   "</p>{% endfor %}")
    [oid] = add_orders(sqlite_store, channel_order("T-1"))
    docs = documents(sqlite_store, [oid], sellers=seller(invoice_template=own))
    [page] = pdf_pages(render_pdf("invoice", docs))
    assert "RECHNUNG amazon-de-000001 für Łukasz Żółć" in page
    assert "MUG-RED=25.00" in page and "CUP-BLUE=7.00" in page
    explicit = tmp_path / "explicit.html"
    explicit.write_text("<p>EXPLICIT {{ order.number }}</p>")
    [page] = pdf_pages(render_pdf("invoice", docs, template=explicit))
    assert "EXPLICIT T-1" in page


def test_template_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<p>one</p>\n<p>two</p>\n{% for line in order.lines %}\n<p>never closed</p>\n")
    with pytest.raises(TemplateError) as caught:
        load_template(bad)
    assert caught.value.line == 4 and str(caught.value).startswith(f"{bad}:4: ")


def test_template_runtime_error_names_the_line(sqlite_store, tmp_path):
    """A misspelt name fails on its line instead of leaving a blank on the invoice."""
    bad = tmp_path / "typo.html"
    bad.write_text("<p>{{ order.number }}</p>\n<p>ok</p>\n<p>{{ order.totl }}</p>\n")
    [oid] = add_orders(sqlite_store, channel_order("T-2"))
    with pytest.raises(TemplateError, match=r"typo\.html:3: .*totl") as caught:
        render_pdf("invoice", documents(sqlite_store, [oid]), template=bad)
    assert caught.value.line == 3


def test_error_in_an_included_template_names_that_file(sqlite_store, tmp_path):
    (tmp_path / "main.tmpl").write_text("<p>{{ order.number }}</p>\n{% include 'part.tmpl' %}\n")
    (tmp_path / "part.tmpl").write_text("<p>one</p>\n<p>{{ order.number | no_such_filter }}</p>\n")
    [oid] = add_orders(sqlite_store, channel_order("T-4"))
    with pytest.raises(TemplateError, match=r"part\.tmpl:2: .*no_such_filter"):
        render_pdf("invoice", documents(sqlite_store, [oid]), template=tmp_path / "main.tmpl")


def test_template_errors_do_not_quote_buyer_data(sqlite_store, tmp_path):
    """A failed lookup quotes its key; when the key is the buyer's name, it is redacted."""
    bad = tmp_path / "leak.html"
    bad.write_text("<p>{{ {}[order.buyer_name] }}</p>")
    [oid] = add_orders(sqlite_store, channel_order("T-5"))
    with pytest.raises(TemplateError) as caught:
        render_pdf("invoice", documents(sqlite_store, [oid]), template=bad)
    assert "Łukasz" not in str(caught.value) and "<redacted text len=11>" in str(caught.value)
    assert caught.value.line == 1


def test_missing_template_and_remote_urls_are_refused(sqlite_store, tmp_path):
    [oid] = add_orders(sqlite_store, channel_order("T-3"))
    docs = documents(sqlite_store, [oid])
    with pytest.raises(TemplateError, match="does not exist"):
        render_pdf("invoice", docs, template=tmp_path / "nope.html")
    remote = tmp_path / "remote.html"
    remote.write_text('<img src="http://192.0.2.1/logo.png"><p>{{ order.number }}</p>')
    with pytest.raises(DocumentError, match="cannot load a file"):
        render_pdf("invoice", docs, template=remote)


def test_check_seller_reports_every_problem(tmp_path):
    """What check-config can print: a broken template by line, and a bad number format."""
    from marketsync.core.documents.pdf import check_seller

    broken = tmp_path / "broken.html"
    broken.write_text("<p>\n{% if order.number %}\n")
    assert check_seller(Seller(name="a", invoice_template=default_template("invoice"),
                               packing_slip_template=default_template("packing_slip"))) == []
    problems = check_seller(Seller(name="a", invoice_template=broken,
                                   packing_slip_template=tmp_path / "gone.html",
                                   invoice_number_format="INV"))
    assert len(problems) == 3
    assert problems[0].startswith(f"{broken}:2: ") and "does not exist" in problems[1]
    assert "does not contain {number}" in problems[2]


def test_shipped_templates_parse():
    for kind in ("invoice", "packing_slip"):
        assert load_template(default_template(kind)).filename.endswith(".html")


def test_page_renders_to_png(sqlite_store, tmp_path):
    """pdftoppm turns the first invoice page into an A4-shaped PNG to look at."""
    logo = tmp_path / "logo.png"
    Image.new("RGB", (300, 90), (31, 111, 139)).save(logo)
    [oid] = add_orders(sqlite_store, channel_order("P-1"))
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(render_pdf("invoice", documents(sqlite_store, [oid],
                                                    sellers=seller(logo=logo))))
    subprocess.run(["pdftoppm", "-png", "-r", "72", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    png = tmp_path / "page.png"
    assert png.stat().st_size > 0
    with Image.open(png) as image:
        width, height = image.size  # A4 is 595.3 x 841.9 pt: one pixel per pt at 72 dpi
        assert image.format == "PNG" and abs(width - 595) <= 1 and abs(height - 842) <= 1
        # the logo's colour is on the page, top left
        assert image.convert("RGB").getpixel((70, 60)) == (31, 111, 139)


# --- invoice numbers (both databases) ------------------------------------------------------


def test_numbers_are_sequential_per_integration_and_kept(store):
    de = add_orders(store, channel_order("N-1"), channel_order("N-2"))
    fr = add_orders(store, channel_order("N-3"), alias="amazon-fr")
    run = store.run_blocking
    assert run(assign_invoice_number, de[1]) == "amazon-de-000001"
    assert run(assign_invoice_number, fr[0]) == "amazon-fr-000001"
    assert run(assign_invoice_number, de[0]) == "amazon-de-000002"
    assert run(assign_invoice_number, de[1]) == "amazon-de-000001"  # reprint
    assert run(assign_invoice_number, de[1], number_format="X{number}") == "amazon-de-000001"
    assert run(lambda s: orders.get_order(s, de[0]).invoice_number) == "amazon-de-000002"


def test_a_rolled_back_print_returns_its_number(store):
    ids = add_orders(store, channel_order("R-1"), channel_order("R-2"))

    def fail_after_numbering(session):
        assign_invoice_number(session, ids[0])
        raise RuntimeError("printer on fire")
    with pytest.raises(RuntimeError):
        store.run_blocking(fail_after_numbering)
    assert store.run_blocking(assign_invoice_number, ids[1]) == "amazon-de-000001"


def test_bad_number_format_is_refused(store):
    [oid] = add_orders(store, channel_order("F-1"))
    for bad in ("INV-{alias}", "{nope}", "{number:d"):
        with pytest.raises(InvoiceNumberFormatError):
            store.run_blocking(assign_invoice_number, oid, number_format=bad)
    assert store.run_blocking(assign_invoice_number, oid,
                              number_format="R{number:05d}") == "R00001"


async def test_concurrent_printing_never_reuses_a_number(store):
    """Twelve printers at once, three of them on the same order: numbers 1..10, each once,
    and the shared order has one number."""
    ids = add_orders(store, *(channel_order(f"C-{n}") for n in range(10)))
    got: dict[int, list[str]] = {}

    async def allocate(order_id: int) -> None:
        number = await store.run(assign_invoice_number, order_id)
        got.setdefault(order_id, []).append(number)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for order_id in ids + [ids[0], ids[0]]:
                nursery.start_soon(allocate, order_id)
    assert len(set(got[ids[0]])) == 1
    numbers = sorted(int(values[0].rsplit("-", 1)[1]) for values in got.values())
    assert numbers == list(range(1, 11))
    de = await store.read(integration_id, "amazon-de")
    assert await store.read(peek_next_number, de) == 11


def test_docs_list_every_template_value(sqlite_store):
    """docs/documents.md names each value a template can use, and no other."""
    import re

    from marketsync.core.documents.pdf import template_context

    [oid] = add_orders(sqlite_store, channel_order("D-1"))
    [doc] = documents(sqlite_store, [oid])
    context = template_context(doc, "invoice")
    offered = {"kind"} | {f"{group}.{key}" for group in ("seller", "order")
                          for key in context[group]}
    text = (Path(__file__).resolve().parents[3] / "docs" / "documents.md").read_text()
    rows = re.findall(r"^\| (`[^|]+`) \|", text, flags=re.M)
    documented = {name for row in rows for name in re.findall(r"`([a-z_.]+)`", row)}
    assert documented == offered
