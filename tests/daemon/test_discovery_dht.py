"""The DHT side of discovery, with three real libp2p nodes on loopback (mDNS off).

A and B know only C (their bootstrap peer).  A publishes the record of its
did:key, signed by the DID's key and its peer key; the record is stored at C
(a real PUT_VALUE over the network: py-libp2p 0.8.1 reset each DHT stream at
its end until ``compat.dht_reads_end_cleanly``), and B, which knows only the
DID, fetches and checks it.  Forged, tampered, expired and misfiled records are
refused by the storing node's validator (also when sent as a real PUT_VALUE)
and by the reader, never raised; the DHT's peer routing gives B A's
addresses; and when A starts listening on another address, its record is
republished with it.  The record format itself is
checked property-style in ``test_dht_records``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial

import trio

from daemon.p2p import dht
from daemon.p2p.discovery import Discovery
from daemon.p2p.host import P2PNode, serve
from daemon.p2p.identity import PeerIdentity
from daemon.wallet import NewDID, new_did

#: Seconds for the DHTs to learn of each other.
NEIGHBOUR_DEADLINE = 15.0


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False


async def drop(packed: bytes, peer_id: str) -> None:
    """on_message for nodes that receive nothing in these tests."""


def signer_for(*dids: NewDID):  # type: ignore[no-untyped-def]
    """A ``sign_for`` holding the Ed25519 keys of ``dids``."""
    keys = {d.did: next((kid, k) for kid, k in d.keys.items() if k.curve == "Ed25519") for d in dids}

    def sign_for(did: str):  # type: ignore[no-untyped-def]
        if did not in keys:
            return None
        kid, key = keys[did]
        return kid, key.sign

    return sign_for


async def test_a_did_record_travels_through_a_third_node() -> None:
    id_a, id_b, id_c = PeerIdentity.generate(), PeerIdentity.generate(), PeerIdentity.generate()
    alice = new_did("key")
    async with trio.open_nursery() as nursery:
        c: P2PNode = await nursery.start(partial(serve, Config(), id_c, drop))
        config = Config(bootstrap=[c.addrs[0]])
        a: P2PNode = await nursery.start(partial(serve, config, id_a, drop))
        b: P2PNode = await nursery.start(partial(serve, config, id_b, drop))
        disc_c = Discovery(c, Config(), id_c)
        async def own_dids() -> list[dict[str, str]]:
            return [{"did": alice.did}]

        disc_a = Discovery(a, config, id_a, sign_for=signer_for(alice), own_dids=own_dids)
        disc_b = Discovery(b, config, id_b)
        for d in (disc_c, disc_a, disc_b):
            await nursery.start(d.serve)
        with trio.fail_after(NEIGHBOUR_DEADLINE):
            while not (disc_a.has_neighbours() and disc_b.has_neighbours()):
                await trio.sleep(0.05)
        # B was told of C alone (its bootstrap); its DHT may still meet A on its
        # own, through C (a routing-table refresh), as a DHT should: when that
        # happens depends on the machine's speed, so nothing here relies on it.
        # C holding the record is asserted below.

        await disc_a.publish(alice.did)
        key = dht.record_key(alice.did)
        assert len(key.encode()) <= 50  # py-libp2p's FIND_NODE limit for a non-peer-id key
        stored = disc_c.dht.value_store.get(key.encode())
        assert stored is not None, "C did not store A's record"
        assert dht.parse_record(stored.value, key=key).peer_id == a.peer_id

        record = await disc_b.lookup_did(alice.did)
        assert record is not None and record.peer_id == a.peer_id and record.did == alice.did
        assert set(record.addrs) == set(a.addrs)
        assert await disc_b.lookup_did(alice.did, c.peer_id) is None  # not C's record
        assert await disc_b.lookup_did(new_did("key").did) is None  # nobody published it

        # A forger with its own DID key and peer key claims Alice's DID: the
        # record's kid is not Alice's, so C refuses to store it and B to use it.
        mallory = new_did("key")
        kid, sign = signer_for(mallory)(mallory.did)
        body = json.loads(dht.make_record(id_c, mallory.did, kid, sign, c.addrs))
        forged = json.dumps({**body, "did": alice.did}).encode()
        assert not disc_c.dht.validator.select(key, [stored.value, forged])  # never wins
        # Sent as a real PUT_VALUE (py-libp2p's own RPC, as any DHT node would),
        # over a stored record or into an empty slot, C refuses it.
        from libp2p.peer.id import ID

        victim = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
        for target, value in ((key, forged),
                              (dht.record_key(victim), json.dumps({**body, "did": victim}).encode())):
            stored_before = disc_c.dht.value_store.get(target.encode())
            ok = await disc_b.dht.value_store._store_at_peer(ID.from_base58(c.peer_id), target.encode(), value)
            assert not ok
            after = disc_c.dht.value_store.get(target.encode())
            assert (after and after.value) == (stored_before and stored_before.value)
        # A hostile node can still hand it out from its store: the reader refuses it.
        disc_b.dht.value_store.put(key.encode(), forged)
        assert await disc_b.lookup_did(alice.did) is not None  # the bad copy was dropped
        tampered = json.dumps({**json.loads(stored.value), "peer_id": c.peer_id}).encode()
        disc_b.dht.value_store.put(key.encode(), tampered)
        assert (await disc_b.lookup_did(alice.did)).peer_id == a.peer_id  # type: ignore[union-attr]

        # The DHT's peer routing finds A's addresses for B.
        assert set(await disc_b.find_addrs(a.peer_id)) & set(a.addrs)

        # A listens on one more address: its record is republished with it.
        from multiaddr import Multiaddr

        # (127.0.0.2: py-libp2p keys listeners by the address asked for.)
        await a.host.get_network().listen(Multiaddr("/ip4/127.0.0.2/tcp/0"))
        assert len(a.addrs) == 2
        with trio.fail_after(NEIGHBOUR_DEADLINE):
            while True:
                now = disc_c.dht.value_store.get(key.encode())
                if now is not None and set(dht.parse_record(now.value).addrs) == set(a.addrs):
                    break
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
