"""``/didcommd/deliver/1.0.0``: pipelined, acknowledged delivery between daemons.

Theory of operation
-------------------
``didcomm/v2`` pays for a stream per message and learns the outcome only from
the receiver's close.  Two didcommd daemons can do better: the sender keeps
one long-lived stream per peer (a *session*) and writes numbered messages on
it without waiting; the receiver commits each one and answers with an
acknowledgement naming its number.  Several messages are in flight at once,
which is what makes it fast; the acknowledgement, as on ``didcomm/v2``, is
sent only after ``on_message`` returned, i.e. after the durable commit.

Wire format: varint length-prefixed frames (:mod:`daemon.p2p.framing`) whose
bodies are::

    sender   -> receiver   MESSAGE  0x00 || uvarint(seq) || packed message
    receiver -> sender     ACK      0x01 || uvarint(seq) || status (1 byte)

``seq`` counts from 0 per session; ``status`` is one of :data:`COMMITTED`,
:data:`REJECTED` (on_message raised), :data:`BUSY` (the peer's message rate
limit).  Acknowledgements come in commit order, not in ``seq`` order.

Negotiation: a sender proposes this protocol first and ``didcomm/v2`` second
on the same stream; a peer that only speaks the extension answers ``na`` then
accepts ``didcomm/v2``, and that stream carries the message the plain way
(:mod:`daemon.p2p.host` remembers the peer for a while and goes straight to
``didcomm/v2`` next time).

Limits: a session holds one inbound stream slot; each message spends a token
and its bytes count against the node's inbound byte budget until committed
(:mod:`daemon.p2p.admission`); at most :data:`MAX_IN_FLIGHT` commits run per
session, after which the receiver stops reading (the muxer's flow control then
stops the sender); a frame must arrive within :data:`FRAME_READ_TIMEOUT` of its
first byte, and a session idle for :data:`RECEIVER_IDLE_TIMEOUT` is closed.
Senders close idle sessions after :data:`SENDER_IDLE_TIMEOUT`, shorter than
the receiver's so the receiver's timeout is only a backstop.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

import structlog
import trio

from ..locks import EagerLock, EagerSemaphore, acquire_now
from . import compat
from .admission import Admission
from .didcomm_v2 import DELIVERY_TIMEOUT, MAX_MESSAGE_BYTES, OnMessage
from .errors import (
    BUSY,
    CONNECTION_LOST,
    REJECTED,
    TIMEOUT,
    DeliveryError,
    FrameError,
    MalformedFrameError,
    OverBudgetError,
    StreamResetError,
)
from .framing import encode_frame, encode_uvarint

if TYPE_CHECKING:
    from libp2p.abc import INetStream

PROTOCOL_ID: Final = "/didcommd/deliver/1.0.0"

KIND_MESSAGE: Final = 0x00
KIND_ACK: Final = 0x01

COMMITTED: Final = 0
REJECTED_STATUS: Final = 1
BUSY_STATUS: Final = 2
_STATUS_REASONS: Final = {REJECTED_STATUS: REJECTED, BUSY_STATUS: BUSY}

#: Bytes a MESSAGE frame adds to the packed message: kind + a 9-byte seq.
MESSAGE_OVERHEAD_BYTES: Final = 1 + 9
#: Largest ACK frame body: kind + a 9-byte seq + status.
MAX_ACK_BYTES: Final = 1 + 9 + 1
#: Messages a sender has unacknowledged on one session, and commits a
#: receiver runs at once for one session.
MAX_IN_FLIGHT: Final = 64
#: Seconds from a frame's first byte to its last (slowloris on a session).
FRAME_READ_TIMEOUT: Final = 30.0
#: Seconds a sender keeps an idle session open.
SENDER_IDLE_TIMEOUT: Final = 60.0
#: Seconds a receiver keeps a session with no incoming frame open.
RECEIVER_IDLE_TIMEOUT: Final = 120.0

log = structlog.get_logger("didcommd.p2p")


# -- wire format (pure) ------------------------------------------------------------


def encode_message(seq: int, message: bytes) -> bytes:
    """A MESSAGE frame body."""
    return bytes([KIND_MESSAGE]) + encode_uvarint(seq) + message


def encode_ack(seq: int, status: int) -> bytes:
    """An ACK frame body."""
    return bytes([KIND_ACK]) + encode_uvarint(seq) + bytes([status])


def _decode_seq(body: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(pos, min(len(body), pos + 9)):
        byte = body[i]
        value |= (byte & 0x7F) << (7 * (i - pos))
        if not byte & 0x80:
            return value, i + 1
    raise MalformedFrameError("bad sequence number")


def decode_message(body: bytes) -> tuple[int, bytes]:
    """A MESSAGE frame body -> (seq, packed message); raises FrameError."""
    if not body or body[0] != KIND_MESSAGE:
        raise FrameError("expected a MESSAGE frame")
    seq, pos = _decode_seq(body, 1)
    return seq, body[pos:]


def decode_ack(body: bytes) -> tuple[int, int]:
    """An ACK frame body -> (seq, status); raises FrameError."""
    if not body or body[0] != KIND_ACK:
        raise FrameError("expected an ACK frame")
    seq, pos = _decode_seq(body, 1)
    if len(body) != pos + 1:
        raise FrameError("an ACK frame ends with exactly one status byte")
    return seq, body[pos]


# -- receiver ----------------------------------------------------------------------


async def handle_inbound(
    stream: INetStream,
    *,
    on_message: OnMessage,
    admission: Admission,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_in_flight: int = MAX_IN_FLIGHT,
    frame_timeout: float = FRAME_READ_TIMEOUT,
    idle_timeout: float = RECEIVER_IDLE_TIMEOUT,
) -> None:
    """Serve one inbound session until the sender closes it (or misbehaves)."""
    peer = compat.remote_peer_id(stream)
    if not admission.acquire_stream(peer):
        log.debug("p2p.inbound.refused", peer=peer, protocol=PROTOCOL_ID, reason="streams")
        await compat.reset_quietly(stream)
        return
    reader = compat.StreamReader(
        stream, max_message_bytes + MESSAGE_OVERHEAD_BYTES, budget=admission
    )
    try:
        write_lock = EagerLock()
        window = EagerSemaphore(trio.Semaphore(max_in_flight))

        async def acknowledge(seq: int, status: int) -> None:
            # If the session is dead the ack is lost: the sender retries and
            # the daemon de-duplicates.  (Acks are not coalesced: commits finish
            # one at a time at the rates measured, so batches never formed.)
            with contextlib.suppress(*compat.io_errors()):
                async with write_lock:
                    await stream.write(encode_frame(encode_ack(seq, status)))

        async def commit(seq: int, message: bytes, wire_bytes: int) -> None:
            try:
                try:
                    await on_message(message, peer)
                except Exception as exc:
                    log.warning(
                        "p2p.inbound.commit_failed",
                        peer=peer,
                        protocol=PROTOCOL_ID,
                        error=type(exc).__name__,
                    )
                    status = REJECTED_STATUS
                else:
                    status = COMMITTED
                await acknowledge(seq, status)
            finally:
                reader.release(wire_bytes)
                window.release()

        failure: str | None = None
        async with trio.open_nursery() as nursery:
            # Errors are caught inside the nursery (a trio nursery would wrap
            # them in an ExceptionGroup); in-flight commits finish either way.
            try:
                while True:
                    try:
                        body = await reader.read_frame(
                            idle_timeout=idle_timeout, frame_timeout=frame_timeout
                        )
                    except trio.TooSlowError:
                        if not reader.at_boundary:
                            raise
                        break  # idle: finish what is in flight, then close
                    if body is None:
                        break
                    seq, message = decode_message(body)
                    if not message:
                        raise FrameError("empty message")
                    if not admission.take_message_token(peer):
                        reader.release(reader.last_wire_bytes)
                        await acknowledge(seq, BUSY_STATUS)
                        continue
                    await window.acquire()
                    nursery.start_soon(commit, seq, message, reader.last_wire_bytes)
            except (FrameError, OverBudgetError, StreamResetError, trio.TooSlowError) as exc:
                failure = "timeout" if isinstance(exc, trio.TooSlowError) else str(exc)
        if failure is not None:
            log.debug("p2p.inbound.dropped", peer=peer, protocol=PROTOCOL_ID, reason=failure)
            await compat.reset_quietly(stream)
            return
        await compat.close_quietly(stream)
    finally:
        reader.release_all()
        admission.release_stream(peer)


# -- sender ------------------------------------------------------------------------


class SessionClosedError(Exception):
    """The session ended before the message was written: open a new one."""


class _Pending:
    __slots__ = ("done", "status", "taken", "write_failed")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.taken = False  # its frame went into a write (which may have been cut)
        self.write_failed = False  # that write failed: retry on a new session
        self.status: int | None = None  # None when the session died first


class Session:
    """The sending end of one session with one peer.

    ``run`` (started in the node's nursery) reads acknowledgements and closes
    the session when it has been idle; ``send`` may be called from any number
    of tasks at once.
    """

    def __init__(
        self,
        peer_id: str,
        stream: INetStream,
        reader: compat.StreamReader,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        idle_timeout: float = SENDER_IDLE_TIMEOUT,
    ) -> None:
        self.peer_id = peer_id
        self._stream = stream
        self._reader = reader
        self._window = EagerSemaphore(trio.Semaphore(max_in_flight))
        self._write_lock = trio.Lock()
        self._outgoing: dict[int, bytes] = {}  # frames queued for the next write
        self._pending: dict[int, _Pending] = {}
        self._next_seq = 0
        self._idle_timeout = idle_timeout
        self._last_used = trio.current_time()
        self.closed = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read acknowledgements until the session ends; then fail what is pending."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._close_when_idle)
                task_status.started()
                await self._read_acks()
                nursery.cancel_scope.cancel()
        finally:
            self.closed = True
            for pending in self._pending.values():
                pending.done.set()
            with trio.CancelScope(shield=True):
                if self._reader.eof:
                    await compat.close_quietly(self._stream)
                else:
                    await compat.reset_quietly(self._stream)

    async def _read_acks(self) -> None:
        try:
            while True:
                body = await self._reader.read_frame(MAX_ACK_BYTES)
                if body is None:
                    return
                seq, status = decode_ack(body)
                pending = self._pending.get(seq)
                if pending is not None:
                    pending.status = status
                    pending.done.set()
        except (FrameError, StreamResetError) as exc:
            log.info("p2p.session.ended", peer=self.peer_id, reason=str(exc))

    async def _close_when_idle(self) -> None:
        while True:
            await trio.sleep_until(self._last_used + self._idle_timeout)
            if not self._pending and trio.current_time() >= self._last_used + self._idle_timeout:
                break
            if self._pending:  # busy right now: look again a little later
                await trio.sleep(self._idle_timeout / 4)
        self.closed = True  # no new sends; the receiver closes after our FIN
        with contextlib.suppress(*compat.io_errors()):
            await compat.close_write(self._stream)

    async def send(self, message: bytes, *, timeout: float = DELIVERY_TIMEOUT) -> None:
        """Deliver one message; return once the receiver acknowledged its commit.

        Raises :class:`SessionClosedError` if the session ended before the
        message was written (the caller opens a new session), else
        :class:`DeliveryError`.
        """
        async with self._window:
            if self.closed:
                raise SessionClosedError
            seq = self._next_seq
            self._next_seq += 1
            pending = self._pending[seq] = _Pending()
            self._last_used = trio.current_time()
            try:
                return await self._send(seq, pending, message, timeout)
            finally:
                del self._pending[seq]
                self._last_used = trio.current_time()

    async def _write(self, seq: int, message: bytes) -> None:
        """Write this message's frame, together with any others queued meanwhile.

        Whoever holds the write lock writes every queued frame in one muxer
        frame (with 16 senders, a handful at a time) and marks their pending
        entries ``taken``; a frame still queued when its sender is cancelled
        is withdrawn, so it never goes out after its sender gave up on it.
        """
        self._outgoing[seq] = encode_frame(encode_message(seq, message))
        waited = self._write_lock.locked()
        try:
            await acquire_now(self._write_lock)
            try:
                if seq in self._outgoing:  # else another sender wrote ours
                    # A lone sender writes at once; with others in flight, one
                    # scheduling round lets them queue theirs into this write.
                    await self._write_queued(batching=waited or len(self._pending) > 1)
            finally:
                self._write_lock.release()
        except compat.io_errors():
            self.closed = True
            raise SessionClosedError from None
        finally:
            self._outgoing.pop(seq, None)

    async def _write_queued(self, *, batching: bool) -> None:
        """Write every queued frame in one muxer frame (the write lock is held)."""
        if batching:
            await trio.lowlevel.checkpoint()  # let concurrent senders queue theirs
        taken = [self._pending[queued] for queued in self._outgoing]
        for entry in taken:
            entry.taken = True
        batch = b"".join(self._outgoing.values())
        self._outgoing.clear()
        try:
            await self._stream.write(batch)
        except compat.io_errors():
            # Every sender in the batch retries on a new session, as if it
            # had written alone (the receiver drops what it got twice).
            for entry in taken:
                entry.write_failed = True
                entry.done.set()
            raise

    async def _send(self, seq: int, pending: _Pending, message: bytes, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await self._write(seq, message)
            await pending.done.wait()
        if pending.write_failed:
            raise SessionClosedError
        if not pending.done.is_set():
            if pending.taken:
                # Cut off inside a frame (the stream is out of step), or no
                # answer in time (the peer or the path is stuck): either way
                # this session is done, the next message opens a new one.
                self.closed = True
                await compat.reset_quietly(self._stream)
            raise DeliveryError(
                self.peer_id,
                TIMEOUT,
                f"no acknowledgement within {timeout} s",
                maybe_delivered=pending.taken,
            )
        if pending.status is None:
            raise DeliveryError(
                self.peer_id, CONNECTION_LOST, "the session ended", maybe_delivered=True
            )
        if pending.status != COMMITTED:
            reason = _STATUS_REASONS.get(pending.status, REJECTED)
            raise DeliveryError(self.peer_id, reason, f"the receiver answered {reason}")
