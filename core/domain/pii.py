"""Buyer data at rest: AES-GCM envelopes, the 30-day purge, and redaction for logs.

Amazon's Data Protection Policy wants buyer names, e-mails, phones and addresses
encrypted at rest and deleted 30 days after delivery. Each value is sealed on its own::

    version (1 byte) ‖ key id length (1 byte) ‖ key id ‖ nonce (12 bytes) ‖ ciphertext+tag

The associated data is ``table.column`` plus the row's natural key, so a ciphertext copied
into another row or column fails to open instead of showing the wrong buyer. The key
comes from the caller (the credentials directory or an environment variable through the
configuration), never from the database; several keys may be given, the first seals and
all open, so a key can be rotated without losing older rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketsync.core.store.models import Order

VERSION = 1
NONCE_BYTES = 12
#: Amazon DPP: buyer data goes 30 days after delivery
RETENTION = timedelta(days=30)
#: Whatever happened (or did not) to an order, its buyer data goes this long after the
#: purchase: Amazon's longest delivery promises are about four weeks, so an order is
#: delivered within 30 days of purchase or not at all, and 30 days on from that is 60.
#: It covers what has no delivery date: never shipped, lost, or a channel that never says.
HARD_CAP = timedelta(days=60)
PII_COLUMNS = ("buyer_name", "buyer_email", "buyer_phone", "ship_to_address")


class PiiKeyError(ValueError):
    """The key material is unusable; the message never contains it."""


class PiiDecryptError(ValueError):
    """A value could not be opened (wrong key, or moved from another row)."""


class PiiCipher:
    """Seals and opens single values with a key ring (first key seals, all open)."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise PiiKeyError("no PII key given")
        for key in keys:
            if len(key) not in (16, 24, 32):
                raise PiiKeyError(f"a PII key must be 16, 24 or 32 bytes, not {len(key)}")
        self._ring = {key_id(key): AESGCM(key) for key in keys}
        self._current = key_id(keys[0])

    def __repr__(self) -> str:
        return f"<PiiCipher keys={len(self._ring)} current={self._current}>"

    @property
    def current_key_id(self) -> str:
        """The fingerprint of the key that seals (public: a hash)."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ring)

    def has(self, key_id: str) -> bool:
        return key_id in self._ring

    @classmethod
    def from_text(cls, text: str) -> PiiCipher:
        """Keys as base64 (or hex) separated by commas or whitespace, the current first.
        Generate one with ``python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'``."""
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        return cls([_decode_key(p, index) for index, p in enumerate(parts, 1)])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PiiCipher:
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.from_text(handle.read())
        except OSError as error:
            raise PiiKeyError(f"cannot read the PII key file {path}: {error.strerror}") from None

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> PiiCipher:
        value = (environ if environ is not None else os.environ).get(name)
        if not value:
            raise PiiKeyError(f"environment variable {name} with the PII key is not set")
        return cls.from_text(value)

    def seal(self, plaintext: str, aad: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        kid = self._current.encode("ascii")
        sealed = self._ring[self._current].encrypt(nonce, plaintext.encode("utf-8"),
                                                   aad.encode("utf-8"))
        return bytes([VERSION, len(kid)]) + kid + nonce + sealed

    def open(self, blob: bytes, aad: str) -> str:
        if len(blob) < 2 or blob[0] != VERSION:
            raise PiiDecryptError("unknown PII envelope version")
        kid_end = 2 + blob[1]
        kid = blob[2:kid_end].decode("ascii", "replace")
        aead = self._ring.get(kid)
        if aead is None:
            raise PiiDecryptError(f"PII sealed with key {kid}, which is not configured")
        nonce = blob[kid_end:kid_end + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[kid_end + NONCE_BYTES:],
                                aad.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise PiiDecryptError(f"PII value does not open for {aad.split(':')[0]} "
                                  "(wrong key or moved from another row)") from None

    def seal_optional(self, plaintext: str | None, aad: str) -> bytes | None:
        return None if plaintext is None else self.seal(plaintext, aad)

    def open_optional(self, blob: bytes | None, aad: str) -> str | None:
        return None if blob is None else self.open(blob, aad)


def key_id(key: bytes) -> str:
    """A short fingerprint naming the key in every envelope (not secret: a hash)."""
    return hashlib.sha256(b"marketsync-pii-key-id" + key).hexdigest()[:8]


def _decode_key(text: str, index: int) -> bytes:
    try:
        if re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64}", text):
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PiiKeyError(f"PII key #{index} is neither base64 nor hex") from None


def order_aad(column: str, integration_id: int, channel_order_id: str) -> str:
    """The associated data binding a value to its column and order."""
    return f"orders.{column}:{integration_id}:{channel_order_id}"


def purge_after(delivered_at: datetime | None, shipped_at: datetime | None,
                canceled_at: datetime | None, purchased_at: datetime | None = None
                ) -> datetime | None:
    """When the order's buyer data must go: 30 days after delivery, counted from shipping
    when delivery is unknown (earlier is always allowed), or from a cancellation; and
    never later than :data:`HARD_CAP` after the purchase."""
    moment = delivered_at or shipped_at or canceled_at
    dates = [moment + RETENTION] if moment is not None else []
    if purchased_at is not None:
        dates.append(purchased_at + HARD_CAP)
    return min(dates) if dates else None


def order_purge_date(order: Order) -> datetime | None:
    """:func:`purge_after` for a stored order."""
    return purge_after(order.delivered_at, order.shipped_at, order.canceled_at,
                       order.purchased_at)


def _holds_pii():
    return or_(*(getattr(Order, column).is_not(None) for column in PII_COLUMNS))


def purge_due(session: Session, now: datetime) -> int:
    """Delete the buyer data of every order past its purge date; returns how many.

    Orders stored before the hard cap existed may have no purge date (an FBA order has no
    package ship time); they get one first, so no order keeps buyer data for ever."""
    for order in session.execute(select(Order).where(
            Order.pii_purge_after.is_(None), _holds_pii())).scalars():
        order.pii_purge_after = order_purge_date(order)
    query = select(Order).where(
        Order.pii_purge_after.is_not(None), Order.pii_purge_after <= now, _holds_pii(),
    )
    purged = 0
    for order in session.execute(query).scalars():
        for column in PII_COLUMNS:
            setattr(order, column, None)
        purged += 1
    return purged


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What ``marketsync pii status`` prints."""

    holding: int  #: orders that hold buyer data now
    overdue: int  #: of those, past their purge date (the daemon purges hourly)
    next_due: datetime | None  #: the earliest purge date among them
    next_due_orders: int  #: how many orders that date covers (same day)
    latest_due: datetime | None  #: by then every order held now is purged


def retention_report(session: Session, now: datetime) -> RetentionReport:
    """How many orders hold buyer data and when their purges are due."""
    holding = session.execute(select(func.count()).select_from(Order)
                              .where(_holds_pii())).scalar_one()
    dates = [order_purge_date(o) if o.pii_purge_after is None else o.pii_purge_after
             for o in session.execute(select(Order).where(_holds_pii())).scalars()]
    dates = [d for d in dates if d is not None]
    overdue = sum(1 for d in dates if d <= now)
    upcoming = sorted(d for d in dates if d > now)
    next_due = upcoming[0] if upcoming else None
    same_day = sum(1 for d in upcoming if next_due and d.date() == next_due.date())
    return RetentionReport(holding=holding, overdue=overdue, next_due=next_due,
                           next_due_orders=same_day, latest_due=max(dates) if dates else None)


def redact(value: object | None) -> str:
    """What a log line may show instead of buyer data: its kind and length, no content."""
    if value is None:
        return "<none>"
    text = str(value)
    kind = "email" if "@" in text else "text"
    return f"<redacted {kind} len={len(text)}>"
