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

``how`` records the first way a peer became known: ``bootstrap``, ``connect``
(asked by a local client), ``outbound`` (we delivered to it, from a DID
document), ``inbound`` (it connected to us), or a discovery mechanism's name.
Addresses come from the node's peerstore when the table is listed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
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
            await self.events.flush()

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
