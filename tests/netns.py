"""Network namespaces for tests: N hosts on one private LAN, made and removed by the test.

Theory of operation
-------------------
:func:`lan` creates one namespace holding a bridge, and N host namespaces,
each joined to the bridge by a veth pair created directly between the two
namespaces (nothing is ever added to the root namespace), with
``10.<net>.0.<i+2>/24`` on the host side, multicast on, and loopback up.  It
yields a :class:`LAN`; on exit (also on failure) every namespace it made is
deleted, which takes their interfaces with them.  Each process a test runs
with :meth:`Host.command` lives in its host's namespace: multicast (mDNS) and
the DHT run there, never on the machine's real interfaces.  Unix sockets are
on the shared filesystem, so the test drives those processes from the root
namespace.

Needs CAP_SYS_ADMIN / CAP_NET_ADMIN and the ``ip`` tool: :func:`require_netns`
skips the test, quoting the kernel's refusal, only where it is refused.
Names carry the test process id, so parallel runs do not collide.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

#: Seconds one ``ip`` command may take.
IP_TIMEOUT = 20.0
#: Second octet of the LANs we make (one per lan() call, cycling).
NET_OCTETS = range(200, 250)

_counter = itertools.count()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=check)


def require_netns() -> None:
    """Skip the test (with the exact error) where the kernel refuses network namespaces."""
    if shutil.which("ip") is None:
        pytest.fail("network namespace tests need the 'ip' tool: install iproute2 (.ci/run does)")
    name = f"dcdprobe{os.getpid()}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"the kernel refuses network namespaces: ip netns add: {made.stderr.strip()}")
    _ip("netns", "del", name, check=False)


@dataclass(frozen=True)
class Host:
    """One namespace on the LAN."""

    ns: str
    address: str

    def command(self, args: list[str]) -> list[str]:
        """``args`` run inside this namespace."""
        return ["ip", "netns", "exec", self.ns, *args]


@dataclass(frozen=True)
class LAN:
    """The hosts of one :func:`lan`."""

    hosts: list[Host]
    bridge_ns: str


@contextmanager
def lan(count: int) -> Iterator[LAN]:
    """``count`` host namespaces on one bridge; all removed on exit."""
    require_netns()
    serial = next(_counter)
    net = NET_OCTETS[(os.getpid() + serial) % len(NET_OCTETS)]
    prefix = f"dcd{os.getpid() % 100000}x{serial}"
    bridge_ns = f"{prefix}br"
    made: list[str] = []
    try:
        _ip("netns", "add", bridge_ns)
        made.append(bridge_ns)
        _ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge")
        # Snooping would drop multicast to ports that never sent an IGMP report
        # in time; a test LAN floods it like a plain switch.
        _ip("-n", bridge_ns, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", bridge_ns, "link", "set", "br0", "up")
        hosts = []
        for i in range(count):
            ns = f"{prefix}h{i}"
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", bridge_ns, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", bridge_ns, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", bridge_ns, "link", "set", f"p{i}", "up")
            address = f"10.{net}.{i // 250}.{i % 250 + 2}"
            _ip("-n", ns, "addr", "add", f"{address}/16", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "multicast", "on", "up")
            # A real host reaches 224.0.0.251 through its default route; these
            # have none, and programs that do not pick an interface for their
            # multicast (node's multicast-dns) would get ENETUNREACH.
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            hosts.append(Host(ns, address))
        yield LAN(hosts, bridge_ns)
    finally:
        for ns in reversed(made):
            _ip("netns", "del", ns, check=False)
