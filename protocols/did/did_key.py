"""did:key: a DID that is a public key (https://w3c-ccg.github.io/did-method-key/).

Theory of operation
-------------------
``did:key:<multikey>`` where ``<multikey>`` is ``z`` + base58btc(multicodec
prefix + key bytes), EC points compressed.  Resolution expands the key into a
document; nothing is looked up anywhere.

Our choices, where the did:key spec leaves room:

- Verification methods are ``Multikey`` with ``publicKeyMultibase`` (the
  spec's default representation), ids ``did:key:<mk>#<mk>``.
- Relationships by curve:

  ===========  ======================================  ===========================
  curve        authentication, assertionMethod,         keyAgreement
               capabilityInvocation/Delegation
  ===========  ======================================  ===========================
  Ed25519      the key                                  derived X25519 key (below)
  X25519       -                                        the key
  P-256/384/521  the key                                the key
  secp256k1    the key                                  - (we do no ECDH on it)
  ===========  ======================================  ===========================

- For Ed25519, the X25519 key-agreement key is libsodium's
  ``crypto_sign_ed25519_pk_to_curve25519`` of the key, listed second with id
  ``did:key:<mk>#<x25519 multikey>`` -- exactly as the spec's test vectors.
- The multikey must be canonical: decoding and re-encoding must give the same
  string (so an uncompressed EC point, which would be a second DID for the same
  key, is refused).
"""

from __future__ import annotations

from typing import Any

import nacl.bindings as sodium
import nacl.exceptions

from ..errors import DIDCommError, DIDNotResolvedError, InvalidDIDError
from ..keys import KEY_AGREEMENT_CURVES, SIGNING_ALGS, PublicKey
from .document import DIDDocument
from .syntax import quote, validate_did

PREFIX = "did:key:"
#: Contexts of a resolved did:key document (DID Core + Multikey).
CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
_SIGNING_RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "capabilityInvocation",
    "capabilityDelegation",
)


def create_did_key(public: PublicKey) -> str:
    """The did:key of a public key (any supported curve)."""
    return PREFIX + public.to_multikey()


def did_key_public_key(did: str) -> PublicKey:
    """The key a did:key names (after checking the DID is canonical)."""
    validate_did(did)
    if not did.startswith(PREFIX):
        raise DIDNotResolvedError(f"not a did:key: {quote(did)}")
    multikey = did[len(PREFIX) :]
    try:
        key = PublicKey.from_multikey(multikey)
    except DIDCommError as exc:
        raise InvalidDIDError(f"malformed did:key {quote(did)}: {exc}") from None
    if key.to_multikey() != multikey:
        raise InvalidDIDError(f"did:key is not in canonical (compressed) form: {quote(did)}")
    return key


def ed25519_to_x25519(public: PublicKey) -> PublicKey:
    """The X25519 key that corresponds to an Ed25519 key (libsodium's conversion)."""
    try:
        x = sodium.crypto_sign_ed25519_pk_to_curve25519(public.x)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError):
        raise InvalidDIDError("Ed25519 key is not a valid curve point") from None
    return PublicKey("X25519", x)


def resolve_did_key(did: str) -> DIDDocument:
    """Expand a did:key into its DID document (see the table above)."""
    key = did_key_public_key(did)
    multikey = did[len(PREFIX) :]
    own_id = f"{did}#{multikey}"
    methods: list[dict[str, Any]] = [_multikey_vm(own_id, did, key)]
    doc: dict[str, Any] = {"@context": list(CONTEXT), "id": did, "verificationMethod": methods}
    if key.curve in SIGNING_ALGS:
        for member in _SIGNING_RELATIONSHIPS:
            doc[member] = [own_id]
    if key.curve == "Ed25519":
        x25519 = ed25519_to_x25519(key)
        x_id = f"{did}#{x25519.to_multikey()}"
        methods.append(_multikey_vm(x_id, did, x25519))
        doc["keyAgreement"] = [x_id]
    elif key.curve in KEY_AGREEMENT_CURVES:
        doc["keyAgreement"] = [own_id]
    return DIDDocument.from_json(doc)


def _multikey_vm(vm_id: str, did: str, key: PublicKey) -> dict[str, Any]:
    return {
        "id": vm_id,
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": key.to_multikey(),
    }
