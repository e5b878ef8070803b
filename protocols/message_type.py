"""Message Type URIs and Protocol Identifier URIs, and the semver rules between them.

Theory of operation
-------------------
Every plaintext message names its protocol, version and message in ``type``
(``protocols.md``, "Message Type URI")::

    https://didcomm.org/trust-ping/2.0/ping
    \\__ doc-uri ______/\\_ name _/\\v/\\msg/

:func:`parse_message_type` splits it with the spec's regex into a
:class:`MessageType`; :func:`parse_piuri` does the same for a protocol's own
identifier (a :class:`ProtocolId`).  Matching is not string equality:

- protocol and message names compare ignoring case and the punctuation
  ``-``, ``_`` and ``.`` (the spec: "ignoring case and punctuation");
- versions follow semver: a message of the same major version is ours
  whatever its minor (an older peer speaks a subset of our protocol; a newer
  one may send optional fields we ignore); another major is a different
  protocol, refused with :class:`~protocols.protocol_errors.UnsupportedVersionError`;
- the patch component is never part of a PIURI and is ignored if present.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .protocol_errors import UnsupportedProtocolError

#: Longest ``type`` value we try to parse.
MAX_TYPE_CHARS = 512
#: Distinct ``type`` / PIURI strings whose parse is remembered.
PARSE_CACHE_SIZE = 256

# The spec's "loose" regexes, with the version group tightened to digits so
# that "1.x" or "latest" fail here instead of deep inside a comparison.
_MTURI = re.compile(r"(.*?)([a-z0-9._-]+)/(\d+(?:\.\d+){0,2})/([a-z0-9._-]+)$", re.IGNORECASE)
_PIURI = re.compile(r"(.*?)([a-z0-9._-]+)/(\d+(?:\.\d+){0,2})/?$", re.IGNORECASE)
_PUNCTUATION = str.maketrans("", "", "-_.")


def normalize_name(name: str) -> str:
    """The form in which protocol and message names are compared."""
    return name.lower().translate(_PUNCTUATION)


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


@dataclass(frozen=True)
class ProtocolId:
    """A protocol at one version: ``doc_uri`` + ``name`` + ``major.minor``."""

    doc_uri: str
    name: str
    major: int
    minor: int

    @property
    def piuri(self) -> str:
        """The canonical PIURI, e.g. ``https://didcomm.org/trust-ping/2.0``."""
        return f"{self.doc_uri}{self.name}/{self.major}.{self.minor}"

    @functools.cached_property
    def key(self) -> tuple[str, str]:
        """What two ids of the same protocol share, whatever their version."""
        return self.doc_uri.lower(), normalize_name(self.name)

    def message_type(self, message_name: str) -> str:
        """The MTURI of one of this protocol's messages."""
        return f"{self.piuri}/{message_name}"

    def accepts(self, other: ProtocolId) -> bool:
        """Whether a message of ``other``'s version is handled by us (same major)."""
        return self.key == other.key and self.major == other.major


@dataclass(frozen=True)
class MessageType:
    """A parsed Message Type URI."""

    protocol: ProtocolId
    name: str

    @functools.cached_property
    def normalized_name(self) -> str:
        """The message name as compared with a protocol's message table."""
        return normalize_name(self.name)


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise UnsupportedProtocolError(f"{what} must be a non-empty string")
    if len(value) > MAX_TYPE_CHARS:
        raise UnsupportedProtocolError(f"{what} is longer than {MAX_TYPE_CHARS} characters")
    return value


def parse_message_type(value: object) -> MessageType:
    """Split a message ``type`` into protocol and message name.

    Raises :class:`~protocols.protocol_errors.UnsupportedProtocolError` when it
    is not a Message Type URI at all.
    """
    return _parse_mturi(_check_text(value, "message type"))


# Every inbound message is parsed several times (dispatch, protection, records)
# and an agent sees few distinct types: the parses are remembered, in a bounded
# cache since peers choose the strings.  The results are immutable.
@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_mturi(text: str) -> MessageType:
    match = _MTURI.match(text)
    if match is None:
        raise UnsupportedProtocolError(f"{text[:80]!r} is not a message type URI")
    doc_uri, name, version, message_name = match.groups()
    major, minor = _version(version)
    return MessageType(ProtocolId(doc_uri, name, major, minor), message_name)


def parse_piuri(value: object) -> ProtocolId:
    """Parse a Protocol Identifier URI such as ``https://didcomm.org/trust-ping/2.0``."""
    return _parse_piuri(_check_text(value, "protocol identifier"))


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_piuri(text: str) -> ProtocolId:
    match = _PIURI.match(text)
    if match is None:
        raise UnsupportedProtocolError(f"{text[:80]!r} is not a protocol identifier URI")
    doc_uri, name, version = match.groups()
    major, minor = _version(version)
    return ProtocolId(doc_uri, name, major, minor)
