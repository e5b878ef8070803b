"""Keys, DID documents and messages for ``bench/envelope.py``, made fresh each run.

Theory of operation
-------------------
The envelope benchmark measures the same operations on two implementations
(ours, and the ``didcomm`` PyPI package run by ``bench/didcomm_ref.py`` in
another interpreter), so both must see the very same parties.  This module
builds them once, as plain JSON: DID documents whose verification methods are
``JsonWebKey2020`` with a ``publicKeyJwk`` (the one form both implementations
read without conversion), and private JWKs that carry their ``kid``.

Parties, for each key-agreement curve C in :data:`KA_CURVES`:

* ``did:example:alice-<c>``: one ``keyAgreement`` key on C (``#ka-1``), and the
  ``authentication`` keys ``#ed25519``, ``#p256`` and ``#secp256k1`` (EdDSA,
  ES256 and ES256K signing);
* ``did:example:bob-<c>-<n>`` for n in :data:`RECIPIENT_COUNTS`: n
  ``keyAgreement`` keys on C (``#ka-1`` ... ``#ka-<n>``).

Every message is the same basic message padded to exactly
:data:`MESSAGE_BYTES` of compact JSON, so operations differ only in their
cryptography.  This module is plain data: it imports our key model only to
generate keys, and nothing of it reaches the reference interpreter but JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.codec import json_bytes
from protocols.keys import PrivateKey

#: Curves we encrypt on, in the order the table shows them.
KA_CURVES = ("X25519", "P-256", "P-384", "P-521")
#: Recipient key counts per Bob document.
RECIPIENT_COUNTS = (1, 10)
#: JWS algorithm -> (curve of the signing key, its fragment in Alice's documents).
SIGNING_KEYS = {
    "EdDSA": ("Ed25519", "ed25519"),
    "ES256": ("P-256", "p256"),
    "ES256K": ("secp256k1", "secp256k1"),
}
#: Size of every plaintext message, as compact JSON.
MESSAGE_BYTES = 500
#: Fixed timestamps: the benchmark reads no clock for its messages.
CREATED_TIME = 1_700_000_000

JWS_2020_CONTEXT = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/jws-2020/v1",
]


def slug(curve: str) -> str:
    """``P-256`` -> ``p256``: the curve as it appears in DIDs and op names."""
    return curve.lower().replace("-", "")


def alice_did(curve: str) -> str:
    """The sender's DID for one key-agreement curve."""
    return f"did:example:alice-{slug(curve)}"


def bob_did(curve: str, recipients: int) -> str:
    """The recipient's DID with ``recipients`` key-agreement keys on ``curve``."""
    return f"did:example:bob-{slug(curve)}-{recipients}"


@dataclass
class Party:
    """One DID: its document (JSON) and its private JWKs (each with ``kid``)."""

    did: str
    document: dict[str, Any]
    secrets: list[dict[str, str]] = field(default_factory=list)


def _method(did: str, fragment: str, key: PrivateKey) -> dict[str, Any]:
    return {
        "id": f"{did}#{fragment}",
        "type": "JsonWebKey2020",
        "controller": did,
        "publicKeyJwk": key.public.to_jwk(),
    }


def _secret(did: str, fragment: str, key: PrivateKey) -> dict[str, str]:
    return {**key.to_jwk(), "kid": f"{did}#{fragment}"}


def _party(did: str, authentication: dict[str, PrivateKey], agreement: dict[str, PrivateKey]) -> Party:
    methods = [_method(did, frag, key) for frag, key in {**authentication, **agreement}.items()]
    document: dict[str, Any] = {"@context": JWS_2020_CONTEXT, "id": did, "verificationMethod": methods}
    if authentication:
        document["authentication"] = [f"{did}#{frag}" for frag in authentication]
    document["keyAgreement"] = [f"{did}#{frag}" for frag in agreement]
    secrets = [_secret(did, frag, key) for frag, key in {**authentication, **agreement}.items()]
    return Party(did, document, secrets)


def make_parties() -> dict[str, Party]:
    """Fresh keys and documents for every Alice and Bob, by DID."""
    parties: dict[str, Party] = {}
    for curve in KA_CURVES:
        signing = {frag: PrivateKey.generate(crv) for crv, frag in SIGNING_KEYS.values()}
        alice = _party(alice_did(curve), signing, {"ka-1": PrivateKey.generate(curve)})
        parties[alice.did] = alice
        for n in RECIPIENT_COUNTS:
            keys = {f"ka-{i}": PrivateKey.generate(curve) for i in range(1, n + 1)}
            bob = _party(bob_did(curve, n), {}, keys)
            parties[bob.did] = bob
    return parties


def make_message(sender: str, recipient: str, serial: int = 0) -> dict[str, Any]:
    """A basic message from ``sender`` to ``recipient``, exactly MESSAGE_BYTES long.

    ``serial`` makes the id distinct, so pools of packed messages differ.
    """
    message: dict[str, Any] = {
        "id": f"bench-{serial:08d}",
        "typ": "application/didcomm-plain+json",
        "type": "https://didcomm.org/basicmessage/2.0/message",
        "from": sender,
        "to": [recipient],
        "created_time": CREATED_TIME,
        "lang": "en",
        "body": {"content": ""},
    }
    pad = MESSAGE_BYTES - len(json_bytes(message))
    if pad < 0:
        raise ValueError("message headers alone exceed MESSAGE_BYTES")
    message["body"]["content"] = "x" * pad
    return message


# -- operations ---------------------------------------------------------------------

#: Content encryptions measured for anoncrypt, per curve (authcrypt is CBC only).
ANON_ENCS = {
    "X25519": ("A256CBC-HS512", "XC20P", "A256GCM"),
    "P-256": ("A256CBC-HS512",),
    "P-384": ("A256CBC-HS512",),
    "P-521": ("A256CBC-HS512",),
}
#: The curves of the targets: X25519 and Ed25519 operations must meet them.
TARGET_CURVES = ("X25519", "Ed25519")


def make_ops() -> list[dict[str, Any]]:
    """Every measured operation, as JSON both implementations read.

    Members: ``name``, ``family`` (the name without the phase), ``mode``
    (sign | anoncrypt | authcrypt), ``phase`` (pack | unpack), ``curve``,
    ``recipients``, ``enc`` or ``alg``, ``message``, ``packer`` and
    ``unpacker`` (whose secrets each phase uses), ``to``, ``frm``,
    ``sign_from``, and ``targeted`` (the ratio targets apply).
    """
    families: list[dict[str, Any]] = []
    sender = alice_did(KA_CURVES[0])
    receiver = bob_did(KA_CURVES[0], 1)
    for alg, (curve, fragment) in SIGNING_KEYS.items():
        families.append({
            "family": f"sign {alg}",
            "mode": "sign",
            "curve": curve,
            "alg": alg,
            "recipients": 0,
            "message": make_message(sender, receiver),
            "packer": sender,
            "unpacker": receiver,
            "to": None,
            "frm": None,
            "sign_from": f"{sender}#{fragment}",
        })
    for curve in KA_CURVES:
        alice = alice_did(curve)
        for mode in ("anoncrypt", "authcrypt"):
            encs = ANON_ENCS[curve] if mode == "anoncrypt" else ("A256CBC-HS512",)
            for enc in encs:
                for n in RECIPIENT_COUNTS:
                    bob = bob_did(curve, n)
                    families.append({
                        "family": f"{mode[:4]} {curve} {enc} x{n}",
                        "mode": mode,
                        "curve": curve,
                        "enc": enc,
                        "recipients": n,
                        "message": make_message(alice, bob),
                        "packer": alice,
                        "unpacker": bob,
                        "to": bob,
                        "frm": alice if mode == "authcrypt" else None,
                        "sign_from": None,
                    })
    ops = []
    for family in families:
        for phase in ("pack", "unpack"):
            ops.append({
                **family,
                "name": f"{family['family']} {phase}",
                "phase": phase,
                "targeted": family["curve"] in TARGET_CURVES,
            })
    return ops


def with_serial(message: dict[str, Any], serial: int) -> dict[str, Any]:
    """The same message under another id of the same length (for message pools)."""
    return {**message, "id": f"bench-{serial:08d}"}
