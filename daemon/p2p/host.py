"""The libp2p node: one host, our two protocols, and ``send``.

Theory of operation
-------------------
:func:`serve` is a trio service like every component of the daemon: the
service starts it with ``node = await nursery.start(serve, ...)``, gets the
running :class:`P2PNode` once the host listens (real ports, so port 0 works),
and stops it by cancelling the nursery.

The host is py-libp2p's ``BasicHost`` built with explicit choices, never its
defaults: TCP only; **Noise only** as the security protocol (py-libp2p would
otherwise also offer TLS, secio and ``/plaintext/2.0.0``, letting a dialer
pick an unencrypted connection); Yamux as the muxer (js-libp2p's mplex
disconnects peers that open more than a few streams a second); identify and
ping come with the host.  Two stream handlers are registered:

- ``didcomm/v2`` (:mod:`daemon.p2p.didcomm_v2`), the extension's protocol,
  which every DIDComm-over-libp2p peer can use to reach us;
- ``/didcommd/deliver/1.0.0`` (:mod:`daemon.p2p.deliver`), the pipelined fast
  path between two didcommd daemons.

Inbound, both call ``on_message(packed, remote_peer_id)`` and acknowledge a
message only after it returns (the daemon returns after its durable commit).

Outbound, :meth:`P2PNode.send` reuses the peer's connection if there is one
(py-libp2p's swarm keeps one per peer; we dial at most once at a time per
peer), then tries the fast path and falls back to ``didcomm/v2`` on the same
stream when the peer does not know it - remembering such peers for
:data:`PLAIN_PEER_RECHECK_SECONDS` so the next message goes straight to
``didcomm/v2`` in one round trip.  A connection can die in silence (no FIN,
no RST) and TCP takes many minutes to notice; so after a delivery timed out,
the next send to that peer first pings it (:data:`PROBE_TIMEOUT`) and, with no
answer, drops the connection and dials again.

``import libp2p`` is slow, so this module imports it only inside functions
(:func:`serve` first); importing :mod:`daemon.p2p.host` is cheap.  The
py-libp2p behaviours we work around are in :mod:`daemon.p2p.compat`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
import trio

from ..locks import EagerLock
from . import compat, deliver, didcomm_v2, endpoint, multistream
from .admission import Admission, AdmissionLimits
from .didcomm_v2 import OnMessage
from .errors import (
    CONNECTION_LOST,
    INVALID,
    SHUTTING_DOWN,
    TIMEOUT,
    TOO_LARGE,
    UNREACHABLE,
    UNSUPPORTED,
    DeliveryError,
    FrameError,
    IdentityError,
    P2PConfigError,
    StreamResetError,
)
from .identity import PeerIdentity, parse_peer_id

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream
    from multiaddr import Multiaddr

#: Seconds to establish a connection (TCP + Noise + Yamux) to a peer.
DIAL_TIMEOUT: Final = 10.0
#: Seconds a peer has to finish multistream-select on a stream it opened.
NEGOTIATE_TIMEOUT: Final = 10
#: Seconds we keep addresses a caller gave us for a peer.
PEER_ADDRESS_TTL: Final = 600
#: Most addresses we accept for one peer in one send() call.
MAX_ADDRS_PER_PEER: Final = 16
#: Addresses tried per dial, in order (the caller's first).
MAX_DIAL_ADDRS: Final = 8
#: Seconds one address may take before the next is tried (the last one gets
#: what is left of DIAL_TIMEOUT).
PER_ADDRESS_DIAL_TIMEOUT: Final = 3.0
#: Seconds we remember that a peer only speaks didcomm/v2.
PLAIN_PEER_RECHECK_SECONDS: Final = 300.0
#: Peers remembered as didcomm/v2-only at most (oldest forgotten first).
MAX_REMEMBERED_PEERS: Final = 10_000
#: (peer id, addresses) pairs whose parsed form we keep (oldest dropped first).
MAX_PARSED_ADDRESS_SETS: Final = 1024
#: Seconds a ping may take when we check a peer after a delivery timed out.
PROBE_TIMEOUT: Final = 5.0
#: Peers remembered as "timed out last time" at most (oldest forgotten first).
MAX_SUSPECT_PEERS: Final = 10_000
#: Fresh sessions tried per send() when the previous one just ended.
SESSION_ATTEMPTS: Final = 2
#: Seconds between peerstore sweeps of expired addresses.
PEERSTORE_CLEANUP_SECONDS: Final = 60
#: Listen addresses that mean "every interface" (expanded before announcing).
WILDCARD_PREFIXES: Final = ("/ip4/0.0.0.0/", "/ip6/::/")
#: The multiaddr protocols we can listen on / dial (TCP only for now).
SUPPORTED_TRANSPORTS: Final = frozenset({"tcp"})

log = structlog.get_logger("didcommd.p2p")


class P2PConfig(Protocol):
    """What :func:`serve` reads from the ``[p2p]`` config section."""

    @property
    def listen(self) -> Sequence[str]: ...
    @property
    def announce(self) -> Sequence[str]: ...
    @property
    def bootstrap(self) -> Sequence[str]: ...
    @property
    def mdns(self) -> bool: ...


@dataclass(frozen=True)
class P2PLimits:
    """Every number the transport enforces; defaults are the named constants."""

    max_message_bytes: int = didcomm_v2.MAX_MESSAGE_BYTES
    stream_read_timeout: float = didcomm_v2.STREAM_READ_TIMEOUT
    delivery_timeout: float = didcomm_v2.DELIVERY_TIMEOUT
    dial_timeout: float = DIAL_TIMEOUT
    negotiate_timeout: int = NEGOTIATE_TIMEOUT
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)
    #: Offer and use /didcommd/deliver/1.0.0 (False: didcomm/v2 only).
    fast_path: bool = True
    max_in_flight: int = deliver.MAX_IN_FLIGHT
    frame_read_timeout: float = deliver.FRAME_READ_TIMEOUT
    sender_idle_timeout: float = deliver.SENDER_IDLE_TIMEOUT
    receiver_idle_timeout: float = deliver.RECEIVER_IDLE_TIMEOUT
    plain_peer_recheck: float = PLAIN_PEER_RECHECK_SECONDS
    probe_timeout: float = PROBE_TIMEOUT


def parse_multiaddrs(texts: Sequence[str], what: str) -> list[Multiaddr]:
    """Parse TCP multiaddrs from the config; raises P2PConfigError."""
    from multiaddr import Multiaddr

    result = []
    for text in texts:
        try:
            addr = Multiaddr(text)
            names = {p.name for p in addr.protocols()}
        except Exception as exc:  # multiaddr raises a zoo of ValueError subclasses
            raise P2PConfigError(f"p2p.{what}: {text!r} is not a multiaddr ({exc})") from None
        if not names & SUPPORTED_TRANSPORTS:
            raise P2PConfigError(
                f"p2p.{what}: {text!r} is not a TCP address (only TCP is supported)"
            )
        result.append(addr)
    return result


class P2PNode:
    """A running libp2p node (made by :func:`serve`)."""

    def __init__(
        self,
        host: IHost,
        identity: PeerIdentity,
        on_message: OnMessage,
        limits: P2PLimits,
        nursery: trio.Nursery,
    ) -> None:
        self._host = host
        self.identity = identity
        self.peer_id: str = identity.peer_id
        self.limits = limits
        self._deliver_inbound = on_message
        self._nursery = nursery
        self._admission = Admission(limits.admission, trio.current_time)
        self._dial_locks: dict[str, EagerLock] = {}
        self._session_locks: dict[str, EagerLock] = {}
        self._sessions: dict[str, deliver.Session] = {}
        self._plain_peers: OrderedDict[str, float] = OrderedDict()
        self._suspects: OrderedDict[str, None] = OrderedDict()
        self._parsed: OrderedDict[tuple[str, tuple[str, ...]], tuple[Any, list[Multiaddr]]] = (
            OrderedDict()
        )
        #: ``async (peer_id) -> [multiaddr]``: where to look a peer up when we
        #: have no address for it or every address failed (the DHT, set by
        #: :class:`daemon.p2p.discovery.Discovery`); None: no such lookup.
        self.peer_router: Callable[[str], Awaitable[list[str]]] | None = None
        self.closed = False
        self.received = 0
        self.sent = 0
        self.send_failures = 0

    # -- what the daemon reads ---------------------------------------------------

    @property
    def addrs(self) -> list[str]:
        """Where peers can dial us, each ending in ``/p2p/<peer id>``.

        The ``announce`` addresses if configured; else the listen addresses,
        with a wildcard (``0.0.0.0``, ``::``) replaced by this machine's
        interface addresses, since a wildcard is not something one can dial.
        """
        from libp2p.utils.address_validation import expand_wildcard_address
        from multiaddr import Multiaddr

        suffix = f"/p2p/{self.peer_id}"
        result: list[str] = []
        for addr in self._host.get_addrs():
            text = str(addr)
            bare = text[: -len(suffix)] if text.endswith(suffix) else text
            if bare.startswith(WILDCARD_PREFIXES):
                result.extend(str(a) + suffix for a in expand_wildcard_address(Multiaddr(bare)))
            else:
                result.append(bare + suffix)
        return list(dict.fromkeys(result))

    def service_endpoint(self) -> dict[str, Any]:
        """The ``serviceEndpoint`` for our DID documents (the extension's form)."""
        return endpoint.service_endpoint(self.peer_id, self.addrs)

    def stats(self) -> dict[str, Any]:
        """Counters and gauges for the daemon's status report."""
        return {
            "peer_id": self.peer_id,
            "connected_peers": len(self._host.get_connected_peers()),
            "fast_sessions": len(self._sessions),
            "inbound_streams": self._admission.open_streams,
            "received": self.received,
            "sent": self.sent,
            "send_failures": self.send_failures,
            "refused_streams": self._admission.refused_streams,
            "refused_messages": self._admission.refused_messages,
            "refused_reads": self._admission.refused_reads,
            "inbound_buffered_bytes": self._admission.buffered_bytes,
        }

    def connected_peers(self) -> list[str]:
        """Peer ids we have a connection to right now."""
        return [str(p) for p in self._host.get_connected_peers()]

    @property
    def host(self) -> IHost:
        """The py-libp2p host (for tests and future discovery code)."""
        return self._host

    # -- inbound -------------------------------------------------------------------

    async def _on_message(self, packed: bytes, peer_id: str) -> None:
        await self._deliver_inbound(packed, peer_id)
        self.received += 1

    async def _on_didcomm_stream(self, stream: INetStream) -> None:
        await didcomm_v2.handle_inbound(
            stream,
            on_message=self._on_message,
            admission=self._admission,
            max_message_bytes=self.limits.max_message_bytes,
            read_timeout=self.limits.stream_read_timeout,
        )

    async def _on_deliver_stream(self, stream: INetStream) -> None:
        await deliver.handle_inbound(
            stream,
            on_message=self._on_message,
            admission=self._admission,
            max_message_bytes=self.limits.max_message_bytes,
            max_in_flight=self.limits.max_in_flight,
            frame_timeout=self.limits.frame_read_timeout,
            idle_timeout=self.limits.receiver_idle_timeout,
        )

    # -- outbound ------------------------------------------------------------------

    async def send(
        self,
        peer_id: str,
        multiaddrs: Sequence[str],
        packed: bytes | str,
        *,
        protocol: str | None = None,
    ) -> str:
        """Deliver one packed DIDComm message to ``peer_id``.

        ``multiaddrs`` are addresses from the recipient's DID document service
        (``multiAddrs``); they may be empty if we are connected or the
        peerstore knows the peer.  Returns only once the receiver has
        committed the message, with the protocol id that carried it.
        ``protocol="didcomm/v2"`` skips the fast path.  Raises
        :class:`~daemon.p2p.errors.DeliveryError`.
        """
        try:
            used = await self._send(peer_id, multiaddrs, packed, protocol)
        except DeliveryError as exc:
            self.send_failures += 1
            if exc.reason == TIMEOUT:
                # A silent peer may be a dead connection (no FIN, no RST: a
                # laptop lid, a NAT that forgot us).  Check before reusing it.
                self._suspects[peer_id] = None
                while len(self._suspects) > MAX_SUSPECT_PEERS:
                    self._suspects.popitem(last=False)
            raise
        self.sent += 1
        return used

    async def _send(
        self, peer_id: str, multiaddrs: Sequence[str], packed: bytes | str, protocol: str | None
    ) -> str:
        message = packed.encode() if isinstance(packed, str) else bytes(packed)
        if protocol not in (None, didcomm_v2.PROTOCOL_ID):
            raise DeliveryError(peer_id[:80], INVALID, f"cannot force protocol {protocol!r}")
        self._check_sendable(peer_id, message)
        await self._connect(peer_id, multiaddrs)
        if self.limits.fast_path and protocol is None and not self._is_plain_peer(peer_id):
            for _ in range(SESSION_ATTEMPTS):
                chosen = await self._session(peer_id)
                if not isinstance(chosen, deliver.Session):
                    # The peer only speaks the extension: this stream already
                    # selected didcomm/v2, so the message goes on it.
                    stream, reader = chosen
                    await didcomm_v2.send_on_stream(
                        stream,
                        reader,
                        peer_id,
                        message,
                        selected=True,
                        timeout=self.limits.delivery_timeout,
                    )
                    return didcomm_v2.PROTOCOL_ID
                try:
                    await chosen.send(message, timeout=self.limits.delivery_timeout)
                except deliver.SessionClosedError:
                    continue  # it ended before our frame went out: a new one
                return deliver.PROTOCOL_ID
            raise DeliveryError(peer_id, CONNECTION_LOST, "fast-path sessions keep closing")
        stream = await self._open_stream(peer_id)
        await didcomm_v2.send_message(
            stream, peer_id, message, timeout=self.limits.delivery_timeout
        )
        return didcomm_v2.PROTOCOL_ID

    async def connect(self, peer_id: str, multiaddrs: Sequence[str] = ()) -> None:
        """Make sure we have a connection to ``peer_id`` (dialling ``multiaddrs``
        first, then what the peerstore knows).  Raises DeliveryError."""
        self._check_peer(peer_id)
        await self._connect(peer_id, multiaddrs)

    async def disconnect(self, peer_id: str) -> None:
        """Close our connections to ``peer_id`` (its streams and sessions end)."""
        self._check_peer(peer_id)
        await compat.close_peer(self._host, peer_id)

    def _check_peer(self, peer_id: str) -> None:
        if self.closed:
            raise DeliveryError(peer_id[:80], SHUTTING_DOWN, "the p2p node is stopping")
        try:
            parse_peer_id(peer_id)
        except IdentityError as exc:
            raise DeliveryError(peer_id[:80], INVALID, str(exc)) from None
        if peer_id == self.peer_id:
            raise DeliveryError(peer_id, INVALID, "that is our own peer id")

    def _check_sendable(self, peer_id: str, message: bytes) -> None:
        self._check_peer(peer_id)
        if not message:
            raise DeliveryError(peer_id, INVALID, "the message is empty")
        if len(message) > self.limits.max_message_bytes:
            raise DeliveryError(
                peer_id,
                TOO_LARGE,
                f"{len(message)} bytes is over the {self.limits.max_message_bytes}-byte limit",
            )

    def _peer_multiaddrs(self, peer_id: str, texts: Sequence[str]) -> list[Multiaddr]:
        from multiaddr import Multiaddr

        if len(texts) > MAX_ADDRS_PER_PEER:
            raise DeliveryError(peer_id, INVALID, f"more than {MAX_ADDRS_PER_PEER} addresses")
        result = []
        for text in texts:
            try:
                addr = Multiaddr(text)
                names = [p.name for p in addr.protocols()]
                p2p = addr.value_for_protocol("p2p") if "p2p" in names else None
            except Exception:
                raise DeliveryError(peer_id, INVALID, f"{text!r} is not a multiaddr") from None
            if p2p is not None:
                if p2p != peer_id:
                    raise DeliveryError(peer_id, INVALID, f"{text!r} names another peer")
                addr = addr.decapsulate(Multiaddr(f"/p2p/{p2p}"))
            result.append(addr)
        return result

    async def _connect(self, peer_id: str, multiaddrs: Sequence[str]) -> None:
        from libp2p.peer.id import ID

        # Parsing multiaddrs and peer ids costs more than a whole fast-path
        # delivery, and the outbox sends the same few again and again: cache.
        key = (peer_id, tuple(multiaddrs))
        cached = self._parsed.get(key)
        if cached is None:
            cached = (ID.from_base58(peer_id), self._peer_multiaddrs(peer_id, multiaddrs))
            self._parsed[key] = cached
            while len(self._parsed) > MAX_PARSED_ADDRESS_SETS:
                self._parsed.popitem(last=False)
        pid, addrs = cached
        if compat.has_live_connection(self._host, pid):
            if peer_id not in self._suspects:
                return
            del self._suspects[peer_id]
            if await compat.ping(self._host, peer_id, self.limits.probe_timeout):
                return
            log.info("p2p.peer.unresponsive", peer=peer_id)
            await compat.close_peer(self._host, peer_id)
        peerstore = self._host.get_peerstore()
        if addrs:
            peerstore.add_addrs(pid, addrs, PEER_ADDRESS_TTL)
        async with _per_peer(self._dial_locks, peer_id):
            if compat.has_live_connection(self._host, pid):
                return
            try:
                known = list(peerstore.addrs(pid))
            except Exception:  # PeerStoreError: peer not in the store
                known = []
            # The caller's addresses (fresh from a DID document) first, then
            # whatever identify, mDNS or an earlier send taught the peerstore.
            candidates = [a for a in dict.fromkeys([*addrs, *known]) if _dialable(a)][:MAX_DIAL_ADDRS]
            if not candidates:
                candidates = await self._routed_addrs(peer_id, [])
                if not candidates:
                    raise DeliveryError(peer_id, UNREACHABLE, "no known address")
            try:
                await self._dial(peer_id, pid, candidates)
            except DeliveryError:
                # Stale addresses (a DID document written before the peer
                # moved): ask the router for fresh ones before giving up.
                fresh = await self._routed_addrs(peer_id, candidates)
                if not fresh:
                    raise
                await self._dial(peer_id, pid, fresh)

    async def _routed_addrs(self, peer_id: str, tried: Sequence[Multiaddr]) -> list[Multiaddr]:
        """Addresses for ``peer_id`` from :attr:`peer_router` not in ``tried``."""
        if self.peer_router is None:
            return []
        texts = await self.peer_router(peer_id)
        suffix = f"/p2p/{peer_id}"
        try:
            found = self._peer_multiaddrs(
                peer_id, [t for t in texts if "/p2p/" not in t or t.endswith(suffix)][:MAX_ADDRS_PER_PEER]
            )
        except DeliveryError:
            return []
        seen = {str(a) for a in tried}
        return [a for a in found if str(a) not in seen and _dialable(a)][:MAX_DIAL_ADDRS]

    async def _dial(self, peer_id: str, pid: Any, candidates: list[Multiaddr]) -> None:
        """Dial ``candidates`` in order until one connects.

        Not ``host.connect()``: py-libp2p's swarm dials at most one address
        per transport (the first TCP one in its peerstore, stale or not),
        retries it with backoff, and then refuses the peer for 60 s.
        """
        network: Any = self._host.get_network()
        failures: list[str] = []
        with trio.move_on_after(self.limits.dial_timeout):
            for i, addr in enumerate(candidates):
                last = i == len(candidates) - 1
                with trio.move_on_after(math.inf if last else PER_ADDRESS_DIAL_TIMEOUT):
                    try:
                        await network.dial_addr(addr, pid)
                    except compat.io_errors() as exc:
                        failures.append(type(exc).__name__)
                        continue
                    return
                failures.append("timeout")
        raise DeliveryError(
            peer_id,
            UNREACHABLE,
            f"no connection within {self.limits.dial_timeout} s "
            f"({len(candidates)} address(es): {', '.join(failures) or 'timeout'})",
        )

    async def _open_stream(self, peer_id: str) -> INetStream:
        try:
            with trio.fail_after(self.limits.dial_timeout):
                return await compat.open_stream(self._host, peer_id)
        except trio.TooSlowError:
            raise DeliveryError(peer_id, TIMEOUT, "no stream within the dial timeout") from None
        except compat.io_errors() as exc:
            raise DeliveryError(peer_id, UNREACHABLE, type(exc).__name__) from None

    def _is_plain_peer(self, peer_id: str) -> bool:
        until = self._plain_peers.get(peer_id)
        if until is None:
            return False
        if trio.current_time() >= until:
            del self._plain_peers[peer_id]
            return False
        return True

    def _remember_plain_peer(self, peer_id: str) -> None:
        self._plain_peers.pop(peer_id, None)
        self._plain_peers[peer_id] = trio.current_time() + self.limits.plain_peer_recheck
        while len(self._plain_peers) > MAX_REMEMBERED_PEERS:
            self._plain_peers.popitem(last=False)

    async def _session(
        self, peer_id: str
    ) -> deliver.Session | tuple[INetStream, compat.StreamReader]:
        """The live session with ``peer_id``, a new one, or a didcomm/v2 stream."""
        async with _per_peer(self._session_locks, peer_id):
            session = self._sessions.get(peer_id)
            if session is not None and not session.closed:
                return session
            stream = await self._open_stream(peer_id)
            reader = compat.StreamReader(stream, multistream.MAX_MESSAGE_BYTES)
            try:
                with trio.fail_after(self.limits.delivery_timeout):
                    chosen = await compat.select_protocol(
                        stream, reader, [deliver.PROTOCOL_ID, didcomm_v2.PROTOCOL_ID]
                    )
            except (trio.TooSlowError, FrameError, StreamResetError) as exc:
                await compat.reset_quietly(stream)
                raise DeliveryError(
                    peer_id, UNREACHABLE, f"protocol selection failed: {type(exc).__name__}"
                ) from None
            except compat.io_errors() as exc:
                await compat.reset_quietly(stream)
                raise DeliveryError(
                    peer_id, CONNECTION_LOST, f"protocol selection failed: {type(exc).__name__}"
                ) from None
            if chosen is None:
                await compat.reset_quietly(stream)
                raise DeliveryError(peer_id, UNSUPPORTED, "the peer speaks no DIDComm protocol")
            if chosen == didcomm_v2.PROTOCOL_ID:
                self._remember_plain_peer(peer_id)
                return stream, reader
            session = deliver.Session(
                peer_id,
                stream,
                reader,
                max_in_flight=self.limits.max_in_flight,
                idle_timeout=self.limits.sender_idle_timeout,
            )
            await self._nursery.start(self._run_session, session)
            self._sessions[peer_id] = session
            return session

    async def _run_session(
        self, session: deliver.Session, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            await session.run(task_status=task_status)
        finally:
            if self._sessions.get(session.peer_id) is session:
                del self._sessions[session.peer_id]


def advertised_addrs(candidates: list[Multiaddr]) -> list[Multiaddr]:
    """What identify and the DHT tell peers (py-libp2p's ``addrs_factory``).

    A wildcard listen address (``0.0.0.0``, ``::``) is not dialable: a peer
    that learned ``/ip4/0.0.0.0/tcp/P`` through identify or the DHT would
    dial itself.  So each is replaced by this machine's interface addresses,
    loopback ones last (they only help a peer on this same host).
    """
    from libp2p.utils.address_validation import expand_wildcard_address

    out: list[Multiaddr] = []
    for addr in candidates:
        if str(addr).startswith(WILDCARD_PREFIXES):
            out.extend(expand_wildcard_address(addr))
        else:
            out.append(addr)
    unique = list({str(a): a for a in out}.values())
    return sorted(unique, key=lambda a: str(a).startswith(("/ip4/127.", "/ip6/::1/")))


def _dialable(addr: Multiaddr) -> bool:
    """False for a wildcard address (some peers advertise their listen address as is)."""
    return not str(addr).startswith(WILDCARD_PREFIXES)


@asynccontextmanager
async def _per_peer(locks: dict[str, EagerLock], peer_id: str) -> AsyncIterator[None]:
    """Hold ``peer_id``'s lock from ``locks``; forget the lock once nobody wants it."""
    lock = locks.get(peer_id) or locks.setdefault(peer_id, EagerLock())
    try:
        async with lock:
            yield
    finally:
        if locks.get(peer_id) is lock and not lock.locked() and not lock.statistics().tasks_waiting:
            del locks[peer_id]


async def serve(
    config: P2PConfig,
    identity: PeerIdentity,
    on_message: OnMessage,
    *,
    limits: P2PLimits | None = None,
    task_status: trio.TaskStatus[P2PNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a libp2p node until cancelled; ``task_status.started(node)`` once listening.

    ``on_message(packed: bytes, remote_peer_id: str)`` is awaited for every
    inbound message and must return only after the message is durably
    committed (raise to refuse it: the sender then sees a failure).
    Raises :class:`P2PConfigError` for a bad address in ``config``.
    """
    limits = limits or P2PLimits()
    listen = parse_multiaddrs(config.listen, "listen")
    announce = parse_multiaddrs(config.announce, "announce")
    bootstrap = list(config.bootstrap)
    parse_multiaddrs(bootstrap, "bootstrap")

    from libp2p import new_host
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux
    from libp2p.transport.tcp.tcp import TCP

    compat.route_logging()
    compat.tune_yamux()
    compat.buffer_tcp_reads()
    compat.eager_locks()
    key_pair = identity.libp2p_key_pair()
    host = new_host(
        key_pair=key_pair,
        # Noise only: without sec_opt py-libp2p also offers /plaintext/2.0.0.
        sec_opt={
            NOISE_PROTOCOL_ID: NoiseTransport(
                key_pair, noise_privkey=new_x25519_key_pair().private_key
            )
        },
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        transports=[TCP()],
        listen_addrs=listen,
        announce_addrs=announce or None,
        addrs_factory=None if announce else advertised_addrs,
        bootstrap=bootstrap or None,
        # Our own mDNS (daemon.p2p.mdns, started by daemon.p2p.discovery)
        # replaces py-libp2p's, which never finds js-libp2p peers.
        enable_mDNS=False,
        negotiate_timeout=limits.negotiate_timeout,
        connection_config=ConnectionConfig(
            # One connection per peer; it also ends py-libp2p's happy-eyeballs
            # wait as soon as one dial succeeds (else every dial takes 250 ms).
            max_connections_per_peer=1,
            min_connections=0,
            dial_timeout=limits.dial_timeout,
            inbound_stream_protocol_negotiation_timeout=limits.negotiate_timeout,
            outbound_stream_protocol_negotiation_timeout=limits.negotiate_timeout,
        ),
    )
    compat.disable_auto_dialling(host)
    compat.no_dial_retries(host)
    compat.end_inbound_handlers_with_their_connections(host)
    failure: P2PConfigError | None = None
    async with trio.open_nursery() as nursery:
        node = P2PNode(host, identity, on_message, limits, nursery)
        host.set_stream_handler(TProtocol(didcomm_v2.PROTOCOL_ID), node._on_didcomm_stream)
        if limits.fast_path:
            host.set_stream_handler(TProtocol(deliver.PROTOCOL_ID), node._on_deliver_stream)
        async with host.run(listen_addrs=listen):
            try:
                # py-libp2p logs a failed listen (port in use, an address not
                # of this machine) and carries on without it; a daemon should
                # not.  (Raised after the nurseries, so the caller gets the
                # error itself, not an ExceptionGroup.)
                network: Any = host.get_network()
                missing = [str(a) for a in listen if str(a) not in network.listeners]
                if missing:
                    failure = P2PConfigError(
                        f"p2p.listen: cannot listen on {', '.join(missing)} "
                        "(address in use, or not an address of this machine)"
                    )
                else:
                    nursery.start_soon(
                        host.get_peerstore().start_cleanup_task, PEERSTORE_CLEANUP_SECONDS
                    )
                    log.info("p2p.listening", peer_id=node.peer_id, addrs=node.addrs)
                    task_status.started(node)
                    await trio.sleep_forever()
            finally:
                node.closed = True
                nursery.cancel_scope.cancel()
                await compat.close_host(host)
                log.info("p2p.stopped", peer_id=node.peer_id)
    if failure is not None:
        raise failure
