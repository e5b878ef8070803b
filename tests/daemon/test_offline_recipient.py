"""Delivery to a recipient that is not running: retries with backoff, exactly once, expiry.

B is a real daemon whose DID names its address; it is stopped, A sends, and B
is started again later on the same address (the DID is immutable, so a
restarted B must listen where its DID says; the first start picks a free port
with ``tcp/0`` and the restarts reuse it).  A runs with a short backoff so the
test does not wait minutes.
"""

from __future__ import annotations

import time
from typing import Any

from .conftest import Daemon
from .test_two_daemons import BASIC, ctl_json, outbox_state, received, wait_until

#: A's backoff in these tests: first retry after ~0.2 s, never more than 1 s apart
#: (the outbox's retry times are whole seconds, so in practice about 1 s).
FAST_RETRY = {"DIDCOMMD_DELIVERY_RETRY_BASE": "0.2", "DIDCOMMD_DELIVERY_RETRY_MAX": "1.0"}


def pin_address(d: Daemon) -> str:
    """Make later starts of ``d`` listen on the port its first start picked."""
    addr = d.call("status")["addrs"][0]
    port = addr.split("/tcp/")[1].split("/")[0]
    d.env["DIDCOMMD_P2P_LISTEN"] = f"/ip4/127.0.0.1/tcp/{port}"
    return addr


def inbox_ids(d: Daemon) -> list[str]:
    """Every message id in ``d``'s inbox (duplicates would show twice)."""
    ids: list[str] = []
    before = None
    while True:
        params: dict[str, Any] = {"box": "inbox", "limit": 500}
        if before is not None:
            params["before"] = before
        page = d.call("message.list", **params)["messages"]
        if not page:
            return ids
        ids.extend(str(m["id"]) for m in page)
        before = page[-1]["seq"]


def test_message_to_a_stopped_recipient_arrives_once_when_it_starts(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory(env=FAST_RETRY)
    b: Daemon = daemon_factory()
    ctl_json(a, "did", "create")
    did_b = ctl_json(b, "did", "create")["did"]
    pin_address(b)
    assert b.stop() == 0

    sent = ctl_json(a, "send", "--to", did_b, "--type", BASIC, "--body", '{"n": 1}')
    # A keeps trying while B is away (several attempts, each a retry event).
    wait_until("two failed attempts", lambda: a.call("message.outbox.get", id=sent["id"])["attempts"] >= 2)
    row = a.call("message.outbox.get", id=sent["id"])
    assert row["state"] in ("queued", "sending") and "last_error" in row

    b.start()
    got = wait_until("the message in B's inbox", lambda: received(b, sent["id"]))
    assert got["message"]["body"] == {"n": 1}
    wait_until("delivered on A", lambda: outbox_state(a, sent["id"]) == "delivered")
    # Once, even though A tried several times.
    assert inbox_ids(b).count(sent["id"]) == 1
    events = a.call("message.outbox.get", id=sent["id"])
    assert events["attempts"] >= 2


def test_expired_message_is_never_delivered_and_reported(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory(env=FAST_RETRY)
    b: Daemon = daemon_factory()
    ctl_json(a, "did", "create")
    did_b = ctl_json(b, "did", "create")["did"]
    pin_address(b)
    assert b.stop() == 0

    with a.client() as c:
        c.subscribe(["message.expired", "message.failed", "message.delivered"], None)
        doomed = c.call("message.send", {"to": did_b, "type": BASIC, "body": {"n": "late"},
                                         "expires_time": int(time.time()) + 2})
        wait_until("expired on A", lambda: outbox_state(a, doomed["id"]) == "expired")
        kinds = {}
        deadline = time.monotonic() + 10
        for event in c.events(timeout=5):
            kinds[event["kind"]] = event["data"]
            if "message.expired" in kinds or time.monotonic() > deadline:
                break
        assert kinds["message.expired"]["id"] == doomed["id"]

    b.start()
    # A later message goes through, so the way is open; the expired one never does.
    later = ctl_json(a, "send", "--to", did_b, "--type", BASIC, "--body", '{"n": "later"}')
    wait_until("the later message on B", lambda: received(b, later["id"]))
    wait_until("delivered on A", lambda: outbox_state(a, later["id"]) == "delivered")
    assert received(b, doomed["id"]) is None
    assert outbox_state(a, doomed["id"]) == "expired"


def test_message_to_a_did_without_libp2p_service_fails(daemon: Daemon) -> None:
    ctl_json(daemon, "did", "create")
    # A did:key has no services and we know no document for it: nowhere to deliver.
    other = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    sent = ctl_json(daemon, "send", "--to", other, "--type", BASIC)
    wait_until("failed", lambda: outbox_state(daemon, sent["id"]) == "failed")
    row = daemon.call("message.outbox.get", id=sent["id"])
    assert "no libp2p endpoint" in row["last_error"]
