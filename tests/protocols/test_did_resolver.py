"""DID syntax, DID URL splitting, and the resolvers that chain did:key, did:peer and static docs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.did import resolver as resolver_module
from protocols.did.did_key import create_did_key
from protocols.did.did_peer import create_did_peer_2, create_did_peer_4, peer_4_short_form
from protocols.did.document import DIDDocument
from protocols.did.resolver import (
    MAX_DID_LENGTH,
    ChainResolver,
    DIDKeyResolver,
    DIDPeerResolver,
    DIDResolver,
    StaticResolver,
    default_resolver,
    is_did,
    split_did_url,
    validate_did,
)
from protocols.errors import DIDCommError, DIDNotResolvedError, InvalidDIDError
from protocols.keys import PrivateKey

ALICE = {
    "id": "did:example:alice",
    "verificationMethod": [
        {
            "id": "#key-x25519-1",
            "type": "JsonWebKey2020",
            "controller": "did:example:alice",
            "publicKeyJwk": {
                "kty": "OKP",
                "crv": "X25519",
                "x": "avH0O2Y4tqLAq8y9zpianr8ajii5m4F_mICrzNlatXs",
            },
        }
    ],
    "keyAgreement": ["#key-x25519-1"],
}

# -- syntax ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "did",
    [
        "did:example:alice",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "did:web:example.com:user:alice",
        "did:example:%20x",
        "did:peer:2.Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc.SeyJ0IjoiZG0ifQ",
        "did:a1:b_c-d.e",
    ],
)
def test_valid_dids(did: str) -> None:
    assert is_did(did)
    assert validate_did(did) == did


@pytest.mark.parametrize(
    "did",
    [
        "",
        "did:",
        "did:example",
        "did:example:",
        "did:Example:alice",  # method names are lowercase
        "did:example:alice:",  # no trailing colon
        "did:example:al ice",
        "did:example:alice#key-1",  # a DID URL, not a DID
        "did:example:alice/path",
        "did:example:%zz",
        "did:example:a=b",  # '=' is not an idchar (so no base64 padding in did:peer)
        "DID:example:alice",
        "did:example:alice\n",
        "did:example:ålice",
    ],
)
def test_invalid_dids(did: str) -> None:
    assert not is_did(did)
    with pytest.raises(InvalidDIDError):
        validate_did(did)


def test_did_length_limit() -> None:
    longest = "did:example:" + "a" * (MAX_DID_LENGTH - len("did:example:"))
    assert validate_did(longest) == longest
    with pytest.raises(InvalidDIDError, match="longer"):
        validate_did(longest + "a")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("did:example:alice#key-1", ("did:example:alice", "key-1")),
        ("did:example:alice", ("did:example:alice", None)),
        ("did:example:alice?service=x#frag", ("did:example:alice", "frag")),
        ("did:example:alice/some/path#k", ("did:example:alice", "k")),
        ("did:key:z6Mkabc#z6Mkabc", ("did:key:z6Mkabc", "z6Mkabc")),
        ("did:example:alice#a:b/c?d", ("did:example:alice", "a:b/c?d")),
    ],
)
def test_split_did_url(url: str, expected: tuple[str, str | None]) -> None:
    assert split_did_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["#key-1", "key-1", "did:example:alice#", "did:example:alice#a b", "did:example:#x", 42],
)
def test_split_did_url_rejects(url: object) -> None:
    with pytest.raises(InvalidDIDError):
        split_did_url(url)


@given(st.text(max_size=200))
def test_random_text_is_a_did_or_invalid(text: str) -> None:
    try:
        assert validate_did(text) == text
    except InvalidDIDError:
        assert not is_did(text)
    try:
        did, _ = split_did_url(text)
        assert is_did(did)
    except InvalidDIDError:
        pass


@given(
    st.from_regex(
        r"did:[a-z0-9]{1,8}:[A-Za-z0-9._-]{1,30}(:[A-Za-z0-9._-]{1,10}){0,3}", fullmatch=True
    ),
    st.from_regex(r"[A-Za-z0-9._~:@-]{1,30}", fullmatch=True),
)
def test_generated_did_urls_split_back(did: str, fragment: str) -> None:
    assert is_did(did)
    assert split_did_url(f"{did}#{fragment}") == (did, fragment)


# -- resolvers ---------------------------------------------------------------------


def test_static_resolver() -> None:
    resolver = StaticResolver([ALICE])
    doc = resolver.resolve("did:example:alice")
    assert doc.key_agreement == ["did:example:alice#key-x25519-1"]
    assert "did:example:alice" in resolver
    with pytest.raises(DIDNotResolvedError):
        resolver.resolve("did:example:bob")
    with pytest.raises(InvalidDIDError):
        resolver.resolve("did:example:alice#key-x25519-1")
    resolver.remove("did:example:alice")
    with pytest.raises(DIDNotResolvedError):
        resolver.resolve("did:example:alice")


def test_static_resolver_accepts_parsed_documents_and_rejects_bad_ones() -> None:
    parsed = DIDDocument.from_json(ALICE)
    assert StaticResolver([parsed]).resolve("did:example:alice") is parsed
    with pytest.raises(InvalidDIDError):
        StaticResolver([{"id": "not a did"}])


def test_default_resolver_resolves_every_method() -> None:
    ed = PrivateKey.generate("Ed25519").public
    x = PrivateKey.generate("X25519").public
    did_key = create_did_key(ed)
    did_peer = create_did_peer_2([ed], [x])
    resolver = default_resolver([ALICE])
    assert resolver.resolve(did_key).id == did_key
    assert resolver.resolve(did_peer).id == did_peer
    assert resolver.resolve("did:example:alice").id == "did:example:alice"
    # Documents are cached and shared.
    assert resolver.resolve(did_peer) is resolver.resolve(did_peer)
    with pytest.raises(DIDNotResolvedError):
        resolver.resolve("did:example:carol")
    with pytest.raises(DIDNotResolvedError):
        resolver.resolve("did:peer:1zQmZMygzYqNwU6Uhmewx5Xepf2VLp5S4HLSwwgf2aiKZuwa")


def test_malformed_did_key_does_not_fall_through_to_static_documents() -> None:
    bogus = "did:key:z6MkBOGUS"
    impostor = {**ALICE, "id": bogus, "verificationMethod": [], "keyAgreement": []}
    resolver = default_resolver([impostor])
    with pytest.raises(InvalidDIDError):
        resolver.resolve(bogus)


def test_chain_resolver_order() -> None:
    first = StaticResolver([ALICE])
    other = {**ALICE, "keyAgreement": [], "verificationMethod": []}
    second = StaticResolver([other])
    chain = ChainResolver(first, second)
    assert chain.resolve("did:example:alice").key_agreement
    assert not ChainResolver(second, first).resolve("did:example:alice").key_agreement
    with pytest.raises(DIDNotResolvedError):
        ChainResolver().resolve("did:example:alice")


def test_peer_resolver_learns_peer_4_short_forms_from_long_forms() -> None:
    x = PrivateKey.generate("X25519").public
    long_did = create_did_peer_4(
        {
            "verificationMethod": [
                {"id": "#x", "type": "Multikey", "publicKeyMultibase": x.to_multikey()}
            ],
            "keyAgreement": ["#x"],
        }
    )
    short_did = peer_4_short_form(long_did)
    resolver = default_resolver()
    with pytest.raises(DIDNotResolvedError):
        resolver.resolve(short_did)
    assert resolver.resolve(long_did).id == long_did
    short_doc = resolver.resolve(short_did)
    assert short_doc.id == short_did
    assert short_doc.resolve_vm("#x").public_key == x
    # Or told explicitly, without resolving first.
    peer = DIDPeerResolver()
    assert peer.remember(long_did) == short_did
    assert peer.resolve(short_did).also_known_as == [long_did]
    with pytest.raises(InvalidDIDError):
        peer.remember(short_did)


def test_peer_resolver_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolver_module, "MAX_REMEMBERED_PEER_4", 2)
    peer = DIDPeerResolver()
    dids = [create_did_peer_4({"alsoKnownAs": [f"did:example:{i}"]}) for i in range(3)]
    shorts = [peer.remember(did) for did in dids]
    with pytest.raises(DIDNotResolvedError):
        peer.resolve(shorts[0])
    assert peer.resolve(shorts[2]).id == shorts[2]


def test_method_resolvers_refuse_other_methods() -> None:
    with pytest.raises(DIDNotResolvedError):
        DIDKeyResolver().resolve("did:example:alice")
    with pytest.raises(DIDNotResolvedError):
        DIDPeerResolver().resolve("did:example:alice")


def test_resolvers_satisfy_the_protocol() -> None:
    resolvers: list[DIDResolver] = [
        StaticResolver(),
        DIDKeyResolver(),
        DIDPeerResolver(),
        ChainResolver(),
        default_resolver(),
    ]
    for resolver in resolvers:
        with pytest.raises(DIDNotResolvedError):
            resolver.resolve("did:example:nobody")


@given(st.text(max_size=300))
def test_resolving_random_text_raises_only_typed_errors(text: str) -> None:
    resolver = default_resolver([ALICE])
    candidates = (
        text,
        "did:key:" + text,
        "did:peer:2" + text,
        "did:peer:2." + text,
        "did:peer:4" + text,
    )
    for candidate in candidates:
        try:
            doc = resolver.resolve(candidate)
        except DIDCommError:
            continue
        assert doc.id == candidate
