"""The DHT side of discovery, with two real libp2p nodes on loopback (mDNS off).

B knows only A (its bootstrap peer).  B publishes a signed DID record and
reads it back, checked, under the DID's key; asking for it as another peer's
record, or for a DID nobody published, gives None; a junk value under a DID's
key is refused, never raised; and the DHT's peer routing gives A B's addresses.
(Storing the record at *other* peers fails with py-libp2p 0.8.1 as wired here:
see the report; the lookup path is the same code.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import trio

from daemon.p2p import dht
from daemon.p2p.discovery import Discovery
from daemon.p2p.host import P2PNode, serve
from daemon.p2p.identity import PeerIdentity

#: Seconds for the two DHTs to learn of each other.
NEIGHBOUR_DEADLINE = 15.0


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False


async def drop(packed: bytes, peer_id: str) -> None:
    """on_message for nodes that receive nothing in these tests."""


async def test_did_records_and_peer_routing_through_the_dht() -> None:
    id_a, id_b = PeerIdentity.generate(), PeerIdentity.generate()
    async with trio.open_nursery() as nursery:
        a: P2PNode = await nursery.start(partial(serve, Config(), id_a, drop))
        config_b = Config(bootstrap=[a.addrs[0]])
        b: P2PNode = await nursery.start(partial(serve, config_b, id_b, drop))
        disc_a, disc_b = Discovery(a, Config(), id_a), Discovery(b, config_b, id_b)
        await nursery.start(disc_a.serve)
        await nursery.start(disc_b.serve)
        with trio.fail_after(NEIGHBOUR_DEADLINE):
            while not (disc_a.dht.get_routing_table_size() and disc_b.dht.get_routing_table_size()):
                await trio.sleep(0.05)

        did = "did:example:bob"
        await disc_b.publish(did)
        record = await disc_b.lookup_did(did, b.peer_id)
        assert record is not None and record.peer_id == b.peer_id and record.did == did
        assert set(record.addrs) == set(b.addrs)
        assert await disc_b.lookup_did(did, a.peer_id) is None  # not A's record
        assert await disc_a.lookup_did("did:example:nobody") is None

        # A junk value under a DID's key (as a hostile peer could hand us) is refused.
        disc_a.dht.value_store.put(dht.record_key("did:example:junk").encode(), b'{"v": 1}')
        assert await disc_a.lookup_did("did:example:junk") is None

        assert set(await disc_a.find_addrs(b.peer_id)) & set(b.addrs)
        nursery.cancel_scope.cancel()
