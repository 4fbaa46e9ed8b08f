"""CSV bulk input: stock, handling times and manual orders.

All or nothing: every row is checked first (shape, numbers, known SKUs) and any bad row
means nothing is applied, with every bad row reported by its line number and reason, so
a seller fixes the file once instead of discovering mistakes one run at a time.

Formats (a header row is required; extra columns are refused, to catch a wrong file):

* stock: ``sku,quantity`` (set on hand) or ``sku,delta,reason`` (adjust)
* handling times: ``sku,handling_time_days`` (empty days: back to the integration default)
* manual orders: ``order_id,sku,quantity`` and optionally ``buyer_name,buyer_email``;
  several rows with one order id make one order with several items.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import inventory, orders, pii, products
from marketsync.core.cli.progress import track
from marketsync.core.store.models import Product
from marketsync.core.types import Buyer


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
                        optional=("buyer_name", "buyer_email"))
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    grouped: dict[str, list[tuple[str, int]]] = {}
    buyers: dict[str, Buyer] = {}
    for row in rows:
        order_id = row.values["order_id"]
        if not order_id:
            errors.append(RowError(row.line, "order_id is empty"))
            continue
        quantity = _int(row, "quantity", errors, minimum=1)
        if quantity is None:
            continue
        grouped.setdefault(order_id, []).append((row.values["sku"], quantity))
        name, email = row.values.get("buyer_name"), row.values.get("buyer_email")
        if (name or email) and order_id not in buyers:
            if email and "@" not in email:
                errors.append(RowError(row.line, "buyer_email is not an e-mail address"))
            buyers[order_id] = Buyer(name=name or None, email=email or None)
    _finish(source, errors)
    return [orders.add_manual_order(session, order_id, items, buyer=buyers.get(order_id),
                                    cipher=cipher)
            for order_id, items in track(list(grouped.items()), f"{source}: entering orders")]
