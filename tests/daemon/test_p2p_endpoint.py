"""libp2p service endpoints in DID documents: the extension's form, and junk."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from daemon.p2p.endpoint import Libp2pEndpoint, libp2p_endpoints, service_endpoint

PEER = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def test_the_extensions_form_round_trips() -> None:
    ours = service_endpoint(PEER, ["/ip4/192.0.2.7/tcp/4001"])
    assert ours == {
        "uri": f"libp2p-peerId:{PEER}",
        "accept": ["didcomm/v2"],
        "multiAddrs": ["/ip4/192.0.2.7/tcp/4001"],
    }
    assert libp2p_endpoints(ours) == [Libp2pEndpoint(PEER, ("/ip4/192.0.2.7/tcp/4001",))]


def test_string_and_list_forms_and_other_transports() -> None:
    value = [
        "https://example.com/didcomm",
        {"uri": "https://example.com/other"},
        f"libp2p-peerId:{PEER}",
        {"uri": f"libp2p-peerId:{PEER}", "routingKeys": ["did:example:mediator#key-1"]},
        {"uri": "libp2p-peerId:not-a-peer-id"},
    ]
    assert libp2p_endpoints(value) == [
        Libp2pEndpoint(PEER),
        Libp2pEndpoint(PEER, routing_keys=("did:example:mediator#key-1",)),
    ]


def test_bad_multiaddr_lists_are_ignored() -> None:
    value = {"uri": f"libp2p-peerId:{PEER}", "multiAddrs": ["/ip4/1.2.3.4/tcp/1", 7, "", "x" * 600]}
    assert libp2p_endpoints(value) == [Libp2pEndpoint(PEER, ("/ip4/1.2.3.4/tcp/1",))]
    assert libp2p_endpoints({"uri": f"libp2p-peerId:{PEER}", "multiAddrs": "one"}) == [
        Libp2pEndpoint(PEER)
    ]


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=60)
    | st.sampled_from([f"libp2p-peerId:{PEER}", "libp2p-peerId:", "/ip4/1.2.3.4/tcp/1"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["uri", "multiAddrs", "routingKeys", "x"]), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_is_taken_apart_without_raising(value: Any) -> None:
    for found in libp2p_endpoints(value):
        assert found.peer_id == PEER  # the only valid peer id the strategy can make
        assert all(isinstance(a, str) and a for a in found.multiaddrs + found.routing_keys)
