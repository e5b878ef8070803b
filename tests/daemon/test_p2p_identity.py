"""The persistent libp2p identity: spec format, py-libp2p agreement, persistence."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.p2p.errors import IdentityError
from daemon.p2p.identity import (
    PeerIdentity,
    load_or_create_identity,
    parse_peer_id,
    peer_id_from_public_key,
)

# libp2p specs, peer-ids/peer-ids.md "Test vectors": an Ed25519 PrivateKey
# protobuf (Data = seed || public key) and its PublicKey protobuf.
SPEC_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_PUBLIC = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SPEC_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def test_spec_test_vector() -> None:
    identity = PeerIdentity.from_bytes(SPEC_PRIVATE)
    assert identity.to_bytes() == SPEC_PRIVATE
    assert identity.public_key == SPEC_PUBLIC[4:]
    assert identity.peer_id == SPEC_PEER_ID


def test_peer_id_matches_py_libp2p() -> None:
    from libp2p.crypto.serialization import deserialize_private_key
    from libp2p.peer.id import ID

    for _ in range(5):
        identity = PeerIdentity.generate()
        key_pair = identity.libp2p_key_pair()
        assert str(ID.from_pubkey(key_pair.public_key)) == identity.peer_id
        assert key_pair.public_key.serialize() == SPEC_PUBLIC[:4] + identity.public_key
        # py-libp2p's own 32-byte format loads too, and is rewritten by us.
        legacy = key_pair.private_key.serialize()
        assert len(legacy) == 4 + 32
        assert PeerIdentity.from_bytes(legacy) == identity
        assert deserialize_private_key(legacy).get_public_key() == key_pair.public_key


async def test_load_or_create_persists_the_same_peer_id() -> None:
    stored: dict[str, bytes] = {}
    first = await load_or_create_identity(lambda: stored.get("k"), lambda b: stored.update(k=b))
    assert len(stored["k"]) == 68 and stored["k"][:4] == b"\x08\x01\x12\x40"
    again = await load_or_create_identity(lambda: stored.get("k"), lambda b: stored.update(k=b))
    assert again.peer_id == first.peer_id


async def test_async_callbacks_and_legacy_rewrite() -> None:
    legacy = PeerIdentity.from_bytes(SPEC_PRIVATE).libp2p_key_pair().private_key.serialize()
    stored = {"k": legacy}
    writes: list[bytes] = []

    async def load() -> bytes | None:
        return stored.get("k")

    async def store(data: bytes) -> None:
        writes.append(data)
        stored["k"] = data

    identity = await load_or_create_identity(load, store)
    assert identity.peer_id == SPEC_PEER_ID
    assert writes == [SPEC_PRIVATE]  # rewritten in the spec's 64-byte form
    await load_or_create_identity(load, store)
    assert writes == [SPEC_PRIVATE]  # and not again


def test_mismatched_public_half_is_refused() -> None:
    bad = bytearray(SPEC_PRIVATE)
    bad[-1] ^= 1
    with pytest.raises(IdentityError, match="does not match"):
        PeerIdentity.from_bytes(bytes(bad))


def test_other_key_types_are_refused() -> None:
    rsa_like = b"\x08\x00\x12\x40" + SPEC_PRIVATE[4:]
    with pytest.raises(IdentityError, match="not an Ed25519"):
        PeerIdentity.from_bytes(rsa_like)


@given(st.binary(max_size=200))
def test_garbage_is_an_identity_error(data: bytes) -> None:
    with contextlib.suppress(IdentityError):
        PeerIdentity.from_bytes(data)


def test_no_key_material_in_repr_or_errors() -> None:
    identity = PeerIdentity.from_bytes(SPEC_PRIVATE)
    assert repr(identity) == f"PeerIdentity({SPEC_PEER_ID})"
    bad = bytearray(SPEC_PRIVATE)
    bad[-1] ^= 1
    with pytest.raises(IdentityError) as caught:
        PeerIdentity.from_bytes(bytes(bad))
    assert SPEC_PRIVATE[4:36].hex() not in str(caught.value)


def test_parse_peer_id() -> None:
    assert parse_peer_id(SPEC_PEER_ID) == SPEC_PEER_ID
    assert parse_peer_id("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    for bad in ("", "0OIl", "12D3KooW", SPEC_PEER_ID + "x", "z" * 200):
        with pytest.raises(IdentityError):
            parse_peer_id(bad)
    assert peer_id_from_public_key(SPEC_PUBLIC[4:]) == SPEC_PEER_ID


def test_importing_the_package_does_not_import_libp2p() -> None:
    code = (
        "import sys, daemon.p2p.host, daemon.p2p.identity, daemon.p2p.didcomm_v2, "
        "daemon.p2p.deliver; print(any(m == 'libp2p' or m.startswith('libp2p.') "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
