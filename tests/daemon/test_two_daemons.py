"""Two real daemons on loopback exchange DIDComm messages over libp2p, driven by didcommctl.

Each daemon is a separate ``didcommd run`` process listening on
``/ip4/127.0.0.1/tcp/0`` with mDNS off.  Knowing the other's did:peer:2 is
enough to reach it: the DID carries the ``DIDCommMessaging`` service
``libp2p-peerId:<peer id>`` with the node's addresses.
"""

from __future__ import annotations

import json
import time
from typing import Any

from daemon.client import ControlError

from .conftest import Daemon

BASIC = "https://didcomm.org/basicmessage/2.0/message"
#: Seconds a delivery between two idle daemons on loopback may take (a busy CI box).
DELIVERY_DEADLINE = 30.0


def ctl_json(d: Daemon, *args: str) -> Any:
    proc = d.ctl("--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_until(what: str, check: Any, timeout: float = DELIVERY_DEADLINE) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def received(d: Daemon, msg_id: str) -> dict[str, Any] | None:
    try:
        got: dict[str, Any] = d.call("message.get", id=msg_id)
    except ControlError:
        return None
    return got if got.get("box") == "inbox" else None


def outbox_state(d: Daemon, msg_id: str) -> str:
    return str(d.call("message.outbox.get", id=msg_id)["state"])


def test_status_shows_peer_id_and_listen_addrs(daemon: Daemon) -> None:
    status = ctl_json(daemon, "status")
    peer_id = status["peer_id"]
    assert peer_id.startswith("12D3KooW")
    assert status["addrs"], status
    for addr in status["addrs"]:
        assert addr.startswith("/ip4/127.0.0.1/tcp/")
        assert not addr.startswith("/ip4/127.0.0.1/tcp/0/")
        assert addr.endswith(f"/p2p/{peer_id}")


def test_peer_id_survives_restart_and_key_is_sealed(daemon: Daemon) -> None:
    first = daemon.call("status")["peer_id"]
    assert daemon.stop() == 0
    daemon.start()
    assert daemon.call("status")["peer_id"] == first
    # The identity is in the store, sealed: its public half is not there in the clear.
    from daemon.p2p.identity import parse_peer_id
    from protocols.multibase import b58decode

    parse_peer_id(first)
    public = b58decode(first)[-32:]
    from daemon.store import DB_FILE_NAME

    stored = b"".join(p.read_bytes() for p in daemon.state_dir.glob(DB_FILE_NAME + "*"))
    assert stored and public not in stored


def test_new_did_carries_the_libp2p_service(daemon: Daemon) -> None:
    status = daemon.call("status")
    did = ctl_json(daemon, "did", "create")["did"]
    doc = ctl_json(daemon, "did", "resolve", did)
    services = [s for s in doc["service"] if s["type"] == "DIDCommMessaging"]
    endpoint = services[0]["serviceEndpoint"]
    assert endpoint["uri"] == f"libp2p-peerId:{status['peer_id']}"
    assert endpoint["multiAddrs"] == status["addrs"]
    assert endpoint["accept"] == ["didcomm/v2"]


def test_two_daemons_exchange_messages_both_ways(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory()
    b: Daemon = daemon_factory()
    did_a = ctl_json(a, "did", "create", "--label", "alice")["did"]
    did_b = ctl_json(b, "did", "create", "--label", "bob")["did"]

    sent = ctl_json(a, "send", "--to", did_b, "--type", BASIC, "--body", '{"content": "hello bob"}')
    got = wait_until("A's message in B's inbox", lambda: received(b, sent["id"]))
    assert got["message"]["body"] == {"content": "hello bob"}
    assert got["message"]["from"] == did_a
    assert got["metadata"]["authenticated"] and got["metadata"]["encrypted"]
    assert got["transport"] == "libp2p"
    wait_until("delivered on A", lambda: outbox_state(a, sent["id"]) == "delivered")

    reply = ctl_json(
        b, "send", "--to", did_a, "--type", BASIC, "--body", '{"content": "hi alice"}',
        "--thid", sent["id"],
    )
    back = wait_until("B's reply in A's inbox", lambda: received(a, reply["id"]))
    assert back["message"]["body"] == {"content": "hi alice"}
    assert back["message"]["thid"] == sent["id"]
    wait_until("delivered on B", lambda: outbox_state(b, reply["id"]) == "delivered")

    # Each side now lists the other as a connected peer, with a measured latency.
    peer_b = b.call("status")["peer_id"]

    def connected_entry() -> dict[str, Any] | None:
        # The table follows connections by polling them; a reconnect may be in between.
        peers = ctl_json(a, "peers")["peers"]
        return next((p for p in peers if p["peer_id"] == peer_b and p["connected"]), None)

    entry = wait_until("B connected in A's peer table", connected_entry)
    assert entry["how"] == "outbound"
    assert entry["latency_ms"] is not None and entry["addrs"]
    events = [json.loads(line) for line in a.ctl("--json", "events").stdout.splitlines()]
    found = [e for e in events if e["kind"] == "peer.found"]
    assert any(e["data"]["peer_id"] == peer_b for e in found)
    delivered = [e for e in events if e["kind"] == "message.delivered"]
    assert [e["data"]["id"] for e in delivered] == [sent["id"]]


def test_peers_connect_and_lost(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory()
    b: Daemon = daemon_factory()
    addr_b = b.call("status")["addrs"][0]
    peer_b = b.call("status")["peer_id"]
    proc = a.ctl("peers", "connect", addr_b)
    assert proc.returncode == 0, proc.stderr
    assert peer_b in proc.stdout
    entry = next(p for p in a.call("peers.list")["peers"] if p["peer_id"] == peer_b)
    assert entry["how"] == "connect" and entry["connected"]
    assert b.stop() == 0

    def lost() -> bool:
        events = [json.loads(line) for line in a.ctl("--json", "events").stdout.splitlines()]
        return any(e["kind"] == "peer.lost" and e["data"]["peer_id"] == peer_b for e in events)

    wait_until("peer.lost on A", lost)
    bad = a.ctl("peers", "connect", "/ip4/127.0.0.1/tcp/1")
    assert bad.returncode == 2, bad.stderr
