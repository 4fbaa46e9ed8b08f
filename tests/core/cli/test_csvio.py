"""CSV bulk input: all rows checked first; one bad row and nothing is applied; then
applied in chunks, with limits on what a number may be."""

from __future__ import annotations

import shutil

import pytest

from marketsync.core.cli import csvio

from marketsync.core.domain import inventory
from marketsync.core.store import Store
from marketsync.core.store.models import Product


@pytest.fixture
def store(tmp_path, _sqlite_template):
    """A SQLite store of this test's own, copied from the migrated template."""
    from marketsync.core.store import Store

    shutil.copyfile(_sqlite_template, tmp_path / "db.sqlite")
    db = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def products(session):
        for sku in ("A", "B", "C"):
            inventory.ensure_product(session, sku)
        inventory.set_on_hand(session, "A", 5)
    db.run_blocking(products)
    yield db
    db.close()


def levels(store):
    return store.run_blocking(lambda s: {l.sku: (l.on_hand, l.reserved)
                                         for l in inventory.stock_levels(s)})


def test_set_stock_from_csv(store):
    applied = csvio.import_stock(store, "sku,quantity\nA,7\n\nB,0\nC,12\n")
    assert applied == csvio.Imported(3)
    assert levels(store) == {"A": (7, 0), "B": (0, 0), "C": (12, 0)}


def test_adjust_stock_from_csv(store):
    csvio.import_stock(store, "SKU,Delta,Reason\nA,-2,breakage\nA,+4,delivery\n")
    assert levels(store)["A"] == (7, 0)


def test_every_bad_row_reported_and_nothing_applied(store):
    """Four different mistakes: all reported with line numbers; the good rows wait."""
    text = ("sku,quantity\n"
            "B,3\n"          # line 2: fine
            "NOPE,1\n"       # line 3: unknown SKU
            "C,-1\n"         # line 4: negative
            "C,many\n"       # line 5: not a number
            "A,1,extra\n"    # line 6: column count
            "B,4\n")         # line 7: B twice
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, text, "stock.csv")
    error = caught.value
    # the column-count check runs while parsing, before values are looked at
    assert [e.line for e in error.errors] == [6]
    text = text.replace("A,1,extra\n", "A,1\n")
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, text, "stock.csv")
    lines = {e.line: e.reason for e in caught.value.errors}
    assert set(lines) == {3, 4, 5, 7}
    assert "unknown SKU 'NOPE'" in lines[3]
    assert "must be 0 to 1000000000" in lines[4]
    assert "not a whole number" in lines[5]
    assert "first on line 2" in lines[7]
    assert "stock.csv:line 3" in str(caught.value)
    assert levels(store) == {"A": (5, 0), "B": (0, 0), "C": (0, 0)}


def test_wrong_header_is_refused(store):
    with pytest.raises(csvio.CsvError, match="header 'sku,qty'"):
        csvio.import_stock(store, "sku,qty\nA,1\n")
    with pytest.raises(csvio.CsvError, match="empty"):
        csvio.import_stock(store, "")


def test_adjust_rows_need_a_reason_and_a_change(store):
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, "sku,delta,reason\nA,2,\nB,0,count\nC,1,ok\n")
    assert [(e.line, e.reason) for e in caught.value.errors] == [
        (2, "reason is empty"), (3, "delta 0 changes nothing")]
    assert levels(store)["C"] == (0, 0)


def test_handling_times_from_csv(store):
    csvio.import_handling_times(store, "sku,handling_time_days\nA,3\nB,\n")
    days = store.run_blocking(lambda s: {p.sku: p.handling_time_days
                                         for p in s.query(Product).order_by(Product.sku)})
    assert days == {"A": 3, "B": None, "C": None}
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_handling_times(store, "sku,handling_time_days\nA,31\nC,1\nX,2\n")
    assert [e.line for e in caught.value.errors] == [2, 4]
    days = store.run_blocking(lambda s: s.query(Product).filter_by(sku="C").one()
                              .handling_time_days)
    assert days is None


def test_manual_orders_from_csv(store):
    ids = csvio.import_manual_orders(store, "order_id,sku,quantity\nM1,A,2\nM1,B,1\nM2,A,1\n")
    assert len(ids) == 2
    assert levels(store)["A"] == (5, 3)
    again = csvio.import_manual_orders(store, "order_id,sku,quantity\nM1,A,2\nM1,B,1\nM2,A,1\n")
    assert again == ids
    assert levels(store)["A"] == (5, 3)


def test_manual_orders_csv_all_or_nothing(store):
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_manual_orders(store, "order_id,sku,quantity\nM1,A,2\n,B,1\nM3,Z,1\nM4,A,0\n")
    assert [e.line for e in caught.value.errors] == [3, 4, 5]
    assert levels(store)["A"] == (5, 0)


def manual_order_ids(store, count: int) -> list[int]:
    return csvio.import_manual_orders(store, "order_id,sku,quantity\n" + "".join(
        f"S{n},A,1\n" for n in range(count)))


def test_shipments_from_csv_ship_then_correct(store):
    """A shipments file ships; a row with correct=yes edits that shipment, stock unmoved."""
    from sqlalchemy import select

    from marketsync.core.store.models import ShipmentRow

    one, two = manual_order_ids(store, 2)
    keys = store.run_blocking(csvio.import_shipments, "order_id,carrier,tracking_number,ship_method\n"
                              f"{one},DHL,T-1,Standard\n{two},UPS,T-2,\n")
    assert len(keys) == 2 and levels(store)["A"] == (3, 0)
    fixed = store.run_blocking(csvio.import_shipments, "order_id,carrier,tracking_number,correct,was\n"
                               f"{one},DHL,T-1-FIXED,yes,T-1\n")
    assert fixed == keys[:1] and levels(store)["A"] == (3, 0)
    numbers = store.run_blocking(lambda s: sorted(
        (r.key, r.tracking_number) for r in s.execute(select(ShipmentRow)).scalars()))
    assert numbers == sorted([(keys[0], "T-1-FIXED"), (keys[1], "T-2")])


def test_shipments_csv_reports_every_bad_row_and_applies_none(store):
    """Malformed rows and rows the order refuses are all reported; nothing is shipped."""
    one, two = manual_order_ids(store, 2)
    with pytest.raises(csvio.CsvError) as caught:
        store.run_blocking(csvio.import_shipments, "order_id,carrier,tracking_number,correct\n"
                           f"{one},DHL,T-1,\nx,DHL,T,\n{two},,T,\n{two},DHL,T,maybe\n"
                           f"{two},DHL,T-9,yes\n999,DHL,T,\n")
    lines = {e.line: e.reason for e in caught.value.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7]
    assert "not a whole number" in lines[3] and "carrier is empty" in lines[4]
    assert "yes or no" in lines[5] and "no shipment to correct" in lines[6]
    assert "unknown order 999" in lines[7]
    assert levels(store)["A"] == (5, 2)  # the good first row was rolled back too


@pytest.mark.parametrize("text, why", [
    ("1_0", "is not a whole number"),             # int() takes it; a spreadsheet never means it
    ("\u0661\u0660", "is not a whole number"),     # Arabic-Indic 10: int() takes it too
    ("1e3", "is not a whole number"),
    ("7.0", "is not a whole number"),
    ("12345678901234567890", "must be 0 to 1000000000"),  # was OverflowError in SQLite
    ("1000000001", "must be 0 to 1000000000"),
    ("9" * 100_000, "must be 0 to 1000000000"),   # refused before int() spends time on it
])
def test_numbers_are_plain_ascii_digits_within_limits(store, text, why):
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, f"sku,quantity\nB,1\nA,{text}\n", "stock.csv")
    [error] = caught.value.errors
    assert (error.line, error.column) == (3, 2)
    assert why in error.reason
    assert str(caught.value).splitlines()[1].startswith("stock.csv:line 3, column 2: quantity")
    assert len(str(caught.value).splitlines()[1]) < 200
    assert levels(store)["B"] == (0, 0)


def test_plain_numbers_still_read(store):
    csvio.import_stock(store, "sku,quantity\nA,0007\nB,+3\nC,1000000000\n")
    assert levels(store) == {"A": (7, 0), "B": (3, 0), "C": (10**9, 0)}


def test_deltas_cannot_take_on_hand_below_zero_without_force(store):
    """A has 5: -3 then -3 on two lines is the mistake (the running total is checked)."""
    text = "sku,delta,reason\nA,-3,breakage\nA,-3,breakage\nB,-1,count\n"
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, text, "adj.csv")
    assert [(e.line, e.column) for e in caught.value.errors] == [(3, 2), (4, 2)]
    assert "would take on hand of 'A' to -1, below 0 (--force allows it)" in \
        caught.value.errors[0].reason
    assert levels(store)["A"] == (5, 0)
    assert csvio.import_stock(store, text, "adj.csv", force=True) == csvio.Imported(3)
    assert levels(store)["A"] == (-1, 0) and levels(store)["B"] == (-1, 0)


def test_adjust_below_floor_is_refused_in_the_domain(store):
    with pytest.raises(inventory.BelowFloor, match="from 5 to -1"):
        store.run_blocking(inventory.adjust, "A", -6, reason="typo")
    assert store.run_blocking(inventory.adjust, "A", -6, reason="really", force=True).on_hand == -1


def test_import_commits_in_chunks(store, monkeypatch):
    """Each chunk is its own transaction, so the write lock is free between chunks."""
    monkeypatch.setattr(csvio, "APPLY_CHUNK", 2)
    transactions = []
    real = store.run_blocking
    monkeypatch.setattr(store, "run_blocking",
                        lambda fn, *a, **k: transactions.append(1) or real(fn, *a, **k))
    text = "sku,delta,reason\n" + "".join(f"{s},+1,delivery\n" for s in "ABCAB")
    assert csvio.import_stock(store, text) == csvio.Imported(5)
    assert len(transactions) == 3
    assert levels(store) == {"A": (7, 0), "B": (2, 0), "C": (1, 0)}


def test_interrupted_delta_import_finishes_on_a_second_run_without_doubling(store, monkeypatch):
    monkeypatch.setattr(csvio, "APPLY_CHUNK", 2)
    text = "sku,delta,reason\n" + "".join(f"{s},+1,delivery\n" for s in "ABCAB")
    real, calls = csvio.ledger.apply_movements, []

    def crash_in_the_second_chunk(session, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second chunk is written
        return real(session, *args, **kwargs)

    monkeypatch.setattr(csvio.ledger, "apply_movements", crash_in_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        csvio.import_stock(store, text)
    assert levels(store) == {"A": (6, 0), "B": (1, 0), "C": (0, 0)}  # the first chunk only
    assert csvio.import_stock(store, text) == csvio.Imported(3, already=2)
    assert levels(store) == {"A": (7, 0), "B": (2, 0), "C": (1, 0)}
    # a count file run twice is still applied twice: a recount is a new fact
    csvio.import_stock(store, "sku,quantity\nA,1\n")
    store.run_blocking(inventory.set_on_hand, "A", 9)
    csvio.import_stock(store, "sku,quantity\nA,1\n")
    assert levels(store)["A"] == (1, 0)


def test_lookups_are_batched_past_sqlites_variable_limit(store):
    """40,001 rows: more SKUs than SQLite binds in one statement (32,766)."""
    from sqlalchemy import insert

    count = 40_000
    store.run_blocking(lambda session: session.execute(insert(Product), [
        {"sku": f"S{n:06d}", "on_hand": 0, "reserved": 0} for n in range(count)]))
    text = "sku,quantity\n" + "".join(f"S{n:06d},1\n" for n in range(count)) + "GHOST,1\n"
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, text, "big.csv")
    assert [(e.line, e.reason) for e in caught.value.errors] == [
        (count + 2, "unknown SKU 'GHOST'")]


def test_a_field_csv_cannot_read_is_a_row_error_not_a_traceback(store):
    """A NUL byte or a 200 KB cell: csv.Error used to escape as a traceback."""
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, "sku,quantity\nA,1\nB,\0\n", "nul.csv")
    assert [(e.line, e.column) for e in caught.value.errors] == [(3, 2)]
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, "sku,quantity\nA," + "9" * 200_000 + "\n", "wide.csv")
    assert "unreadable: field larger than field limit" in str(caught.value)
    assert levels(store)["A"] == (5, 0)


def test_a_chunk_has_the_effects_of_its_rows_one_by_one(store):
    """The chunked ledger write records what set_on_hand/adjust record row by row (reason,
    note, difference for a count, running on hand for one SKU twice in a chunk), and makes
    the pushes due for every MFN listing of the products it moved."""
    from sqlalchemy import select

    from marketsync.core.domain import products
    from marketsync.core.store.integrations import ensure_integration
    from marketsync.core.store.models import Listing, StockMovement
    from marketsync.core.types import ChannelListing

    def listed(session):
        de = ensure_integration(session, alias="amazon-de", channel="amazon", account="acme",
                                marketplace="DE")
        products.apply_channel_listings(session, de, [ChannelListing(channel_sku="A",
                                                                     quantity=5)])
        return de

    de = store.run_blocking(listed)
    assert not store.run_blocking(inventory.pending_stock_updates, de)
    csvio.import_stock(store, "sku,quantity\nA,9\nB,4\n", "count.csv")
    csvio.import_stock(store, "sku,delta,reason\nA,-2, breakage \nC,+3,delivery\nA,+1,found\n",
                       "moves.csv")
    assert levels(store) == {"A": (8, 0), "B": (4, 0), "C": (3, 0)}
    ledger = store.run_blocking(lambda s: [
        (m.reason, m.delta_on_hand, m.note) for m in s.execute(
            select(StockMovement).where(StockMovement.note.is_not(None),
                                        StockMovement.note != "")
            .order_by(StockMovement.id)).scalars()])
    assert ledger[-5:] == [("set", 4, "count.csv:2"), ("set", 4, "count.csv:3"),
                           ("adjust", -2, "breakage"), ("adjust", 3, "delivery"),
                           ("adjust", 1, "found")]
    batch = store.run_blocking(inventory.pending_stock_updates, de)
    assert [(u.channel_sku, u.quantity) for u in batch.updates] == [("A", 8)]


def test_a_delta_refused_when_stock_moved_below_the_floor_since_the_check(store, monkeypatch):
    """Checked against on hand 5, but the daemon sold 4 before the chunk was written: the
    chunk is refused whole, with the line, and nothing of it is applied."""
    real = csvio.check_stock

    def check_then_sell(session, *args, **kwargs):
        planned = real(session, *args, **kwargs)
        assert len(planned) == 2  # both rows pass the check
        store.run_blocking(inventory.adjust, "A", -4, reason="sold online")
        return planned

    monkeypatch.setattr(csvio, "check_stock", check_then_sell)
    text = "sku,delta,reason\nB,+2,delivery\nA,-5,sold at the fair\n"
    with pytest.raises(csvio.CsvError) as caught:
        csvio.import_stock(store, text, "fair.csv")
    assert [(e.line, e.column) for e in caught.value.errors] == [(3, 2)]
    assert "from 1 to -4" in str(caught.value) and "nothing applied" in str(caught.value)
    assert levels(store)["B"] == (0, 0)
