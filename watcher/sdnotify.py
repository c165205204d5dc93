"""systemd's notify protocol in a few lines of stdlib (READY, STATUS, WATCHDOG, STOPPING).

The ``sdnotify`` package encodes as latin-1 and drops non-Latin status text silently; this sends
UTF-8 and does nothing when not started by systemd (no ``NOTIFY_SOCKET``). Like libsystemd's
``sd_notify``, a failure to deliver is reported by the return value, never raised: a daemon must
not stop checking borrowers because systemd's socket went away (or was never there).
"""

from __future__ import annotations

import os
import socket


def notify(*lines: str) -> bool:
    """Send ``lines`` as one datagram; True when it was delivered."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode("utf-8", errors="replace"))
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        interval = int(usec) / 2_000_000
    except ValueError:
        return None
    return interval if interval > 0 else None
