"""The state directory and the database are the seller's alone by default (0700, 0600),
whatever the umask of the shell that first ran marketsync."""

from __future__ import annotations

import os
import stat

from marketsync.core.store import Store
from marketsync.core.store.models import Product


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_state_directory_and_database_are_private(tmp_path):
    old = os.umask(0o022)  # the usual interactive umask: 0755 and 0644 before
    try:
        state = tmp_path / "var" / "marketsync"
        with Store(f"sqlite:///{state / 'marketsync.db'}") as store:
            store.upgrade()
            store.run_blocking(lambda s: s.add(Product(sku="A", on_hand=1, reserved=0)))
            assert mode(state) == 0o700
            assert mode(state / "marketsync.db") == 0o600
            assert mode(state / "marketsync.db-wal") == 0o600  # SQLite copies the mode
    finally:
        os.umask(old)


def test_existing_files_keep_the_mode_the_operator_gave_them(tmp_path):
    os.chmod(tmp_path, 0o750)
    database = tmp_path / "shared.db"
    database.touch()
    os.chmod(database, 0o640)
    with Store(f"sqlite:///{database}") as store:
        store.upgrade()
    assert mode(database) == 0o640
    assert mode(tmp_path) == 0o750
