"""Control-socket framing: msgpack values with a 4-byte big-endian length prefix.

Theory of operation
-------------------
The control socket is a byte stream; a *frame* is one msgpack value preceded by
its length as an unsigned 32-bit big-endian integer::

    +----------------+---------------------------+
    | length (4, BE) | msgpack value (length B)  |
    +----------------+---------------------------+

The same module serves the daemon (``daemon/control.py``), the async client and
the blocking client (``daemon/client.py``), so the three cannot drift apart.

This file does no I/O: :func:`encode_frame` turns a value into bytes and
:class:`FrameDecoder` turns bytes, fed in whatever pieces the socket delivers,
back into values.  The decoder checks the announced length against its limit
*before* buffering the payload, so a peer announcing 4 GiB costs us four bytes,
not four gigabytes.

Errors are typed: :class:`FrameTooLargeError` (the length is over the limit)
and :class:`MalformedFrameError` (the payload is not exactly one msgpack value).
Either one leaves the stream unusable - we cannot know where the next frame
starts - so the caller answers once and closes the connection.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

#: Size of the length prefix in bytes.
HEADER_BYTES = 4
#: Default limit on one frame's payload: a request carrying a packed DIDComm
#: message of several hundred KiB fits; anything larger is a mistake or an attack.
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
#: The largest length the prefix can express.
ABSOLUTE_MAX_FRAME_BYTES = 2**32 - 1

_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """A frame could not be decoded; the stream cannot be trusted any more."""

    #: Error code sent to the peer (see ``docs/control-api.md``).
    code = "malformed_frame"


class FrameTooLargeError(FrameError):
    """The announced length is over the receiver's limit."""

    code = "frame_too_large"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes is over the limit of {limit} bytes")
        self.length = length
        self.limit = limit


class MalformedFrameError(FrameError):
    """The payload is not exactly one valid msgpack value."""


def _default(value: object) -> object:
    """Encode the few non-msgpack types our replies may carry (paths, sets)."""
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"cannot encode a {type(value).__name__} in a control frame")


def pack_value(value: Any) -> bytes:
    """The msgpack encoding of ``value`` (no length prefix)."""
    data: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    return data


def encode_frame(value: Any, max_bytes: int = ABSOLUTE_MAX_FRAME_BYTES) -> bytes:
    """One frame (prefix + payload) carrying ``value``.

    Raises :class:`FrameTooLargeError` if the payload is over ``max_bytes`` and
    :class:`TypeError` if ``value`` holds something msgpack cannot encode.
    """
    payload = pack_value(value)
    if len(payload) > max_bytes:
        raise FrameTooLargeError(len(payload), max_bytes)
    return _HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> Any:
    """Decode one frame's payload; exactly one msgpack value, nothing after it."""
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            use_list=True,
            strict_map_key=True,
            # Timestamps stay ``msgpack.Timestamp`` objects and other extension
            # types stay ``ExtType``: the request validator rejects both.
            timestamp=0,
        )
    except msgpack.ExtraData as exc:
        raise MalformedFrameError("frame holds more than one msgpack value") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # ``unpackb`` raises ValueError for bad UTF-8 and truncated data,
        # TypeError for unhashable map keys, FormatError/StackError otherwise.
        raise MalformedFrameError(f"frame is not valid msgpack: {type(exc).__name__}") from exc


class _NeedData:
    """Type of :data:`NEED_DATA`."""

    def __repr__(self) -> str:
        return "NEED_DATA"


#: What :meth:`FrameDecoder.next_frame` returns while a frame is incomplete
#: (a sentinel, as in h11: ``None`` is a valid msgpack value).
NEED_DATA = _NeedData()


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes, then ``next_frame`` until it gives :data:`NEED_DATA`.

    >>> d = FrameDecoder()
    >>> d.feed(encode_frame({"id": 1}))
    >>> d.next_frame()
    {'id': 1}
    >>> d.next_frame() is NEED_DATA
    True
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._failed: FrameError | None = None

    @property
    def partial(self) -> bool:
        """True while part of a frame has been received but not all of it."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append bytes received from the stream."""
        self._buffer += data

    def next_frame(self) -> Any:
        """The next complete value, or :data:`NEED_DATA` if more bytes are needed.

        After a :class:`FrameError` the decoder stays failed: every later call
        raises the same error, because the frame boundaries are lost.
        """
        if self._failed is not None:
            raise self._failed
        if len(self._buffer) < HEADER_BYTES:
            return NEED_DATA
        (length,) = _HEADER.unpack_from(self._buffer)
        if length > self.max_frame_bytes:
            self._failed = FrameTooLargeError(length, self.max_frame_bytes)
            raise self._failed
        end = HEADER_BYTES + length
        if len(self._buffer) < end:
            return NEED_DATA
        payload = bytes(self._buffer[HEADER_BYTES:end])
        del self._buffer[:end]
        try:
            return decode_payload(payload)
        except MalformedFrameError as exc:
            self._failed = exc
            raise
