"""did:key: the did:key spec's test vectors, round trips, and hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.did.did_key import (
    create_did_key,
    did_key_public_key,
    ed25519_to_x25519,
    resolve_did_key,
)
from protocols.errors import DIDCommError, DIDNotResolvedError, InvalidDIDError
from protocols.keys import PrivateKey, PublicKey
from protocols.multibase import b58decode, b58encode, varint_encode

# w3c-ccg/did-method-key test-vectors/ed25519-x25519.json: seed -> (did, Ed25519
# publicKeyBase58, X25519 fragment, X25519 publicKeyBase58).
ED25519_VECTORS = [
    (
        "00" * 32,
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
        "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak",
    ),
    (
        "00" * 31 + "01",
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
        "z6LSrHyXiPBhUbvPUtyUCdf32sniiMGPTAesgHrtEa4FePtr",
        "FcoNC5NqP9CePWbhfz95iHaEsCjGkZUioK9Ck7Qiw286",
    ),
    (
        "00" * 31 + "02",
        "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
        "z6LSkkqoZRC34AEpbkhZCqLDcHQVAxuLpQ7kC8XCXMVUfvjE",
        "A5fe37PAxhX5WNKngBpGHhC1KpNE7nwbK9oX2tqwxYxU",
    ),
    (
        "00" * 31 + "03",
        "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
        "z6LSiUo6AEDat8Ze4nQzDo67SGuHLLwsUGkxndHGUjsywHow",
        "7ocvdvQinfqtyQ3Dh9aA7ggoVCQkmfaoueZazHETDv3B",
    ),
    (
        "00" * 31 + "04",
        "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
        "z6LSrGb3qm4xMCEBjvwkLb2WEcXfTM94Tu1RyGCbT5wbg8i9",
        "FbQtKTG6FjWSeYZyowWYv2KBcCbwmHqH6HUuxdJ4xkwP",
    ),
]

# test-vectors/x25519.json: did -> publicKeyBase58.
X25519_VECTORS = [
    (
        "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F",
        "4Dy8E9UaZscuPUf2GLxV44RCNL7oxmEXXkgWXaug1WKV",
    ),
    (
        "did:key:z6LStiZsmxiK4odS4Sb6JmdRFuJ6e1SYP157gtiCyJKfrYha",
        "J3PiFeuSyLugy4DKn87TwK5cnruRgPtxouzXUqg99Avp",
    ),
    (
        "did:key:z6LSoMdmJz2Djah2P4L9taDmtqeJ6wwd2HhKZvNToBmvaczQ",
        "CgTbngDMe7yHHfxPMvhpaFRpFoQWKgXAgwenJj8PsFDe",
    ),
]

# test-vectors/nist-curves.json: did -> public JWK.
NIST_VECTORS = [
    (
        "did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
            "y": "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
        },
    ),
    (
        "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
            "y": "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
        },
    ),
    (
        "did:key:z82Lm1MpAkeJcix9K8TMiLd5NMAhnwkjjCBeWHXyu3U4oT2MVJJKXkcVBgjGhnLBn2Kaau9",
        {
            "kty": "EC",
            "crv": "P-384",
            "x": "lInTxl8fjLKp_UCrxI0WDklahi-7-_6JbtiHjiRvMvhedhKVdHBfi2HCY8t_QJyc",
            "y": "y6N1IC-2mXxHreETBW7K3mBcw0qGr3CWHCs-yl09yCQRLcyfGv7XhqAngHOu51Zv",
        },
    ),
    (
        "did:key:z82LkvCwHNreneWpsgPEbV3gu1C6NFJEBg4srfJ5gdxEsMGRJUz2sG9FE42shbn2xkZJh54",
        {
            "kty": "EC",
            "crv": "P-384",
            "x": "CA-iNoHDg1lL8pvX3d1uvExzVfCz7Rn6tW781Ub8K5MrDf2IMPyL0RTDiaLHC1JT",
            "y": "Kpnrn8DkXUD3ge4mFxi-DKr0DYO2KuJdwNBrhzLRtfMa3WFMZBiPKUPfJj8dYNl_",
        },
    ),
    (
        "did:key:z2J9gaYxrKVpdoG9A4gRnmpnRCcxU6agDtFVVBVdn1JedouoZN7SzcyREXXzWgt3gGiwpoHq7K68X4m32D8HgzG8wv3sY5j7",
        {
            "kty": "EC",
            "crv": "P-521",
            "x": "ASUHPMyichQ0QbHZ9ofNx_l4y7luncn5feKLo3OpJ2nSbZoC7mffolj5uy7s6KSKXFmnNWxGJ42IOrjZ47qqwqyS",
            "y": "AW9ziIC4ZQQVSNmLlp59yYKrjRY0_VqO-GOIYQ9tYpPraBKUloEId6cI_vynCzlZWZtWpgOM3HPhYEgawQ703RjC",
        },
    ),
]

# test-vectors/secp256k1.json: did -> compressed publicKeyBase58.
SECP256K1_VECTORS = [
    (
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
        "23o6Sau8NxxzXcgSc3PLcNxrzrZpbLeBn1izfv3jbKhuv",
    ),
    (
        "did:key:zQ3shtxV1FrJfhqE1dvxYRcCknWNjHc3c5X1y3ZSoPDi2aur2",
        "291KzQhqCPC18PqH83XKhxv1HdqrdnxyS7dh15t2uNRzJ",
    ),
    (
        "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
        "oesQ92MLiAkt2pjBcJFbW7H4DvzKJv22cotjYbmC2JEe",
    ),
    (
        "did:key:zQ3shadCps5JLAHcZiuX5YUtWHHL8ysBJqFLWvjZDKAWUBGzy",
        "pg3p1vprqePgUoqfAQ1TTgxhL6zLYhHyzooR1pqLxo9F",
    ),
    (
        "did:key:zQ3shptjE6JwdkeKN4fcpnYQY3m9Cet3NiHdAfpvSUZBFoKBj",
        "24waDFAUAS16UpZwQQTXVEAmm17rQRjadjuAeBDW8aqL1",
    ),
]


@pytest.mark.parametrize(("seed", "did", "ed_b58", "x_fragment", "x_b58"), ED25519_VECTORS)
def test_ed25519_vectors(seed: str, did: str, ed_b58: str, x_fragment: str, x_b58: str) -> None:
    public = PrivateKey.from_raw("Ed25519", bytes.fromhex(seed)).public
    assert public.x == b58decode(ed_b58)
    assert create_did_key(public) == did

    doc = resolve_did_key(did)
    own = f"{did}#{did.removeprefix('did:key:')}"
    x_id = f"{did}#{x_fragment}"
    assert doc.id == did
    assert list(doc.verification_methods) == [own, x_id]
    assert doc.authentication == doc.assertion_method == [own]
    assert doc.capability_invocation == doc.capability_delegation == [own]
    assert doc.key_agreement == [x_id]
    assert doc.resolve_vm(own).public_key == public
    x25519 = doc.resolve_vm(x_id).public_key
    assert x25519 == PublicKey("X25519", b58decode(x_b58))
    assert x25519 == ed25519_to_x25519(public)
    assert [vm.id for vm in doc.authentication_methods()] == [own]
    assert [vm.id for vm in doc.key_agreement_methods()] == [x_id]
    assert doc.resolve_vm(own).type == "Multikey"
    assert doc.services == []


def test_ed25519_to_x25519_matches_libsodium_secret_conversion() -> None:
    """The derived public key is the one the converted private key agrees with."""
    import nacl.bindings as sodium

    ed = PrivateKey.generate("Ed25519")
    x_secret = sodium.crypto_sign_ed25519_sk_to_curve25519(ed.secret + ed.public.x)
    assert PrivateKey.from_raw("X25519", x_secret).public == ed25519_to_x25519(ed.public)


@pytest.mark.parametrize(("did", "b58"), X25519_VECTORS)
def test_x25519_vectors(did: str, b58: str) -> None:
    public = PublicKey("X25519", b58decode(b58))
    assert create_did_key(public) == did
    doc = resolve_did_key(did)
    own = f"{did}#{did.removeprefix('did:key:')}"
    assert doc.key_agreement == [own]
    assert doc.authentication == []
    assert doc.resolve_vm(own).public_key == public
    assert doc.authentication_methods() == []


@pytest.mark.parametrize(("did", "jwk"), NIST_VECTORS)
def test_nist_vectors(did: str, jwk: dict[str, str]) -> None:
    public = PublicKey.from_jwk(jwk)
    assert create_did_key(public) == did
    doc = resolve_did_key(did)
    own = f"{did}#{did.removeprefix('did:key:')}"
    # NIST keys both sign and agree keys.
    assert doc.authentication == doc.key_agreement == [own]
    assert doc.resolve_vm(own).public_key == public
    assert doc.key_agreement_methods()[0].public_key.to_jwk() == jwk


@pytest.mark.parametrize(("did", "b58"), SECP256K1_VECTORS)
def test_secp256k1_vectors(did: str, b58: str) -> None:
    public = PublicKey.from_raw("secp256k1", b58decode(b58))
    assert create_did_key(public) == did
    doc = resolve_did_key(did)
    own = f"{did}#{did.removeprefix('did:key:')}"
    assert doc.authentication == [own]
    # Deliberate: the vectors also list it under keyAgreement, but there is no
    # ECDH on secp256k1 in DIDComm (or in protocols.keys), so we do not offer it.
    assert doc.key_agreement == []
    assert doc.resolve_vm(own).public_key == public


def test_uncompressed_ec_point_is_not_canonical() -> None:
    public = PublicKey.from_jwk(NIST_VECTORS[0][1])
    uncompressed = b"\x04" + public.x + public.y
    did = "did:key:z" + b58encode(varint_encode(0x1200) + uncompressed)
    assert did_key_public_key(create_did_key(public)) == public
    with pytest.raises(InvalidDIDError, match="canonical"):
        resolve_did_key(did)


@pytest.mark.parametrize(
    "did",
    [
        "did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",  # no multibase prefix
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW",  # truncated
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWpp",  # too long
        "did:key:z",
        "did:key:z0OIl",  # not base58
        # BLS12-381 G2 (0xeb), a real did:key type that we do not implement.
        "did:key:zUC7K4ndUaGZgV7Cp2yJy6JtMoUHY6u7tkcSYUvPrEidqBmLCTLmi6d5WvwnUqejscAkERJ3bfjEiSYtdPkRSE8kSa11hFBr4sTgnbZ95SJj19PN2jdvJjyzpSZgxkyyxNnBNnY",
    ],
)
def test_malformed_did_keys(did: str) -> None:
    with pytest.raises(InvalidDIDError):
        resolve_did_key(did)


def test_x_coordinate_off_the_curve_is_refused() -> None:
    # About half of all x values have no point on P-256; find one.
    for x in range(2, 100):
        compressed = b"\x02" + x.to_bytes(32, "big")
        try:
            PublicKey.from_raw("P-256", compressed)
        except DIDCommError:
            break
    else:
        raise AssertionError("no off-curve x found")
    with pytest.raises(InvalidDIDError):
        resolve_did_key("did:key:z" + b58encode(varint_encode(0x1200) + compressed))


def test_other_methods_are_not_did_key() -> None:
    with pytest.raises(DIDNotResolvedError):
        resolve_did_key("did:example:alice")


CURVES = ["Ed25519", "X25519", "P-256", "P-384", "P-521", "secp256k1"]


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CURVES), st.data())
def test_create_then_resolve_gives_the_same_key(curve: str, data: st.DataObject) -> None:
    public = PrivateKey.generate(curve).public
    did = create_did_key(public)
    doc = resolve_did_key(did)
    own = f"{did}#{public.to_multikey()}"
    assert doc.resolve_vm(own).public_key == public
    assert did_key_public_key(did) == public
    # Every referenced method resolves, and the JSON form parses back the same.
    for ref in doc.authentication + doc.key_agreement:
        assert doc.resolve_vm(ref).controller == did
    again = type(doc).from_json(doc.to_json())
    assert again.verification_methods == doc.verification_methods
    assert again.key_agreement == doc.key_agreement


@given(st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", max_size=120))
def test_random_base58_did_keys_raise_only_typed_errors(body: str) -> None:
    try:
        doc = resolve_did_key("did:key:z" + body)
    except DIDCommError:
        return
    assert doc.verification_methods


@given(st.binary(max_size=80))
def test_random_multicodec_bytes_raise_only_typed_errors(raw: bytes) -> None:
    with contextlib.suppress(DIDCommError):
        resolve_did_key("did:key:z" + b58encode(raw))
