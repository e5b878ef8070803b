"""multistream-select 1.0 messages, sans-I/O.

Theory of operation
-------------------
Before a libp2p stream carries a protocol, both ends agree on it with
multistream-select (https://github.com/multiformats/multistream-select): each
message is a varint length-prefixed frame whose body ends in ``\\n``.  Both
sides send the header ``/multistream/1.0.0``; the dialer proposes a protocol id
and the listener echoes it (accepted) or answers ``na``.

Nothing in the spec makes the dialer wait for the listener's header before
proposing, so we send header and proposal in one write (one round trip instead
of py-libp2p's two); for ``didcomm/v2`` we even append the message itself
(js-libp2p's "lazy" select).  That is safe because the answer is read before a
delivery is counted: if the listener says ``na`` it sees the rest as a
malformed multistream message and resets the stream, and we report the peer as
not supporting the protocol.
"""

from __future__ import annotations

from typing import Final

from .errors import FrameError
from .framing import encode_frame

PROTOCOL_ID: Final = "/multistream/1.0.0"
NOT_AVAILABLE: Final = "na"

#: Largest multistream message we accept (a protocol id or ``na``).  go and js
#: use 1024 for the message size as well.
MAX_MESSAGE_BYTES: Final = 1024


def encode_message(text: str) -> bytes:
    """One multistream message: ``uvarint(len) || text || "\\n"``."""
    return encode_frame(text.encode() + b"\n")


#: What a dialer sends first; the listener sends the same bytes first.
HEADER: Final = encode_message(PROTOCOL_ID)


def propose(protocol_id: str) -> bytes:
    """Header plus the proposal of ``protocol_id``, ready for a single write."""
    return HEADER + encode_message(protocol_id)


def decode_message(body: bytes) -> str:
    """Body of a multistream frame -> its text; raises FrameError if malformed."""
    if not body.endswith(b"\n"):
        raise FrameError("multistream message does not end with a newline")
    try:
        return body[:-1].decode()
    except UnicodeDecodeError:
        raise FrameError("multistream message is not UTF-8") from None
