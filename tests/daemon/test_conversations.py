"""The protocol driver as a specification: two real agents (state dirs, SQLite, wallets),
messages carried between their outboxes and inboxes by the test (the transport's job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from daemon.agent import Agent
from daemon.errors import DaemonError
from protocols import out_of_band
from tests.daemon.conftest import make_config

PING = "https://didcomm.org/trust-ping/2.0/ping"
PING_RESPONSE = "https://didcomm.org/trust-ping/2.0/ping-response"



class Wire:
    """Moves every queued message of one agent to the other (as a transport would)."""

    def __init__(self, *agents: Agent) -> None:
        self.agents = agents

    async def _did_owner(self, did: str) -> Agent:
        for a in self.agents:
            if did in [d["did"] for d in await a.did_list()]:
                return a
        raise AssertionError(f"nobody owns {did}")

    async def pump(self, *, rounds: int = 10) -> list[dict[str, Any]]:
        """Deliver until no agent has anything queued; the receive results."""
        results = []
        for _ in range(rounds):
            moved = False
            for a in self.agents:
                for item in await a.outbox_claim():
                    target = await self._did_owner(item["to"])
                    results.append(await target.message_receive(item["packed"], transport="test"))
                    await a.outbox_delivered(item["id"])
                    moved = True
            if not moved:
                return results
        raise AssertionError("messages kept flowing")


async def connect(alice: Agent, bob: Agent, wire: Wire, **kw: Any) -> tuple[str, str]:
    inv = await alice.conversations.invite_create(goal="chat", **kw)
    accepted = await bob.conversations.invite_accept(inv["url"], label="alice")
    await wire.pump()
    a_conns = await alice.conversations.connections.list()
    assert len(a_conns) == 1
    return a_conns[0].id, accepted["connection"]["id"]


async def events_of(agent: Agent) -> list[dict[str, Any]]:
    await agent.events.flush()
    return await agent.store.run(agent.store.sync.events_since, 0)


async def test_invitation_makes_a_connection_on_both_sides(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    inv = await alice.conversations.invite_create(goal="chat", goal_code="didcommd.connect")
    parsed = out_of_band.parse_invitation(inv["url"])
    assert parsed == inv["invitation"] == out_of_band.parse_invitation(inv["didcomm_url"])
    accepted = await bob.conversations.invite_accept(inv["didcomm_url"])
    assert accepted["connection"]["state"] == "requested"
    await wire.pump()
    (a,) = await alice.conversations.connections.list()
    (b,) = await bob.conversations.connections.list()
    # Pairwise DIDs: each side's DID was made for this relationship.
    assert (a.my_did, a.their_did) == (b.their_did, b.my_did) == (inv["did"], b.my_did)
    assert a.role == "inviter" and b.role == "invitee"
    assert a.state == b.state == "active"
    assert b.label == "chat"
    kinds = [e["kind"] for e in await events_of(bob)]
    assert "connection.active" in kinds and "trust-ping.response-received" in kinds
    kinds = [e["kind"] for e in await events_of(alice)]
    assert "connection.created" in kinds and "out-of-band.invitation-used" in kinds


async def test_single_use_invitation_refuses_a_second_accepter(tmp_path: Path, pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    carol = await Agent.open(make_config(tmp_path / "carol"))
    try:
        wire = Wire(alice, bob, carol)
        inv = await alice.conversations.invite_create()
        await bob.conversations.invite_accept(inv["url"])
        await wire.pump()
        await carol.conversations.invite_accept(inv["url"])
        await wire.pump()
        assert len(await alice.conversations.connections.list()) == 1
        problems = [e for e in await events_of(carol) if e["kind"] == "problem-report.received"]
        assert problems and problems[0]["data"]["code"].startswith("e.p.")
        (c,) = await carol.conversations.connections.list()
        # Authenticated, so we know who refused; but refused: alice has no connection
        # with carol, so carol's must not claim to be active.
        assert c.state == "requested"
    finally:
        await carol.aclose()


async def test_multi_use_invitation_connects_several(tmp_path: Path, pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    carol = await Agent.open(make_config(tmp_path / "carol"))
    try:
        wire = Wire(alice, bob, carol)
        inv = await alice.conversations.invite_create(multi_use=True, label="public")
        await bob.conversations.invite_accept(inv["url"])
        await carol.conversations.invite_accept(inv["url"])
        await wire.pump()
        conns = await alice.conversations.connections.list()
        assert len(conns) == 2 and {c.label for c in conns} == {"public"}
    finally:
        await carol.aclose()


async def test_expired_invitation_is_refused(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    inv = await alice.conversations.invite_create(expires_in=60)
    bob._clock = lambda: alice.now() + 120  # type: ignore[method-assign]
    with pytest.raises(DaemonError) as info:
        await bob.conversations.invite_accept(inv["url"])
    assert "expired" in info.value.message


async def test_ping_features_chat_and_acks(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    a_conn, b_conn = await connect(alice, bob, wire)
    sent = await alice.conversations.ping(a_conn)
    await wire.pump()
    (rec,) = (await alice.conversations.thread(sent["thid"]))["records"]
    assert rec["state"] == "done" and rec["role"] == "sender"
    q = await bob.conversations.features(b_conn, query="https://didcomm.org/*")
    await wire.pump()
    (rec,) = (await bob.conversations.thread(q["thid"]))["records"]
    ids = {d["id"] for d in rec["data"]["disclosures"]}
    assert "https://didcomm.org/trust-ping/2.0" in ids and "https://didcomm.org/basicmessage/2.0" in ids
    msg = await bob.conversations.chat(b_conn, "hello alice", please_ack=True)
    await wire.pump()
    got = [e for e in await events_of(alice) if e["kind"] == "basicmessage.received"]
    assert got[-1]["data"]["content"] == "hello alice" and got[-1]["data"]["connection"] == a_conn
    acks = [e for e in await events_of(bob) if e["kind"] == "ack.received"]
    assert acks and msg["id"] in acks[-1]["data"]["ack"]
    inbox = await alice.message_list()
    assert any(m["type"] == "https://didcomm.org/basicmessage/2.0/message" for m in inbox)


async def test_ping_waits_for_the_round_trip(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    a_conn, _ = await connect(alice, bob, wire)
    result: dict[str, Any] = {}

    async def ping() -> None:
        result.update(await alice.conversations.ping(a_conn, wait=10))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ping)
        with trio.fail_after(10):
            while not result:
                await wire.pump()
                await trio.sleep(0.01)
    assert result["state"] == "answered" and result["rtt_ms"] >= 0
    timeout = await alice.conversations.ping(a_conn, wait=0.05)
    assert timeout["state"] == "timeout"


async def test_rotation_moves_the_relationship_to_the_new_did(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    a_conn, b_conn = await connect(alice, bob, wire)
    old = (await alice.conversations.connections.get(a_conn)).my_did
    rotated = await alice.conversations.rotate(a_conn)
    new = rotated["new_did"]
    assert rotated["connection"]["rotating_to"] == new
    # Bob still writes to the old DID until he has heard of the new one: accepted.
    await bob.conversations.chat(b_conn, "to the old DID")
    await wire.pump()
    b = await bob.conversations.connections.get(b_conn)
    assert b.their_did == new and old in b.their_retired
    a = await alice.conversations.connections.get(a_conn)
    assert a.my_did == new and a.my_next_did is None and old in a.my_retired
    await bob.conversations.chat(b_conn, "to the new DID")
    await alice.conversations.chat(a_conn, "from the new DID")
    results = await wire.pump()
    assert all(r["state"] == "received" for r in results)
    texts = [e["data"]["content"] for e in await events_of(alice) if e["kind"] == "basicmessage.received"]
    assert texts[-1] == "to the new DID"
    # A message to the old DID is refused now (Bob's daemon would not send one: forge it).
    forged = await bob.message_send(old, PING, {}, frm=b.my_did)
    packed = (await bob.outbox_get(forged["id"]))["packed"]
    assert (await alice.message_receive(packed))["state"] == "rejected"
    reason = (await alice.message_get((await alice.message_list())[0]["id"]))["reason"]
    assert "rotated" in reason


async def test_records_survive_a_restart_mid_protocol(tmp_path: Path) -> None:
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"))
    try:
        wire = Wire(alice, bob)
        _, b_conn = await connect(alice, bob, wire)
        q = await bob.conversations.features(b_conn)
        item = (await bob.outbox_claim())[0]
        await bob.outbox_delivered(item["id"])
        await bob.aclose()
        # Alice answers while Bob is down; Bob reopens and the disclosure finishes his thread.
        await alice.message_receive(item["packed"])
        bob = await Agent.open(make_config(tmp_path / "bob"))
        wire = Wire(alice, bob)
        await wire.pump()
        (rec,) = (await bob.conversations.thread(q["thid"]))["records"]
        assert rec["state"] == "done" and rec["data"]["disclosures"]
        assert (await bob.conversations.connections.get(b_conn)).state == "active"
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_unknown_protocol_gets_a_problem_report(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    _, b_conn = await connect(alice, bob, wire)
    b = await bob.conversations.connections.get(b_conn)
    await bob.message_send(b.their_did, "https://didcomm.org/no-such/1.0/thing", {}, frm=b.my_did)
    await wire.pump()
    problems = [e for e in await events_of(bob) if e["kind"] == "problem-report.received"]
    assert problems and problems[-1]["data"]["code"] == "e.p.msg.unsupported"


async def test_connections_by_label_prefix_and_delete(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    wire = Wire(alice, bob)
    _, b_conn = await connect(alice, bob, wire)
    book = bob.conversations.connections
    assert (await book.get("alice")).id == b_conn
    assert (await book.get(b_conn[:8])).id == b_conn
    await book.delete("alice")
    assert await book.list() == []
    with pytest.raises(DaemonError):
        await book.get("alice")
