"""Knowing a DID is enough: delivery to a did:key through its owner's DHT record.

Three real daemons on loopback (mDNS off): C is the bootstrap peer of A and
B, and nobody is told any other address.  A makes a did:key - a DID with no
service, so its document says nothing about where A is - and publishes a
record for it in the DHT (signed by the DID's key and A's peer key).  B,
given only that DID, finds the record through the DHT, dials A and delivers.
"""

from __future__ import annotations

from typing import Any

from .conftest import Daemon
from .test_two_daemons import BASIC, outbox_state, received, wait_until

FAST_RETRY = {"DIDCOMMD_DELIVERY_RETRY_BASE": "0.2", "DIDCOMMD_DELIVERY_RETRY_MAX": "1"}


def log_events(d: Daemon, name: str) -> list[dict[str, Any]]:
    return [r for r in d.log_records() if r.get("event") == name]


def test_a_message_to_a_did_key_finds_its_owner_through_the_dht(daemon_factory: Any) -> None:
    c: Daemon = daemon_factory(env=FAST_RETRY)
    boot = {**FAST_RETRY, "DIDCOMMD_P2P_BOOTSTRAP": c.call("status")["addrs"][0]}
    a: Daemon = daemon_factory(env=boot)
    b: Daemon = daemon_factory(env=boot)
    did_a = a.call("did.create", method="key")["did"]
    assert "service" not in a.call("did.resolve", did=did_a)
    peer_a = a.call("status")["peer_id"]
    wait_until("A's record in the DHT", lambda: log_events(a, "dht.published"))

    frm = b.call("did.create")["did"]
    sent = b.call("message.send", to=did_a, type=BASIC, body={"content": "by DID alone"}, **{"from": frm})
    try:
        got = wait_until("the message in A's inbox", lambda: received(a, sent["id"]))
    except AssertionError:
        raise AssertionError(f"{b.call('message.outbox.get', id=sent['id'])}\n{b.log_text()[-5000:]}") from None
    assert got["message"]["body"] == {"content": "by DID alone"}
    wait_until("delivered on B", lambda: outbox_state(b, sent["id"]) == "delivered")
    routes = log_events(b, "delivery.dht_route")
    assert routes and routes[0]["did"] == did_a and routes[0]["peer"] == peer_a
    # C stored the record (a real PUT_VALUE), and no DHT stream ended in an error.
    for d in (a, b, c):
        assert "Failed to read DHT message" not in d.log_text()

    # A second message uses the cached route: no second lookup.
    again = b.call("message.send", to=did_a, type=BASIC, body={"content": "again"}, **{"from": frm})
    wait_until("the second message in A's inbox", lambda: received(a, again["id"]))
    assert len(log_events(b, "delivery.dht_route")) == 1


def test_a_did_key_nobody_published_fails_after_a_few_lookups(daemon_factory: Any) -> None:
    c: Daemon = daemon_factory(env=FAST_RETRY)
    b: Daemon = daemon_factory(env={**FAST_RETRY, "DIDCOMMD_P2P_BOOTSTRAP": c.call("status")["addrs"][0]})
    wait_until("B's DHT neighbour", lambda: log_events(b, "bootstrap.connected"))
    frm = b.call("did.create")["did"]
    nobody = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    sent = b.call("message.send", to=nobody, type=BASIC, body={}, **{"from": frm})
    wait_until("failed", lambda: outbox_state(b, sent["id"]) == "failed", timeout=60)
    row = b.call("message.outbox.get", id=sent["id"])
    assert "no DHT record" in row["last_error"], row
