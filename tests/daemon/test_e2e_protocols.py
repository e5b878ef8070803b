"""Issue 6 end to end: two real daemons (separate processes, libp2p on loopback), driven
by didcommctl.  A invites, B accepts the URL, they ping both ways, discover each other's
features, chat, A rotates its DID and B keeps talking to the new one; a daemon stopped in
the middle of a protocol finishes it after its restart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import REPO, Daemon
from .test_two_daemons import ctl_json, wait_until

TRUST_PING = "https://didcomm.org/trust-ping/2.0"
PING = TRUST_PING + "/ping"
#: Delivery retries fast in these tests (the default starts at one second).
FAST_RETRY = {"DIDCOMMD_DELIVERY_RETRY_BASE": "0.2", "DIDCOMMD_DELIVERY_RETRY_MAX": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fixed_port_env() -> dict[str, str]:
    """A listen address that stays the same across restarts (our DIDs carry it)."""
    return {**FAST_RETRY, "DIDCOMMD_P2P_LISTEN": f"/ip4/127.0.0.1/tcp/{free_port()}"}


def connections(d: Daemon) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctl_json(d, "connections", "list")["connections"]
    return result


def events(d: Daemon, kind: str) -> list[dict[str, Any]]:
    out = d.ctl("--json", "events", "--kind", kind).stdout.splitlines()
    return [json.loads(line) for line in out]


def connect(a: Daemon, b: Daemon) -> tuple[str, str, dict[str, Any]]:
    """A invites, B accepts; both connections active.  (A's id, B's id, the invitation)."""
    inv = ctl_json(a, "invite", "create", "--goal", "e2e", "--label", "bob")
    accepted = ctl_json(b, "invite", "accept", inv["url"], "--label", "alice")
    b_id = accepted["connection"]["id"]
    wait_until("A's connection", lambda: [c for c in connections(a) if c["state"] == "active"])
    wait_until("B's connection active", lambda: connections(b)[0]["state"] == "active")
    return connections(a)[0]["id"], b_id, inv


def test_invite_ping_features_chat_rotate(daemon_factory: Any, tmp_path: Path) -> None:
    a: Daemon = daemon_factory()
    b: Daemon = daemon_factory()

    # The human form of an invitation: JSON, both URLs, a QR code; and a PNG.
    png = tmp_path / "invite.png"
    human = a.ctl("invite", "create", "--goal", "show", "--qr", "--qr-file", str(png))
    assert human.returncode == 0, human.stderr
    assert "https://didcomm.org/oob?_oob=" in human.stdout and "didcomm://?_oob=" in human.stdout
    assert "█" in human.stdout or "▀" in human.stdout
    assert png.read_bytes().startswith(b"\x89PNG")

    a_conn, b_conn, inv = connect(a, b)
    a_side = ctl_json(a, "connections", "show", a_conn)
    b_side = ctl_json(b, "connections", "show", "alice")
    assert a_side["my_did"] == inv["did"] == b_side["their_did"]
    assert a_side["their_did"] == b_side["my_did"]
    # The accepter dialled the DID's libp2p service: no other configuration.
    service = b_side["their_doc"]["service"][0]["serviceEndpoint"]
    assert service["uri"].startswith("libp2p-peerId:12D3KooW")

    # Trust ping both ways, with the round trip.
    for d, target in ((a, a_conn), (b, "alice")):
        pong = ctl_json(d, "ping", target, "--wait", "30")
        assert pong["state"] == "answered" and pong["rtt_ms"] > 0, pong
    human = b.ctl("ping", "alice", "--wait", "30")
    assert human.returncode == 0 and "round trip" in human.stdout

    # Discover features both ways.
    feats = ctl_json(b, "features", "alice", "--type", "all", "--wait", "30")
    ids = {d["id"] for d in feats["disclosures"]}
    assert TRUST_PING in ids and "https://didcomm.org/out-of-band/2.0" in ids
    assert feats["max_receive_bytes"] == 4 * 1024 * 1024
    feats = ctl_json(a, "features", a_conn, "--query", "https://didcomm.org/basic*", "--wait", "30")
    assert [d["id"] for d in feats["disclosures"]] == ["https://didcomm.org/basicmessage/2.0"]

    # Basic messages both ways: events and the inbox.
    ctl_json(a, "chat", a_conn, "hello bob", "--ack")
    ctl_json(b, "chat", "alice", "hello alice")
    got = wait_until("B's chat event", lambda: events(b, "basicmessage.received"))
    assert got[0]["data"]["content"] == "hello bob" and got[0]["data"]["connection"] == b_conn
    wait_until("A's chat event", lambda: events(a, "basicmessage.received"))
    wait_until("A's ack", lambda: events(a, "ack.received"))
    inbox = ctl_json(b, "inbox")["messages"]
    assert any(m["type"].startswith("https://didcomm.org/basicmessage/2.0") for m in inbox)

    # A rotates its DID; B learns the new one from from_prior and keeps talking.
    old = a_side["my_did"]
    rotated = ctl_json(a, "connections", "rotate", a_conn)
    new = rotated["new_did"]
    wait_until("B follows the rotation", lambda: ctl_json(b, "connections", "show", "alice")["their_did"] == new)
    assert old in ctl_json(b, "connections", "show", "alice")["their_retired"]
    ctl_json(b, "chat", "alice", "after the rotation")
    wait_until(
        "A's chat to the new DID",
        lambda: any(e["data"]["content"] == "after the rotation" for e in events(a, "basicmessage.received")),
    )
    wait_until("A's rotation complete", lambda: ctl_json(a, "connections", "show", a_conn)["my_did"] == new)

    # The conversation, from each side and across the rotation (A's old DID and its new).
    for d, ref in ((a, a_conn), (b, "alice")):
        convo = ctl_json(d, "chat", ref)["messages"]
        assert {m["content"] for m in convo} == {"hello bob", "hello alice", "after the rotation"}
        assert convo[0]["content"] == "after the rotation"
    # A names B's side (the inviter never had a label for it), and follows the
    # conversation live under that name: A sees what B says next.
    renamed = a.ctl("connections", "rename", a_conn, "bob")
    assert renamed.returncode == 0 and renamed.stdout == f"renamed {a_conn} to bob\n", renamed.stderr
    follow = subprocess.Popen(
        [sys.executable, "-m", "daemon.ctl", "--socket", str(a.socket), "chat", "bob", "--follow"],
        env=a.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert follow.stdout is not None
        shown = ""
        while "after the rotation" not in shown:  # the page, newest last: the follower is running
            line = follow.stdout.readline()
            assert line, follow.stderr.read() if follow.stderr else "the follower ended"
            shown += line
        ctl_json(b, "chat", "alice", "live from bob")
        deadline = time.monotonic() + 30
        while "live from bob" not in shown:
            assert time.monotonic() < deadline and follow.poll() is None, shown
            shown += follow.stdout.readline()
        assert "hello bob" in shown and "after the rotation" in shown  # the page came first
        assert any(line.split()[2:4] == ["bob", "live"] for line in shown.splitlines()), shown
        follow.send_signal(signal.SIGINT)
        assert follow.wait(30) == 0, follow.stderr.read() if follow.stderr else ""
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    pong = ctl_json(b, "ping", "alice", "--wait", "30")
    assert pong["state"] == "answered" and pong["to"] == new

    # The old DID is refused now: a message B's daemon is made to send to it is rejected.
    forged = ctl_json(b, "send", "--to", old, "--type", PING, "--from", b_side["my_did"])
    wait_until(
        "A refuses the old DID",
        lambda: any("rotated" in (e["data"].get("reason") or "") for e in events(a, "message.rejected")),
    )
    assert forged["state"] == "queued"


def test_a_daemon_restarted_mid_protocol_finishes_it(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory(env=fixed_port_env())
    b: Daemon = daemon_factory(env=fixed_port_env())
    a_conn, _, _ = connect(a, b)

    # B asks for features and A's answer is still out when B stops.
    assert a.stop() == 0
    query = ctl_json(b, "features", "alice", "--wait", "0")
    assert b.stop() == 0
    a.start()
    b.start()
    done = wait_until(
        "B's thread finished after its restart",
        lambda: [r for r in ctl_json(b, "thread", query["thid"])["records"] if r["state"] == "done"],
    )
    assert done[0]["data"]["disclosures"]

    # And A, restarted with a ping in flight, gets its response.
    assert b.stop() == 0
    ping = ctl_json(a, "ping", a_conn, "--wait", "0")
    assert a.stop() == 0
    b.start()
    a.start()
    wait_until(
        "A's ping answered after its restart",
        lambda: ctl_json(a, "thread", ping["thid"])["records"][0]["state"] == "done",
    )


# -- interop: didcomm-python (SICPA, PyPI) reads our invitation and pings us over didcomm/v2 --


def _interop_identity(service_endpoint: dict[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A did:peer:2 for the other implementation, whose service is a test libp2p node."""
    from protocols.did.did_peer import create_did_peer_2
    from protocols.did.resolver import default_resolver
    from protocols.keys import PrivateKey

    auth, x25519 = PrivateKey.generate("Ed25519"), PrivateKey.generate("X25519")
    service = {"id": "#didcomm-1", "type": "DIDCommMessaging", "serviceEndpoint": service_endpoint}
    did = create_did_peer_2([auth.public], [x25519.public], [service])
    doc = default_resolver().resolve(did).to_json()
    by_key = {vm["publicKeyMultibase"]: vm["id"] for vm in doc["verificationMethod"]}
    secrets = [dict(k.to_jwk(), kid=by_key[k.public.to_multikey()]) for k in (auth, x25519)]
    return did, doc, secrets


async def test_didcomm_python_accepts_our_invitation_and_gets_our_ping_response(
    daemon_factory: Any, interop_peer: Any
) -> None:
    import logging


    # Importing py-libp2p turns off propagation of its "libp2p" logger; undo that when
    # done, so tests of our log routing that run later see the process as it was.
    libp2p_log = logging.getLogger("libp2p")
    propagate = libp2p_log.propagate
    try:
        await _interop_round_trip(daemon_factory, interop_peer)
    finally:
        libp2p_log.propagate = propagate


async def _interop_round_trip(daemon_factory: Any, interop_peer: Any) -> None:
    import trio

    from .test_p2p_transport import DIDCOMM, Inbox, eventually, node

    a: Daemon = daemon_factory()
    inv = ctl_json(a, "invite", "create", "--goal", "interop")
    our_did = inv["did"]
    our_doc = ctl_json(a, "did", "resolve", our_did)
    inbox = Inbox()
    async with node(inbox) as them:
        their_did, their_doc, secrets = _interop_identity(them.service_endpoint())
        ping = {
            "id": "interop-ping-1", "type": PING, "from": their_did, "to": [our_did],
            "pthid": inv["id"], "created_time": int(time.time()),
            "body": {"response_requested": True},
        }
        # didcomm-python reads the invitation (a plaintext message) and packs its ping
        # to the invitation's DID, from the DID documents alone.
        read, packed = await trio.to_thread.run_sync(interop_peer, [
            {"op": "unpack", "packed": inv["invitation"], "secrets": [], "did_docs": [our_doc]},
            {"op": "pack_encrypted", "message": ping, "to": our_did, "frm": their_did,
             "secrets": secrets, "did_docs": [our_doc, their_doc]},
        ])
        assert read.get("message", {}).get("from") == our_did, read
        assert read["message"]["type"] == "https://didcomm.org/out-of-band/2.0/invitation"
        assert "packed" in packed, packed
        # Delivered over plain didcomm/v2 to the peer and address the invitation's DID names.
        endpoint = our_doc["service"][0]["serviceEndpoint"]
        peer_id = endpoint["uri"].removeprefix("libp2p-peerId:")
        await them.send(peer_id, endpoint["multiAddrs"], packed["packed"].encode(), protocol=DIDCOMM)
        # Our daemon answers to their DID's libp2p service: the test node.
        await eventually(lambda: bool(inbox.messages), timeout=30)
        (answer, _), *_ = inbox.messages
        (opened,) = await trio.to_thread.run_sync(interop_peer, [
            {"op": "unpack", "packed": answer.decode(), "secrets": secrets, "did_docs": [our_doc, their_doc]},
        ])
    assert opened["message"]["type"] == "https://didcomm.org/trust-ping/2.0/ping-response", opened
    assert opened["message"]["thid"] == "interop-ping-1"
    assert opened["metadata"]["authenticated"] and opened["metadata"]["encrypted"]
    # And the invitation made a connection with them.
    conns = await trio.to_thread.run_sync(connections, a)
    assert [c["their_did"] for c in conns] == [their_did]
