"""Byte-level encodings shared by the envelope: base64url and compact JSON.

Everything here raises :class:`~protocols.errors.MalformedMessageError` on bad
input, so callers never see ``binascii.Error`` or ``ValueError`` from a peer's
bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import MalformedMessageError


def b64u_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# base64url -> base64, and '+' '/' (not base64url) to bytes no base64 alphabet
# has, so the strict decoder refuses them without two more scans of the text.
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/*!")


def b64u_decode(text: str | bytes, what: str = "base64url value") -> bytes:
    """Decode base64url with or without padding; reject anything else.

    This is on every message's hot path (five calls per encrypted message),
    so it goes straight to ``binascii`` in strict mode rather than through
    ``base64.b64decode``'s generic layers.
    """
    if isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedMessageError(f"{what} is not base64url") from None
    elif isinstance(text, bytes):
        raw = text
    else:
        raise MalformedMessageError(f"{what} must be a string")
    if raw[-1:] == b"=":
        raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise MalformedMessageError(f"{what} is not base64url")
    try:
        return binascii.a2b_base64(
            raw.translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise MalformedMessageError(f"{what} is not base64url") from None


# One encoder for the module: json.dumps() builds a new JSONEncoder on every
# call that passes options, which costs more than encoding a small message.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are."""
    return _encode_json(value)


def json_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return json_dumps(value).encode("utf-8")


_decode_json = json.JSONDecoder().decode


def json_loads(data: str | bytes, what: str = "JSON") -> Any:
    """Parse JSON from a peer; every failure is a MalformedMessageError.

    Bytes are UTF-8 (RFC 8259 section 8.1 for JSON exchanged between systems),
    which also spares ``json.loads``' encoding detection on the hot path.
    """
    try:
        if isinstance(data, bytes | bytearray):
            data = data.decode("utf-8")
        return _decode_json(data)
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError):
        raise MalformedMessageError(f"{what} is not valid JSON") from None


def json_object(data: str | bytes, what: str = "JSON") -> dict[str, Any]:
    """Parse JSON that must be an object."""
    value = json_loads(data, what)
    if not isinstance(value, dict):
        raise MalformedMessageError(f"{what} must be a JSON object")
    return value
