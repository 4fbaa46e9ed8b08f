"""CSV bulk input: stock, handling times and manual orders.

Checked as a whole, applied in chunks. Every row is checked first (shape, numbers, known
SKUs, the on-hand floor) and any bad row means nothing is applied, with every bad row
reported by file, line and column, so a seller fixes the file once instead of discovering
mistakes one run at a time. The checked rows are then applied ``APPLY_CHUNK`` at a time,
one transaction each: a 200,000-row file never holds the database's write lock for more
than about a second at a time, so the daemon's own bookkeeping goes on meanwhile. A
chunk of stock rows is one ledger write (a few statements, not five per row).

An interruption between chunks (Ctrl-C, a crash) leaves the earlier chunks applied; the
same file run again finishes the job and applies nothing twice. Counts (``quantity``),
handling times and manual orders are idempotent by nature; a delta row's ledger key is
the file's content hash and the row's line, which the ledger refuses a second time.

Formats (a header row is required; extra columns are refused, to catch a wrong file):

* stock: ``sku,quantity`` (set on hand) or ``sku,delta,reason`` (adjust)
* handling times: ``sku,handling_time_days`` (empty days: back to the integration default)
* products: ``sku`` and any of ``title``, ``ean``, ``mpn`` (creates the products that do
  not exist; gives existing ones an EAN or MPN they lack; an MPN that differs from the
  product's own, or a placeholder such as "Does not apply", is a row error). A 12-digit
  UPC in ``ean`` is stored as the 13-digit GTIN, as channel imports hand it over.
* manual orders: ``order_id,sku,quantity`` and optionally the recipient:
  ``buyer_name,buyer_email,phone,address_line1,address_line2,address_line3,city,state,
  postal_code,country``; several rows with one order id make one order with several
  items (the recipient is taken from its first row that has one).
* shipments: ``order_id,carrier,tracking_number`` (the local order id, as ``orders list``
  shows it) and optionally ``ship_method``, ``correct`` (``yes``: the row corrects the
  order's shipment instead of adding one) and ``was`` (the tracking number it corrects,
  needed when the order has several shipments). Applied in one transaction: a row the
  order cannot take is only found by trying it.

Numbers are plain ASCII digits (a sign for deltas) within 0…``MAX_QUANTITY``: ``1_0``,
``١٠`` or ``1e3`` are what Python's ``int()`` would take, not what a spreadsheet means.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain import inventory, ledger, orders, pii, products, recipients, shipments
from marketsync.core.cli.progress import progress, track
from marketsync.core.store.models import Product, StockMovement
from marketsync.core.types import Address, Buyer

T = TypeVar("T")

#: the optional recipient columns of a manual orders file
RECIPIENT_COLUMNS = ("buyer_name", "buyer_email", "phone", "address_line1", "address_line2",
                     "address_line3", "city", "state", "postal_code", "country")

#: the largest quantity, delta or count a CSV may hold (the ledger's columns are 32-bit)
MAX_QUANTITY = 10**9
#: SKUs per ``IN (...)`` lookup: SQLite allows 32,766 variables (999 before 3.32)
LOOKUP_BATCH = 500
#: rows per transaction while applying. A stock chunk is one ledger write (~0.08 s of CPU
#: for 250 rows); on a machine loaded 9 runnable tasks per core that held the write lock
#: 0.4 s (median) to 1.4 s (max) at 250 rows, 1.2 s to 2.3 s at 500 (docs/benchmarks.md)
APPLY_CHUNK = 250
_NUMBER = re.compile(r"[+-]?[0-9]+\Z")  # a character class, not \d: \d matches ١٠ and ௧


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class CsvError(ValueError):
    """The file has bad rows; nothing was applied. ``errors`` lists every one."""

    def __init__(self, source: str, errors: Sequence[RowError], *, applied: int = 0):
        self.source = source
        self.errors = list(errors)
        self.applied = applied
        lines = "\n".join(f"{source}:{error}" for error in self.errors)
        done = (f"{applied} row(s) before it were applied; run the same file again to "
                "finish (applied rows are skipped)") if applied else "nothing applied"
        super().__init__(f"{len(self.errors)} bad row(s) in {source}, {done}:\n{lines}")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]
    columns: dict[str, int]  #: column name -> 1-based position, for error messages

    def error(self, column: str, reason: str) -> RowError:
        return RowError(self.line, reason, self.columns.get(column))


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did: rows applied now, and rows an earlier run of the file applied."""

    applied: int
    already: int = 0


def read_rows(text: str, source: str, formats: Sequence[Sequence[str]],
              optional: Sequence[str] = ()) -> tuple[tuple[str, ...], list[Row]]:
    """Parse ``text``; the header must be one of ``formats`` (plus ``optional`` columns)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = tuple(cell.strip().lower() for cell in next(reader))
    except StopIteration:
        raise CsvError(source, [RowError(1, "the file is empty; a header row is needed")])
    except csv.Error as error:
        raise CsvError(source, [RowError(1, f"unreadable: {error}")]) from None
    base = next((tuple(f) for f in formats if header[:len(f)] == tuple(f)
                 and set(header[len(f):]) <= set(optional)), None)
    if base is None:
        wanted = " or ".join(",".join(f) for f in formats)
        raise CsvError(source, [RowError(1, f"header {','.join(header)!r} is not {wanted}", 1)])
    positions = {name: index for index, name in enumerate(header, 1)}
    rows, errors = [], []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # a NUL byte, a field past csv's 128 KiB limit
            raise CsvError(source, [*errors, RowError(reader.line_num, f"unreadable: {error}")])
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(line, f"{len(cells)} columns, expected {len(header)}",
                                   min(len(cells), len(header)) + 1))
            continue
        rows.append(Row(line, {name: cell.strip() for name, cell in zip(header, cells)},
                        positions))
    if errors:
        raise CsvError(source, errors)
    return base, rows


def _int(row: Row, column: str, errors: list[RowError], *, minimum: int = 0,
         maximum: int = MAX_QUANTITY) -> int | None:
    """A number as a person writes it in a spreadsheet: ASCII digits, perhaps a sign."""
    text = row.values[column]
    if not _NUMBER.match(text):
        errors.append(row.error(column, f"{column} {text[:40]!r} is not a whole number "
                                        "(digits 0-9 only)"))
        return None
    # the length first: int() of a 100,000-digit string costs seconds
    value = int(text) if len(text.lstrip("+-").lstrip("0")) <= len(str(MAX_QUANTITY)) else None
    if value is None or not minimum <= value <= maximum:
        shown = f"{text[:20]}…" if len(text) > 20 else text
        errors.append(row.error(column, f"{column} {shown} must be {minimum} to {maximum}"))
        return None
    return value


def batched(items: Iterable[T], size: int) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def known_products(session: Session, skus: Iterable[str]) -> dict[str, int]:
    """SKU -> on hand for the SKUs that exist, looked up ``LOOKUP_BATCH`` at a time."""
    found: dict[str, int] = {}
    for chunk in batched(sorted(set(skus)), LOOKUP_BATCH):
        found.update((sku, on_hand) for sku, on_hand in session.execute(
            select(Product.sku, Product.on_hand).where(Product.sku.in_(chunk))))
    return found


def _check_skus(session: Session, rows: Sequence[Row], errors: list[RowError]) -> dict[str, int]:
    known = known_products(session, (row.values["sku"] for row in rows if row.values["sku"]))
    for row in rows:
        sku = row.values["sku"]
        if not sku:
            errors.append(row.error("sku", "sku is empty"))
        elif sku not in known:
            errors.append(row.error("sku", f"unknown SKU {sku[:80]!r}"))
    return known


def _duplicates(rows: Sequence[Row], column: str, errors: list[RowError]) -> None:
    first: dict[str, int] = {}
    for row in rows:
        value = row.values[column]
        if value in first:
            errors.append(row.error(column, f"{column} {value!r} again (first on line "
                                            f"{first[value]})"))
        else:
            first.setdefault(value, row.line)


def _finish(source: str, errors: list[RowError]) -> None:
    if errors:
        raise CsvError(source, sorted(errors, key=lambda e: (e.line, e.column or 0)))


def apply_in_chunks(store: Any, planned: Sequence[T], apply: Callable[[Session, T], bool],
                    source: str, doing: str) -> Imported:
    """Apply ``planned`` ``APPLY_CHUNK`` items per transaction; ``apply`` returns False for
    an item an earlier run already applied. A CsvError raised while applying says how many
    rows the chunks before it applied."""
    applied = already = 0
    with progress(f"{source}: {doing}", len(planned)) as bar:
        for chunk in batched(planned, APPLY_CHUNK):
            try:
                done = store.run_blocking(
                    lambda session: [apply(session, item) for item in chunk])
            except CsvError as error:
                raise CsvError(source, error.errors, applied=applied + already) from None
            applied += sum(done)
            already += len(done) - sum(done)
            bar.advance(len(chunk))
    return Imported(applied, already)


def apply_chunks_in_turn(store: Any, planned: Sequence[T],
                         apply_chunk: Callable[[Session, Sequence[T]], list[bool]],
                         source: str, doing: str) -> Imported:
    """Like ``apply_in_chunks`` for an ``apply_chunk`` that takes a whole chunk at once
    (and says, per item, whether it was applied now or by an earlier run)."""
    applied = already = 0
    with progress(f"{source}: {doing}", len(planned)) as bar:
        for chunk in batched(planned, APPLY_CHUNK):
            try:
                done = store.run_blocking(apply_chunk, chunk)
            except CsvError as error:
                raise CsvError(source, error.errors, applied=applied + already) from None
            applied += sum(done)
            already += len(done) - sum(done)
            bar.advance(len(chunk))
    return Imported(applied, already)


# --- the three imports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StockRow:
    line: int
    sku: str
    quantity: int | None = None  #: set on hand to this
    delta: int | None = None  #: or change it by this
    reason: str = ""


def check_stock(session: Session, text: str, source: str = "stock.csv", *,
                force: bool = False) -> list[_StockRow]:
    """Every row of a stock file checked, or CsvError listing every bad one.

    A delta that would take on hand below ``inventory.ON_HAND_FLOOR`` is refused unless
    ``force``: -99,997 on hand is a typo, not a stock level."""
    columns, rows = read_rows(text, source, [("sku", "quantity"), ("sku", "delta", "reason")])
    errors: list[RowError] = []
    on_hand = _check_skus(session, rows, errors)
    planned: list[_StockRow] = []
    if columns[1] == "quantity":
        _duplicates(rows, "sku", errors)  # two counts of one shelf: which one is right?
        for row in rows:
            quantity = _int(row, "quantity", errors)
            if quantity is not None:
                planned.append(_StockRow(row.line, row.values["sku"], quantity=quantity))
        _finish(source, errors)
        return planned
    running = dict(on_hand)
    for row in rows:
        sku, reason = row.values["sku"], row.values["reason"]
        delta = _int(row, "delta", errors, minimum=-MAX_QUANTITY)
        if not reason:
            errors.append(row.error("reason", "reason is empty"))
        elif delta == 0:
            errors.append(row.error("delta", "delta 0 changes nothing"))
        elif delta is not None and sku in running:
            after = running[sku] + delta
            if after < inventory.ON_HAND_FLOOR and not force:
                errors.append(row.error("delta", f"delta {delta} would take on hand of "
                                        f"{sku[:80]!r} to {after}, below "
                                        f"{inventory.ON_HAND_FLOOR} (--force allows it)"))
            running[sku] = after
            planned.append(_StockRow(row.line, sku, delta=delta, reason=reason))
    _finish(source, errors)
    return planned


def import_stock(store: Any, text: str, source: str = "stock.csv", *,
                 force: bool = False) -> Imported:
    """Set (``sku,quantity``) or adjust (``sku,delta,reason``) stock, checked then chunked."""
    planned = store.read_blocking(check_stock, text, source, force=force)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    return apply_chunks_in_turn(
        store, planned, lambda session, chunk: _apply_stock_chunk(session, chunk, source,
                                                                  digest, force),
        source, "applying")


def _apply_stock_chunk(session: Session, chunk: Sequence[_StockRow], source: str,
                       digest: str, force: bool) -> list[bool]:
    """A chunk of stock rows as one ledger write: ``inventory.set_on_hand`` and
    ``inventory.adjust`` row by row cost five statements a row (two product lookups, the
    ledger insert, the counter update, the listings), so 200,000 rows took minutes of
    write lock; here a chunk costs a few statements whatever its size, with the same
    effects: a count records the difference, a delta is refused below the floor, a delta
    row's key (the file's hash and line) makes a second run skip it."""
    ids: dict[str, int] = {}
    for part in batched(sorted({row.sku for row in chunk}), LOOKUP_BATCH):
        ids.update(session.execute(select(Product.sku, Product.id)
                                   .where(Product.sku.in_(part))).all())
    products = ledger.lock_products(session, ids.values())  # locked, counters read afresh
    on_hand = {sku: products[product_id].on_hand for sku, product_id in ids.items()}
    keys = {row.line: f"csv:{digest}:{row.line}" for row in chunk if row.delta is not None}
    earlier = ledger.deltas_by_key(session, keys.values())  # applied by an interrupted run
    movements: list[ledger.Movement] = []
    for row in chunk:
        if row.sku not in ids:  # deleted since the check
            raise CsvError(source, [RowError(row.line, f"unknown SKU {row.sku[:80]!r}", 1)])
        if row.quantity is not None:
            delta, reason, note = row.quantity - on_hand[row.sku], "set", f"{source}:{row.line}"
            key = f"manual:{uuid.uuid4()}"
        elif keys[row.line] in earlier:
            continue
        else:
            delta, reason, note, key = row.delta, "adjust", row.reason.strip(), keys[row.line]
            after = on_hand[row.sku] + delta
            if delta < 0 and after < inventory.ON_HAND_FLOOR and not force:  # moved since
                raise CsvError(source, [RowError(row.line, (
                    f"removing {-delta} of {row.sku!r} would take on hand from "
                    f"{on_hand[row.sku]} to {after}, below {inventory.ON_HAND_FLOOR} "
                    "(--force allows it)"), 2)])
        on_hand[row.sku] += delta
        movements.append(ledger.Movement(product_id=ids[row.sku], key=key, reason=reason,
                                         on_hand=delta, note=note))
    inserted, moved = ledger.apply_movements(session, movements)
    inventory.refresh_wanted_many(session, moved)
    return [row.quantity is not None or keys[row.line] in inserted for row in chunk]


def check_handling_times(session: Session, text: str,
                         source: str = "handling.csv") -> list[tuple[str, int | None]]:
    _, rows = read_rows(text, source, [("sku", "handling_time_days")])
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    _duplicates(rows, "sku", errors)
    planned: list[tuple[str, int | None]] = []
    for row in rows:
        if row.values["handling_time_days"] == "":
            planned.append((row.values["sku"], None))
            continue
        days = _int(row, "handling_time_days", errors, maximum=30)
        if days is not None:
            planned.append((row.values["sku"], days))
    _finish(source, errors)
    return planned


def import_handling_times(store: Any, text: str, source: str = "handling.csv") -> Imported:
    """``sku,handling_time_days`` per product; an empty value restores the default."""
    planned = store.read_blocking(check_handling_times, text, source)

    def apply(session: Session, item: tuple[str, int | None]) -> bool:
        products.set_handling_time(session, *item)
        return True

    return apply_in_chunks(store, planned, apply, source, "applying")


@dataclass(frozen=True, slots=True)
class _ProductRow:
    sku: str
    title: str | None
    ean: str | None
    mpn: str | None


def check_products(session: Session, text: str,
                   source: str = "products.csv") -> list[_ProductRow]:
    _, rows = read_rows(text, source, [("sku",)], optional=("title", "ean", "mpn"))
    errors: list[RowError] = []
    _duplicates(rows, "sku", errors)
    skus = {row.values["sku"] for row in rows if row.values["sku"]}
    existing: dict[str, str | None] = {}
    for chunk in batched(sorted(skus), LOOKUP_BATCH):
        existing.update(session.execute(
            select(Product.sku, Product.mpn).where(Product.sku.in_(chunk))).all())
    planned = []
    for row in rows:
        sku, ean, mpn = (row.values["sku"], row.values.get("ean") or None,
                         row.values.get("mpn") or None)
        if not sku or len(sku) > 200:
            errors.append(row.error("sku", f"sku {sku[:80]!r} must be 1 to 200 characters"))
            continue
        if ean is not None:
            if not ean.isascii() or not ean.isdigit() or not 8 <= len(ean) <= 14:
                errors.append(row.error("ean", f"ean {ean[:40]!r} is not 8 to 14 digits"))
                continue
            ean = "0" + ean if len(ean) == 12 else ean  # a UPC, as the 13-digit GTIN
        if mpn is not None:
            cleaned = products.clean_mpn(mpn)
            if cleaned is None:
                errors.append(row.error("mpn", f"mpn {mpn[:80]!r} is not a part number (a "
                                               f"placeholder, or over {products.MPN_LIMIT} "
                                               "characters); leave it empty"))
                continue
            if existing.get(sku) and existing[sku] != cleaned:
                errors.append(row.error("mpn", f"product {sku[:80]!r} has MPN "
                                               f"{existing[sku]!r} already, not {cleaned!r}"))
                continue
            mpn = cleaned
        planned.append(_ProductRow(sku, row.values.get("title") or None, ean, mpn))
    _finish(source, errors)
    return planned


def import_products(store: Any, text: str, source: str = "products.csv") -> Imported:
    """Create or complete products from ``sku[,title][,ean][,mpn]``; all rows or none."""
    planned = store.read_blocking(check_products, text, source)

    def apply(session: Session, row: _ProductRow) -> bool:
        return products.add_product(session, row.sku, title=row.title, ean=row.ean,
                                    mpn=row.mpn)

    return apply_in_chunks(store, planned, apply, source, "applying")


def check_manual_orders(session: Session, text: str, source: str = "orders.csv", *,
                        cipher: pii.PiiCipher | None = None
                        ) -> list[tuple[str, list[tuple[str, int]], Buyer | None, Address | None]]:
    _, rows = read_rows(text, source, [("order_id", "sku", "quantity")],
                        optional=RECIPIENT_COLUMNS)
    errors: list[RowError] = []
    _check_skus(session, rows, errors)
    grouped: dict[str, list[tuple[str, int]]] = {}
    people: dict[str, tuple[Buyer | None, Address | None]] = {}
    for row in rows:
        order_id = row.values["order_id"]
        if not order_id:
            errors.append(row.error("order_id", "order_id is empty"))
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
    return [(order_id, items, *people.get(order_id, (None, None)))
            for order_id, items in grouped.items()]


def import_manual_orders(store: Any, text: str, source: str = "orders.csv", *,
                         cipher: pii.PiiCipher | None = None) -> list[int]:
    """Manual orders, one row per item; returns the order ids (existing ones unchanged)."""
    planned = store.read_blocking(check_manual_orders, text, source, cipher=cipher)
    ids: list[int] = []

    def apply(session: Session, item: tuple[str, list[tuple[str, int]], Buyer | None,
                                            Address | None]) -> bool:
        order_id, items, buyer, address = item
        ids.append(orders.add_manual_order(session, order_id, items, buyer=buyer,
                                           address=address, cipher=cipher))
        return True

    apply_in_chunks(store, planned, apply, source, "entering orders")
    return ids


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
