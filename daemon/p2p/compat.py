"""The thin layer between this package and py-libp2p 0.8.1's stream API.

Everything here works around a py-libp2p behaviour that a stream protocol
cannot live with; each piece is small, self-contained and written so it could
be proposed upstream.  Nothing outside :mod:`daemon.p2p` should need it.

1. **Buffered frame reads** (:class:`StreamReader`).  py-libp2p's
   ``read_varint_prefixed_bytes_limited`` reads the length prefix one byte per
   ``read(1)`` call (one muxer round through locks per byte) and expects
   ``read()`` to return ``b""`` at end of stream, while ``NetStream.read``
   raises ``StreamEOF`` instead.  :class:`StreamReader` reads big chunks into
   a :class:`~daemon.p2p.framing.FrameDecoder` and turns EOF into ``None`` at a
   frame boundary and :class:`TruncatedFrameError` inside a frame.

2. **Reset is not EOF** (:func:`stream_was_reset`).  When a Yamux ``RST``
   arrives while a reader waits, py-libp2p drops the stream's bookkeeping
   before the reader wakes up, and the reader sees ``StreamEOF`` - exactly what
   a clean close looks like.  The same happens to every stream when the
   connection dies.  For us the difference is the whole point (a receiver
   closes cleanly only after committing a message), so after every EOF we look
   at the Yamux stream's ``reset_received`` flag and at the connection's
   shutdown event.

3. **One round trip for protocol selection** (:func:`select_protocol`).
   ``BasicHost.new_stream`` sends the multistream header, waits for the echo,
   then proposes: two round trips per stream.  We send header and proposal in
   one write (see :mod:`daemon.p2p.multistream`), and open the stream with
   ``Swarm.new_stream`` (which reuses the peer's connection) directly.

4. **No auto-dialling** (:func:`disable_auto_dialling`).  The swarm's
   ``AutoConnector`` dials peers from the peerstore whenever fewer than
   ``(low_watermark + high_watermark) / 2`` connections are open, whatever
   ``min_connections`` says; a daemon should dial whom it sends to, when it
   sends (and tests must not see surprise connections).

5. **Closing connections on shutdown** (:func:`close_host`).  Leaving
   ``BasicHost.run()`` cancels the swarm without closing its connections, so
   peers keep a dead connection until TCP notices; ``SwarmConn.close()`` may
   skip the muxer (see :func:`close_host`); ``Swarm.close()`` closes them one
   by one, with two 0.1 s sleeps each.  We close each muxer, concurrently,
   under a deadline, then let ``close()`` do the rest.

6. **Window updates in batches** (:func:`tune_yamux`).  py-libp2p's Yamux
   sends a ``WINDOW_UPDATE`` after *every* read by default
   (``PY_YAMUX_RELEASE_ON_READ=1``): one more encrypted frame per read, about
   15% of the CPU a small message costs.  Off, credit is returned in
   half-window batches, which is what go-yamux does.  py-libp2p reads the knob
   from the environment at call time; we set it unless the operator did.  Its
   "partial slack" branch still credited every read below the batch: that
   credit now waits for the batch too (a 64 KB didcomm/v2 message sent ~15
   WINDOW_UPDATE frames; now none: 5.2 -> 2.9 ms of CPU for the two nodes).

7. **Dialling every address** (:func:`no_dial_retries`, and
   ``P2PNode._dial``).  ``Swarm.dial_peer`` dials one address per transport
   class - the first TCP address in the peerstore, stale or not - retries it
   three times with backoff, then refuses the peer for 60 s.  A peer that came
   back on a new port, or has a LAN and a public address, is then out of
   reach.  We dial each candidate ourselves (``Swarm.dial_addr``), in order,
   once.

8. **Dead connections** (:func:`ping`, :func:`close_peer`,
   :func:`has_live_connection`).  Nothing in py-libp2p notices a connection
   that died in silence (its Yamux pings ignore a missing pong), so a host
   keeps reusing it until TCP gives up, many minutes later.  The node pings a
   peer that just timed out and drops the connection if nothing comes back.

9. **Inbound handlers outlive their connections**
   (:func:`end_inbound_handlers_with_their_connections`).  After upgrading an
   inbound connection, ``Swarm._do_handle_inbound_connection`` waits for the
   *swarm* to finish (the listener closes the socket when its handler
   returns), and only then gives back its slot of the inbound connection cap
   (``max_connections``, 300).  So every connection ever accepted keeps a task
   and its buffers until the daemon stops, and after 300 of them - a peer
   reconnecting in a loop is enough - the daemon drops every new inbound
   connection.  We end each handler when its own connection has closed.

10. **Buffered TCP reads** (:func:`buffer_tcp_reads`).  Noise reads each
    transport message as ``read(2)`` for its length, then ``read(n)``: two
    ``recv`` system calls (and often two trips through epoll) per message, and
    more when the sender wrote several at once.  System calls are what a small
    message costs most here.  We read ahead up to :data:`TCP_READ_AHEAD_BYTES`
    per ``recv`` and serve ``read(n)`` from that buffer.  ``DIDCOMMD_P2P_READ_AHEAD=0``
    in the environment leaves py-libp2p's reads alone (``bench/p2p.py`` measures
    bare py-libp2p that way).

11. **End of stream in the Kademlia DHT** (:func:`dht_reads_end_cleanly`).
    ``kad_dht`` reads each request and response with
    ``libp2p.utils.varint.read_varint_prefixed_bytes_limited``, which expects
    ``read(1)`` to return ``b""`` at end of stream (and then raises
    ``IncompleteReadError(received_bytes=0)``, which the DHT's handler treats
    as the clean end of a request stream).  ``NetStream.read`` raises
    ``StreamEOF`` instead, so every time a requester closes its stream after
    the answer (after each ``PUT_VALUE``, ``GET_VALUE``, ``FIND_NODE``) the
    handler logs "Failed to read DHT message from stream" and *resets* the
    stream, and a requester whose peer closes after answering sees an error
    instead of the end.  We hand those reads a view of the stream whose
    ``read`` returns ``b""`` at a clean EOF (a reset still raises).  Upstream
    fix: the same in ``read_varint_prefixed_bytes_limited``, or ``NetStream``
    honouring the ``Reader`` contract.

12. **Locks that cost a scheduling round when free** (:func:`eager_locks`).
    trio makes every lock acquisition a trip through the run loop, free lock
    or not, and py-libp2p takes one per layer per frame (TCP stream, muxer,
    stream window, stream state, read-write lock): ~30 for a small message
    and its acknowledgement.  We wrap those locks so that a free one is taken
    at once (still a cancellation point; a contended one waits as before),
    and drop the extra checkpoint and per-frame debug formatting of
    ``Yamux._write_frame``.  Scheduler rounds per message between two daemons:
    19 -> 9 on the sender, 23 -> 7 on the receiver.

13. **Bytes sent before a reset** (:func:`_sent_before_reset`): a reset Yamux
    stream keeps its receive buffer, but the next read reports the reset
    first; a peer's ``na`` to our pipelined proposal, followed by its reset,
    read as a refusal.  :class:`StreamReader` takes those bytes first.

One more fix is plain configuration, in :func:`daemon.p2p.host.serve`: one
connection per peer (``max_connections_per_peer=1``), which also ends the
swarm's happy-eyeballs wait as soon as a dial succeeds (else every dial takes
250 ms) - should anything still call ``dial_peer``.

``import libp2p`` takes a second or two, and ``didcommd --help`` or the
envelope CLI must not pay for it: this module, like the whole package,
imports libp2p inside its functions.  After the first call such an import is
a dictionary lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import trio

from ..locks import EagerLock, EagerSemaphore
from . import multistream
from .errors import FrameError, OverBudgetError, StreamResetError, TruncatedFrameError
from .framing import FrameDecoder

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream

#: Bytes asked for per read(); Yamux's initial window, so one read can drain it.
READ_CHUNK_BYTES: Final = 256 * 1024
#: Bytes a peer may send on a stream it should keep silent on (didcomm/v2
#: receivers), before we stop reading them.
MAX_UNEXPECTED_BYTES: Final = 4096

#: Longest we wait for a reset or close frame to go out (a shielded write to a
#: peer that stopped reading must not hang a shutdown).
CLEANUP_TIMEOUT: Final = 2.0
#: Longest a node's shutdown waits for its connections to close.
SHUTDOWN_TIMEOUT: Final = 5.0


@functools.cache
def io_errors() -> tuple[type[BaseException], ...]:
    """Exceptions py-libp2p (and trio under it) raise when a stream or a
    connection breaks; callers map them to their own typed errors."""
    from libp2p.exceptions import BaseLibp2pError

    return (BaseLibp2pError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def connection_closing(stream: INetStream) -> bool:
    """True if the connection under ``stream`` is shutting down or closed."""
    conn: Any = getattr(stream, "muxed_conn", None)
    shutting_down = getattr(conn, "event_shutting_down", None)
    if shutting_down is not None and shutting_down.is_set():
        return True
    return bool(getattr(conn, "is_closed", False))


def _sent_before_reset(stream: INetStream) -> bytes:
    """What a peer sent on ``stream`` before resetting it, once (fix 13).

    py-libp2p keeps a reset Yamux stream's receive buffer (its bookkeeping is
    dropped only once the buffer is drained) but reports the reset on the next
    read, ahead of those bytes.  A peer without our protocol answers our
    pipelined proposal with ``na`` and then resets the stream (it reads our
    frame as its next proposal): that ``na`` must be read, or the peer looks
    like a receiver that refused the message.  Empty for other muxers, and
    once drained.  Upstream fix: hand out buffered bytes before the reset.
    """
    muxed = getattr(stream, "muxed_stream", None)
    conn = getattr(muxed, "conn", None)
    buffers = getattr(conn, "stream_buffers", None)
    if not isinstance(buffers, dict) or not getattr(muxed, "reset_received", False):
        return b""
    buffer = buffers.get(getattr(muxed, "stream_id", None))
    if not isinstance(buffer, bytearray) or not buffer:
        return b""
    data = bytes(buffer)
    buffer.clear()
    return data


def stream_was_reset(stream: INetStream) -> bool:
    """True if ``stream``'s EOF was really a reset or a dead connection.

    A dead connection counts as a reset even after the peer's FIN: py-libp2p
    drops a stream's unread buffered bytes when its connection closes, so
    what we read may not be all that was sent.
    """
    muxed: Any = getattr(stream, "muxed_stream", None)
    return bool(getattr(muxed, "reset_received", False)) or connection_closing(stream)


def remote_peer_id(stream: INetStream) -> str:
    """Base58 peer id of the other end of ``stream`` (authenticated by Noise)."""
    return str(stream.muxed_conn.peer_id)


class ByteBudget(Protocol):
    """Where a reader accounts the bytes it holds (:class:`~.admission.Admission`)."""

    def reserve_bytes(self, count: int) -> bool: ...
    def release_bytes(self, count: int) -> None: ...


class StreamReader:
    """Buffered reads of frames and multistream messages from a libp2p stream.

    With a ``budget``, every byte read is reserved from it first (raising
    :class:`OverBudgetError` when it is spent) and stays reserved until the
    caller releases it - :meth:`release` once a frame's message is committed,
    :meth:`release_all` when done with the stream.
    """

    def __init__(
        self, stream: INetStream, max_frame_bytes: int, *, budget: ByteBudget | None = None
    ) -> None:
        self.stream = stream
        self.max_frame_bytes = max_frame_bytes
        self._decoder = FrameDecoder(max_frame_bytes)
        self._budget = budget
        self.reserved = 0
        self.eof = False

    @property
    def last_wire_bytes(self) -> int:
        """Bytes (prefix included) of the frame :meth:`read_frame` last returned."""
        return self._decoder.last_wire_bytes

    def release(self, count: int) -> None:
        """Give ``count`` reserved bytes back to the budget."""
        count = min(count, self.reserved)
        if self._budget is not None and count:
            self._budget.release_bytes(count)
        self.reserved -= count

    def release_all(self) -> None:
        """Give every reserved byte back (the stream is done with)."""
        self.release(self.reserved)

    async def _fill(self) -> bool:
        """Read one chunk; False at a clean EOF.  Raises StreamResetError."""
        from libp2p.network.stream.exceptions import StreamEOF

        if self.eof:
            return False
        try:
            data = await self.stream.read(READ_CHUNK_BYTES)
        except StreamEOF:
            if stream_was_reset(self.stream):
                raise StreamResetError("the stream was reset") from None
            self.eof = True
            return False
        except io_errors() as exc:
            data = _sent_before_reset(self.stream)
            if not data:
                raise StreamResetError(f"the stream broke: {type(exc).__name__}") from None
        if not data:
            if stream_was_reset(self.stream):
                raise StreamResetError("the stream was reset")
            self.eof = True
            return False
        if self._budget is not None:
            if not self._budget.reserve_bytes(len(data)):
                raise OverBudgetError("the node's inbound byte budget is spent")
            self.reserved += len(data)
        self._decoder.feed(data)
        return True

    async def read_frame(
        self,
        max_bytes: int | None = None,
        *,
        idle_timeout: float = math.inf,
        frame_timeout: float = math.inf,
    ) -> bytes | None:
        """The next frame body, or ``None`` at a clean EOF between frames.

        ``idle_timeout`` bounds the wait for a frame to start, ``frame_timeout``
        the time from its first byte to its last (slowloris); both raise
        ``trio.TooSlowError``.  Raises FrameTooLargeError before reading the
        body of a frame over ``max_bytes``, TruncatedFrameError at EOF inside a
        frame, StreamResetError on a reset.
        """
        decoder = self._decoder
        decoder.max_frame_bytes = self.max_frame_bytes if max_bytes is None else max_bytes
        frame = decoder.next_frame()
        if frame is not None:
            return frame
        if decoder.at_boundary:
            with trio.fail_after(idle_timeout):
                if not await self._fill():
                    return None
        with trio.fail_after(frame_timeout):
            while (frame := decoder.next_frame()) is None:
                if not await self._fill():
                    if decoder.at_boundary:
                        return None
                    raise TruncatedFrameError("the stream ended inside a frame")
        return frame

    async def read_multistream(self) -> str:
        """The next multistream-select message (without its newline)."""
        body = await self.read_frame(multistream.MAX_MESSAGE_BYTES)
        if body is None:
            raise StreamResetError("the stream ended during protocol selection")
        return multistream.decode_message(body)

    @property
    def at_boundary(self) -> bool:
        """True when no partial frame is buffered."""
        return self._decoder.at_boundary

    async def expect_eof(self) -> None:
        """Wait for the other side to close; ignore (bounded) stray bytes."""
        ignored = 0
        while await self._fill():
            ignored += len(self._decoder.take_buffered())
            if ignored > MAX_UNEXPECTED_BYTES:
                raise FrameError("the peer sent data on a one-way stream")


async def open_stream(host: IHost, peer_id: str) -> INetStream:
    """A new, not yet negotiated stream on a (reused) connection to ``peer_id``."""
    from libp2p.peer.id import ID

    return await host.get_network().new_stream(ID.from_base58(peer_id))


async def read_selection(reader: StreamReader, protocol_id: str) -> bool:
    """Read the listener's header and its answer to one proposal.

    Returns True if ``protocol_id`` was accepted, False on ``na``; raises
    FrameError on anything else.
    """
    header = await reader.read_multistream()
    if header != multistream.PROTOCOL_ID:
        raise FrameError("the peer does not speak multistream-select 1.0")
    return await read_answer(reader, protocol_id)


async def read_answer(reader: StreamReader, protocol_id: str) -> bool:
    """Read the answer to a proposal: True if echoed, False on ``na``."""
    answer = await reader.read_multistream()
    if answer == protocol_id:
        return True
    if answer == multistream.NOT_AVAILABLE:
        return False
    raise FrameError("the peer answered a protocol proposal with something else")


async def select_protocol(
    stream: INetStream, reader: StreamReader, protocol_ids: Sequence[str]
) -> str | None:
    """Negotiate the first of ``protocol_ids`` the listener accepts, or None.

    Header and first proposal go out in one write; each further proposal costs
    one more round trip (only when the first is refused).
    """
    if not protocol_ids:
        raise ValueError("no protocol to propose")
    await stream.write(multistream.propose(protocol_ids[0]))
    if await read_selection(reader, protocol_ids[0]):
        return protocol_ids[0]
    for protocol_id in protocol_ids[1:]:
        await stream.write(multistream.encode_message(protocol_id))
        if await read_answer(reader, protocol_id):
            return protocol_id
    return None


async def close_write(stream: INetStream) -> None:
    """Half-close ``stream`` (FIN): ``NetStream`` has it, the ``INetStream`` ABC not."""
    await stream.close_write()  # type: ignore[attr-defined]


#: Level at which py-libp2p's own log records reach the daemon's logs.
LIBP2P_LOG_LEVEL = logging.WARNING


def route_logging() -> None:
    """Send py-libp2p's warnings through the daemon's logging again.

    Importing ``libp2p`` runs its ``setup_logging``, which (unless
    ``LIBP2P_DEBUG`` is set) clears the ``libp2p`` logger's handlers and sets
    ``propagate = False``: its warnings would vanish, and since the daemon
    imports libp2p after configuring logging, nothing of it would reach
    journald.  Upstream fix: leave handlers and propagation to the application.
    """
    if os.environ.get("LIBP2P_DEBUG"):
        return  # the user asked for libp2p's own debug logging
    root = logging.getLogger("libp2p")
    root.handlers.clear()
    root.propagate = True
    root.setLevel(LIBP2P_LOG_LEVEL)


#: Bytes one ``recv`` on a libp2p TCP connection may read ahead (Noise's
#: largest message is 64 KiB).
TCP_READ_AHEAD_BYTES: Final = 64 * 1024


@functools.cache
def buffer_tcp_reads() -> None:
    """Make ``TrioTCPStream.read(n)`` serve from a read-ahead buffer (fix 10).

    Same contract as the original: at most ``n`` bytes (any amount for
    ``None``), ``b""`` at EOF or once closed locally, ``ConnectionClosedError``
    when the peer reset the connection.  Upstream fix: the same, in
    ``TrioTCPStream``, or a buffered reader under the Noise session.
    """
    if os.environ.get("DIDCOMMD_P2P_READ_AHEAD", "1") == "0":
        return
    from libp2p.io.exceptions import ConnectionClosedError
    from libp2p.io.trio import TrioTCPStream

    async def read(self: Any, n: int | None = None) -> bytes:
        async with self.read_lock:
            if n == 0:
                return b""
            buffer: bytes = getattr(self, "_read_ahead", b"")
            pos: int = getattr(self, "_read_pos", 0)
            if pos >= len(buffer):
                try:
                    buffer = await self.stream.receive_some(max(n or 0, TCP_READ_AHEAD_BYTES))
                except trio.BrokenResourceError as error:
                    raise ConnectionClosedError(
                        f"TCP connection reset by remote peer: {error}", transport="tcp"
                    ) from error
                except trio.ClosedResourceError:
                    return b""
                pos = 0
                if n is None or n >= len(buffer):
                    self._read_ahead, self._read_pos = b"", 0
                    return buffer
            end = len(buffer) if n is None else min(len(buffer), pos + n)
            self._read_ahead, self._read_pos = buffer, end
            return buffer[pos:end]

    TrioTCPStream.read = read


#: The py-libp2p locks on the path of every frame, by class: the attributes that
#: hold a ``trio.Lock`` (or the ``trio.Semaphore`` of a read-write lock).
_EAGER_LOCKS: Final = (
    ("libp2p.io.trio", "TrioTCPStream", ("read_lock", "write_lock")),
    ("libp2p.network.stream.net_stream", "NetStream", ("_state_lock",)),
    ("libp2p.stream_muxer.yamux.yamux", "YamuxStream", ("window_lock", "close_lock")),
    ("libp2p.stream_muxer.yamux.yamux", "Yamux", ("streams_lock", "_write_lock")),
    ("libp2p.stream_muxer.rw_lock", "ReadWriteLock", ("_readers_lock", "_writer_lock")),
)


@functools.cache
def eager_locks() -> None:
    """Make py-libp2p's per-frame locks skip the scheduling round when free (fix 12).

    A small message passes about 30 lock acquisitions on its way through
    TCP, Noise, Yamux and the stream and back as an acknowledgement (counted:
    the TCP stream's read and write locks, the muxer's stream table and write
    lock, the stream's window, state and read-write locks), and trio makes each
    one a trip through the run loop even when the lock is free: ~32 scheduler
    rounds per message and its acknowledgement (8 after this fix, with
    ``bench/p2p.py``'s two nodes run in one process).  Each lock is wrapped in a
    :class:`~daemon.locks.EagerLock` (or :class:`~daemon.locks.EagerSemaphore`)
    as its object is made: a free lock is taken at once, a contended one is
    waited for as before, and every acquisition is still a cancellation point.
    ``Yamux._write_frame`` loses its closing checkpoint (the socket write under
    it has just been one) and its per-frame debug line, formatted even when
    debug logging is off.  Upstream fix: the same in those classes (or fewer
    locks), and a debug line only when debug logging is on.
    """
    import importlib

    from libp2p.stream_muxer.yamux.yamux import Yamux

    for module_name, class_name, attributes in _EAGER_LOCKS:
        cls = getattr(importlib.import_module(module_name), class_name)
        cls.__init__ = _with_eager_locks(cls.__init__, attributes)

    async def write_frame(self: Any, data: bytes) -> None:
        # The original also formats a debug line per frame (even with debug
        # logging off) and ends with a checkpoint, though the socket write
        # under it has just been one.
        async with self._write_lock:
            await self.secured_conn.write(data)

    Yamux._write_frame = write_frame


def _with_eager_locks(init: Callable[..., None], attributes: tuple[str, ...]) -> Callable[..., None]:
    @functools.wraps(init)
    def eager_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for attribute in attributes:
            lock = getattr(self, attribute)
            if isinstance(lock, trio.Lock):
                setattr(self, attribute, EagerLock(lock))
            elif isinstance(lock, trio.Semaphore):
                setattr(self, attribute, EagerSemaphore(lock))

    return eager_init


@functools.cache
def tune_yamux() -> None:
    """Return Yamux receive credit in half-window batches (go-yamux's way, fix 6).

    A read that leaves less than the batch outstanding only adds to the
    pending credit; py-libp2p's own method sends it once the batch is reached.
    Upstream fix: no "partial slack" credit when release-on-read is off.
    """
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    if os.environ["PY_YAMUX_RELEASE_ON_READ"].upper() not in ("0", "FALSE", "NO"):
        return  # the operator asked for credit on every read
    from libp2p.stream_muxer.yamux.yamux import YamuxStream

    original = YamuxStream._auto_tune_and_send_window_update

    async def batched_window_update(self: Any, *, bytes_read: int = 0) -> None:
        if bytes_read > 0:
            threshold = self._grow_threshold()
            buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
            outstanding = self.target_recv_window - (self.recv_window + buffered)
            if outstanding < threshold and self._pending_recv_release + bytes_read < threshold:
                self._pending_recv_release += bytes_read
                return
        await original(self, bytes_read=bytes_read)

    YamuxStream._auto_tune_and_send_window_update = batched_window_update


def no_dial_retries(host: IHost) -> None:
    """Dial each address once: the swarm's own retries (3, with backoff) only
    delay trying the next address, and the daemon's outbox retries anyway."""
    from libp2p.network.config import RetryConfig

    network: Any = host.get_network()
    network.retry_config = RetryConfig(max_retries=0)


class _Upgraded:
    """The muxed connection an inbound handler upgraded, once it has."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.ready = trio.Event()


#: Each inbound connection is handled in a task of its own; this is that
#: task's :class:`_Upgraded`.
_upgraded_here: contextvars.ContextVar[_Upgraded | None] = contextvars.ContextVar(
    "didcommd_upgraded_here", default=None
)


def end_inbound_handlers_with_their_connections(host: IHost) -> None:
    """Let each inbound connection's handler end when that connection closes
    (before the host runs; see item 9 above)."""
    swarm: Any = host.get_network()
    upgrade = swarm.upgrade_inbound_raw_conn
    handle = swarm._do_handle_inbound_connection

    async def upgrade_and_note(raw_conn: Any, maddr: Any) -> Any:
        muxed = await upgrade(raw_conn, maddr)
        upgraded = _upgraded_here.get()
        if upgraded is not None:
            upgraded.conn = muxed
            upgraded.ready.set()
        return muxed

    async def handle_until_closed(read_write_closer: Any, maddr: Any, failure_event: Any) -> None:
        upgraded = _Upgraded()
        _upgraded_here.set(upgraded)  # this task's context only
        async with trio.open_nursery() as nursery:

            async def end_with_the_connection() -> None:
                await upgraded.ready.wait()
                closed = getattr(upgraded.conn, "event_closed", None)
                if closed is None:
                    return  # a muxer we do not know: py-libp2p's behaviour
                await closed.wait()
                # py-libp2p's handler now sits in its "wait for the swarm"
                # barrier; cancelling it there is what ending it early means.
                nursery.cancel_scope.cancel()

            nursery.start_soon(end_with_the_connection)
            await handle(read_write_closer, maddr, failure_event)
            nursery.cancel_scope.cancel()  # the upgrade failed: nothing to wait for

    # Instance attributes shadow the methods for the listener's calls.
    swarm.upgrade_inbound_raw_conn = upgrade_and_note
    swarm._do_handle_inbound_connection = handle_until_closed


def disable_auto_dialling(host: IHost) -> None:
    """Turn the swarm's AutoConnector into a no-op (before the host runs)."""
    connector: Any = getattr(host.get_network(), "auto_connector", None)
    if connector is not None:

        async def no_auto_dialling() -> None:
            return None

        # An instance attribute shadows the method for both of its callers
        # (the periodic task and the on-disconnect hook).
        connector.maybe_connect = no_auto_dialling


def has_live_connection(host: IHost, peer_id: Any) -> bool:
    """True if ``host`` has a connection to ``peer_id`` that is not closing."""
    for conn in host.get_network().get_connections(peer_id):
        muxed: Any = getattr(conn, "muxed_conn", None)
        closing = getattr(muxed, "event_shutting_down", None)
        if not conn.is_closed and not (closing is not None and closing.is_set()):
            return True
    return False


async def _close_connection(conn: Any) -> None:
    # The muxer first: SwarmConn.close() returns early once its "closed" event
    # is set, which the swarm's own teardown does before it gets round to
    # closing the muxer - and then nobody tells the peer.
    muxed = getattr(conn, "muxed_conn", None)
    for close in (getattr(muxed, "close", None), conn.close):
        if close is not None:
            # An exception means it was already broken: nothing to close; a
            # write stuck on a dead peer gives up after CLEANUP_TIMEOUT.
            with trio.move_on_after(CLEANUP_TIMEOUT), contextlib.suppress(Exception):
                await close()


async def close_host(host: IHost, timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Close every connection of ``host`` concurrently, then the host itself."""
    network: Any = host.get_network()
    with trio.CancelScope(shield=True), trio.move_on_after(timeout):
        async with trio.open_nursery() as nursery:
            for conns in list(network.connections.values()):
                for conn in list(conns):
                    nursery.start_soon(_close_connection, conn)
        await host.close()


async def close_peer(host: IHost, peer_id: str, timeout: float = 2 * CLEANUP_TIMEOUT) -> None:
    """Close our connections to ``peer_id`` (e.g. one that stopped answering)."""
    from libp2p.peer.id import ID

    network: Any = host.get_network()
    with trio.CancelScope(shield=True), trio.move_on_after(timeout):
        async with trio.open_nursery() as nursery:
            for conn in list(network.get_connections(ID.from_base58(peer_id))):
                nursery.start_soon(_close_connection, conn)


async def ping(host: IHost, peer_id: str, timeout: float) -> bool:
    """One libp2p ping round trip on the existing connection; False if none came."""
    from libp2p.host.ping import ID as PING_ID
    from libp2p.host.ping import perform_ping_roundtrip
    from libp2p.peer.id import ID

    stream = None
    try:
        with trio.fail_after(timeout):
            stream = await host.new_stream(ID.from_base58(peer_id), [PING_ID])
            await perform_ping_roundtrip(stream)
    except (trio.TooSlowError, ValueError):  # no pong in time, or a wrong one
        return False
    except io_errors():
        return False
    finally:
        if stream is not None:
            await close_quietly(stream)
    return True


async def reset_quietly(stream: INetStream) -> None:
    """Reset ``stream``, ignoring errors (it may already be dead)."""
    with (
        trio.CancelScope(shield=True),
        trio.move_on_after(CLEANUP_TIMEOUT),
        contextlib.suppress(*io_errors()),
    ):
        await stream.reset()


async def close_quietly(stream: INetStream) -> None:
    """Close ``stream`` (FIN), ignoring errors (it may already be dead).

    Also the way to release py-libp2p's per-stream bookkeeping: a stream that
    saw EOF after ``close_write()`` is never removed from the connection (nor
    its resource-manager slot released) until ``close()`` or ``reset()``.
    """
    with (
        trio.CancelScope(shield=True),
        trio.move_on_after(CLEANUP_TIMEOUT),
        contextlib.suppress(*io_errors()),
    ):
        await stream.close()


class _EOFIsEmptyRead:
    """A stream whose ``read`` returns ``b""`` at a clean end of stream (fix 11)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def read(self, n: int | None = None) -> bytes:
        from libp2p.network.stream.exceptions import StreamEOF

        try:
            data: bytes = await self._stream.read(n)
        except StreamEOF:
            if stream_was_reset(self._stream):
                raise StreamResetError("the stream was reset") from None
            return b""
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


#: The py-libp2p modules whose DHT reads go through :func:`dht_reads_end_cleanly`.
_DHT_MODULES: Final = (
    "libp2p.kad_dht.kad_dht",
    "libp2p.kad_dht.peer_routing",
    "libp2p.kad_dht.provider_store",
    "libp2p.kad_dht.value_store",
)


@functools.cache
def dht_reads_end_cleanly() -> None:
    """Give the Kademlia DHT's length-prefixed reads an EOF they understand (fix 11)."""
    import importlib

    from libp2p.utils.varint import read_varint_prefixed_bytes_limited as original

    async def read_limited(reader: Any, max_length: int) -> bytes:
        return await original(_EOFIsEmptyRead(reader), max_length)

    for name in _DHT_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "read_varint_prefixed_bytes_limited", None) is original:
            module.read_varint_prefixed_bytes_limited = read_limited  # type: ignore[attr-defined]
