"""Multibase (base58btc, ``z`` prefix) and the multicodec key prefixes.

Used by did:key, did:peer and the ``Multikey`` verification method type.
"""

from __future__ import annotations

from .errors import InvalidKeyError

_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}

#: Upper bound on a base58 string we decode; a key is well under 200 chars.
MAX_BASE58_CHARS = 4096

# multicodec code -> curve name (https://github.com/multiformats/multicodec)
MULTICODEC_PUBLIC_KEYS: dict[int, str] = {
    0xED: "Ed25519",
    0xEC: "X25519",
    0xE7: "secp256k1",
    0x1200: "P-256",
    0x1201: "P-384",
    0x1202: "P-521",
}
CURVE_MULTICODEC: dict[str, int] = {v: k for k, v in MULTICODEC_PUBLIC_KEYS.items()}


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = bytearray()
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58_ALPHABET[rem])
    out.extend(b"1" * zeros)
    out.reverse()
    return out.decode("ascii")


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises InvalidKeyError on bad characters."""
    if len(text) > MAX_BASE58_CHARS:
        raise InvalidKeyError("base58 value is too long")
    n = 0
    try:
        for ch in text.encode("ascii"):
            n = n * 58 + _B58_INDEX[ch]
    except (KeyError, UnicodeEncodeError):
        raise InvalidKeyError("value is not base58btc") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def varint_encode(n: int) -> bytes:
    """Unsigned LEB128 varint (multiformats unsigned-varint)."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint_decode(data: bytes) -> tuple[int, int]:
    """Return ``(value, bytes consumed)``; at most 9 bytes as multiformats says."""
    value = 0
    for i, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, i + 1
    raise InvalidKeyError("bad unsigned varint")


def encode_multikey(curve: str, public_bytes: bytes) -> str:
    """``z`` + base58btc(multicodec prefix + key bytes); NIST keys compressed."""
    return "z" + b58encode(varint_encode(CURVE_MULTICODEC[curve]) + public_bytes)


def decode_multikey(value: str) -> tuple[str, bytes]:
    """Return ``(curve, key bytes)`` from a ``z``-multibase multicodec key."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise InvalidKeyError("multikey must be base58btc multibase (starting with 'z')")
    raw = b58decode(value[1:])
    code, used = varint_decode(raw)
    curve = MULTICODEC_PUBLIC_KEYS.get(code)
    if curve is None:
        raise InvalidKeyError(f"unsupported multicodec key type 0x{code:x}")
    return curve, raw[used:]
