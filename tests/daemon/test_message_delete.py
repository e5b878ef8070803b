"""Erasing a message (``message.delete``): its content goes from every place the daemon
kept it, it does not come back, and a message being sent is not pulled from under the
sender."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from daemon import exitcodes
from daemon.agent import Agent
from daemon.errors import INVALID_STATE, DaemonError, NotFoundError
from tests.daemon.conftest import Daemon

BASIC = "https://didcomm.org/basicmessage/2.0/message"
SECRET = "meet me at the old mill at nine"


async def _events(agent: Agent) -> list[dict[str, Any]]:
    await agent.events.flush()
    return await agent.store.run(agent.store.sync.events_since, 0)


def _mentions(events: list[dict[str, Any]], id: str) -> list[dict[str, Any]]:
    return [e for e in events if id in (e["data"].get("id"), e["data"].get("thid"))]


@pytest.fixture
def chat(connected: Any) -> tuple[Agent, Agent, Any, str]:
    """Alice and Bob connected; Alice's connection id."""
    alice, bob, wire, conn = connected
    return alice, bob, wire, conn.id


async def test_a_received_message_is_erased_everywhere_and_stays_erased(chat: Any) -> None:
    alice, bob, wire, a_conn = chat
    sent = await alice.conversations.chat(a_conn, SECRET)
    packed = (await alice.store.run(alice.store.sync.outbox_get, sent["id"])).packed
    await wire.pump()
    id = sent["id"]
    assert (await bob.message_get(id))["message"]["body"]["content"] == SECRET
    assert (await bob.conversations.thread(id))["records"]
    before = _mentions(await _events(bob), id)
    assert {e["kind"] for e in before} >= {"message.received", "basicmessage.received"}
    other = await alice.conversations.chat(a_conn, "and bring a torch")
    await wire.pump()

    result = await bob.message_delete(id)
    assert result == {"id": id, "deleted": {"inbox": 1, "outbox": 0, "records": 1, "events": len(before)}}
    with pytest.raises(NotFoundError, match="was deleted"):
        await bob.message_get(id)
    with pytest.raises(NotFoundError):
        await bob.conversations.thread(id)
    assert id not in {m["id"] for m in await bob.message_list()}
    after = _mentions(await _events(bob), id)
    # Every event about it keeps its place in the log, and says only that it is gone.
    erased = [e for e in after if e["kind"] != "message.deleted"]
    assert [e["seq"] for e in erased] == [e["seq"] for e in before]
    assert all(e["data"] in ({"id": id, "deleted": True}, {"thid": id, "deleted": True}) for e in erased)
    # And the deletion is an event of its own, for clients showing the conversation.
    assert [e["data"] for e in after if e["kind"] == "message.deleted"] == [{"id": id}]
    assert not any(SECRET in json.dumps(e["data"]) for e in await _events(bob))
    # The other message is untouched.
    assert (await bob.message_get(other["id"]))["message"]["body"]["content"] == "and bring a torch"

    # The same bytes again (a sender's retry, a replay): a duplicate, and nothing comes back.
    assert (await bob.message_receive(packed))["state"] == "duplicate"
    with pytest.raises(NotFoundError, match="was deleted"):
        await bob.message_get(id)
    with pytest.raises(NotFoundError, match="no message"):
        await bob.message_delete(id)


def _sealed_blobs(path: Path, id: str) -> list[bytes]:
    """The sealed bytes the store holds about message ``id`` (read beside the agent)."""
    db = sqlite3.connect(path)
    try:
        return [bytes(b) for (b,) in [
            *db.execute("SELECT record FROM inbox WHERE msg_id = ?", (id,)),
            *db.execute("SELECT packed FROM inbox WHERE msg_id = ?", (id,)),
            *db.execute("SELECT record FROM protocol_records WHERE thid = ?", (id,)),
        ]]
    finally:
        db.close()


async def test_erased_contents_leave_the_files(chat: Any) -> None:
    """Not only unreadable through the daemon: the sealed bytes are gone from the
    database file and its WAL, which the wallet's key could otherwise still open."""
    alice, bob, wire, a_conn = chat
    sent = await alice.conversations.chat(a_conn, SECRET + " " + "x" * 20_000)  # overflow pages too
    await wire.pump()
    path = bob.store.sync.path
    blobs = _sealed_blobs(path, sent["id"])
    assert len(blobs) == 3 and all(len(b) > 40 for b in blobs)
    files = (path, path.with_name(path.name + "-wal"))

    def found() -> list[bool]:
        data = b"".join(f.read_bytes() for f in files if f.exists())
        return [b[-32:] in data for b in blobs]

    assert any(found())
    await bob.message_delete(sent["id"])
    assert found() == [False, False, False]


async def test_the_sender_erases_its_copy(chat: Any) -> None:
    alice, _bob, wire, a_conn = chat
    sent = await alice.conversations.chat(a_conn, SECRET)
    await wire.pump()
    result = await alice.message_delete(sent["id"])
    assert result["deleted"]["outbox"] == 1 and result["deleted"]["records"] == 1
    assert result["deleted"]["inbox"] == 0
    with pytest.raises(NotFoundError):
        await alice.message_get(sent["id"])
    assert sent["id"] not in {m["id"] for m in await alice.message_list(box="outbox")}
    assert not any(SECRET in json.dumps(e["data"]) for e in await _events(alice))


async def test_a_queued_message_erased_is_never_sent(chat: Any) -> None:
    alice, bob, wire, a_conn = chat
    sent = await alice.conversations.chat(a_conn, SECRET)
    await alice.message_delete(sent["id"])
    assert await wire.pump() == []
    with pytest.raises(NotFoundError):
        await bob.message_get(sent["id"])


async def test_a_message_being_sent_is_not_erased(chat: Any) -> None:
    alice, _bob, _wire, a_conn = chat
    sent = await alice.conversations.chat(a_conn, SECRET)
    assert [m["id"] for m in await alice.outbox_claim()] == [sent["id"]]  # now 'sending'
    with pytest.raises(DaemonError, match="being sent") as info:
        await alice.message_delete(sent["id"])
    assert info.value.code == INVALID_STATE
    assert (await alice.outbox_get(sent["id"]))["packed"]  # untouched
    await alice.outbox_delivered(sent["id"])
    assert (await alice.message_delete(sent["id"]))["deleted"]["outbox"] == 1


async def test_bad_ids(chat: Any) -> None:
    alice = chat[0]
    for bad in ("", "x" * 10_000, 5, None):
        with pytest.raises(DaemonError) as info:
            await alice.message_delete(bad)
        assert info.value.code == "invalid_params"
    with pytest.raises(NotFoundError):
        await alice.message_delete("no-such-message")


def test_didcommctl_message_delete(daemon: Daemon) -> None:
    mine = daemon.call("did.create")["did"]
    other = daemon.call("did.create")["did"]
    sent = daemon.call("message.send", to=other, type=BASIC, body={"content": SECRET}, **{"from": mine})
    id = sent["id"]
    # Delivered locally, in a moment: then in both boxes.
    deadline = time.monotonic() + 30
    while daemon.call("message.outbox.get", id=id)["state"] != "delivered":
        assert time.monotonic() < deadline, "never delivered"
        time.sleep(0.05)
    before = daemon.call("status")
    out = daemon.ctl("message", "delete", id)
    assert out.returncode == exitcodes.OK, out.stderr
    after = daemon.call("status")
    # Status counts messages, not tombstones; and says what the store takes on disk.
    assert after["inbox"] == before["inbox"] - 1
    assert after["outbox"] == before["outbox"] - 1
    assert after["store"]["db_bytes"] > 0 and after["store"]["wal_bytes"] >= 0
    assert out.stdout == f"deleted {id}: inbox 1, outbox 1, records 1, events erased {out.stdout.split()[-1]}\n"
    again = daemon.ctl("--json", "message", "delete", id)
    assert again.returncode == exitcodes.FAILURE
    assert "no message" in again.stderr
    show = daemon.ctl("message", "show", id)
    assert show.returncode == exitcodes.FAILURE and "was deleted" in show.stderr
    usage = daemon.ctl("message", "delete")
    assert usage.returncode == exitcodes.USAGE
    daemon.stop()
    # On disk: only the tombstone's searchable columns; no packed bytes or record left to open.
    db = sqlite3.connect(daemon.state_dir / "didcommd.sqlite3")
    try:
        assert db.execute("SELECT state FROM inbox WHERE msg_id = ?", (id,)).fetchall() == [("deleted",)]
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE id = ?", (id,)).fetchone() == (0,)
    finally:
        db.close()


def test_every_message_event_kind_is_erased(tmp_path: Path) -> None:
    """Each kind whose data names a message by id, message.duplicate included, says only
    that it is gone after the message is erased; other messages' events are untouched."""
    from daemon.store import _MESSAGE_EVENT_KINDS
    from tests.daemon.stores import open_store

    store = open_store(tmp_path / "s.sqlite3")
    try:
        kinds = [k for k in _MESSAGE_EVENT_KINDS if not k.startswith("basicmessage.")]
        assert "message.duplicate" in kinds
        store.events_append([{"seq": n, "kind": k, "time": "t", "data": {"id": "m1", "x": SECRET}}
                             for n, k in enumerate(kinds, start=1)])
        store.events_append([{"seq": 100, "kind": "message.duplicate", "time": "t", "data": {"id": "m2"}}])
        store.inbox_insert_received("r1", b"p", transport="t", received=1, msg_id="m1", sender="did:ex:a", record={})
        assert store.message_erase("m1")["events"] == len(kinds)
        events = store.events_since(0)
        assert [e["data"] for e in events[:-1]] == [{"id": "m1", "deleted": True}] * len(kinds)
        assert events[-1]["data"] == {"id": "m2"}
    finally:
        store.close()
