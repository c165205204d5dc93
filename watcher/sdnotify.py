"""systemd's notify protocol in a few lines of stdlib (READY, STATUS, WATCHDOG, STOPPING).

The ``sdnotify`` package encodes as latin-1 and drops non-Latin status text silently; this sends
UTF-8 and does nothing when not started by systemd (no ``NOTIFY_SOCKET``).
"""

from __future__ import annotations

import os
import socket


def notify(*lines: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(lines).encode("utf-8"))
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
