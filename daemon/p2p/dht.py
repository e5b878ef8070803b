"""DID -> peer records for the Kademlia DHT: their format, signatures and validation.

Theory of operation
-------------------
A daemon announces each of its DIDs in the DHT under the key
``/didcomm/<base64url of the first 30 bytes of sha256(DID)>`` (49 bytes: py-libp2p's
DHT refuses ``FIND_NODE`` for a key over 50 bytes that is not a peer id, so a
longer key could not be looked up through py-libp2p peers) with a value that is
a small JSON object::

    {"v": 2, "did": "...", "kid": "<did>#<key>", "peer_id": "12D3KooW...",
     "addrs": ["/ip4/.../tcp/.../p2p/..."], "seq": <ms since the epoch>,
     "exp": <Unix seconds>, "sig": "<base64url>", "psig": "<base64url>"}

Both signatures cover the same bytes: :data:`SIGNING_CONTEXT` followed by the
object without ``sig`` and ``psig``, serialized with sorted keys and no spaces.

- ``sig`` is by the DID's own key, ``kid``, which must be one of the DID
  document's ``authentication`` methods: only the DID's owner can say where the
  DID is reached.  A stranger cannot redirect a DID to itself.
- ``psig`` is by the libp2p key of ``peer_id`` (an Ed25519 peer id holds its
  public key): the peer agrees to be named, so a DID owner cannot point its DID
  at an innocent peer.  When we dial, the Noise handshake proves the peer id.

A record lives until ``exp`` (:data:`RECORD_LIFETIME` after publication; the
publisher republishes well before); one that claims to live longer than
:data:`RECORD_LIFETIME` plus :data:`CLOCK_SKEW` is refused, so a leaked old
key cannot plant an eternal record.  Among valid records the highest ``seq``
wins (:meth:`RecordValidator.select`).

Everything here is sans-I/O: :func:`make_record` / :func:`parse_record` /
:class:`RecordValidator` (the py-libp2p ``Validator`` the DHT calls for every
value it is asked to store or returns) are pure; the DID is resolved with the
local ``did:key`` / ``did:peer`` resolvers (no network), so a DHT node stores
records only for DIDs it can check.  Records from the DHT are untrusted:
bounded size, strict JSON shape, bounded address count; a bad record is one
:class:`RecordError`, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from protocols.codec import b64u_decode, b64u_encode
from protocols.did.resolver import ChainResolver, DIDKeyResolver, DIDPeerResolver, DIDResolver
from protocols.errors import DIDCommError
from protocols.multibase import b58decode

from .errors import IdentityError
from .identity import PUBLIC_KEY_BYTES, PeerIdentity, parse_peer_id, public_key_protobuf

#: The DHT namespace of our records.
NAMESPACE: Final = "didcomm"
#: Record format version (1 was signed by the peer key only).
VERSION: Final = 2
#: Bytes of sha256(DID) in a record's key (240 bits; keeps the key under 50 bytes).
KEY_HASH_BYTES: Final = 30
#: Largest record accepted (16 addresses of ~100 characters and a long did:peer fit).
MAX_RECORD_BYTES: Final = 8192
#: Addresses in one record at most.
MAX_RECORD_ADDRS: Final = 16
#: Longest DID a record may name.
MAX_DID_CHARS: Final = 2048
#: Longest key id a record may name.
MAX_KID_CHARS: Final = 2200
#: Longest address in a record.
MAX_ADDR_CHARS: Final = 256
#: Seconds a record is valid after its publication.
RECORD_LIFETIME: Final = 3600
#: Seconds of clock difference tolerated between publisher and reader.
CLOCK_SKEW: Final = 300
#: What both signatures sign before the record's bytes (domain separation:
#: such a signature can never pass for a JWS or a libp2p signed envelope).
SIGNING_CONTEXT: Final = b"didcommd/dht-record/v2\n"

_FIELDS: Final = frozenset({"v", "did", "kid", "peer_id", "addrs", "seq", "exp", "sig", "psig"})


class RecordError(ValueError):
    """A DID record is malformed, too large, expired, or not signed by the DID and the peer it names."""


@dataclass(frozen=True)
class DIDRecord:
    """A checked DID -> peer record."""

    did: str
    peer_id: str
    addrs: tuple[str, ...]
    seq: int
    exp: int


#: Resolves the DIDs whose records we can check: computed methods only, no network.
LOCAL_RESOLVER: Final[DIDResolver] = ChainResolver(DIDKeyResolver(), DIDPeerResolver())


def record_key(did: str) -> str:
    """The DHT key of ``did``'s record."""
    digest = hashlib.sha256(did.encode()).digest()[:KEY_HASH_BYTES]
    return f"/{NAMESPACE}/{b64u_encode(digest)}"


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return SIGNING_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def make_record(
    identity: PeerIdentity,
    did: str,
    kid: str,
    sign: Callable[[bytes], bytes],
    addrs: Sequence[str],
    *,
    now: float | None = None,
) -> bytes:
    """A record saying ``did`` is reached at our peer id and ``addrs``.

    ``sign(data)`` signs with the DID's key ``kid`` (an authentication method).
    """
    now = time.time() if now is None else now
    body: dict[str, Any] = {
        "v": VERSION,
        "did": did,
        "kid": kid,
        "peer_id": identity.peer_id,
        "addrs": [a for a in addrs if len(a) <= MAX_ADDR_CHARS][:MAX_RECORD_ADDRS],
        "seq": int(now * 1000),
        "exp": int(now) + RECORD_LIFETIME,
    }
    data = _signed_bytes(body)
    psig = identity.libp2p_key_pair().private_key.sign(data)
    record = json.dumps(
        {**body, "sig": b64u_encode(sign(data)), "psig": b64u_encode(psig)}, separators=(",", ":")
    ).encode()
    if len(record) > MAX_RECORD_BYTES:
        raise RecordError(f"the record is over {MAX_RECORD_BYTES} bytes")
    return record


def _public_key(peer_id: str) -> bytes:
    """The Ed25519 public key inside an identity-multihash peer id."""
    raw = b58decode(parse_peer_id(peer_id))
    proto = raw[2:]
    public = proto[-PUBLIC_KEY_BYTES:]
    if raw[0] != 0x00 or len(public) != PUBLIC_KEY_BYTES or public_key_protobuf(public) != proto:
        raise RecordError("the record's peer id does not hold an Ed25519 key")
    return public


def _check_did_signature(resolver: DIDResolver, did: str, kid: str, data: bytes, sig: str) -> None:
    try:
        doc = resolver.resolve(did)
    except DIDCommError as exc:
        raise RecordError(f"cannot resolve the record's DID ({type(exc).__name__})") from None
    absolute = doc.absolute(kid)
    method = next((vm for vm in doc.authentication_methods() if vm.id == absolute), None)
    if method is None:
        raise RecordError("the record's kid is not an authentication key of its DID")
    try:
        method.public_key.verify(b64u_decode(sig), data)
    except DIDCommError:
        raise RecordError("the record is not signed by its DID") from None


def parse_record(
    value: bytes,
    *,
    key: str | None = None,
    now: float | None = None,
    resolver: DIDResolver = LOCAL_RESOLVER,
) -> DIDRecord:
    """Check a record (shape, limits, both signatures, expiry, and its key if given).

    Raises RecordError.
    """
    if not isinstance(value, (bytes, bytearray)) or len(value) > MAX_RECORD_BYTES:
        raise RecordError(f"a record is at most {MAX_RECORD_BYTES} bytes")
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RecordError("a record is a JSON object") from None
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise RecordError(f"a record has exactly the members {', '.join(sorted(_FIELDS))}")
    did, kid, peer_id, addrs = obj["did"], obj["kid"], obj["peer_id"], obj["addrs"]
    seq, exp, sig, psig = obj["seq"], obj["exp"], obj["sig"], obj["psig"]
    if obj["v"] != VERSION:
        raise RecordError(f"unknown record version {obj['v']!r}")
    if not isinstance(did, str) or not did.startswith("did:") or len(did) > MAX_DID_CHARS:
        raise RecordError("a record's did is a DID")
    if not isinstance(kid, str) or len(kid) > MAX_KID_CHARS:
        raise RecordError("a record's kid is a key id")
    if key is not None and key != record_key(did):
        raise RecordError("the record is stored under another DID's key")
    if (
        not isinstance(addrs, list)
        or len(addrs) > MAX_RECORD_ADDRS
        or not all(isinstance(a, str) and len(a) <= MAX_ADDR_CHARS for a in addrs)
    ):
        raise RecordError(f"a record has at most {MAX_RECORD_ADDRS} short string addresses")
    for name, number in (("seq", seq), ("exp", exp)):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**63:
            raise RecordError(f"a record's {name} is a non-negative integer")
    now = time.time() if now is None else now
    if exp <= now:
        raise RecordError("the record has expired")
    if exp > now + RECORD_LIFETIME + CLOCK_SKEW:
        raise RecordError(f"the record claims to live more than {RECORD_LIFETIME} s")
    if not isinstance(peer_id, str) or not isinstance(sig, str) or not isinstance(psig, str):
        raise RecordError("a record's peer_id, sig and psig are strings")
    body = {k: v for k, v in obj.items() if k not in ("sig", "psig")}
    data = _signed_bytes(body)
    try:
        public = _public_key(peer_id)
        VerifyKey(public).verify(data, b64u_decode(psig))
    except (IdentityError, BadSignatureError, DIDCommError, ValueError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"the record is not signed by its peer ({type(exc).__name__})") from None
    _check_did_signature(resolver, did, kid, data, sig)
    return DIDRecord(did, peer_id, tuple(addrs), seq, exp)


def _validator_base() -> type:
    from libp2p.records.validator import Validator

    return Validator


class RecordValidator(_validator_base()):  # type: ignore[misc]
    """py-libp2p's ``Validator`` for the ``didcomm`` namespace."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def validate(self, key: str, value: bytes) -> None:
        """Raise (RecordError, a ValueError) unless ``value`` is a good record for ``key``."""
        parse_record(value, key=key, now=self._clock())

    def select(self, key: str, values: list[bytes]) -> int:
        """The index of the newest valid record (highest ``seq``); bad ones never win."""
        best, best_seq = 0, -1
        now = self._clock()
        for i, value in enumerate(values):
            try:
                seq = parse_record(value, key=key, now=now).seq
            except RecordError:
                continue
            if seq > best_seq:
                best, best_seq = i, seq
        return best
