"""CSV bulk input: stock, handling times and manual orders.

All or nothing: every row is checked first (shape, numbers, known SKUs) and any bad row
means nothing is applied, with every bad row reported by its line number and reason, so
a seller fixes the file once instead of discovering mistakes one run at a time.

Formats (a header row is required; extra columns are refused, to catch a wrong file):

* stock: ``sku,quantity`` (set on hand) or ``sku,delta,reason`` (adjust)
* handling times: ``sku,handling_time_days`` (empty days: back to the integration default)
* manual orders: ``order_id,sku,quantity`` and optionally the recipient:
  ``buyer_name,buyer_email,phone,address_line1,address_line2,address_line3,city,state,
  postal_code,country``; several rows with one order id make one order with several
  items (the recipient is taken from its first row that has one).
* shipments: ``order_id,carrier,tracking_number`` (the local order id, as ``orders list``
  shows it) and optionally ``ship_method``, ``correct`` (``yes``: the row corrects the
  order's shipment instead of adding one) and ``was`` (the tracking number it corrects,
  needed when the order has several shipments).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import inventory, orders, pii, products, recipients, shipments
from marketsync.core.cli.progress import track
from marketsync.core.store.models import Product
from marketsync.core.types import Address, Buyer

#: the optional recipient columns of a manual orders file
RECIPIENT_COLUMNS = ("buyer_name", "buyer_email", "phone", "address_line1", "address_line2",
                     "address_line3", "city", "state", "postal_code", "country")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CsvError(ValueError):
    """The file has bad rows; nothing was applied. ``errors`` lists every one."""

    def __init__(self, source: str, errors: Sequence[RowError]):
        self.source = source
        self.errors = list(errors)
        lines = "\n".join(f"{source}:{error}" for error in self.errors)
        super().__init__(f"{len(self.errors)} bad row(s) in {source}, nothing applied:\n{lines}")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]


def read_rows(text: str, source: str, formats: Sequence[Sequence[str]],
              optional: Sequence[str] = ()) -> tuple[tuple[str, ...], list[Row]]:
    """Parse ``text``; the header must be one of ``formats`` (plus ``optional`` columns)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = tuple(cell.strip().lower() for cell in next(reader))
    except StopIteration:
        raise CsvError(source, [RowError(1, "the file is empty; a header row is needed")])
    base = next((tuple(f) for f in formats if header[:len(f)] == tuple(f)
                 and set(header[len(f):]) <= set(optional)), None)
    if base is None:
        wanted = " or ".join(",".join(f) for f in formats)
        raise CsvError(source, [RowError(1, f"header {','.join(header)!r} is not {wanted}")])
    rows, errors = [], []
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(line, f"{len(cells)} columns, expected {len(header)}"))
            continue
        rows.append(Row(line, {name: cell.strip() for name, cell in zip(header, cells)}))
    if errors:
        raise CsvError(source, errors)
    return base, rows


def _int(row: Row, column: str, errors: list[RowError], *, minimum: int | None = None,
         maximum: int | None = None) -> int | None:
    text = row.values[column]
    try:
        value = int(text)
    except ValueError:
        errors.append(RowError(row.line, f"{column} {text!r} is not a whole number"))
        return None
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        bounds = f"{minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
        errors.append(RowError(row.line, f"{column} {value} must be {bounds}"))
        return None
    return value


def _check_skus(session: Session, rows: Sequence[Row], errors: list[RowError]) -> None:
    skus = {row.values["sku"] for row in rows}
    known = set(session.execute(select(Product.sku).where(Product.sku.in_(skus))).scalars()) \
        if skus else set()
    for row in rows:
        sku = row.values["sku"]
        if not sku:
            errors.append(RowError(row.line, "sku is empty"))
        elif sku not in known:
            errors.append(RowError(row.line, f"unknown SKU {sku!r}"))


def _duplicates(rows: Sequence[Row], column: str, errors: list[RowError]) -> None:
    first: dict[str, int] = {}
    for row in rows:
        value = row.values[column]
        if value in first:
            errors.append(RowError(row.line, f"{column} {value!r} again (first on line "
                                             f"{first[value]})"))
        else:
            first.setdefault(value, row.line)


def _finish(source: str, errors: list[RowError]) -> None:
    if errors:
        raise CsvError(source, sorted(errors, key=lambda e: e.line))


# --- the three imports ------------------------------------------------------------------------------


def import_stock(session: Session, text: str, source: str = "stock.csv") -> int:
    """Set (``sku,quantity``) or adjust (``sku,delta,reason``) stock; returns rows applied."""
    columns, rows = read_rows(text, source, [("sku", "quantity"), ("sku", "delta", "reason")])
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    if columns[1] == "quantity":
        _duplicates(rows, "sku", errors)  # two counts of one shelf: which one is right?
    planned: list[Callable[[], Any]] = []
    for row in rows:
        sku = row.values["sku"]
        if columns[1] == "quantity":
            quantity = _int(row, "quantity", errors, minimum=0)
            if quantity is not None:
                planned.append(lambda s=sku, q=quantity, n=f"{source}:{row.line}":
                               inventory.set_on_hand(session, s, q, note=n))
        else:
            delta = _int(row, "delta", errors)
            reason = row.values["reason"]
            if not reason:
                errors.append(RowError(row.line, "reason is empty"))
            elif delta == 0:
                errors.append(RowError(row.line, "delta 0 changes nothing"))
            elif delta is not None:
                planned.append(lambda s=sku, d=delta, r=reason: inventory.adjust(
                    session, s, d, reason=r))
    _finish(source, errors)
    for apply in track(planned, f"{source}: applying"):  # a bar only on a terminal
        apply()
    return len(planned)


def import_handling_times(session: Session, text: str, source: str = "handling.csv") -> int:
    """``sku,handling_time_days`` per product; an empty value restores the default."""
    _, rows = read_rows(text, source, [("sku", "handling_time_days")])
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    _duplicates(rows, "sku", errors)
    planned: list[tuple[str, int | None]] = []
    for row in rows:
        if row.values["handling_time_days"] == "":
            planned.append((row.values["sku"], None))
            continue
        days = _int(row, "handling_time_days", errors, minimum=0, maximum=30)
        if days is not None:
            planned.append((row.values["sku"], days))
    _finish(source, errors)
    for sku, days in track(planned, f"{source}: applying"):
        products.set_handling_time(session, sku, days)
    return len(planned)


def import_manual_orders(session: Session, text: str, source: str = "orders.csv", *,
                         cipher: pii.PiiCipher | None = None) -> list[int]:
    """Manual orders, one row per item; returns the order ids (existing ones unchanged)."""
    _, rows = read_rows(text, source, [("order_id", "sku", "quantity")],
                        optional=RECIPIENT_COLUMNS)
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    grouped: dict[str, list[tuple[str, int]]] = {}
    people: dict[str, tuple[Buyer | None, Address | None]] = {}
    for row in rows:
        order_id = row.values["order_id"]
        if not order_id:
            errors.append(RowError(row.line, "order_id is empty"))
            continue
        quantity = _int(row, "quantity", errors, minimum=1)
        if quantity is None:
            continue
        grouped.setdefault(order_id, []).append((row.values["sku"], quantity))
        given = {column: row.values.get(column) for column in RECIPIENT_COLUMNS}
        if any(given.values()) and order_id not in people:
            try:
                people[order_id] = recipients.checked(recipients.Recipient(
                    name=given["buyer_name"], email=given["buyer_email"], phone=given["phone"],
                    line1=given["address_line1"], line2=given["address_line2"],
                    line3=given["address_line3"], city=given["city"], state=given["state"],
                    postal_code=given["postal_code"], country_code=given["country"]))
            except ValueError as error:
                errors.append(RowError(row.line, str(error)))
    if people and cipher is None:
        errors.append(RowError(1, "buyer data is stored only encrypted; configure pii.key "
                                  "(or set MARKETSYNC_PII_KEY)"))
    _finish(source, errors)
    entered = []
    for order_id, items in track(list(grouped.items()), f"{source}: entering orders"):
        buyer, address = people.get(order_id, (None, None))
        entered.append(orders.add_manual_order(session, order_id, items, buyer=buyer,
                                               address=address, cipher=cipher))
    return entered


def import_shipments(session: Session, text: str, source: str = "shipments.csv") -> list[str]:
    """Ship (or, with ``correct``, correct) one order per row; returns the shipment keys.
    A row the order cannot take (cancelled, nothing left to ship, no shipment to correct)
    is reported by its line like a malformed one, and nothing is applied."""
    _, rows = read_rows(text, source, [("order_id", "carrier", "tracking_number")],
                        optional=("ship_method", "correct", "was"))
    errors: list[RowError] = []
    planned: list[tuple[Row, int, bool]] = []
    for row in rows:
        found = len(errors)
        order_id = _int(row, "order_id", errors, minimum=1)
        correct = row.values.get("correct", "").lower()
        if correct not in ("", "yes", "no"):
            errors.append(RowError(row.line, f"correct {row.values['correct']!r} is not yes "
                                             "or no"))
        elif row.values.get("was") and correct != "yes":
            errors.append(RowError(row.line, "was is only for a row with correct=yes"))
        for column in ("carrier", "tracking_number"):
            if not row.values[column]:
                errors.append(RowError(row.line, f"{column} is empty"))
        if len(errors) == found and order_id is not None:
            planned.append((row, order_id, correct == "yes"))
    keys = []  # the good rows are tried too, so that one run reports every bad row
    for row, order_id, correct in track(planned, f"{source}: applying"):
        values = row.values
        try:
            if correct:
                keys.append(shipments.correct_shipment(
                    session, order_id, carrier=values["carrier"],
                    tracking_number=values["tracking_number"],
                    ship_method=values.get("ship_method") or None, was=values.get("was") or None))
            else:
                keys.append(orders.ship_order(
                    session, order_id, carrier=values["carrier"],
                    tracking_number=values["tracking_number"],
                    ship_method=values.get("ship_method") or None))
        except (ValueError, LookupError) as error:  # the store rolls back on CsvError
            errors.append(RowError(row.line, str(error).strip("'\"")))
    _finish(source, errors)
    return keys
