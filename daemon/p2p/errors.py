"""Every error the p2p transport lets its caller see.

The transport never hands a peer a traceback and never puts message content or
key material into an error: messages name the peer, the protocol and what went
wrong, nothing else.

``DeliveryError`` is the one a sender has to handle.  Its ``reason`` is a short
machine-readable word and two flags tell the outbox what to do next:

- ``retryable``: trying again later may succeed (the peer was unreachable,
  busy, or the stream broke);
- ``maybe_delivered``: the frame left us but no acknowledgement came back, so
  the receiver may have committed it.  Retrying is still right (receivers
  de-duplicate by message id), but the message must not be reported as lost.
"""

from __future__ import annotations

from typing import Final

# Reasons a delivery can fail (DeliveryError.reason).
UNREACHABLE: Final = "unreachable"  # no address, dial failed, no secure channel
UNSUPPORTED: Final = "unsupported"  # the peer speaks neither of our protocols
REJECTED: Final = "rejected"  # the peer reset the stream / refused to commit
BUSY: Final = "busy"  # the peer is over one of its inbound limits
TIMEOUT: Final = "timeout"  # no acknowledgement within the delivery timeout
CONNECTION_LOST: Final = "connection_lost"  # the connection died mid-delivery
TOO_LARGE: Final = "too_large"  # the message is over MAX_MESSAGE_BYTES
INVALID: Final = "invalid"  # bad peer id / multiaddr given by the caller
SHUTTING_DOWN: Final = "shutting_down"  # the node is stopping

_RETRYABLE: Final = frozenset(
    {UNREACHABLE, REJECTED, BUSY, TIMEOUT, CONNECTION_LOST, SHUTTING_DOWN}
)


class P2PError(Exception):
    """Base of every error raised by :mod:`daemon.p2p`."""

    #: Control-interface error code (one of daemon/errors.py's) this maps to.
    code: str = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class P2PConfigError(P2PError):
    """A listen / announce / bootstrap address or a limit is not valid."""

    code = "config"


class IdentityError(P2PError):
    """Stored peer-identity bytes are not a libp2p Ed25519 private key."""

    code = "store"


class FrameError(P2PError):
    """A peer sent bytes that are not a valid unsigned-varint framed stream."""

    code = "invalid_message"


class FrameTooLargeError(FrameError):
    """A length prefix claims more than the limit (rejected before the body)."""

    def __init__(self, claimed: int, limit: int) -> None:
        super().__init__(f"frame of {claimed} bytes is over the {limit}-byte limit")
        self.claimed = claimed
        self.limit = limit


class MalformedFrameError(FrameError):
    """A length prefix is not a valid unsigned varint (too long, overflow)."""


class TruncatedFrameError(FrameError):
    """The stream ended in the middle of a frame."""


class OverBudgetError(P2PError):
    """Reading on would put the node over its inbound byte budget."""


class StreamResetError(P2PError):
    """The remote peer reset the stream (or the connection under it died)."""

    code = "unavailable"


class DeliveryError(P2PError):
    """A message could not be handed to a peer (see the module docstring)."""

    code = "unavailable"

    def __init__(
        self,
        peer_id: str,
        reason: str,
        detail: str,
        *,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(f"delivery to {peer_id} failed ({reason}): {detail}")
        self.peer_id = peer_id
        self.reason = reason
        self.detail = detail
        self.maybe_delivered = maybe_delivered

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed."""
        return self.reason in _RETRYABLE
