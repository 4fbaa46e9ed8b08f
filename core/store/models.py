"""The database schema as SQLAlchemy 2 models.

Portable on purpose: every column type works the same on SQLite (the default, one file
next to the config) and PostgreSQL (production, several replicas). Times are stored as
aware UTC (see ``UTCDateTime``), money as ``Numeric(12, 2)`` next to an ISO currency,
loose structures as ``JSON``. Value sets (states, statuses) are non-native enums: a
VARCHAR plus a named CHECK constraint, so adding a value is a small batch migration on
SQLite and never an ``ALTER TYPE`` on PostgreSQL.

Columns meant to hold buyer data or secrets (``*_blob``, ``buyer_*``, ``ship_to_address``)
are ``LargeBinary`` so the PII/secret layer can store ciphertext without a schema change.

The migrations in ``migrations/versions`` are generated from these classes; a test
compares the migrated schema with this metadata on both databases, so a model change
without a migration fails the suite.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from marketsync.core.types import Fulfillment, OrderStatus

from .timing import UTCDateTime, transaction_now

#: Stable constraint and index names: batch migrations on SQLite recreate tables and
#: must be able to name what they drop (alembic "naming conventions" docs).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: What ``integrations.state`` may hold; the lifecycle code in core owns the meaning.
INTEGRATION_STATES = ("CONNECTING", "LIVE", "RETRY", "INCOMPLETE", "ERROR", "DISABLED")
CONFIRM_STATES = ("pending", "confirming", "confirmed", "failed")
SUBMISSION_KINDS = ("stock", "prices")
SUBMISSION_STATES = ("in_flight", "done", "failed", "stuck")
CANCELED_BY = ("local", "channel")

Money = Numeric(12, 2)
Currency = String(3)
#: Identifiers a channel hands us (SKUs, order ids, feed ids) fit comfortably in this.
ChannelId = String(200)


def _values_enum(name: str, values: tuple[str, ...] | type) -> Enum:
    """A VARCHAR with a named CHECK constraint; Python enums are stored by value."""
    if isinstance(values, tuple):
        return Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)
    return Enum(
        values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=transaction_now)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=transaction_now, onupdate=transaction_now)


class Base(DeclarativeBase):
    """Base of every table; carries the naming convention the migrations rely on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        key = getattr(self, "id", None)
        return f"<{type(self).__name__} id={key}>"


# --- accounts and integrations --------------------------------------------------------------


class Account(Base):
    """A seller account on one channel; its integrations (one per marketplace) share it."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(50))
    seller_id: Mapped[str | None] = mapped_column(String(100))
    #: refresh token and other secrets, encrypted by the secret layer before they land here
    secret_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class IntegrationRow(Base):
    """One configured integration (channel + account + marketplace) and its lifecycle state.

    Named ``IntegrationRow`` so it never gets confused with ``core.types.Integration``, the
    object plugins receive.
    """

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(50))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    marketplace: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(_values_enum("state", INTEGRATION_STATES))
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime] = _created()
    last_error: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: stock pushes held: "review" (new, not yet accepted), "valve" (tripped; the reason
    #: beside it), "released" (accepted), NULL (none); see ``domain.push_guard``
    push_hold: Mapped[str | None] = mapped_column(String(16))
    push_hold_reason: Mapped[str | None] = mapped_column(Text)
    push_hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    account: Mapped[Account] = relationship()


class JobCursor(Base):
    """Where an import of one kind stands; written in the same transaction as its page."""

    __tablename__ = "job_cursors"
    __table_args__ = (UniqueConstraint("integration_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(String(64))
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = _updated()


class AccountCursor(Base):
    """Where an account-scoped import stands (one job serves every integration of the
    account); written in the same transaction as its page, like ``JobCursor``."""

    __tablename__ = "account_cursors"
    __table_args__ = (UniqueConstraint("account_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(64))
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = _updated()


class PluginState(Base):
    """Small values a plugin keeps across restarts (eBay's revisions per listing and day),
    scoped by plugin and by ``account:<name>`` or ``integration:<alias>``. A row past
    ``expires_at`` counts as absent and is deleted by the next write of its scope."""

    __tablename__ = "plugin_state"
    __table_args__ = (UniqueConstraint("plugin", "scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any | None] = mapped_column(JSON)
    #: what ``add`` counts; kept apart from ``value`` so two processes add in SQL
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = _updated()


class JobRun(Base):
    """Health of one job loop, so ``marketsync status`` in another process can show it."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("integration_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(String(64))
    last_started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- products, listings and the stock ledger ---------------------------------------------------


class Product(Base):
    """The seller's master record of an article; stock is mastered here, not on channels."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ChannelId, unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    ean: Mapped[str | None] = mapped_column(String(32))
    asin: Mapped[str | None] = mapped_column(String(16))
    #: manufacturer part number: the last identifier a listing is matched by
    mpn: Mapped[str | None] = mapped_column(String(70), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    #: overrides the channel's default handling time when set
    handling_time_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Listing(Base):
    """A SKU on one integration: what the channel last said and what we want it to say.

    ``push_generation`` is bumped on every change of a ``wanted_*`` value and
    ``pushed_generation`` records the generation of the last accepted push, so a change
    made while a push is in flight is noticed (generation moved on) and pushed again.
    """

    __tablename__ = "listings"
    __table_args__ = (
        UniqueConstraint("integration_id", "channel_sku"),
        # matching imported listings and order items to products by ASIN
        Index("ix_listings_integration_id_asin", "integration_id", "asin"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    channel_sku: Mapped[str] = mapped_column(ChannelId)
    #: NULL while the listing is not mapped to a product
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    asin: Mapped[str | None] = mapped_column(String(16))
    ean: Mapped[str | None] = mapped_column(String(32))
    mpn: Mapped[str | None] = mapped_column(String(70), index=True)
    listing_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    fulfillment: Mapped[Fulfillment] = mapped_column(
        _values_enum("fulfillment", Fulfillment), default=Fulfillment.MFN
    )
    price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(Currency)
    channel_quantity: Mapped[int | None] = mapped_column(Integer)
    acknowledged_quantity: Mapped[int | None] = mapped_column(Integer)
    wanted_quantity: Mapped[int | None] = mapped_column(Integer)
    acknowledged_handling_time: Mapped[int | None] = mapped_column(Integer)
    wanted_handling_time: Mapped[int | None] = mapped_column(Integer)
    wanted_price: Mapped[Decimal | None] = mapped_column(Money)
    acknowledged_price: Mapped[Decimal | None] = mapped_column(Money)
    push_generation: Mapped[int] = mapped_column(Integer, default=0)
    pushed_generation: Mapped[int] = mapped_column(Integer, default=0)
    #: why the channel refused the last stock push of this listing (None once accepted);
    #: the listing waits until ``push_retry_at`` before it is sent again, with a delay
    #: that doubles per refusal in a row (``push_refusals``)
    push_error: Mapped[str | None] = mapped_column(Text)
    push_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    push_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the same for the listing's price (a refused price must not hold back its stock)
    price_error: Mapped[str | None] = mapped_column(Text)
    price_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    price_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the channel's quantity when the listing was first imported and when that snapshot
    #: was taken: with the units its open orders held then, the product's opening stock
    #: (``inventory.reconcile_opening``); NULL for FBA listings and listings from before
    opening_quantity: Mapped[int | None] = mapped_column(Integer)
    opening_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_channel: Mapped[bool] = mapped_column(Boolean, default=True)
    channel_status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StockMovement(Base):
    """One row per stock effect. The unique ``key`` (e.g. ``order-item:17:reserve``) is what
    makes effects idempotent: re-importing an order or replaying after a crash inserts the
    same key again, which the database refuses."""

    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    delta_on_hand: Mapped[int] = mapped_column(Integer, default=0)
    delta_reserved: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(64))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    order_item_id: Mapped[int | None] = mapped_column(ForeignKey("order_items.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


# --- orders and their fulfilment ---------------------------------------------------------------


class Order(Base):
    """An order imported from a channel, upserted by (integration, channel order id)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("integration_id", "channel_order_id"),
        # the purge job: orders whose buyer data is due for deletion
        Index("ix_orders_pii_purge_after", "pii_purge_after"),
        # the order book listing, newest first, per integration
        Index("ix_orders_integration_id_purchased_at", "integration_id", "purchased_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    channel_order_id: Mapped[str] = mapped_column(ChannelId)
    marketplace: Mapped[str] = mapped_column(String(16))
    status: Mapped[OrderStatus] = mapped_column(_values_enum("status", OrderStatus))
    channel_status: Mapped[str | None] = mapped_column(String(64))
    fulfillment: Mapped[Fulfillment] = mapped_column(_values_enum("fulfillment", Fulfillment))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at_channel: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str | None] = mapped_column(Currency)
    total: Mapped[Decimal | None] = mapped_column(Money)
    pii_available: Mapped[bool] = mapped_column(Boolean, default=False)
    buyer_name: Mapped[bytes | None] = mapped_column(LargeBinary)
    buyer_email: Mapped[bytes | None] = mapped_column(LargeBinary)
    buyer_phone: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the whole shipping address as (encrypted) JSON; the country alone is not PII
    ship_to_address: Mapped[bytes | None] = mapped_column(LargeBinary)
    ship_to_country: Mapped[str | None] = mapped_column(String(2))
    pii_purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_by: Mapped[str | None] = mapped_column(_values_enum("canceled_by", CANCELED_BY))
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "channel_item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    channel_item_id: Mapped[str] = mapped_column(ChannelId)
    channel_sku: Mapped[str] = mapped_column(ChannelId)
    #: NULL while the SKU is not mapped to a product (no stock effect until it is)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    asin: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_shipped: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[Decimal | None] = mapped_column(Money)
    tax: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(Currency)

    order: Mapped[Order] = relationship(back_populates="items")


class ShipmentRow(Base):
    """A shipment entered locally and its confirmation on the channel (idempotent by key)."""

    __tablename__ = "shipments"
    __table_args__ = (
        # the confirm job: shipments still to confirm
        Index("ix_shipments_confirm_state", "confirm_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(128))
    ship_method: Mapped[str | None] = mapped_column(String(64))
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: [{"channel_item_id": ..., "quantity": ...}]; empty means the whole order
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    confirm_state: Mapped[str] = mapped_column(
        _values_enum("confirm_state", CONFIRM_STATES), default="pending"
    )
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class FulfillmentOrder(Base):
    """An order fulfilled through the channel's network (Amazon MCF) we fetch tracking for."""

    __tablename__ = "fulfillment_orders"
    __table_args__ = (Index("ix_fulfillment_orders_integration_id_open", "integration_id", "open"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    seller_fulfillment_order_id: Mapped[str] = mapped_column(ChannelId, unique=True)
    status: Mapped[str | None] = mapped_column(String(32))
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --- things sent to or refused by channels -----------------------------------------------------


class SubmissionRow(Base):
    """A push (feed, batch) the channel finishes later; a restart resumes following it."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("integration_id", "kind", "channel_id"),
        # the poll job: in-flight submissions per integration, soonest first
        Index("ix_submissions_state_poll_after", "state", "poll_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(_values_enum("kind", SUBMISSION_KINDS))
    channel_id: Mapped[str] = mapped_column(ChannelId)
    state: Mapped[str] = mapped_column(
        _values_enum("state", SUBMISSION_STATES), default="in_flight"
    )
    #: what was sent: channel SKUs, the plugin's own state, listing generations per SKU
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: wall time at which asking the channel again is worthwhile
    poll_after: Mapped[datetime] = mapped_column(UTCDateTime)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class QuarantinedRecord(Base):
    """A record the channel sent that could not be mapped; kept (without PII) for a person."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("integration_id", "kind", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    #: where the mapping code failed (file:line in function), when it failed unexpectedly
    trace: Mapped[str | None] = mapped_column(Text)
    #: an allow-list of the record's fields (ids, times, statuses, SKUs, amounts): no PII
    raw: Mapped[Any | None] = mapped_column(JSON)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = _created()


# --- coordination ------------------------------------------------------------------------------


class OAuthState(Base):
    """The anti-forgery ``state`` of a pending consent (connect) flow; used at most once."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(128), unique=True)
    integration_alias: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Lease(Base):
    """Ownership of a named piece of work among replicas, with a fencing token.

    The token grows by one on every acquisition, so a paused ex-owner's writes can be
    refused after a takeover (research/wave2.md §3.3). NULL ``expires_at`` means free.
    """

    __tablename__ = "leases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateBucket(Base):
    """A rate-limit bucket shared by replicas: GCRA's one timestamp per key.

    ``tat`` (theoretical arrival time, POSIX seconds) is when the bucket will be full
    again; research/wave2.md §3.4. Every caller passes the limits it applies, as with the
    in-process buckets; ``interval`` records the rate the timestamp was booked at.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tat: Mapped[float] = mapped_column(Double)
    interval: Mapped[float] = mapped_column(Double)  #: seconds per token ``tat`` was booked at


class DaemonHeartbeat(Base):
    """A daemon process's last sign of life, so ``status`` from another shell (and the
    page) can tell a running daemon from one that stopped or hangs."""

    __tablename__ = "daemon_heartbeats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), unique=True)  #: host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceCounter(Base):
    """Gap-free invoice numbers per integration: the row lock serialises allocation."""

    __tablename__ = "invoice_counters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"), unique=True)
    next_number: Mapped[int] = mapped_column(BigInteger, default=1)


class NotificationSeen(Base):
    """A channel notification the daemon acted on, by its id: a redelivered or duplicated
    message is recognised and only deleted from the queue (kept ≥ SQS's 14-day retention)."""

    __tablename__ = "notifications_seen"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(128), unique=True)
    account: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(64))
    #: what it is about, e.g. the Amazon order id of an ORDER_CHANGE
    subject: Mapped[str | None] = mapped_column(String(128), index=True)
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PiiKeyCheck(Base):
    """A known value sealed with a PII key, so a start can prove its key before it reads or
    writes buyer data: one row per key that has sealed something here (``key_id`` is the
    key's public fingerprint, never the key)."""

    __tablename__ = "pii_key_checks"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
