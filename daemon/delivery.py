"""The outbox sender: delivers queued messages over libp2p until delivered or expired.

Theory of operation
-------------------
``Agent.message_send`` commits a packed message to the outbox and returns; from
then on it is this module's.  One task, the *claimer*, moves due messages to
``sending`` in batches (:meth:`Agent.outbox_claim`, which also turns messages
past their ``expires_time`` into ``expired`` and reports them) and routes each
one by its recipient's DID document: the first ``DIDCommMessaging`` service
whose endpoint is ``libp2p-peerId:<peer id>`` names the peer, and its
``multiAddrs`` say where to dial.  Each message then gets a small task that
calls :meth:`P2PNode.send`, which returns only once the receiver has committed
the message; only then is it recorded ``delivered``.

Every peer has a *lane*: at most ``delivery.max_in_flight_per_peer`` messages
in flight, a count of consecutive failures and the time before which the peer
is not tried again.  A retryable failure (unreachable, reset, timeout) puts the
message back in the queue with ``next_attempt`` after an exponential backoff
with jitter (``retry_base * 2**(failures-1)``, at most ``retry_max``, then a
random factor between 1/2 and 1, so that many senders do not retry in step).
While a peer has failures only one message probes it at a time, so a dead peer
costs one dial per backoff period, not one per queued message.  A failure that
retrying cannot fix (the message is too large, the recipient has no libp2p
endpoint, the peer speaks no DIDComm protocol) is recorded ``failed``.

A message sent by a local program does not wait for a claim: ``message.send``
inserts it in ``sending`` and hands it here the moment the insert has run,
before the commit's fsync, so the network send overlaps the sender's own fsync
(the reply to ``message.send`` still waits for it).  The one price: if that
``COMMIT`` itself then fails (an I/O error, a full disk), the program is told
the send failed although the peer may have the message, the same uncertainty
as a crash between the commit and the reply.

Nothing here is durable on its own: the store is.  If the daemon stops or
crashes, messages in ``sending`` go back to the queue at the next start
(:meth:`Agent.open`), and a message the receiver committed but whose
acknowledgement we never saw is sent again - the receiver drops the duplicate
(same bytes, or same sender and message id).

Where a DID points at no libp2p peer: a ``did:key`` has no services, so a
message to one goes where a DID document we hold for it says
(``Agent.did_add_known``), else where its owner's signed DHT record says
(:attr:`Sender.dht_lookup`, :mod:`daemon.p2p.dht`; the route is then kept for
:data:`DHT_ROUTE_TTL` seconds, and forgotten when a delivery over it fails).
No record yet is retried with the usual backoff, up to :data:`MAX_DHT_MISSES`
lookups; with no DHT to ask (no neighbours) the message fails at once with
``no libp2p endpoint``.  A recipient whose
endpoint is our own peer id is delivered locally (``message_receive``).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from protocols.errors import DIDCommError

from .config import DeliverySection
from .errors import DaemonError
from .locks import EagerSemaphore
from .logs import get_logger
from .p2p.errors import SHUTTING_DOWN, DeliveryError

#: Most messages claimed from the store per claim.
CLAIM_BATCH: Final = 64
#: Most messages claimed and not yet finished at once (bounds memory and tasks).
MAX_CLAIMED: Final = 1024
#: Seconds between claims when nothing wakes the claimer (retries coming due).
POLL_INTERVAL: Final = 0.5
#: Peers whose lane (backoff state) we keep at most; idle lanes go first.
MAX_LANES: Final = 10_000
#: Recipient DIDs whose route we cache, and for how many seconds.
MAX_ROUTES: Final = 10_000
ROUTE_TTL: Final = 60.0
#: The lower bound of the random factor applied to each backoff delay.
JITTER_MIN: Final = 0.5
#: Longest error text kept with a message.
MAX_ERROR_CHARS: Final = 300

NO_ENDPOINT: Final = "no libp2p endpoint"
#: Seconds a route found in the DHT is used before the record is fetched again.
DHT_ROUTE_TTL: Final = 300.0
#: Consecutive DHT lookups that found no record before a DID's message fails.
MAX_DHT_MISSES: Final = 6

log = get_logger("delivery")


class NoRouteError(Exception):
    """The recipient's DID does not resolve to a libp2p DIDComm endpoint."""


@dataclass(frozen=True)
class Route:
    """Where a recipient DID's messages go."""

    peer_id: str
    multiaddrs: tuple[str, ...]


@dataclass
class Lane:
    """One peer's delivery state."""

    slots: EagerSemaphore
    probe: trio.Lock = field(default_factory=trio.Lock)
    failures: int = 0
    #: trio.current_time() before which the peer is not tried again.
    down_until: float = 0.0
    in_flight: int = 0


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1), with jitter.

    ``rand()`` is uniform in [0, 1); the result is in ``[d * JITTER_MIN, d]`` with
    ``d = min(cap, base * 2 ** (failures - 1))``.
    """
    exponent = min(max(failures, 1) - 1, 64)  # 2**64 * base is past any cap
    delay = min(cap, base * 2.0**exponent)
    return delay * (JITTER_MIN + (1.0 - JITTER_MIN) * rand())


def route_for(doc: Any) -> Route | None:
    """The first libp2p endpoint among a DID document's DIDComm services, or None."""
    for service in doc.didcomm_services():
        for endpoint in service.endpoints:
            peer_id = endpoint.libp2p_peer_id
            if peer_id:
                return Route(peer_id, tuple(endpoint.multiaddrs))
    return None


class Sender:
    """The outbox sender task (see the module docstring)."""

    def __init__(
        self,
        agent: Any,
        node: Any,
        settings: DeliverySection,
        *,
        peers: Any = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.agent = agent
        self.node = node
        self.settings = settings
        self.peers = peers
        self._rand = rand
        self._wakeup = trio.Event()
        self._room = trio.Event()
        self._claimed = 0
        self._lanes: OrderedDict[str, Lane] = OrderedDict()
        self._routes: OrderedDict[str, tuple[float, Route]] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        #: ``async (did) -> Route | None``: the DID's route from its DHT record
        #: (None: no record found); raises NoRouteError when there is no DHT to
        #: ask.  Set by ``daemon.transport`` once discovery runs.
        self.dht_lookup: Callable[[str], Awaitable[Route | None]] | None = None
        self._dht_misses: OrderedDict[str, int] = OrderedDict()
        self._dht_locks: dict[str, trio.Lock] = {}
        self._from_dht: set[str] = set()
        self.delivered = 0
        self.retried = 0
        self.failed = 0

    # -- what others call ------------------------------------------------------------

    def wake(self) -> None:
        """A message was queued (or a peer came back): claim now rather than at the next poll."""
        self._wakeup.set()

    def reserve(self) -> bool:
        """Take a slot for a message its sender will :meth:`hand` over (False: full, let the
        claimer take it later).  Each reservation ends in :meth:`hand` or :meth:`release`."""
        if self._nursery is None or self._claimed >= MAX_CLAIMED:
            return False
        self._claimed += 1
        return True

    def release(self) -> None:
        """Give back a reserved slot whose message was not written after all."""
        self._finished()

    def hand(self, row: dict[str, Any]) -> None:
        """Deliver a message written straight into ``sending`` (see ``Agent.message_send``).

        Called as soon as the outbox insert ran, before its commit is durable, so
        the send overlaps the fsync; the ``delivered`` record is queued after the
        insert, so it cannot commit without it.
        """
        nursery = self._nursery
        try:
            if nursery is None:
                raise RuntimeError("the sender has stopped")
            nursery.start_soon(self._deliver, row)
        except RuntimeError:
            # Stopping: the row stays in 'sending' and the next start queues it again.
            self._finished()

    def stats(self) -> dict[str, Any]:
        """Counters for ``status``."""
        return {
            "in_flight": self._claimed,
            "delivered": self.delivered,
            "retried": self.retried,
            "failed": self.failed,
            "peers_backing_off": sum(1 for lane in self._lanes.values() if lane.failures),
        }

    def peer_reachable(self, peer_id: str) -> None:
        """The peer just reached us: end its backoff and try its queue again now.

        Its queued messages carry the retry time of their last failure (minutes,
        after a long absence; and from before our own restart, when we have no
        lane for the peer yet): they are made due, else a peer that restarted
        would wait out a backoff meant for a peer that is down.
        """
        lane = self._lanes.get(peer_id)
        if lane is not None and not lane.failures:
            return
        lane = self._lane(peer_id)
        lane.failures = 0
        lane.down_until = 0.0
        self._make_due(peer_id)
        self.wake()

    def _make_due(self, peer_id: str) -> None:
        nursery = self._nursery
        if nursery is None:
            return
        try:
            nursery.start_soon(self._due_now, peer_id)
        except RuntimeError:
            return  # the sender is stopping: the next start claims them

    async def _due_now(self, peer_id: str) -> None:
        """Queued messages whose recipient is ``peer_id`` become due now."""
        store = self.agent.store
        now = self.agent.now()
        try:
            waiting = await store.run(store.sync.outbox_waiting_recipients, now, limit=MAX_ROUTES)
            dids = []
            for did in waiting:
                try:
                    if self._route(did).peer_id == peer_id:
                        dids.append(did)
                except NoRouteError:
                    continue
            # Relaxed: a retry time lost to a power cut only means waiting as before.
            if dids and await store.run_relaxed(store.sync.outbox_due_now, dids, now):
                self.wake()
        except DaemonError as exc:
            log.info("delivery.due_now_failed", peer=peer_id, error=exc.message)

    # -- the task --------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and deliver until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._claim_loop(nursery)
        finally:
            self._nursery = None

    async def _claim_loop(self, nursery: trio.Nursery) -> None:
        while True:
            self._wakeup = trio.Event()
            room = MAX_CLAIMED - self._claimed
            if room <= 0:
                self._room = trio.Event()
                await self._room.wait()
                continue
            limit = min(CLAIM_BATCH, room)
            rows = await self.agent.outbox_claim(limit=limit)
            for row in rows:
                self._claimed += 1
                nursery.start_soon(self._deliver, row)
            if len(rows) == limit:
                await trio.sleep(0)  # there may be more due: claim again, but let others run
                continue
            with trio.move_on_after(POLL_INTERVAL):
                await self._wakeup.wait()

    def _finished(self) -> None:
        self._claimed -= 1
        self._room.set()

    def _route(self, did: str) -> Route:
        now = trio.current_time()
        cached = self._routes.get(did)
        if cached is not None and cached[0] > now:
            return cached[1]
        route = None
        try:
            route = route_for(self.agent.resolver.resolve(did))
        except DIDCommError as exc:
            raise NoRouteError(f"cannot resolve the recipient {did}: {exc.message}") from None
        if route is None:
            # A did:key (computed, service-less) may still have a stored document.
            try:
                route = route_for(self.agent.known_docs.resolve(did))
            except DIDCommError:
                route = None
        if route is None:
            raise NoRouteError(f"{NO_ENDPOINT}: {did} has no DIDCommMessaging libp2p-peerId service")
        self._routes[did] = (now + ROUTE_TTL, route)
        self._routes.move_to_end(did)
        while len(self._routes) > MAX_ROUTES:
            self._routes.popitem(last=False)
        return route

    async def _dht_route(self, row: dict[str, Any], no_route: NoRouteError) -> Route | None:
        """The route from the recipient's DHT record; None once the message has been
        failed or put back for a retry."""
        did = row["to"]
        if self.dht_lookup is None:
            await self._fail(row["id"], str(no_route))
            return None
        lock = self._dht_locks.setdefault(did, trio.Lock())
        try:
            async with lock:  # one lookup per DID at a time; the others use its answer
                cached = self._routes.get(did)
                if cached is not None and cached[0] > trio.current_time():
                    return cached[1]
                try:
                    route = await self.dht_lookup(did)
                except NoRouteError:
                    route = None
                    missing = True
                else:
                    missing = False
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._dht_locks.pop(did, None)
        if missing:
            await self._fail(row["id"], str(no_route))
            return None
        if route is None:
            misses = self._dht_misses.pop(did, 0) + 1
            if misses >= MAX_DHT_MISSES:
                await self._fail(row["id"], f"{no_route}, and no DHT record after {misses} lookups")
                return None
            self._dht_misses[did] = misses
            while len(self._dht_misses) > MAX_ROUTES:
                self._dht_misses.popitem(last=False)
            delay = backoff_delay(misses, self.settings.retry_base, self.settings.retry_max, self._rand)
            await self._retry(row["id"], delay, f"{no_route}; no DHT record yet")
            return None
        self._dht_misses.pop(did, None)
        self._routes[did] = (trio.current_time() + DHT_ROUTE_TTL, route)
        self._routes.move_to_end(did)
        self._from_dht.add(did)
        while len(self._routes) > MAX_ROUTES:
            self._routes.popitem(last=False)
        if len(self._from_dht) > MAX_ROUTES:
            self._from_dht &= set(self._routes)
        log.info("delivery.dht_route", did=did, peer=route.peer_id)
        return route

    def _lane(self, peer_id: str) -> Lane:
        lane = self._lanes.get(peer_id)
        if lane is None:
            lane = self._lanes[peer_id] = Lane(EagerSemaphore(trio.Semaphore(self.settings.max_in_flight_per_peer)))
            if len(self._lanes) > MAX_LANES:
                for key, old in list(self._lanes.items()):
                    if old.in_flight == 0 and len(self._lanes) > MAX_LANES:
                        del self._lanes[key]
        self._lanes.move_to_end(peer_id)
        return lane

    async def _deliver(self, row: dict[str, Any]) -> None:
        msg_id = row["id"]
        try:
            try:
                route = self._route(row["to"])
            except NoRouteError as exc:
                dht_route = await self._dht_route(row, exc)
                if dht_route is None:
                    return
                route = dht_route
            if route.peer_id == self.node.peer_id:
                await self._deliver_locally(row)
                return
            lane = self._lane(route.peer_id)
            lane.in_flight += 1
            try:
                async with lane.slots:
                    if lane.failures:
                        async with lane.probe:
                            await self._attempt(row, route, lane)
                    else:
                        await self._attempt(row, route, lane)
            finally:
                lane.in_flight -= 1
        except DaemonError as exc:
            # The store refused a transition (e.g. the row expired meanwhile): the
            # row's state in the store is the truth; nothing to undo here.
            log.info("delivery.transition_refused", msg_id=msg_id, error=exc.message)
        finally:
            self._finished()

    async def _attempt(self, row: dict[str, Any], route: Route, lane: Lane) -> None:
        msg_id = row["id"]
        if row.get("expires") is not None and row["expires"] <= self.agent.now():
            self.wake()  # the next claim moves it to expired
            return
        now = trio.current_time()
        if lane.down_until > now:
            await self._retry(msg_id, lane.down_until - now, "the peer is unreachable; waiting to retry")
            return
        started = time.perf_counter()
        if self.peers is not None:
            # Before the dial: the table's connection poll must not see this
            # connection first and file the peer as one that came to us.
            self.peers.seen(route.peer_id, "outbound")
        try:
            await self.node.send(route.peer_id, route.multiaddrs, row["packed"])
        except DeliveryError as exc:
            if exc.reason == SHUTTING_DOWN:
                return  # the row stays in 'sending' and is queued again at the next start
            if not exc.retryable:
                await self._fail(msg_id, str(exc))
                return
            if row["to"] in self._from_dht:  # the record may be stale: fetch it again
                self._routes.pop(row["to"], None)
            lane.failures += 1
            delay = backoff_delay(
                lane.failures, self.settings.retry_base, self.settings.retry_max, self._rand
            )
            lane.down_until = trio.current_time() + delay
            log.info(
                "delivery.retry", msg_id=msg_id, peer=route.peer_id, reason=exc.reason,
                failures=lane.failures, delay_s=round(delay, 3),
            )
            await self._retry(msg_id, delay, str(exc))
            return
        elapsed = time.perf_counter() - started
        if lane.failures:
            lane.failures = 0
            lane.down_until = 0.0
            self._make_due(route.peer_id)  # its other messages wait for their retry time
            self.wake()
        if self.peers is not None:
            self.peers.delivered_to(route.peer_id, elapsed)
        await self.agent.outbox_delivered(msg_id)
        self.delivered += 1

    async def _deliver_locally(self, row: dict[str, Any]) -> None:
        await self.agent.message_receive(row["packed"], transport="local")
        await self.agent.outbox_delivered(row["id"])
        self.delivered += 1

    async def _retry(self, msg_id: str, delay: float, error: str) -> None:
        # Outbox times are whole seconds: round the delay up (the lane's own
        # float deadline keeps a retry that comes due early from dialling).
        retry_at = self.agent.now() + max(1, math.ceil(delay))
        await self.agent.outbox_retry(msg_id, retry_at=retry_at, error=error[:MAX_ERROR_CHARS])
        self.retried += 1

    async def _fail(self, msg_id: str, error: str) -> None:
        log.warning("delivery.failed", msg_id=msg_id, error=error)
        await self.agent.outbox_failed(msg_id, error=error[:MAX_ERROR_CHARS])
        self.failed += 1
