"""Interoperability with didcomm-python 0.3.2 (SICPA), an independent implementation.

Theory of operation
-------------------
Every mode both implementations support is one :class:`Case`: plaintext;
signed with EdDSA, ES256 and ES256K; anoncrypt on X25519, P-256, P-384 and
P-521 with each content encryption (A256CBC-HS512, A256GCM, XC20P);
authcrypt on X25519, P-256 and P-521; authcrypt and anoncrypt around a
signature; anoncrypt(authcrypt) to protect the sender; several recipients
(a DID with several key-agreement keys on one curve) and single keys.

Each case is tested both ways:

- we pack, didcomm-python unpacks: the same message, and its metadata says
  what we claimed to have done;
- didcomm-python packs, we unpack: the same message, with the right metadata.

All the work on the didcomm-python side goes into one batch (one start of
the interop interpreter for the whole module), run by the module-scoped
:func:`exchange` fixture; the tests then only look at their case's results.
The same batch checks that didcomm-python reads the appendix vectors exactly
as ``tests/vectors/*.json`` record them.

The appendix keys are reused; for several recipients on P-256, P-384 and
P-521 (Bob's DID starts with X25519 keys, so a DID-addressed anoncrypt to him
always picks X25519) three more DIDs hold Bob's keys of one curve each.
A few more cases run between the DID methods the daemon really uses
(did:peer:2 and did:key, with fixed keys made here); didcomm-python cannot
resolve those, so it is given the documents our resolver produces
(``didcomm_peer.py`` turns their Multikey methods into JWKs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from nacl.bindings import crypto_sign_ed25519_sk_to_curve25519

from protocols.codec import b64u_decode, b64u_encode, json_dumps, json_object
from protocols.envelope import pack_encrypted, pack_plaintext, pack_signed, unpack
from protocols.secrets import InMemorySecrets
from tests import vectors as vector_files

pytestmark = pytest.mark.interop

ALICE = "did:example:alice"
BOB = "did:example:bob"
TYP_PLAIN = "application/didcomm-plain+json"
AUTHCRYPT = "ECDH-1PU+A256KW/A256CBC-HS512"
ENCS = ("A256CBC-HS512", "A256GCM", "XC20P")
SIGN_ALGS = {f"{ALICE}#key-1": "EdDSA", f"{ALICE}#key-2": "ES256", f"{ALICE}#key-3": "ES256K"}
#: Order of the secp256k1 group: an ES256K ``s`` above half of it is "high-S".
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: ES256K signatures made by each side: our low-S rule must hold for all of
#: them (a signer that ignored it would make high-S ones half the time).
ES256K_SAMPLES = 8

BOB_X25519 = tuple(f"{BOB}#key-x25519-{i}" for i in (1, 2, 3))
BOB_P256 = (f"{BOB}#key-p256-1", f"{BOB}#key-p256-2")
BOB_P521 = (f"{BOB}#key-p521-1", f"{BOB}#key-p521-2")


def one_curve_did(curve: str) -> str:
    return f"did:example:bob-{curve}"


def one_curve_kids(curve: str) -> tuple[str, ...]:
    return (f"{one_curve_did(curve)}#key-1", f"{one_curve_did(curve)}#key-2")


def one_curve_identities(bob_secrets: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """DID documents (and secrets) of Bob's keys regrouped one curve per DID.

    Written in the ``verificationMethod`` + reference form (the appendix
    embeds its methods), one of them with relative references.
    """
    docs, secrets = [], []
    for curve in ("p256", "p384", "p521"):
        did = one_curve_did(curve)
        jwks = [j for j in bob_secrets if j["kid"].startswith(f"{BOB}#key-{curve}-")]
        methods, refs = [], []
        for i, jwk in enumerate(jwks, start=1):
            kid = f"{did}#key-{i}"
            public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}
            methods.append(
                {"id": kid, "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": public}
            )
            refs.append(f"#key-{i}" if curve == "p384" else kid)
            secrets.append(dict(jwk, kid=kid))
        docs.append(
            {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": did,
                "verificationMethod": methods,
                "keyAgreement": refs,
            }
        )
    return docs, secrets


@dataclass(frozen=True)
class Generated:
    """did:peer:2 and did:key identities made here, with their secrets."""

    peer_alice: str
    peer_bob: str
    key_carol: str
    docs: list[dict[str, Any]]
    secrets: list[dict[str, Any]]

    def kids(self, did: str, relationship: str) -> list[str]:
        doc = next(d for d in self.docs if d["id"] == did)
        return list(doc[relationship])


def generate_identities() -> Generated:
    """Our DID methods, as the daemon uses them, with fixed keys.

    Two did:peer:2 (Ed25519 authentication; X25519 and P-256 key agreement,
    the P-256 one a compressed multikey) and one did:key (Ed25519, whose
    X25519 key-agreement key is derived). didcomm-python cannot resolve
    either method; it gets the documents our resolver produces.
    """
    from protocols.did.did_key import create_did_key
    from protocols.did.did_peer import create_did_peer_2
    from protocols.did.resolver import default_resolver
    from protocols.keys import PrivateKey

    resolver = default_resolver()
    docs: list[dict[str, Any]] = []
    secrets: list[dict[str, Any]] = []

    def peer(seed: int) -> str:
        auth = PrivateKey.from_raw("Ed25519", bytes([seed]) * 32)
        x25519 = PrivateKey.from_raw("X25519", bytes([seed + 1]) * 32)
        p256 = PrivateKey.from_raw("P-256", bytes([seed + 2]) * 32)
        did = create_did_peer_2([auth.public], [x25519.public, p256.public])
        doc = resolver.resolve(did).to_json()
        by_key = {vm["publicKeyMultibase"]: vm["id"] for vm in doc["verificationMethod"]}
        for key in (auth, x25519, p256):
            secrets.append(dict(key.to_jwk(), kid=by_key[key.public.to_multikey()]))
        docs.append(doc)
        return did

    peer_alice, peer_bob = peer(0x11), peer(0x21)
    ed = PrivateKey.from_raw("Ed25519", bytes([0x31]) * 32)
    key_carol = create_did_key(ed.public)
    doc = resolver.resolve(key_carol).to_json()
    # The X25519 twin of an Ed25519 key, as libsodium derives it.
    x_secret = crypto_sign_ed25519_sk_to_curve25519(ed.secret + ed.public.x)
    secrets.append(
        dict(PrivateKey.from_raw("X25519", x_secret).to_jwk(), kid=doc["keyAgreement"][0])
    )
    secrets.append(dict(ed.to_jwk(), kid=doc["authentication"][0]))
    docs.append(doc)
    return Generated(peer_alice, peer_bob, key_carol, docs, secrets)


GENERATED = generate_identities()


@dataclass(frozen=True)
class Case:
    """One way of packing a message, and what unpacking it must report."""

    name: str
    to: str | None = None  # None: plaintext or signed only
    to_kids: tuple[str, ...] = ()
    frm: str | None = None
    from_kid: str | None = None
    sign_from: str | None = None
    sign_kid: str | None = None
    enc_anon: str = "A256CBC-HS512"
    protect_sender: bool = False
    sender: str = ALICE
    sign_alg: str | None = None  # default: from SIGN_ALGS by sign_kid

    @property
    def recipient_did(self) -> str:
        return self.to.split("#")[0] if self.to else BOB

    def message(self) -> dict[str, Any]:
        return {
            "id": f"interop-{self.name}",
            "typ": TYP_PLAIN,
            "type": "https://didcomm.org/basicmessage/2.0/message",
            "from": self.sender,
            "to": [self.recipient_did],
            "created_time": 1700000000,
            "body": {"content": f"hello, {self.name}", "note": "ünïcödé ✓"},
        }

    def expected_metadata(self) -> dict[str, Any]:
        anon = self.to is not None and (self.frm is None or self.protect_sender)
        return {
            "encrypted": self.to is not None,
            "authenticated": self.frm is not None or self.sign_from is not None,
            "non_repudiation": self.sign_from is not None,
            "anonymous_sender": anon,
            "encrypted_from": self.from_kid,
            "encrypted_to": list(self.to_kids) if self.to is not None else None,
            "sign_from": self.sign_kid,
            "enc_alg_auth": AUTHCRYPT if self.frm is not None else None,
            "enc_alg_anon": f"ECDH-ES+A256KW/{self.enc_anon}" if anon else None,
            "sign_alg": self.sign_alg or (SIGN_ALGS[self.sign_kid] if self.sign_kid else None),
        }

    def peer_pack_request(self) -> dict[str, Any]:
        if self.to is None:
            if self.sign_from is None:
                return {"op": "pack_plaintext", "message": self.message()}
            return {"op": "pack_signed", "message": self.message(), "sign_from": self.sign_from}
        return {
            "op": "pack_encrypted",
            "message": self.message(),
            "to": self.to,
            "frm": self.frm,
            "sign_from": self.sign_from,
            "enc_alg_anon": self.enc_anon,
            "protect_sender": self.protect_sender,
        }


@dataclass(frozen=True)
class Packed:
    """What our pack functions returned for a case."""

    packed: str
    to_kids: list[str] | None = None
    from_kid: str | None = None
    sign_from_kid: str | None = None


def pack_ours(case: Case, resolver: Any, secrets: Any) -> Packed:
    message = case.message()
    if case.to is None:
        if case.sign_from is None:
            return Packed(pack_plaintext(message))
        return Packed(pack_signed(message, case.sign_from, resolver=resolver, secrets=secrets))
    result = pack_encrypted(
        message,
        case.to,
        frm=case.frm,
        sign_from=case.sign_from,
        enc_anon=case.enc_anon,
        protect_sender=case.protect_sender,
        resolver=resolver,
        secrets=secrets,
    )
    return Packed(result.packed, result.to_kids, result.from_kid, result.sign_from_kid)


def build_cases() -> list[Case]:
    cases = [Case("plaintext")]
    for kid, alg in SIGN_ALGS.items():
        cases.append(Case(f"signed_{alg.lower()}", sign_from=kid, sign_kid=kid))
    # A DID, not a key: the first authentication key we hold a secret for.
    cases.append(Case("signed_by_did", sign_from=ALICE, sign_kid=f"{ALICE}#key-1"))

    anon_targets = {
        "x25519": (BOB, BOB_X25519),
        "p256": (one_curve_did("p256"), one_curve_kids("p256")),
        "p384": (one_curve_did("p384"), one_curve_kids("p384")),
        "p521": (one_curve_did("p521"), one_curve_kids("p521")),
    }
    for curve, (to, kids) in anon_targets.items():
        for enc in ENCS:
            cases.append(Case(f"anoncrypt_{curve}_{enc}", to=to, to_kids=kids, enc_anon=enc))
    for kid, enc in ((f"{BOB}#key-p384-2", "A256GCM"), (f"{BOB}#key-x25519-3", "XC20P")):
        cases.append(
            Case(f"anoncrypt_one_key_{kid.split('#')[1]}", to=kid, to_kids=(kid,), enc_anon=enc)
        )
    cases += [
        Case(
            "anoncrypt_signed_eddsa",
            to=BOB,
            to_kids=BOB_X25519,
            sign_from=f"{ALICE}#key-1",
            sign_kid=f"{ALICE}#key-1",
            enc_anon="XC20P",
        ),
        Case(
            "anoncrypt_p384_signed_es256",
            to=one_curve_did("p384"),
            to_kids=one_curve_kids("p384"),
            sign_from=f"{ALICE}#key-2",
            sign_kid=f"{ALICE}#key-2",
            enc_anon="A256GCM",
        ),
    ]

    auth = {
        "x25519": (f"{ALICE}#key-x25519-1", BOB_X25519),
        "p256": (f"{ALICE}#key-p256-1", BOB_P256),
        "p521": (f"{ALICE}#key-p521-1", BOB_P521),
    }
    for curve, (frm, kids) in auth.items():
        cases.append(Case(f"authcrypt_{curve}", to=BOB, to_kids=kids, frm=frm, from_kid=frm))
    cases += [
        # DIDs on both sides: Alice's first key-agreement key (X25519) and
        # every key of Bob's on that curve.
        Case(
            "authcrypt_by_dids",
            to=BOB,
            to_kids=BOB_X25519,
            frm=ALICE,
            from_kid=f"{ALICE}#key-x25519-1",
        ),
        Case(
            "authcrypt_p256_one_key",
            to=f"{BOB}#key-p256-2",
            to_kids=(f"{BOB}#key-p256-2",),
            frm=f"{ALICE}#key-p256-1",
            from_kid=f"{ALICE}#key-p256-1",
        ),
    ]
    for (curve, (frm, kids)), sign in zip(auth.items(), SIGN_ALGS, strict=True):
        cases.append(
            Case(
                f"authcrypt_{curve}_signed_{SIGN_ALGS[sign].lower()}",
                to=BOB,
                to_kids=kids,
                frm=frm,
                from_kid=frm,
                sign_from=sign,
                sign_kid=sign,
            )
        )

    frm, kids = auth["x25519"]
    for enc in ENCS:
        cases.append(
            Case(
                f"protect_sender_x25519_{enc}",
                to=BOB,
                to_kids=kids,
                frm=frm,
                from_kid=frm,
                enc_anon=enc,
                protect_sender=True,
            )
        )
    frm, kids = auth["p256"]
    cases.append(
        Case(
            "protect_sender_p256_signed_eddsa",
            to=BOB,
            to_kids=kids,
            frm=frm,
            from_kid=frm,
            sign_from=f"{ALICE}#key-1",
            sign_kid=f"{ALICE}#key-1",
            protect_sender=True,
        )
    )
    frm, kids = auth["p521"]
    cases.append(
        Case(
            "protect_sender_p521_XC20P",
            to=BOB,
            to_kids=kids,
            frm=frm,
            from_kid=frm,
            enc_anon="XC20P",
            protect_sender=True,
        )
    )
    return cases + generated_cases(GENERATED)


def generated_cases(g: Generated) -> list[Case]:
    """Between our own did:peer:2 and did:key identities, by DID."""
    alice_auth = g.kids(g.peer_alice, "authentication")[0]
    alice_x25519, alice_p256 = g.kids(g.peer_alice, "keyAgreement")
    bob_x25519, bob_p256 = g.kids(g.peer_bob, "keyAgreement")
    return [
        Case(
            "did_peer_signed",
            sender=g.peer_alice,
            sign_from=g.peer_alice,
            sign_kid=alice_auth,
            sign_alg="EdDSA",
        ),
        Case(
            "did_peer_authcrypt_signed",
            to=g.peer_bob,
            to_kids=(bob_x25519,),
            frm=g.peer_alice,
            from_kid=alice_x25519,
            sign_from=g.peer_alice,
            sign_kid=alice_auth,
            sign_alg="EdDSA",
            sender=g.peer_alice,
        ),
        Case(
            "did_peer_authcrypt_p256_protect_sender",
            to=g.peer_bob,
            to_kids=(bob_p256,),
            frm=alice_p256,
            from_kid=alice_p256,
            protect_sender=True,
            enc_anon="XC20P",
            sender=g.peer_alice,
        ),
        Case(
            "did_key_anoncrypt",
            to=g.key_carol,
            to_kids=tuple(g.kids(g.key_carol, "keyAgreement")),
            enc_anon="A256GCM",
            sender=g.peer_alice,
        ),
        Case(
            "did_peer_to_did_key_authcrypt",
            to=g.key_carol,
            to_kids=tuple(g.kids(g.key_carol, "keyAgreement")),
            frm=g.peer_alice,
            from_kid=alice_x25519,
            sender=g.peer_alice,
        ),
    ]


CASES = build_cases()
CASE_NAMES = [c.name for c in CASES]
CASES_BY_NAME = {c.name: c for c in CASES}
ES256K_CASES = [
    Case(f"signed_es256k_sample_{i}", sign_from=f"{ALICE}#key-3", sign_kid=f"{ALICE}#key-3")
    for i in range(ES256K_SAMPLES)
]
VECTOR_NAMES = [v["name"] for v in vector_files.message_vectors()]


@dataclass
class Exchange:
    """Everything one interop batch produced, by case name."""

    ours: dict[str, Packed | Exception]
    didcomm_unpacked: dict[str, dict[str, Any]]
    didcomm_packed: dict[str, dict[str, Any]]
    didcomm_vectors: dict[str, dict[str, Any]]
    resolver: Any
    secrets: Any


@pytest.fixture(scope="module")
def exchange(interop_peer: Any, vectors: dict[str, Any]) -> Exchange:
    """Pack every case ourselves, then run one didcomm-python batch that
    unpacks ours, packs its own, and unpacks the appendix vectors."""
    from protocols.did.resolver import default_resolver

    extra_docs, extra_secrets = one_curve_identities(vectors["bob_secrets"])
    example_docs = vectors["did_docs"] + extra_docs
    all_secrets = vectors["secrets"] + extra_secrets + GENERATED.secrets
    # did:peer / did:key: ours resolves them itself, didcomm-python is handed
    # the documents ours produced.
    resolver = default_resolver(extra_docs=example_docs)
    docs = example_docs + GENERATED.docs
    secrets = InMemorySecrets(all_secrets)

    ours: dict[str, Packed | Exception] = {}
    for case in CASES + ES256K_CASES:
        try:
            ours[case.name] = pack_ours(case, resolver, secrets)
        except Exception as exc:  # reported by that case's test, not the fixture
            ours[case.name] = exc

    context = {"secrets": all_secrets, "did_docs": docs}
    unpack_ours = [
        (name, {"op": "unpack", "packed": p.packed, **context})
        for name, p in ours.items()
        if isinstance(p, Packed)
    ]
    pack_theirs = [(c.name, {**c.peer_pack_request(), **context}) for c in CASES + ES256K_CASES]
    unpack_vectors = [
        (v["name"], {"op": "unpack", "packed": v["packed"], **context}) for v in vectors["messages"]
    ]
    batch = unpack_ours + pack_theirs + unpack_vectors
    results = iter(interop_peer([request for _, request in batch]))
    return Exchange(
        ours=ours,
        didcomm_unpacked={name: next(results) for name, _ in unpack_ours},
        didcomm_packed={name: next(results) for name, _ in pack_theirs},
        didcomm_vectors={name: next(results) for name, _ in unpack_vectors},
        resolver=resolver,
        secrets=secrets,
    )


def our_packed(exchange: Exchange, name: str) -> Packed:
    packed = exchange.ours[name]
    if isinstance(packed, Exception):
        raise packed
    return packed


def their_packed(exchange: Exchange, name: str) -> str:
    result = exchange.didcomm_packed[name]
    assert "error" not in result, f"didcomm-python could not pack {name}: {result['error']}"
    packed: str = result["packed"]
    return packed


@pytest.mark.parametrize("name", CASE_NAMES)
def test_we_pack_didcomm_python_unpacks(name: str, exchange: Exchange) -> None:
    case = CASES_BY_NAME[name]
    packed = our_packed(exchange, name)
    result = exchange.didcomm_unpacked[name]
    assert "error" not in result, f"didcomm-python rejected our {name}: {result['error']}"
    assert result["message"] == case.message()
    assert result["metadata"] == case.expected_metadata()
    if case.to is not None:
        assert packed.to_kids == list(case.to_kids)
        assert packed.from_kid == case.from_kid
        assert packed.sign_from_kid == case.sign_kid


@pytest.mark.parametrize("name", CASE_NAMES)
def test_didcomm_python_packs_we_unpack(name: str, exchange: Exchange) -> None:
    case = CASES_BY_NAME[name]
    result = unpack(
        their_packed(exchange, name), resolver=exchange.resolver, secrets=exchange.secrets
    )
    assert result.message == case.message()
    metadata = result.metadata.to_json()
    assert {k: metadata[k] for k in case.expected_metadata()} == case.expected_metadata()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_didcomm_python_used_the_keys_we_would(name: str, exchange: Exchange) -> None:
    """Given the same DID or key, both sides choose the same keys."""
    case = CASES_BY_NAME[name]
    result = exchange.didcomm_packed[name]
    assert "error" not in result, result.get("error")
    if case.to is not None:
        assert result["to_kids"] == list(case.to_kids)
        assert result["from_kid"] == case.from_kid
    if case.sign_kid is not None:
        assert result["sign_from_kid"] == case.sign_kid


def test_we_accept_es256k_signatures_high_s_or_low_s(exchange: Exchange) -> None:
    """didcomm-python does not normalise ES256K ``s``; a valid signature is valid.

    Each of its signatures is also tried with ``s`` mirrored (``n - s``, the
    other valid signature of the same message), so both forms are always
    covered whatever didcomm-python happened to make.
    """
    for case in ES256K_CASES:
        packed = their_packed(exchange, case.name)
        for form in (packed, mirror_es256k_s(packed)):
            result = unpack(form, resolver=exchange.resolver, secrets=exchange.secrets)
            assert result.metadata.sign_alg == "ES256K"
            assert result.message == case.message()


def test_our_es256k_signatures_are_low_s(exchange: Exchange) -> None:
    """didcomm-rust rejects high-S ES256K signatures, so we never make them."""
    for case in ES256K_CASES:
        packed = our_packed(exchange, case.name).packed
        assert es256k_s(packed) <= SECP256K1_ORDER // 2
        assert "error" not in exchange.didcomm_unpacked[case.name]


def es256k_s(packed: str) -> int:
    signature = b64u_decode(json_object(packed)["signatures"][0]["signature"])
    assert len(signature) == 64
    return int.from_bytes(signature[32:], "big")


def mirror_es256k_s(packed: str) -> str:
    """The same JWS with the signature's ``s`` replaced by ``n - s``."""
    jws = json_object(packed)
    signature = b64u_decode(jws["signatures"][0]["signature"])
    mirrored = SECP256K1_ORDER - int.from_bytes(signature[32:], "big")
    jws["signatures"][0]["signature"] = b64u_encode(signature[:32] + mirrored.to_bytes(32, "big"))
    return json_dumps(jws)


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_didcomm_python_reads_the_vector_files_as_recorded(
    name: str, exchange: Exchange, vectors: dict[str, Any]
) -> None:
    """A check on ``tests/vectors``: an independent reading of each appendix
    vector gives the recorded message and metadata."""
    vector = vectors["by_name"][name]
    result = exchange.didcomm_vectors[name]
    assert "error" not in result, result.get("error")
    assert result["message"] == vector["expected_message"]
    assert result["metadata"] == vector["expected_metadata"]
