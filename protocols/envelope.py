"""Pack and unpack DIDComm v2.1 messages: plaintext, signed, encrypted, nested.

Theory of operation
-------------------
Packing turns a plaintext message (a dict) into one of the media types of
``message_structure.md``:

==============================  ==========================================
form                            how
==============================  ==========================================
plaintext                       ``pack_plaintext``
sign(plaintext)                 ``pack_signed``
anoncrypt(plaintext)            ``pack_encrypted(to=...)``
authcrypt(plaintext)            ``pack_encrypted(to=..., frm=...)``
anoncrypt(sign(plaintext))      ``pack_encrypted(to=..., sign_from=...)``
authcrypt(sign(plaintext))      ``pack_encrypted(to=..., frm=..., sign_from=...)``
anoncrypt(authcrypt(plaintext)) ``pack_encrypted(..., frm=..., protect_sender=True)``
==============================  ==========================================

Unpacking peels layers from the outside in, in the only orders the spec
allows (anoncrypt -> authcrypt -> sign -> plaintext, each optional), and
records in :class:`Metadata` what protection the message really had, so the
daemon can refuse a message that lacks what its protocol requires.

Key rules, enforced both ways:

* only ``keyAgreement`` keys encrypt, authcrypt or decrypt; only
  ``authentication`` keys sign (a key-agreement key's signature, or an
  authcrypt from a signing key, is a :class:`KeyRoleError`);
* the authcrypt sender key and every signer belong to the message's ``from``
  DID, and the recipient key belongs to a DID in ``to`` (``message_structure``
  "Consistency"); a mismatch is an error, never a warning;
* when a DID (not a key id) is given, keys are chosen as the spec says: the
  sender's first key-agreement key on a curve the recipient also has, and all
  of the recipient's key-agreement keys on that curve.

A ``routing/2.0/forward`` message addressed to one of our DIDs is unwrapped
and its attachment unpacked in turn (``re_wrapped_in_forward``).

Nothing here reads a clock: pass ``now`` to have ``expires_time`` enforced.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import jwe, jws
from .codec import b64u_decode, has_long_digit_run, json_bytes, json_dumps, json_object
from .codec import orjson_loads as _orjson_loads
from .did.document import DIDDocument, VerificationMethod
from .did.resolver import DIDResolver, split_did_url
from .errors import (
    DIDCommError,
    ExpiredMessageError,
    FromPriorError,
    InvalidDIDError,
    KeyRoleError,
    MalformedMessageError,
    MessageTooLargeError,
    NoCompatibleKeysError,
    RecipientMismatchError,
    SecretNotFoundError,
    SenderMismatchError,
    UnsupportedAlgorithmError,
)
from .keys import PrivateKey, PublicKey
from .message import TYP_PLAIN, is_expired, media_type, validate
from .secrets import SecretsResolver

#: Largest packed message we unpack (bytes of JSON).
MAX_PACKED_BYTES = 4 * 1024 * 1024
#: Most envelope layers (anon, auth, sign, forward...) we peel from one message.
MAX_LAYERS = 6
#: Most forward wrappers we unwrap (each is a further layer).
MAX_FORWARD_HOPS = 2

FORWARD_TYPE = "https://didcomm.org/routing/2.0/forward"
TYP_SIGNED = jws.TYP_SIGNED
TYP_ENCRYPTED = jwe.TYP_ENCRYPTED


@dataclass
class Metadata:
    """What protection an unpacked message actually had."""

    encrypted: bool = False
    authenticated: bool = False
    non_repudiation: bool = False
    anonymous_sender: bool = False
    re_wrapped_in_forward: bool = False
    encrypted_from: str | None = None
    encrypted_to: list[str] | None = None
    sign_from: str | None = None
    from_prior_issuer_kid: str | None = None
    enc_alg_auth: str | None = None
    enc_alg_anon: str | None = None
    sign_alg: str | None = None
    signed_message: str | None = None
    from_prior: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        # Not dataclasses.asdict: its recursive deep copy cost ~0.1 ms a message.
        out = dict(self.__dict__)
        if self.encrypted_to is not None:
            out["encrypted_to"] = list(self.encrypted_to)
        if self.from_prior is not None:
            out["from_prior"] = copy.deepcopy(self.from_prior)
        return out


_BLANK_METADATA = dict(Metadata().__dict__)
#: ``enc_alg_anon`` by content encryption, written once rather than per message.
_ANON_ALGS = {enc: f"{jwe.ALG_ANON}/{enc}" for enc in jwe.ANON_ENCS}


@dataclass
class UnpackResult:
    """The plaintext message and its metadata."""

    message: dict[str, Any]
    metadata: Metadata = field(default_factory=Metadata)


@dataclass
class PackEncryptedResult:
    """A packed encrypted message and the keys that were used."""

    packed: str
    to_kids: list[str]
    from_kid: str | None
    sign_from_kid: str | None


# -- key lookup -------------------------------------------------------------------


def _resolve(resolver: DIDResolver, did: str) -> DIDDocument:
    return resolver.resolve(did)


def _vm_in(doc: DIDDocument, kid: str, relationship: str) -> VerificationMethod:
    """Resolve ``kid`` in ``doc`` and require it in ``relationship``."""
    vm = doc.resolve_vm(kid)
    listed = doc.key_agreement if relationship == "keyAgreement" else doc.authentication
    if vm.id not in listed:
        if relationship == "keyAgreement":
            raise KeyRoleError(f"{kid} is not a keyAgreement key of {doc.id}")
        raise KeyRoleError(f"{kid} is not an authentication key of {doc.id}")
    return vm


def _public_key(resolver: DIDResolver, kid: str, relationship: str) -> PublicKey:
    did, fragment = split_did_url(kid)
    if fragment is None:
        raise InvalidDIDError(f"{kid!r} is not a DID URL with a key fragment")
    return _vm_in(_resolve(resolver, did), kid, relationship).public_key


def _methods(doc: DIDDocument, relationship: str) -> list[VerificationMethod]:
    if relationship == "keyAgreement":
        return doc.key_agreement_methods()
    return doc.authentication_methods()


def _own_keys(
    did_or_kid: str, relationship: str, resolver: DIDResolver, secrets: SecretsResolver
) -> list[tuple[str, PrivateKey]]:
    """Our private keys for a DID (or one kid) in a relationship, in document order."""
    did, fragment = split_did_url(did_or_kid)
    doc = _resolve(resolver, did)
    if fragment is not None:
        vm = _vm_in(doc, did_or_kid, relationship)
        key = secrets.get_key(vm.id)
        if key is None:
            raise SecretNotFoundError(f"no private key for {vm.id}")
        return [(vm.id, key)]
    found = []
    for vm in _methods(doc, relationship):
        key = secrets.get_key(vm.id)
        if key is not None:
            found.append((vm.id, key))
    if not found:
        what = "key agreement" if relationship == "keyAgreement" else "authentication"
        raise SecretNotFoundError(f"no private {what} key for {did}")
    return found


def _recipient_keys(resolver: DIDResolver, to: str) -> list[jwe.Recipient]:
    did, fragment = split_did_url(to)
    doc = _resolve(resolver, did)
    if fragment is not None:
        vm = _vm_in(doc, to, "keyAgreement")
        return [jwe.Recipient(vm.id, vm.public_key)]
    keys = [jwe.Recipient(vm.id, vm.public_key) for vm in doc.key_agreement_methods()]
    if not keys:
        raise NoCompatibleKeysError(f"{did} has no usable keyAgreement key")
    return keys


# -- pack -------------------------------------------------------------------------


def pack_plaintext(message: dict[str, Any]) -> str:
    """Validate and serialize a plaintext message."""
    return json_dumps(validate(message))


def _sign_from_prior(
    message: dict[str, Any],
    issuer_kid: str | None,
    resolver: DIDResolver,
    secrets: SecretsResolver,
) -> dict[str, Any]:
    """Replace a ``from_prior`` claims object by its signed JWT."""
    claims = message.get("from_prior") if isinstance(message, dict) else None
    if not isinstance(claims, dict):
        return message
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise FromPriorError("from_prior claims need 'iss' (the prior DID)")
    if claims.get("sub") is not None and claims.get("sub") != message.get("from"):
        raise FromPriorError("from_prior 'sub' must equal the message's 'from'")
    kid, key = _own_keys(issuer_kid or iss, "authentication", resolver, secrets)[0]
    if split_did_url(kid)[0] != iss:
        raise FromPriorError("from_prior issuer key does not belong to 'iss'")
    return {**message, "from_prior": jws.sign_compact(claims, kid, key)}


def pack_signed(
    message: dict[str, Any],
    sign_from: str,
    *,
    resolver: DIDResolver,
    secrets: SecretsResolver,
    from_prior_issuer_kid: str | None = None,
) -> str:
    """sign(plaintext) as a General JSON JWS string."""
    message = validate(_sign_from_prior(message, from_prior_issuer_kid, resolver, secrets))
    return _sign(message, sign_from, resolver, secrets)[0]


def _sign(
    message: dict[str, Any], sign_from: str, resolver: DIDResolver, secrets: SecretsResolver
) -> tuple[str, str]:
    """The JWS text of a validated message, and the kid that signed it."""
    if message.get("from") is not None and message["from"] != split_did_url(sign_from)[0]:
        raise SenderMismatchError("the signer must be the message's 'from' DID")
    kid, key = _own_keys(sign_from, "authentication", resolver, secrets)[0]
    return jws.sign_json(json_bytes(message), kid, key), kid


def _check_party(message: dict[str, Any], header: str, did_or_kid: str) -> None:
    did = split_did_url(did_or_kid)[0]
    if header == "to":
        if did not in (message.get("to") or []):
            raise RecipientMismatchError(f"{did} is not in the message's 'to'")
    elif message.get("from") != did:
        raise SenderMismatchError(f"{did} is not the message's 'from'")


def pack_encrypted(
    message: dict[str, Any],
    to: str,
    *,
    frm: str | None = None,
    sign_from: str | None = None,
    enc_anon: str = jwe.ENC_CBC,
    protect_sender: bool = False,
    resolver: DIDResolver,
    secrets: SecretsResolver,
    from_prior_issuer_kid: str | None = None,
) -> PackEncryptedResult:
    """Encrypt to every key-agreement key of ``to`` on one curve.

    ``frm`` makes it authcrypt, ``sign_from`` signs first, ``protect_sender``
    wraps the authcrypt in an anoncrypt (``enc_anon``).
    """
    if protect_sender and frm is None:
        raise ValueError("protect_sender needs frm (it hides an authcrypt sender)")
    if enc_anon not in jwe.ANON_ENCS:
        raise UnsupportedAlgorithmError(f"unsupported content encryption {enc_anon!r}")
    message = validate(_sign_from_prior(message, from_prior_issuer_kid, resolver, secrets))
    _check_party(message, "to", to)
    if frm is not None:
        _check_party(message, "from", frm)

    sign_from_kid = None
    if sign_from is not None:
        payload, sign_from_kid = _sign(message, sign_from, resolver, secrets)
        inner = payload.encode("utf-8")
    else:
        inner = json_bytes(message)

    recipients = _recipient_keys(resolver, to)
    from_kid = None
    if frm is not None:
        curves = {r.key.curve for r in recipients}
        senders = [
            (kid, key)
            for kid, key in _own_keys(frm, "keyAgreement", resolver, secrets)
            if key.curve in curves
        ]
        if not senders:
            raise NoCompatibleKeysError("sender and recipient share no key agreement curve")
        from_kid, sender_key = senders[0]
        recipients = [r for r in recipients if r.key.curve == sender_key.curve]
        packed = jwe.encrypt_json(inner, recipients, enc=jwe.ENC_CBC, sender=(from_kid, sender_key))
        if protect_sender:
            packed = jwe.encrypt_json(packed.encode("utf-8"), recipients, enc=enc_anon)
    else:
        curve = recipients[0].key.curve
        recipients = [r for r in recipients if r.key.curve == curve]
        packed = jwe.encrypt_json(inner, recipients, enc=enc_anon)
    return PackEncryptedResult(
        packed=packed,
        to_kids=[r.kid for r in recipients],
        from_kid=from_kid,
        sign_from_kid=sign_from_kid,
    )


# -- unpack -----------------------------------------------------------------------


def _form(obj: dict[str, Any]) -> str:
    if "ciphertext" in obj and "recipients" in obj:
        return "jwe"
    if "payload" in obj and ("signatures" in obj or "signature" in obj):
        return "jws"
    return "plain"


class _Unpacker:
    """Peels one message; holds the metadata it gathers on the way."""

    __slots__ = ("anon_to", "auth_to", "meta", "resolver", "secrets", "stage", "used_recipient")

    def __init__(self, resolver: DIDResolver, secrets: SecretsResolver) -> None:
        self.resolver = resolver
        self.secrets = secrets
        self.meta = Metadata.__new__(Metadata)
        # Metadata() without its __init__: fourteen keyword defaults bound and
        # stored one by one cost more than copying them in one C call.
        self.meta.__dict__.update(_BLANK_METADATA)
        self.anon_to: list[str] | None = None
        self.auth_to: list[str] | None = None
        self.used_recipient: str | None = None
        self.stage = 0  # 0 start, 1 after anoncrypt, 2 after authcrypt, 3 after sign

    def _layer_jwe(self, parsed: jwe.ParsedJWE) -> bytes:
        meta = self.meta
        if parsed.alg == jwe.ALG_ANON:
            if self.stage >= 1:
                raise MalformedMessageError("anoncrypt may only be the outermost layer")
            plaintext, kid = jwe.decrypt(parsed, self.secrets.get_key)
            meta.enc_alg_anon = _ANON_ALGS.get(parsed.enc) or f"{parsed.alg}/{parsed.enc}"
            self.anon_to = parsed.kids
            self.stage = 1
        else:
            if self.stage >= 2:
                raise MalformedMessageError("authcrypt cannot be nested inside this layer")
            skid = parsed.skid
            if skid is None:
                raise MalformedMessageError("authcrypt JWE names no sender key")
            if "skid" in parsed.protected and parsed.skid_from_apu() != skid:
                raise SenderMismatchError("'apu' does not encode 'skid'")
            sender_key = _public_key(self.resolver, skid, "keyAgreement")
            plaintext, kid = jwe.decrypt(parsed, self.secrets.get_key, sender_key)
            meta.enc_alg_auth = f"{parsed.alg}/{parsed.enc}"
            meta.encrypted_from = skid
            meta.authenticated = True
            self.auth_to = parsed.kids
            self.stage = 2
        meta.encrypted = True
        self.used_recipient = kid
        return plaintext

    def _layer_jws(self, obj: dict[str, Any], raw: bytes | str | None) -> bytes:
        if self.stage >= 3:
            raise MalformedMessageError("a signed message cannot be nested in another")
        parsed = jws.parse(obj)
        signers = jws.verify(parsed, lambda kid: _public_key(self.resolver, kid, "authentication"))
        self.meta.sign_from = signers[0]
        self.meta.sign_alg = parsed.signatures[0].alg
        self.meta.non_repudiation = True
        self.meta.authenticated = True
        # The JWS as received (re-serialising it costs as much as parsing it).
        if raw is None:
            self.meta.signed_message = json_dumps(obj)
        else:
            self.meta.signed_message = raw if isinstance(raw, str) else raw.decode("utf-8")
        self.stage = 3
        return parsed.payload

    def run(self, data: bytes | str, now: int | None) -> UnpackResult:
        return self.peel(_load(data), data, now, MAX_LAYERS)

    def peel(
        self, obj: dict[str, Any], raw: bytes | str | None, now: int | None, layers: int
    ) -> UnpackResult:
        """Peel at most ``layers`` layers off ``obj`` (parsed from ``raw``, if text)."""
        forwards = 0
        for _ in range(layers):
            # _form(), inlined: this loop runs twice or more for every message.
            if "ciphertext" in obj and "recipients" in obj:
                raw = self._layer_jwe(jwe.parse(obj))
                obj = _decrypted_object(raw)
            elif "payload" in obj and ("signatures" in obj or "signature" in obj):
                raw = self._layer_jws(obj, raw)
                obj = _load(raw)
            else:
                if raw is not None and has_long_digit_run(raw):
                    # The envelope layers were parsed for speed; a message's
                    # integers beyond 64 bits must come back exact.
                    obj = json_object(raw, "message")
                message = validate(obj)
                if message.get("type") != FORWARD_TYPE:
                    return self._finish(message, now)
                inner = self._forwarded(message)
                if inner is None:
                    return self._finish(message, now)
                forwards += 1
                if forwards > MAX_FORWARD_HOPS:
                    raise MalformedMessageError("too many forward wrappers")
                self.meta.re_wrapped_in_forward = True
                self.stage = 0
                obj, raw = inner, None
        raise MalformedMessageError(f"more than {MAX_LAYERS} envelope layers")

    def _forwarded(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The attached message of a forward whose ``next`` is ours, else None."""
        if message.get("type") != FORWARD_TYPE:
            return None
        body = message.get("body") or {}
        nxt = body.get("next") if isinstance(body, dict) else None
        attachments = message.get("attachments") or []
        if not isinstance(nxt, str) or not attachments:
            return None
        try:
            doc = _resolve(self.resolver, split_did_url(nxt)[0])
        except DIDCommError:
            return None  # not a DID we can resolve, so not ours
        if not self.secrets.find_keys(vm.id for vm in doc.key_agreement_methods()):
            return None  # a forward for someone else: the caller routes it
        data = attachments[0].get("data") if isinstance(attachments[0], dict) else None
        if isinstance(data, dict) and isinstance(data.get("json"), dict):
            inner: dict[str, Any] = data["json"]
            return inner
        if isinstance(data, dict) and isinstance(data.get("base64"), str):
            raw = b64u_decode(data["base64"], "forward attachment")
            if len(raw) > MAX_PACKED_BYTES:
                raise MessageTooLargeError(f"message is over {MAX_PACKED_BYTES} bytes")
            return json_object(raw, "message")
        raise MalformedMessageError("forward attachment holds no message")

    def _finish(self, message: dict[str, Any], now: int | None) -> UnpackResult:
        meta = self.meta
        sender = message.get("from")
        if meta.encrypted_from is not None and split_did_url(meta.encrypted_from)[0] != sender:
            raise SenderMismatchError("authcrypt sender key does not belong to 'from'")
        if meta.sign_from is not None and split_did_url(meta.sign_from)[0] != sender:
            raise SenderMismatchError("signer does not match 'from'")
        if meta.encrypted:
            meta.encrypted_to = self.auth_to or self.anon_to
            to = message.get("to")
            used = self.used_recipient
            if to is not None and used is not None and split_did_url(used)[0] not in to:
                raise RecipientMismatchError("recipient key does not belong to a DID in 'to'")
            # As in the other implementations: an anoncrypt layer hides the
            # sender from intermediaries, even around an authcrypt.
            meta.anonymous_sender = meta.enc_alg_anon is not None
        if "from_prior" in message:
            self._check_from_prior(message)
        if now is not None and is_expired(message, now):
            raise ExpiredMessageError("message has expired")
        return UnpackResult(message, meta)

    def _check_from_prior(self, message: dict[str, Any]) -> None:
        try:
            token = jws.parse_compact(message["from_prior"])
        except MalformedMessageError as exc:
            raise FromPriorError(f"from_prior: {exc.message}") from None
        claims = token.claims
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str):
            raise FromPriorError("from_prior has no 'iss'")
        if sub is not None and sub != message.get("from"):
            raise FromPriorError("from_prior 'sub' is not the message's 'from'")
        if sub == iss:
            raise FromPriorError("from_prior 'sub' and 'iss' are the same DID")
        kid = token.signature.kid
        if split_did_url(kid)[0] != iss:
            raise FromPriorError("from_prior is not signed by a key of 'iss'")
        token.signature.verify(_public_key(self.resolver, kid, "authentication"))
        self.meta.from_prior_issuer_kid = kid
        self.meta.from_prior = claims


def _load(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if len(data) > MAX_PACKED_BYTES:
        raise MessageTooLargeError(f"message is over {MAX_PACKED_BYTES} bytes")
    # Not exact: the plaintext branch of _Unpacker.run re-parses a message
    # whose text has integers beyond 64 bits (envelopes hold strings).
    return json_object(data, "message", exact=False)


def _decrypted_object(raw: bytes) -> dict[str, Any]:
    """The JSON object a decrypted layer holds (its envelope members parsed fast)."""
    if len(raw) > MAX_PACKED_BYTES:
        raise MessageTooLargeError(f"message is over {MAX_PACKED_BYTES} bytes")
    try:
        obj = _orjson_loads(raw)
    except ValueError:
        raise MalformedMessageError("message is not valid JSON") from None
    if obj.__class__ is not dict:
        raise MalformedMessageError("message must be a JSON object")
    result: dict[str, Any] = obj
    return result


def unpack(
    packed: str | bytes,
    *,
    resolver: DIDResolver,
    secrets: SecretsResolver,
    now: int | None = None,
) -> UnpackResult:
    """Unpack any DIDComm message form; raise a typed error on any failure."""
    if packed.__class__ is not str and packed.__class__ is not bytes:
        return _Unpacker(resolver, secrets).run(packed, now)
    # _load() inlined: every inbound message starts here.
    if len(packed) > MAX_PACKED_BYTES:
        raise MessageTooLargeError(f"message is over {MAX_PACKED_BYTES} bytes")
    try:
        obj = _orjson_loads(packed)
    except (ValueError, TypeError):
        raise MalformedMessageError("message is not valid JSON") from None
    if obj.__class__ is not dict:
        raise MalformedMessageError("message must be a JSON object")
    if "ciphertext" in obj and "recipients" in obj:
        parsed = jwe.parse(obj)
        if parsed.alg == jwe.ALG_ANON:
            return _unpack_anoncrypt(parsed, resolver, secrets, now)
        unpacker = _Unpacker(resolver, secrets)
        raw = unpacker._layer_jwe(parsed)
        return unpacker.peel(_decrypted_object(raw), raw, now, MAX_LAYERS - 1)
    return _Unpacker(resolver, secrets).peel(obj, packed, now, MAX_LAYERS)


#: Metadata of an anoncrypt around a plaintext message, less what varies.
_ANONCRYPT_METADATA = {**_BLANK_METADATA, "encrypted": True, "anonymous_sender": True}


def _unpack_anoncrypt(
    parsed: jwe.ParsedJWE, resolver: DIDResolver, secrets: SecretsResolver, now: int | None
) -> UnpackResult:
    """An outermost anoncrypt layer, and the plaintext message it usually holds.

    Most inbound messages are exactly this, so it runs straight through, with
    the checks :meth:`_Unpacker._finish` makes for it; a nested layer, a
    forward, a ``from_prior`` or a long integer goes on to the general peeler.
    """
    plaintext, kid = jwe.decrypt(parsed, secrets.get_key)
    enc_alg = _ANON_ALGS[parsed.enc]
    obj = _decrypted_object(plaintext)
    if (
        "ciphertext" in obj
        or "payload" in obj
        or "from_prior" in obj
        or obj.get("type") == FORWARD_TYPE
        or has_long_digit_run(plaintext)
    ):
        unpacker = _Unpacker(resolver, secrets)
        unpacker.meta.enc_alg_anon = enc_alg
        unpacker.meta.encrypted = True
        unpacker.anon_to = parsed.kids
        unpacker.used_recipient = kid
        unpacker.stage = 1
        return unpacker.peel(obj, plaintext, now, MAX_LAYERS - 1)
    message = validate(obj)
    to = message.get("to")
    if to is not None and split_did_url(kid)[0] not in to:
        raise RecipientMismatchError("recipient key does not belong to a DID in 'to'")
    if now is not None and is_expired(message, now):
        raise ExpiredMessageError("message has expired")
    meta = Metadata.__new__(Metadata)
    meta.__dict__.update(_ANONCRYPT_METADATA)
    meta.enc_alg_anon = enc_alg
    meta.encrypted_to = parsed.kids
    return UnpackResult(message, meta)


def detect_media_type(packed: str | bytes) -> str:
    """The media type of a packed message (plain, signed or encrypted)."""
    form = _form(_load(packed))
    return {"jwe": TYP_ENCRYPTED, "jws": TYP_SIGNED}.get(form, TYP_PLAIN)


__all__ = [
    "Metadata",
    "PackEncryptedResult",
    "UnpackResult",
    "detect_media_type",
    "media_type",
    "pack_encrypted",
    "pack_plaintext",
    "pack_signed",
    "unpack",
]
