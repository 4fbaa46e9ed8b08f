"""SQLite serves one daemon: a second ``marketsync run`` refuses, or waits with ``--standby``.

Real processes on a real SQLite file, because the lock is the kernel's (``flock``) and
the point is what a second process sees, including after the first is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

MARKETSYNC = [sys.executable, "-c", "from marketsync.daemon import cli; cli()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {text!r} in {path}:\n"
                         f"{path.read_text() if path.exists() else '(no output)'}")


def write_config(directory: Path) -> Path:
    """No integrations: the lock is taken before any of them would start."""
    path = directory / f"marketsync-{free_port()}.yaml"
    path.write_text(f"database: sqlite:///{directory / 'marketsync.sqlite'}\n"
                    f"http:\n  listen: 127.0.0.1:{free_port()}\n")
    return path


def start(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    with open(out, "w") as stream:
        return subprocess.Popen([*MARKETSYNC, "-c", str(config), "run", *extra],
                                stdout=stream, stderr=subprocess.STDOUT)


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_second_daemon_refuses_naming_the_first(tmp_path: Path, processes) -> None:
    """A second daemon on the same SQLite file exits 2 with one line naming pid and host."""
    first = start(write_config(tmp_path), tmp_path / "first.out")
    processes.append(first)
    wait_for_text(tmp_path / "first.out", "status page at")
    second = subprocess.run([*MARKETSYNC, "-c", str(write_config(tmp_path)), "run"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"pid {first.pid} on host {socket.gethostname()}" in lines[0]
    assert "--standby" in lines[0]
    assert first.poll() is None, "the first daemon must not be disturbed"


def test_standby_takes_over_when_the_holder_is_killed(tmp_path: Path, processes) -> None:
    """``--standby`` waits while the first runs and starts once it is SIGKILLed."""
    first = start(write_config(tmp_path), tmp_path / "first.out")
    processes.append(first)
    wait_for_text(tmp_path / "first.out", "status page at")
    standby = start(write_config(tmp_path), tmp_path / "standby.out", "--standby")
    processes.append(standby)
    wait_for_text(tmp_path / "standby.out", f"in use by pid {first.pid}")
    time.sleep(1.5)  # a few of its attempts: it must still be waiting, not running
    assert standby.poll() is None
    assert "status page at" not in (tmp_path / "standby.out").read_text()
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    wait_for_text(tmp_path / "standby.out", "status page at")
    lock = (tmp_path / "marketsync.sqlite.daemon.lock").read_text()
    assert lock.startswith(f"pid {standby.pid} ")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(30) == 0
    assert (tmp_path / "marketsync.sqlite.daemon.lock").read_text() == ""
