"""DID -> peer records for the Kademlia DHT: their format, signature and validation.

Theory of operation
-------------------
A daemon announces each of its DIDs in the DHT under the key
``/didcomm/<hex sha256 of the DID>`` with a value that is a small JSON object::

    {"v": 1, "did": "...", "peer_id": "12D3KooW...", "addrs": ["/ip4/.../tcp/.../p2p/..."],
     "seq": <milliseconds since the epoch>, "sig": "<base64url Ed25519 signature>"}

The signature is by the libp2p key of ``peer_id`` (an Ed25519 peer id holds its
public key) over the same object without ``sig``, serialized with sorted keys
and no spaces.  So a record can only be written by the peer it points to: a
stranger can neither redirect a DID to itself (it cannot sign for another peer
id) nor point a DID at an innocent peer's addresses without that peer's key.
Whether the peer really owns the DID is the DID document's business: a
``did:peer`` names its ``libp2p-peerId`` itself, and the sender cross-checks
(:func:`daemon.p2p.discovery.Discovery.lookup_did`); the Noise handshake then
proves the peer id.

Everything here is sans-I/O: :func:`make_record` / :func:`parse_record` /
:class:`RecordValidator` (the py-libp2p ``Validator`` the DHT calls for every
value it is asked to store or returns) are pure.  Records from the DHT are
untrusted: bounded size, strict JSON shape, bounded address count, and a bad
record is one :class:`RecordError`, never a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from protocols.codec import b64u_decode, b64u_encode
from protocols.errors import DIDCommError
from protocols.multibase import b58decode

from .errors import IdentityError
from .identity import PUBLIC_KEY_BYTES, PeerIdentity, parse_peer_id, public_key_protobuf

#: The DHT namespace of our records.
NAMESPACE: Final = "didcomm"
#: Record format version.
VERSION: Final = 1
#: Largest record accepted (16 addresses of ~100 characters fit easily).
MAX_RECORD_BYTES: Final = 4096
#: Addresses in one record at most.
MAX_RECORD_ADDRS: Final = 16
#: Longest DID a record may name.
MAX_DID_CHARS: Final = 2048
#: Longest address in a record.
MAX_ADDR_CHARS: Final = 256


class RecordError(ValueError):
    """A DID record is malformed, too large, or not signed by the peer it names."""


@dataclass(frozen=True)
class DIDRecord:
    """A checked DID -> peer record."""

    did: str
    peer_id: str
    addrs: tuple[str, ...]
    seq: int


def record_key(did: str) -> str:
    """The DHT key of ``did``'s record."""
    return f"/{NAMESPACE}/{hashlib.sha256(did.encode()).hexdigest()}"


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def make_record(identity: PeerIdentity, did: str, addrs: Sequence[str], seq: int) -> bytes:
    """A signed record saying ``did`` is reached at our peer id and ``addrs``."""
    body: dict[str, Any] = {
        "v": VERSION,
        "did": did,
        "peer_id": identity.peer_id,
        "addrs": [a for a in addrs if len(a) <= MAX_ADDR_CHARS][:MAX_RECORD_ADDRS],
        "seq": int(seq),
    }
    signature = identity.libp2p_key_pair().private_key.sign(_signed_bytes(body))
    record = json.dumps({**body, "sig": b64u_encode(signature)}, separators=(",", ":")).encode()
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


def parse_record(value: bytes, *, key: str | None = None) -> DIDRecord:
    """Check a record (shape, limits, signature, and its key if given); raises RecordError."""
    if not isinstance(value, (bytes, bytearray)) or len(value) > MAX_RECORD_BYTES:
        raise RecordError(f"a record is at most {MAX_RECORD_BYTES} bytes")
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise RecordError("a record is a JSON object") from None
    if not isinstance(obj, dict) or set(obj) != {"v", "did", "peer_id", "addrs", "seq", "sig"}:
        raise RecordError("a record has exactly v, did, peer_id, addrs, seq and sig")
    did, peer_id, addrs, seq, sig = obj["did"], obj["peer_id"], obj["addrs"], obj["seq"], obj["sig"]
    if obj["v"] != VERSION:
        raise RecordError(f"unknown record version {obj['v']!r}")
    if not isinstance(did, str) or not did.startswith("did:") or len(did) > MAX_DID_CHARS:
        raise RecordError("a record's did is a DID")
    if key is not None and key != record_key(did):
        raise RecordError("the record is stored under another DID's key")
    if (
        not isinstance(addrs, list)
        or len(addrs) > MAX_RECORD_ADDRS
        or not all(isinstance(a, str) and len(a) <= MAX_ADDR_CHARS for a in addrs)
    ):
        raise RecordError(f"a record has at most {MAX_RECORD_ADDRS} short string addresses")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise RecordError("a record's seq is a non-negative integer")
    if not isinstance(peer_id, str) or not isinstance(sig, str):
        raise RecordError("a record's peer_id and sig are strings")
    try:
        public = _public_key(peer_id)
        signature = b64u_decode(sig)
        body = {k: v for k, v in obj.items() if k != "sig"}
        VerifyKey(public).verify(_signed_bytes(body), signature)
    except (IdentityError, BadSignatureError, DIDCommError, ValueError) as exc:
        raise RecordError(f"the record's signature does not verify ({type(exc).__name__})") from None
    return DIDRecord(did, peer_id, tuple(addrs), seq)


def _validator_base() -> type:
    from libp2p.records.validator import Validator

    return Validator


class RecordValidator(_validator_base()):  # type: ignore[misc]
    """py-libp2p's ``Validator`` for the ``didcomm`` namespace."""

    def validate(self, key: str, value: bytes) -> None:
        """Raise (RecordError, a ValueError) unless ``value`` is a good record for ``key``."""
        parse_record(value, key=key)

    def select(self, key: str, values: list[bytes]) -> int:
        """The index of the newest valid record (highest ``seq``); bad ones never win."""
        best, best_seq = 0, -1
        for i, value in enumerate(values):
            try:
                seq = parse_record(value, key=key).seq
            except RecordError:
                continue
            if seq > best_seq:
                best, best_seq = i, seq
        return best
