"""The systemd notify protocol: READY, STATUS, STOPPING and the watchdog, without libsystemd.

The protocol is one datagram to ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract
namespace); systemd's maintainers advise re-implementing it rather than linking
libsystemd. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

import trio

log = logging.getLogger(__name__)


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``); returns False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as error:
        log.warning("systemd notify failed: %s", error)
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of ``WATCHDOG_USEC`` (systemd's advice), if this process is the one watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None


async def watchdog(daemon) -> None:
    """Ping the watchdog while the scheduler is alive, so a wedged daemon gets restarted."""
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        if daemon.scheduler_alive():
            notify("WATCHDOG=1")
        await trio.sleep(interval)
