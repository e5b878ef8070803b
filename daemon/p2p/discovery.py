"""Peer discovery: mDNS on the LAN, static bootstrap peers, and the Kademlia DHT beyond.

Theory of operation
-------------------
:class:`Discovery` is one trio service next to the node (``daemon.transport``
starts it after the node listens).  It runs up to three things:

- **mDNS** (``[p2p] mdns``, on by default): our own querier/responder
  (:mod:`daemon.p2p.mdns`), which also finds js-libp2p peers.  A peer found
  goes into the node's peerstore with the record's TTL (so a send to its peer
  id needs no address) and into the peer table as ``how="mdns"``; the event
  bus gets ``peer.found`` (``how: "mdns"``, its addresses) the first time and
  ``peer.lost`` (``reason: "expired"`` or ``"goodbye"``) when its TTL runs out
  or it says goodbye.
- **bootstrap** (``[p2p] bootstrap``): every :data:`BOOTSTRAP_CHECK_INTERVAL`
  each bootstrap peer we are not connected to is dialled again (py-libp2p
  dials them once, at start) and put in the DHT's routing table; after a
  (re)connection the routing table is refreshed through it, which is how we
  learn of the peers it knows.
- **the DHT**: py-libp2p's Kademlia (``/ipfs/kad/1.0.0``) in server mode, with
  a validator for our ``/didcomm/`` namespace (:mod:`daemon.p2p.dht`).  Each of
  our DIDs gets a DID -> peer record signed by the DID's key and by our peer
  key (``sign_for`` gives the DID's signer), published when the DID is created
  (the ``did.created`` event), when we first get a DHT neighbour, when our
  addresses change (checked every :data:`NEIGHBOUR_CHECK_INTERVAL`), and every
  :data:`REPUBLISH_INTERVAL` (well within the record's lifetime,
  :data:`daemon.p2p.dht.RECORD_LIFETIME`).

Sending uses it through :meth:`find_addrs`, which the node calls when it has no
address for a peer or every address it had failed (``P2PNode.peer_router``):
the DHT's peer routing (``FIND_NODE`` towards the peer id) first; and
:meth:`lookup_did` fetches and checks a DID's record - which is how the outbox
sender reaches a DID whose document names no libp2p peer (a ``did:key``).
A copy of a record in our own DHT store that has expired is dropped before the
lookup, else py-libp2p would answer from it without asking the network.  Lookups are bounded by
:data:`LOOKUP_TIMEOUT`; nothing a peer sends can make them raise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import structlog
import trio

from . import compat
from .errors import DeliveryError, IdentityError
from .identity import PeerIdentity, parse_peer_id

if TYPE_CHECKING:
    from .dht import DIDRecord
    from .host import P2PNode

#: Seconds between checks that we are connected to every bootstrap peer.
BOOTSTRAP_CHECK_INTERVAL: Final = 5.0
#: Seconds a DHT lookup (peer or DID record) may take.
LOOKUP_TIMEOUT: Final = 10.0
#: Seconds between re-publications of our DID records (they live 24 h in py-libp2p's store).
REPUBLISH_INTERVAL: Final = 600.0
#: Seconds between checks whether the DHT gained its first neighbour.
NEIGHBOUR_CHECK_INTERVAL: Final = 1.0
#: Seconds one publication may take.
PUBLISH_TIMEOUT: Final = 20.0

#: ``sign_for(did)``: the key id of one of ``did``'s authentication keys and a
#: function signing with it, or None if we hold no such key.
SignFor = Callable[[str], "tuple[str, Callable[[bytes], bytes]] | None"]

log = structlog.get_logger("didcommd.p2p.discovery")


class Discovery:
    """mDNS, bootstrap and the DHT for one node (see the module docstring)."""

    def __init__(
        self,
        node: P2PNode,
        config: Any,
        identity: PeerIdentity,
        *,
        peers: Any = None,
        events: Any = None,
        reachable: Callable[[str], None] | None = None,
        own_dids: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
        sign_for: SignFor | None = None,
        mdns_port: int | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.identity = identity
        self.peers = peers
        self.events = events
        self._reachable = reachable
        self._own_dids = own_dids
        self._sign_for = sign_for
        self._mdns_port = mdns_port
        self.mdns: Any = None
        self.dht: Any = None
        self.published = 0
        self.lookups = 0
        self._publish_now = trio.Event()

    # -- what others call ---------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for ``status``."""
        out: dict[str, Any] = {"dids_published": self.published, "dht_lookups": self.lookups}
        if self.dht is not None:
            out["dht_routing_table"] = self.dht.get_routing_table_size()
        if self.mdns is not None:
            out.update(self.mdns.stats())
        return out

    async def find_addrs(self, peer_id: str) -> list[str]:
        """Addresses for ``peer_id`` from the DHT ([] if none within LOOKUP_TIMEOUT)."""
        if self.dht is None:
            return []
        from libp2p.peer.id import ID

        self.lookups += 1
        info = None
        with trio.move_on_after(LOOKUP_TIMEOUT):
            try:
                info = await self.dht.find_peer(ID.from_base58(peer_id))
            except Exception as exc:  # a remote's bad answer must not reach the sender
                log.info("dht.find_peer_failed", peer=peer_id, error=type(exc).__name__)
        if info is None:
            return []
        return [str(a) for a in info.addrs]

    def has_neighbours(self) -> bool:
        """True if the DHT knows at least one other peer (a lookup can succeed)."""
        return self.dht is not None and bool(self.dht.get_routing_table_size())

    async def lookup_did(self, did: str, peer_id: str | None = None) -> DIDRecord | None:
        """The checked DHT record of ``did`` (and of ``peer_id``, if given), or None."""
        from .dht import RecordError, parse_record, record_key

        if self.dht is None:
            return None
        self.lookups += 1
        key = record_key(did)
        local = self.dht.value_store.get(key.encode())
        if local is not None:
            try:
                parse_record(local.value, key=key)
            except RecordError:
                self.dht.value_store.remove(key.encode())  # stale: ask the network
        value = None
        with trio.move_on_after(LOOKUP_TIMEOUT):
            try:
                value = await self.dht.get_value(key)
            except Exception as exc:
                log.info("dht.get_value_failed", did=did, error=type(exc).__name__)
        if value is None:
            return None
        try:
            record = parse_record(value, key=key)
        except RecordError as exc:
            log.info("dht.bad_record", did=did, error=str(exc))
            return None
        if peer_id is not None and record.peer_id != peer_id:
            log.info("dht.record_peer_mismatch", did=did, peer=record.peer_id, expected=peer_id)
            return None
        return record

    async def publish(self, did: str) -> None:
        """Put ``did``'s record (our peer id and addresses) in the DHT."""
        from .dht import RecordError, make_record, record_key

        if self.dht is None or self._sign_for is None:
            return
        signer = self._sign_for(did)
        if signer is None:
            log.info("dht.no_signing_key", did=did)
            return
        kid, sign = signer
        try:
            record = make_record(self.identity, did, kid, sign, self.node.addrs)
        except RecordError as exc:
            log.warning("dht.record_unpublishable", did=did, error=str(exc))
            return
        with trio.move_on_after(PUBLISH_TIMEOUT):
            try:
                await self.dht.put_value(record_key(did), record)
                self.published += 1
                log.info("dht.published", did=did)
            except Exception as exc:  # a peer that resets our PUT must not stop us
                log.info("dht.publish_failed", did=did, error=type(exc).__name__)

    # -- the service --------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run mDNS, bootstrap and the DHT until cancelled."""
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
        from libp2p.tools.anyio_service import background_trio_service

        from .dht import NAMESPACE, RecordValidator
        from .mdns import MDNS

        compat.dht_reads_end_cleanly()
        dht = KadDHT(self.node.host, DHTMode.SERVER)
        dht.register_validator(NAMESPACE, RecordValidator())
        async with background_trio_service(dht), trio.open_nursery() as nursery:
            self.dht = dht
            self.node.peer_router = self.find_addrs
            if self.config.mdns:
                kwargs = {} if self._mdns_port is None else {"port": self._mdns_port}
                self.mdns = MDNS(
                    self.node.peer_id, lambda: self.node.addrs, self._mdns_found, self._mdns_lost,
                    **kwargs,
                )
                await nursery.start(self.mdns.serve)
            nursery.start_soon(self._bootstrap_loop, list(self.config.bootstrap))
            nursery.start_soon(self._publish_loop)
            if self.events is not None:
                await nursery.start(self._watch_new_dids)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self.node.peer_router = None

    # -- mDNS ---------------------------------------------------------------------------

    def _mdns_found(self, peer_id: str, addrs: list[str], ttl: int, new: bool) -> None:
        from libp2p.peer.id import ID
        from multiaddr import Multiaddr

        pid = ID.from_base58(peer_id)
        bare = [Multiaddr(a.rsplit("/p2p/", 1)[0]) for a in addrs]
        self.node.host.get_peerstore().add_addrs(pid, bare, ttl)
        if self.peers is not None:
            self.peers.seen(peer_id, "mdns")
        if new:
            if self._reachable is not None:
                self._reachable(peer_id)
            self._publish_event("peer.found", {"peer_id": peer_id, "how": "mdns", "addrs": addrs})

    def _mdns_lost(self, peer_id: str, reason: str) -> None:
        self._publish_event("peer.lost", {"peer_id": peer_id, "how": "mdns", "reason": reason})

    def _publish_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish(kind, data)

    # -- bootstrap and the DHT ----------------------------------------------------------

    async def _bootstrap_loop(self, addrs: Sequence[str]) -> None:
        from libp2p.peer.id import ID

        targets = []
        for addr in addrs:
            try:
                targets.append((parse_peer_id(addr.rsplit("/p2p/", 1)[1]), addr))
            except (IdentityError, IndexError):
                log.warning("bootstrap.bad_address", addr=addr)
        connected: set[str] = set()
        while targets:
            live = set(self.node.connected_peers())
            for peer_id, addr in targets:
                if peer_id in live and peer_id in connected:
                    continue
                try:
                    await self.node.connect(peer_id, [addr])
                except DeliveryError as exc:
                    connected.discard(peer_id)
                    log.info("bootstrap.unreachable", peer=peer_id, error=str(exc))
                    continue
                connected.add(peer_id)
                if self.peers is not None:
                    self.peers.seen(peer_id, "bootstrap")
                try:
                    await self.dht.add_peer(ID.from_base58(peer_id), skip_server_mode_check=True)
                    with trio.move_on_after(LOOKUP_TIMEOUT):
                        await self.dht.refresh_routing_table()
                except Exception as exc:  # a bootstrap peer's bad answer must not stop us
                    log.info("bootstrap.refresh_failed", peer=peer_id, error=type(exc).__name__)
                log.info("bootstrap.connected", peer=peer_id,
                         routing_table=self.dht.get_routing_table_size())
                self._publish_now.set()
            await trio.sleep(BOOTSTRAP_CHECK_INTERVAL)

    async def _dids(self) -> list[str]:
        if self._own_dids is None:
            return []
        return [d["did"] for d in await self._own_dids() if isinstance(d.get("did"), str)]

    async def _publish_loop(self) -> None:
        """Publish every DID when we get DHT neighbours, when asked, when our
        addresses change, and periodically."""
        had_neighbours = False
        last = -REPUBLISH_INTERVAL
        published_addrs: list[str] = []
        while True:
            size = self.dht.get_routing_table_size()
            due = trio.current_time() - last >= REPUBLISH_INTERVAL
            moved = had_neighbours and self.node.addrs != published_addrs
            if size and (not had_neighbours or due or moved or self._publish_now.is_set()):
                self._publish_now = trio.Event()
                last = trio.current_time()
                published_addrs = self.node.addrs
                if moved:
                    log.info("dht.addresses_changed", addrs=published_addrs)
                for did in await self._dids():
                    await self.publish(did)
            had_neighbours = had_neighbours or bool(size)
            with trio.move_on_after(NEIGHBOUR_CHECK_INTERVAL):
                await self._publish_now.wait()

    async def _watch_new_dids(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.events.subscribe({"did.created"}) as channel:
            task_status.started()
            async for event in channel:
                did = (event.get("data") or {}).get("did")
                if isinstance(did, str) and self.dht.get_routing_table_size():
                    await self.publish(did)
