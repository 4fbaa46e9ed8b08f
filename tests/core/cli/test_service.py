"""``marketsync run`` as systemd runs it: a subprocess, a notify socket, signals, real ports.

The simulator is served by another process on a loopback port, so the daemon talks to it
over real TCP exactly as it would to Amazon; nothing in the daemon process is replaced.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import marketsync.plugins.amazon.sandbox as sandbox_package

DEMO_SCENARIO = Path(sandbox_package.__file__).parent / "scenarios" / "demo.yaml"
CLIENT_ID = "amzn1.application-oa2-client.demo000000000000000000"
CLIENT_SECRET = "amzn1.oa2-cs.v1.demosecret00000000000000000000000000000"
REFRESH = "Atzr|demo-eu-00000000000000000000000000000"
SELLER = "A9DEMOSELLEREU"
# the console script's own interpreter: the daemon as `pip install` leaves it
MARKETSYNC = [sys.executable, "-c", "from marketsync.daemon import cli; cli()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll a condition in real time: these tests watch other processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture
def simulator(tmp_path) -> Iterator[str]:
    """The demo scenario served by a separate process; yields its base URL."""
    out = tmp_path / "simulator.out"
    code = ("import trio; from marketsync.plugins.amazon.sandbox.serve import serve; "
            f"trio.run(serve, {str(DEMO_SCENARIO)!r}, '127.0.0.1', 0, 1.0)")
    with open(out, "w") as stream:
        process = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=stream,
                                   stderr=subprocess.STDOUT)
    try:
        url = wait_until(lambda: re.search(r"simulator at (http://127\.0\.0\.1:\d+)",
                                           out.read_text()), 30, "the simulator's port")
        yield url.group(1)
    finally:
        process.terminate()
        process.wait(10)


def write_config(directory: Path, endpoint: str, http_port: int, database: str | None = None) -> Path:
    """A production-shaped configuration: secrets in files referenced as ${file:...}."""
    secrets = directory / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "client-secret").write_text(CLIENT_SECRET + "\n")
    (secrets / "refresh-token").write_text(REFRESH + "\n")
    path = directory / "marketsync.yaml"
    path.write_text(f"""\
database: {database or f"sqlite:///{directory / 'marketsync.sqlite'}"}
http:
  listen: 127.0.0.1:{http_port}
accounts:
  eu:
    channel: amazon
    endpoint: {endpoint}
    credentials:
      client_id: {CLIENT_ID}
      client_secret: ${{file:{secrets / 'client-secret'}}}
      refresh_token: ${{file:{secrets / 'refresh-token'}}}
      seller_id: {SELLER}
integrations:
  - alias: amazon-uk
    account: eu
    marketplace: UK
  - alias: amazon-de
    account: eu
    marketplace: DE
""")
    return path


class NotifySocket:
    """What systemd listens on: a datagram socket at $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def receive(self) -> None:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass

    def saw(self, field: str) -> str | None:
        if self.sock.fileno() != -1:
            self.receive()
        return next((m for m in self.messages if field in m.split("\n")), None)

    def close(self) -> None:
        self.sock.close()


def start_daemon(config: Path, notify: NotifySocket, log: Path) -> subprocess.Popen:
    environ = {**os.environ, "NOTIFY_SOCKET": notify.path}
    environ.pop("MARKETSYNC_CONFIG", None)
    with open(log, "w") as stream:
        return subprocess.Popen([*MARKETSYNC, "-c", str(config), "run"], env=environ,
                                stdout=stream, stderr=subprocess.STDOUT)


def test_run_under_a_fake_systemd(simulator, tmp_path):
    """READY=1 once started and /healthz answers 200; SIGHUP with a broken file is refused
    with the reason while the daemon goes on, with a good one the integrations restart on
    it; SIGTERM sends STOPPING=1 and exits 0 fast."""
    http_port = free_port()
    config = write_config(tmp_path, simulator, http_port)
    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "daemon.log"
    process = start_daemon(config, notify, log)
    try:
        ready = wait_until(lambda: notify.saw("READY=1") or process.poll() is not None, 60,
                           "READY=1")
        assert process.poll() is None, log.read_text()
        assert "STATUS=running 2 integration(s)" in ready
        assert f"http://127.0.0.1:{http_port}" in ready
        health = httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=5)
        assert health.status_code == 200 and health.text == "ok"
        page = httpx.get(f"http://127.0.0.1:{http_port}/", timeout=5)
        assert "data-alias='amazon-uk'" in page.text

        good = config.read_text()
        config.write_text(good.replace("marketplace: DE", "marketplace: ZZ"))
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in log.read_text(), 20, "the refused reload")
        text = log.read_text()
        assert re.search(r"marketsync\.yaml:\d+: integrations\[1\]\.marketplace", text), text
        assert httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=5).status_code == 200

        # a valid file: the integrations restart on it in the same process (amazon-de gone)
        config.write_text(good[:good.index("  - alias: amazon-de")])
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: notify.saw("RELOADING=1"), 30, "RELOADING=1")
        def ready_again():
            notify.receive()
            return any("STATUS=running 1 integration(s)" in m for m in notify.messages)

        wait_until(lambda: ready_again() or process.poll() is not None, 60,
                   "READY=1 after the reload")
        assert process.poll() is None, log.read_text()
        status = httpx.get(f"http://127.0.0.1:{http_port}/", timeout=5,
                           headers={"accept": "application/json"}).json()
        states = {i["alias"]: i["state"] for i in status["integrations"]}
        assert states["amazon-de"] == "DISABLED"  # removed from the file: kept, switched off
        assert states["amazon-uk"] in ("CONNECTING", "LIVE")

        stopping_from = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(10)
        took = time.monotonic() - stopping_from
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        notify.receive()
        notify.close()
    assert code == 0, log.read_text()
    assert took < 10
    assert notify.saw("STOPPING=1")
    assert CLIENT_SECRET not in log.read_text() and REFRESH not in log.read_text()


def test_unreachable_database_is_one_clear_line(tmp_path):
    """A PostgreSQL URL to a closed port: non-zero exit and one line naming the URL with
    its password masked, not a traceback."""
    config = write_config(tmp_path, "http://127.0.0.1:9", free_port(),
                          database=f"postgresql+psycopg://marketsync:hunter2@127.0.0.1:{free_port()}/shop")
    result = subprocess.run([*MARKETSYNC, "-c", str(config), "run"], capture_output=True,
                            text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "postgresql+psycopg://marketsync:***@127.0.0.1" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_wrong_or_missing_pii_key_is_one_line_exit_2_and_writes_nothing(tmp_path):
    """Credentials sealed with one key, the daemon started with another (or none): one
    line naming the configuration and pii.key, exit 2, the database as it was."""
    import base64

    from sqlalchemy import select

    from marketsync.core.domain import pii_key_check
    from marketsync.core.domain.pii import PiiCipher
    from marketsync.core.runtime.connect import seal_credentials
    from marketsync.core.store import Store
    from marketsync.core.store.integrations import ensure_integration
    from marketsync.core.store.models import Account, PiiKeyCheck

    right, wrong = bytes(range(32)), bytes(range(1, 33))
    config = write_config(tmp_path, "http://127.0.0.1:9", free_port())
    database = tmp_path / "marketsync.sqlite"
    with Store(f"sqlite:///{database}") as store:
        store.upgrade()

        def seal(session):
            ensure_integration(session, alias="amazon-de", channel="amazon", account="eu",
                               marketplace="DE")
            account = session.execute(select(Account).where(Account.name == "eu")).scalar_one()
            account.secret_blob = seal_credentials(PiiCipher([right]), "eu", {"x": "y"})
        store.run_blocking(seal)
        store.run_blocking(pii_key_check.verify, PiiCipher([right]))
    before = database.read_bytes()
    key_file = tmp_path / "secrets" / "pii.key"
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    text = config.read_text()
    for key, expected in ((wrong, "does not contain key id"),
                          (None, "no pii.key is configured")):
        if key is None:
            config.write_text(text)
        else:
            key_file.write_text(base64.b64encode(key).decode())
            config.write_text(f"pii:\n  key: ${{file:{key_file}}}\n" + text)
        result = subprocess.run([*MARKETSYNC, "-c", str(config), "run"], capture_output=True,
                                text=True, timeout=60, env=env)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{config}: pii.key: ") and expected in lines[0]
        assert database.read_bytes() == before
    with Store(f"sqlite:///{database}") as store:
        assert store.run_blocking(lambda s: len(s.execute(select(PiiKeyCheck)).all())) == 1


class CuttableTcpProxy:
    """A loopback TCP proxy to PostgreSQL in threads: ``cut`` refuses new connections and
    drops open ones, as a server that went away; ``restore`` serves the same port again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._listener.close()
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.mark.skipif(os.environ.get("MARKETSYNC_TEST_PG", "1") == "0",
                    reason="MARKETSYNC_TEST_PG=0: the reload-in-an-outage test needs PostgreSQL")
def test_a_reload_while_the_database_is_down_keeps_the_running_configuration(simulator,
                                                                            tmp_path):
    """SIGHUP with a valid new file while PostgreSQL is unreachable: the reload is refused
    in one line naming the outage, the daemon stays up on the old file (nothing stopped,
    nothing half-applied); once the database is back, SIGHUP applies it."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from marketsync.core.store import Store
    from marketsync.core.store.models import IntegrationRow
    from tests.conftest import PgSchema

    schema = PgSchema()
    base = make_url(schema.url)
    proxy = CuttableTcpProxy((base.host or "127.0.0.1", base.port or 5432))
    database = base.set(host="127.0.0.1", port=proxy.port).update_query_dict(
        {"options": f"-csearch_path={schema.name}"}).render_as_string(hide_password=False)
    http_port = free_port()
    config = write_config(tmp_path, simulator, http_port, database=database)
    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "daemon.log"
    process = start_daemon(config, notify, log)
    try:
        wait_until(lambda: notify.saw("READY=1") or process.poll() is not None, 90, "READY=1")
        assert process.poll() is None, log.read_text()
        good = config.read_text()
        config.write_text(good[:good.index("  - alias: amazon-de")])  # valid: amazon-de gone

        proxy.cut()
        wait_until(lambda: "unavailable" in log.read_text(), 60, "the outage noticed")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in log.read_text() or process.poll() is not None,
                   60, "the refused reload")
        time.sleep(2)
        assert process.poll() is None, log.read_text()
        refused = [line for line in log.read_text().splitlines() if "reload refused" in line]
        assert len(refused) == 1 and "unavailable" in refused[0], refused
        assert "Traceback" not in log.read_text()
        assert not notify.saw("RELOADING=1")  # the running integrations were never stopped
        health = httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=5)
        assert health.status_code == 503 and "database unavailable" in health.text

        proxy.restore()
        wait_until(lambda: "is back after" in log.read_text(), 90, "the database back")
        with Store(schema.url) as store:  # nothing of the refused file reached the database
            rows = store.read_blocking(lambda s: dict(s.execute(
                select(IntegrationRow.alias, IntegrationRow.enabled)).all()))
        assert rows == {"amazon-uk": True, "amazon-de": True}, rows

        process.send_signal(signal.SIGHUP)
        wait_until(lambda: notify.saw("RELOADING=1") or process.poll() is not None, 60,
                   "RELOADING=1")

        def ready_again():
            notify.receive()
            return any("STATUS=running 1 integration(s)" in m for m in notify.messages)

        wait_until(lambda: ready_again() or process.poll() is not None, 90,
                   "READY=1 after the reload")
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        notify.close()
        proxy.cut()
        schema.drop()
    assert code == 0, log.read_text()
