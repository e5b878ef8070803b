"""Who may open an inbound stream or hand us a message right now.

Theory of operation
-------------------
Every inbound ``didcomm/v2`` stream and every fast-path session holds a *slot*
from the moment it is accepted until its handler ends; every inbound message
(one per ``didcomm/v2`` stream, one per fast-path frame) spends a *token*.

- slots: at most ``max_streams_per_peer`` per peer and ``max_streams`` in all,
  so one peer cannot starve the others and all peers together cannot exhaust
  memory or tasks;
- tokens: a token bucket per peer, refilled at ``rate_per_second`` up to
  ``burst``, so a peer cannot flood the store with messages;
- bytes: inbound bytes read but not yet committed (or dropped), all streams
  together, stay under ``max_buffered_bytes``: 512 streams each holding most
  of a 4 MiB frame would otherwise be 2 GiB of memory.

A stream over a limit is reset at once, before a byte of it is read: a reset
is the cheapest "no" libp2p has, and the sender treats it as "retry later".

Sans-I/O: the clock is a function passed in (``trio.current_time`` in the
daemon), so the tests drive time by hand.  Buckets are kept in
least-recently-used order and, past ``MAX_TRACKED_PEERS``, the least recently
used is dropped (it would have refilled anyway): memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: Inbound streams (didcomm/v2 streams + fast-path sessions) per peer at once.
MAX_INBOUND_STREAMS_PER_PEER: Final = 64
#: Inbound streams from all peers at once.
MAX_INBOUND_STREAMS: Final = 512
#: Messages a peer may hand us per second, sustained ...
PEER_MESSAGES_PER_SECOND: Final = 1000.0
#: ... and in one burst.
PEER_MESSAGE_BURST: Final = 2000
#: Inbound bytes held at once (read, not yet committed), all streams together.
MAX_INBOUND_BUFFERED_BYTES: Final = 64 * 1024 * 1024
#: Token buckets kept at most (one per recently active peer).
MAX_TRACKED_PEERS: Final = 10_000


@dataclass(frozen=True)
class AdmissionLimits:
    """The numbers :class:`Admission` enforces (defaults: the constants above)."""

    max_streams_per_peer: int = MAX_INBOUND_STREAMS_PER_PEER
    max_streams: int = MAX_INBOUND_STREAMS
    rate_per_second: float = PEER_MESSAGES_PER_SECOND
    burst: int = PEER_MESSAGE_BURST
    max_buffered_bytes: int = MAX_INBOUND_BUFFERED_BYTES

    def __post_init__(self) -> None:
        if self.max_streams_per_peer < 1 or self.max_streams < 1:
            raise ValueError("stream limits must be at least 1")
        if self.rate_per_second <= 0 or self.burst < 1:
            raise ValueError("the message rate and burst must be positive")
        if self.max_buffered_bytes < 1:
            raise ValueError("the inbound byte budget must be positive")


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Admission:
    """Slot and token accounting for inbound streams and messages."""

    def __init__(self, limits: AdmissionLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._open: dict[str, int] = {}
        self._total = 0
        self._buckets: dict[str, _Bucket] = {}
        self._buffered = 0
        #: Streams, messages and reads refused so far (for status reports).
        self.refused_streams = 0
        self.refused_messages = 0
        self.refused_reads = 0

    @property
    def open_streams(self) -> int:
        """Slots held right now, all peers together."""
        return self._total

    def open_streams_of(self, peer: str) -> int:
        """Slots held right now by ``peer``."""
        return self._open.get(peer, 0)

    def acquire_stream(self, peer: str) -> bool:
        """Take a stream slot for ``peer``; False if a limit is reached."""
        held = self._open.get(peer, 0)
        if held >= self.limits.max_streams_per_peer or self._total >= self.limits.max_streams:
            self.refused_streams += 1
            return False
        self._open[peer] = held + 1
        self._total += 1
        return True

    def release_stream(self, peer: str) -> None:
        """Give back a slot taken by :meth:`acquire_stream`."""
        held = self._open.get(peer, 0)
        if held <= 0:
            raise RuntimeError("release_stream without acquire_stream")
        if held == 1:
            del self._open[peer]
        else:
            self._open[peer] = held - 1
        self._total -= 1

    @property
    def buffered_bytes(self) -> int:
        """Inbound bytes held right now, all streams together."""
        return self._buffered

    def reserve_bytes(self, count: int) -> bool:
        """Account ``count`` more inbound bytes; False if over the budget."""
        if self._buffered + count > self.limits.max_buffered_bytes:
            self.refused_reads += 1
            return False
        self._buffered += count
        return True

    def release_bytes(self, count: int) -> None:
        """Give back bytes taken by :meth:`reserve_bytes`."""
        if count < 0 or count > self._buffered:
            raise RuntimeError("release_bytes of bytes never reserved")
        self._buffered -= count

    def take_message_token(self, peer: str) -> bool:
        """Spend one message token of ``peer``; False if its bucket is empty."""
        now = self._clock()
        bucket = self._buckets.pop(peer, None)  # re-inserted below: LRU order
        if bucket is None:
            bucket = _Bucket(float(self.limits.burst), now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(
                float(self.limits.burst), bucket.tokens + elapsed * self.limits.rate_per_second
            )
            bucket.stamp = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        else:
            self.refused_messages += 1
        self._buckets[peer] = bucket
        self._forget_idle()
        return allowed

    def _forget_idle(self) -> None:
        while len(self._buckets) > MAX_TRACKED_PEERS:
            oldest = next(iter(self._buckets))
            del self._buckets[oldest]
