"""JWS for DIDComm signed messages (General and Flattened JSON) and compact JWTs.

Theory of operation
-------------------
A signed DIDComm message is a JWS whose payload is the plaintext message.  We
emit the General JSON form with one signature per signing key; we accept the
General and the Flattened forms.  Each signature's protected header carries
``typ`` and ``alg``; the unprotected ``header`` carries the signer's ``kid``
(a DID URL), as the spec's examples and the other implementations do.

The signing input is ``ASCII(b64u(protected) || '.' || b64u(payload))``.
This module checks signatures against keys it is given; which keys may sign
(only ``authentication`` methods of the ``from`` DID) is the envelope's rule.

``from_prior`` is a compact JWT, signed the same way (``sign_compact``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .codec import (
    b64u_decode,
    b64u_encode,
    b64u_encode_bytes,
    json_bytes,
    json_object,
    json_string,
)
from .errors import (
    BadSignatureError,
    InvalidKeyError,
    MalformedMessageError,
    UnsupportedAlgorithmError,
)
from .keys import ALG_CURVES, SIGNING_ALGS, PrivateKey, PublicKey

TYP_SIGNED = "application/didcomm-signed+json"
#: Most signatures we check on one JWS.
MAX_SIGNATURES = 16
#: Distinct protected headers remembered: a signer sends the same one every time.
HEADER_CACHE_SIZE = 1024


def signing_alg(key: PrivateKey | PublicKey) -> str:
    """The JWS ``alg`` for a key's curve (EdDSA, ES256, ES256K, ...)."""
    alg = SIGNING_ALGS.get(key.curve)
    if alg is None:
        raise UnsupportedAlgorithmError(f"{key.curve} keys cannot sign")
    return alg


def sign(
    payload: bytes, signers: list[tuple[str, PrivateKey]], typ: str = TYP_SIGNED
) -> dict[str, Any]:
    """Sign ``payload`` with each ``(kid, key)``; General JSON JWS as a dict."""
    if not signers:
        raise InvalidKeyError("no signing key")
    payload_b64 = b64u_encode(payload)
    signatures = []
    for kid, key in signers:
        protected_b64 = _protected_b64(typ, signing_alg(key))
        sig = key.sign(f"{protected_b64}.{payload_b64}".encode("ascii"))
        signatures.append(
            {"protected": protected_b64, "signature": b64u_encode(sig), "header": {"kid": kid}}
        )
    return {"payload": payload_b64, "signatures": signatures}


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _protected_b64(typ: str, alg: str) -> str:
    return b64u_encode(json_bytes({"typ": typ, "alg": alg}))


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _json_head(typ: str, alg: str, kid: str) -> tuple[bytes, str, str]:
    """The parts of one signer's JWS text that are not payload or signature.

    ``(signing-input prefix, text between payload and signature, text after
    the signature)``: a signer sends the same header every time, so this is
    built once per ``(typ, alg, kid)``.
    """
    protected = _protected_b64(typ, alg)
    return (
        protected.encode("ascii") + b".",
        f'","signatures":[{{"protected":"{protected}","signature":"',
        f'","header":{{"kid":{json_string(kid)}}}}}]}}',
    )


def sign_json(payload: bytes, kid: str, key: PrivateKey, typ: str = TYP_SIGNED) -> str:
    """``dumps(sign(payload, [(kid, key)]))`` without the dict in between.

    A signed message has one signer; this is its hot path (the payload is
    encoded once, as bytes, and the JSON text is three cached pieces around it).
    """
    signing_prefix, middle, tail = _json_head(typ, signing_alg(key), kid)
    payload_b64 = b64u_encode_bytes(payload)
    signature = b64u_encode(key.sign(signing_prefix + payload_b64))
    return '{"payload":"' + payload_b64.decode("ascii") + middle + signature + tail


def dumps(jws: dict[str, Any]) -> str:
    """The compact JSON text of a JWS made by :func:`sign` (as ``json_dumps``).

    The base64url members need no escaping, so only ``kid`` is JSON-encoded
    and the long payload is not scanned character by character.
    """
    signatures = ",".join(
        '{{"protected":"{}","signature":"{}","header":{{"kid":{}}}}}'.format(
            s["protected"], s["signature"], json_string(s["header"]["kid"])
        )
        for s in jws["signatures"]
    )
    return '{{"payload":"{}","signatures":[{}]}}'.format(jws["payload"], signatures)


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _decode_protected(protected_b64: str) -> dict[str, Any]:
    return json_object(
        b64u_decode(protected_b64, "JWS protected header"), "JWS protected header", exact=False
    )


class Signature:
    """One checked-for-shape signature of a JWS.

    A plain slotted class rather than a frozen dataclass: one is made per
    inbound signed message, and a frozen dataclass pays ``object.__setattr__``
    per field.  Treat it as immutable.
    """

    __slots__ = ("alg", "kid", "protected", "signature", "signing_input")

    def __init__(
        self, kid: str, alg: str, protected: dict[str, Any], signing_input: bytes, signature: bytes
    ) -> None:
        self.kid = kid
        self.alg = alg
        self.protected = protected
        self.signing_input = signing_input
        self.signature = signature

    def verify(self, key: PublicKey) -> None:
        """Verify against ``key``; the key's curve must fit ``alg``."""
        if ALG_CURVES.get(self.alg) != key.curve:
            raise BadSignatureError(f"a {key.curve} key cannot check an {self.alg} signature")
        key.verify(self.signature, self.signing_input)


class ParsedJWS:
    """A JWS with its payload decoded and its signatures parsed (slotted, as
    :class:`Signature` is)."""

    __slots__ = ("payload", "signatures")

    def __init__(self, payload: bytes, signatures: list[Signature]) -> None:
        self.payload = payload
        self.signatures = signatures


def _signature(payload_b64: str, entry: Any) -> Signature:
    if not isinstance(entry, dict):
        raise MalformedMessageError("JWS signature entry must be an object")
    protected_b64 = entry.get("protected")
    sig_b64 = entry.get("signature")
    if not isinstance(protected_b64, str) or not isinstance(sig_b64, str):
        raise MalformedMessageError("JWS signature needs 'protected' and 'signature' strings")
    protected = dict(_decode_protected(protected_b64))  # a copy: the cached one is shared
    header = entry.get("header", {})
    if not isinstance(header, dict):
        raise MalformedMessageError("JWS 'header' must be an object")
    kid = header.get("kid", protected.get("kid"))
    if not isinstance(kid, str):
        raise MalformedMessageError("JWS signature has no 'kid'")
    alg = protected.get("alg")
    if not isinstance(alg, str) or alg not in ALG_CURVES:
        raise UnsupportedAlgorithmError(f"unsupported JWS alg {alg!r}")
    return Signature(
        kid,
        alg,
        protected,
        f"{protected_b64}.{payload_b64}".encode("ascii"),
        b64u_decode(sig_b64, "JWS signature"),
    )


def parse(jws: dict[str, Any]) -> ParsedJWS:
    """Parse a General or Flattened JSON JWS (no signature checked yet)."""
    payload_b64 = jws.get("payload")
    if not isinstance(payload_b64, str):
        raise MalformedMessageError("JWS needs a string 'payload'")
    if "signatures" in jws:
        entries = jws["signatures"]
        if not isinstance(entries, list) or not entries:
            raise MalformedMessageError("JWS 'signatures' must be a non-empty array")
        if len(entries) > MAX_SIGNATURES:
            raise MalformedMessageError(f"JWS has more than {MAX_SIGNATURES} signatures")
    elif "signature" in jws:
        entries = [jws]  # flattened form: one signature at the top level
    else:
        raise MalformedMessageError("JWS has no signature")
    try:
        payload_b64.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedMessageError("JWS payload is not base64url") from None
    signatures = [_signature(payload_b64, e) for e in entries]
    return ParsedJWS(b64u_decode(payload_b64, "JWS payload"), signatures)


def verify(parsed: ParsedJWS, get_key: Callable[[str], PublicKey]) -> list[str]:
    """Verify every signature; ``get_key`` resolves (and vets) each kid."""
    for sig in parsed.signatures:
        sig.verify(get_key(sig.kid))
    return [s.kid for s in parsed.signatures]


# -- compact JWT (from_prior) ------------------------------------------------------


def sign_compact(claims: dict[str, Any], kid: str, key: PrivateKey) -> str:
    """A compact JWS/JWT: ``header.payload.signature``."""
    alg = signing_alg(key)
    header: dict[str, Any] = {"typ": "JWT", "alg": alg, "kid": kid}
    if alg == "EdDSA":
        header["crv"] = "Ed25519"
    signing_input = f"{b64u_encode(json_bytes(header))}.{b64u_encode(json_bytes(claims))}"
    return f"{signing_input}.{b64u_encode(key.sign(signing_input.encode('ascii')))}"


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A parsed compact JWS, signature not yet checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signature: Signature


def parse_compact(token: Any) -> CompactJWS:
    """Parse ``header.payload.signature``; the header must name ``kid`` and ``alg``."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise MalformedMessageError("compact JWS must be three base64url parts")
    header_b64, payload_b64, sig_b64 = token.split(".")
    sig = _signature(payload_b64, {"protected": header_b64, "signature": sig_b64})
    claims = json_object(b64u_decode(payload_b64, "JWT payload"), "JWT payload")
    return CompactJWS(header=sig.protected, claims=claims, signature=sig)
