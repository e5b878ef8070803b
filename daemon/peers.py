"""The peer table: which libp2p peers we know, how we found them, and when we last saw them.

Theory of operation
-------------------
The table is fed from three sides:

- *connections*: :meth:`PeerTable.watch` compares the node's connected peers
  with the previous look every :data:`POLL_SECONDS` and publishes
  ``peer.found`` for a new connection and ``peer.lost`` for one that ended
  (py-libp2p has no connection events we can rely on across its versions; a
  poll of a set is cheap and cannot miss a state, only a flap shorter than it);
- *traffic*: the inbound path calls :meth:`seen` for every message, the outbox
  sender :meth:`delivered_to` with each delivery's round-trip time (that is the
  ``latency`` shown: send until the receiver's commit was acknowledged);
- *commands*: :meth:`connect` (``peers.connect MULTIADDR``) dials a peer and
  measures the dial; discovery (mDNS, DHT, bootstrap) calls :meth:`seen` with
  its own ``how``.

The table outlives the process: :meth:`PeerTable.keep_saved` writes the
:data:`MAX_SAVED_PEERS` most recently seen peers with their addresses (the
store's ``meta`` record :data:`SAVED_PEERS_RECORD`) every
:data:`SAVE_INTERVAL` seconds when something changed, and once more at
shutdown; at the next start :meth:`PeerTable.restore` reads them back and
:meth:`PeerTable.redial` dials them, :data:`REDIAL_CONCURRENCY` at a time.  A
peer that was backing off from us (its outbox waiting minutes for its next
retry) sees our connection and delivers at once, and the peers we queued for
are reached without waiting for our own retry times.

``how`` records the first way a peer became known: ``bootstrap``, ``connect``
(asked by a local client), ``outbound`` (we delivered to it, from a DID
document), ``inbound`` (it connected to us), or a discovery mechanism's name.
Addresses come from the node's peerstore when the table is listed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import trio

from .errors import DaemonError, InvalidParamsError
from .logs import get_logger
from .p2p.errors import DeliveryError, IdentityError
from .p2p.identity import parse_peer_id

#: Seconds between looks at the node's connections.
POLL_SECONDS: Final = 0.5
#: Peers kept at most (the longest-unseen disconnected ones are forgotten first).
MAX_PEERS: Final = 10_000
#: Addresses listed per peer.
MAX_LISTED_ADDRS: Final = 16
#: Seconds ``peers.connect`` may take.
CONNECT_TIMEOUT: Final = 15.0
#: Longest multiaddr ``peers.connect`` accepts.
MAX_MULTIADDR_CHARS: Final = 1024
#: Peers remembered across restarts (the most recently seen).
MAX_SAVED_PEERS: Final = 256
#: Seconds between saves of the table (only when it changed).
SAVE_INTERVAL: Final = 30.0
#: Peers dialled at once at start-up.
REDIAL_CONCURRENCY: Final = 8
#: Seconds one start-up dial may take.
REDIAL_TIMEOUT: Final = 10.0
#: Name of the saved table in the store's ``meta`` table.
SAVED_PEERS_RECORD: Final = "p2p.peers"
#: Ways a peer can have been found (anything else read back becomes "saved").
HOW_VALUES: Final = frozenset({"bootstrap", "connect", "outbound", "inbound", "mdns", "dht"})

log = get_logger("peers")


@dataclass
class PeerEntry:
    """What we know about one peer."""

    peer_id: str
    how: str
    first_seen: float
    last_seen: float
    connected: bool = False
    latency_ms: float | None = None


class PeerTable:
    """Known peers and the ``peer.found`` / ``peer.lost`` events (see the module docstring)."""

    def __init__(
        self,
        node: Any,
        events: Any,
        *,
        bootstrap: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        on_connected: Callable[[str], None] | None = None,
    ) -> None:
        self.node = node
        self.events = events
        self._clock = clock
        self._peers: OrderedDict[str, PeerEntry] = OrderedDict()
        self._bootstrap = {addr.rsplit("/p2p/", 1)[-1] for addr in bootstrap if "/p2p/" in addr}
        self._on_connected = on_connected
        #: Bumped by every change worth saving (see :meth:`keep_saved`).
        self.version = 0

    # -- feeding the table ---------------------------------------------------------

    def seen(self, peer_id: str, how: str) -> PeerEntry:
        """Note that ``peer_id`` was seen now (found by ``how`` if it is new)."""
        now = self._clock()
        entry = self._peers.get(peer_id)
        if entry is None:
            if peer_id in self._bootstrap:
                how = "bootstrap"
            entry = self._peers[peer_id] = PeerEntry(peer_id, how, now, now)
            self._prune()
        self.version += 1
        entry.last_seen = now
        self._peers.move_to_end(peer_id)
        return entry

    def delivered_to(self, peer_id: str, seconds: float) -> None:
        """A delivery to ``peer_id`` was acknowledged after ``seconds``."""
        self.seen(peer_id, "outbound").latency_ms = round(seconds * 1000, 3)

    def _prune(self) -> None:
        if len(self._peers) <= MAX_PEERS:
            return
        for peer_id, entry in list(self._peers.items()):
            if len(self._peers) <= MAX_PEERS:
                break
            if not entry.connected:
                del self._peers[peer_id]

    async def watch(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish ``peer.found`` / ``peer.lost`` as connections come and go, until cancelled."""
        task_status.started()
        while True:
            await self.poll()
            await trio.sleep(POLL_SECONDS)

    async def poll(self) -> None:
        """Compare the node's connections with the table once."""
        connected = set(self.node.connected_peers())
        changed = False
        for peer_id in connected:
            entry = self._peers.get(peer_id)
            if entry is None or not entry.connected:
                entry = self.seen(peer_id, "inbound")
                entry.connected = True
                changed = True
                self.events.publish("peer.found", {"peer_id": peer_id, "how": entry.how})
                log.info("peer.found", peer=peer_id, how=entry.how)
                if self._on_connected is not None:
                    self._on_connected(peer_id)
            else:
                entry.last_seen = self._clock()
        for peer_id, entry in self._peers.items():
            if entry.connected and peer_id not in connected:
                entry.connected = False
                changed = True
                self.events.publish("peer.lost", {"peer_id": peer_id})
                log.info("peer.lost", peer=peer_id)
        if changed:
            self.version += 1
            await self.events.flush()

    # -- across restarts --------------------------------------------------------------

    def saved(self) -> list[dict[str, Any]]:
        """The most recently seen peers that have addresses, as a storable list."""
        out: list[dict[str, Any]] = []
        for entry in reversed(self._peers.values()):
            if len(out) >= MAX_SAVED_PEERS:
                break
            addrs = self._addrs(entry.peer_id)
            if entry.peer_id == self.node.peer_id or not addrs:
                continue
            out.append({"peer_id": entry.peer_id, "how": entry.how, "first_seen": entry.first_seen,
                        "last_seen": entry.last_seen, "addrs": addrs})
        return out

    def restore(self, saved: Any) -> list[tuple[str, list[str]]]:
        """Put saved peers back in the table (not connected); their ``(peer id, addrs)``.

        The record is our own, but read defensively: a damaged entry is skipped.
        """
        targets: list[tuple[str, list[str]]] = []
        for item in saved[:MAX_SAVED_PEERS] if isinstance(saved, list) else []:
            try:
                peer_id = parse_peer_id(item["peer_id"])
                addrs = [a for a in item["addrs"] if isinstance(a, str) and len(a) <= MAX_MULTIADDR_CHARS]
                first, last = float(item["first_seen"]), float(item["last_seen"])
            except (IdentityError, KeyError, TypeError, ValueError):
                continue
            if peer_id == self.node.peer_id or peer_id in self._peers or not addrs:
                continue
            how = item.get("how") if item.get("how") in HOW_VALUES else "saved"
            self._peers[peer_id] = PeerEntry(peer_id, how, first, last)
            self._peers.move_to_end(peer_id, last=False)  # older than anything seen from now on
            targets.append((peer_id, addrs[:MAX_LISTED_ADDRS]))
        return targets

    async def redial(self, targets: list[tuple[str, list[str]]]) -> int:
        """Dial ``targets``, :data:`REDIAL_CONCURRENCY` at a time; how many answered."""
        limiter = trio.CapacityLimiter(REDIAL_CONCURRENCY)
        reached = 0

        async def dial(peer_id: str, addrs: list[str]) -> None:
            nonlocal reached
            async with limiter:
                with trio.move_on_after(REDIAL_TIMEOUT):
                    try:
                        await self.node.connect(peer_id, addrs)
                    except DeliveryError as exc:
                        log.info("peer.redial_failed", peer=peer_id, error=str(exc))
                        return
                    reached += 1
                    log.info("peer.redialled", peer=peer_id)

        async with trio.open_nursery() as nursery:
            for peer_id, addrs in targets:
                nursery.start_soon(dial, peer_id, addrs)
        if targets:
            await self.poll()
        return reached

    async def keep_saved(
        self,
        save: Callable[[list[dict[str, Any]]], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Save the table every :data:`SAVE_INTERVAL` when it changed, and when cancelled."""
        saved_version = self.version
        task_status.started()
        try:
            while True:
                await trio.sleep(SAVE_INTERVAL)
                if self.version != saved_version:
                    saved_version = self.version
                    await self._save(save)
        finally:
            if self.version != saved_version:
                with trio.CancelScope(shield=True), trio.move_on_after(REDIAL_TIMEOUT):
                    await self._save(save)

    async def _save(self, save: Callable[[list[dict[str, Any]]], Awaitable[None]]) -> None:
        try:
            await save(self.saved())
        except DaemonError as exc:  # a full disk must not stop the transport
            log.warning("peer.table_not_saved", error=exc.message)

    # -- what the control socket asks ---------------------------------------------------

    def _addrs(self, peer_id: str) -> list[str]:
        try:
            from libp2p.peer.id import ID

            addrs = self.node.host.get_peerstore().addrs(ID.from_base58(peer_id))
        except Exception:  # PeerStoreError (no addresses), or a peer id py-libp2p refuses
            return []
        return [str(a) for a in list(addrs)[:MAX_LISTED_ADDRS]]

    def list(self) -> list[dict[str, Any]]:
        """Every known peer, most recently seen first."""
        return [
            {
                "peer_id": e.peer_id,
                "addrs": self._addrs(e.peer_id),
                "how": e.how,
                "connected": e.connected,
                "first_seen": round(e.first_seen, 3),
                "last_seen": round(e.last_seen, 3),
                "latency_ms": e.latency_ms,
            }
            for e in reversed(self._peers.values())
        ]

    async def connect(self, multiaddr: str) -> dict[str, Any]:
        """Dial the peer at ``multiaddr`` (ending in ``/p2p/<peer id>``); its table entry."""
        if not isinstance(multiaddr, str) or not 0 < len(multiaddr) <= MAX_MULTIADDR_CHARS:
            raise InvalidParamsError(f"multiaddr must be a string of at most {MAX_MULTIADDR_CHARS} characters")
        if "/p2p/" not in multiaddr:
            raise InvalidParamsError(f"{multiaddr!r} must end with /p2p/<peer id>")
        peer_id = multiaddr.rsplit("/p2p/", 1)[1]
        try:
            parse_peer_id(peer_id)
        except IdentityError as exc:
            raise InvalidParamsError(f"{multiaddr!r}: {exc}") from None
        if peer_id == self.node.peer_id:
            raise InvalidParamsError("that is our own peer id")
        # P2PNode has no public "connect" yet; its _connect dials the given
        # addresses first, under the node's per-peer dial lock and timeouts.
        connect = getattr(self.node, "connect", None) or self.node._connect
        started = time.perf_counter()
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                await connect(peer_id, [multiaddr])
        except DeliveryError as exc:
            raise DaemonError("unavailable", str(exc)) from None
        except trio.TooSlowError:
            raise DaemonError("unavailable", f"no connection to {peer_id} within {CONNECT_TIMEOUT:g} s") from None
        entry = self.seen(peer_id, "connect")
        entry.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        await self.poll()
        return next(p for p in self.list() if p["peer_id"] == peer_id)
