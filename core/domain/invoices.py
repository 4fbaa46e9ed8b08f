"""Invoice numbers: sequential per integration, never reused, kept with the order.

Tax law in most of the seller's markets wants invoice numbers that run without gaps and
are never issued twice, and a reprint must show the number the buyer already has. So a
number is allocated once per order, in the transaction that stores it on the order:

* the order row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
  ``BEGIN IMMEDIATE`` writer lock serialises whole transactions), so two printers racing
  for the same order cannot both allocate — the second sees the first's number;
* the counter is advanced by one conditional ``UPDATE ... RETURNING``, which holds the
  counter row's lock until commit, so two orders of one integration get consecutive,
  distinct numbers, and a transaction that rolls back gives its number back (no gap).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketsync.core.domain.orders import get_order
from marketsync.core.store.models import IntegrationRow, InvoiceCounter
from marketsync.core.store.upsert import insert_or_update

#: ``{alias}`` and ``{number}`` are filled in; the alias keeps integrations' sequences apart
DEFAULT_NUMBER_FORMAT = "{alias}-{number:06d}"


class InvoiceNumberFormatError(ValueError):
    """The configured number format cannot be used."""


def check_number_format(number_format: str) -> None:
    """Refuse a format that does not contain the number or names unknown fields."""
    try:
        first = number_format.format(alias="a", number=1)
        second = number_format.format(alias="a", number=2)
    except (KeyError, IndexError, ValueError) as error:
        raise InvoiceNumberFormatError(
            f"invoice number format {number_format!r} is not usable ({error}); "
            "use {alias} and {number}, e.g. " + DEFAULT_NUMBER_FORMAT) from None
    if first == second:
        raise InvoiceNumberFormatError(
            f"invoice number format {number_format!r} does not contain {{number}}")


def assign_invoice_number(session: Session, order_id: int, *,
                          number_format: str = DEFAULT_NUMBER_FORMAT) -> str:
    """The order's invoice number, allocated now if it has none yet.

    Idempotent: an order that already has a number keeps it, whatever the format says
    today. Call it inside the unit of work that prints (or records) the invoice, so a
    failure before commit returns the number to the sequence.

    :raises orders.UnknownOrder: no order with that id.
    :raises InvoiceNumberFormatError: ``number_format`` is unusable.
    """
    check_number_format(number_format)
    order = get_order(session, order_id, lock=True)
    session.refresh(order, ["invoice_number"])  # another transaction may have just set it
    if order.invoice_number is not None:
        return order.invoice_number
    number = _next_number(session, order.integration_id)
    alias = session.execute(select(IntegrationRow.alias)
                            .where(IntegrationRow.id == order.integration_id)).scalar_one()
    order.invoice_number = number_format.format(alias=alias, number=number)
    session.flush()
    return order.invoice_number


def _next_number(session: Session, integration_id: int) -> int:
    insert_or_update(session, InvoiceCounter, {"integration_id": integration_id,
                                               "next_number": 1},
                     conflict=["integration_id"])
    return session.execute(
        update(InvoiceCounter)
        .where(InvoiceCounter.integration_id == integration_id)
        .values(next_number=InvoiceCounter.next_number + 1)
        .returning(InvoiceCounter.next_number - 1)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def peek_next_number(session: Session, integration_id: int) -> int:
    """The number the integration's next invoice will get (for status output and tests)."""
    current = session.execute(select(InvoiceCounter.next_number)
                              .where(InvoiceCounter.integration_id == integration_id)
                              ).scalar_one_or_none()
    return 1 if current is None else current
