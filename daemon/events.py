"""The event bus: what happened in the daemon, numbered, stored, and streamed to clients.

Theory of operation
-------------------
An event is ``{"seq", "kind", "time", "data"}``: ``seq`` a number that only grows
(it survives restarts, and crashes: see :meth:`EventBus.open`), ``kind`` a dotted name (``did.created``, ``message.received``),
``time`` ISO 8601 UTC, ``data`` a small dict (ids, states; never key material).

:meth:`EventBus.publish` is synchronous and never blocks, so any code can report
without awaiting: it numbers the event, hands it to every live subscriber, and
queues it for the store.  :meth:`EventBus.flush` writes the queue to the store in
one transaction; the agent calls it after each operation that published, and on
close.  While the daemon runs, :meth:`EventBus.run_flusher` is a task that does
those flushes in the background: :meth:`EventBus.flush_soon` only wakes it, so
a reply or an acknowledgement does not wait for the event rows' store round
trip; it flushes at most once per :data:`FLUSH_DELAY`, so a busy daemon writes
the events of many operations in one commit (``subscribe(since=...)`` still flushes for real before it replays).  (Publishing does not wait for the disk: an event is a report of something
already committed elsewhere, so losing the newest few in a crash loses no data.
For the same reason the flush's commit is a relaxed one, ``AsyncStore.run_relaxed``:
it survives a crash of the daemon and costs no fsync, and it shares the store's
group commit with whatever state changes are queued beside it.)

A subscriber gets a bounded channel.  Between the publisher and that channel sits
a per-subscriber buffer of at most :data:`SUBSCRIBER_BUFFER` events and a feeder
task (owned by the subscription's own ``async with``): a publisher only appends to
the buffer.  If a subscriber falls that far behind, it is dropped: the feeder sends
what it had buffered, then one last ``overflow`` event (its ``data.resume_since``
says where to pick up with ``since=``), and closes the channel.  A slow client can never stall the daemon.

``subscribe(since=N)`` first replays stored events with ``seq > N`` (in pages, at
the subscriber's own pace), then continues with live ones, with no gap and no
repeat: the live buffer is attached before the replay starts, and the feeder skips
live events the replay already delivered.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from .errors import DaemonError
from .logs import get_logger
from .store import AsyncStore

#: Events a subscriber may fall behind by before it is dropped.
SUBSCRIBER_BUFFER = 1024
#: Size of the channel each subscriber reads from (the feeder fills it).
CHANNEL_BUFFER = 64
#: Stored events fetched per replay page.
REPLAY_PAGE = 256
#: Most live subscribers at once.
MAX_SUBSCRIBERS = 256
#: Least seconds between two background flushes: under load the events of many
#: operations share one (relaxed) commit.  The price: a crash of a busy daemon may
#: lose the events of this long before it (reports; what they report is
#: committed, and replies never waited for them).  An idle daemon flushes at once.
FLUSH_DELAY = 0.01
#: Unflushed events kept before publish() starts to drop the oldest from the queue
#: (only if nobody flushes; the agent flushes after every operation).
MAX_UNFLUSHED = 10_000
#: ``meta`` record set while a bus numbers events, cleared by :meth:`EventBus.close`.
RUNNING_META = "events.running"

OVERFLOW = "overflow"

_log = get_logger("events")


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def iso_time(second: int) -> str:
    """A whole second as an event ``time`` (events' times compare as strings)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(second))


def iso_now(now: float | None = None) -> str:
    """The current time (or Unix time ``now``), ISO 8601 UTC with milliseconds (every
    event has one)."""
    if now is None:
        now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[:] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


class _Subscriber:
    def __init__(self, kinds: set[str] | None) -> None:
        self.kinds = kinds
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.overflowed = False
        self.wakeup = trio.Event()
        #: The channel, once the replay is over: then an event goes straight in
        #: while nothing waits before it (no wake-up of the feeder task on the path).
        self.live: trio.MemorySendChannel[dict[str, Any]] | None = None
        #: seq of the newest event put in the channel.
        self.delivered = 0

    def wants(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed or not self.wants(event["kind"]):
            return
        if self.live is not None and not self.pending:
            try:
                self.live.send_nowait(event)
            except trio.WouldBlock:
                pass  # the reader is behind: the feeder takes over
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the reader went away (the feeder ends)
            else:
                self.delivered = event["seq"]
                return
        behind = len(self.pending)
        if self.live is not None:
            behind += self.live.statistics().current_buffer_used
        if behind >= SUBSCRIBER_BUFFER:
            # What is buffered is still delivered, then the overflow notice.
            self.overflowed = True
        else:
            self.pending.append(event)
        self.wakeup.set()


class EventBus:
    """Numbered events: published synchronously, persisted in batches, streamed to subscribers."""

    def __init__(
        self, store: AsyncStore | None, last_seq: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        #: Unix time of events: the agent's clock (tests move it).
        self._clock = clock
        self._seq = itertools.count(last_seq + 1)
        self._last_seq = last_seq
        self._unflushed: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_UNFLUSHED)
        self._subscribers: set[_Subscriber] = set()
        self._flush_lock = trio.Lock()
        #: Set by flush_soon() while run_flusher() runs.
        self._flusher_running = False
        self._flush_wanted = trio.Event()

    @classmethod
    async def open(cls, store: AsyncStore, clock: Callable[[], float] = time.time) -> EventBus:
        """A bus that continues the store's sequence numbers (and whose rows ride
        along with the store's other commits, see :meth:`_ride_along`).

        If the last bus on this store did not :meth:`close` (a crash, a kill), up to
        :data:`MAX_UNFLUSHED` events it numbered may never have been stored, and live
        subscribers may have seen them: numbering jumps past them, so no seq is ever
        given to two events (a client's ``since`` stays meaningful).
        """
        last = await store.run(store.sync.events_last_seq)
        if await store.run(store.sync.meta_get, RUNNING_META):
            last += MAX_UNFLUSHED
        await store.run(store.sync.meta_put, RUNNING_META, 1)  # durable before any event is numbered
        bus = cls(store, last, clock)
        store.ride_along = bus._ride_along
        return bus

    def _ride_along(self) -> tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]] | None:
        """The unflushed rows, as one more call for a store group about to commit.

        A busy daemon commits something for nearly every event it publishes; the
        rows join that commit instead of costing one of their own (the flusher
        then finds nothing left).  If the call fails, the rows go back in the queue.
        """
        if not self._unflushed or self._store is None:
            return None
        batch = self._take_unflushed()

        def settled(result: outcome.Outcome[Any]) -> None:
            if isinstance(result, outcome.Error):
                self._unflushed.extendleft(reversed(batch))

        return functools.partial(self._store.sync.events_append, batch), settled

    def _take_unflushed(self) -> list[dict[str, Any]]:
        batch = list(self._unflushed)
        self._unflushed.clear()
        return batch

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event published."""
        return self._last_seq

    @property
    def subscriber_count(self) -> int:
        """Live subscriptions."""
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Number an event, deliver it to subscribers, queue it for the store.  Never blocks."""
        seq = next(self._seq)
        self._last_seq = seq
        event = {"seq": seq, "kind": kind, "time": iso_now(self._clock()), "data": data}
        if self._store is not None:
            self._unflushed.append(event)
        for sub in self._subscribers:
            sub.offer(event)
        return event

    async def close(self) -> None:
        """Flush, and say the numbering ended cleanly (the next bus goes on from the
        newest stored event)."""
        await self.flush()
        if self._store is not None:
            await self._store.run(self._store.sync.meta_put, RUNNING_META, 0)

    async def flush(self) -> None:
        """Write the queued events to the store."""
        if self._store is None:
            return
        async with self._flush_lock:
            if not self._unflushed:
                return
            batch = self._take_unflushed()
            # No fsync of its own (see the module docstring): the next durable
            # commit, or the OS, takes the rows to the disk; a kill -9 loses none.
            # Shielded: the batch left the queue, and a cancelled wait (the
            # background flusher at shutdown) would otherwise drop it.
            with trio.CancelScope(shield=True):
                await self._store.run_relaxed(self._store.sync.events_append, batch)

    async def flush_soon(self) -> None:
        """Have the queued events written: by the flusher task if it runs, else now."""
        if self._flusher_running:
            self._flush_wanted.set()
            return
        await self.flush()

    async def run_flusher(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush in the background whenever :meth:`flush_soon` asks, until cancelled."""
        self._flusher_running = True
        last_flush = -math.inf
        task_status.started()
        try:
            while True:
                await self._flush_wanted.wait()
                # Everything published until the flush starts shares its commit.
                # At most one flush per FLUSH_DELAY: a busy daemon writes the
                # events of many operations at once (one commit per message cost
                # ~0.1-0.2 ms each, on the path of the next one), an idle one at once.
                await trio.sleep_until(last_flush + FLUSH_DELAY)
                self._flush_wanted = trio.Event()
                last_flush = trio.current_time()
                try:
                    await self.flush()
                except DaemonError as exc:
                    # Events are reports: a store that cannot take them must not
                    # stop the daemon (the state they report is committed).
                    _log.warning("events.flush_failed", error=exc.message)
        finally:
            # Whatever is left is flushed by the next flush() (Agent.aclose does one).
            self._flusher_running = False

    @asynccontextmanager
    async def subscribe(
        self, kinds: set[str] | None = None, since: int | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """Stream events (only ``kinds`` if given; stored ones after ``since`` first).

        The channel ends after an ``overflow`` event if the reader falls behind by
        :data:`SUBSCRIBER_BUFFER` events, and when the ``async with`` exits.
        """
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise DaemonError("unavailable", f"there are already {MAX_SUBSCRIBERS} event subscribers")
        sub = _Subscriber(set(kinds) if kinds is not None else None)
        send, receive = trio.open_memory_channel[dict[str, Any]](CHANNEL_BUFFER)
        # Attach before replaying, so nothing published during the replay is missed.
        self._subscribers.add(sub)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._feed, sub, send, since)
                try:
                    yield receive
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._subscribers.discard(sub)
            receive.close()

    async def _feed(
        self, sub: _Subscriber, send: trio.MemorySendChannel[dict[str, Any]], since: int | None
    ) -> None:
        async with send:
            try:
                sub.delivered = await self._replay(sub, send, since) if since is not None else 0
                sub.live = send
                while True:
                    await sub.wakeup.wait()
                    sub.wakeup = trio.Event()
                    while sub.pending:
                        event = sub.pending[0]
                        if event["seq"] > sub.delivered:
                            await send.send(event)
                            sub.delivered = event["seq"]
                        # Popped only once sent: offer() sends directly only when
                        # nothing is pending, so the order holds.
                        sub.pending.popleft()
                    if sub.overflowed:
                        sub.live = None
                        _log.warning("events.subscriber_dropped", resume_since=sub.delivered)
                        await send.send({
                            "seq": sub.delivered,
                            "kind": OVERFLOW,
                            "time": iso_now(),
                            "data": {
                                "reason": f"subscriber fell more than {SUBSCRIBER_BUFFER} events behind",
                                "resume_since": sub.delivered,
                            },
                        })
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the reader went away

    async def _replay(
        self, sub: _Subscriber, send: trio.MemorySendChannel[dict[str, Any]], since: int
    ) -> int:
        delivered = since
        if self._store is None:
            return delivered
        while True:
            # Flushing first makes everything published so far visible to the query.
            await self.flush()
            page = await self._store.run(self._store.sync.events_since, delivered, limit=REPLAY_PAGE)
            if not page:
                return delivered
            for event in page:
                delivered = event["seq"]
                if sub.wants(event["kind"]):
                    await send.send(event)
            if sub.overflowed:
                # Live events piled up during a long replay: keep replaying from the
                # store instead, then take live ones again.
                sub.overflowed = False
                sub.pending.clear()
