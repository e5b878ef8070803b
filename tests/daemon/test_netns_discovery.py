"""Three daemons in their own network namespaces find each other and deliver by DID alone.

Each daemon is a real ``didcommd run`` in a namespace of its own
(:mod:`tests.netns`: a bridge, veth pairs, ``10.x`` addresses that exist only
inside the namespaces), listening on ``0.0.0.0`` with no address of any other
daemon in its configuration.  The test drives them from the root namespace
through their control sockets (Unix sockets on the shared filesystem).

The recipient's DID names only its libp2p peer id (a ``DIDCommMessaging``
service ``libp2p-peerId:<id>`` with no ``multiAddrs``), so the sender must find
where that peer is:

- by mDNS (on, no bootstrap): the daemons list each other as ``how: mdns``;
- by a bootstrap peer and the Kademlia DHT (mDNS off): A and C know only B's
  address; C finds A's addresses by the DHT's peer routing (FIND_NODE), and
  reaches A's did:key (no service at all) through A's signed DID record.

And a js-libp2p peer with ``@libp2p/mdns`` (``tests/interop/js/peer.mjs mdns``)
and a daemon, each in its namespace, find each other: js answers with PTR +
TXT only, which py-libp2p's own mDNS never understood.

Skipped, quoting the kernel, only where network namespaces are refused.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.netns import LAN, Host, lan

from .conftest import Daemon, make_daemon
from .test_two_daemons import BASIC, outbox_state, received, wait_until

#: Seconds for daemons on one LAN to find each other (mDNS queries at 0, 1, 2, 4 s).
DISCOVERY_DEADLINE = 30.0


def start_daemons(hosts: list[Host], root: Path, env: dict[str, str]) -> list[Daemon]:
    """A daemon per host, started together, each ready."""
    daemons = []
    for i, host in enumerate(hosts):
        d = make_daemon(root / f"d{i}", env={"DIDCOMMD_P2P_LISTEN": "/ip4/0.0.0.0/tcp/0", **env})
        d.args = host.command(d.args)
        daemons.append(d)
    for d in daemons:
        d.start(wait=False)
    for d in daemons:
        try:
            d.notify.wait_for("READY=1")
        except TimeoutError:
            raise AssertionError(f"daemon did not become ready:\n{d.log_text()}") from None
    return daemons


@pytest.fixture
def net3() -> Iterator[LAN]:
    with lan(3) as net:
        yield net


@pytest.fixture
def cleanup() -> Iterator[list[Daemon]]:
    made: list[Daemon] = []
    yield made
    for d in made:
        d.cleanup()


def peer_only_did(d: Daemon) -> str:
    """A did:peer:2 whose DIDComm service names our peer id and no address."""
    peer_id = d.call("status")["peer_id"]
    service = {"id": "#didcomm-1", "type": "DIDCommMessaging",
               "serviceEndpoint": {"uri": f"libp2p-peerId:{peer_id}", "accept": ["didcomm/v2"]}}
    did: str = d.call("did.create", services=[service])["did"]
    doc = d.call("did.resolve", did=did)
    assert "multiAddrs" not in json.dumps(doc), doc
    return did


def send_and_check(sender: Daemon, recipient: Daemon, to: str, text: str) -> None:
    frm = sender.call("did.create")["did"]
    sent = sender.call("message.send", to=to, type=BASIC, body={"content": text}, **{"from": frm})
    try:
        got = wait_until("the message in the recipient's inbox", lambda: received(recipient, sent["id"]),
                         timeout=DISCOVERY_DEADLINE)
    except AssertionError:
        outbox = sender.call("message.outbox.get", id=sent["id"])
        raise AssertionError(f"not delivered: {outbox}\n--- sender log:\n{sender.log_text()[-6000:]}") from None
    assert got["message"]["body"] == {"content": text}
    assert got["transport"] == "libp2p"
    wait_until("delivered on the sender", lambda: outbox_state(sender, sent["id"]) == "delivered")


def test_three_daemons_find_each_other_by_mdns_and_deliver_by_did(
    net3: LAN, tmp_path: Path, cleanup: list[Daemon]
) -> None:
    daemons = start_daemons(net3.hosts, tmp_path, {"DIDCOMMD_P2P_MDNS": "true"})
    cleanup.extend(daemons)
    ids = [d.call("status")["peer_id"] for d in daemons]
    for addr in daemons[0].call("status")["addrs"]:
        assert not addr.startswith("/ip4/0.0.0.0/")

    def found_all(i: int) -> dict[str, Any] | None:
        listed = {p["peer_id"]: p for p in daemons[i].call("peers.list")["peers"]}
        others = [pid for j, pid in enumerate(ids) if j != i]
        if all(pid in listed for pid in others):
            return listed
        return None

    for i in range(len(daemons)):
        listed = wait_until(f"daemon {i} to find the others", lambda i=i: found_all(i),
                            timeout=DISCOVERY_DEADLINE)
        for j, pid in enumerate(ids):
            if j != i:
                assert listed[pid]["how"] == "mdns", listed[pid]
                assert any(net3.hosts[j].address in a for a in listed[pid]["addrs"]), listed[pid]

    a, _, c = daemons
    send_and_check(c, a, peer_only_did(a), "found you by mDNS")
    found_by_a = {r.get("peer") for r in a.log_records() if r.get("event") == "mdns.peer_found"}
    assert set(ids[1:]) <= found_by_a


def test_three_daemons_find_each_other_by_bootstrap_and_dht(
    net3: LAN, tmp_path: Path, cleanup: list[Daemon]
) -> None:
    off = {"DIDCOMMD_P2P_MDNS": "false"}
    (b,) = start_daemons(net3.hosts[1:2], tmp_path / "b", off)
    cleanup.append(b)
    boot = next(x for x in b.call("status")["addrs"] if net3.hosts[1].address in x)
    a, c = start_daemons([net3.hosts[0], net3.hosts[2]], tmp_path / "ac",
                         {**off, "DIDCOMMD_P2P_BOOTSTRAP": boot})
    cleanup.extend([a, c])
    did_a = peer_only_did(a)
    peer_a = a.call("status")["peer_id"]

    # C, which has never been told anything about A, delivers.
    send_and_check(c, a, did_a, "found you through the DHT")
    # And to a did:key, whose document names no peer at all: A's signed DHT
    # record says where it is.
    key_a = a.call("did.create", method="key")["did"]
    send_and_check(c, a, key_a, "found your did:key's record in the DHT")
    listed = {p["peer_id"]: p for p in c.call("peers.list")["peers"]}
    assert peer_a in listed
    assert listed[b.call("status")["peer_id"]]["how"] == "bootstrap"


JS_DIR = Path(__file__).resolve().parents[1] / "interop" / "js"
#: Seconds ``npm ci`` may take on a cold cache.
NPM_TIMEOUT = 300


def js_lines(process: subprocess.Popen[bytes]) -> queue.Queue[dict[str, Any]]:
    """The js peer's JSON events, read by a thread (so the test can wait with a deadline)."""
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                lines.put(json.loads(line))
            except ValueError:
                continue

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.interop
def test_js_libp2p_peer_and_daemon_find_each_other_by_mdns(tmp_path: Path, cleanup: list[Daemon]) -> None:
    if not (JS_DIR / "node_modules" / "@libp2p" / "mdns").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=NPM_TIMEOUT)
    with lan(2) as net:
        (d,) = start_daemons(net.hosts[:1], tmp_path, {"DIDCOMMD_P2P_MDNS": "true"})
        cleanup.append(d)
        ours = d.call("status")["peer_id"]
        js = subprocess.Popen(net.hosts[1].command(["node", "peer.mjs", "mdns"]), cwd=JS_DIR,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            events = js_lines(js)
            ready = events.get(timeout=DISCOVERY_DEADLINE)
            assert ready["event"] == "ready", ready
            theirs = ready["peerId"]
            # js finds us (our answer: PTR + dnsaddr TXT) ...
            while True:
                event = events.get(timeout=DISCOVERY_DEADLINE)
                if event["event"] == "discovered" and event["peerId"] == ours:
                    assert any(net.hosts[0].address in a for a in event["addrs"]), event
                    break
            # ... and we find js (its answer: PTR + TXT only).
            def listed() -> dict[str, Any] | None:
                return next((p for p in d.call("peers.list")["peers"] if p["peer_id"] == theirs), None)

            entry = wait_until("the js peer in our peer list", listed, timeout=DISCOVERY_DEADLINE)
            assert entry["how"] == "mdns"
            assert any(net.hosts[1].address in a for a in entry["addrs"]), entry
        finally:
            assert js.stdin is not None
            js.stdin.close()
            try:
                js.wait(10)
            except subprocess.TimeoutExpired:
                js.kill()
                js.wait()
