"""JWE (General JSON) for DIDComm: anoncrypt and authcrypt, many recipients.

Theory of operation
-------------------
DIDComm encrypts a message once with a random content encryption key (CEK)
and wraps that CEK for every recipient key with AES key wrap (A256KW).  The
key-wrapping key (KEK) comes from a Concat KDF over an ECDH result:

* anoncrypt, ``ECDH-ES+A256KW``:  Z = ECDH(epk, recipient)
* authcrypt, ``ECDH-1PU+A256KW``: Z = ECDH(epk, recipient) || ECDH(sender, recipient)
  and, as ECDH-1PU draft 4 says, the content's authentication tag is part of
  the KDF input (``cctag``), so the payload is encrypted *before* the keys are
  wrapped.

One ephemeral key (``epk``), ``apu`` (authcrypt only: base64url of ``skid``)
and ``apv`` (base64url SHA-256 of the sorted recipient kids joined by ``.``)
are shared by all recipients and live in the protected header, which is the
AAD of the content encryption.

Content encryption algorithms: A256CBC-HS512 (both modes), A256GCM and XC20P
(anoncrypt only, as ``encryption.md`` says).

This module knows nothing of DIDs: callers give key ids and key objects.
The static-static ECDH of authcrypt is the same for every message between
one sender key and one recipient key, so it is cached (``_static_z``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from .codec import (
    b64u_decode,
    b64u_encode,
    json_dumps,
    json_object,
    json_string,
)
from .codec import orjson_loads as _orjson_loads
from .errors import (
    AuthenticationTagError,
    DecryptionError,
    InvalidKeyError,
    MalformedMessageError,
    UnknownRecipientError,
    UnsupportedAlgorithmError,
)
from .keys import KEY_AGREEMENT_CURVES, X25519_OPENSSL_FROM, PrivateKey, PublicKey

TYP_ENCRYPTED = "application/didcomm-encrypted+json"
ALG_ANON = "ECDH-ES+A256KW"
ALG_AUTH = "ECDH-1PU+A256KW"
ENC_CBC = "A256CBC-HS512"
ENC_GCM = "A256GCM"
ENC_XC20P = "XC20P"
ANON_ENCS = (ENC_CBC, ENC_GCM, ENC_XC20P)
AUTH_ENCS = (ENC_CBC,)

#: Most recipients one JWE may list; DIDComm sends to one DID's keys.
MAX_RECIPIENTS = 64
#: Cached static-static ECDH results (authcrypt sender/recipient pairs).
STATIC_Z_CACHE_SIZE = 1024
#: Cached Concat KDF inputs (algorithm, sender, recipient list): one per peer pair.
KDF_INFO_CACHE_SIZE = 1024
#: Cached protected-header prefixes of packed messages: one per peer pair and mode.
HEADER_CACHE_SIZE = 1024

_CEK_BYTES = {ENC_CBC: 64, ENC_GCM: 32, ENC_XC20P: 32}
_IV_BYTES = {ENC_CBC: 16, ENC_GCM: 12, ENC_XC20P: 24}
_TAG_BYTES = {ENC_CBC: 32, ENC_GCM: 16, ENC_XC20P: 16}


# -- content encryption -----------------------------------------------------------


# AES-256-CBC contexts straight from cryptography's Rust layer: Cipher() and
# its encryptor()/decryptor() are a Python wrapper around these two calls
# whose checks (an AES key, a 16-byte IV) the callers here make themselves;
# skipping it is 46k -> 31k instructions per content encryption.  Versions
# without that layer take the wrapper.
# PyNaCl's own cffi module (see _xc20p_encrypt); its public wrappers if another
# PyNaCl release has none.
_ffi: Any = None
_sodium: Any = None
try:
    import nacl._sodium as _nacl_sodium

    _ffi, _sodium = _nacl_sodium.ffi, _nacl_sodium.lib
except ImportError:  # pragma: no cover - another PyNaCl layout
    _ffi = _sodium = None

_rust_ciphers: Any
try:
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _rust_ciphers = _rust_openssl.ciphers
except (ImportError, AttributeError):  # pragma: no cover - older cryptography
    _rust_ciphers = None


def _cbc_context(key: bytes, iv: bytes, *, decrypt: bool) -> CipherContext:
    """An AES-256-CBC context (the careful path, for the wrapper-only versions)."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    return cipher.decryptor() if decrypt else cipher.encryptor()


_CBC_IV = 16


def _cbc_hs512_encrypt(cek: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    if len(iv) != _CBC_IV:
        raise InvalidKeyError("AES-CBC needs a 16-byte IV")
    pad = 16 - len(plaintext) % 16
    enc = (
        _rust_ciphers.create_encryption_ctx(algorithms.AES(cek[32:]), modes.CBC(iv))
        if _rust_ciphers is not None
        else _cbc_context(cek[32:], iv, decrypt=False)
    )
    ct: bytes = enc.update(plaintext + _PKCS7[pad]) + enc.finalize()
    tag = hmac.digest(cek[:32], aad + iv + ct + struct.pack(">Q", len(aad) * 8), "sha512")[:32]
    return ct, tag


def _cbc_hs512_decrypt(cek: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes:
    if len(iv) != _CBC_IV:
        raise MalformedMessageError("AES-CBC needs a 16-byte IV")
    mac_key, enc_key = cek[:32], cek[32:]
    al = struct.pack(">Q", len(aad) * 8)
    expected = hmac.digest(mac_key, aad + iv + ct + al, "sha512")[:32]
    if not hmac.compare_digest(expected, tag):
        raise AuthenticationTagError("authentication tag mismatch")
    if not ct or len(ct) % 16:
        raise DecryptionError("ciphertext length is not a multiple of the block size")
    dec = (
        _rust_ciphers.create_decryption_ctx(algorithms.AES(enc_key), modes.CBC(iv))
        if _rust_ciphers is not None
        else _cbc_context(enc_key, iv, decrypt=True)
    )
    padded: bytes = dec.update(ct) + dec.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or not padded.endswith(_PKCS7[pad]):
        raise DecryptionError("bad padding")
    return padded[:-pad]


#: PKCS#7 padding by its length (index 0 unused).
_PKCS7 = tuple(bytes([n]) * n for n in range(17))


# XChaCha20-Poly1305 by libsodium through PyNaCl's own cffi module: the
# nacl.bindings wrappers spend 4.4 of their 7.2 us (a 500-byte message) on
# argument checks and buffer handling around the 2.8 us libsodium call.
# libsodium reads the key and nonce by pointer, so their sizes are checked
# here (a short one would be read past its end).
_XC20P_TAG = 16
_XC20P_KEY = 32
_XC20P_NONCE = 24


def _xc20p_sizes(nonce: bytes, key: bytes) -> None:
    if len(key) != _XC20P_KEY or len(nonce) != _XC20P_NONCE:
        raise InvalidKeyError("XChaCha20-Poly1305 needs a 32-byte key and a 24-byte nonce")


def _xc20p_encrypt(plaintext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
    _xc20p_sizes(nonce, key)
    if _sodium is None:
        return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key))
    out = _ffi.new("unsigned char[]", len(plaintext) + _XC20P_TAG)
    _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, _ffi.NULL, plaintext, len(plaintext), aad, len(aad), _ffi.NULL, nonce, key
    )
    encrypted: bytes = _ffi.buffer(out)[:]
    return encrypted


def _xc20p_decrypt(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
    _xc20p_sizes(nonce, key)
    return _xc20p_open(ciphertext, aad, nonce, key)


def _xc20p_open(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
    """:func:`_xc20p_decrypt` for a caller that has checked the key and nonce sizes."""
    size = len(ciphertext) - _XC20P_TAG
    if size < 0:
        raise AuthenticationTagError("authentication tag mismatch")
    if _sodium is None:
        try:
            return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key))
        except nacl.exceptions.CryptoError:
            raise AuthenticationTagError("authentication tag mismatch") from None
    out = _ffi.new("unsigned char[]", max(size, 1))
    failed = _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, _ffi.NULL, _ffi.NULL, ciphertext, len(ciphertext), aad, len(aad), nonce, key
    )
    if failed:
        raise AuthenticationTagError("authentication tag mismatch")
    plaintext: bytes = _ffi.buffer(out, size)[:]
    return plaintext


def encrypt_content(
    enc: str, cek: bytes, plaintext: bytes, aad: bytes
) -> tuple[bytes, bytes, bytes]:
    """Encrypt with a content algorithm; return ``(iv, ciphertext, tag)``."""
    iv = os.urandom(_IV_BYTES[enc])
    if enc == ENC_CBC:
        ct, tag = _cbc_hs512_encrypt(cek, iv, plaintext, aad)
        return iv, ct, tag
    if enc == ENC_GCM:
        out = AESGCM(cek).encrypt(iv, plaintext, aad)
    elif enc == ENC_XC20P:
        out = _xc20p_encrypt(plaintext, aad, iv, cek)
    else:
        raise UnsupportedAlgorithmError(f"unsupported content encryption {enc!r}")
    return iv, out[:-16], out[-16:]


def decrypt_content(enc: str, cek: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`encrypt_content`; a wrong tag is AuthenticationTagError."""
    if len(iv) != _IV_BYTES[enc] or len(tag) != _TAG_BYTES[enc]:
        raise MalformedMessageError(f"wrong iv or tag length for {enc}")
    if enc == ENC_CBC:
        return _cbc_hs512_decrypt(cek, iv, ct, tag, aad)
    if enc == ENC_XC20P:
        return _xc20p_decrypt(ct + tag, aad, iv, cek)
    try:
        return AESGCM(cek).decrypt(iv, ct + tag, aad)
    except InvalidTag:
        raise AuthenticationTagError("authentication tag mismatch") from None


# -- key derivation -------------------------------------------------------------


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def concat_kdf(z: bytes, alg: str, apu: bytes, apv: bytes, cctag: bytes | None) -> bytes:
    """NIST SP 800-56A Concat KDF with SHA-256 for a 256-bit KEK.

    One hash round suffices for 256 bits; SuppPubInfo is keydatalen, then (for
    ECDH-1PU) the length-prefixed content tag.
    """
    return _kdf(z, _kdf_info(alg, apu, apv), cctag)


_KDF_COUNTER = b"\x00\x00\x00\x01"
_KEYDATALEN = struct.pack(">I", 256)


@functools.lru_cache(maxsize=KDF_INFO_CACHE_SIZE)
def _kdf_info(alg: str, apu: bytes, apv: bytes) -> bytes:
    """AlgorithmID, PartyUInfo, PartyVInfo and keydatalen: the same for every
    message between one sender and one recipient list, so built once."""
    return _lp(alg.encode("ascii")) + _lp(apu) + _lp(apv) + _KEYDATALEN


_sha256 = hashlib.sha256


def _kdf(z: bytes, info: bytes, cctag: bytes | None) -> bytes:
    if cctag is not None:
        info += struct.pack(">I", len(cctag)) + cctag
    return _sha256(_KDF_COUNTER + z + info).digest()


_static_z: OrderedDict[tuple[bytes, str, bytes, bytes], bytes] = OrderedDict()


def _static_ecdh(private: PrivateKey, public: PublicKey) -> bytes:
    """ECDH between two long-lived keys, memoised (bounded, oldest out first).

    Keyed by the private scalar and the public key's curve and coordinates:
    bytes hash in C and keep their hash, where PublicKey's __hash__ is Python
    and was two calls per recipient of every authcrypt.
    """
    key = (private.secret, public.curve, public.x, public.y)
    z = _static_z.get(key)
    if z is None:
        z = private.ecdh(public)
        _static_z[key] = z
        if len(_static_z) > STATIC_Z_CACHE_SIZE:
            _static_z.popitem(last=False)
    return z


def apv_digest(kids: Sequence[str]) -> bytes:
    """SHA-256 of the sorted kids joined by '.': the raw ``apv``."""
    return hashlib.sha256(".".join(sorted(kids)).encode("utf-8")).digest()


def compute_apv(kids: Sequence[str]) -> str:
    """``apv`` header: base64url(SHA-256(sorted kids joined by '.'))."""
    return b64u_encode(apv_digest(kids))


def dumps(jwe: dict[str, Any]) -> str:
    """The compact JSON text of a JWE made by :func:`encrypt` (as ``json_dumps``).

    The members are base64url and need no escaping; only each ``kid`` is
    JSON-encoded, so the long ciphertext is not scanned character by character.
    """
    recipients = ",".join(
        '{{"header":{{"kid":{}}},"encrypted_key":"{}"}}'.format(
            json_string(r["header"]["kid"]), r["encrypted_key"]
        )
        for r in jwe["recipients"]
    )
    return '{{"ciphertext":"{}","protected":"{}","recipients":[{}],"tag":"{}","iv":"{}"}}'.format(
        jwe["ciphertext"], jwe["protected"], recipients, jwe["tag"], jwe["iv"]
    )


# -- encrypt ----------------------------------------------------------------------


class Recipient(NamedTuple):
    """A recipient key with the DID URL it is known by (a tuple: one is made
    per recipient key of every packed message)."""

    kid: str
    key: PublicKey


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _protected_prefix(
    typ: str, cty: str | None, alg: str, enc: str, skid: str | None, kids: tuple[str, ...]
) -> tuple[str, bytes]:
    """The protected header's JSON up to the ``epk`` value, and the KDF info.

    Everything but the ephemeral key is the same on every message from one
    sender key to one recipient list, so it is built once: ``typ``, ``cty``,
    ``alg``, ``enc``, then ``skid`` and ``apu`` (authcrypt) and ``apv``.
    """
    apv_raw = apv_digest(kids)
    protected: dict[str, Any] = {"typ": typ}
    if cty:
        protected["cty"] = cty
    protected["alg"] = alg
    protected["enc"] = enc
    apu_raw = b""
    if skid is not None:
        apu_raw = skid.encode("utf-8")
        protected["skid"] = skid
        protected["apu"] = b64u_encode(apu_raw)
    protected["apv"] = b64u_encode(apv_raw)
    return json_dumps(protected)[:-1] + ',"epk":', _kdf_info(alg, apu_raw, apv_raw)


_X25519_JWK_HEAD = '{"kty":"OKP","crv":"X25519","x":"'
_x25519_keypair = sodium.crypto_box_keypair
_x25519_scalarmult = sodium.crypto_scalarmult


def _epk_json(key: PublicKey) -> str:
    """The public JWK of an ephemeral key as JSON text (members as ``to_jwk``)."""
    if key.y:
        return json_dumps(key.to_jwk())
    return '{"kty":"OKP","crv":"' + key.curve + '","x":"' + b64u_encode(key.x) + '"}'


def encrypt(
    plaintext: bytes,
    recipients: Sequence[Recipient],
    *,
    enc: str = ENC_CBC,
    sender: tuple[str, PrivateKey] | None = None,
    typ: str = TYP_ENCRYPTED,
    cty: str | None = None,
) -> dict[str, Any]:
    """Encrypt ``plaintext`` to every recipient; authcrypt when ``sender`` is given.

    All recipients must share one key-agreement curve (the caller groups them);
    the result is a JWE in General JSON form as a dict.
    """
    protected_b64, iv, ct, tag, wrapped = _seal(plaintext, recipients, enc, sender, typ, cty)
    return {
        "ciphertext": b64u_encode(ct),
        "protected": protected_b64,
        "recipients": [
            {"header": {"kid": kid}, "encrypted_key": b64u_encode(key)} for kid, key in wrapped
        ],
        "tag": b64u_encode(tag),
        "iv": b64u_encode(iv),
    }


def encrypt_json(
    plaintext: bytes,
    recipients: Sequence[Recipient],
    *,
    enc: str = ENC_CBC,
    sender: tuple[str, PrivateKey] | None = None,
    typ: str = TYP_ENCRYPTED,
    cty: str | None = None,
) -> str:
    """``dumps(encrypt(...))`` without the dict in between (the packing hot path)."""
    protected_b64, iv, ct, tag, wrapped = _seal(plaintext, recipients, enc, sender, typ, cty)
    return "".join(
        [
            '{"ciphertext":"',
            b64u_encode(ct),
            '","protected":"',
            protected_b64,
            '","recipients":[',
            ",".join([_recipient_head(kid) + b64u_encode(key) + '"}' for kid, key in wrapped]),
            '],"tag":"',
            b64u_encode(tag),
            '","iv":"',
            b64u_encode(iv),
            '"}',
        ]
    )


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _recipient_head(kid: str) -> str:
    """A recipient entry's JSON text up to its encrypted key (kids repeat)."""
    return '{"header":{"kid":' + json_string(kid) + '},"encrypted_key":"'


def _seal(
    plaintext: bytes,
    recipients: Sequence[Recipient],
    enc: str,
    sender: tuple[str, PrivateKey] | None,
    typ: str,
    cty: str | None,
) -> tuple[str, bytes, bytes, bytes, list[tuple[str, bytes]]]:
    """Encrypt once, wrap the key for each recipient.

    Returns ``(protected header base64url, iv, ciphertext, tag, [(kid, wrapped key)])``.
    """
    if not recipients:
        raise InvalidKeyError("no recipient keys")
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidKeyError(f"more than {MAX_RECIPIENTS} recipient keys")
    curve = recipients[0].key.curve
    if curve not in KEY_AGREEMENT_CURVES:
        raise UnsupportedAlgorithmError(f"{curve} is not a key agreement curve")
    for r in recipients:
        if r.key.curve != curve:
            raise InvalidKeyError("recipient keys must all be on one curve")
    if sender is not None:
        if enc not in AUTH_ENCS:
            raise UnsupportedAlgorithmError(f"authcrypt needs A256CBC-HS512, not {enc}")
        if sender[1].curve != curve:
            raise InvalidKeyError("sender key is not on the recipients' curve")
    elif enc not in ANON_ENCS:
        raise UnsupportedAlgorithmError(f"unsupported content encryption {enc!r}")

    agree: Callable[[PublicKey], bytes]
    if curve == "X25519" and len(recipients) < X25519_OPENSSL_FROM:
        # A libsodium key pair as raw bytes, with no key objects around it:
        # few ECDHs, so libsodium's faster generation wins (keys.py says why).
        epk_x, epk_secret = _x25519_keypair()
        epk_json = _X25519_JWK_HEAD + b64u_encode(epk_x) + '"}'

        def agree(public: PublicKey) -> bytes:
            try:
                z: bytes = _x25519_scalarmult(epk_secret, public.x)
            except (ValueError, nacl.exceptions.RuntimeError):
                raise InvalidKeyError("X25519 public key is of low order") from None
            return z

    else:
        epk = PrivateKey.generate(curve, ecdh_count=len(recipients))
        epk_json = _epk_json(epk.public)
        agree = epk.ecdh
        openssl_epk = epk._x25519
        if openssl_epk is not None:
            # OpenSSL's key object (>= 3 recipients): its exchange directly.
            def agree(public: PublicKey) -> bytes:
                try:
                    return openssl_epk.exchange(public.x25519_key)
                except ValueError:
                    raise InvalidKeyError("X25519 public key is of low order") from None

    alg = ALG_ANON if sender is None else ALG_AUTH
    skid = None if sender is None else sender[0]
    prefix, kdf_info = _protected_prefix(typ, cty, alg, enc, skid, tuple([r.kid for r in recipients]))
    protected_b64 = b64u_encode((prefix + epk_json + "}").encode("utf-8"))

    cek = os.urandom(_CEK_BYTES[enc])
    iv, ct, tag = encrypt_content(enc, cek, plaintext, protected_b64.encode("ascii"))

    # The Concat KDF inline (_kdf), its info (with the tag for authcrypt)
    # built once for all recipients.
    wrapped = []
    if sender is None:
        for r in recipients:
            kek = _sha256(_KDF_COUNTER + agree(r.key) + kdf_info).digest()
            wrapped.append((r.kid, aes_key_wrap(kek, cek)))
    else:
        sender_key = sender[1]
        info = kdf_info + struct.pack(">I", len(tag)) + tag
        for r in recipients:
            z = agree(r.key) + _static_ecdh(sender_key, r.key)
            wrapped.append((r.kid, aes_key_wrap(_sha256(_KDF_COUNTER + z + info).digest(), cek)))
    return protected_b64, iv, ct, tag, wrapped


# -- decrypt ----------------------------------------------------------------------
#
# This is every inbound message's hot path, so it does each thing once: the
# protected header is decoded and checked, the recipient list is checked for
# shape without decoding it, and only the one ``encrypted_key`` we can unwrap
# is base64-decoded (not all of a 10-recipient message's).  The epk is decoded
# without the JWK cache (an ephemeral key is never seen twice).


class ParsedJWE:
    """A JWE whose structure has been checked, before any key is used.

    A plain slotted class rather than a frozen dataclass: one is made per
    inbound message, and a frozen dataclass pays ``object.__setattr__`` per field.
    The ciphertext, iv, tag and encrypted keys stay base64url until
    :func:`decrypt` needs them (one recipient's key, not all of them).
    """

    __slots__ = (
        "alg",
        "ciphertext_b64",
        "enc",
        "encrypted_keys",
        "iv_b64",
        "kids",
        "protected",
        "protected_b64",
        "tag_b64",
    )

    def __init__(
        self,
        protected: dict[str, Any],
        protected_b64: str,
        kids: list[str],
        encrypted_keys: list[str],
        iv_b64: str,
        ciphertext_b64: str,
        tag_b64: str,
        alg: str | None = None,
        enc: str | None = None,
    ) -> None:
        self.protected = protected
        self.protected_b64 = protected_b64
        #: Recipient key ids, in the order of the JWE, and their base64url
        #: encrypted keys, decoded on use.
        self.kids = kids
        self.encrypted_keys = encrypted_keys
        self.iv_b64 = iv_b64
        self.ciphertext_b64 = ciphertext_b64
        self.tag_b64 = tag_b64
        #: The key management algorithm (``alg``) and content encryption
        #: (``enc``): the header's, unless :func:`parse` passes them, checked.
        self.alg: str = protected["alg"] if alg is None else alg
        self.enc: str = protected["enc"] if enc is None else enc

    @property
    def recipients(self) -> list[tuple[str, str]]:
        """(kid, base64url encrypted_key) pairs, in the order of the JWE."""
        return list(zip(self.kids, self.encrypted_keys, strict=True))

    @property
    def skid(self) -> str | None:
        """Sender key id for authcrypt: ``skid``, or decoded from ``apu``."""
        skid = self.protected.get("skid")
        if isinstance(skid, str):
            return skid
        return self.skid_from_apu()

    def skid_from_apu(self) -> str | None:
        """The sender key id that ``apu`` encodes (authcrypt), if any."""
        apu = self.protected.get("apu")
        if not isinstance(apu, str):
            return None
        try:
            return b64u_decode(apu, "apu").decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessageError("apu is not a UTF-8 key id") from None


def _not_str(name: str) -> MalformedMessageError:
    return MalformedMessageError(f"JWE needs a string {name!r}")


_JWE_STRINGS = ("protected", "iv", "ciphertext", "tag")
# Recipient members by C-level item getters: no Python frame per recipient.
_get_header = operator.itemgetter("header")
_get_kid = operator.itemgetter("kid")
_get_encrypted_key = operator.itemgetter("encrypted_key")


def parse(jwe: dict[str, Any]) -> ParsedJWE:
    """Check the shape of a General JSON JWE and decode its protected header."""
    try:
        protected_b64 = jwe["protected"]
        iv_b64 = jwe["iv"]
        ciphertext_b64 = jwe["ciphertext"]
        tag_b64 = jwe["tag"]
        if (
            protected_b64.__class__ is not str
            or iv_b64.__class__ is not str
            or ciphertext_b64.__class__ is not str
            or tag_b64.__class__ is not str
        ):
            raise KeyError
    except KeyError:
        for name in _JWE_STRINGS:
            if not isinstance(jwe.get(name), str):
                raise _not_str(name) from None
        protected_b64, iv_b64, ciphertext_b64, tag_b64 = (jwe[name] for name in _JWE_STRINGS)
    # The header's base64url and JSON decoded inline (no codec frames): the
    # common case is unpadded base64url of a JSON object; anything else, or
    # anything that fails here, takes the codec's careful path for its error.
    try:
        protected = _orjson_loads(b64u_decode(protected_b64, "JWE protected header"))
    except (ValueError, TypeError):
        protected = None
    if protected.__class__ is not dict:
        protected = json_object(
            b64u_decode(protected_b64, "JWE protected header"), "JWE protected header", exact=False
        )
    alg = protected.get("alg")
    enc = protected.get("enc")
    if alg == ALG_ANON:
        if enc not in ANON_ENCS:
            raise UnsupportedAlgorithmError(f"unsupported JWE enc {enc!r} for {alg}")
    elif alg == ALG_AUTH:
        if enc not in AUTH_ENCS:
            raise UnsupportedAlgorithmError(f"unsupported JWE enc {enc!r} for {alg}")
        if not isinstance(protected.get("apu"), str):
            raise MalformedMessageError("authcrypt JWE needs 'apu'")
    else:
        raise UnsupportedAlgorithmError(f"unsupported JWE alg {alg!r}")
    if protected.get("epk").__class__ is not dict:
        raise MalformedMessageError("JWE protected header needs an 'epk' object")
    if not isinstance(protected.get("apv"), str):
        raise MalformedMessageError("JWE protected header needs 'apv'")
    raw_recipients = jwe.get("recipients")
    if raw_recipients.__class__ is not list or not raw_recipients:
        raise MalformedMessageError("JWE needs a non-empty 'recipients' array")
    if len(raw_recipients) > MAX_RECIPIENTS:
        raise MalformedMessageError(f"JWE lists more than {MAX_RECIPIENTS} recipients")
    try:
        # JSON gives dicts, lists and scalars: indexing anything but the
        # expected objects raises TypeError or KeyError, and so does joining
        # anything but strings (a check in C, not a call per recipient).
        kids = list(map(_get_kid, map(_get_header, raw_recipients)))
        encrypted_keys = list(map(_get_encrypted_key, raw_recipients))
        "".join(kids)
        "".join(encrypted_keys)
    except (TypeError, KeyError):
        _check_recipients(raw_recipients)
    return ParsedJWE(
        protected, protected_b64, kids, encrypted_keys, iv_b64, ciphertext_b64, tag_b64, alg, enc
    )


def _check_recipients(raw_recipients: list[Any]) -> None:
    """Raise the error that names what is wrong with a JWE's recipient list."""
    for r in raw_recipients:
        header = r.get("header") if isinstance(r, dict) else None
        if not isinstance(header, dict):
            raise MalformedMessageError("each JWE recipient needs a 'header' object")
        if not isinstance(header.get("kid"), str):
            raise MalformedMessageError("JWE recipient header needs a string 'kid'")
        if not isinstance(r.get("encrypted_key"), str):
            raise MalformedMessageError("JWE recipient needs a string 'encrypted_key'")
    raise MalformedMessageError("JWE recipient list is malformed")


#: KDF info of received headers, by ``apv``, with the inputs it was made from:
#: ``(kids, alg, apu, info)``.  Keyed by the one short ``apv`` string, and
#: checked against the kid list by equality, because an lru_cache over
#: ``tuple(kids)`` hashed every kid of every message (ten fresh strings for ten
#: recipients: 0.5 against 0.1 us).  Bounded, oldest out first.
_received_kdf: OrderedDict[str, tuple[list[str], str, str | None, bytes]] = OrderedDict()


def _received_kdf_info(alg: str, apu_b64: str | None, apv_b64: str, kids: list[str]) -> bytes:
    """The KDF info of a received header, once ``apv`` is found to bind ``kids``.

    ``apu``, ``apv`` and the recipient list are the same on every message of
    one sender to one recipient list, so they are decoded and checked once (a
    bad value or a changed list raises, and is not remembered).
    """
    known = _received_kdf.get(apv_b64)
    if known is not None and known[0] == kids and known[1] == alg and known[2] == apu_b64:
        return known[3]
    apv = b64u_decode(apv_b64, "apv")
    if not hmac.compare_digest(apv, apv_digest(kids)):
        # apv binds the recipient list; a changed list is tampering.
        raise DecryptionError("apv does not match the recipient key ids")
    apu = b"" if apu_b64 is None else b64u_decode(apu_b64, "apu")
    info = _kdf_info(alg, apu, apv)
    # A copy of the list: the caller's (metadata's encrypted_to) may change.
    _received_kdf[apv_b64] = (list(kids), alg, apu_b64, info)
    if len(_received_kdf) > KDF_INFO_CACHE_SIZE:
        _received_kdf.popitem(last=False)
    return info


def decrypt(
    parsed: ParsedJWE,
    get_key: Callable[[str], PrivateKey | None],
    sender_key: PublicKey | None = None,
) -> tuple[bytes, str]:
    """Decrypt with the first recipient key we hold; return ``(plaintext, kid)``.

    ``sender_key`` is the resolved public key of ``skid`` (authcrypt only).
    """
    protected = parsed.protected
    alg = parsed.alg
    authcrypt = alg == ALG_AUTH
    if authcrypt and sender_key is None:
        raise InvalidKeyError("authcrypt needs the sender's public key")
    # RFC 7518 4.6.2: PartyUInfo is apu when present (DIDComm omits it for anoncrypt).
    apu_b64 = protected.get("apu")
    if apu_b64.__class__ is not str:
        apu_b64 = None
    apv_b64 = protected["apv"]
    kids = parsed.kids
    # _received_kdf_info()'s look-up, inline: a hit on every message but a
    # peer's first.
    known = _received_kdf.get(apv_b64)
    if known is not None and known[0] == kids and known[1] == alg and known[2] == apu_b64:
        kdf_info = known[3]
    else:
        kdf_info = _received_kdf_info(alg, apu_b64, apv_b64, kids)
    tag = b64u_decode(parsed.tag_b64, "tag")
    enc = parsed.enc
    if len(tag) != _TAG_BYTES[enc]:
        raise MalformedMessageError(f"wrong iv or tag length for {enc}")
    epk = protected["epk"]
    epk_curve = epk.get("crv")
    found = False
    last_error: Exception | None = None
    for index, kid in enumerate(kids):
        key = get_key(kid)
        if key is None:
            continue
        found = True
        if key.curve != epk_curve:
            last_error = InvalidKeyError("recipient key and epk are on different curves")
            continue
        z = key.ecdh_jwk(epk)
        if authcrypt:
            assert sender_key is not None
            if sender_key.curve != key.curve:
                raise InvalidKeyError("sender key is not on the recipient's curve")
            z += _static_ecdh(key, sender_key)
            kek = _kdf(z, kdf_info, tag)
        else:
            kek = _sha256(_KDF_COUNTER + z + kdf_info).digest()
        try:
            cek = aes_key_unwrap(kek, b64u_decode(parsed.encrypted_keys[index], "encrypted_key"))
        except (InvalidUnwrap, ValueError):
            # A bad base64url encrypted key is a failed unwrap, as before.
            last_error = DecryptionError("key unwrap failed")
            continue
        if len(cek) != _CEK_BYTES[enc]:
            last_error = DecryptionError("content key has the wrong length")
            continue
        # decrypt_content() without its frame and its second look at the tag.
        iv = b64u_decode(parsed.iv_b64, "iv")
        if len(iv) != _IV_BYTES[enc]:
            raise MalformedMessageError(f"wrong iv or tag length for {enc}")
        ct = b64u_decode(parsed.ciphertext_b64, "ciphertext")
        aad = parsed.protected_b64.encode("ascii")
        if enc == ENC_CBC:
            return _cbc_hs512_decrypt(cek, iv, ct, tag, aad), kid
        if enc == ENC_XC20P:
            # The key and nonce sizes are checked above (_CEK_BYTES, _IV_BYTES).
            return _xc20p_open(ct + tag, aad, iv, cek), kid
        try:
            return AESGCM(cek).decrypt(iv, ct + tag, aad), kid
        except InvalidTag:
            raise AuthenticationTagError("authentication tag mismatch") from None
    if not found:
        raise UnknownRecipientError("message is not encrypted to any of our keys")
    assert last_error is not None
    raise last_error
