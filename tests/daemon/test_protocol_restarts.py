"""Issue 6: a daemon stopped in the middle of each protocol finishes it after its restart.

Two real daemons (separate processes, libp2p on 127.0.0.1) are connected by an
invitation; then, for every protocol, one of them is stopped at the interesting
point - with SIGTERM and with ``kill -9`` - restarted, and the protocol must
complete, each message exactly once.

Stopping "at a point" without fault hooks in the daemon: the other side is
stopped, so that what the stopped side commits can only wait in its outbox.
"Responder killed after committing the request, before its answer left" is made
exact by handing the request to the responder through the control socket
(``message.receive``, the same path as the network's) while the requester is
down: the answer is then certainly committed and certainly not delivered when
the responder is killed.  The requester's own copy of the request, delivered
later over libp2p, must be dropped as a duplicate.

Each daemon listens on a port picked once (our did:peer:2 DIDs carry the
address, so a restarted daemon must come back where its DIDs say).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import REPO, Daemon
from .stores import open_store
from .test_e2e_protocols import connect, connections, events, fixed_port_env
from .test_offline_recipient import inbox_ids
from .test_two_daemons import ctl_json, outbox_state, wait_until

PING_RESPONSE = "https://didcomm.org/trust-ping/2.0/ping-response"
DISCLOSE = "https://didcomm.org/discover-features/2.0/disclose"
PROBLEM_REPORT = "https://didcomm.org/report-problem/2.0/problem-report"
EMPTY = "https://didcomm.org/empty/1.0/empty"
PING = "https://didcomm.org/trust-ping/2.0/ping"
UNKNOWN_TYPE = "https://didcomm.org/no-such-protocol/1.0/hello"
#: How a daemon is stopped: SIGTERM (clean shutdown) or SIGKILL (a crash).
HOW = ("sigterm", "kill-9")


def halt(d: Daemon, how: str) -> None:
    if how == "sigterm":
        assert d.stop() == 0, d.log_text()[-2000:]
    else:
        d.kill()


def pair(daemon_factory: Any) -> tuple[Daemon, Daemon, str, str]:
    """A and B, connected (A invited), on fixed ports; (A, B, A's conn id, B's conn id)."""
    a: Daemon = daemon_factory(env=fixed_port_env())
    b: Daemon = daemon_factory(env=fixed_port_env())
    a_conn, b_conn, _ = connect(a, b)
    return a, b, a_conn, b_conn


def box(d: Daemon, which: str) -> list[dict[str, Any]]:
    """Every message of an inbox or outbox (paged), newest first."""
    out: list[dict[str, Any]] = []
    before = None
    while True:
        params: dict[str, Any] = {"box": which, "limit": 500}
        if before is not None:
            params["before"] = before
        page = d.call("message.list", **params)["messages"]
        if not page:
            return out
        out.extend(page)
        before = page[-1]["seq"]


def on_thread(d: Daemon, which: str, thid: str, type: str) -> list[dict[str, Any]]:
    return [m for m in box(d, which) if m.get("thid") == thid and m.get("type") == type]


def packed_of(d: Daemon, msg_id: str) -> str:
    """The packed bytes of one of ``d``'s queued messages."""
    packed: str = d.call("message.outbox.get", id=msg_id)["packed"]
    return packed


def records(d: Daemon, thid: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctl_json(d, "thread", thid)["records"]
    return result


def new_outbound(d: Daemon, type: str, known: set[str]) -> list[dict[str, Any]]:
    """``d``'s outbox messages of ``type`` not in ``known`` (problem reports carry no
    ``thid``, only a ``pthid``: they are told apart by id)."""
    return [m for m in box(d, "outbox") if m.get("type") == type and m["id"] not in known]


def responder_restarted(a: Daemon, b: Daemon, request: Callable[[], str], answer_type: str, how: str) -> str:
    """A asks (``request()`` -> its message id), B commits its answer and is stopped
    before the answer leaves; both come back; the answer reaches A exactly once.
    Returns the request's id."""
    assert b.stop() == 0
    request_id = request()
    packed = packed_of(a, request_id)
    assert a.stop() == 0
    b.start()
    known = {m["id"] for m in new_outbound(b, answer_type, set())}
    assert b.call("message.receive", packed=packed)["state"] == "received"
    (answer,) = new_outbound(b, answer_type, known)
    assert answer["state"] in ("queued", "sending"), answer
    halt(b, how)
    b.start()
    # The answer survived the stop, still undelivered (A is down), and is not doubled.
    (kept,) = new_outbound(b, answer_type, known)
    assert kept["id"] == answer["id"] and kept["state"] in ("queued", "sending"), kept
    a.start()
    wait_until("B's answer delivered", lambda: outbox_state(b, answer["id"]) == "delivered")
    # A's own copy of the request went over libp2p too; B dropped it.
    wait_until("A's request delivered", lambda: outbox_state(a, request_id) == "delivered")
    assert inbox_ids(b).count(request_id) == 1
    assert inbox_ids(a).count(answer["id"]) == 1
    return request_id


# -- 1. out-of-band ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_accept_while_inviter_down_then_accepter_restarted(daemon_factory: Any, how: str) -> None:
    a: Daemon = daemon_factory(env=fixed_port_env())
    b: Daemon = daemon_factory(env=fixed_port_env())
    inv = ctl_json(a, "invite", "create", "--goal", "restart")
    halt(a, how)
    accepted = ctl_json(b, "invite", "accept", inv["url"], "--label", "alice")
    assert accepted["connection"]["state"] == "requested"
    ping = accepted["ping"]
    # B's first message waits in its outbox and is retried.
    wait_until("B retries", lambda: b.call("message.outbox.get", id=ping)["attempts"] >= 2)
    halt(b, how)
    b.start()
    assert connections(b)[0]["state"] == "requested"
    # Accepting again after the restart (the user did not see the first answer) is the same connection.
    again = ctl_json(b, "invite", "accept", inv["url"], "--label", "alice")
    assert again["existing"] and again["connection"]["id"] == accepted["connection"]["id"]
    a.start()
    wait_until("A's connection", lambda: [c for c in connections(a) if c["state"] == "active"])
    wait_until("B's connection active", lambda: connections(b)[0]["state"] == "active")
    wait_until("B's ping answered", lambda: records(b, ping)[0]["state"] == "done")
    assert len(connections(a)) == 1 and connections(a)[0]["their_did"] == connections(b)[0]["my_did"]
    assert inbox_ids(a).count(ping) == 1


@pytest.mark.parametrize("how", HOW)
def test_inviter_stopped_after_the_accept_before_replying(daemon_factory: Any, how: str) -> None:
    a: Daemon = daemon_factory(env=fixed_port_env())
    b: Daemon = daemon_factory(env=fixed_port_env())
    inv = ctl_json(a, "invite", "create", "--goal", "restart")
    assert a.stop() == 0
    ping = ctl_json(b, "invite", "accept", inv["url"], "--label", "alice")["ping"]
    packed = packed_of(b, ping)
    assert b.stop() == 0
    a.start()
    # A receives the accept (B's first message): a connection and an answer, queued.
    assert a.call("message.receive", packed=packed)["state"] == "received"
    assert [c["state"] for c in connections(a)] == ["active"]
    assert len(on_thread(a, "outbox", ping, PING_RESPONSE)) == 1
    halt(a, how)
    a.start()
    assert [c["state"] for c in connections(a)] == ["active"]
    b.start()
    wait_until("B's connection active", lambda: connections(b)[0]["state"] == "active")
    wait_until("B's ping answered", lambda: records(b, ping)[0]["state"] == "done")
    # One connection on A, although B's accept reached it twice (injected, then over libp2p).
    wait_until("B's accept delivered", lambda: b.call("message.outbox.get", id=ping)["state"] == "delivered")
    assert len(connections(a)) == 1 and inbox_ids(a).count(ping) == 1
    assert len(on_thread(a, "outbox", ping, PING_RESPONSE)) == 1
    # And the connection works both ways.
    pong = ctl_json(a, "ping", connections(a)[0]["id"], "--wait", "30")
    assert pong["state"] == "answered", pong


# -- 2.-4. trust ping, discover features, basic message ---------------------------------------------


def test_trust_ping_responder_restarted_before_answering(daemon_factory: Any) -> None:
    a, b, a_conn, _ = pair(daemon_factory)
    for how in HOW:
        thid = responder_restarted(
            a, b, lambda: str(ctl_json(a, "ping", a_conn, "--wait", "0")["thid"]), PING_RESPONSE, how)
        wait_until("A's ping done", lambda: records(a, thid)[0]["state"] == "done")  # noqa: B023
        assert len(on_thread(a, "inbox", thid, PING_RESPONSE)) == 1
    pong = ctl_json(a, "ping", a_conn, "--wait", "30")
    assert pong["state"] == "answered", pong


def test_discover_features_responder_restarted_before_disclosing(daemon_factory: Any) -> None:
    a, b, a_conn, _ = pair(daemon_factory)
    for how in HOW:
        thid = responder_restarted(
            a, b, lambda: str(ctl_json(a, "features", a_conn, "--wait", "0")["thid"]), DISCLOSE, how)
        done = wait_until("A's query done", lambda: [r for r in records(a, thid) if r["state"] == "done"])  # noqa: B023
        assert done[0]["data"]["disclosures"]
        assert len(on_thread(a, "inbox", thid, DISCLOSE)) == 1


def test_discover_features_requester_killed_with_its_query_queued(daemon_factory: Any) -> None:
    """The requester side, crashed (test_e2e_protocols stops it cleanly)."""
    a, b, a_conn, _ = pair(daemon_factory)
    assert b.stop() == 0
    thid = ctl_json(a, "features", a_conn, "--wait", "0")["thid"]
    a.kill()
    a.start()
    b.start()
    done = wait_until("A's query done", lambda: [r for r in records(a, thid) if r["state"] == "done"])
    assert done[0]["data"]["disclosures"]


def test_basic_message_ack_after_the_receiver_restarts(daemon_factory: Any) -> None:
    a, b, a_conn, b_conn = pair(daemon_factory)
    acks: list[str] = []
    for how in HOW:
        def chat() -> str:
            return str(ctl_json(a, "chat", a_conn, f"hello before {how}", "--ack")["id"])  # noqa: B023

        thid = responder_restarted(a, b, chat, EMPTY, how)
        acks.append(thid)
        wait_until("A's ack", lambda: [e for e in events(a, "ack.received") if thid in e["data"]["ack"]])  # noqa: B023
    got = [e["data"] for e in events(b, "basicmessage.received")]
    assert [g["content"] for g in got] == ["hello before sigterm", "hello before kill-9"]
    assert {g["connection"] for g in got} == {b_conn}
    # Each ack came once.
    acked = [i for e in events(a, "ack.received") for i in e["data"]["ack"]]
    assert sorted(acked) == sorted(acks)


def test_basic_message_sender_killed_with_its_message_queued(daemon_factory: Any) -> None:
    a, b, a_conn, _ = pair(daemon_factory)
    assert b.stop() == 0
    thid = ctl_json(a, "chat", a_conn, "sent before a crash", "--ack")["id"]
    a.kill()
    a.start()
    b.start()
    wait_until("A's ack", lambda: [e for e in events(a, "ack.received") if thid in e["data"]["ack"]])
    assert [e["data"]["content"] for e in events(b, "basicmessage.received")][-1] == "sent before a crash"


# -- 5. DID rotation ----------------------------------------------------------------------------------


def refused_as_rotated(d: Daemon) -> bool:
    return any("rotated" in (e["data"].get("reason") or "") for e in events(d, "message.rejected"))


@pytest.mark.parametrize("how", HOW)
def test_rotation_while_the_peer_is_down_and_the_rotator_restarts(daemon_factory: Any, how: str) -> None:
    a, b, a_conn, b_conn = pair(daemon_factory)
    old = connections(a)[0]["my_did"]
    # A rotates while B is down, and is stopped itself with the rotation pending;
    # B comes back (after a stop of its own) and follows.
    halt(b, how)
    rotated = ctl_json(a, "connections", "rotate", a_conn)
    new = rotated["new_did"]
    halt(a, how)
    a.start()
    assert ctl_json(a, "connections", "show", a_conn)["rotating_to"] == new
    b.start()
    wait_until("B follows", lambda: ctl_json(b, "connections", "show", b_conn)["their_did"] == new)
    wait_until("A's rotation complete", lambda: ctl_json(a, "connections", "show", a_conn)["my_did"] == new)
    wait_until("A's rotation ping done", lambda: records(a, rotated["ping"])[0]["state"] == "done")
    assert old in ctl_json(b, "connections", "show", b_conn)["their_retired"]

    # After another restart of A its retired DID stays retired: a message to it is refused.
    halt(a, how)
    a.start()
    ctl_json(b, "send", "--to", old, "--type", PING, "--from", ctl_json(b, "connections", "show", b_conn)["my_did"])
    wait_until("A refuses its retired DID", lambda: refused_as_rotated(a))
    pong = ctl_json(b, "ping", b_conn, "--wait", "30")
    assert pong["state"] == "answered" and pong["to"] == new, pong


@pytest.mark.parametrize("how", HOW)
def test_peer_stopped_after_switching_before_replying(daemon_factory: Any, how: str) -> None:
    a, b, a_conn, b_conn = pair(daemon_factory)
    old = connections(a)[0]["my_did"]
    # B receives the rotation (from_prior), switches, and is stopped before its reply
    # (to the new DID) leaves.
    assert b.stop() == 0
    rotated = ctl_json(a, "connections", "rotate", a_conn)
    new = rotated["new_did"]
    packed = packed_of(a, rotated["ping"])
    assert a.stop() == 0
    b.start()
    assert b.call("message.receive", packed=packed)["state"] == "received"
    assert ctl_json(b, "connections", "show", b_conn)["their_did"] == new
    (reply,) = on_thread(b, "outbox", rotated["ping"], PING_RESPONSE)
    assert reply["to"] == new and reply["state"] in ("queued", "sending"), reply
    halt(b, how)
    b.start()
    shown = ctl_json(b, "connections", "show", b_conn)
    assert shown["their_did"] == new and old in shown["their_retired"]
    a.start()
    wait_until("A's rotation ping done", lambda: records(a, rotated["ping"])[0]["state"] == "done")
    wait_until("A's rotation complete", lambda: ctl_json(a, "connections", "show", a_conn)["my_did"] == new)
    assert inbox_ids(a).count(reply["id"]) == 1
    # They keep talking, on the new DIDs.
    ctl_json(b, "chat", b_conn, "after the rotation")
    wait_until("A gets B's chat",
               lambda: any(e["data"]["content"] == "after the rotation" for e in events(a, "basicmessage.received")))


# -- 6. problem report --------------------------------------------------------------------------------


def send_bad(a: Daemon) -> str:
    """A message of a protocol nobody speaks, from A to B on their connection; its id."""
    mine, theirs = connections(a)[0]["my_did"], connections(a)[0]["their_did"]
    sent = ctl_json(a, "send", "--to", theirs, "--from", mine, "--type", UNKNOWN_TYPE, "--body", "{}")
    return str(sent["id"])


def reports(a: Daemon) -> list[str]:
    """The thread (``pthid``) of each problem report A received."""
    ids = [m["id"] for m in box(a, "inbox") if m.get("type") == PROBLEM_REPORT]
    return [a.call("message.get", id=i)["message"]["pthid"] for i in ids]


def test_problem_report_already_out_is_not_sent_again_after_restarts(daemon_factory: Any) -> None:
    a, b, a_conn, _ = pair(daemon_factory)
    first = send_bad(a)
    wait_until("A's problem report", lambda: first in reports(a))
    for how in HOW:
        halt(b, how)
        b.start()
    # A round trip after the restarts: anything B would re-send has had its chance.
    assert ctl_json(a, "ping", a_conn, "--wait", "30")["state"] == "answered"
    assert reports(a) == [first]
    assert len([m for m in box(b, "outbox") if m.get("type") == PROBLEM_REPORT]) == 1


@pytest.mark.parametrize("how", HOW)
def test_problem_report_goes_out_once_when_b_stops_before_sending_it(daemon_factory: Any, how: str) -> None:
    a, b, a_conn, _ = pair(daemon_factory)
    bad = responder_restarted(a, b, lambda: send_bad(a), PROBLEM_REPORT, how)
    assert reports(a) == [bad]
    assert ctl_json(a, "ping", a_conn, "--wait", "30")["state"] == "answered"
    assert reports(a) == [bad]
    assert len([m for m in box(b, "outbox") if m.get("type") == PROBLEM_REPORT]) == 1


# -- the answer on the wire when the responder dies ------------------------------------------------


def test_responder_killed_with_its_answer_in_flight(daemon_factory: Any) -> None:
    """A is frozen (SIGSTOP), so B's answer is stuck on the wire (``sending``) when B is
    killed; both resume: the answer arrives once, the ping is done."""
    a, b, a_conn, _ = pair(daemon_factory)
    assert b.stop() == 0
    thid = ctl_json(a, "ping", a_conn, "--wait", "0")["thid"]
    packed = packed_of(a, thid)
    a.signal(signal.SIGSTOP)
    try:
        b.start()
        assert b.call("message.receive", packed=packed)["state"] == "received"
        (answer,) = new_outbound(b, PING_RESPONSE, set())
        wait_until("B's answer on the wire", lambda: outbox_state(b, answer["id"]) == "sending")
        b.kill()
    finally:
        a.signal(signal.SIGCONT)
    b.start()
    wait_until("A's ping done", lambda: records(a, thid)[0]["state"] == "done")
    wait_until("B's answer delivered", lambda: outbox_state(b, answer["id"]) == "delivered")
    wait_until("A's ping delivered", lambda: outbox_state(a, thid) == "delivered")
    assert inbox_ids(a).count(answer["id"]) == 1 and inbox_ids(b).count(thid) == 1


def test_waiting_ping_is_answered_when_the_peer_comes_back(daemon_factory: Any) -> None:
    """``didcommctl ping --wait`` on A spans B's crash and restart."""
    a, b, a_conn, _ = pair(daemon_factory)
    b.kill()
    cmd = [sys.executable, "-m", "daemon.ctl", "--socket", str(a.socket), "--json", "ping", a_conn, "--wait", "60"]
    with subprocess.Popen(cmd, env=a.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_until("A's ping queued", lambda: [m for m in box(a, "outbox")
                                                   if m["type"].endswith("/ping") and m["state"] != "delivered"
                                                   and m["attempts"] >= 1])
            b.start()
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    pong = json.loads(out)
    assert pong["state"] == "answered", pong


def test_queued_messages_go_out_when_the_restarted_peer_reaches_us(daemon_factory: Any) -> None:
    """A backs off for minutes while B is down; when B is back and reaches A, A's queue
    for B goes out at once, not when the backoff ends (``Sender.peer_reachable``)."""
    slow = {**fixed_port_env(), "DIDCOMMD_DELIVERY_RETRY_BASE": "240", "DIDCOMMD_DELIVERY_RETRY_MAX": "300"}
    a: Daemon = daemon_factory(env=slow)
    b: Daemon = daemon_factory(env=fixed_port_env())
    a_conn, b_conn, _ = connect(a, b)
    b.kill()
    thid = ctl_json(a, "chat", a_conn, "while you were away", "--ack")["id"]
    wait_until("A's first attempt failed", lambda: a.call("message.outbox.get", id=thid)["attempts"] >= 1
               and outbox_state(a, thid) == "queued")
    b.start()
    # B reaches A (a ping of its own); A's chat, due in minutes, goes out now.
    assert ctl_json(b, "ping", b_conn, "--wait", "30")["state"] == "answered"
    wait_until("A's chat delivered", lambda: outbox_state(a, thid) == "delivered")
    wait_until("A's ack", lambda: [e for e in events(a, "ack.received") if thid in e["data"]["ack"]])

    # A bare libp2p connection from the restarted B is enough (A files it as reachable).
    b.kill()
    again = ctl_json(a, "chat", a_conn, "away again")["id"]
    wait_until("A's attempt failed", lambda: a.call("message.outbox.get", id=again)["attempts"] >= 1
               and outbox_state(a, again) == "queued")
    b.start()
    assert b.ctl("peers", "connect", a.call("status")["addrs"][0]).returncode == 0
    wait_until("A's second chat delivered", lambda: outbox_state(a, again) == "delivered")


def test_store_makes_a_peers_backed_off_messages_due(tmp_path: Any) -> None:
    """The store side of it: only queued messages not yet due, only to the DIDs named."""

    store = open_store(tmp_path / "s.sqlite3")
    try:
        for id, to in (("b1", "did:ex:b"), ("b2", "did:ex:b"), ("c1", "did:ex:c"), ("d1", "did:ex:d")):
            store.outbox_put(id, to_did=to, from_did=None, packed=b"x", created=10)
            store.outbox_transition(id, "sending", now=10)
            store.outbox_transition(id, "queued", now=10, next_attempt=500)
        store.outbox_transition("d1", "sending", now=11)
        assert sorted(store.outbox_waiting_recipients(20, limit=10)) == ["did:ex:b", "did:ex:c"]
        assert store.outbox_due_now(["did:ex:b", "did:ex:d", "did:ex:b"], 20) == 2
        assert [r.id for r in store.outbox_due(20)] == ["b1", "b2"]
        assert store.outbox_waiting_recipients(20, limit=10) == ["did:ex:c"]
    finally:
        store.close()


def test_invitation_uses_survive_the_inviters_crash(daemon_factory: Any) -> None:
    """A single-use invitation stays used and a multi-use one stays open across kill -9."""
    a: Daemon = daemon_factory(env=fixed_port_env())
    b: Daemon = daemon_factory(env=fixed_port_env())
    c: Daemon = daemon_factory(env=fixed_port_env())
    once = ctl_json(a, "invite", "create", "--goal", "once")
    many = ctl_json(a, "invite", "create", "--goal", "many", "--multi-use")
    for inv in (once, many):
        ctl_json(b, "invite", "accept", inv["url"])
    wait_until("B's two connections", lambda: [x["state"] for x in connections(b)] == ["active", "active"])
    a.kill()
    a.start()
    refused = ctl_json(c, "invite", "accept", once["url"])
    wait_until("C told the invitation was used", lambda: [
        e for e in events(c, "problem-report.received") if "used" in json.dumps(e["data"])])
    assert connections(c)[0]["state"] == "requested" and refused["ping"]
    ctl_json(c, "invite", "accept", many["url"], "--label", "many")
    wait_until("C's multi-use connection", lambda: ctl_json(c, "connections", "show", "many")["state"] == "active")
    assert len(connections(a)) == 3
