"""DID -> peer records (``daemon.p2p.dht``): who may sign them, how long they live, and junk.

Pure functions, so checked exhaustively here; the network side is in
``test_discovery_dht`` and ``test_dht_delivery``.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.p2p import dht
from daemon.p2p.identity import PeerIdentity
from daemon.wallet import NewDID, new_did

PEER = PeerIdentity.generate()
STRANGER = PeerIdentity.generate()


def ed_key(d: NewDID):  # type: ignore[no-untyped-def]
    return next((kid, k) for kid, k in d.keys.items() if k.curve == "Ed25519")


ALICE = new_did("key")
MALLORY = new_did("key")
ALICE_PEER = new_did("peer")
ADDRS = [f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER.peer_id}"]


def record(d: NewDID = ALICE, *, identity: PeerIdentity = PEER, now: float | None = None,
           signer: NewDID | None = None) -> bytes:
    kid, key = ed_key(signer or d)
    return dht.make_record(identity, d.did, kid, key.sign, ADDRS, now=now)


@pytest.mark.parametrize("d", [ALICE, ALICE_PEER], ids=["did:key", "did:peer:2"])
def test_a_record_signed_by_the_did_and_its_peer_is_accepted(d: NewDID) -> None:
    value = record(d)
    parsed = dht.parse_record(value, key=dht.record_key(d.did))
    assert (parsed.did, parsed.peer_id, parsed.addrs) == (d.did, PEER.peer_id, tuple(ADDRS))
    assert parsed.exp - time.time() == pytest.approx(dht.RECORD_LIFETIME, abs=5)
    assert len(dht.record_key(d.did).encode()) <= 50


def test_records_not_signed_by_the_did_are_refused() -> None:
    # Mallory's key, Alice's DID (and Mallory's kid): not an authentication key of Alice.
    kid, key = ed_key(MALLORY)
    body = json.loads(dht.make_record(PEER, MALLORY.did, kid, key.sign, ADDRS))
    for forged in ({**body, "did": ALICE.did}, {**body, "did": ALICE.did, "kid": ed_key(ALICE)[0]}):
        with pytest.raises(dht.RecordError):
            dht.parse_record(json.dumps(forged).encode())
    with pytest.raises(dht.RecordError):
        dht.parse_record(record(ALICE, signer=MALLORY))


def test_tampered_records_are_refused() -> None:
    body = json.loads(record())
    for change in ({"peer_id": STRANGER.peer_id}, {"addrs": ["/ip4/6.6.6.6/tcp/1"]},
                   {"seq": body["seq"] + 1}, {"exp": body["exp"] + 1},
                   {"sig": body["psig"]}, {"psig": body["sig"]}):
        with pytest.raises(dht.RecordError):
            dht.parse_record(json.dumps({**body, **change}).encode())


def test_expiry_and_lifetime() -> None:
    then = time.time() - dht.RECORD_LIFETIME - 1
    with pytest.raises(dht.RecordError, match="expired"):
        dht.parse_record(record(now=then))
    with pytest.raises(dht.RecordError, match="live more"):
        dht.parse_record(record(), now=time.time() - dht.CLOCK_SKEW - 10)
    assert dht.parse_record(record(), now=time.time() + dht.RECORD_LIFETIME - 10)


def test_a_record_filed_under_another_dids_key_is_refused() -> None:
    with pytest.raises(dht.RecordError, match="another DID"):
        dht.parse_record(record(), key=dht.record_key(MALLORY.did))


def test_the_validator_prefers_the_newest_valid_record() -> None:
    validator = dht.RecordValidator()
    key = dht.record_key(ALICE.did)
    old, new = record(now=time.time() - 10), record()
    assert validator.select(key, [old, new]) == 1
    assert validator.select(key, [b"junk", old]) == 1
    with pytest.raises(dht.RecordError):
        validator.validate(key, b"{}")


def test_oversized_records_are_refused_before_parsing() -> None:
    with pytest.raises(dht.RecordError, match="at most"):
        dht.parse_record(b" " * (dht.MAX_RECORD_BYTES + 1))


VALID = record()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=512),
    st.builds(lambda i, b: VALID[:i] + bytes([b]) + VALID[i + 1:],
              st.integers(0, len(VALID) - 1), st.integers(0, 255)),
    st.dictionaries(st.sampled_from(sorted(dht._FIELDS)),
                    st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5)))).map(
        lambda d: json.dumps(d).encode()),
))
def test_junk_is_one_record_error(value: bytes) -> None:
    try:
        parsed = dht.parse_record(value)
    except dht.RecordError:
        return
    assert parsed.did == ALICE.did and parsed.peer_id == PEER.peer_id  # only a harmless byte flip
