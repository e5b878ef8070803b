"""The node's persistent libp2p identity: an Ed25519 key and its peer id.

Theory of operation
-------------------
A libp2p peer id is derived from the node's public key, so keeping the key is
what keeps the peer id (and every DID document service endpoint
``libp2p-peerId:<id>`` that names it) stable across restarts.

Storage format: the libp2p spec's ``PrivateKey`` protobuf
(https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md)::

    message PrivateKey { required KeyType Type = 1; required bytes Data = 2; }

with ``Type = Ed25519 (1)`` and ``Data`` = 64 bytes, seed || public key, which
is what go and js write.  (py-libp2p's own ``save_identity`` writes only the
32-byte seed; go and js reject that, so we never write it, but we read it and
rewrite it in the spec's form.)

Peer id: the identity multihash (code 0x00) of the protobuf ``PublicKey``
(``Type = 1``, ``Data`` = the 32-byte key) - Ed25519 keys are short enough to
be inlined - in base58btc, hence the familiar ``12D3KooW...``.  This module
computes it without importing libp2p (which takes seconds to import); the tests
check it against py-libp2p's ``ID.from_pubkey`` and the spec's test vector.

Where the bytes live is the caller's business: :func:`load_or_create_identity`
takes a ``load``/``store`` callback pair, so the daemon's wallet can keep the
key encrypted.  Key bytes never appear in a repr, a log or an error message.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from nacl.signing import SigningKey

from protocols.errors import DIDCommError
from protocols.multibase import b58decode, b58encode

from .errors import IdentityError

if TYPE_CHECKING:
    from libp2p.crypto.keys import KeyPair

#: libp2p crypto.proto KeyType values.
KEY_TYPE_ED25519: Final = 1
SEED_BYTES: Final = 32
PUBLIC_KEY_BYTES: Final = 32
#: Data of an Ed25519 PrivateKey in the spec's (go/js) format: seed || public.
SPEC_PRIVATE_DATA_BYTES: Final = SEED_BYTES + PUBLIC_KEY_BYTES
#: Longest stored identity we parse (a 64-byte key plus a few header bytes).
MAX_IDENTITY_BYTES: Final = 128

#: multihash codes a peer id may use, and the longest key inlined with 0x00.
MULTIHASH_IDENTITY: Final = 0x00
MULTIHASH_SHA2_256: Final = 0x12
MAX_INLINE_KEY_BYTES: Final = 42
#: A base58 peer id is at most this long (an inlined 42-byte key: 60 chars).
MAX_PEER_ID_CHARS: Final = 128

_T = TypeVar("_T")


def _field_header(field: int, wire_type: int) -> bytes:
    return bytes([(field << 3) | wire_type])


def _protobuf_key(key_type: int, data: bytes) -> bytes:
    # Fields 1 (varint) and 2 (length-delimited); lengths here are < 128.
    return _field_header(1, 0) + bytes([key_type]) + _field_header(2, 2) + bytes([len(data)]) + data


def _parse_protobuf_key(data: bytes) -> tuple[int, bytes]:
    """Parse a (Private|Public)Key protobuf: (Type, Data).  Strict but small."""
    if len(data) > MAX_IDENTITY_BYTES:
        raise IdentityError("stored peer identity is too long to be an Ed25519 key")
    key_type: int | None = None
    key_data: bytes | None = None
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag == 0x08 and key_type is None:  # field 1, varint
            if pos >= len(data) or data[pos] & 0x80:
                raise IdentityError("stored peer identity has a bad key type")
            key_type = data[pos]
            pos += 1
        elif tag == 0x12 and key_data is None:  # field 2, bytes
            if pos >= len(data) or data[pos] & 0x80:
                raise IdentityError("stored peer identity has a bad key length")
            length = data[pos]
            pos += 1
            if pos + length > len(data):
                raise IdentityError("stored peer identity is truncated")
            key_data = data[pos : pos + length]
            pos += length
        else:
            raise IdentityError("stored peer identity is not a libp2p PrivateKey")
    if key_type is None or key_data is None:
        raise IdentityError("stored peer identity lacks its key type or key data")
    return key_type, key_data


def public_key_protobuf(public_key: bytes) -> bytes:
    """The libp2p ``PublicKey`` protobuf of an Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise IdentityError("an Ed25519 public key is 32 bytes")
    return _protobuf_key(KEY_TYPE_ED25519, public_key)


def peer_id_from_public_key(public_key: bytes) -> str:
    """Base58btc peer id of an Ed25519 public key (identity multihash)."""
    proto = public_key_protobuf(public_key)
    return b58encode(bytes([MULTIHASH_IDENTITY, len(proto)]) + proto)


def parse_peer_id(text: str) -> str:
    """Check that ``text`` is a base58btc peer id; return it unchanged.

    Accepts the identity-multihash form (Ed25519, ``12D3KooW...``) and the
    sha2-256 form (RSA and other long keys, ``Qm...``).  Raises IdentityError.
    """
    if not text or len(text) > MAX_PEER_ID_CHARS:
        raise IdentityError("a peer id must be a short base58btc string")
    try:
        raw = b58decode(text)
    except DIDCommError:
        raise IdentityError("a peer id must be base58btc") from None
    if len(raw) < 2:
        raise IdentityError("a peer id is a multihash")
    code, length, digest = raw[0], raw[1], raw[2:]
    if length != len(digest):
        raise IdentityError("a peer id's multihash length does not match")
    if code == MULTIHASH_IDENTITY and 0 < length <= MAX_INLINE_KEY_BYTES:
        return text
    if code == MULTIHASH_SHA2_256 and length == 32:
        return text
    raise IdentityError("a peer id must be an identity or sha2-256 multihash")


class PeerIdentity:
    """An Ed25519 libp2p identity.  Immutable; ``repr`` shows the peer id only."""

    __slots__ = ("_signing_key", "peer_id", "public_key")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing_key = signing_key
        self.public_key: bytes = bytes(signing_key.verify_key)
        self.peer_id: str = peer_id_from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> PeerIdentity:
        """A fresh random identity."""
        return cls(SigningKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerIdentity:
        """Parse a stored libp2p ``PrivateKey`` protobuf (64- or 32-byte Data)."""
        key_type, key_data = _parse_protobuf_key(bytes(data))
        if key_type != KEY_TYPE_ED25519:
            raise IdentityError("stored peer identity is not an Ed25519 key")
        if len(key_data) == SPEC_PRIVATE_DATA_BYTES:
            seed, public = key_data[:SEED_BYTES], key_data[SEED_BYTES:]
        elif len(key_data) == SEED_BYTES:  # py-libp2p's save_identity format
            seed, public = key_data, None
        else:
            raise IdentityError("stored Ed25519 key data must be 64 (or 32) bytes")
        signing_key = SigningKey(seed)
        if public is not None and bytes(signing_key.verify_key) != public:
            raise IdentityError("stored Ed25519 public key does not match its seed")
        return cls(signing_key)

    def to_bytes(self) -> bytes:
        """The spec's ``PrivateKey`` protobuf: Type=Ed25519, Data=seed||public."""
        seed = bytes(self._signing_key)
        return _protobuf_key(KEY_TYPE_ED25519, seed + self.public_key)

    def libp2p_key_pair(self) -> KeyPair:
        """The same key as a py-libp2p ``KeyPair`` (imports libp2p)."""
        from libp2p.crypto.ed25519 import Ed25519PrivateKey
        from libp2p.crypto.keys import KeyPair

        private = Ed25519PrivateKey(self._signing_key)
        return KeyPair(private, private.get_public_key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerIdentity):
            return NotImplemented
        return self.public_key == other.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"PeerIdentity({self.peer_id})"


async def _resolve(value: _T | Awaitable[_T]) -> _T:
    if inspect.isawaitable(value):
        result: Any = await value
        return result  # type: ignore[no-any-return]
    return value


async def load_or_create_identity(
    load: Callable[[], bytes | Awaitable[bytes | None] | None],
    store: Callable[[bytes], Awaitable[None] | None],
) -> PeerIdentity:
    """Load the stored identity, or generate one and store it.

    ``load()`` returns the stored bytes or ``None`` when there are none;
    ``store(data)`` persists bytes.  Either may be a plain or an async
    function (the wallet encrypts; that may run in a thread).  A key stored in
    py-libp2p's 32-byte form is rewritten in the spec's 64-byte form.
    """
    data = await _resolve(load())
    if data is None:
        identity = PeerIdentity.generate()
        await _resolve(store(identity.to_bytes()))
        return identity
    identity = PeerIdentity.from_bytes(data)
    canonical = identity.to_bytes()
    if bytes(data) != canonical:
        await _resolve(store(canonical))
    return identity
