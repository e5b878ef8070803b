"""libp2p mDNS discovery: find peers on the local network and let them find us.

Theory of operation
-------------------
The libp2p mDNS spec (``libp2p/specs/discovery/mdns.md``) in brief: a peer
asks ``_p2p._udp.local`` ``PTR?`` on 224.0.0.251:5353; every peer answers with
a ``PTR`` record ``_p2p._udp.local -> <peer-name>._p2p._udp.local`` and, for
that name, ``TXT`` records holding ``dnsaddr=<multiaddr>/p2p/<peer id>``, one
per address.  Nothing else is needed, and js-libp2p sends nothing else.

Why not py-libp2p's own mDNS: it is built on zeroconf's service browser,
which resolves a service by its ``SRV`` and address records and therefore
never finds a peer that answers with ``PTR`` + ``TXT`` only (js-libp2p); it
also runs on zeroconf's threads and joins multicast on every interface of the
machine.  So this module is our own small querier/responder in trio, on top of
the sans-I/O codec :mod:`daemon.p2p.dnswire`:

- :func:`query_packet`, :func:`response_packet`, :func:`wants_peers` and
  :func:`announcements` are the spec as pure functions (bytes in, values out);
- :class:`MDNS` is the trio task: one UDP socket on port 5353 joined to the
  group on every up, multicast-capable, non-loopback IPv4 interface; it queries
  at start and then at growing intervals up to :data:`QUERY_INTERVAL`,
  announces itself at start (so running peers learn of us without asking), and
  answers queries - at most one multicast answer per
  :data:`RESPONSE_MIN_INTERVAL`, since one multicast answer serves every
  peer that asked meanwhile.  On shutdown it says goodbye (TTL 0).

What we accept from an answer, per peer-name: ``dnsaddr=`` TXT strings (the
spec's form; js-libp2p and current py-libp2p), or, for older py-libp2p peers,
a TXT ``id=<peer id>`` with the ``SRV`` port and ``A``/``AAAA`` records of the
``SRV`` target.  Every address must be a TCP multiaddr for the peer id it
names; loopback and link-local addresses are dropped (they mean nothing on
another host).  A peer seen is reported by ``on_found(peer_id, addrs, ttl,
new)``; one whose TTL runs out without a refresh, or that says goodbye, by
``on_lost(peer_id, reason)``.  Anything malformed is counted and dropped: a
packet on a LAN is a stranger's input.

IPv4 only: js-libp2p's ``multicast-dns`` and py-libp2p both default to IPv4.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
import trio

from . import dnswire
from .dnswire import Message, Question, Record
from .errors import IdentityError
from .identity import parse_peer_id

#: The libp2p mDNS service name.
SERVICE_NAME: Final = "_p2p._udp.local"
MDNS_GROUP: Final = "224.0.0.251"
MDNS_PORT: Final = 5353
#: TTL of the records we announce (js-libp2p's default).
ANNOUNCE_TTL: Final = 120
#: Longest wait between two of our queries (must be well under ANNOUNCE_TTL
#: so that peers are refreshed before they expire).
QUERY_INTERVAL: Final = 20.0
#: First wait between queries after start; doubled after each query.
FIRST_QUERY_INTERVAL: Final = 1.0
#: Shortest time between two multicast answers of ours.
RESPONSE_MIN_INTERVAL: Final = 0.5
#: Seconds between checks for expired peers.
SWEEP_INTERVAL: Final = 1.0
#: Peers remembered from mDNS at most (a LAN cannot make us hold more).
MAX_PEERS: Final = 1024
#: Addresses taken from one peer's answer at most.
MAX_ADDRS_PER_PEER: Final = 16
#: Addresses we announce at most (keeps the answer in one small packet).
MAX_ANNOUNCED_ADDRS: Final = 16
#: Longest multiaddr we read from a TXT string.
MAX_MULTIADDR_CHARS: Final = 255
#: Seconds between re-scans of the machine's interfaces (new ones are joined).
INTERFACE_RESCAN_INTERVAL: Final = 5.0
#: Seconds the goodbye may take at shutdown.
GOODBYE_TIMEOUT: Final = 1.0

_IFF_UP: Final = 0x1
_IFF_LOOPBACK: Final = 0x8
_IFF_MULTICAST: Final = 0x1000
_SIOCGIFFLAGS: Final = 0x8913

log = structlog.get_logger("didcommd.p2p.mdns")

OnFound = Callable[[str, list[str], int, bool], None]
OnLost = Callable[[str, str], None]


# -- the spec as pure functions ------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    """One peer found in an mDNS answer."""

    peer_id: str
    addrs: tuple[str, ...]
    ttl: int
    name: str


def new_peer_name() -> str:
    """A random peer-name (the spec asks for 32 to 63 random characters)."""
    return secrets.token_hex(16)


def query_packet() -> bytes:
    """The spec's query: ``_p2p._udp.local PTR?``."""
    return dnswire.encode(Message(questions=[Question(SERVICE_NAME, dnswire.TYPE_PTR)]))


def response_packet(peer_name: str, multiaddrs: Sequence[str], ttl: int = ANNOUNCE_TTL, msg_id: int = 0,
                    question: bool = False) -> bytes:
    """Our answer: the PTR to ``<peer_name>._p2p._udp.local`` and its ``dnsaddr=`` TXT.

    ``multiaddrs`` must end in ``/p2p/<our peer id>``.  ``ttl=0`` is a goodbye.
    ``question=True`` repeats the question (legacy unicast answers must).
    """
    instance = f"{peer_name}.{SERVICE_NAME}"
    txt = tuple(f"dnsaddr={a}".encode() for a in list(multiaddrs)[:MAX_ANNOUNCED_ADDRS]
                if len(a) <= MAX_MULTIADDR_CHARS)
    message = Message(
        id=msg_id,
        flags=dnswire.FLAG_QR | dnswire.FLAG_AA,
        questions=[Question(SERVICE_NAME, dnswire.TYPE_PTR)] if question else [],
        answers=[Record(SERVICE_NAME, dnswire.TYPE_PTR, ttl, instance)],
        additionals=[Record(instance, dnswire.TYPE_TXT, ttl, txt, flush=True)],
    )
    return dnswire.encode(message)


def _same(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def wants_peers(message: Message) -> bool:
    """Is ``message`` a query that our answer answers?"""
    return not message.is_response and any(
        _same(q.name, SERVICE_NAME) and q.type in (dnswire.TYPE_PTR, dnswire.TYPE_ANY)
        for q in message.questions
    )


def _dnsaddr(item: bytes) -> str | None:
    key, sep, value = item.partition(b"=")
    if not sep or not key.lower().startswith(b"dnsaddr") or len(value) > MAX_MULTIADDR_CHARS:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def _legacy_addrs(name: str, txt: list[bytes], records: list[Record]) -> list[str]:
    """Addresses of an older py-libp2p peer: TXT ``id=``, SRV port, A/AAAA of its target."""
    peer_id = next((v.partition(b"=")[2].decode("ascii", "replace") for v in txt
                    if v.lower().startswith(b"id=")), None)
    srv = next((r.data for r in records if r.type == dnswire.TYPE_SRV and _same(r.name, name)), None)
    if not peer_id or not isinstance(srv, tuple):
        return []
    port, target = srv[2], srv[3]
    out = []
    for r in records:
        if r.type in (dnswire.TYPE_A, dnswire.TYPE_AAAA) and _same(r.name, target):
            proto = "ip4" if r.type == dnswire.TYPE_A else "ip6"
            out.append(f"/{proto}/{r.data}/tcp/{port}/p2p/{peer_id}")
    return out


def announcements(message: Message) -> list[Announcement]:
    """Every peer a response announces (unchecked addresses; see :func:`checked_addrs`)."""
    if not message.is_response:
        return []
    records = message.records()
    found = []
    for ptr in records:
        if ptr.type != dnswire.TYPE_PTR or not _same(ptr.name, SERVICE_NAME):
            continue
        name = str(ptr.data)
        txt = [item for r in records if r.type == dnswire.TYPE_TXT and _same(r.name, name)
               for item in r.data if isinstance(r.data, tuple)]
        addrs = [a for a in (_dnsaddr(item) for item in txt) if a] or _legacy_addrs(name, txt, records)
        by_peer: dict[str, list[str]] = {}
        for addr in addrs:
            if "/p2p/" in addr:
                by_peer.setdefault(addr.rsplit("/p2p/", 1)[1], []).append(addr)
        for peer_id, peer_addrs in by_peer.items():
            found.append(Announcement(peer_id, tuple(peer_addrs), ptr.ttl, name))
    return found


def checked_addrs(peer_id: str, addrs: Sequence[str]) -> list[str]:
    """The TCP multiaddrs in ``addrs`` that are dialable from another host.

    Raises :class:`IdentityError` for a bad peer id; drops any address that does
    not parse, is not TCP, names another peer, or is loopback / link-local.
    """
    from multiaddr import Multiaddr

    parse_peer_id(peer_id)
    out: list[str] = []
    for text in addrs[:MAX_ADDRS_PER_PEER]:
        try:
            addr = Multiaddr(text)
            names = [p.name for p in addr.protocols()]
            if "tcp" not in names or addr.value_for_protocol("p2p") != peer_id:
                continue
            for proto in ("ip4", "ip6"):
                if proto in names:
                    ip = ipaddress.ip_address(addr.value_for_protocol(proto))
                    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
                        raise ValueError("not dialable from another host")
        except Exception:  # multiaddr raises a zoo of ValueError subclasses
            continue
        out.append(str(addr))
    return list(dict.fromkeys(out))


# -- the network side --------------------------------------------------------------------------


def multicast_interfaces() -> dict[int, str]:
    """Index -> name of every up, multicast-capable, non-loopback interface."""
    result = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for index, name in socket.if_nameindex():
            try:
                ifreq = struct.pack("16sH14x", name.encode()[:15], 0)
                flags = struct.unpack("16sH14x", fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS, ifreq))[1]
            except OSError:
                continue
            if flags & _IFF_UP and flags & _IFF_MULTICAST and not flags & _IFF_LOOPBACK:
                result[index] = name
    return result


def _mreqn(index: int) -> bytes:
    """``struct ip_mreqn`` for the mDNS group on interface ``index``."""
    return socket.inet_aton(MDNS_GROUP) + socket.inet_aton("0.0.0.0") + struct.pack("@i", index)


class MDNS:
    """The mDNS querier/responder task (see the module docstring)."""

    def __init__(
        self,
        peer_id: str,
        addrs: Callable[[], Sequence[str]],
        on_found: OnFound,
        on_lost: OnLost,
        *,
        port: int = MDNS_PORT,
        query_interval: float = QUERY_INTERVAL,
    ) -> None:
        self.peer_id = peer_id
        self._addrs = addrs
        self._on_found = on_found
        self._on_lost = on_lost
        self._port = port
        self._query_interval = query_interval
        self.peer_name = new_peer_name()
        self._sock: trio.socket.SocketType | None = None
        self._joined: set[int] = set()
        self._peers: dict[str, float] = {}  # peer id -> trio time it expires
        self._answer_due = trio.Event()
        self.received = 0
        self.malformed = 0
        self.answers_sent = 0
        self.queries_sent = 0

    def stats(self) -> dict[str, int]:
        """Counters for ``status``."""
        return {
            "mdns_peers": len(self._peers),
            "mdns_received": self.received,
            "mdns_malformed": self.malformed,
            "mdns_queries_sent": self.queries_sent,
            "mdns_answers_sent": self.answers_sent,
        }

    def _our_addrs(self) -> list[str]:
        suffix = f"/p2p/{self.peer_id}"
        return checked_addrs(self.peer_id, [a if a.endswith(suffix) else a + suffix for a in self._addrs()])

    def _join_interfaces(self) -> None:
        assert self._sock is not None
        for index, name in multicast_interfaces().items():
            if index in self._joined:
                continue
            try:
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreqn(index))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # already a member: fine
                    log.info("mdns.join_failed", interface=name, error=exc.strerror)
                    continue
            self._joined.add(index)
            log.debug("mdns.joined", interface=name)

    async def _multicast(self, packet: bytes) -> None:
        """Send ``packet`` to the group on every joined interface."""
        assert self._sock is not None
        for index in sorted(self._joined):
            try:
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(index))
                await self._sock.sendto(packet, (MDNS_GROUP, self._port))
            except OSError as exc:  # the interface went away, no route...
                self._joined.discard(index)
                log.debug("mdns.send_failed", error=exc.strerror)

    async def _answer(self, ttl: int = ANNOUNCE_TTL) -> None:
        addrs = self._our_addrs()
        if addrs:
            await self._multicast(response_packet(self.peer_name, addrs, ttl))
            self.answers_sent += 1

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; started once the socket is bound and joined."""
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            # Loop on: other peers on this same host (other namespaces share
            # nothing, but two daemons of one user do) must hear us too.
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            await sock.bind(("", self._port))
            self._sock = sock
            self._join_interfaces()
            log.info("mdns.started", peer_name=self.peer_name, interfaces=len(self._joined))
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._receive_loop)
                    nursery.start_soon(self._query_loop)
                    nursery.start_soon(self._answer_loop)
                    nursery.start_soon(self._sweep_loop)
                    task_status.started()
            finally:
                with trio.move_on_after(GOODBYE_TIMEOUT) as scope:
                    scope.shield = True
                    await self._answer(ttl=0)

    async def _query_loop(self) -> None:
        await self._answer()  # announce ourselves: running peers learn of us at once
        wait = FIRST_QUERY_INTERVAL
        rescanned = trio.current_time()
        while True:
            if trio.current_time() - rescanned >= INTERFACE_RESCAN_INTERVAL:
                self._join_interfaces()
                rescanned = trio.current_time()
            await self._multicast(query_packet())
            self.queries_sent += 1
            await trio.sleep(wait)
            wait = min(wait * 2, self._query_interval)

    async def _answer_loop(self) -> None:
        while True:
            await self._answer_due.wait()
            self._answer_due = trio.Event()
            await self._answer()
            await trio.sleep(RESPONSE_MIN_INTERVAL)

    async def _sweep_loop(self) -> None:
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            now = trio.current_time()
            for peer_id in [p for p, until in self._peers.items() if until <= now]:
                del self._peers[peer_id]
                self._report_lost(peer_id, "expired")

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            try:
                packet, source = await self._sock.recvfrom(dnswire.MAX_PACKET_BYTES + 1)
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                log.debug("mdns.receive_failed", error=exc.strerror)
                continue
            self.received += 1
            try:
                message = dnswire.decode(packet)
            except dnswire.DNSFormatError as exc:
                self.malformed += 1
                log.debug("mdns.malformed", source=source[0], error=str(exc))
                continue
            if wants_peers(message):
                if source[1] != MDNS_PORT:
                    await self._answer_legacy(message, source)
                else:
                    self._answer_due.set()
                continue
            for found in announcements(message):
                self._take(found)

    async def _answer_legacy(self, message: Message, source: tuple[str, int]) -> None:
        """A one-shot querier (not on port 5353) gets a unicast answer (RFC 6762 6.7)."""
        assert self._sock is not None
        addrs = self._our_addrs()
        if not addrs:
            return
        try:
            packet = response_packet(self.peer_name, addrs, min(ANNOUNCE_TTL, 10), message.id, question=True)
            await self._sock.sendto(packet, source)
        except OSError as exc:
            log.debug("mdns.send_failed", error=exc.strerror)

    def _take(self, found: Announcement) -> None:
        if found.peer_id == self.peer_id or _same(found.name, f"{self.peer_name}.{SERVICE_NAME}"):
            return
        if found.ttl == 0:
            if self._peers.pop(found.peer_id, None) is not None:
                self._report_lost(found.peer_id, "goodbye")
            return
        try:
            addrs = checked_addrs(found.peer_id, found.addrs)
        except IdentityError:
            self.malformed += 1
            return
        if not addrs:
            return
        new = found.peer_id not in self._peers
        if new and len(self._peers) >= MAX_PEERS:
            return
        ttl = min(found.ttl, ANNOUNCE_TTL * 10)
        self._peers[found.peer_id] = trio.current_time() + ttl
        if new:
            log.info("mdns.peer_found", peer=found.peer_id, addrs=addrs)
        try:
            self._on_found(found.peer_id, addrs, ttl, new)
        except Exception:  # the daemon goes on whatever a callback does
            log.exception("mdns.on_found_failed", peer=found.peer_id)

    def _report_lost(self, peer_id: str, reason: str) -> None:
        log.info("mdns.peer_lost", peer=peer_id, reason=reason)
        try:
            self._on_lost(peer_id, reason)
        except Exception:
            log.exception("mdns.on_lost_failed", peer=peer_id)
