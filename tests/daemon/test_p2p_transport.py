"""The libp2p transport with real hosts on 127.0.0.1.

Our nodes (``daemon.p2p.host.serve``) talk to each other and to "raw"
py-libp2p hosts that know nothing of this package and follow only the DIDComm
libp2p transport extension: one stream, varint-prefixed frames, close.
"""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import trio

from daemon.p2p import deliver, didcomm_v2
from daemon.p2p.admission import AdmissionLimits
from daemon.p2p.errors import (
    BUSY,
    CONNECTION_LOST,
    INVALID,
    REJECTED,
    SHUTTING_DOWN,
    TIMEOUT,
    TOO_LARGE,
    UNREACHABLE,
    UNSUPPORTED,
    DeliveryError,
    P2PConfigError,
)
from daemon.p2p.framing import encode_frame, encode_uvarint
from daemon.p2p.host import P2PLimits, P2PNode, serve
from daemon.p2p.identity import PeerIdentity, load_or_create_identity

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
DIDCOMM = "didcomm/v2"


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: [LOOPBACK])
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False


class Inbox:
    """The daemon's side of ``on_message``: a list standing in for the store."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, str]] = []
        self.fail = False
        self.hold: trio.Event | None = None  # commits wait for it when set
        self.entered = 0  # calls so far, finished or not
        self.arrived = trio.Event()

    async def __call__(self, packed: bytes, peer: str) -> None:
        self.entered += 1
        await trio.sleep(0)  # a commit is a checkpoint
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise RuntimeError("the store refused the message")
        self.messages.append((packed, peer))
        self.arrived.set()

    def bodies(self) -> list[bytes]:
        return [m for m, _ in self.messages]


@asynccontextmanager
async def node(
    inbox: Inbox | None = None,
    limits: P2PLimits | None = None,
    identity: PeerIdentity | None = None,
) -> AsyncIterator[P2PNode]:
    async with trio.open_nursery() as nursery:
        running: P2PNode = await nursery.start(
            partial(serve, limits=limits),
            Config(),
            identity or PeerIdentity.generate(),
            inbox or Inbox(),
        )
        yield running
        nursery.cancel_scope.cancel()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (things settle at the other end)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


# -- raw py-libp2p peers -----------------------------------------------------------


def raw_host(security: str = "noise") -> Any:
    import multiaddr
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as x25519
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
    from libp2p.security.noise.transport import Transport as Noise
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
    from libp2p.stream_muxer.yamux.yamux import Yamux

    kp = create_new_key_pair()
    if security == "noise":
        sec_opt: Any = {NOISE: Noise(kp, noise_privkey=x25519().private_key)}
    else:
        sec_opt = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)}
    return new_host(
        key_pair=kp,
        sec_opt=sec_opt,
        muxer_opt={YAMUX: Yamux},
        listen_addrs=[multiaddr.Multiaddr(LOOPBACK)],
    )


@asynccontextmanager
async def running_raw_host(
    handler: Callable[[Any], Awaitable[None]] | None = None, security: str = "noise"
) -> AsyncIterator[Any]:
    import multiaddr
    from libp2p.custom_types import TProtocol

    host = raw_host(security)
    if handler is not None:
        host.set_stream_handler(TProtocol(DIDCOMM), handler)
    async with host.run([multiaddr.Multiaddr(LOOPBACK)]):
        yield host


async def raw_connect(host: Any, target: P2PNode) -> Any:
    from libp2p.peer.peerinfo import info_from_p2p_addr

    info = info_from_p2p_addr(__import__("multiaddr").Multiaddr(target.addrs[0]))
    await host.connect(info)
    return info.peer_id


async def raw_open(host: Any, peer_id: Any) -> Any:
    from libp2p.custom_types import TProtocol

    return await host.new_stream(peer_id, [TProtocol(DIDCOMM)])


async def refused(raw: Any, peer: Any) -> bool:
    """True if a stream we open now is reset (during or after negotiation)."""
    from libp2p.host.exceptions import StreamFailure

    try:
        stream = await raw_open(raw, peer)
        await stream.write(encode_frame(b"refused?"))
        await stream.close_write()
    except StreamFailure:
        return True  # the reset overtook multistream's echo
    return await outcome(stream) == "reset"


async def outcome(stream: Any, timeout: float = 5.0) -> str:
    """What a raw sender sees after its FIN: "closed" (committed) or "reset"."""
    from libp2p.network.stream.exceptions import StreamEOF, StreamError

    with trio.fail_after(timeout):
        try:
            while True:
                await stream.read(1024)
        except StreamEOF:
            return "reset" if getattr(stream.muxed_stream, "reset_received", False) else "closed"
        except StreamError:
            return "reset"


# -- two didcommd nodes --------------------------------------------------------------


async def test_two_nodes_both_ways_over_didcomm_v2() -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    async with node(inbox_a) as a, node(inbox_b) as b:
        assert await a.send(b.peer_id, b.addrs, b'{"n":1}', protocol=DIDCOMM) == DIDCOMM
        assert await b.send(a.peer_id, a.addrs, '{"n":2}', protocol=DIDCOMM) == DIDCOMM
        assert inbox_b.messages == [(b'{"n":1}', a.peer_id)]
        assert inbox_a.messages == [(b'{"n":2}', b.peer_id)]
        big = b"x" * (didcomm_v2.MAX_MESSAGE_BYTES)
        assert await a.send(b.peer_id, [], big, protocol=DIDCOMM) == DIDCOMM
        assert inbox_b.bodies()[-1] == big


async def test_two_nodes_both_ways_over_the_fast_path() -> None:
    inbox_a, inbox_b = Inbox(), Inbox()
    async with node(inbox_a) as a, node(inbox_b) as b:
        sent = [f'{{"n":{i}}}'.encode() for i in range(100)]

        async def send_all(part: list[bytes]) -> None:
            for m in part:
                assert await a.send(b.peer_id, b.addrs, m) == deliver.PROTOCOL_ID

        async with trio.open_nursery() as nursery:
            for k in range(10):
                nursery.start_soon(send_all, sent[k::10])
        assert sorted(inbox_b.bodies()) == sorted(sent)
        assert {p for _, p in inbox_b.messages} == {a.peer_id}
        assert a.stats()["sent"] == 100 and b.stats()["received"] == 100
        assert a.stats()["fast_sessions"] == 1
        assert await b.send(a.peer_id, [], b"back") == deliver.PROTOCOL_ID
        big = b"y" * didcomm_v2.MAX_MESSAGE_BYTES
        assert await b.send(a.peer_id, [], big) == deliver.PROTOCOL_ID
        assert inbox_a.bodies() == [b"back", big]
        # One connection each way is reused: a dialled b, b answered on it.
        assert a.connected_peers() == [b.peer_id]
        conns = a.host.get_network().get_connections(
            __import__("libp2p.peer.id").peer.id.ID.from_base58(b.peer_id)
        )
        assert len(conns) == 1


async def test_fast_path_falls_back_to_didcomm_v2() -> None:
    inbox = Inbox()
    async with node() as a, node(inbox, P2PLimits(fast_path=False)) as plain:
        assert await a.send(plain.peer_id, plain.addrs, b"one") == DIDCOMM
        assert await a.send(plain.peer_id, [], b"two") == DIDCOMM  # remembered
        assert inbox.bodies() == [b"one", b"two"]


async def test_streams_do_not_leak() -> None:
    from libp2p.peer.id import ID

    async with node() as a, node() as b:
        for i in range(30):
            await a.send(b.peer_id, b.addrs, b"m%d" % i, protocol=DIDCOMM)
        (conn,) = a.host.get_network().get_connections(ID.from_base58(b.peer_id))
        await eventually(lambda: len(conn.streams) == 0)
        await eventually(lambda: b._admission.open_streams == 0)


# -- interoperability with plain py-libp2p peers --------------------------------------------


async def test_raw_client_delivers_to_us() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        peer = await raw_connect(raw, ours)
        stream = await raw_open(raw, peer)
        await stream.write(encode_frame(b'{"hello":"world"}'))
        await stream.close_write()
        assert await outcome(stream) == "closed"
        assert inbox.messages == [(b'{"hello":"world"}', str(raw.get_id()))]


async def test_raw_client_sending_one_frame_per_character() -> None:
    """What the extension's JavaScript example does with a string."""
    inbox = Inbox()
    text = b'{"id":"1","type":"x"}'
    async with node(inbox) as ours, running_raw_host() as raw:
        stream = await raw_open(raw, await raw_connect(raw, ours))
        await stream.write(b"".join(encode_frame(bytes([c])) for c in text))
        await stream.close_write()
        assert await outcome(stream) == "closed"
        assert inbox.bodies() == [text]


async def test_we_deliver_to_a_raw_handler() -> None:
    from libp2p.io.exceptions import IncompleteReadError
    from libp2p.network.stream.exceptions import StreamEOF
    from libp2p.utils.varint import read_varint_prefixed_bytes

    received: list[bytes] = []

    async def handler(stream: Any) -> None:
        parts = []
        with contextlib.suppress(StreamEOF, IncompleteReadError):
            while True:
                parts.append(await read_varint_prefixed_bytes(stream))
        received.append(b"".join(parts))
        await stream.close()

    async with node() as ours, running_raw_host(handler) as raw:
        addrs = [str(a) for a in raw.get_addrs()]
        assert await ours.send(str(raw.get_id()), addrs, b"to raw 1") == DIDCOMM
        assert await ours.send(str(raw.get_id()), [], b"to raw 2") == DIDCOMM
        assert received == [b"to raw 1", b"to raw 2"]


async def test_a_receiver_that_never_closes_times_out() -> None:
    async def handler(stream: Any) -> None:
        await trio.sleep(math.inf)

    async with (
        node(limits=P2PLimits(delivery_timeout=0.5)) as ours,
        running_raw_host(handler) as raw,
    ):
        with pytest.raises(DeliveryError) as caught:
            await ours.send(str(raw.get_id()), [str(a) for a in raw.get_addrs()], b"m")
        assert caught.value.reason == TIMEOUT
        assert caught.value.maybe_delivered and caught.value.retryable


# -- hostile and broken input --------------------------------------------------------


async def test_oversize_frame_is_refused_before_its_body() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        stream = await raw_open(raw, await raw_connect(raw, ours))
        await stream.write(encode_uvarint(4 * 1024**3) + b"{")  # claims 4 GiB, sends 1 byte
        # No body is ever sent: a reset within the timeout can only mean the
        # prefix alone was refused (the read timeout is 30 s).
        assert await outcome(stream, timeout=5.0) == "reset"
        assert inbox.messages == []
        with pytest.raises(DeliveryError) as caught:
            await ours.send(str(raw.get_id()), [], b"x" * (didcomm_v2.MAX_MESSAGE_BYTES + 1))
        assert caught.value.reason == TOO_LARGE


async def test_slowloris_stream_times_out_and_others_are_served() -> None:
    inbox = Inbox()
    limits = P2PLimits(stream_read_timeout=0.5)
    async with node(inbox, limits) as ours, node() as other, running_raw_host() as raw:
        stream = await raw_open(raw, await raw_connect(raw, ours))
        await stream.write(encode_uvarint(100) + b"{")  # ... and nothing more
        started = trio.current_time()
        await other.send(ours.peer_id, ours.addrs, b"meanwhile", protocol=DIDCOMM)
        assert await outcome(stream, timeout=5.0) == "reset"
        # The configured 0.5 s, not the default 30 s, cut it.
        assert 0.4 < trio.current_time() - started < 10.0
        assert inbox.bodies() == [b"meanwhile"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 16,  # a length prefix that never ends
        encode_uvarint(10) + b"short",  # EOF inside a frame
        b"",  # nothing at all
    ],
)
async def test_garbage_is_reset_and_never_committed(garbage: bytes) -> None:
    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        stream = await raw_open(raw, await raw_connect(raw, ours))
        if garbage:
            await stream.write(garbage)
        await stream.close_write()
        assert await outcome(stream) == "reset"
        assert inbox.messages == []


async def test_reset_mid_message_is_not_committed() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        stream = await raw_open(raw, await raw_connect(raw, ours))
        await stream.write(b"".join(encode_frame(bytes([c])) for c in b'{"half":'))
        await eventually(lambda: ours._admission.open_streams == 1)  # it is reading
        await stream.reset()
        await eventually(lambda: ours._admission.open_streams == 0)
        assert inbox.messages == []


async def test_garbage_on_the_fast_path_resets_the_session() -> None:
    from libp2p.custom_types import TProtocol

    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        peer = await raw_connect(raw, ours)
        stream = await raw.new_stream(peer, [TProtocol(deliver.PROTOCOL_ID)])
        await stream.write(encode_frame(b"\x07not a message"))
        assert await outcome(stream) == "reset"
        assert inbox.messages == []


async def test_a_thousand_streams_at_once() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, running_raw_host() as raw:
        peer = await raw_connect(raw, ours)
        results: list[str] = []

        async def one(i: int) -> None:
            try:
                stream = await raw_open(raw, peer)
                await stream.write(encode_frame(b"m%d" % i))
                await stream.close_write()
                results.append(await outcome(stream, timeout=60.0))
            except Exception:
                results.append("failed")

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                for i in range(1000):
                    nursery.start_soon(one, i)
        committed = results.count("closed")
        # Everyone got an answer; nobody saw "committed" without a commit.
        assert len(results) == 1000
        assert committed == len(inbox.messages) > 0
        # (A handler gives its slot back after its close went out: the peer may
        # see the close first.)
        await eventually(lambda: ours._admission.open_streams == 0)
        assert ours._admission.buffered_bytes == 0
        # ... and the node still serves.
        async with node() as other:
            await other.send(ours.peer_id, ours.addrs, b"after the storm", protocol=DIDCOMM)
        assert inbox.bodies()[-1] == b"after the storm"


async def test_per_peer_stream_limit_resets_the_excess() -> None:
    inbox = Inbox()
    limits = P2PLimits(admission=AdmissionLimits(max_streams_per_peer=2))
    async with node(inbox, limits) as ours, running_raw_host() as raw:
        peer = await raw_connect(raw, ours)
        held = [await raw_open(raw, peer) for _ in range(2)]
        for s in held:
            await s.write(encode_uvarint(5))  # open, unfinished messages hold slots
        await eventually(lambda: ours._admission.open_streams == 2)
        assert await refused(raw, peer)
        for s in held:
            await s.write(b"hello")
            await s.close_write()
            assert await outcome(s) == "closed"
        assert sorted(inbox.bodies()) == [b"hello", b"hello"]


async def test_inbound_byte_budget() -> None:
    inbox = Inbox()
    limits = P2PLimits(admission=AdmissionLimits(max_buffered_bytes=1000))
    async with node(inbox, limits) as ours, running_raw_host() as raw:
        peer = await raw_connect(raw, ours)
        first = await raw_open(raw, peer)
        await first.write(encode_uvarint(900) + b"a" * 800)  # holds 800+ bytes, unfinished
        await eventually(lambda: ours._admission.buffered_bytes >= 800)
        second = await raw_open(raw, peer)
        await second.write(encode_frame(b"b" * 500))  # would go over 1000
        await second.close_write()
        assert await outcome(second) == "reset"
        await first.write(b"a" * 100)
        await first.close_write()
        assert await outcome(first) == "closed"
        await eventually(lambda: ours._admission.buffered_bytes == 0)
        async with node() as other:  # the budget is free again, fast path too
            await other.send(ours.peer_id, ours.addrs, b"c" * 900)
        assert inbox.bodies() == [b"a" * 900, b"c" * 900]
        await eventually(lambda: ours._admission.buffered_bytes == 0)
        assert ours.stats()["refused_reads"] == 1


async def test_rate_limit_answers_busy_on_the_fast_path() -> None:
    limits = P2PLimits(admission=AdmissionLimits(rate_per_second=0.001, burst=3))
    async with node(limits=limits) as ours, node() as other:
        for i in range(3):
            await other.send(ours.peer_id, ours.addrs, b"m%d" % i)
        with pytest.raises(DeliveryError) as caught:
            await other.send(ours.peer_id, [], b"one too many")
        assert caught.value.reason == BUSY and caught.value.retryable
        with pytest.raises(DeliveryError) as caught:
            await other.send(ours.peer_id, [], b"plain too", protocol=DIDCOMM)
        assert caught.value.reason == REJECTED


async def test_a_failed_commit_is_not_acknowledged() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, node() as other:
        inbox.fail = True
        for protocol in (DIDCOMM, None):
            with pytest.raises(DeliveryError) as caught:
                await other.send(ours.peer_id, ours.addrs, b"lost?", protocol=protocol)
            assert caught.value.reason == REJECTED
            assert not caught.value.maybe_delivered
        inbox.fail = False
        assert await other.send(ours.peer_id, [], b"kept") == deliver.PROTOCOL_ID
        assert await other.send(ours.peer_id, [], b"kept", protocol=DIDCOMM) == DIDCOMM
        assert inbox.bodies() == [b"kept", b"kept"]


async def test_a_stuck_commit_times_out_and_the_next_session_works() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, node(limits=P2PLimits(delivery_timeout=0.5)) as other:
        await other.send(ours.peer_id, ours.addrs, b"first")
        inbox.hold = trio.Event()
        with pytest.raises(DeliveryError) as caught:
            await other.send(ours.peer_id, [], b"stuck")
        assert caught.value.reason == TIMEOUT and caught.value.maybe_delivered
        inbox.hold.set()
        inbox.hold = None
        assert await other.send(ours.peer_id, [], b"after") == deliver.PROTOCOL_ID
        # "stuck" was committed late: the sender was right to say "maybe".
        assert inbox.bodies() == [b"first", b"stuck", b"after"]


async def test_idle_sessions_close_and_reopen() -> None:
    inbox = Inbox()
    receiver_limits = P2PLimits(receiver_idle_timeout=0.3)
    async with (
        node(inbox, receiver_limits) as ours,
        node(limits=P2PLimits(sender_idle_timeout=0.2)) as other,
    ):
        await other.send(ours.peer_id, ours.addrs, b"one")
        (session,) = other._sessions.values()
        await eventually(lambda: session.closed and other._sessions == {})
        await eventually(lambda: ours._admission.open_streams == 0)  # the receiver let go
        assert await other.send(ours.peer_id, [], b"two") == deliver.PROTOCOL_ID
        assert inbox.bodies() == [b"one", b"two"]


async def test_a_peer_without_didcomm_is_unsupported() -> None:
    async with node() as ours, running_raw_host() as raw:  # no handler at all
        with pytest.raises(DeliveryError) as caught:
            await ours.send(str(raw.get_id()), [str(a) for a in raw.get_addrs()], b"m")
        assert caught.value.reason == UNSUPPORTED and not caught.value.retryable
        with pytest.raises(DeliveryError) as caught:
            await ours.send(str(raw.get_id()), [], b"m", protocol=DIDCOMM)
        assert caught.value.reason == UNSUPPORTED


class FreezingProxy:
    """A TCP forwarder whose existing connections can be frozen: the bytes stop,
    the sockets stay open - a path that died without a FIN or an RST."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._generation = 0
        self._frozen_below = 0

    def freeze_existing(self) -> None:
        self._generation += 1
        self._frozen_below = self._generation

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1")
            )
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()

    async def _handle(self, client: trio.SocketStream) -> None:
        generation = self._generation
        upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)

        async def pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await src.receive_some(65536):
                    if generation < self._frozen_below:
                        await trio.sleep_forever()
                    await dst.send_all(data)

        async with client, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)


async def test_a_connection_that_went_silent_is_replaced() -> None:
    from libp2p.peer.id import ID

    inbox = Inbox()
    limits = P2PLimits(delivery_timeout=0.5, probe_timeout=0.5)
    async with node(inbox) as ours, node(limits=limits) as sender, trio.open_nursery() as nursery:
        port = int(ours.addrs[0].split("/tcp/")[1].split("/")[0])
        proxy = FreezingProxy(port)
        await nursery.start(proxy.serve)
        via_proxy = [f"/ip4/127.0.0.1/tcp/{proxy.port}/p2p/{ours.peer_id}"]
        await sender.send(ours.peer_id, via_proxy, b"one")
        (before,) = sender.host.get_network().get_connections(ID.from_base58(ours.peer_id))
        proxy.freeze_existing()
        with pytest.raises(DeliveryError) as caught:
            await sender.send(ours.peer_id, via_proxy, b"into the void")
        assert caught.value.reason == TIMEOUT
        # The next send pings first, gets nothing, drops the dead connection
        # and dials again (through the proxy, which lets new connections be).
        assert await sender.send(ours.peer_id, via_proxy, b"two") == deliver.PROTOCOL_ID
        assert before.is_closed
        assert inbox.bodies() == [b"one", b"two"]
        nursery.cancel_scope.cancel()


# -- security and identity -----------------------------------------------------------


async def test_noise_only_plaintext_dialer_cannot_connect() -> None:
    inbox = Inbox()
    async with node(inbox) as ours:
        async with running_raw_host(security="plaintext") as plaintext:
            with pytest.raises(Exception) as caught, trio.fail_after(15):
                await raw_connect(plaintext, ours)
            assert (
                "Swarm" in type(caught.value).__name__ or "Connect" in type(caught.value).__name__
            )
            assert plaintext.get_connected_peers() == []
        assert ours.connected_peers() == []
        # Control: the same dial with Noise works.
        async with running_raw_host(security="noise") as noise:
            await raw_connect(noise, ours)
            assert len(noise.get_connected_peers()) == 1


async def test_identity_survives_a_restart() -> None:
    stored: dict[str, bytes] = {}

    async def start() -> PeerIdentity:
        return await load_or_create_identity(
            lambda: stored.get("key"), lambda b: stored.update(key=b)
        )

    inbox = Inbox()
    async with node(identity=await start()) as first:
        peer_id = first.peer_id
    async with node(inbox, identity=await start()) as second, node() as sender:
        assert second.peer_id == peer_id
        assert all(a.endswith(f"/p2p/{peer_id}") for a in second.addrs)
        await sender.send(peer_id, second.addrs, b"same peer, new process")
    assert inbox.bodies() == [b"same peer, new process"]


async def test_connect_and_disconnect() -> None:
    async with node() as ours, node() as other:
        await other.connect(ours.peer_id, ours.addrs)
        assert other.connected_peers() == [ours.peer_id]
        await eventually(lambda: ours.connected_peers() == [other.peer_id])
        await other.disconnect(ours.peer_id)
        # py-libp2p removes the connection from the swarm when its close
        # completes, which can take a scheduling round after disconnect().
        await eventually(lambda: other.connected_peers() == [])
        await eventually(lambda: ours.connected_peers() == [])
        with pytest.raises(DeliveryError) as caught:
            await other.connect(other.peer_id)
        assert caught.value.reason == INVALID


async def test_every_address_is_tried_in_order() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, node() as sender:
        dead = f"/ip4/127.0.0.1/tcp/1/p2p/{ours.peer_id}"  # nothing listens on port 1
        await sender.send(ours.peer_id, [dead, *ours.addrs], b"second address")
        assert inbox.bodies() == [b"second address"]


async def test_the_receiver_restarts_and_we_reconnect() -> None:
    identity = PeerIdentity.generate()
    inbox = Inbox()
    async with node() as sender:
        for round_ in range(2):
            async with node(inbox, identity=identity) as receiver:
                for protocol in (None, DIDCOMM):
                    await sender.send(
                        receiver.peer_id, receiver.addrs, b"r%d" % round_, protocol=protocol
                    )
            # The receiver is gone; sending now fails cleanly, and fast.
            with trio.fail_after(15), pytest.raises(DeliveryError) as caught:
                await sender.send(identity.peer_id, [], b"nobody home")
            assert caught.value.reason in (UNREACHABLE, CONNECTION_LOST)
    assert inbox.bodies() == [b"r0", b"r0", b"r1", b"r1"]


# -- the caller's mistakes and the node's lifecycle ------------------------------------


async def test_bad_sends_are_typed_errors() -> None:
    async with node() as a, node() as b:
        cases: list[tuple[str, list[str], bytes, str]] = [
            ("not-a-peer-id", [], b"m", INVALID),
            (a.peer_id, [], b"m", INVALID),  # ourselves
            (b.peer_id, ["/not/a/multiaddr"], b"m", INVALID),
            (b.peer_id, [a.addrs[0]], b"m", INVALID),  # an address naming another peer
            (b.peer_id, [], b"", INVALID),
            (PeerIdentity.generate().peer_id, [], b"m", UNREACHABLE),  # no address known
            (PeerIdentity.generate().peer_id, ["/ip4/127.0.0.1/tcp/1"], b"m", UNREACHABLE),
        ]
        for peer, addrs, message, reason in cases:
            with pytest.raises(DeliveryError) as caught:
                await a.send(peer, addrs, message)
            assert caught.value.reason == reason, (peer, addrs)
        assert a._dial_locks == {} and a._session_locks == {}  # nothing left behind


async def test_bootstrap_peers_are_dialled_at_start() -> None:
    inbox = Inbox()
    async with node(inbox) as hub, trio.open_nursery() as nursery:
        joiner: P2PNode = await nursery.start(
            serve, Config(bootstrap=[hub.addrs[0]]), PeerIdentity.generate(), Inbox()
        )
        with trio.fail_after(10):
            while hub.peer_id not in joiner.connected_peers():
                await trio.sleep(0.05)
        # Connected by the bootstrap, so no address is needed to send.
        await joiner.send(hub.peer_id, [], b"hello hub")
        assert inbox.bodies() == [b"hello hub"]
        nursery.cancel_scope.cancel()


async def test_announce_replaces_listen_addresses() -> None:
    announce = "/ip4/203.0.113.7/tcp/4001"
    async with trio.open_nursery() as nursery:
        public: P2PNode = await nursery.start(
            serve, Config(announce=[announce]), PeerIdentity.generate(), Inbox()
        )
        assert public.addrs == [f"{announce}/p2p/{public.peer_id}"]
        nursery.cancel_scope.cancel()


async def test_wildcard_listen_announces_dialable_addresses() -> None:
    async with trio.open_nursery() as nursery:
        wild: P2PNode = await nursery.start(
            serve, Config(listen=["/ip4/0.0.0.0/tcp/0"]), PeerIdentity.generate(), Inbox()
        )
        assert wild.addrs and not any("/0.0.0.0/" in a for a in wild.addrs)
        endpoint = wild.service_endpoint()
        assert endpoint == {
            "uri": f"libp2p-peerId:{wild.peer_id}",
            "accept": ["didcomm/v2"],
            "multiAddrs": wild.addrs,
        }
        nursery.cancel_scope.cancel()


async def test_config_errors() -> None:
    for listen in (["/not/a/multiaddr"], ["/ip4/127.0.0.1/udp/0/quic-v1"]):
        with pytest.raises(P2PConfigError):
            await serve(Config(listen=listen), PeerIdentity.generate(), Inbox())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        in_use = f"/ip4/127.0.0.1/tcp/{taken.getsockname()[1]}"
        with pytest.raises(P2PConfigError, match="cannot listen"):
            await serve(Config(listen=[in_use]), PeerIdentity.generate(), Inbox())


async def test_a_node_that_only_sends() -> None:
    inbox = Inbox()
    async with node(inbox) as ours, trio.open_nursery() as nursery:
        quiet: P2PNode = await nursery.start(
            serve, Config(listen=[]), PeerIdentity.generate(), Inbox()
        )
        assert quiet.addrs == []
        await quiet.send(ours.peer_id, ours.addrs, b"from a node without a port")
        assert inbox.bodies() == [b"from a node without a port"]
        nursery.cancel_scope.cancel()


async def test_shutdown_while_commits_hang() -> None:
    """Stopping a receiver mid-commit: it stops at once, senders hear of it at once."""
    inbox = Inbox()
    inbox.hold = trio.Event()  # never set: every commit hangs
    outcomes: list[DeliveryError] = []
    async with node(limits=P2PLimits(delivery_timeout=30)) as sender:
        with trio.fail_after(10):
            async with trio.open_nursery() as senders, trio.open_nursery() as receiving:
                receiver: P2PNode = await receiving.start(
                    serve, Config(), PeerIdentity.generate(), inbox
                )

                async def try_send(protocol: str | None) -> None:
                    try:
                        await sender.send(receiver.peer_id, receiver.addrs, b"m", protocol=protocol)
                    except DeliveryError as exc:
                        outcomes.append(exc)

                senders.start_soon(try_send, None)
                senders.start_soon(try_send, DIDCOMM)
                await eventually(lambda: inbox.entered == 2)  # both wait in on_message
                receiving.cancel_scope.cancel()  # stop the receiver
        assert len(outcomes) == 2
        assert all(e.maybe_delivered and e.retryable for e in outcomes)
        assert inbox.messages == []


async def test_clean_shutdown() -> None:
    async with node() as b:
        async with trio.open_nursery() as nursery:
            a: P2PNode = await nursery.start(serve, Config(), PeerIdentity.generate(), Inbox())
            await a.send(b.peer_id, b.addrs, b"m")
            with trio.fail_after(5):
                nursery.cancel_scope.cancel()
        with pytest.raises(DeliveryError) as caught:
            await a.send(b.peer_id, b.addrs, b"m")
        assert caught.value.reason == SHUTTING_DOWN
        await eventually(lambda: b.connected_peers() == [])  # we told b we left
