"""What an invoice or packing slip says, gathered from the store and the configuration.

Rendering (``core.documents.pdf``) only ever sees the plain values built here, so a
seller's template cannot reach the database or the cipher, and the same values can be
tested without drawing a page. Buyer data is opened here, for the document alone, and
never logged; an order without buyer data (purged, or withheld by the channel as for
Australian orders without PII access) still gets a document, without the addresses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import pii
from marketsync.core.domain.invoices import DEFAULT_NUMBER_FORMAT, assign_invoice_number
from marketsync.core.domain.orders import get_order
from marketsync.core.store.models import IntegrationRow, Order
from marketsync.core.types import Address, Fulfillment, OrderStatus

Kind = Literal["invoice", "packing_slip"]
KINDS: tuple[Kind, ...] = ("invoice", "packing_slip")

#: The EU's VAT area for goods: member states (ISO 3166-1), plus Northern Ireland's
#: "XI", which follows EU rules for goods.
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI"
    .split())
#: IOSS covers consignments of an intrinsic value (goods without VAT and transport) up to
#: this many euros; above it, import VAT is paid at the border instead.
IOSS_THRESHOLD_EUR = Decimal("150")


class DocumentError(ValueError):
    """An order cannot be printed as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Seller:
    """The integration's face on paper: its settings from the configuration."""

    name: str  #: the heading: the company name, the alias where none is configured
    alias: str | None = None  #: the integration's alias (defaults to ``name``)
    logo: Path | None = None
    return_address: Address | None = None
    phone: str | None = None
    email: str | None = None
    ioss_number: str | None = None
    #: where merchant-fulfilled parcels leave from; None: the return address's country
    ships_from: str | None = None
    invoice_template: Path | None = None
    packing_slip_template: Path | None = None
    invoice_number_format: str = DEFAULT_NUMBER_FORMAT

    @classmethod
    def from_config(cls, integration: Any) -> "Seller":
        """From a ``config.IntegrationConfig``; reads the optional ``documents`` section
        (``invoice_template``, ``packing_slip_template``, ``invoice_number_format``)
        when the configuration has one."""
        contact = getattr(integration, "contact", None)
        returns = getattr(integration, "return_address", None)
        documents = getattr(integration, "documents", None)
        return cls(
            name=getattr(integration, "company_name", None) or integration.alias,
            alias=integration.alias,
            ships_from=getattr(integration, "ships_from", None),
            logo=getattr(integration, "logo", None),
            return_address=returns.to_address() if returns is not None else None,
            phone=getattr(contact, "phone", None),
            email=getattr(contact, "email", None),
            ioss_number=getattr(integration, "ioss_number", None),
            invoice_template=getattr(documents, "invoice_template", None),
            packing_slip_template=getattr(documents, "packing_slip_template", None),
            invoice_number_format=getattr(documents, "invoice_number_format", None)
            or DEFAULT_NUMBER_FORMAT,
        )

    def template(self, kind: Kind) -> Path | None:
        return self.invoice_template if kind == "invoice" else self.packing_slip_template

    def origin(self) -> str | None:
        """The country this seller's own parcels leave from, when known."""
        if self.ships_from:
            return self.ships_from
        return self.return_address.country_code if self.return_address else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    sku: str
    title: str
    quantity: int
    unit_price: Decimal | None
    tax: Decimal | None  #: the line's tax as the channel reported it
    amount: Decimal | None  #: unit price × quantity


@dataclass(frozen=True, slots=True, kw_only=True)
class VatRate:
    """One row of the VAT summary: the lines taxed at one rate, added up."""

    rate: Decimal  #: percent, derived from the channel's amounts (to the nearest 0.5)
    net: Decimal
    tax: Decimal
    gross: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDocument:
    """One order as a document shows it; ``seller`` is filled in by the caller."""

    order_id: int
    integration: str  #: alias
    number: str  #: the channel's order number
    purchased_at: datetime
    marketplace: str
    currency: str | None
    lines: tuple[Line, ...]
    subtotal: Decimal | None
    tax_total: Decimal | None
    total: Decimal | None
    destination: str | None  #: country code the parcel goes to, when known
    #: country code the parcel leaves from: the channel's network for channel-fulfilled
    #: orders, the seller's ``ships_from`` for their own
    origin: str | None = None
    buyer_name: str | None = None
    buyer_email: str | None = None
    ship_to: Address | None = None
    invoice_number: str | None = None
    seller: Seller | None = None

    @property
    def tax_included(self) -> bool:
        """EU-style prices contain the tax: the total is the items' sum."""
        return (self.tax_total is not None and self.total is not None
                and self.subtotal == self.total)

    def goods_value(self) -> Decimal | None:
        """The items without tax: what IOSS calls the intrinsic value."""
        if self.subtotal is None:
            return None
        return self.subtotal - (self.tax_total or 0) if self.tax_included else self.subtotal

    def ioss_number(self) -> str | None:
        """The seller's IOSS number where IOSS applies, else None.

        IOSS is for distance sales of goods imported into the EU: the parcel goes to an
        EU destination, leaves from outside the EU, and is worth at most EUR 150 without
        VAT. A DE→DE order is a domestic sale (no import at all); a parcel over the
        threshold pays import VAT at the border. The threshold can only be checked for
        amounts in euros (marketsync keeps no exchange rates), so another currency never
        prints the number.
        """
        if self.seller is None or not self.seller.ioss_number:
            return None
        value = self.goods_value()
        if (self.destination not in EU_COUNTRIES or self.origin is None
                or self.origin in EU_COUNTRIES or self.currency != "EUR" or value is None
                or value > IOSS_THRESHOLD_EUR):
            return None
        return self.seller.ioss_number

    def vat_summary(self) -> tuple[VatRate, ...]:
        """Lines with a reported tax, grouped by the rate their amounts imply.

        The channel reports tax amounts, not rates; a rate is derived from each line's
        net and tax and rounded to the nearest half percent (cents make it inexact), which
        gives back the statutory rates (19, 7, 5.5, 20, …).
        """
        groups: dict[Decimal, list[Decimal]] = {}
        for line in self.lines:
            if line.tax is None or line.amount is None:
                continue
            net = line.amount - line.tax if self.tax_included else line.amount
            if net <= 0:
                continue
            rate = (line.tax / net * 200).quantize(Decimal("1")) / 2
            total = groups.setdefault(rate, [Decimal(0), Decimal(0)])
            total[0] += net
            total[1] += line.tax
        return tuple(VatRate(rate=rate, net=net, tax=tax, gross=net + tax)
                     for rate, (net, tax) in sorted(groups.items()))


@dataclass(slots=True)
class Selection:
    """Which orders ``--date`` / ``--status`` / ``--integration`` mean."""

    day: date | None = None
    status: OrderStatus | None = None
    integration_id: int | None = None
    exclude_canceled: bool = field(default=True)


def select_orders(session: Session, selection: Selection) -> list[int]:
    """Order ids in print order (purchase time, then id). A day is a UTC calendar day.

    Cancelled orders are left out unless ``--status Canceled`` asks for them: nobody
    packs or invoices a cancelled order by accident.
    """
    if selection.day is None and selection.status is None:
        raise DocumentError("name an order id, or --date YYYY-MM-DD and/or --status")
    query = select(Order.id).order_by(Order.purchased_at, Order.id)
    if selection.day is not None:
        start = datetime.combine(selection.day, time(), tzinfo=timezone.utc)
        query = query.where(Order.purchased_at >= start,
                            Order.purchased_at < start + timedelta(days=1))
    if selection.status is not None:
        query = query.where(Order.status == selection.status)
    elif selection.exclude_canceled:
        query = query.where(Order.status != OrderStatus.CANCELED)
    if selection.integration_id is not None:
        query = query.where(Order.integration_id == selection.integration_id)
    return list(session.execute(query).scalars())


def load_document(session: Session, order_id: int, kind: Kind, *,
                  cipher: pii.PiiCipher | None,
                  sellers: Mapping[str, Seller] | None = None) -> OrderDocument:
    """The document of one order; for an invoice, allocates its number on first print.

    :param cipher: opens the buyer data; None is fine for orders that have none.
    :param sellers: by integration alias, from ``Seller.from_config``; an integration
        missing here prints under its alias alone, numbered with the default format.
    :raises orders.UnknownOrder: no such order.
    :raises DocumentError: a cancelled order, or buyer data present but no key to open it.
    """
    if kind not in KINDS:
        raise DocumentError(f"unknown document kind {kind!r} (known: {', '.join(KINDS)})")
    order = get_order(session, order_id)
    if order.status is OrderStatus.CANCELED:
        raise DocumentError(f"order {order_id} ({order.channel_order_id}) is canceled: "
                            f"no {kind.replace('_', ' ')} for it")
    buyer = _open_buyer(order, cipher)
    alias = session.execute(select(IntegrationRow.alias)
                            .where(IntegrationRow.id == order.integration_id)).scalar_one()
    seller = (sellers or {}).get(alias) or Seller(name=alias, alias=alias)
    invoice_number = None
    if kind == "invoice":
        invoice_number = assign_invoice_number(session, order_id,
                                               number_format=seller.invoice_number_format)
    lines = tuple(_line(item) for item in order.items)
    subtotal = _sum(line.amount for line in lines)
    tax_total = _sum(line.tax for line in lines)
    currency = order.currency or next((i.currency for i in order.items if i.currency), None)
    ship_to = buyer.get("ship_to")
    destination = order.ship_to_country or (ship_to.country_code if ship_to else None)
    market_country = _marketplace_country(order.marketplace)
    origin = market_country if order.fulfillment is Fulfillment.FBA else (
        seller.origin() or market_country)
    return OrderDocument(
        order_id=order.id, integration=alias, number=order.channel_order_id,
        purchased_at=order.purchased_at, marketplace=order.marketplace, currency=currency,
        lines=lines, subtotal=subtotal, tax_total=tax_total,
        total=order.total if order.total is not None else subtotal,
        destination=destination or market_country, origin=origin,
        buyer_name=buyer.get("name"), buyer_email=buyer.get("email"), ship_to=ship_to,
        invoice_number=invoice_number, seller=seller,
    )


def _open_buyer(order: Order, cipher: pii.PiiCipher | None) -> dict[str, Any]:
    present = [c for c in pii.PII_COLUMNS if getattr(order, c) is not None]
    if not present:
        return {}
    if cipher is None:
        raise DocumentError(
            f"order {order.id} has encrypted buyer data but no PII key is configured "
            "(pii.key in the configuration, or $MARKETSYNC_PII_KEY)")

    def opened(column: str) -> str | None:
        aad = pii.order_aad(column, order.integration_id, order.channel_order_id)
        return cipher.open_optional(getattr(order, column), aad)

    result: dict[str, Any] = {"name": opened("buyer_name"), "email": opened("buyer_email")}
    address = opened("ship_to_address")
    if address:
        fields = json.loads(address)
        known = {k: v for k, v in fields.items() if k in Address.__slots__}
        result["ship_to"] = Address(**known)
    return result


def _line(item: Any) -> Line:
    amount = item.unit_price * item.quantity if item.unit_price is not None else None
    return Line(sku=item.channel_sku, title=item.title or "", quantity=item.quantity,
                unit_price=item.unit_price, tax=item.tax, amount=amount)


def _sum(values: Any) -> Decimal | None:
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _marketplace_country(marketplace: str) -> str | None:
    """Amazon's marketplace codes are country codes, except UK for GB."""
    code = marketplace.upper()
    return "GB" if code == "UK" else code if len(code) == 2 else None
