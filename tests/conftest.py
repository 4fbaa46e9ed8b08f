"""Shared fixtures: a database on every backend the store supports.

Both fixtures are parametrised over SQLite and PostgreSQL, so a test that takes either
runs twice (ids ``[sqlite]`` and ``[postgresql]``):

``store``
    An upgraded, empty ``Store`` of the test's own (``store.url`` is its URL). Migrating
    for every test would cost most of the suite's time, so the schema is built once per
    session: SQLite tests get a copy of a migrated template file; PostgreSQL tests share
    one migrated schema that is emptied (every row deleted) before each test. Tests that
    change the *schema* (downgrades, DDL) must use ``store_url`` instead.
``store_url``
    A URL to an empty, never-migrated database of the test's own: a file under
    ``tmp_path``, or a fresh PostgreSQL schema dropped afterwards.

PostgreSQL comes from ``MARKETSYNC_TEST_PG_URL`` (default below); each test's schema is
selected through libpq's ``options=-csearch_path=...``. When the server cannot be reached
the test FAILS saying so; set ``MARKETSYNC_TEST_PG=0`` to test on SQLite alone (the
PostgreSQL variants are then not generated, rather than skipped).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from marketsync.core.store import Store, mask_url
from marketsync.core.store.models import Base

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_ENABLED = os.environ.get("MARKETSYNC_TEST_PG", "1") != "0"
BACKENDS = ["sqlite", "postgresql"] if PG_ENABLED else ["sqlite"]
#: test connections: durability is not needed, and a lock left by a broken test should
#: fail the next one quickly rather than hang it
PG_TEST_OPTIONS = "-csynchronous_commit=off -clock_timeout=10s"


def pytest_configure(config: pytest.Config) -> None:
    # lets library code tell it is under test (datasette's convention)
    sys._called_from_test = True  # type: ignore[attr-defined]


def pg_base_url() -> URL:
    url = make_url(os.environ.get("MARKETSYNC_TEST_PG_URL", DEFAULT_PG_URL))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


class PgSchema:
    """A throw-away PostgreSQL schema and a URL whose connections see only it."""

    def __init__(self) -> None:
        self.base = pg_base_url()
        self.name = f"test_{uuid.uuid4().hex[:16]}"
        self._admin = create_engine(
            self.base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        try:
            with self._admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        except SQLAlchemyError as error:
            self._admin.dispose()
            reason = (str(getattr(error, "orig", error)).strip().splitlines() or ["?"])[0]
            pytest.fail(
                f"PostgreSQL at {mask_url(self.base)} is unreachable ({reason}). Start it, "
                "point MARKETSYNC_TEST_PG_URL at one, or set MARKETSYNC_TEST_PG=0 to test "
                "on SQLite only.",
                pytrace=False,
            )
        options = f"-csearch_path={self.name} {PG_TEST_OPTIONS}"
        self.url = self.base.update_query_dict({"options": options}).render_as_string(
            hide_password=False
        )

    def drop(self) -> None:
        try:
            with self._admin.connect() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        finally:
            self._admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test variant: "sqlite" or "postgresql"."""
    return request.param


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty, never-migrated database of this test's own."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'marketsync.db'}"
        return
    schema = PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store-template") / "marketsync.db"
    with Store(f"sqlite:///{path}") as template:
        template.upgrade()
    return path  # closed: the WAL is checkpointed into the file


@pytest.fixture(scope="session")
def _pg_migrated_schema() -> Iterator[str]:
    schema = PgSchema()
    try:
        with Store(schema.url) as template:
            template.upgrade()
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An upgraded, empty Store of this test's own (see the module doc)."""
    if backend == "sqlite":
        path = tmp_path / "marketsync.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        db = Store(f"sqlite:///{path}")
    else:
        db = Store(request.getfixturevalue("_pg_migrated_schema"))
        with db.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    try:
        yield db
    finally:
        db.close()
