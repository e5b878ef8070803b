"""DID rotation rules (``protocols.did_rotation``), and from_prior through the real envelope."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import did_rotation as rot
from protocols.did.did_peer import create_did_peer_2
from protocols.did.resolver import default_resolver
from protocols.envelope import pack_encrypted, unpack
from protocols.errors import FromPriorError
from protocols.keys import PrivateKey
from protocols.secrets import InMemorySecrets

NOW = 1_700_000_000


def test_claims_name_the_prior_and_new_did() -> None:
    assert rot.rotation_claims("did:a", "did:b", NOW) == {"sub": "did:b", "iss": "did:a", "iat": NOW}
    with pytest.raises(FromPriorError):
        rot.rotation_claims("did:a", "did:a", NOW)


def test_our_rotation_lifecycle() -> None:
    p = rot.Pairing("did:old", "did:peer")
    assert rot.outbound_claims(p, NOW) is None
    p = rot.begin_rotation(p, "did:new")
    assert p.sending_did == "did:new"
    assert rot.outbound_claims(p, NOW) == {"sub": "did:new", "iss": "did:old", "iat": NOW}
    assert p.accepts_to("did:old") and p.accepts_to("did:new")
    # The peer still writing to the old DID changes nothing.
    assert rot.complete_our_rotation(p, "did:old") == p
    done = rot.complete_our_rotation(p, "did:new")
    assert (done.my_did, done.my_next_did, done.my_retired) == ("did:new", None, ("did:old",))
    assert rot.outbound_claims(done, NOW) is None
    assert done.refuses(sender="did:peer", recipient="did:old") is not None
    assert done.refuses(sender="did:peer", recipient="did:new") is None
    with pytest.raises(FromPriorError):
        rot.begin_rotation(done, "did:old")  # a retired DID is never taken back


def test_their_rotation_is_checked_and_idempotent() -> None:
    p = rot.Pairing("did:me", "did:them")
    r = rot.read_claims({"iss": "did:them", "sub": "did:them2", "iat": NOW}, "did:them2", NOW)
    moved = rot.accept_their_rotation(p, r)
    assert (moved.their_did, moved.their_retired) == ("did:them2", ("did:them",))
    assert rot.accept_their_rotation(moved, r) == moved
    assert moved.refuses(sender="did:them", recipient="did:me") is not None
    stranger = rot.read_claims({"iss": "did:other", "sub": "did:x"}, "did:x", NOW)
    with pytest.raises(FromPriorError):
        rot.accept_their_rotation(p, stranger)


@pytest.mark.parametrize(
    ("claims", "sender"),
    [
        ({"iss": "did:a"}, "did:b"),
        ({"iss": "did:a", "sub": "did:b"}, "did:c"),
        ({"iss": "did:a", "sub": "did:a"}, "did:a"),
        ({"iss": "did:a", "sub": "did:b", "iat": "soon"}, "did:b"),
        ({"iss": "did:a", "sub": "did:b", "iat": True}, "did:b"),
        ({"iss": "did:a", "sub": "did:b", "iat": NOW + rot.MAX_IAT_SKEW_SECONDS + 1}, "did:b"),
        ({"iss": "did:a", "sub": "did:b"}, None),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any], sender: str | None) -> None:
    with pytest.raises(FromPriorError):
        rot.read_claims(claims, sender, NOW)


dids = st.sampled_from([f"did:example:{i}" for i in range(6)])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("begin"), dids),
        st.tuples(st.just("complete"), dids),
        st.tuples(st.just("theirs"), st.tuples(dids, dids)),
    ),
    max_size=20,
)


@given(steps)
def test_random_rotation_sequences_keep_the_pairing_consistent(ops: list[Any]) -> None:
    p = rot.Pairing("did:example:0", "did:example:1")
    for op, arg in ops:
        try:
            if op == "begin":
                p = rot.begin_rotation(p, arg)
            elif op == "complete":
                p = rot.complete_our_rotation(p, arg)
            else:
                prior, new = arg
                p = rot.accept_their_rotation(p, rot.read_claims({"iss": prior, "sub": new}, new, NOW))
        except FromPriorError:
            continue
        # The DIDs in use are never retired ones, and retired lists stay bounded and unique.
        assert p.my_did not in p.my_retired and p.their_did not in p.their_retired
        assert p.my_next_did not in (*p.my_retired, p.my_did)
        assert len(set(p.my_retired)) == len(p.my_retired) <= rot.MAX_RETIRED_DIDS
        assert p.refuses(sender=p.their_did, recipient=p.sending_did) is None


def _peer_did(secrets: dict[str, Any]) -> str:
    ed, x = PrivateKey.generate("Ed25519"), PrivateKey.generate("X25519")
    did = create_did_peer_2([ed.public], [x.public], [])
    doc = default_resolver().resolve(did)
    for vm in doc.verification_methods.values():
        key = ed if vm.id in doc.authentication else x
        secrets[vm.id] = {**key.to_jwk(), "kid": vm.id}
    return did


def test_from_prior_claims_travel_signed_through_the_envelope() -> None:
    keys: dict[str, Any] = {}
    old, new, peer = _peer_did(keys), _peer_did(keys), _peer_did(keys)
    secrets = InMemorySecrets(list(keys.values()))
    resolver = default_resolver()
    message = {"id": "1", "type": "https://didcomm.org/trust-ping/2.0/ping", "from": new, "to": [peer],
               "body": {}, "from_prior": rot.rotation_claims(old, new, NOW)}
    packed = pack_encrypted(message, peer, frm=new, resolver=resolver, secrets=secrets).packed
    result = unpack(packed, resolver=resolver, secrets=secrets, now=NOW)
    assert result.metadata.from_prior == {"sub": new, "iss": old, "iat": NOW}
    assert result.metadata.from_prior_issuer_kid.startswith(old + "#")
    rotation = rot.read_claims(result.metadata.from_prior, result.message["from"], NOW)
    assert rot.accept_their_rotation(rot.Pairing(peer, old), rotation).their_did == new
