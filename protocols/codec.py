"""Byte-level encodings shared by the envelope: base64url and compact JSON.

Everything here raises :class:`~protocols.errors.MalformedMessageError` on bad
input, so callers never see ``binascii.Error`` or ``ValueError`` from a peer's
bytes.
"""

from __future__ import annotations

import binascii
import json
import json.encoder as json_encoder
from collections.abc import Callable
from typing import Any

from .errors import MalformedMessageError

_STANDARD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_b2a_base64 = binascii.b2a_base64


def b64u_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return (
        _b2a_base64(data, newline=False)
        .translate(_STANDARD_TO_URLSAFE)
        .rstrip(b"=")
        .decode("ascii")
    )


def b64u_encode_bytes(data: bytes) -> bytes:
    """:func:`b64u_encode` as ASCII bytes (straight to ``binascii``, as the
    envelope's hot paths want: ``base64.urlsafe_b64encode`` is two Python
    frames around the same call)."""
    return _b2a_base64(data, newline=False).translate(_STANDARD_TO_URLSAFE).rstrip(b"=")


# base64url -> base64, and '+' '/' (not base64url) to bytes no base64 alphabet
# has, so the strict decoder refuses them without two more scans of the text.
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/*!")
# The padding an unpadded text of length n needs, by n % 4 (1 is never valid).
_PADDING = (b"", b"===", b"==", b"=")
_a2b_base64 = binascii.a2b_base64


def b64u_decode(text: str | bytes, what: str = "base64url value") -> bytes:
    """Decode base64url with or without padding; reject anything else.

    This is on every message's hot path (seven calls per encrypted message,
    most of them on short values), so the common case -- an unpadded ASCII
    string -- is one expression; anything else takes the careful path.
    """
    try:
        return _a2b_base64(
            text.encode("ascii").translate(_URLSAFE_TO_STANDARD)  # type: ignore[union-attr]
            + _PADDING[len(text) & 3],
            strict_mode=True,
        )
    except (AttributeError, UnicodeEncodeError, binascii.Error, ValueError):
        return _b64u_decode_checked(text, what)


def _b64u_decode_checked(text: object, what: str) -> bytes:
    """:func:`b64u_decode` for bytes, padded text and bad input (typed errors)."""
    if isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedMessageError(f"{what} is not base64url") from None
    elif isinstance(text, bytes):
        raw = text
    else:
        raise MalformedMessageError(f"{what} must be a string")
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise MalformedMessageError(f"{what} is not base64url")
    try:
        return _a2b_base64(
            raw.translate(_URLSAFE_TO_STANDARD) + _PADDING[len(raw) & 3], strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise MalformedMessageError(f"{what} is not base64url") from None


# One encoder for the module: json.dumps() builds a new JSONEncoder on every
# call that passes options, which costs more than encoding a small message,
# and JSONEncoder.encode() builds a new C encoder on every call.  So the C
# encoder is made once, without a circular-reference memo (``markers``: a
# memo left dirty by one failed call would poison the next); a circular
# value then ends in RecursionError, reported as the ValueError json gives.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _not_serialisable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_make_c_encoder = getattr(json_encoder, "c_make_encoder", None)
_c_encoder: Callable[[Any, int], Any] | None = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None, _not_serialisable, json_encoder.encode_basestring, None, ":", ",", False, False, True
    )
)

#: A str as a JSON string literal, quotes included (UTF-8 kept as it is).
json_string: Callable[[str], str] = json_encoder.encode_basestring


def json_dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are."""
    if _c_encoder is None:
        return _encode_json(value)
    try:
        return "".join(_c_encoder(value, 0))
    except RecursionError:
        raise ValueError("Circular reference detected") from None


def json_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return json_dumps(value).encode("utf-8")


_decoder = json.JSONDecoder()
_decode_json = _decoder.decode
# The C scanner behind decode(): called directly when the text has no
# surrounding whitespace (every compact JSON text), it spares decode()'s two
# regular-expression matches, a tenth of parsing a small header.
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


def json_loads(data: str | bytes, what: str = "JSON") -> Any:
    """Parse JSON from a peer; every failure is a MalformedMessageError.

    Bytes are UTF-8 (RFC 8259 section 8.1 for JSON exchanged between systems),
    which also spares ``json.loads``' encoding detection on the hot path.
    """
    try:
        if isinstance(data, bytes | bytearray):
            data = data.decode("utf-8")
        try:
            value, end = _scan_once(data, 0)
        except StopIteration:
            end = -1
        if end == len(data):
            return value
        # Whitespace around the value, trailing data or a syntax error:
        # decode() accepts the first and names the others.
        return _decode_json(data)
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError):
        raise MalformedMessageError(f"{what} is not valid JSON") from None


def json_object(data: str | bytes, what: str = "JSON") -> dict[str, Any]:
    """Parse JSON that must be an object."""
    # json_loads() inlined for the common case (three calls per message).
    try:
        if data.__class__ is bytes:
            data = data.decode("utf-8")
        value, end = _scan_once(data, 0)  # type: ignore[arg-type]
        if end != len(data) or value.__class__ is not dict:
            raise StopIteration
    except (StopIteration, ValueError, UnicodeDecodeError, RecursionError, TypeError):
        value = json_loads(data, what)
        if not isinstance(value, dict):
            raise MalformedMessageError(f"{what} must be a JSON object") from None
    return value
