"""Buyer data: sealed per value, bound to its row and column, purged 30 days on."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from marketsync.core.domain import inventory, orders, pii
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Order
from marketsync.core.types import Address, Buyer, ChannelOrder, ChannelOrderItem, Fulfillment, \
    OrderStatus

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_seal_and_open_round_trip_with_fresh_nonces():
    cipher = pii.PiiCipher.from_text(KEY1)
    a, b = cipher.seal("Erika", "orders.buyer_name:1:X"), cipher.seal("Erika",
                                                                         "orders.buyer_name:1:X")
    assert a != b and b"Erika" not in a
    assert a[0] == pii.VERSION and len(a) == 2 + 8 + 12 + len("Erika") + 16
    assert cipher.open(a, "orders.buyer_name:1:X") == "Erika"


def test_value_moved_to_another_row_does_not_open():
    cipher = pii.PiiCipher.from_text(KEY1)
    sealed = cipher.seal("Erika", pii.order_aad("buyer_name", 1, "A"))
    with pytest.raises(pii.PiiDecryptError, match="moved from another row") as caught:
        cipher.open(sealed, pii.order_aad("buyer_name", 1, "B"))
    assert "Erika" not in str(caught.value)


def test_rotation_old_key_still_opens_new_key_seals():
    old = pii.PiiCipher.from_text(KEY1).seal("x", "a")
    ring = pii.PiiCipher.from_text(f"{KEY2},{KEY1}")
    assert ring.open(old, "a") == "x"
    with pytest.raises(pii.PiiDecryptError, match="not configured"):
        pii.PiiCipher.from_text(KEY2).open(old, "a")


def test_key_sources_and_bad_keys(tmp_path):
    path = tmp_path / "pii.key"
    path.write_text(KEY1 + "\n")
    sealed = pii.PiiCipher.from_file(path).seal("v", "a")
    assert pii.PiiCipher.from_env("K", {"K": KEY1}).open(sealed, "a") == "v"
    with pytest.raises(pii.PiiKeyError, match="variable K with the PII key is not set"):
        pii.PiiCipher.from_env("K", {})
    with pytest.raises(pii.PiiKeyError, match="16, 24 or 32 bytes") as caught:
        pii.PiiCipher.from_text(base64.b64encode(b"short").decode())
    assert "short" not in str(caught.value)
    with pytest.raises(pii.PiiKeyError, match="neither base64 nor hex"):
        pii.PiiCipher.from_text("not*a*key")
    assert "keys=1" in repr(pii.PiiCipher.from_text(KEY1)) and KEY1 not in repr(
        pii.PiiCipher.from_text(KEY1))


def test_redact_hides_content():
    assert pii.redact("erika@example.org") == "<redacted email len=17>"
    assert "Erika" not in pii.redact("Erika Muster")
    assert pii.redact(None) == "<none>"


def _order(status=OrderStatus.NEW, delivered=None) -> ChannelOrder:
    return ChannelOrder(
        channel_order_id="A-1", marketplace="DE", status=status, channel_status=status.value,
        fulfillment=Fulfillment.MFN, purchased_at=T0, updated_at=T0, delivered_at=delivered,
        shipped_at=delivered and delivered - timedelta(days=1),
        buyer=Buyer(name="Erika Muster", email="erika@example.org", phone="+49 30 1"),
        shipping_address=Address(name="Erika Muster", line1="Hauptstr. 1", city="Berlin",
                                 country_code="DE"),
        items=(ChannelOrderItem(channel_item_id="1", channel_sku="MUG", quantity=1),))


def test_orders_store_buyer_data_encrypted_and_purge_after_30_days(store):
    """On both databases: ciphertext at rest, readable with the key, gone after 30 days
    past delivery, and not brought back by a re-import."""
    cipher = pii.PiiCipher.from_text(KEY1)
    delivered = T0 + timedelta(days=3)

    def work(session):
        integration = ensure_integration(session, alias="amazon-de", channel="amazon",
                                         account="acme", marketplace="DE")
        inventory.ensure_product(session, "MUG")
        orders.apply_channel_orders(session, integration, [_order()], cipher=cipher)
        order = session.execute(select(Order)).scalar_one()
        assert b"Erika" not in order.buyer_name and b"Berlin" not in order.ship_to_address
        assert cipher.open(order.buyer_email, pii.order_aad(
            "buyer_email", integration, "A-1")) == "erika@example.org"
        assert order.ship_to_country == "DE" and order.pii_purge_after == T0 + pii.HARD_CAP
        orders.apply_channel_orders(session, integration,
                                    [_order(OrderStatus.SHIPPED, delivered)], cipher=cipher)
        assert order.pii_purge_after == delivered + timedelta(days=30)
        assert pii.purge_due(session, delivered + timedelta(days=29)) == 0
        assert pii.purge_due(session, delivered + timedelta(days=30)) == 1
        session.flush()
        assert (order.buyer_name, order.buyer_email, order.buyer_phone,
                order.ship_to_address) == (None, None, None, None)
        assert order.ship_to_country == "DE"
        orders.apply_channel_orders(session, integration,
                                    [_order(OrderStatus.SHIPPED, delivered)], cipher=cipher)
        assert order.buyer_name is None
    store.run_blocking(work)


def test_without_a_key_buyer_data_is_not_stored(store):
    def work(session):
        integration = ensure_integration(session, alias="amazon-de", channel="amazon",
                                         account="acme", marketplace="DE")
        orders.apply_channel_orders(session, integration, [_order()])
        order = session.execute(select(Order)).scalar_one()
        assert order.buyer_name is None and order.ship_to_address is None
        assert not order.pii_available and order.ship_to_country == "DE"
    store.run_blocking(work)
