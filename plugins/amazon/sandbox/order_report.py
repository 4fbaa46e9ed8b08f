"""GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL, written from the world's orders.

Columns and their order are Amazon's "Order Tracking reports attributes" page (REFERENCE.md
§9): one row per order item, tab-separated, header first. What the rules below model, and
why a client has to care:

* The data range is by **last update** (``dataStartTime``/``dataEndTime``); an order whose
  latest change falls outside it is not in the file, so a client that trusts the report
  past ``dataEndTime`` loses the later changes.
* Amazon's order reports lag up to 30 minutes: the file shows each order as it stood
  ``DELAY`` before the report finished. A range reaching later than that is cut there.
* More than ``MAX_RANGE`` between start and end ends the report FATAL (the commonly
  reported 30-day limit, ⚠ unverified in REFERENCE.md); a range with no order CANCELLED,
  with no document, as every Amazon report without data.
* There is no order-item id, no buyer name or e-mail and no street address: only the
  city, state, postal code and country of the shipment (still buyer data).
* Prices are per line (unit price × quantity), blank while the order is Pending; tax
  columns are blank where the price carries none (US sales tax is Amazon's).
* A world order marked ``malformed`` gives rows Amazon has been seen to write: a 1995
  purchase date, an unknown status, a missing date, text where a number belongs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from marketsync.core.clock import UTC

from .orders import included_tax
from .sellers import BY_ID

if TYPE_CHECKING:
    from .reports import Report
    from .scenario import SimOrder
    from .world import World

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
DELAY = timedelta(minutes=30)
MAX_RANGE = timedelta(days=30)
#: Amazon's default range when the request names none
DEFAULT_RANGE = timedelta(days=30)

COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date",
    "order-status", "fulfillment-channel", "sales-channel", "order-channel",
    "ship-service-level", "product-name", "sku", "asin", "item-status", "quantity",
    "currency", "item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price",
    "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order",
    "purchase-order-number", "price-designation",
)

#: the v2026 status → the report's word (the v0 vocabulary, British "Cancelled")
ORDER_STATUS = {"PENDING_AVAILABILITY": "PendingAvailability", "PENDING": "Pending",
                "UNSHIPPED": "Unshipped", "PARTIALLY_SHIPPED": "PartiallyShipped",
                "SHIPPED": "Shipped", "CANCELLED": "Cancelled",
                "UNFULFILLABLE": "Unfulfillable"}


class RangeRefused(ValueError):
    """The request's data range is one Amazon does not process (the report ends FATAL)."""


def window(report: "Report", ended: datetime) -> tuple[datetime, datetime]:
    """The last-update range the report covers, as its processing sees it."""
    latest = ended - DELAY
    end = min(report.data_end or latest, latest)
    start = report.data_start or end - DEFAULT_RANGE
    if report.data_start and report.data_end and report.data_end - report.data_start > MAX_RANGE:
        raise RangeRefused(f"the data range is longer than {MAX_RANGE.days} days")
    return start, end


def rows(world: "World", report: "Report", ended: datetime) -> list[list[str]]:
    """The report's rows, ordered by last update as Amazon's are; raises RangeRefused."""
    start, end = window(report, ended)
    cut = ended - DELAY
    found: list[tuple[datetime, str, SimOrder]] = []
    for order in world.orders.values():
        if order.seller_id != report.seller_id or order.marketplace_id not in report.marketplace_ids:
            continue
        seen = order.visible(cut)
        if seen is None:
            continue
        updated = order.last_updated_at(seen)
        if start <= updated <= end:
            found.append((updated, order.order_id, order))
    lines: list[list[str]] = []
    for _, _, order in sorted(found, key=lambda entry: entry[:2]):
        lines.extend(order_rows(order, order.visible(cut) or cut))
    return lines


def order_rows(order: "SimOrder", cut: datetime) -> list[list[str]]:
    status = order.status_at(cut) or "PENDING"
    market = BY_ID[order.marketplace_id]
    address = order.address
    rows = []
    for item in order.items:
        gross = item.unit_price * item.quantity
        tax = included_tax(gross, market.code)
        shipped = (item.quantity if status == "SHIPPED"
                   else order.shipped_quantity(item.order_item_id, cut))
        priced = status not in ("PENDING", "PENDING_AVAILABILITY")
        values = dict.fromkeys(COLUMNS, "")
        values.update({
            "amazon-order-id": order.order_id,
            "purchase-date": _time(order.created),
            "last-updated-date": _time(order.last_updated_at(cut)),
            "order-status": ORDER_STATUS[status],
            "fulfillment-channel": "Amazon" if order.fulfilled_by == "AMAZON" else "Merchant",
            "sales-channel": market.name, "ship-service-level": "Standard",
            "product-name": item.title, "sku": item.sku, "asin": item.asin,
            "item-status": ("Cancelled" if status == "CANCELLED" else
                            "Shipped" if shipped >= item.quantity else "Unshipped"),
            "quantity": str(item.quantity), "currency": item.currency,
            "item-price": _amount(gross) if priced else "",
            "item-tax": _amount(tax) if priced and tax is not None else "",
            "ship-city": address.get("city", ""), "ship-state": address.get("stateOrRegion", ""),
            "ship-postal-code": address.get("postalCode", ""),
            "ship-country": address.get("countryCode", ""),
            "is-business-order": "false",
        })
        _malform(order, values)
        rows.append([_clean(values[column]) for column in COLUMNS])
    return rows


def _malform(order: "SimOrder", values: dict[str, str]) -> None:
    fault = order.malformed
    if fault == "ancient_date":
        values["purchase-date"] = "1995-06-15T09:30:00+00:00"
    elif fault == "unknown_enum":
        values["order-status"] = "AwaitingSimulatedState"
    elif fault == "missing_field":
        values["purchase-date"] = ""
    elif fault in ("wrong_type", "array_for_scalar"):
        values["quantity"] = f"[{values['quantity']}]"
    elif fault in ("string_for_object", "array_for_object"):
        values["item-price"] = "n/a"


def _time(moment: datetime) -> str:
    """The flat files' form: ``2026-11-02T12:00:00+00:00`` (not the APIs' ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _clean(value: str) -> str:
    """Tabs and newlines would break the row; Amazon drops them from titles too."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")
