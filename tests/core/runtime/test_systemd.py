"""The systemd notify protocol against a fake notify socket (core/runtime/systemd.py)."""

from __future__ import annotations

import os
import socket

import pytest

from marketsync.core.runtime import systemd


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield server
    server.close()


def test_ready_and_status_arrive_as_one_datagram(notify_socket):
    """READY=1 and STATUS=… are sent together, newline-separated."""
    assert systemd.notify("READY=1", "STATUS=running 3 integration(s)")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=running 3 integration(s)"


def test_abstract_namespace_socket(monkeypatch):
    """A NOTIFY_SOCKET starting with @ is in the abstract namespace."""
    name = f"marketsync-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert systemd.notify("WATCHDOG=1")
        assert server.recv(100) == b"WATCHDOG=1"
    finally:
        server.close()


def test_outside_systemd_notify_is_a_no_op(monkeypatch):
    """Without NOTIFY_SOCKET nothing is sent and nothing fails."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    """systemd advises pinging at half the watchdog period; another PID's watchdog is ignored."""
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval() is None


async def test_watchdog_pings_only_while_the_scheduler_is_alive(notify_socket, monkeypatch, autojump_clock):
    """A wedged scheduler stops the pings, so systemd restarts the daemon."""
    import trio

    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    class FakeDaemon:
        alive = True

        def scheduler_alive(self):
            return self.alive

    daemon = FakeDaemon()
    notify_socket.setblocking(False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(systemd.watchdog, daemon)
        await trio.sleep(3.5)  # pings at 0, 1, 2, 3 s
        daemon.alive = False
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    pings = []
    while True:
        try:
            pings.append(notify_socket.recv(100))
        except BlockingIOError:
            break
    assert pings == [b"WATCHDOG=1"] * 4
