"""DID document service endpoints that point at a libp2p peer (sans-I/O).

The DIDComm libp2p transport extension signals a peer with a DIDComm service
whose ``serviceEndpoint`` has ``uri = "libp2p-peerId:" + peerId`` and,
optionally, ``multiAddrs`` (where the peer listens), e.g.::

    {"id": "#didcomm-1", "type": "DIDCommMessaging",
     "serviceEndpoint": {"uri": "libp2p-peerId:12D3KooW...",
                         "multiAddrs": ["/ip4/192.0.2.7/tcp/4001"],
                         "accept": ["didcomm/v2"]}}

``serviceEndpoint`` may also be a bare URI string or a list of either form
(DIDComm v2.1, "Service Endpoint").  :func:`libp2p_endpoints` picks out the
libp2p ones in document order; anything malformed is skipped, never raised,
because a DID document is input from elsewhere.  :func:`service_endpoint`
builds the object for our own DID documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .errors import IdentityError
from .identity import parse_peer_id

URI_SCHEME: Final = "libp2p-peerId:"
#: Multiaddrs kept per endpoint (the rest are ignored); as in host.send().
MAX_ADDRS_PER_ENDPOINT: Final = 16
#: Longest multiaddr string kept.
MAX_MULTIADDR_CHARS: Final = 512
#: Endpoints looked at in one serviceEndpoint list.
MAX_ENDPOINTS: Final = 32


@dataclass(frozen=True)
class Libp2pEndpoint:
    """One libp2p service endpoint: whom to dial and where."""

    peer_id: str
    multiaddrs: tuple[str, ...] = ()
    routing_keys: tuple[str, ...] = ()


def _strings(value: Any, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        v for v in value[:limit] if isinstance(v, str) and 0 < len(v) <= MAX_MULTIADDR_CHARS
    )


def _one(entry: Any) -> Libp2pEndpoint | None:
    if isinstance(entry, str):
        entry = {"uri": entry}
    if not isinstance(entry, dict):
        return None
    uri = entry.get("uri")
    if not isinstance(uri, str) or not uri.startswith(URI_SCHEME):
        return None
    try:
        peer_id = parse_peer_id(uri[len(URI_SCHEME) :])
    except IdentityError:
        return None
    return Libp2pEndpoint(
        peer_id=peer_id,
        multiaddrs=_strings(entry.get("multiAddrs"), MAX_ADDRS_PER_ENDPOINT),
        routing_keys=_strings(entry.get("routingKeys"), MAX_ADDRS_PER_ENDPOINT),
    )


def libp2p_endpoints(service_endpoint: Any) -> list[Libp2pEndpoint]:
    """The libp2p endpoints in a ``serviceEndpoint`` value, in order."""
    entries = service_endpoint if isinstance(service_endpoint, list) else [service_endpoint]
    found = (_one(e) for e in entries[:MAX_ENDPOINTS])
    return [e for e in found if e is not None]


def service_endpoint(
    peer_id: str, multiaddrs: Sequence[str], *, accept: Sequence[str] = ("didcomm/v2",)
) -> dict[str, Any]:
    """The ``serviceEndpoint`` object announcing ``peer_id`` at ``multiaddrs``."""
    endpoint: dict[str, Any] = {"uri": URI_SCHEME + peer_id, "accept": list(accept)}
    if multiaddrs:
        endpoint["multiAddrs"] = list(multiaddrs)
    return endpoint
