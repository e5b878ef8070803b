"""Status lists: whether an issued credential is still valid, without asking its issuer.

Theory of operation
-------------------
An issuer that wants to be able to revoke a credential gives it an *index*
in a *status list* and names the list in the credential.  The list is one
long array of small integers (0 valid, 1 revoked, 2 suspended), compressed
and signed by the issuer; anyone holding a recent copy can look up any
credential's entry.  A list covers :data:`LIST_SIZE` credentials, so a copy
says nothing about which one someone is interested in, and indexes are drawn
at random (the caller's job), so neighbours say nothing about issuance order.

Two standards, one per credential format, share :class:`StatusList`:

- SD-JWT VC (``dc+sd-jwt``): IETF Token Status List
  (draft-ietf-oauth-status-list).  The credential has the plain claim
  ``"status": {"status_list": {"idx": N, "uri": URI}}``
  (:func:`token_reference`); the list is a *Status List Token*, a JWT with
  header ``typ`` ``statuslist+jwt`` whose payload has ``sub`` (the URI),
  ``iss``, ``iat``, optional ``exp``/``ttl`` and ``status_list: {"bits",
  "lst"}``; ``lst`` is base64url of the ZLIB (DEFLATE) compressed array,
  ``bits`` (1, 2, 4 or 8) per entry, entry 0 in the *least* significant bits
  of byte 0 (:func:`sign_token`, :func:`verify_token`).
- Data Integrity VCs (``di_vc``): W3C Bitstring Status List v1.0.  The
  credential has ``credentialStatus``, a ``BitstringStatusListEntry`` with
  ``statusPurpose``, ``statusListIndex`` (a decimal string) and
  ``statusListCredential`` (the URL) (:func:`bitstring_entry`), or a list of
  them, one per purpose (:func:`read_credential_status`); the list is a
  ``BitstringStatusListCredential``, a VC 2.0 credential signed
  ``eddsa-jcs-2022`` (:mod:`protocols.data_integrity`) whose subject's
  ``encodedList`` is multibase ``u`` + base64url (no padding) of the GZIP
  compressed bitstring, entry 0 the *most* significant bit of byte 0, at
  least 16 KB (131,072 entries) uncompressed (:func:`sign_list_credential`,
  :func:`verify_list_credential`).

:class:`StatusList` keeps the Token Status List packing; the bitstring's
bit order is one byte translation away (:func:`encode_bitstring`).

Suspension (temporary, unlike revocation) is said differently by the two:

- A Token Status List says it *in the entry*: :data:`SUSPENDED` (2), which
  needs ``bits`` >= 2; lists we create have :data:`ISSUED_BITS` (2).  The
  draft binds ``bits`` to one token, not to a list across its versions (a
  Relying Party reads ``bits`` from each token it decodes, as
  :func:`verify_token` does), so a 1-bit list can be re-published with 2
  bits (:meth:`StatusList.widened`): every entry keeps its index and value.
- A Bitstring Status List has one bit per entry and one *purpose* per list:
  ``revocation`` (permanent) or ``suspension`` (reversible).  A credential
  that can be suspended carries two ``credentialStatus`` entries, one in a
  revocation list and one in a suspension list; a set bit in the suspension
  list means :data:`SUSPENDED`.  An issuer may keep one 0/1/2 array and
  publish each purpose as its view of it (:meth:`StatusList.where`).  A
  verifier checks every entry, each against a list of the entry's purpose
  (:attr:`VerifiedStatusList.purpose`); :meth:`VerifiedStatusList.status`
  speaks the token vocabulary (0 valid, 1 revoked, 2 suspended) for both.

Everything a peer sends is bounded before it costs anything: text length
(:data:`MAX_TOKEN_CHARS`, :data:`MAX_ENCODED_LIST_CHARS`), and the
decompressed size (:data:`MAX_LIST_BYTES`) -- decompression stops at the
limit, so a small zip bomb fails fast instead of filling memory.  Reading
accepts any list size up to that limit; lists we create have at least
:data:`LIST_SIZE` entries.  A verified list (:class:`VerifiedStatusList`)
was signed by an ``assertionMethod`` key of its issuer's DID, names the URI
asked for, and is inside its validity period give or take
:data:`CLOCK_LEEWAY_S`.  Freshness beyond that (how old a list a verifier
accepts) is the caller's policy, from ``issued_at``.

One JWT codec: the Status List Token is signed and parsed by
:mod:`protocols.sd_jwt`'s (strict canonical base64url, so a changed
character is a changed token), and its key found the way an SD-JWT VC
issuer's is.  Nothing here does I/O or reads the clock (``now`` is epoch
seconds, passed in).  Every failure is a :class:`StatusListError`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from . import data_integrity, sd_jwt
from .codec import b64u_encode
from .did.resolver import DIDResolver
from .did.syntax import split_did_url
from .errors import (
    CredentialError,
    CredentialIssuerError,
    CredentialSignatureError,
    CredentialTooLargeError,
    DIDCommError,
    MalformedStatusListError,
    ProofError,
    ProofPurposeError,
    StatusIndexError,
    StatusListError,
    StatusListExpiredError,
    StatusListIssuerError,
    StatusListMismatchError,
    StatusListSignatureError,
    StatusListTimeError,
    StatusListTooLargeError,
    UnsupportedCredentialError,
    UnsupportedStatusListError,
)
from .keys import PrivateKey
from .presentation_exchange import FORMAT_DI_VC, SD_JWT_FORMATS

__all__ = [
    "BITS",
    "CLOCK_LEEWAY_S",
    "ISSUED_BITS",
    "LIST_CREDENTIAL_TYPE",
    "LIST_SIZE",
    "MAX_ENCODED_LIST_CHARS",
    "MAX_ENTRIES",
    "MAX_LIST_BYTES",
    "MAX_STATUS_ENTRIES",
    "MAX_TOKEN_CHARS",
    "MAX_URI_CHARS",
    "PURPOSES",
    "PURPOSE_REVOCATION",
    "PURPOSE_SUSPENSION",
    "REVOKED",
    "SUSPENDED",
    "TOKEN_TYP",
    "VALID",
    "StatusList",
    "StatusReference",
    "VerifiedStatusList",
    "bitstring_entry",
    "decode_bitstring",
    "decode_lst",
    "encode_bitstring",
    "encode_lst",
    "read_bitstring_entry",
    "read_credential_status",
    "read_references",
    "read_token_reference",
    "sign_list_credential",
    "sign_token",
    "status_reference",
    "token_reference",
    "verify_list_credential",
    "verify_status_list",
    "verify_token",
]

# -- vocabulary -----------------------------------------------------------------------

#: The entry of a credential that is valid.
VALID: Final = 0
#: The entry of a revoked credential (the draft's INVALID).
REVOKED: Final = 1
#: The entry of a suspended credential (lists with ``bits`` >= 2 only).
SUSPENDED: Final = 2
#: Entries in a list we create: the Bitstring Status List minimum (16 KB of bits),
#: large enough that fetching a list reveals nothing about one credential.
LIST_SIZE: Final = 131_072
#: JOSE ``typ`` of a Status List Token in JWT format.
TOKEN_TYP: Final = "statuslist+jwt"
#: Bits per entry the Token Status List allows.
BITS: Final = frozenset({1, 2, 4, 8})
#: Bits per entry of the Token Status Lists we create: room for SUSPENDED.
ISSUED_BITS: Final = 2
#: Bitstring Status List purposes we issue and read: permanent, and reversible.
PURPOSE_REVOCATION: Final = "revocation"
PURPOSE_SUSPENSION: Final = "suspension"
PURPOSES: Final = (PURPOSE_REVOCATION, PURPOSE_SUSPENSION)
ENTRY_TYPE: Final = "BitstringStatusListEntry"
LIST_TYPE: Final = "BitstringStatusList"
LIST_CREDENTIAL_TYPE: Final = "BitstringStatusListCredential"

# -- limits -----------------------------------------------------------------------------

#: Longest Status List Token we parse or sign (characters; it is ASCII).  A
#: 131,072-entry 1-bit list with random entries compresses to ~16 KB (~22 KB
#: of base64url); this leaves room for denser lists and matches the largest
#: Data Integrity document (data_integrity.MAX_DOCUMENT_BYTES).
MAX_TOKEN_CHARS: Final = 256 * 1024
#: Longest ``encodedList`` we decode (characters, multibase prefix included).
MAX_ENCODED_LIST_CHARS: Final = 256 * 1024
#: Largest decompressed list (bytes): 2**20 entries of 8 bits, the draft's
#: largest test vector; decompression stops here.
MAX_LIST_BYTES: Final = 1024 * 1024
#: Most entries a list can have (1-bit entries filling MAX_LIST_BYTES); also
#: the bound on an index a credential may name.
MAX_ENTRIES: Final = MAX_LIST_BYTES * 8
#: Most ``credentialStatus`` entries a credential may carry (one per purpose we read).
MAX_STATUS_ENTRIES: Final = len(PURPOSES)
#: Longest list URI / URL we accept.
MAX_URI_CHARS: Final = 2048
#: Clock difference tolerated on ``iat``/``exp`` and ``validFrom``/``validUntil``
#: (seconds): the same as for the credentials themselves.
CLOCK_LEEWAY_S: Final = sd_jwt.CLOCK_LEEWAY_S
#: DEFLATE level for lists we sign (the draft recommends the highest).
COMPRESSION_LEVEL: Final = 9

_ZLIB_WBITS = 15  # RFC 1950 ZLIB container
_GZIP_WBITS = 31  # RFC 1952 GZIP container (16 + 15)
_B64U_RE = re.compile(r"[A-Za-z0-9_-]+")
_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,15}")
# Token Status List packs entry 0 into the low bit, Bitstring Status List into the
# high bit: for 1-bit entries one packing is the other with each byte's bits reversed.
_REVERSE_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


# -- the list ------------------------------------------------------------------------------


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in BITS:
        raise UnsupportedStatusListError("bits must be 1, 2, 4 or 8")
    return bits


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StatusList:
    """A mutable array of ``size`` entries of ``bits`` bits each.

    Stored packed as the Token Status List packs it: entry ``i`` occupies
    bits ``(i * bits) % 8`` up of byte ``i * bits // 8``, counted from the
    least significant bit.  New lists are all :data:`VALID`.
    """

    __slots__ = ("_data", "bits", "size")

    def __init__(self, size: int = LIST_SIZE, *, bits: int = 1) -> None:
        self.bits = _check_bits(bits)
        if not _is_int(size) or size < 1 or (size * bits + 7) // 8 > MAX_LIST_BYTES:
            raise StatusListTooLargeError(
                f"a status list has 1 to {MAX_LIST_BYTES * 8 // bits} entries of {bits} bits"
            )
        self.size: int = size
        self._data = bytearray((size * bits + 7) // 8)

    def _index(self, index: Any) -> int:
        if not _is_int(index) or not 0 <= index < self.size:
            raise StatusIndexError(f"status index is outside the list (0 to {self.size - 1})")
        result: int = index
        return result

    def get(self, index: int) -> int:
        """The entry at ``index`` (StatusIndexError outside the list)."""
        position = self._index(index) * self.bits
        return (self._data[position >> 3] >> (position & 7)) & ((1 << self.bits) - 1)

    def set(self, index: int, value: int) -> None:
        """Set the entry at ``index`` to ``value`` (which must fit in ``bits`` bits)."""
        position = self._index(index) * self.bits
        mask = (1 << self.bits) - 1
        if not _is_int(value) or not 0 <= value <= mask:
            raise StatusIndexError(f"a status value of a {self.bits}-bit list is 0 to {mask}")
        byte, shift = position >> 3, position & 7
        self._data[byte] = (self._data[byte] & ~(mask << shift)) | (value << shift)

    def to_bytes(self) -> bytes:
        """The packed array (Token Status List packing: entry 0 in the LSB of byte 0)."""
        return bytes(self._data)

    def _set_entries(self) -> Iterator[tuple[int, int]]:
        """``(index, value)`` of every entry that is not :data:`VALID`, in index order.

        Byte by byte, skipping zero bytes: lists are mostly valid, so this
        costs about one look per byte, not one per entry.
        """
        per_byte, mask = 8 // self.bits, (1 << self.bits) - 1
        for byte, packed in enumerate(self._data):
            if packed:
                for k in range(per_byte):
                    value = (packed >> (k * self.bits)) & mask
                    if value and byte * per_byte + k < self.size:
                        yield byte * per_byte + k, value

    def widened(self, bits: int) -> StatusList:
        """The same entries (index and value) in a new list of ``bits`` >= this one's bits."""
        if _check_bits(bits) < self.bits:
            raise UnsupportedStatusListError(f"a {self.bits}-bit list cannot narrow to {bits} bits")
        out = StatusList(self.size, bits=bits)
        for index, value in self._set_entries():
            out.set(index, value)
        return out

    def where(self, value: int) -> StatusList:
        """The 1-bit list whose entry ``i`` is 1 exactly when this list's is ``value``
        (not 0): one purpose's Bitstring Status List, from a 0/1/2 array.  A value
        too wide for this list's entries gives an all-0 list: no entry has it."""
        if not _is_int(value) or value < 1:
            raise StatusIndexError("a status value to select is 1 or more")
        out = StatusList(self.size, bits=1)
        for index, found in self._set_entries():
            if found == value:
                out.set(index, 1)
        return out

    @classmethod
    def from_bytes(cls, data: bytes, *, bits: int = 1, size: int | None = None) -> StatusList:
        """A list over ``data`` packed as :meth:`to_bytes` packs: of ``size`` entries
        (``data`` must be exactly their bytes), or else every bit is in an entry."""
        _check_bits(bits)
        if not isinstance(data, bytes | bytearray) or not data:
            raise MalformedStatusListError("a status list is a non-empty byte string")
        if len(data) > MAX_LIST_BYTES:
            raise StatusListTooLargeError(f"a status list is larger than {MAX_LIST_BYTES} bytes")
        out = cls(len(data) * 8 // bits if size is None else size, bits=bits)
        if len(out._data) != len(data):
            raise MalformedStatusListError(f"{size} entries of {bits} bits are not {len(data)} bytes")
        out._data[:] = data
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return (self.size, self.bits, self._data) == (other.size, other.bits, other._data)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatusList(size={self.size}, bits={self.bits})"


@dataclass(frozen=True)
class VerifiedStatusList:
    """A status list whose signature, issuer, URI and validity period were checked."""

    #: The list's URI: the token's ``sub`` / the list credential's ``id``.
    uri: str
    #: The DID whose ``assertionMethod`` key signed it.
    issuer: str
    #: ``iat`` / ``validFrom``, epoch seconds.
    issued_at: int
    #: ``exp`` / ``validUntil``, epoch seconds; None if open-ended.
    expires: int | None
    #: How long (seconds) the issuer suggests caching it (``ttl``); None if not said.
    ttl: int | None
    statuses: StatusList
    #: A Bitstring Status List's ``statusPurpose``; None for a Status List Token.
    purpose: str | None = None

    def status(self, index: int) -> int:
        """The entry at ``index`` in the token vocabulary (:data:`VALID`,
        :data:`REVOKED`, :data:`SUSPENDED`, ...): a set bit of a suspension
        list is SUSPENDED (StatusIndexError outside the list)."""
        value = self.statuses.get(index)
        return SUSPENDED if value and self.purpose == PURPOSE_SUSPENSION else value


@dataclass(frozen=True)
class StatusReference:
    """Where a credential's status is: entry ``index`` of the list at ``uri``."""

    uri: str
    index: int
    #: The entry's ``statusPurpose`` (Bitstring Status List); None for a token reference.
    purpose: str | None = None


# -- compression (both containers, zip-bomb safe) ----------------------------------------


def _inflate(raw: bytes, wbits: int, what: str) -> bytes:
    """Decompress ``raw``, stopping after MAX_LIST_BYTES: a bomb costs that much, no more."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, MAX_LIST_BYTES + 1)
    except zlib.error:
        raise MalformedStatusListError(f"{what} is not valid compressed data") from None
    if len(out) > MAX_LIST_BYTES:
        raise StatusListTooLargeError(f"{what} decompresses to more than {MAX_LIST_BYTES} bytes")
    if not inflater.eof:
        # Under the limit, so all input was read: the stream is cut short.
        raise MalformedStatusListError(f"{what} is truncated")
    if inflater.unused_data:
        raise MalformedStatusListError(f"{what} has data after the compressed stream")
    if not out:
        raise MalformedStatusListError(f"{what} is empty")
    return out


def _strict_b64u(text: str, what: str) -> bytes:
    """base64url written the one canonical way (sd_jwt's rule: a changed character
    is changed bytes)."""
    if _B64U_RE.fullmatch(text) is None:
        raise MalformedStatusListError(f"{what} is not base64url")
    try:
        return sd_jwt.strict_b64u(text, what)
    except CredentialError as exc:
        raise MalformedStatusListError(exc.message) from None


def encode_lst(statuses: StatusList) -> str:
    """The Token Status List ``lst``: base64url of the ZLIB-compressed array."""
    return b64u_encode(zlib.compress(statuses.to_bytes(), COMPRESSION_LEVEL))


def decode_lst(lst: Any, *, bits: int) -> StatusList:
    """A ``status_list.lst`` value back into a list of ``bits``-bit entries."""
    _check_bits(bits)
    if not isinstance(lst, str) or not lst:
        raise MalformedStatusListError("status_list.lst must be a non-empty string")
    if len(lst) > MAX_TOKEN_CHARS:
        raise StatusListTooLargeError(f"status_list.lst is longer than {MAX_TOKEN_CHARS}")
    raw = _strict_b64u(lst, "status_list.lst")
    return StatusList.from_bytes(_inflate(raw, _ZLIB_WBITS, "status_list.lst"), bits=bits)


def encode_bitstring(statuses: StatusList) -> str:
    """The Bitstring Status List ``encodedList``: ``u`` + base64url(GZIP(bitstring)).

    Only 1-bit lists (``statusSize`` 1).  The GZIP header's time is 0, so the
    same list always encodes to the same text.
    """
    if statuses.bits != 1:
        raise UnsupportedStatusListError("a bitstring status list has 1-bit entries")
    packer = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    data = statuses.to_bytes().translate(_REVERSE_BITS)
    return "u" + b64u_encode(packer.compress(data) + packer.flush())


def decode_bitstring(encoded: Any) -> StatusList:
    """An ``encodedList`` back into a 1-bit list (any length up to MAX_LIST_BYTES)."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise MalformedStatusListError(
            "encodedList must be a multibase base64url string (starting with 'u')"
        )
    if len(encoded) > MAX_ENCODED_LIST_CHARS:
        raise StatusListTooLargeError(f"encodedList is longer than {MAX_ENCODED_LIST_CHARS}")
    raw = _strict_b64u(encoded[1:], "encodedList")
    data = _inflate(raw, _GZIP_WBITS, "encodedList")
    return StatusList.from_bytes(data.translate(_REVERSE_BITS), bits=1)


# -- references in credentials --------------------------------------------------------------


def _check_uri(uri: Any, what: str) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_CHARS:
        raise MalformedStatusListError(
            f"{what} must be a string of 1 to {MAX_URI_CHARS} characters"
        )
    result: str = uri
    return result


def _check_reference_index(index: Any, what: str) -> int:
    if not _is_int(index) or not 0 <= index < MAX_ENTRIES:
        raise StatusIndexError(f"{what} must be an integer from 0 to {MAX_ENTRIES - 1}")
    result: int = index
    return result


def token_reference(uri: str, index: int) -> dict[str, Any]:
    """The SD-JWT VC ``status`` claim naming entry ``index`` of the token list at ``uri``."""
    return {
        "status_list": {
            "idx": _check_reference_index(index, "idx"),
            "uri": _check_uri(uri, "the status list uri"),
        }
    }


def read_token_reference(status: Any) -> tuple[str, int]:
    """``(uri, idx)`` from a credential's ``status`` claim; other members are ignored."""
    if not isinstance(status, Mapping):
        raise MalformedStatusListError("the status claim must be an object")
    inner = status.get("status_list")
    if not isinstance(inner, Mapping):
        raise MalformedStatusListError("the status claim has no status_list object")
    return _check_uri(inner.get("uri"), "status_list.uri"), _check_reference_index(
        inner.get("idx"), "status_list.idx"
    )


def _check_purpose(purpose: Any) -> str:
    if purpose not in PURPOSES:
        raise StatusListMismatchError(f"the status purpose is not one of {', '.join(PURPOSES)}")
    result: str = purpose
    return result


def bitstring_entry(url: str, index: int, purpose: str = PURPOSE_REVOCATION) -> dict[str, Any]:
    """One ``credentialStatus`` entry of a Data Integrity VC: entry ``index`` of the
    ``purpose`` list at ``url``."""
    _check_uri(url, "the status list url")
    _check_reference_index(index, "statusListIndex")
    return {
        "id": f"{url}#{index}",
        "type": ENTRY_TYPE,
        "statusPurpose": _check_purpose(purpose),
        "statusListIndex": str(index),
        "statusListCredential": url,
    }


def read_bitstring_entry(entry: Any) -> StatusReference:
    """``(url, index, purpose)`` from one ``credentialStatus`` entry (revocation or suspension)."""
    if not isinstance(entry, Mapping):
        raise MalformedStatusListError("credentialStatus must be an object")
    if entry.get("type") != ENTRY_TYPE:
        raise MalformedStatusListError(f"credentialStatus must be a {ENTRY_TYPE}")
    purpose = _check_purpose(entry.get("statusPurpose"))
    if "statusSize" in entry and (not _is_int(entry["statusSize"]) or entry["statusSize"] != 1):
        raise UnsupportedStatusListError("only statusSize 1 is supported")
    if "id" in entry:
        _check_uri(entry["id"], "credentialStatus.id")
    url = _check_uri(entry.get("statusListCredential"), "statusListCredential")
    text = entry.get("statusListIndex")
    if not isinstance(text, str) or _INDEX_RE.fullmatch(text) is None:
        raise MalformedStatusListError("statusListIndex must be a decimal integer string")
    return StatusReference(url, _check_reference_index(int(text), "statusListIndex"), purpose)


def read_credential_status(value: Any) -> list[StatusReference]:
    """Every entry of a ``credentialStatus``: one entry, or a list of 1 to
    :data:`MAX_STATUS_ENTRIES` entries of different purposes; revocation first."""
    entries = value if isinstance(value, list) else [value]
    if not 1 <= len(entries) <= MAX_STATUS_ENTRIES:
        raise MalformedStatusListError(
            f"credentialStatus must be an entry or a list of 1 to {MAX_STATUS_ENTRIES} entries"
        )
    references = [read_bitstring_entry(entry) for entry in entries]
    if len({r.purpose for r in references}) != len(references):
        raise MalformedStatusListError("credentialStatus has two entries of one purpose")
    return sorted(references, key=lambda r: PURPOSES.index(r.purpose or ""))


def read_references(value: Any, *, bitstring: bool) -> list[StatusReference]:
    """Every status entry of a credential: a ``credentialStatus`` (``bitstring``), or
    an SD-JWT ``status`` claim (one entry, no purpose)."""
    if bitstring:
        return read_credential_status(value)
    return [StatusReference(*read_token_reference(value))]


def status_reference(credential_format: str, uri: str, index: int) -> dict[str, Any]:
    """The status reference of a credential of ``credential_format`` (SD-JWT or ``di_vc``)."""
    if credential_format in SD_JWT_FORMATS:
        return token_reference(uri, index)
    if credential_format == FORMAT_DI_VC:
        return bitstring_entry(url=uri, index=index)
    raise UnsupportedStatusListError(
        f"no status list for the format {str(credential_format)[:64]!r}"
    )


# -- errors of the layers below, as status list errors ---------------------------------------


def _as_status_error(exc: DIDCommError, what: str) -> StatusListError:
    """A credential-layer error about a status list, as the StatusListError it means."""
    if isinstance(exc, StatusListError):
        return exc
    message = f"{what}: {exc.message}"
    if isinstance(exc, CredentialSignatureError):
        return StatusListSignatureError(message)
    if isinstance(exc, CredentialIssuerError | ProofPurposeError):
        # A key outside assertionMethod, or a proof made for another purpose.
        return StatusListIssuerError(message)
    if isinstance(exc, ProofError):
        return StatusListSignatureError(message)
    if isinstance(exc, CredentialTooLargeError):
        return StatusListTooLargeError(message)
    if isinstance(exc, UnsupportedCredentialError):
        return UnsupportedStatusListError(message)
    return MalformedStatusListError(message)


def _check_signer(issuer: Any, kid: Any) -> None:
    _check_uri(issuer, "issuer")
    try:
        did, fragment = split_did_url(kid)
    except DIDCommError:
        raise StatusListIssuerError("kid is not a DID URL") from None
    if did != issuer or fragment is None:
        raise StatusListIssuerError("kid must be a DID URL with a fragment of the issuer DID")


def _check_times(now: Any, expires: Any, ttl: Any = None) -> None:
    if not _is_int(now):
        raise StatusListTimeError("now must be an integer")
    if expires is not None and (not _is_int(expires) or expires <= now):
        raise StatusListTimeError("expires must be an integer after now")
    if ttl is not None and (not _is_int(ttl) or ttl < 0):
        raise MalformedStatusListError("ttl must be a non-negative integer")


def _check_expected_issuer(signer: str, expected: str | None) -> None:
    """A list speaks for the credentials of the DID that signed it, no other."""
    if expected is not None and signer != expected:
        raise StatusListIssuerError("the status list is signed by another issuer")


def _check_validity(issued_at: int, expires: int | None, now: int) -> None:
    """The token rule (sd_jwt's for credentials): leeway on both ends."""
    if issued_at > now + CLOCK_LEEWAY_S:
        raise StatusListTimeError("the status list is issued in the future")
    if expires is not None and now - CLOCK_LEEWAY_S >= expires:
        raise StatusListExpiredError("the status list has expired")


# -- SD-JWT VC: the Status List Token ----------------------------------------------------------


def sign_token(
    statuses: StatusList,
    *,
    uri: str,
    issuer: str,
    kid: str,
    key: PrivateKey,
    now: int,
    ttl: int | None = None,
    expires: int | None = None,
) -> str:
    """A Status List Token (JWT, ``typ`` ``statuslist+jwt``) over ``statuses``.

    ``kid`` must be a key of ``issuer`` (a DID), one its ``assertionMethod``
    lists for verifiers to accept the token.
    """
    if not isinstance(statuses, StatusList):
        raise MalformedStatusListError("statuses must be a StatusList")
    _check_uri(uri, "uri")
    _check_signer(issuer, kid)
    _check_times(now, expires, ttl)
    try:
        alg = sd_jwt.jwt_alg(key)
    except DIDCommError as exc:
        raise _as_status_error(exc, "the signing key") from None
    payload: dict[str, Any] = {"sub": uri, "iss": issuer, "iat": now}
    if expires is not None:
        payload["exp"] = expires
    if ttl is not None:
        payload["ttl"] = ttl
    payload["status_list"] = {"bits": statuses.bits, "lst": encode_lst(statuses)}
    token = sd_jwt.sign_jwt({"typ": TOKEN_TYP, "alg": alg, "kid": kid}, payload, key)
    if len(token) > MAX_TOKEN_CHARS:
        raise StatusListTooLargeError(f"the status list token is longer than {MAX_TOKEN_CHARS}")
    return token


def _numeric_date(value: Any, name: str) -> int:
    """A JWT NumericDate (RFC 7519: seconds, maybe fractional) as whole seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedStatusListError(f"the status list token's {name!r} must be a number")
    return int(value)


def verify_token(
    token: str,
    *,
    resolver: DIDResolver,
    now: int,
    uri: str | None = None,
    issuer: str | None = None,
) -> VerifiedStatusList:
    """Verify a Status List Token and return its list.

    The header ``typ`` must be ``statuslist+jwt`` and ``kid`` an
    ``assertionMethod`` key of the ``iss`` DID, whose signature must verify;
    ``iss`` must be ``issuer`` and ``sub`` ``uri`` when given; ``iat`` present and not in the
    future, ``exp`` (if any) not passed; ``ttl`` a non-negative integer;
    ``status_list.bits`` 1, 2, 4 or 8 and ``lst`` within the size limits.
    """
    if not isinstance(token, str):
        raise MalformedStatusListError("a status list token must be a string")
    if len(token) > MAX_TOKEN_CHARS:
        raise StatusListTooLargeError(f"the status list token is longer than {MAX_TOKEN_CHARS}")
    if not _is_int(now):
        raise StatusListTimeError("now must be an integer")
    try:
        jwt = sd_jwt.parse_jwt(token, "status list token")
        if jwt.header.get("typ") != TOKEN_TYP:
            raise MalformedStatusListError(f"the token's typ is not {TOKEN_TYP!r}")
        # The key is found as an SD-JWT VC issuer's is: kid in iss, an assertionMethod.
        signer, key = sd_jwt.issuer_key(jwt, resolver)
        jwt.verify(key)
    except CredentialError as exc:
        raise _as_status_error(exc, "status list token") from None
    except DIDCommError:
        raise StatusListSignatureError(
            "the status list token's signature does not verify"
        ) from None
    _check_expected_issuer(signer, issuer)
    claims = jwt.payload
    sub = _check_uri(claims.get("sub"), "the token's sub")
    if uri is not None and sub != uri:
        raise StatusListMismatchError("the status list token is for another list (sub)")
    if "iat" not in claims:
        raise MalformedStatusListError("the status list token needs 'iat'")
    issued_at = _numeric_date(claims["iat"], "iat")
    expires = None if "exp" not in claims else _numeric_date(claims["exp"], "exp")
    ttl = claims.get("ttl")
    if ttl is not None and (not _is_int(ttl) or ttl < 0):
        raise MalformedStatusListError("the token's ttl must be a non-negative integer")
    _check_validity(issued_at, expires, now)
    body = claims.get("status_list")
    if not isinstance(body, dict):
        raise MalformedStatusListError("the token has no status_list object")
    statuses = decode_lst(body.get("lst"), bits=_check_bits(body.get("bits")))
    return VerifiedStatusList(
        uri=sub, issuer=signer, issued_at=issued_at, expires=expires, ttl=ttl, statuses=statuses
    )


# -- Data Integrity VCs: the BitstringStatusListCredential -----------------------------------


def _xsd_datetime(epoch: int) -> str:
    """Epoch seconds as an XML Schema dateTime in UTC."""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise StatusListTimeError("a time is out of range") from None


def _epoch(value: Any, what: str) -> int:
    try:
        return int(data_integrity.parse_datetime(value, what).timestamp())
    except DIDCommError as exc:
        raise _as_status_error(exc, "status list credential") from None


def sign_list_credential(
    statuses: StatusList,
    *,
    url: str,
    issuer: str,
    kid: str,
    key: PrivateKey,
    now: int,
    expires: int | None = None,
    purpose: str = PURPOSE_REVOCATION,
) -> dict[str, Any]:
    """A ``BitstringStatusListCredential`` for ``purpose`` over ``statuses``, signed ``eddsa-jcs-2022``.

    ``statuses`` must have 1-bit entries and at least :data:`LIST_SIZE` of
    them (the spec's minimum, which is what hides one credential among many).
    ``kid`` must be an Ed25519 key of ``issuer``, an ``assertionMethod`` of it.
    """
    if not isinstance(statuses, StatusList):
        raise MalformedStatusListError("statuses must be a StatusList")
    if statuses.bits != 1:
        raise UnsupportedStatusListError("a bitstring status list has 1-bit entries")
    if statuses.size < LIST_SIZE:
        raise StatusIndexError(f"a bitstring status list has at least {LIST_SIZE} entries")
    _check_uri(url, "url")
    _check_signer(issuer, kid)
    _check_times(now, expires)
    _check_purpose(purpose)
    credential: dict[str, Any] = {
        "@context": [data_integrity.VC_CONTEXT_V2],
        "id": url,
        "type": [data_integrity.VC_TYPE, LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": _xsd_datetime(now),
    }
    if expires is not None:
        credential["validUntil"] = _xsd_datetime(expires)
    credential["credentialSubject"] = {
        "id": f"{url}#list",
        "type": LIST_TYPE,
        "statusPurpose": purpose,
        "encodedList": encode_bitstring(statuses),
    }
    try:
        return data_integrity.sign_credential(
            credential, key=key, verification_method=kid, created=_xsd_datetime(now)
        )
    except DIDCommError as exc:
        raise _as_status_error(exc, "status list credential") from None


def _has(value: Any, wanted: str) -> bool:
    """Whether a JSON-LD value (a string or a list of strings) includes ``wanted``."""
    return value == wanted or (isinstance(value, list) and wanted in value)


def verify_list_credential(
    document: Any,
    *,
    resolver: DIDResolver,
    now: int,
    url: str | None = None,
    issuer: str | None = None,
    purpose: str | None = None,
) -> VerifiedStatusList:
    """Verify a ``BitstringStatusListCredential`` (a dict, or its JSON text) and return its list.

    The proof must verify with an ``assertionMethod`` key of the ``issuer``
    (:func:`protocols.data_integrity.verify_credential`), which must be
    ``issuer`` when given; ``id`` must be ``url`` when given; ``validFrom`` present and not in the future,
    ``validUntil`` (if any) not passed, with the same leeway as tokens; the
    subject a ``BitstringStatusList`` for ``revocation`` or ``suspension`` (``purpose``
    when given: the spec's rule, the entry's purpose and the list's must match)
    with 1-bit entries.
    A ``ttl`` (milliseconds in this spec) is reported in seconds.
    """
    if not _is_int(now):
        raise StatusListTimeError("now must be an integer")
    try:
        if isinstance(document, str | bytes):
            if len(document) > MAX_TOKEN_CHARS:
                raise StatusListTooLargeError(
                    f"the status list credential is longer than {MAX_TOKEN_CHARS}"
                )
            document = data_integrity.parse_document(document)
        if not isinstance(document, Mapping):
            raise MalformedStatusListError("a status list credential must be a JSON object")
        if not _has(document.get("type"), LIST_CREDENTIAL_TYPE):
            raise MalformedStatusListError(f"the credential is not a {LIST_CREDENTIAL_TYPE}")
        # No ``now`` here: the validity period is checked below, with leeway.
        verified = data_integrity.verify_credential(document, resolver=resolver)
    except DIDCommError as exc:
        raise _as_status_error(exc, "status list credential") from None
    _check_expected_issuer(verified.controller, issuer)
    unsecured = verified.document
    list_url = _check_uri(unsecured.get("id"), "the list credential's id")
    if url is not None and list_url != url:
        raise StatusListMismatchError("the status list credential is for another list (id)")
    if "validFrom" not in unsecured:
        raise MalformedStatusListError("the status list credential needs validFrom")
    issued_at = _epoch(unsecured["validFrom"], "validFrom")
    expires = _epoch(unsecured["validUntil"], "validUntil") if "validUntil" in unsecured else None
    _check_validity(issued_at, expires, now)
    if "expires" in verified.proof and now - CLOCK_LEEWAY_S >= _epoch(
        verified.proof["expires"], "proof expires"
    ):
        raise StatusListExpiredError("the status list credential's proof has expired")
    subject = unsecured.get("credentialSubject")
    if not isinstance(subject, dict):
        raise MalformedStatusListError("the list credential's subject must be one object")
    if not _has(subject.get("type"), LIST_TYPE):
        raise MalformedStatusListError(f"the list credential's subject is not a {LIST_TYPE}")
    list_purpose = _check_purpose(subject.get("statusPurpose"))
    if purpose is not None and list_purpose != purpose:
        raise StatusListMismatchError(f"the status list's purpose is not {purpose!r}")
    if "statusSize" in subject and (
        not _is_int(subject["statusSize"]) or subject["statusSize"] != 1
    ):
        raise UnsupportedStatusListError("only statusSize 1 is supported")
    ttl_ms = subject.get("ttl")
    if ttl_ms is not None and (not _is_int(ttl_ms) or ttl_ms < 0):
        raise MalformedStatusListError("the list's ttl must be a non-negative integer")
    statuses = decode_bitstring(subject.get("encodedList"))
    return VerifiedStatusList(
        uri=list_url,
        issuer=verified.controller,
        issued_at=issued_at,
        expires=expires,
        ttl=None if ttl_ms is None else ttl_ms // 1000,
        statuses=statuses,
        purpose=list_purpose,
    )


# -- either kind ----------------------------------------------------------------------------------


def verify_status_list(
    document: Any,
    *,
    resolver: DIDResolver,
    now: int,
    uri: str | None = None,
    issuer: str | None = None,
    purpose: str | None = None,
) -> VerifiedStatusList:
    """:func:`verify_token` or :func:`verify_list_credential`, by what ``document`` is
    (``purpose``: the list credential's, when given; a token has none).

    A Status List Token is compact JWS text; a list credential is a JSON
    object, or its JSON text (which starts with ``{``, as no JWS does).
    """
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedStatusListError("a status list must be UTF-8 text") from None
    if isinstance(document, str) and not document.lstrip().startswith("{"):
        return verify_token(document, resolver=resolver, now=now, uri=uri, issuer=issuer)
    return verify_list_credential(
        document, resolver=resolver, now=now, url=uri, issuer=issuer, purpose=purpose
    )
