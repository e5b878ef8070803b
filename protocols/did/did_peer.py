"""did:peer numalgo 2 and 4 (https://identity.foundation/peer-did-method-spec/).

Theory of operation
-------------------
A did:peer:2 carries its whole document: a list of elements, each ``.`` +
purpose code + value::

    did:peer:2.Ez6LS...(X25519 multikey).Vz6Mk...(Ed25519 multikey).SeyJ0Ijoi...

===  ==========================  =============================================
code  value                       becomes
===  ==========================  =============================================
A     multikey                    ``assertionMethod``
E     multikey                    ``keyAgreement``
V     multikey                    ``authentication``
I     multikey                    ``capabilityInvocation``
D     multikey                    ``capabilityDelegation``
S     base64url(JSON), no pad     a service, with abbreviated member names
===  ==========================  =============================================

Resolution follows the spec's (clarified) rules, which every implementation
must share because other parties address our keys by these ids:

- each key element becomes a ``Multikey`` verification method with id
  ``#key-N``, N counting key elements from 1 in the order they appear;
- service JSON has its abbreviations expanded (``t`` -> ``type``, ``s`` ->
  ``serviceEndpoint``, ``r`` -> ``routingKeys``, ``a`` -> ``accept``, in keys at
  any depth; the type value ``dm`` -> ``DIDCommMessaging``); a service without
  an ``id`` gets ``#service``, then ``#service-1``, ``#service-2``, ...

:func:`create_did_peer_2` writes key-agreement keys first, then authentication
keys, then services (the order of the did:peer and DIDComm reference
libraries), so our own keys are ``#key-1`` (X25519) and ``#key-2`` (Ed25519) in
the usual one-of-each case.  Pre-"clarified" encoders sometimes put several
services in one ``S`` element as a JSON list; we read that too.

Numalgo 4 carries a whole "input document" (a DID document without ``id``,
with relative ids) instead::

    did:peer:4<hash>:<encoded document>     long form
    did:peer:4<hash>                        short form

``<encoded document>`` is ``z`` + base58btc(multicodec ``json`` (0x0200) +
compact JSON) and ``<hash>`` is ``z`` + base58btc(sha2-256 multihash of the
encoded document's characters).  The long form resolves on its own (after the
hash is checked); the short form only with a long form seen earlier, which
:class:`~protocols.did.resolver.DIDPeerResolver` remembers.  The encoded
document is bounded by :data:`~protocols.multibase.MAX_BASE58_CHARS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..codec import b64u_decode, b64u_encode, json_bytes, json_loads
from ..errors import DIDCommError, DIDNotResolvedError, InvalidDIDError, KeyRoleError
from ..keys import KEY_AGREEMENT_CURVES, SIGNING_ALGS, PublicKey
from ..multibase import b58decode, b58encode, varint_decode, varint_encode
from .document import MAX_SERVICES, MAX_VERIFICATION_METHODS, DIDDocument
from .syntax import quote, validate_did

PREFIX = "did:peer:"
NUMALGO_2_PREFIX = "did:peer:2"
NUMALGO_4_PREFIX = "did:peer:4"
#: multicodec ``json``, prefixing a numalgo 4 encoded document.
JSON_MULTICODEC = 0x0200
#: multihash prefix of a sha2-256 digest (code 0x12, 32 bytes).
SHA256_MULTIHASH = b"\x12\x20"
#: Contexts of a resolved did:peer:2 document (the spec's, clarified).
CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]

#: Purpose code -> verification relationship.
KEY_PURPOSES = {
    "A": "assertionMethod",
    "E": "keyAgreement",
    "V": "authentication",
    "I": "capabilityInvocation",
    "D": "capabilityDelegation",
}
SERVICE_PURPOSE = "S"
#: Most elements in one did:peer:2 (every key and service is one element).
MAX_ELEMENTS = MAX_VERIFICATION_METHODS + MAX_SERVICES
#: Deepest JSON nesting accepted inside an encoded service.
MAX_SERVICE_DEPTH = 8

#: Member names abbreviated in encoded services (the spec's lookup table).
ABBREVIATIONS = {
    "type": "t",
    "serviceEndpoint": "s",
    "routingKeys": "r",
    "accept": "a",
}
_EXPANSIONS = {short: full for full, short in ABBREVIATIONS.items()}
#: Service type values abbreviated in encoded services.
TYPE_ABBREVIATIONS = {"DIDCommMessaging": "dm"}
_TYPE_EXPANSIONS = {short: full for full, short in TYPE_ABBREVIATIONS.items()}


# -- creating -------------------------------------------------------------------


def create_did_peer_2(
    authentication: Sequence[PublicKey],
    key_agreement: Sequence[PublicKey],
    services: Sequence[Mapping[str, Any]] = (),
) -> str:
    """A did:peer:2 for these keys and services (services in full, unabbreviated form).

    Key-agreement keys must be on an ECDH curve, authentication keys on a
    signing curve (KeyRoleError otherwise).  A service ``id``, if given, must be
    relative (``#didcomm``).  The result is checked by resolving it.
    """
    parts = [NUMALGO_2_PREFIX]
    for key in key_agreement:
        if key.curve not in KEY_AGREEMENT_CURVES:
            raise KeyRoleError(f"a {key.curve} key cannot be a key-agreement key")
        parts.append(".E" + key.to_multikey())
    for key in authentication:
        if key.curve not in SIGNING_ALGS:
            raise KeyRoleError(f"a {key.curve} key cannot be an authentication key")
        parts.append(".V" + key.to_multikey())
    for service in services:
        if not isinstance(service, Mapping):
            raise InvalidDIDError("a did:peer:2 service must be a JSON object")
        sid = service.get("id")
        if sid is not None and not (isinstance(sid, str) and sid.startswith("#")):
            raise InvalidDIDError("a did:peer:2 service id must be relative ('#...')")
        parts.append(".S" + b64u_encode(json_bytes(abbreviate_service(service))))
    if len(parts) == 1:
        raise InvalidDIDError("a did:peer:2 needs at least one key or service")
    did = "".join(parts)
    resolve_did_peer(did)
    return did


def abbreviate_service(service: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the did:peer:2 abbreviations to a service (keys at any depth, type value)."""
    out: dict[str, Any] = _rename_keys(dict(service), ABBREVIATIONS, 0)
    stype = out.get("t")
    if isinstance(stype, str):
        out["t"] = TYPE_ABBREVIATIONS.get(stype, stype)
    return out


def expand_service(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`abbreviate_service`."""
    out: dict[str, Any] = _rename_keys(dict(encoded), _EXPANSIONS, 0)
    stype = out.get("type")
    if isinstance(stype, str):
        out["type"] = _TYPE_EXPANSIONS.get(stype, stype)
    return out


def _rename_keys(value: Any, names: Mapping[str, str], depth: int) -> Any:
    if depth > MAX_SERVICE_DEPTH:
        raise InvalidDIDError(f"did:peer:2 service is nested deeper than {MAX_SERVICE_DEPTH}")
    if isinstance(value, list):
        return [_rename_keys(item, names, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        new_key = names.get(key, key)
        if new_key in out:
            raise InvalidDIDError(f"did:peer:2 service has both {quote(key)} and its alias")
        out[new_key] = _rename_keys(item, names, depth + 1)
    return out


# -- resolving ------------------------------------------------------------------


def resolve_did_peer(did: str) -> DIDDocument:
    """The document of a did:peer:2 or long-form did:peer:4.

    DIDNotResolvedError for other numalgos and for a short-form did:peer:4 (see
    :func:`resolve_did_peer_4_short`, or let DIDPeerResolver remember long forms).
    """
    validate_did(did)
    if not did.startswith(PREFIX):
        raise DIDNotResolvedError(f"not a did:peer: {quote(did)}")
    if did.startswith(NUMALGO_2_PREFIX):
        return DIDDocument.from_json(peer_2_document(did))
    if did.startswith(NUMALGO_4_PREFIX) and ":" in did[len(NUMALGO_4_PREFIX) :]:
        return DIDDocument.from_json(peer_4_document(did))
    if did.startswith(NUMALGO_4_PREFIX):
        raise DIDNotResolvedError(f"short-form did:peer:4 needs its long form first: {quote(did)}")
    raise DIDNotResolvedError(
        f"did:peer numalgo {quote(did[len(PREFIX) : len(PREFIX) + 1])} is not supported"
    )


def peer_2_document(did: str) -> dict[str, Any]:
    """The resolved did:peer:2 document as JSON (relative ids, as the spec writes it)."""
    body = did[len(NUMALGO_2_PREFIX) :]
    if not body.startswith("."):
        raise InvalidDIDError(f"malformed did:peer:2 {quote(did)}")
    elements = body[1:].split(".")
    if len(elements) > MAX_ELEMENTS:
        raise InvalidDIDError(f"did:peer:2 has more than {MAX_ELEMENTS} elements")
    doc: dict[str, Any] = {"@context": list(CONTEXT), "id": did}
    methods: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    unnamed_services = 0
    for element in elements:
        if not element:
            raise InvalidDIDError(f"did:peer:2 has an empty element: {quote(did)}")
        purpose, value = element[0], element[1:]
        if purpose in KEY_PURPOSES:
            if not value.startswith("z"):
                raise InvalidDIDError("did:peer:2 keys must be base58btc multikeys ('z...')")
            vm_id = f"#key-{len(methods) + 1}"
            methods.append(
                {
                    "id": vm_id,
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": value,
                }
            )
            doc.setdefault(KEY_PURPOSES[purpose], []).append(vm_id)
        elif purpose == SERVICE_PURPOSE:
            for service in _decode_services(value):
                if "id" not in service:
                    n = unnamed_services
                    service["id"] = "#service" if n == 0 else f"#service-{n}"
                    unnamed_services += 1
                services.append(service)
        else:
            raise InvalidDIDError(f"did:peer:2 has an unknown purpose code {quote(purpose)}")
    doc["verificationMethod"] = methods
    if services:
        doc["service"] = services
    return doc


def _decode_services(value: str) -> list[dict[str, Any]]:
    """One encoded service -- or, from pre-clarification encoders, a JSON list of them."""
    try:
        decoded = json_loads(b64u_decode(value, "did:peer:2 service"), "did:peer:2 service")
    except DIDCommError as exc:
        raise InvalidDIDError(str(exc)) from None
    items = decoded if isinstance(decoded, list) else [decoded]
    if len(items) > MAX_SERVICES:
        raise InvalidDIDError(f"did:peer:2 has more than {MAX_SERVICES} services")
    if not all(isinstance(item, dict) for item in items):
        raise InvalidDIDError("a did:peer:2 service must be a JSON object")
    return [expand_service(item) for item in items]


# -- numalgo 4 ----------------------------------------------------------------------


def create_did_peer_4(input_document: Mapping[str, Any]) -> str:
    """The long-form did:peer:4 of an input document (no ``id``, relative ids only).

    The document is checked by resolving the result.
    """
    if not isinstance(input_document, Mapping):
        raise InvalidDIDError("a did:peer:4 input document must be a JSON object")
    if "id" in input_document:
        raise InvalidDIDError("a did:peer:4 input document must not have an 'id'")
    encoded = "z" + b58encode(varint_encode(JSON_MULTICODEC) + json_bytes(dict(input_document)))
    did = f"{NUMALGO_4_PREFIX}{_peer_4_hash(encoded)}:{encoded}"
    resolve_did_peer(did)
    return did


def peer_4_short_form(did: str) -> str:
    """The short form of a long-form did:peer:4 (the DID itself if already short)."""
    validate_did(did)
    if not did.startswith(NUMALGO_4_PREFIX):
        raise InvalidDIDError(f"not a did:peer:4: {quote(did)}")
    colons = did.count(":")
    if colons not in (2, 3):
        raise InvalidDIDError(f"malformed did:peer:4 {quote(did)}")
    return did.rpartition(":")[0] if colons == 3 else did


def _peer_4_hash(encoded: str) -> str:
    digest = hashlib.sha256(encoded.encode("ascii")).digest()
    return "z" + b58encode(SHA256_MULTIHASH + digest)


def _peer_4_input_document(long_did: str) -> dict[str, Any]:
    """The checked input document of a long-form did:peer:4."""
    validate_did(long_did)
    body = long_did[len(NUMALGO_4_PREFIX) :]
    hash_part, colon, encoded = body.partition(":")
    if not colon or not encoded.startswith("z") or not hash_part.startswith("z"):
        raise InvalidDIDError(f"malformed long-form did:peer:4 {quote(long_did)}")
    if _peer_4_hash(encoded) != hash_part:
        raise InvalidDIDError("did:peer:4 hash does not match its document")
    try:
        raw = b58decode(encoded[1:])
        code, used = varint_decode(raw)
    except DIDCommError as exc:
        raise InvalidDIDError(f"malformed did:peer:4 document: {exc}") from None
    if code != JSON_MULTICODEC:
        raise InvalidDIDError("did:peer:4 document is not multicodec JSON")
    try:
        document = json_loads(raw[used:], "did:peer:4 document")
    except DIDCommError as exc:
        raise InvalidDIDError(str(exc)) from None
    if not isinstance(document, dict):
        raise InvalidDIDError("did:peer:4 document must be a JSON object")
    if "id" in document:
        raise InvalidDIDError("a did:peer:4 input document must not have an 'id'")
    return document


def _contextualize(document: dict[str, Any], did: str, other_form: str) -> dict[str, Any]:
    also_known_as = document.get("alsoKnownAs", [])
    if not isinstance(also_known_as, list):
        raise InvalidDIDError("alsoKnownAs must be a list")
    # Controllers default to the document's DID in DIDDocument.from_json.
    return {**document, "id": did, "alsoKnownAs": [*also_known_as, other_form]}


def peer_4_document(long_did: str) -> dict[str, Any]:
    """The resolved long-form did:peer:4 document as JSON."""
    document = _peer_4_input_document(long_did)
    return _contextualize(document, long_did, peer_4_short_form(long_did))


def resolve_did_peer_4_short(short_did: str, long_did: str) -> DIDDocument:
    """The short-form did:peer:4 document, given its long form."""
    if peer_4_short_form(long_did) != short_did or short_did == long_did:
        raise InvalidDIDError("the long-form did:peer:4 does not match the short form")
    document = _peer_4_input_document(long_did)
    return DIDDocument.from_json(_contextualize(document, short_did, long_did))
