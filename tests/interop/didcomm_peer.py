"""A second, independent DIDComm v2 implementation, driven over stdin/stdout.

Theory of operation
-------------------
The interop tests need someone other than us to pack and unpack messages.
That someone is SICPA's ``didcomm`` 0.3.2 from PyPI, which pins libraries that
cannot share a virtualenv with libp2p, so it lives in ``.venv-interop`` and
this script is run with that venv's interpreter (``$DIDCOMMD_INTEROP_PYTHON``).
It imports nothing from this repository: whatever it produces or accepts is
that library's own judgement.

Starting the interop interpreter costs about a second, so one run serves a
whole batch: stdin holds one JSON request or a JSON list of requests; stdout
gets one JSON result or a list of results, in the same order. Each request::

    {"op": "pack_plaintext" | "pack_signed" | "pack_encrypted" | "unpack",
     "message": {...},              # pack_*: the plaintext message
     "packed": "..." | {...},       # unpack: the packed message
     "to": DID|KID, "frm": DID|KID|null, "sign_from": DID|KID|null,
     "enc_alg_anon": "A256CBC-HS512" | "A256GCM" | "XC20P",   # default XC20P
     "protect_sender": bool,
     "secrets": [private JWKs, each with "kid"],
     "did_docs": [DID documents as JSON]}

and its result is ``{"packed": "...", "to_kids": [...], "from_kid": ...,
"sign_from_kid": ...}`` for a pack, ``{"message": {...}, "metadata": {...}}``
for an unpack (metadata as in our contract: algorithms written "ALG/ENC",
signature algorithms "EdDSA"/"ES256"/"ES256K", key ids as DID URLs), or
``{"error": "<ExceptionType>: <text>"}``. One failing request does not stop
the batch.

didcomm 0.3.2 reads DID documents through its own model (a pydid
``DIDDocument``) and only finds verification methods listed under
``verificationMethod``, by absolute id, of the types JsonWebKey2020,
X25519KeyAgreementKey2019/2020 and Ed25519VerificationKey2018/2020.
:func:`to_didcomm_doc` rewrites any DID document into that shape: embedded
methods move to ``verificationMethod`` and are referenced by id, relative ids
become absolute, and ``Multikey`` methods become ``JsonWebKey2020``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

import base58
from cryptography.hazmat.primitives.asymmetric import ec
from didcomm import (
    AnonCryptAlg,
    DIDDoc,
    DIDResolverInMemory,
    PackEncryptedConfig,
    ResolversConfig,
    SecretsResolverInMemory,
    pack_encrypted,
    pack_plaintext,
    pack_signed,
    unpack,
)
from didcomm.secrets.secrets_util import jwk_to_secret

ENC_ALG_ANON = {
    "A256CBC-HS512": AnonCryptAlg.A256CBC_HS512_ECDH_ES_A256KW,
    "A256GCM": AnonCryptAlg.A256GCM_ECDH_ES_A256KW,
    "XC20P": AnonCryptAlg.XC20P_ECDH_ES_A256KW,
}

#: multicodec prefix (unsigned varint, already encoded) -> (kty, crv)
MULTICODEC_KEYS = {
    b"\xed\x01": ("OKP", "Ed25519"),
    b"\xec\x01": ("OKP", "X25519"),
    b"\xe7\x01": ("EC", "secp256k1"),
    b"\x80\x24": ("EC", "P-256"),
    b"\x81\x24": ("EC", "P-384"),
    b"\x82\x24": ("EC", "P-521"),
}

EC_CURVES = {
    "secp256k1": (ec.SECP256K1(), 32),
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}

RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "keyAgreement",
    "capabilityInvocation",
    "capabilityDelegation",
)


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def multikey_to_jwk(multibase: str) -> dict[str, str]:
    """A ``z``-multibase multicodec public key as a public JWK."""
    if not multibase.startswith("z"):
        raise ValueError(f"unsupported multibase prefix {multibase[:1]!r}")
    data = base58.b58decode(multibase[1:])
    kty_crv = MULTICODEC_KEYS.get(data[:2])
    if kty_crv is None:
        raise ValueError(f"unsupported multicodec prefix {data[:2].hex()}")
    kty, crv = kty_crv
    raw = data[2:]
    if kty == "OKP":
        return {"kty": kty, "crv": crv, "x": b64u(raw)}
    curve, size = EC_CURVES[crv]
    numbers = ec.EllipticCurvePublicKey.from_encoded_point(curve, raw).public_numbers()
    return {
        "kty": kty,
        "crv": crv,
        "x": b64u(numbers.x.to_bytes(size, "big")),
        "y": b64u(numbers.y.to_bytes(size, "big")),
    }


def to_didcomm_method(did: str, vm: dict[str, Any]) -> dict[str, Any]:
    """One verification method in a form didcomm 0.3.2 can use."""
    vm = dict(vm)
    vm_id = vm["id"]
    if vm_id.startswith("#"):
        vm["id"] = did + vm_id
    controller = vm.get("controller") or did
    vm["controller"] = did + controller if controller.startswith("#") else controller
    if "publicKeyJwk" in vm:
        vm["type"] = "JsonWebKey2020"
    elif vm.get("type") == "Multikey" or (
        "publicKeyMultibase" in vm
        and vm.get("type") not in ("X25519KeyAgreementKey2020", "Ed25519VerificationKey2020")
    ):
        vm = {
            "id": vm["id"],
            "type": "JsonWebKey2020",
            "controller": vm["controller"],
            "publicKeyJwk": multikey_to_jwk(vm["publicKeyMultibase"]),
        }
    return vm


def to_didcomm_doc(doc: dict[str, Any]) -> DIDDoc:
    """Rewrite a DID document (JSON) into didcomm 0.3.2's model (see module doc)."""
    did = doc["id"]
    methods: dict[str, dict[str, Any]] = {}
    for vm in doc.get("verificationMethod", []):
        converted = to_didcomm_method(did, vm)
        methods[converted["id"]] = converted
    out: dict[str, Any] = {"@context": doc.get("@context", ["https://www.w3.org/ns/did/v1"])}
    out["id"] = did
    for rel in RELATIONSHIPS:
        refs = []
        for entry in doc.get(rel, []):
            if isinstance(entry, dict):
                converted = to_didcomm_method(did, entry)
                methods.setdefault(converted["id"], converted)
                refs.append(converted["id"])
            else:
                refs.append(did + entry if entry.startswith("#") else entry)
        if refs:
            out[rel] = refs
    out["verificationMethod"] = list(methods.values())
    # Services are left out on purpose: didcomm would try to route through
    # them (forward wrapping) and our libp2p service entries mean nothing to it.
    return DIDDoc.deserialize(out)


def resolvers(request: dict[str, Any]) -> ResolversConfig:
    docs = [to_didcomm_doc(d) for d in request.get("did_docs", [])]
    secrets = [jwk_to_secret(jwk) for jwk in request.get("secrets", [])]
    return ResolversConfig(
        secrets_resolver=SecretsResolverInMemory(secrets),
        did_resolver=DIDResolverInMemory(docs),
    )


def alg_name(alg: Any) -> str | None:
    """An algorithm enum of didcomm as our contract writes it."""
    if alg is None:
        return None
    value = alg.value
    if isinstance(value, tuple):
        return f"{value.alg}/{value.enc}"
    return str(value)


def metadata_json(metadata: Any) -> dict[str, Any]:
    return {
        "encrypted": metadata.encrypted,
        "authenticated": metadata.authenticated,
        "non_repudiation": metadata.non_repudiation,
        "anonymous_sender": metadata.anonymous_sender,
        "encrypted_from": None if metadata.encrypted_from is None else str(metadata.encrypted_from),
        "encrypted_to": (
            None if metadata.encrypted_to is None else [str(k) for k in metadata.encrypted_to]
        ),
        "sign_from": None if metadata.sign_from is None else str(metadata.sign_from),
        "enc_alg_auth": alg_name(metadata.enc_alg_auth),
        "enc_alg_anon": alg_name(metadata.enc_alg_anon),
        "sign_alg": alg_name(metadata.sign_alg),
    }


def kid_or_none(kid: Any) -> str | None:
    return None if kid is None else str(kid)


async def handle(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    config = resolvers(request)
    if op == "pack_plaintext":
        plain = await pack_plaintext(config, request["message"])
        return {"packed": plain.packed_msg}
    if op == "pack_signed":
        signed = await pack_signed(config, request["message"], request["sign_from"])
        return {"packed": signed.packed_msg, "sign_from_kid": str(signed.sign_from_kid)}
    if op == "pack_encrypted":
        pack_config = PackEncryptedConfig(
            enc_alg_anon=ENC_ALG_ANON[request.get("enc_alg_anon") or "XC20P"],
            protect_sender_id=bool(request.get("protect_sender", False)),
            forward=False,
        )
        encrypted = await pack_encrypted(
            config,
            request["message"],
            request["to"],
            frm=request.get("frm"),
            sign_frm=request.get("sign_from"),
            pack_config=pack_config,
        )
        return {
            "packed": encrypted.packed_msg,
            "to_kids": [str(k) for k in encrypted.to_kids],
            "from_kid": kid_or_none(encrypted.from_kid),
            "sign_from_kid": kid_or_none(encrypted.sign_from_kid),
        }
    if op == "unpack":
        # deserializer=dict: the message exactly as it was decoded, not
        # didcomm's Message model (which would drop or reorder fields).
        result = await unpack(config, request["packed"], deserializer=dict)
        return {"message": result.message, "metadata": metadata_json(result.metadata)}
    raise ValueError(f"unknown op {op!r}")


async def handle_safely(request: Any) -> dict[str, Any]:
    try:
        if not isinstance(request, dict):
            raise ValueError("a request must be a JSON object")
        return await handle(request)
    except Exception as exc:  # one bad request must not sink the batch
        return {"error": f"{type(exc).__name__}: {exc}"}


async def main() -> int:
    requests = json.load(sys.stdin)
    if isinstance(requests, list):
        results: Any = [await handle_safely(r) for r in requests]
    else:
        results = await handle_safely(requests)
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
