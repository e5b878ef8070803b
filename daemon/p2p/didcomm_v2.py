"""The ``didcomm/v2`` libp2p protocol (DIDComm libp2p transport extension).

Theory of operation
-------------------
One packed DIDComm message per stream, sender to receiver only::

    sender                                   receiver
      | open stream, select "didcomm/v2"        |
      | uvarint(len) || message  (1+ frames)    |
      | close write (FIN)  ------------------>  | read frames until EOF, join them
      |                                         | commit (on_message returns)
      | <---------------------------  close (FIN)|
      | EOF: delivered                          |

The extension says a receiver reads *all* frames until EOF and concatenates
them: its JavaScript sender pipes a string through ``it-length-prefixed``,
which makes one frame per chunk (per character, for a plain string), so a
message may come as many frames.  We send one frame; we accept many.

The receiver closes its side only after ``on_message`` returned, i.e. after the
message is durably committed; on any failure it resets the stream instead.  So
for the sender a clean EOF means "committed" and a reset means "not committed,
try again later" (see :func:`daemon.p2p.compat.stream_was_reset` for telling
them apart under py-libp2p).  A peer that follows only the extension's example
may never close; the sender then times out with ``maybe_delivered``.  And a
sender that closes its stream and at once stops its node (as the extension's
example may) can lose the message: the connection's end overtakes its last
bytes (py-libp2p drops unread bytes of a closed connection), so a stream cut
by its connection is never committed, even at a frame boundary.

Sending costs one round trip: header, protocol proposal and the message go out
in one write (:mod:`daemon.p2p.multistream` explains why that is safe).

Limits, checked before the work they protect: a stream slot, a message token
and the node's inbound byte budget (:mod:`daemon.p2p.admission`); each length
prefix against what is left of :data:`MAX_MESSAGE_BYTES` (so a claimed 4 GiB
frame is refused after five bytes); :data:`MAX_FRAMES_PER_MESSAGE`; and
:data:`STREAM_READ_TIMEOUT` for the whole message (slowloris).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import structlog
import trio

from . import compat, multistream
from .admission import Admission
from .errors import (
    CONNECTION_LOST,
    REJECTED,
    TIMEOUT,
    UNSUPPORTED,
    DeliveryError,
    FrameError,
    OverBudgetError,
    StreamResetError,
)
from .framing import encode_frame

if TYPE_CHECKING:
    from libp2p.abc import INetStream

PROTOCOL_ID: Final = "didcomm/v2"

#: Largest packed message we send or accept (all frames of a stream joined).
MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
#: Most frames one message may be cut into (a JS sender may send one per char).
MAX_FRAMES_PER_MESSAGE: Final = MAX_MESSAGE_BYTES
#: Seconds a sender has, from the stream's arrival, to send the whole message.
STREAM_READ_TIMEOUT: Final = 30.0
#: Seconds a sender waits for the whole exchange (write, commit, close).
DELIVERY_TIMEOUT: Final = 30.0

#: What the transport calls with each inbound message: returns once the
#: message is durably committed, raises if it could not be.
OnMessage = Callable[[bytes, str], Awaitable[None]]

log = structlog.get_logger("didcommd.p2p")


async def read_message(
    reader: compat.StreamReader,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    max_frames: int = MAX_FRAMES_PER_MESSAGE,
) -> bytes:
    """Read frames until EOF and join them; enforce the size and frame budgets."""
    parts: list[bytes] = []
    total = 0
    while True:
        frame = await reader.read_frame(max_message_bytes - total)
        if frame is None:
            return b"".join(parts)
        if len(parts) >= max_frames:
            raise FrameError(f"message is cut into more than {max_frames} frames")
        parts.append(frame)
        total += len(frame)


async def handle_inbound(
    stream: INetStream,
    *,
    on_message: OnMessage,
    admission: Admission,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    read_timeout: float = STREAM_READ_TIMEOUT,
) -> None:
    """Receive one message from a ``didcomm/v2`` stream, commit it, close.

    Never raises for anything the peer did: every failure is logged and
    answered with a reset.
    """
    peer = compat.remote_peer_id(stream)
    if not admission.acquire_stream(peer):
        log.debug("p2p.inbound.refused", peer=peer, protocol=PROTOCOL_ID, reason="streams")
        await compat.reset_quietly(stream)
        return
    reader: compat.StreamReader | None = None
    try:
        if not admission.take_message_token(peer):
            log.debug("p2p.inbound.refused", peer=peer, protocol=PROTOCOL_ID, reason="rate")
            await compat.reset_quietly(stream)
            return
        reader = compat.StreamReader(stream, max_message_bytes, budget=admission)
        try:
            with trio.fail_after(read_timeout):
                message = await read_message(reader, max_message_bytes=max_message_bytes)
        except (FrameError, OverBudgetError, StreamResetError, trio.TooSlowError) as exc:
            reason = "timeout" if isinstance(exc, trio.TooSlowError) else str(exc)
            log.debug("p2p.inbound.dropped", peer=peer, protocol=PROTOCOL_ID, reason=reason)
            await compat.reset_quietly(stream)
            return
        if not message:
            log.debug("p2p.inbound.dropped", peer=peer, protocol=PROTOCOL_ID, reason="empty")
            await compat.reset_quietly(stream)
            return
        try:
            await on_message(message, peer)
        except Exception as exc:  # the commit failed: the sender must not see success
            log.warning(
                "p2p.inbound.commit_failed",
                peer=peer,
                protocol=PROTOCOL_ID,
                error=type(exc).__name__,
            )
            await compat.reset_quietly(stream)
            return
        await compat.close_quietly(stream)
    finally:
        if reader is not None:
            reader.release_all()
        admission.release_stream(peer)


async def send_on_stream(
    stream: INetStream,
    reader: compat.StreamReader,
    peer_id: str,
    message: bytes,
    *,
    selected: bool,
    timeout: float = DELIVERY_TIMEOUT,
) -> None:
    """Deliver ``message`` on a fresh ``stream`` and wait for the receiver's close.

    With ``selected=False`` the protocol proposal goes out in the same write as
    the message (one round trip); with ``selected=True`` the stream already
    speaks ``didcomm/v2``.  The stream is always closed or reset on return.
    Raises :class:`DeliveryError`.
    """
    written = False
    try:
        with trio.fail_after(timeout):
            payload = encode_frame(message)
            if not selected:
                payload = multistream.propose(PROTOCOL_ID) + payload
            await stream.write(payload)
            written = True
            await compat.close_write(stream)
            if not selected and not await compat.read_selection(reader, PROTOCOL_ID):
                raise DeliveryError(peer_id, UNSUPPORTED, f"the peer does not speak {PROTOCOL_ID}")
            await reader.expect_eof()
    except DeliveryError:
        await compat.reset_quietly(stream)
        raise
    except trio.TooSlowError:
        await compat.reset_quietly(stream)
        raise DeliveryError(
            peer_id,
            TIMEOUT,
            f"no close from the receiver within {timeout} s",
            maybe_delivered=written,
        ) from None
    except StreamResetError:
        lost = compat.connection_closing(stream)
        await compat.reset_quietly(stream)
        if lost:
            raise DeliveryError(
                peer_id, CONNECTION_LOST, "the connection closed", maybe_delivered=written
            ) from None
        raise DeliveryError(peer_id, REJECTED, "the receiver reset the stream") from None
    except FrameError as exc:
        await compat.reset_quietly(stream)
        raise DeliveryError(peer_id, REJECTED, str(exc), maybe_delivered=written) from None
    except compat.io_errors() as exc:
        await compat.reset_quietly(stream)
        raise DeliveryError(
            peer_id, CONNECTION_LOST, type(exc).__name__, maybe_delivered=written
        ) from None
    await compat.close_quietly(stream)


async def send_message(
    stream: INetStream, peer_id: str, message: bytes, *, timeout: float = DELIVERY_TIMEOUT
) -> None:
    """Deliver ``message`` over a new, not yet negotiated ``didcomm/v2`` stream."""
    reader = compat.StreamReader(stream, multistream.MAX_MESSAGE_BYTES)
    await send_on_stream(stream, reader, peer_id, message, selected=False, timeout=timeout)
