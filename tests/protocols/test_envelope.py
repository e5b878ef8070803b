"""The envelope as a specification: every form packs and unpacks, tampering fails,
bad input raises only typed errors, key roles and party consistency are enforced.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import jwe, jws
from protocols.codec import b64u_decode, b64u_encode, json_bytes
from protocols.did.resolver import StaticResolver
from protocols.envelope import (
    FORWARD_TYPE,
    pack_encrypted,
    pack_plaintext,
    pack_signed,
    unpack,
)
from protocols.errors import (
    DIDCommError,
    ExpiredMessageError,
    FromPriorError,
    InvalidPlaintextError,
    KeyRoleError,
    MalformedMessageError,
    NoCompatibleKeysError,
    RecipientMismatchError,
    SenderMismatchError,
    UnknownRecipientError,
)
from protocols.keys import PrivateKey
from protocols.secrets import InMemorySecrets

AGREEMENT = ["X25519", "P-256", "P-384", "P-521"]
SIGNING = ["Ed25519", "P-256", "secp256k1"]
ANON_ENCS = ["A256CBC-HS512", "A256GCM", "XC20P"]


@dataclass
class Party:
    did: str
    doc: dict[str, Any]
    keys: dict[str, PrivateKey]


def make_party(name: str, agreement: list[str], signing: list[str]) -> Party:
    """A DID document with JsonWebKey2020 methods, keys referenced by id."""
    did = f"did:example:{name}"
    vms, ka, auth, keys = [], [], [], {}
    for i, curve in enumerate(agreement + signing):
        key = PrivateKey.generate(curve)
        kid = f"{did}#key-{i}"
        keys[kid] = key
        vms.append(
            {"id": kid, "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": key.public.to_jwk()}
        )
        (ka if i < len(agreement) else auth).append(kid)
    doc = {"id": did, "verificationMethod": vms, "keyAgreement": ka, "authentication": auth}
    return Party(did, doc, keys)


ALICE = make_party("alice", AGREEMENT, SIGNING)
BOB = make_party("bob", [*AGREEMENT, "X25519", "X25519", "P-256"], ["Ed25519"])
CAROL = make_party("carol", ["P-384"], ["Ed25519"])
RESOLVER = StaticResolver([ALICE.doc, BOB.doc, CAROL.doc])
SECRETS = InMemorySecrets()
for party in (ALICE, BOB, CAROL):
    for kid, key in party.keys.items():
        SECRETS.add(kid, key)


def kid_for(party: Party, curve: str, relationship: str = "keyAgreement") -> str:
    listed = party.doc["keyAgreement" if relationship == "keyAgreement" else "authentication"]
    return next(k for k in listed if party.keys[k].curve == curve)


def message(**extra: Any) -> dict[str, Any]:
    msg = {
        "id": "1234567890",
        "typ": "application/didcomm-plain+json",
        "type": "http://example.com/protocols/lets_do_lunch/1.0/proposal",
        "from": ALICE.did,
        "to": [BOB.did],
        "created_time": 1516269022,
        "expires_time": 1516385931,
        "body": {"messagespecificattribute": "and its value", "ünïcode": "✓"},
        "x-unknown-header": {"kept": [1, 2, 3]},
    }
    msg.update(extra)
    return msg


def roundtrip(packed: str, now: int | None = None) -> Any:
    return unpack(packed, resolver=RESOLVER, secrets=SECRETS, now=now)


# -- every form round-trips ------------------------------------------------------


def test_plaintext_without_typ_is_accepted() -> None:
    msg = message()
    del msg["typ"]
    result = roundtrip(pack_plaintext(msg))
    assert result.message == msg
    assert not result.metadata.encrypted and not result.metadata.authenticated


@pytest.mark.parametrize("curve", SIGNING)
def test_signed(curve: str) -> None:
    kid = kid_for(ALICE, curve, "authentication")
    result = roundtrip(pack_signed(message(), kid, resolver=RESOLVER, secrets=SECRETS))
    assert result.message == message()
    meta = result.metadata
    assert meta.non_repudiation and meta.authenticated and not meta.encrypted
    assert meta.sign_from == kid
    assert meta.sign_alg == {"Ed25519": "EdDSA", "P-256": "ES256", "secp256k1": "ES256K"}[curve]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    curve=st.sampled_from(AGREEMENT),
    enc=st.sampled_from(ANON_ENCS),
    auth=st.booleans(),
    sign=st.sampled_from([None, *SIGNING]),
    protect=st.booleans(),
)
def test_any_mode_round_trips_for_every_recipient(
    curve: str, enc: str, auth: bool, sign: str | None, protect: bool
) -> None:
    frm = kid_for(ALICE, curve) if auth else None
    sign_from = kid_for(ALICE, sign, "authentication") if sign else None
    result = pack_encrypted(
        message(),
        BOB.did,
        frm=frm,
        sign_from=sign_from,
        enc_anon=enc,
        protect_sender=protect and auth,
        resolver=RESOLVER,
        secrets=SECRETS,
    )
    bob_keys = [k for k in BOB.doc["keyAgreement"] if BOB.keys[k].curve == BOB.keys[result.to_kids[0]].curve]
    assert result.to_kids == bob_keys
    # Every recipient key alone can open it.
    for kid in result.to_kids:
        out = unpack(result.packed, resolver=RESOLVER, secrets=_only(kid))
        assert out.message == message()
        meta = out.metadata
        assert meta.encrypted
        assert meta.authenticated == (auth or sign is not None)
        assert meta.non_repudiation == (sign is not None)
        assert meta.encrypted_from == frm
        assert meta.sign_from == sign_from
        assert meta.anonymous_sender == (not auth or protect)
        assert meta.encrypted_to == result.to_kids
        if auth:
            assert meta.enc_alg_auth == "ECDH-1PU+A256KW/A256CBC-HS512"
        if not auth or protect:
            assert meta.enc_alg_anon == f"ECDH-ES+A256KW/{enc}"


def _only(kid: str) -> InMemorySecrets:
    s = InMemorySecrets()
    s.add(kid, BOB.keys[kid])
    return s


def test_authcrypt_by_did_picks_a_common_curve() -> None:
    # Carol has only a P-384 key: Alice's first key on a curve Carol has is P-384.
    msg = message(to=[CAROL.did])
    result = pack_encrypted(msg, CAROL.did, frm=ALICE.did, resolver=RESOLVER, secrets=SECRETS)
    assert result.from_kid == kid_for(ALICE, "P-384")
    assert result.to_kids == CAROL.doc["keyAgreement"]
    assert roundtrip(result.packed).metadata.encrypted_from == result.from_kid


def test_no_common_curve() -> None:
    dave = make_party("dave", ["X25519"], ["Ed25519"])
    erin = make_party("erin", ["P-521"], ["Ed25519"])
    resolver = StaticResolver([dave.doc, erin.doc])
    secrets = InMemorySecrets()
    for k, v in dave.keys.items():
        secrets.add(k, v)
    with pytest.raises(NoCompatibleKeysError):
        pack_encrypted(
            message(**{"from": dave.did, "to": [erin.did]}),
            erin.did,
            frm=dave.did,
            resolver=resolver,
            secrets=secrets,
        )


# -- tampering --------------------------------------------------------------------

B64_FIELDS_JWE = ["protected", "ciphertext", "tag", "iv"]


def _flip(value: str, index: int, bit: int) -> str:
    raw = bytearray(b64u_decode(value))
    raw[index % len(raw)] ^= 1 << bit
    return b64u_encode(bytes(raw))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    auth=st.booleans(),
    field=st.sampled_from([*B64_FIELDS_JWE, "encrypted_key", "kid"]),
    index=st.integers(min_value=0, max_value=10_000),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_single_byte_change_in_a_jwe_is_rejected(auth: bool, field: str, index: int, bit: int) -> None:
    packed = pack_encrypted(
        message(),
        kid_for(BOB, "X25519"),
        frm=kid_for(ALICE, "X25519") if auth else None,
        resolver=RESOLVER,
        secrets=SECRETS,
    ).packed
    obj = json.loads(packed)
    if field == "encrypted_key":
        obj["recipients"][0]["encrypted_key"] = _flip(obj["recipients"][0]["encrypted_key"], index, bit)
    elif field == "kid":
        kid = obj["recipients"][0]["header"]["kid"]
        pos = index % len(kid)
        obj["recipients"][0]["header"]["kid"] = kid[:pos] + chr(ord(kid[pos]) ^ (1 << (bit % 5))) + kid[pos + 1 :]
    else:
        obj[field] = _flip(obj[field], index, bit)
    with pytest.raises(DIDCommError):
        roundtrip(json.dumps(obj))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    curve=st.sampled_from(SIGNING),
    field=st.sampled_from(["payload", "protected", "signature"]),
    index=st.integers(min_value=0, max_value=10_000),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_single_byte_change_in_a_jws_is_rejected(curve: str, field: str, index: int, bit: int) -> None:
    obj = json.loads(
        pack_signed(message(), kid_for(ALICE, curve, "authentication"), resolver=RESOLVER, secrets=SECRETS)
    )
    if field == "payload":
        obj["payload"] = _flip(obj["payload"], index, bit)
    else:
        obj["signatures"][0][field] = _flip(obj["signatures"][0][field], index, bit)
    with pytest.raises(DIDCommError):
        roundtrip(json.dumps(obj))


# -- garbage in, typed errors out ---------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["id", "type", "to", "from", "body", "protected", "recipients", "ciphertext", "iv",
             "tag", "payload", "signatures", "signature", "header", "kid", "attachments", "data"]
        ),
        children,
        max_size=6,
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_values)
def test_random_json_raises_only_typed_errors(value: Any) -> None:
    with contextlib.suppress(DIDCommError):
        roundtrip(json.dumps(value))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=5000), mode=st.sampled_from(["signed", "anon", "auth"]))
def test_truncated_messages_raise_only_typed_errors(cut: int, mode: str) -> None:
    packed = _PACKED[mode]
    with pytest.raises(DIDCommError):
        roundtrip(packed[: cut % len(packed)])


_PACKED = {
    "signed": pack_signed(message(), ALICE.did, resolver=RESOLVER, secrets=SECRETS),
    "anon": pack_encrypted(message(), BOB.did, resolver=RESOLVER, secrets=SECRETS).packed,
    "auth": pack_encrypted(message(), BOB.did, frm=ALICE.did, resolver=RESOLVER, secrets=SECRETS).packed,
}


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(DIDCommError):
        roundtrip(data)


# -- key roles and consistency ---------------------------------------------------------


def test_signing_with_a_key_agreement_key_is_refused_both_ways() -> None:
    ka_kid = kid_for(ALICE, "P-256")  # a keyAgreement key that could sign
    with pytest.raises(KeyRoleError):
        pack_signed(message(), ka_kid, resolver=RESOLVER, secrets=SECRETS)
    forged = jws.sign(json_bytes(message()), [(ka_kid, ALICE.keys[ka_kid])])
    with pytest.raises(KeyRoleError):
        roundtrip(json.dumps(forged))


def test_authcrypt_from_a_signing_key_is_refused_both_ways() -> None:
    auth_kid = kid_for(ALICE, "P-256", "authentication")
    with pytest.raises(KeyRoleError):
        pack_encrypted(message(), BOB.did, frm=auth_kid, resolver=RESOLVER, secrets=SECRETS)
    bob_kid = kid_for(BOB, "P-256")
    forged = jwe.encrypt(
        json_bytes(message()),
        [jwe.Recipient(bob_kid, BOB.keys[bob_kid].public)],
        sender=(auth_kid, ALICE.keys[auth_kid]),
    )
    with pytest.raises(KeyRoleError):
        roundtrip(json.dumps(forged))


def test_skid_must_belong_to_from() -> None:
    carol_kid = kid_for(CAROL, "P-384")
    bob_kid = kid_for(BOB, "P-384")
    forged = jwe.encrypt(
        json_bytes(message()),  # says from Alice
        [jwe.Recipient(bob_kid, BOB.keys[bob_kid].public)],
        sender=(carol_kid, CAROL.keys[carol_kid]),
    )
    with pytest.raises(SenderMismatchError):
        roundtrip(json.dumps(forged))


def test_signer_must_be_from() -> None:
    carol_kid = CAROL.doc["authentication"][0]
    forged = jws.sign(json_bytes(message()), [(carol_kid, CAROL.keys[carol_kid])])
    with pytest.raises(SenderMismatchError):
        roundtrip(json.dumps(forged))


def test_recipient_must_be_in_to() -> None:
    carol_kid = kid_for(CAROL, "P-384")
    packed = jwe.encrypt(json_bytes(message()), [jwe.Recipient(carol_kid, CAROL.keys[carol_kid].public)])
    with pytest.raises(RecipientMismatchError):
        roundtrip(json.dumps(packed))
    with pytest.raises(RecipientMismatchError):
        pack_encrypted(message(), CAROL.did, resolver=RESOLVER, secrets=SECRETS)


def test_unknown_recipient() -> None:
    packed = pack_encrypted(message(), BOB.did, resolver=RESOLVER, secrets=SECRETS).packed
    with pytest.raises(UnknownRecipientError):
        unpack(packed, resolver=RESOLVER, secrets=InMemorySecrets())


def test_expired_message() -> None:
    packed = pack_encrypted(message(), BOB.did, resolver=RESOLVER, secrets=SECRETS).packed
    assert roundtrip(packed, now=1516385930).message["id"] == "1234567890"
    with pytest.raises(ExpiredMessageError):
        roundtrip(packed, now=1516385931)


def test_invalid_plaintext_headers() -> None:
    for bad in ({"id": 1}, {"typ": "application/json"}, {"created_time": "now"}, {"to": "did:x:y"},
                {"body": []}, {"from": "did:example:alice#key-1"}):
        with pytest.raises(InvalidPlaintextError):
            pack_plaintext(message(**bad))
    with pytest.raises(InvalidPlaintextError):
        pack_plaintext({"type": "x"})


# -- from_prior ---------------------------------------------------------------------


def test_from_prior_is_packed_and_verified() -> None:
    new = make_party("alice2", ["X25519"], ["Ed25519"])
    resolver = StaticResolver([ALICE.doc, BOB.doc, new.doc])
    secrets = InMemorySecrets()
    for p in (ALICE, BOB, new):
        for k, v in p.keys.items():
            secrets.add(k, v)
    claims = {"sub": new.did, "iss": ALICE.did, "iat": 1516239022}
    msg = message(**{"from": new.did, "from_prior": claims})
    packed = pack_encrypted(msg, BOB.did, frm=new.did, resolver=resolver, secrets=secrets).packed
    result = unpack(packed, resolver=resolver, secrets=secrets)
    assert result.metadata.from_prior == claims
    assert result.metadata.from_prior_issuer_kid in ALICE.doc["authentication"]
    token = result.message["from_prior"]
    assert isinstance(token, str) and token.count(".") == 2

    # A from_prior signed by the new DID itself is not a rotation proof.
    bad = jws.sign_compact(claims, new.doc["authentication"][0], new.keys[new.doc["authentication"][0]])
    packed = pack_encrypted({**msg, "from_prior": bad}, BOB.did, frm=new.did, resolver=resolver, secrets=secrets).packed
    with pytest.raises(FromPriorError):
        unpack(packed, resolver=resolver, secrets=secrets)

    # Tampered claims fail the signature.
    head, _, sig = token.split(".")
    evil = b64u_encode(json_bytes({**claims, "sub": CAROL.did}))
    packed = pack_plaintext({**msg, "from_prior": f"{head}.{evil}.{sig}"})
    with pytest.raises(DIDCommError):
        unpack(packed, resolver=resolver, secrets=secrets)


# -- forward ------------------------------------------------------------------------


def test_forward_wrapper_addressed_to_us_is_unwrapped() -> None:
    inner = pack_encrypted(message(), BOB.did, frm=ALICE.did, resolver=RESOLVER, secrets=SECRETS).packed
    forward = {
        "id": "fwd-1",
        "type": FORWARD_TYPE,
        "to": [BOB.did],
        "body": {"next": BOB.did},
        "attachments": [{"data": {"json": json.loads(inner)}}],
    }
    outer = pack_encrypted(forward, BOB.did, resolver=RESOLVER, secrets=SECRETS).packed
    result = roundtrip(outer)
    assert result.message == message()
    assert result.metadata.re_wrapped_in_forward
    assert result.metadata.encrypted_from == kid_for(ALICE, "X25519")


def test_forward_for_someone_else_is_returned_as_is() -> None:
    forward = {
        "id": "fwd-2",
        "type": FORWARD_TYPE,
        "body": {"next": "did:example:zed"},
        "attachments": [{"data": {"json": {"ciphertext": "x"}}}],
    }
    result = roundtrip(pack_plaintext(forward))
    assert result.message["type"] == FORWARD_TYPE
    assert not result.metadata.re_wrapped_in_forward


def test_unknown_headers_survive() -> None:
    msg = message()
    packed = pack_encrypted(copy.deepcopy(msg), BOB.did, frm=ALICE.did, resolver=RESOLVER, secrets=SECRETS).packed
    assert roundtrip(packed).message["x-unknown-header"] == {"kept": [1, 2, 3]}


def test_oversized_and_nested_depth() -> None:
    with pytest.raises(MalformedMessageError):
        roundtrip("x" * (4 * 1024 * 1024 + 1))


def test_integers_beyond_64_bits_survive_every_form() -> None:
    big = {"big": 2**80 + 1, "neg": -(2**70), "small": 7}
    msg = message(body=big)
    packs = [
        pack_plaintext(msg),
        pack_encrypted(msg, BOB.did, resolver=RESOLVER, secrets=SECRETS).packed,
        pack_encrypted(
            msg, BOB.did, frm=ALICE.did, protect_sender=True, resolver=RESOLVER, secrets=SECRETS
        ).packed,
    ]
    for packed in packs:
        body = roundtrip(packed).message["body"]
        assert body == big and all(type(v) is int for v in body.values())


def test_non_json_numbers_are_refused() -> None:
    text = json.dumps(message()).replace('"created_time": 1516269022', '"created_time": NaN')
    with pytest.raises(MalformedMessageError):
        roundtrip(text)
    with pytest.raises(ValueError):
        pack_plaintext(message(body={"x": float("nan")}))
