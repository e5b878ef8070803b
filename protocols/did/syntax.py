"""DID and DID URL syntax (DID Core section 3), checked before anything is parsed.

A DID reaches us from a peer (``from``, ``to``, ``kid``, ``skid``), so it is
untrusted text: it is checked against the DID Core ABNF and a length limit
before any resolver sees it.  Every failure is an
:class:`~protocols.errors.InvalidDIDError`.

::

    did                = "did:" method-name ":" method-specific-id
    method-name        = 1*( %x61-7A / DIGIT )
    method-specific-id = *( *idchar ":" ) 1*idchar
    idchar             = ALPHA / DIGIT / "." / "-" / "_" / pct-encoded
    did-url            = did path-abempty [ "?" query ] [ "#" fragment ]

We split DID URLs only as far as the envelope needs: the DID, and the
fragment that names a verification method.  Paths and queries are accepted
syntactically and otherwise ignored (no DID method we resolve uses them).
"""

from __future__ import annotations

import functools
import re

from ..errors import InvalidDIDError

#: Longest DID we accept.  did:peer:2 carries its keys and services inline, so
#: it is the long one: a few keys plus a service with a handful of multiaddrs
#: is ~1-2 KiB; anything near this limit is abuse, not a real identifier.
MAX_DID_LENGTH = 8192
#: Longest DID URL (a DID plus path, query and fragment).
MAX_DID_URL_LENGTH = MAX_DID_LENGTH + 1024
#: Valid DIDs and split DID URLs remembered: the same few parties' ids are
#: checked several times per message (from, to, kid, skid, resolver).
SYNTAX_CACHE_SIZE = 4096
#: How much of an offending value an error message quotes.
MAX_QUOTED_CHARS = 80

_IDCHARS = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"
_DID_RE = re.compile(rf"did:([a-z0-9]+):((?:{_IDCHARS}*:)*{_IDCHARS}+)", re.ASCII)
# RFC 3986 pchar (one path segment character) and the fragment / query set,
# which adds "/" and "?".
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_FCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
_FRAGMENT_RE = re.compile(rf"{_FCHAR}+", re.ASCII)
_PATH_QUERY_RE = re.compile(rf"(?:/{_PCHAR}*)*(?:\?{_FCHAR}*)?", re.ASCII)


def quote(value: object) -> str:
    """A short, printable rendering of untrusted text for an error message."""
    text = value if isinstance(value, str) else type(value).__name__
    if len(text) > MAX_QUOTED_CHARS:
        text = text[: MAX_QUOTED_CHARS - 3] + "..."
    return repr(text)


def is_did(value: object) -> bool:
    """True if ``value`` is a syntactically valid DID (no path, query or fragment)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_DID_LENGTH
        and _DID_RE.fullmatch(value) is not None
    )


def validate_did(value: object) -> str:
    """Return ``value`` if it is a valid DID, else raise InvalidDIDError."""
    if not isinstance(value, str):
        raise InvalidDIDError("a DID must be a string")
    if len(value) > MAX_DID_LENGTH:
        raise InvalidDIDError(f"DID is longer than {MAX_DID_LENGTH} characters")
    return _validated_did(value)


@functools.lru_cache(maxsize=SYNTAX_CACHE_SIZE)
def _validated_did(value: str) -> str:
    # Only valid DIDs are cached: lru_cache does not remember exceptions.
    if _DID_RE.fullmatch(value) is None:
        raise InvalidDIDError(f"not a valid DID: {quote(value)}")
    return value


def did_method(did: str) -> str:
    """The method name of a valid DID (``key`` for ``did:key:z6Mk...``)."""
    match = _DID_RE.fullmatch(validate_did(did))
    assert match is not None
    return match.group(1)


def split_did_url(url: object) -> tuple[str, str | None]:
    """Split a DID URL into ``(did, fragment)``; fragment is None if absent.

    ``did:example:alice#key-1`` gives ``("did:example:alice", "key-1")``.
    A relative reference (``#key-1``) is not a DID URL: resolve it against a
    document with :meth:`DIDDocument.absolute` first.
    """
    if not isinstance(url, str):
        raise InvalidDIDError("a DID URL must be a string")
    if len(url) > MAX_DID_URL_LENGTH:
        raise InvalidDIDError(f"DID URL is longer than {MAX_DID_URL_LENGTH} characters")
    return _split(url)


@functools.lru_cache(maxsize=SYNTAX_CACHE_SIZE)
def _split(url: str) -> tuple[str, str | None]:
    rest, hash_sign, fragment = url.partition("#")
    end = len(rest)
    for sep in ("/", "?"):
        at = rest.find(sep)
        if at != -1:
            end = min(end, at)
    did = validate_did(rest[:end])
    if _PATH_QUERY_RE.fullmatch(rest[end:]) is None:
        raise InvalidDIDError(f"DID URL has a malformed path or query: {quote(url)}")
    if not hash_sign:
        return did, None
    if _FRAGMENT_RE.fullmatch(fragment) is None:
        raise InvalidDIDError(f"DID URL has an empty or malformed fragment: {quote(url)}")
    return did, fragment
