"""Golden invoices: one per tax and IOSS case, rendered to PDF and compared as extracted text.

A change to the shipped template or to what an invoice says shows up here as a text diff.
After an intended change, regenerate with ``MARKETSYNC_UPDATE_GOLDEN=1 pytest
tests/core/documents/test_golden.py`` and review the diff of ``golden/*.txt``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from marketsync.core.documents.pdf import render_pdf
from marketsync.core.types import Address, Fulfillment, Money

from .test_documents import (  # noqa: F401 - sqlite_store is a fixture
    RETURNS,
    add_orders,
    channel_order,
    documents,
    pdf_pages,
    seller,
    sqlite_store,
)

GOLDEN = Path(__file__).parent / "golden"


def taxed(order, *taxes: str, prices: tuple[str, ...] = ()):
    """The order with each item's tax (and unit price) replaced, total = items' sum."""
    items = []
    for index, item in enumerate(order.items):
        price = Money(amount=Decimal(prices[index]), currency=order.currency) if prices \
            else item.unit_price
        tax = Money(amount=Decimal(taxes[index]), currency=order.currency) \
            if index < len(taxes) and taxes[index] else None
        items.append(replace(item, unit_price=price, tax=tax))
    total = sum((i.unit_price.amount * i.quantity for i in items), Decimal(0))
    return replace(order, items=tuple(items), total=Money(amount=total, currency=order.currency))


CASES = {
    # DE seller, DE buyer: the company as heading, VAT per line and a 19 % summary, no IOSS
    "de-domestic": dict(order=lambda: taxed(channel_order("DE-1", country="DE"), "3.99", "1.12"),
                        seller=dict(name="Acme Haushaltswaren GmbH", alias="amazon-de")),
    # two rates on one invoice (19 % and 7 %)
    "de-two-rates": dict(order=lambda: taxed(channel_order("DE-2", country="DE"), "3.99", "0.46"),
                         seller=dict(name="Acme Haushaltswaren GmbH", alias="amazon-de")),
    # no company name configured: the alias is the heading
    "alias-heading": dict(order=lambda: taxed(channel_order("DE-3", country="DE"), "3.99", "1.12"),
                          seller=dict(name="amazon-de")),
    # shipped from China to Germany at EUR 32: IOSS applies, the number is printed
    "ioss-import": dict(order=lambda: taxed(channel_order("CN-1", country="DE"), "3.99", "1.12"),
                        seller=dict(name="Acme Trading Ltd", alias="amazon-de",
                                    ships_from="CN")),
    # the same over EUR 150 without VAT: import VAT at the border, no IOSS number
    "ioss-over-threshold": dict(
        order=lambda: taxed(channel_order("CN-2", country="DE"), "31.93", "15.97",
                            prices=("100.00", "100.00")),
        seller=dict(name="Acme Trading Ltd", alias="amazon-de", ships_from="CN")),
    # a US order: sales tax is not in the seller's prices; no VAT summary, no IOSS
    "us-no-vat": dict(order=lambda: taxed(channel_order("US-1", marketplace="US", country="US",
                                                        currency="USD")),
                      seller=dict(name="Acme Inc.", alias="amazon-de", ships_from="CN")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invoice_text_matches_its_golden_file(sqlite_store, case):
    """The invoice of each case reads exactly as its golden text."""
    spec = CASES[case]
    [oid] = add_orders(sqlite_store, spec["order"]())
    [page] = pdf_pages(render_pdf("invoice", documents(
        sqlite_store, [oid], sellers=seller(**spec["seller"]))))
    golden = GOLDEN / f"{case}.txt"
    if os.environ.get("MARKETSYNC_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(page + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with MARKETSYNC_UPDATE_GOLDEN=1"
    assert page + "\n" == golden.read_text(encoding="utf-8")


def test_the_cases_say_what_the_rules_say(sqlite_store):
    """Independent of the golden text: heading, VAT summary rows and IOSS per case."""
    pages = {}
    for case, spec in CASES.items():
        [oid] = add_orders(sqlite_store, spec["order"]())
        [pages[case]] = pdf_pages(render_pdf("invoice", documents(
            sqlite_store, [oid], sellers=seller(**spec["seller"]))))
    first_line = {case: page.splitlines()[0] for case, page in pages.items()}
    assert first_line["de-domestic"].startswith("Acme Haushaltswaren GmbH")
    assert first_line["alias-heading"].startswith("amazon-de")
    assert "amazon-de" not in pages["de-domestic"].split("Invoice")[0]
    assert "VAT 19 % 26.89 EUR 5.11 EUR 32.00 EUR" in pages["de-domestic"]
    assert "VAT 7 %" in pages["de-two-rates"] and "VAT 19 %" in pages["de-two-rates"]
    assert "3.99 EUR" in pages["de-domestic"] and "1.12 EUR" in pages["de-domestic"]
    ioss = {case: "IOSS number IM2760000001" in page for case, page in pages.items()}
    assert ioss == {"de-domestic": False, "de-two-rates": False, "alias-heading": False,
                    "ioss-import": True, "ioss-over-threshold": False, "us-no-vat": False}
    assert "VAT" not in pages["us-no-vat"]


@pytest.mark.parametrize("destination, ships_from, fulfillment, currency, expected", [
    ("DE", None, Fulfillment.MFN, "EUR", False),       # domestic DE→DE (return address DE)
    ("PL", None, Fulfillment.MFN, "EUR", False),       # intra-EU DE→PL
    ("PL", "CN", Fulfillment.MFN, "EUR", True),        # imported into the EU
    ("XI", "GB", Fulfillment.MFN, "EUR", True),        # GB→Northern Ireland follows EU rules
    ("GB", "CN", Fulfillment.MFN, "GBP", False),       # not into the EU
    ("PL", "CN", Fulfillment.FBA, "EUR", False),       # Amazon ships from its DE network
    ("SE", "CN", Fulfillment.MFN, "SEK", False),       # no euro amount to check the threshold
])
def test_ioss_applies_only_to_imports_into_the_eu_up_to_150_eur(
        sqlite_store, destination, ships_from, fulfillment, currency, expected):
    order = replace(channel_order("X-1", country=destination, currency=currency),
                    fulfillment=fulfillment)
    [oid] = add_orders(sqlite_store, order)
    [doc] = documents(sqlite_store, [oid], sellers=seller(ships_from=ships_from))
    assert (doc.ioss_number() == "IM2760000001") is expected
