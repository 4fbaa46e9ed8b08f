"""The PII key is proved against the database before any row is touched."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketsync.core.domain import pii_key_check
from marketsync.core.domain.pii import PiiCipher, PiiKeyError
from marketsync.core.runtime.connect import seal_credentials
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Account, PiiKeyCheck

KEY_A = PiiCipher([b"a" * 32])
KEY_B = PiiCipher([b"b" * 32])


def checks(store) -> list[str]:
    return store.run_blocking(lambda s: sorted(s.execute(select(PiiKeyCheck.key_id)).scalars()))


def test_first_use_records_a_check_value_and_the_same_key_passes(store):
    store.run_blocking(pii_key_check.verify, KEY_A)
    assert checks(store) == [KEY_A.current_key_id]
    store.run_blocking(pii_key_check.verify, KEY_A)
    assert checks(store) == [KEY_A.current_key_id]


def test_a_wrong_key_is_refused_naming_fingerprints_and_writes_nothing(store):
    store.run_blocking(pii_key_check.verify, KEY_A)
    with pytest.raises(PiiKeyError) as caught:
        store.run_blocking(pii_key_check.verify, KEY_B)
    message = str(caught.value)
    assert KEY_A.current_key_id in message and KEY_B.current_key_id in message
    assert "\n" not in message and "wrong key?" in message
    assert checks(store) == [KEY_A.current_key_id]  # B was not recorded


def test_a_missing_key_is_refused_once_data_was_sealed(store):
    store.run_blocking(pii_key_check.verify, None)  # nothing sealed yet: no key is fine
    assert checks(store) == []
    store.run_blocking(pii_key_check.verify, KEY_A)
    with pytest.raises(PiiKeyError, match="no pii.key is configured, but this database holds "
                                          f"buyer data sealed with key id {KEY_A.current_key_id}"):
        store.run_blocking(pii_key_check.verify, None)


def test_a_rotated_ring_passes_and_records_the_new_current_key(store):
    store.run_blocking(pii_key_check.verify, KEY_A)
    ring = PiiCipher([b"b" * 32, b"a" * 32])  # B seals from now on, A still opens
    store.run_blocking(pii_key_check.verify, ring)
    assert checks(store) == sorted([KEY_A.current_key_id, KEY_B.current_key_id])
    with pytest.raises(PiiKeyError, match=f"does not contain key id {KEY_A.current_key_id}"):
        store.run_blocking(pii_key_check.verify, KEY_B)  # A dropped too early


def test_a_database_from_before_check_values_is_proved_by_what_it_holds(store):
    """Stored credentials sealed with A and no check row (an older database): B is refused
    before anything is written; A passes and gets its check value."""
    def stored_credentials(session):
        ensure_integration(session, alias="amazon-de", channel="amazon", account="eu",
                           marketplace="DE")
        account = session.execute(select(Account).where(Account.name == "eu")).scalar_one()
        account.secret_blob = seal_credentials(KEY_A, "eu", {"refresh_token": "Atzr|x"})
    store.run_blocking(stored_credentials)
    with pytest.raises(PiiKeyError, match="does not open the buyer data or credentials"):
        store.run_blocking(pii_key_check.verify, KEY_B)
    with pytest.raises(PiiKeyError, match="holds sealed buyer data or credentials"):
        store.run_blocking(pii_key_check.verify, None)
    assert store.run_blocking(lambda s: s.execute(select(func.count()).select_from(
        PiiKeyCheck)).scalar()) == 0
    store.run_blocking(pii_key_check.verify, KEY_A)
    assert checks(store) == [KEY_A.current_key_id]
