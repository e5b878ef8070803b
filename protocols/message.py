"""The plaintext DIDComm message (a JWM) and the rules its headers keep.

A message is kept as the JSON object it is: unknown headers survive a round
trip untouched (``message_structure.md``: software MUST NOT fail because of
them).  :func:`validate` checks the headers the spec defines and raises
:class:`~protocols.errors.InvalidPlaintextError` naming the header at fault.

Attachments are checked for shape; a ``base64`` attachment with a ``hash``
is checked against it (a sha2-256 multihash, base58btc or hex), and a
``links`` attachment must carry a ``hash`` as the spec requires.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from .codec import b64u_decode
from .errors import InvalidKeyError, InvalidPlaintextError, MalformedMessageError
from .multibase import b58decode

TYP_PLAIN = "application/didcomm-plain+json"
#: Most attachments one message may carry.
MAX_ATTACHMENTS = 128
#: Most entries in ``to``, ``please_ack`` and ``ack``.
MAX_LIST_ITEMS = 256
#: Longest ``id``/``thid``/``pthid`` accepted.
MAX_ID_CHARS = 1024

_SHA256_MULTIHASH_PREFIX = b"\x12\x20"


def new_id() -> str:
    """A fresh message id (UUID4)."""
    return str(uuid.uuid4())


def media_type(value: str) -> str:
    """Media types without ``/`` have an implied ``application/`` prefix."""
    return value if "/" in value else "application/" + value


def _fail(header: str, why: str) -> InvalidPlaintextError:
    return InvalidPlaintextError(f"header {header!r} {why}")


def _string_list(header: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _fail(header, "must be an array of strings")
    for v in value:  # a loop, not all(genexpr): this runs on every message
        if not isinstance(v, str):
            raise _fail(header, "must be an array of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise _fail(header, f"has more than {MAX_LIST_ITEMS} entries")


def _did_value(header: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _fail(header, "must be a string")
    if not value.startswith("did:") or "#" in value:
        raise _fail(header, "must be a DID or DID URL without a fragment")


def _check_identifier(header: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _fail(header, "must be a string")
    if not 0 < len(value) <= MAX_ID_CHARS:
        raise _fail(header, f"must be 1..{MAX_ID_CHARS} characters")


def _check_type(header: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _fail(header, "must be a string")
    if not value:
        raise _fail(header, "must not be empty")


def _check_typ(header: str, value: Any) -> None:
    if not isinstance(value, str) or media_type(value) != TYP_PLAIN:
        raise _fail(header, f"must be {TYP_PLAIN!r}")


def _check_time(header: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(header, "must be an integer (UTC epoch seconds)")


def _check_to(header: str, value: Any) -> None:
    _string_list(header, value)
    for item in value:
        if not item.startswith("did:") or "#" in item:
            _did_value(header, item)  # names the fault


def _check_body(header: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(header, "must be a JSON object")


def _check_from_prior(header: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _fail(header, "must be a compact JWT string")


def _check_attachments(header: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _fail(header, "must be an array")
    if len(value) > MAX_ATTACHMENTS:
        raise _fail(header, f"has more than {MAX_ATTACHMENTS} entries")
    for attachment in value:
        validate_attachment(attachment)


#: The headers message_structure.md defines, each with its rule.  Anything
#: else is an extension header: kept, never checked.
_HEADER_RULES: dict[str, Callable[[str, Any], None]] = {
    "id": _check_identifier,
    "thid": _check_identifier,
    "pthid": _check_identifier,
    "type": _check_type,
    "typ": _check_typ,
    "from": _did_value,
    "to": _check_to,
    "created_time": _check_time,
    "expires_time": _check_time,
    "body": _check_body,
    "please_ack": _string_list,
    "ack": _string_list,
    "from_prior": _check_from_prior,
    "attachments": _check_attachments,
}
_REQUIRED = ("id", "type")
_TIME_HEADERS = frozenset({"created_time", "expires_time"})
#: Optional headers that some implementations write as ``null`` when absent;
#: a ``null`` anywhere else (``body``, ``from``, ...) is an error.
_NULLABLE = frozenset(
    {"thid", "pthid", "typ", "to", "created_time", "expires_time", "please_ack", "ack"}
)


#: The headers :func:`validate` checks inline; a message with any other
#: defined header takes the loop over every header.
_COMMON_HEADERS = frozenset({"id", "type", "typ", "from", "to", "created_time", "body"})
_OTHER_DEFINED = frozenset(_HEADER_RULES) - _COMMON_HEADERS
_ABSENT = object()


def validate(message: Any) -> dict[str, Any]:
    """Check a plaintext message's defined headers; return it unchanged.

    Every received and sent message comes here, so the common shape (only
    ``id``, ``type``, ``typ``, ``from``, ``to``, ``created_time``, ``body``
    and extension headers, each of the plain type its rule wants) is checked
    by direct look-ups, with no call per header; anything else, or anything
    that fails there, takes :func:`_validate_headers`, which names the fault.
    """
    if message.__class__ is dict and _OTHER_DEFINED.isdisjoint(message):
        get = message.get
        value = get("id")
        if value.__class__ is not str or not 0 < len(value) <= MAX_ID_CHARS:
            return _validate_headers(message)
        value = get("type")
        if value.__class__ is not str or not value:
            return _validate_headers(message)
        value = get("typ")
        if value is not None and value != TYP_PLAIN:
            return _validate_headers(message)
        value = get("from", _ABSENT)
        if value is not _ABSENT and (
            value.__class__ is not str or not value.startswith("did:") or "#" in value
        ):
            return _validate_headers(message)
        value = get("to")
        if value is not None:
            if value.__class__ is not list or len(value) > MAX_LIST_ITEMS:
                return _validate_headers(message)
            for item in value:
                if item.__class__ is not str or not item.startswith("did:") or "#" in item:
                    return _validate_headers(message)
        value = get("created_time")
        if value is not None and value.__class__ is not int:
            return _validate_headers(message)
        value = get("body", _ABSENT)
        if value is not _ABSENT and value.__class__ is not dict:
            return _validate_headers(message)
        return message
    return _validate_headers(message)


def _validate_headers(message: Any) -> dict[str, Any]:
    """:func:`validate` by a loop over every header, each to its rule."""
    if not isinstance(message, dict):
        raise MalformedMessageError("plaintext message must be a JSON object")
    for header in _REQUIRED:
        if message.get(header) is None:
            raise InvalidPlaintextError(f"message has no {header!r}")
    rules = _HEADER_RULES
    for header, value in message.items():
        rule = rules.get(header)
        if rule is None:
            continue
        # The commonest headers are checked inline (a call per header is most
        # of this function's cost); anything unusual goes to its rule, which
        # names the fault.
        cls = value.__class__
        if cls is str:
            if header == "type" or header == "id":
                if 0 < len(value) <= MAX_ID_CHARS:
                    continue
            elif header == "from":
                if value.startswith("did:") and "#" not in value:
                    continue
            elif header == "typ" and value == TYP_PLAIN:
                continue
        elif (cls is int and header in _TIME_HEADERS) or (cls is dict and header == "body"):
            continue
        elif cls is list and header == "to" and len(value) <= MAX_LIST_ITEMS:
            for item in value:
                if item.__class__ is not str or not item.startswith("did:") or "#" in item:
                    break
            else:
                continue
        if value is not None or header not in _NULLABLE:
            rule(header, value)
    return message


def _hash_matches(expected: str, content: bytes) -> bool:
    """Compare a multihash (base58btc ``z``/bare, or hex) with sha2-256(content)."""
    digest = hashlib.sha256(content).digest()
    candidates: list[bytes] = []
    text = expected[1:] if expected.startswith("z") else expected
    with contextlib.suppress(InvalidKeyError):
        candidates.append(b58decode(text))
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(expected))
    return any(c in (_SHA256_MULTIHASH_PREFIX + digest, digest) for c in candidates)


def validate_attachment(attachment: Any) -> None:
    """Check one attachment: ``data`` with at least one way to reach the content."""
    if not isinstance(attachment, dict):
        raise _fail("attachments", "entries must be objects")
    for member in ("id", "description", "filename", "media_type", "format"):
        if member in attachment and not isinstance(attachment[member], str):
            raise _fail("attachments", f"member {member!r} must be a string")
    data = attachment.get("data")
    if not isinstance(data, dict):
        raise _fail("attachments", "entries need a 'data' object")
    if not any(k in data for k in ("jws", "hash", "links", "base64", "json")):
        raise _fail("attachments", "data needs one of jws, hash, links, base64, json")
    if "links" in data:
        links = data["links"]
        if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
            raise _fail("attachments", "data.links must be an array of strings")
        if not isinstance(data.get("hash"), str):
            raise _fail("attachments", "data.links needs data.hash")
    if "hash" in data and not isinstance(data["hash"], str):
        raise _fail("attachments", "data.hash must be a string")
    if "base64" in data:
        if not isinstance(data["base64"], str):
            raise _fail("attachments", "data.base64 must be a string")
        content = b64u_decode(
            data["base64"].replace("+", "-").replace("/", "_"), "attachment base64"
        )
        if isinstance(data.get("hash"), str) and not _hash_matches(data["hash"], content):
            raise _fail("attachments", "data.hash does not match data.base64")


def thread_id(message: dict[str, Any]) -> str:
    """``thid``, or the message's own ``id`` when it starts a thread."""
    return str(message.get("thid") or message["id"])


def is_expired(message: dict[str, Any], now: int) -> bool:
    """Whether ``expires_time`` is set and not after ``now``."""
    expires = message.get("expires_time")
    return isinstance(expires, int) and not isinstance(expires, bool) and expires <= now
