"""Unsigned-varint length-prefixed frames, sans-I/O.

Theory of operation
-------------------
Every protocol this package speaks on a libp2p stream (``didcomm/v2``, our
``/didcommd/deliver/1.0.0`` fast path, and multistream-select itself) cuts the
byte stream into frames: an unsigned varint (multiformats ``unsigned-varint``:
7 bits per byte, low bits first, high bit = "more bytes follow") giving the body
length, then the body.

:class:`FrameDecoder` is a push parser: the I/O layer feeds it whatever bytes a
``read()`` returned and pulls out complete frames.  It holds no socket and
never blocks, so it is tested exhaustively with hypothesis and reused by every
reader in :mod:`daemon.p2p.compat`.

Limits are enforced on the *length prefix*, before a single body byte is
buffered: a peer that claims a 4 GiB frame is refused after at most five
bytes, since the value a partial varint has reached is a lower bound of the
final value.
"""

from __future__ import annotations

from typing import Final

from .errors import FrameTooLargeError, MalformedFrameError

#: multiformats unsigned-varint: at most 9 bytes (63 bits) in practice.
MAX_VARINT_BYTES: Final = 9

#: Compact the decoder's buffer once this many consumed bytes sit in front of
#: it (and they are at least half the buffer): amortised O(1) per byte.
COMPACT_AFTER_BYTES: Final = 64 * 1024


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative integer as a (minimal) unsigned varint."""
    if value < 0:
        raise ValueError("an unsigned varint cannot be negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_frame(body: bytes) -> bytes:
    """``uvarint(len(body)) || body``."""
    return encode_uvarint(len(body)) + body


class FrameDecoder:
    """Split a byte stream into varint length-prefixed frames.

    ``feed()`` bytes in, call ``next_frame()`` until it returns ``None`` (more
    bytes needed).  Raises :class:`FrameTooLargeError` as soon as a prefix is
    known to exceed ``max_frame_bytes`` and :class:`MalformedFrameError` for a
    prefix longer than :data:`MAX_VARINT_BYTES`.  After an error the decoder is
    unusable (the stream is out of sync; the caller resets it).
    """

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 0:
            raise ValueError("max_frame_bytes must be >= 0")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0
        self._body_len: int | None = None
        self._prefix_len = 0
        #: Wire size (prefix + body) of the frame ``next_frame`` last returned.
        self.last_wire_bytes = 0

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        if self._pos >= COMPACT_AFTER_BYTES and self._pos * 2 >= len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned in a frame (prefix bytes included)."""
        return len(self._buf) - self._pos

    @property
    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (EOF here is clean)."""
        return self._body_len is None and self._pos == len(self._buf)

    def take_buffered(self) -> bytes:
        """Remove and return every buffered byte (for handing a stream over)."""
        if self._body_len is not None:
            raise ValueError("cannot hand over a stream in the middle of a frame")
        rest = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        return rest

    def next_frame(self) -> bytes | None:
        """The next complete frame body, or ``None`` if more bytes are needed."""
        if self._body_len is None and not self._read_prefix():
            return None
        assert self._body_len is not None
        end = self._pos + self._body_len
        if end > len(self._buf):
            return None
        body = bytes(self._buf[self._pos : end])
        self._pos = end
        self.last_wire_bytes = self._prefix_len + self._body_len
        self._body_len = None
        return body

    def _read_prefix(self) -> bool:
        value = 0
        shift = 0
        buf = self._buf
        for i in range(self._pos, min(len(buf), self._pos + MAX_VARINT_BYTES)):
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            if value > self.max_frame_bytes:
                raise FrameTooLargeError(value, self.max_frame_bytes)
            if not byte & 0x80:
                self._prefix_len = i + 1 - self._pos
                self._pos = i + 1
                self._body_len = value
                return True
            shift += 7
        if len(buf) - self._pos >= MAX_VARINT_BYTES:
            raise MalformedFrameError(f"length prefix is longer than {MAX_VARINT_BYTES} bytes")
        return False
