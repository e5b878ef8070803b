"""Keys: one small model over libsodium (PyNaCl) and ``cryptography``.

Theory of operation
-------------------
A :class:`PublicKey` or :class:`PrivateKey` is immutable and knows its curve.
It is built once from a JWK (or multikey, or raw bytes) and then reused: the
envelope caches decoded keys by their JWK members, because decoding a NIST
point (and checking that it is on the curve, as ``encryption.md`` demands)
costs more than the ECDH that follows it.

Curves and what they do:

==========  ===========  ===================  ==========================
curve       kty          operations            library
==========  ===========  ===================  ==========================
Ed25519     OKP          sign / verify EdDSA   libsodium (PyNaCl)
X25519      OKP          ECDH                  libsodium (PyNaCl)
P-256       EC           ECDH, ES256           cryptography
P-384       EC           ECDH, ES384           cryptography
P-521       EC           ECDH, ES512           cryptography
secp256k1   EC           ES256K (low-S)        cryptography
==========  ===========  ===================  ==========================

Nothing here knows about DIDs or verification relationships; key roles are
enforced by the envelope, which knows where a key came from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .codec import b64u_decode, b64u_encode
from .errors import BadSignatureError, InvalidKeyError, UnsupportedAlgorithmError
from .multibase import decode_multikey, encode_multikey

OKP_CURVES = ("Ed25519", "X25519")
EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}
#: Byte length of one coordinate / scalar per EC curve.
EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66, "secp256k1": 32}
#: Curves usable for key agreement (ECDH), in our order of preference.
KEY_AGREEMENT_CURVES = ("X25519", "P-256", "P-384", "P-521")
#: Curves usable for signing, with their JWS ``alg``.
SIGNING_ALGS = {
    "Ed25519": "EdDSA",
    "P-256": "ES256",
    "secp256k1": "ES256K",
    "P-384": "ES384",
    "P-521": "ES512",
}
ALG_CURVES = {alg: crv for crv, alg in SIGNING_ALGS.items()}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "P-256": hashes.SHA256,
    "secp256k1": hashes.SHA256,
    "P-384": hashes.SHA384,
    "P-521": hashes.SHA512,
}
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: Decoded public keys kept in memory (each is ~1 KiB with its backend object).
PUBLIC_KEY_CACHE_SIZE = 4096


def curve_kty(curve: str) -> str:
    """The JWK ``kty`` for a curve name."""
    if curve in OKP_CURVES:
        return "OKP"
    if curve in EC_CURVES:
        return "EC"
    raise UnsupportedAlgorithmError(f"unsupported curve {curve!r}")


def _member(jwk: dict[str, Any], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKeyError(f"JWK member {name!r} is missing or not a string")
    return value


@dataclass(frozen=True, slots=True, eq=False)
class PublicKey:
    """A public key on one of the supported curves.

    ``x`` is the raw public key for OKP curves; for EC curves ``x`` and ``y``
    are the fixed-width big-endian affine coordinates.
    """

    curve: str
    x: bytes
    y: bytes = b""
    _ec: ec.EllipticCurvePublicKey | None = field(default=None, repr=False, compare=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PublicKey)
            and self.curve == other.curve
            and self.x == other.x
            and self.y == other.y
        )

    def __hash__(self) -> int:
        return hash((self.curve, self.x, self.y))

    @property
    def kty(self) -> str:
        """JWK key type."""
        return curve_kty(self.curve)

    # -- constructors ----------------------------------------------------------

    @staticmethod
    def from_jwk(jwk: Any) -> PublicKey:
        """Decode a public JWK (private members are ignored). Cached."""
        if not isinstance(jwk, dict):
            raise InvalidKeyError("JWK must be a JSON object")
        kty = jwk.get("kty")
        crv = jwk.get("crv")
        x = jwk.get("x")
        y = jwk.get("y") if kty == "EC" else None
        if not isinstance(crv, str) or not isinstance(x, str):
            raise InvalidKeyError("JWK needs string 'crv' and 'x'")
        if kty == "EC" and not isinstance(y, str):
            raise InvalidKeyError("EC JWK needs a string 'y'")
        if not isinstance(kty, str):
            raise InvalidKeyError("JWK needs a string 'kty'")
        return _public_from_jwk_members(kty, crv, x, y)

    @staticmethod
    def from_raw(curve: str, data: bytes) -> PublicKey:
        """From raw bytes: 32 bytes for OKP, SEC1 (compressed or not) for EC."""
        if curve in OKP_CURVES:
            if len(data) != 32:
                raise InvalidKeyError(f"{curve} public key must be 32 bytes")
            return PublicKey(curve, bytes(data))
        if curve not in EC_CURVES:
            raise UnsupportedAlgorithmError(f"unsupported curve {curve!r}")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(EC_CURVES[curve], bytes(data))
        except ValueError:
            raise InvalidKeyError(f"not a valid {curve} point") from None
        nums = key.public_numbers()
        size = EC_SIZES[curve]
        return PublicKey(curve, nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big"), key)

    @staticmethod
    def from_multikey(value: str) -> PublicKey:
        """Decode a multibase/multicodec key (did:key, Multikey)."""
        curve, raw = decode_multikey(value)
        return PublicKey.from_raw(curve, raw)

    # -- encoders --------------------------------------------------------------

    def to_jwk(self) -> dict[str, str]:
        """Public JWK (no ``kid``)."""
        jwk = {"kty": self.kty, "crv": self.curve, "x": b64u_encode(self.x)}
        if self.y:
            jwk["y"] = b64u_encode(self.y)
        return jwk

    def to_raw(self) -> bytes:
        """32 raw bytes for OKP; compressed SEC1 point for EC."""
        if not self.y:
            return self.x
        return bytes([2 + (self.y[-1] & 1)]) + self.x

    def to_multikey(self) -> str:
        """``z``-base58btc multicodec encoding (compressed for EC)."""
        return encode_multikey(self.curve, self.to_raw())

    # -- operations ------------------------------------------------------------

    @property
    def ec_key(self) -> ec.EllipticCurvePublicKey:
        """The ``cryptography`` key object (EC curves only)."""
        if self._ec is None:
            raise UnsupportedAlgorithmError(f"{self.curve} is not an EC curve")
        return self._ec

    def verify(self, signature: bytes, data: bytes) -> None:
        """Check a JWS signature (raw r||s for ECDSA); raise BadSignatureError."""
        if self.curve == "Ed25519":
            if len(signature) != 64:
                raise BadSignatureError("signature does not verify")
            try:
                sodium.crypto_sign_open(signature + data, self.x)
            except (nacl.exceptions.BadSignatureError, ValueError):
                raise BadSignatureError("signature does not verify") from None
            return
        if self.curve not in _HASHES:
            raise UnsupportedAlgorithmError(f"{self.curve} keys cannot verify signatures")
        size = EC_SIZES[self.curve]
        if len(signature) != 2 * size:
            raise BadSignatureError("signature does not verify")
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        try:
            self.ec_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASHES[self.curve]()))
        except (InvalidSignature, ValueError):
            raise BadSignatureError("signature does not verify") from None


@functools.lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)
def _public_from_jwk_members(kty: str, crv: str, x: str, y: str | None) -> PublicKey:
    if curve_kty(crv) != kty:
        raise InvalidKeyError(f"JWK kty {kty!r} does not match curve {crv!r}")
    xb = b64u_decode(x, "JWK 'x'")
    if kty == "OKP":
        return PublicKey.from_raw(crv, xb)
    assert y is not None
    yb = b64u_decode(y, "JWK 'y'")
    size = EC_SIZES[crv]
    if not 0 < len(xb) <= size or not 0 < len(yb) <= size:
        raise InvalidKeyError(f"{crv} coordinates must be {size} bytes")
    # RFC 7518 asks for full-width coordinates, but didcomm-python drops the
    # leading zero byte of P-521 values: pad instead of refusing the peer.
    xb, yb = xb.rjust(size, b"\0"), yb.rjust(size, b"\0")
    # from_encoded_point on the uncompressed form checks the point is on the
    # curve: the invalid-curve defence encryption.md asks for.
    return PublicKey.from_raw(crv, b"\x04" + xb + yb)


@dataclass(frozen=True, slots=True, eq=False)
class PrivateKey:
    """A private key with its public half.

    ``secret`` is the 32-byte seed for Ed25519, the 32-byte scalar for X25519,
    and the fixed-width big-endian scalar for EC curves.  ``repr`` never shows it.
    """

    curve: str
    secret: bytes = field(repr=False)
    public: PublicKey
    _ec: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)
    _ed_sk: bytes = field(default=b"", repr=False)

    @staticmethod
    def generate(curve: str) -> PrivateKey:
        """A fresh random key (libsodium for the 25519 curves)."""
        if curve == "Ed25519":
            pk, sk = sodium.crypto_sign_keypair()
            return PrivateKey(curve, sk[:32], PublicKey(curve, pk), None, sk)
        if curve == "X25519":
            pk, sk = sodium.crypto_box_keypair()
            return PrivateKey(curve, sk, PublicKey(curve, pk))
        if curve not in EC_CURVES:
            raise UnsupportedAlgorithmError(f"unsupported curve {curve!r}")
        key = ec.generate_private_key(EC_CURVES[curve])
        return PrivateKey._from_ec(curve, key)

    @staticmethod
    def _from_ec(curve: str, key: ec.EllipticCurvePrivateKey) -> PrivateKey:
        size = EC_SIZES[curve]
        pub = key.public_key()
        nums = pub.public_numbers()
        public = PublicKey(curve, nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big"), pub)
        d = key.private_numbers().private_value.to_bytes(size, "big")
        return PrivateKey(curve, d, public, key)

    @staticmethod
    def from_raw(curve: str, secret: bytes) -> PrivateKey:
        """From the raw private scalar / seed."""
        if curve == "Ed25519":
            if len(secret) != 32:
                raise InvalidKeyError("Ed25519 private key must be 32 bytes")
            pk, sk = sodium.crypto_sign_seed_keypair(bytes(secret))
            return PrivateKey(curve, bytes(secret), PublicKey(curve, pk), None, sk)
        if curve == "X25519":
            if len(secret) != 32:
                raise InvalidKeyError("X25519 private key must be 32 bytes")
            pk = sodium.crypto_scalarmult_base(bytes(secret))
            return PrivateKey(curve, bytes(secret), PublicKey(curve, pk))
        if curve not in EC_CURVES:
            raise UnsupportedAlgorithmError(f"unsupported curve {curve!r}")
        try:
            key = ec.derive_private_key(int.from_bytes(secret, "big"), EC_CURVES[curve])
        except ValueError:
            raise InvalidKeyError(f"not a valid {curve} private key") from None
        return PrivateKey._from_ec(curve, key)

    @staticmethod
    def from_jwk(jwk: Any) -> PrivateKey:
        """Decode a private JWK; the public members must match ``d``."""
        if not isinstance(jwk, dict):
            raise InvalidKeyError("JWK must be a JSON object")
        public = PublicKey.from_jwk(jwk)
        d = b64u_decode(_member(jwk, "d"), "JWK 'd'")
        if public.kty == "EC":
            size = EC_SIZES[public.curve]
            if len(d) != size:
                raise InvalidKeyError(f"{public.curve} private key must be {size} bytes")
        key = PrivateKey.from_raw(public.curve, d)
        if key.public != public:
            raise InvalidKeyError("JWK private key does not match its public key")
        return key

    def to_jwk(self) -> dict[str, str]:
        """Private JWK (public members plus ``d``); handle with care."""
        jwk = self.public.to_jwk()
        jwk["d"] = b64u_encode(self.secret)
        return jwk

    def sign(self, data: bytes) -> bytes:
        """JWS signature bytes: Ed25519, or raw r||s (low-S for secp256k1)."""
        if self.curve == "Ed25519":
            return sodium.crypto_sign(data, self._ed_sk)[:64]
        if self.curve not in _HASHES or self._ec is None:
            raise UnsupportedAlgorithmError(f"{self.curve} keys cannot sign")
        der = self._ec.sign(data, ec.ECDSA(_HASHES[self.curve]()))
        r, s = decode_dss_signature(der)
        if self.curve == "secp256k1" and s > SECP256K1_ORDER // 2:
            # didcomm-rust (and Bitcoin-style verifiers) accept only low-S.
            s = SECP256K1_ORDER - s
        size = EC_SIZES[self.curve]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def ecdh(self, peer: PublicKey) -> bytes:
        """Raw shared secret Z with a public key on the same curve."""
        if peer.curve != self.curve:
            raise InvalidKeyError(f"cannot agree a {self.curve} key with a {peer.curve} key")
        if self.curve == "X25519":
            try:
                z: bytes = sodium.crypto_scalarmult(self.secret, peer.x)
            except nacl.exceptions.RuntimeError:
                # libsodium refuses low-order points (an all-zero shared secret).
                raise InvalidKeyError("X25519 public key is of low order") from None
            return z
        if self._ec is None or self.curve == "secp256k1":
            raise UnsupportedAlgorithmError(f"{self.curve} keys cannot do key agreement")
        return self._ec.exchange(ec.ECDH(), peer.ec_key)
