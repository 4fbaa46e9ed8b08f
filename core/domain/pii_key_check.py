"""Proving the PII key before any row is touched.

The key never lives in the database, so nothing used to notice a wrong one: with stored
credentials the daemon died of a 50-line traceback, without them it ran on silently,
storing no new buyer data while the old rows could no longer be opened. Each key that
seals something here leaves a check value in ``pii_key_checks`` (a constant sealed with
it); at start the configured key ring must open every one of them, or the command stops
with one line naming the key's fingerprint, before anything is read or written.

A database from before the check values is proved by opening one sealed value it holds
(an order's buyer name or an account's credentials).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketsync.core.domain.pii import PiiCipher, PiiDecryptError, PiiKeyError, order_aad
from marketsync.core.store.models import Account, Order, PiiKeyCheck

CHECK_PLAINTEXT = "marketsync pii key check v1"


def _aad(key_id: str) -> str:
    return f"pii_key_checks.sealed:{key_id}"


def _sealed_sample(session: Session) -> tuple[bytes, str] | None:
    """One value sealed before check values existed, with its associated data."""
    order = session.execute(
        select(Order.integration_id, Order.channel_order_id, Order.buyer_name)
        .where(Order.buyer_name.is_not(None)).limit(1)).first()
    if order is not None:
        return order.buyer_name, order_aad("buyer_name", order.integration_id,
                                           order.channel_order_id)
    account = session.execute(select(Account.name, Account.secret_blob)
                              .where(Account.secret_blob.is_not(None)).limit(1)).first()
    if account is not None:
        return account.secret_blob, f"accounts.secret_blob:{account.name}"
    return None


def verify(session: Session, cipher: PiiCipher | None) -> None:
    """Raise PiiKeyError unless ``cipher`` opens what this database holds; then record a
    check value for its current key (the only write, and only after the proof).

    No key is fine for a database that holds no sealed data (buyer data is then not
    stored at all); a database that does needs the key that sealed it.
    """
    checks = session.execute(select(PiiKeyCheck)).scalars().all()
    sample = None if checks else _sealed_sample(session)
    if cipher is None:
        if checks:
            ids = ", ".join(sorted(check.key_id for check in checks))
            raise PiiKeyError(f"no pii.key is configured, but this database holds buyer data "
                              f"sealed with key id {ids}; configure that key")
        if sample is not None:
            raise PiiKeyError("no pii.key is configured, but this database holds sealed "
                              "buyer data or credentials; configure the key that sealed them")
        return
    for check in checks:
        if not cipher.has(check.key_id):
            raise PiiKeyError(f"pii.key does not contain key id {check.key_id}, which sealed "
                              f"data in this database (configured: {', '.join(cipher.key_ids)});"
                              " wrong key?")
        try:
            opened = cipher.open(check.sealed, _aad(check.key_id))
        except PiiDecryptError:
            opened = None
        if opened != CHECK_PLAINTEXT:
            raise PiiKeyError(f"pii.key id {check.key_id} does not open this database's "
                              "check value; wrong key?")
    if sample is not None:
        blob, aad = sample
        try:
            cipher.open(blob, aad)
        except PiiDecryptError:
            raise PiiKeyError("pii.key does not open the buyer data or credentials already in "
                              f"this database (configured: {', '.join(cipher.key_ids)}); "
                              "wrong key?") from None
    current = cipher.current_key_id
    if all(check.key_id != current for check in checks):
        session.add(PiiKeyCheck(key_id=current, sealed=cipher.seal(CHECK_PLAINTEXT,
                                                                   _aad(current))))
        session.flush()
