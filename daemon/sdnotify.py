"""systemd integration without libsystemd: sd_notify, the watchdog and socket activation.

Theory of operation
-------------------
systemd talks to a ``Type=notify`` service through two environment contracts,
both small enough to speak directly (see ``sd_notify(3)``, ``sd_listen_fds(3)``):

**Notification.**  ``$NOTIFY_SOCKET`` names an ``AF_UNIX`` datagram socket (a
path, or an abstract name written with a leading ``@``).  The service sends
newline-separated ``KEY=VALUE`` assignments in one datagram each time:
``READY=1`` once it serves requests, ``STATUS=...`` for ``systemctl status``,
``RELOADING=1`` then ``READY=1`` around a reload, ``STOPPING=1`` when it begins
to shut down, ``WATCHDOG=1`` as a keep-alive.  Without ``$NOTIFY_SOCKET``
every call is a no-op, so the daemon runs the same under a shell.

**Watchdog.**  With ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``, which must be our pid); if no ``WATCHDOG=1`` arrives within
that time the service is killed and restarted.  :func:`watchdog_serve` pings at
half the interval, from inside the trio event loop: if the loop wedges, the
pings stop, which is exactly what the watchdog is for.

**Socket activation.**  systemd may create the listening socket itself and
pass it as fd 3 (``$LISTEN_FDS`` fds from 3 on, ``$LISTEN_PID`` = our pid,
optional ``$LISTEN_FDNAMES`` colon-separated).  :func:`listen_fds` returns them
and :func:`activated_socket` picks the control socket among them.  When nothing
was passed the daemon creates its own socket (``daemon/control.py``).

Failures to notify never stop the daemon: a lost datagram costs a status line,
a dead daemon costs the service.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import trio

from .logs import get_logger

log = get_logger("sdnotify")

#: First inherited fd (``SD_LISTEN_FDS_START``).
LISTEN_FDS_START = 3
#: Name the socket unit gives the control socket (``FileDescriptorName=``).
CONTROL_FD_NAME = "control"
#: Ping the watchdog this fraction of ``$WATCHDOG_USEC`` (systemd recommends half).
WATCHDOG_FRACTION = 0.5
#: Upper bound on the fds we accept from ``$LISTEN_FDS`` (a sanity limit).
MAX_LISTEN_FDS = 64

_ACTIVATION_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def _socket_address(value: str) -> str | bytes | None:
    """``$NOTIFY_SOCKET`` as a ``sendto`` address, or None if we cannot use it."""
    if value.startswith("@"):
        # Abstract namespace: the name begins with a NUL byte.
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    # vsock: and other forms are for VMs and containers; we do not run there.
    return None


class Notifier:
    """Sends sd_notify datagrams; every method is a no-op when not under systemd."""

    def __init__(self, notify_socket: str | None) -> None:
        self.address = _socket_address(notify_socket) if notify_socket else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` (disabled when it is unset or unusable)."""
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """True when there is a notification socket to talk to."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True if it was sent."""
        if self.address is None:
            return False
        for line in assignments:
            if "\n" in line or "=" not in line:
                raise ValueError(f"not a KEY=VALUE assignment: {line!r}")
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the event loop on a full receive queue.
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            log.warning("sdnotify.send_failed", error=exc.strerror or type(exc).__name__)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup is complete, the control socket and store are up."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """``STATUS=``: a one-line state for ``systemctl status``."""
        return self.notify(f"STATUS={text.replace(chr(10), ' ')}")

    def reloading(self) -> bool:
        """``RELOADING=1``: a reload started (follow with :meth:`ready`)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping."""
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        """Close the datagram socket (a later call reopens it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Seconds between watchdog pings, or None if the watchdog is not enabled for us."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    wd_pid = env.get("WATCHDOG_PID")
    if wd_pid and wd_pid != str(os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 1_000_000 * WATCHDOG_FRACTION


async def watchdog_serve(
    notifier: Notifier,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds until cancelled."""
    task_status.started()
    while True:
        notifier.watchdog()
        await trio.sleep(interval)


@dataclass(frozen=True)
class ListenFD:
    """One socket inherited through socket activation."""

    fd: int
    name: str


def listen_fds(
    env: Mapping[str, str] = os.environ, pid: int | None = None
) -> list[ListenFD]:
    """The fds systemd passed us (empty when not socket-activated or meant for another pid)."""
    if env.get("LISTEN_PID") != str(os.getpid() if pid is None else pid):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    if count <= 0 or count > MAX_LISTEN_FDS:
        return []
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    result = []
    for i in range(count):
        fd = LISTEN_FDS_START + i
        name = names[i] if i < len(names) and names[i] else "unknown"
        result.append(ListenFD(fd, name))
    return result


def unset_activation_env(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Forget the activation variables so that no child process inherits them."""
    for var in _ACTIVATION_VARS:
        env.pop(var, None)


class ActivationError(Exception):
    """An inherited fd is not a listening Unix stream socket."""


def activated_socket(fds: list[ListenFD]) -> socket.socket | None:
    """The control socket among inherited fds, or None if none was passed.

    Picks the fd named :data:`CONTROL_FD_NAME`, or the only fd if there is just
    one (a hand-written socket unit need not name it).  Checks that it is a
    listening ``AF_UNIX`` stream socket and marks it close-on-exec.
    """
    if not fds:
        return None
    chosen = next((f for f in fds if f.name == CONTROL_FD_NAME), None)
    if chosen is None:
        if len(fds) != 1:
            names = ", ".join(f.name for f in fds)
            raise ActivationError(
                f"{len(fds)} sockets passed ({names}) and none is named {CONTROL_FD_NAME!r}"
            )
        chosen = fds[0]
    try:
        sock = socket.socket(fileno=chosen.fd)
    except OSError as exc:
        raise ActivationError(f"fd {chosen.fd} is not a socket: {exc.strerror}") from exc
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ActivationError(f"fd {chosen.fd} is not a Unix stream socket")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ActivationError(f"fd {chosen.fd} is not listening")
    sock.set_inheritable(False)
    return sock
