"""The conversation with a connection (``basicmessage.list``, ``didcommctl chat``):
both sides, newest first, paged without gaps or repeats, across DID rotations, and
nobody else's messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import exitcodes
from daemon.agent import Agent
from daemon.conversations import MAX_CHAT_PAGE
from daemon.errors import InvalidParamsError, NotFoundError
from protocols.basic_message import PIURI
from tests.daemon.conftest import REPO, Daemon
from tests.daemon.stores import open_store


async def _all_pages(agent: Agent, ref: str, limit: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    before = None
    while True:
        page = await agent.conversations.chat_history(ref, limit=limit, before=before)
        assert len(page["messages"]) <= limit
        messages += page["messages"]
        if page["next"] is None:
            return messages
        before = page["next"]


async def test_both_sides_newest_first_in_pages(connected: Any) -> None:
    alice, bob, wire, conn = connected
    sent = []
    for i in range(7):
        who, ref = (alice, conn.id) if i % 2 == 0 else (bob, "alice")
        sent.append(await who.conversations.chat(ref, f"message {i}"))
        await wire.pump()
    # Bob's second DID gets a message too: not part of this connection's conversation.
    other = (await bob.did_create(label="other"))["did"]
    aside = await alice.conversations.chat(other, "not in the conversation")
    await wire.pump()

    page = await alice.conversations.chat_history(conn.id)
    assert page["connection"] == conn.id and page["next"] is None
    assert page["events_seq"] == alice.events.last_seq
    assert [m["content"] for m in page["messages"]] == [f"message {i}" for i in reversed(range(7))]
    for m, i in zip(page["messages"], reversed(range(7)), strict=True):
        assert m["id"] == sent[i]["id"]
        assert m["direction"] == ("sent" if i % 2 == 0 else "received")
        assert (m["from"], m["to"]) == ((conn.my_did, conn.their_did) if i % 2 == 0 else (conn.their_did, conn.my_did))
        assert m["delivery"] == ("delivered" if i % 2 == 0 else None)
    # Bob sees the same conversation from his side.
    assert [m["id"] for m in (await bob.conversations.chat_history("alice"))["messages"]] == \
        [m["id"] for m in page["messages"]]
    # Paged: every message once, in the same order, whatever the page size.
    for limit in (1, 2, 3, 7):
        assert [m["id"] for m in await _all_pages(alice, conn.id, limit)] == [m["id"] for m in page["messages"]]
    # The message to Bob's other DID is in the conversation with that DID only.
    assert [m["id"] for m in (await alice.conversations.chat_history(other))["messages"]] == [aside["id"]]


async def test_the_conversation_survives_a_rotation(connected: Any) -> None:
    alice, bob, wire, conn = connected
    before = await alice.conversations.chat(conn.id, "before")
    await wire.pump()
    await alice.conversations.rotate(conn.id)
    await wire.pump()
    reply = await bob.conversations.chat("alice", "after")
    await wire.pump()
    rotated = await alice.conversations.connections.get(conn.id)
    assert rotated.my_did != conn.my_did
    for agent, ref in ((alice, conn.id), (bob, "alice")):
        ids = [m["id"] for m in (await agent.conversations.chat_history(ref))["messages"]]
        assert ids == [reply["id"], before["id"]]


async def test_bad_requests(connected: Any) -> None:
    alice, _bob, _wire, conn = connected
    for limit in (0, MAX_CHAT_PAGE + 1, True, "5"):
        with pytest.raises(InvalidParamsError, match="limit"):
            await alice.conversations.chat_history(conn.id, limit=limit)  # type: ignore[arg-type]
    for before in ("", "x/y", "12", "12/", "/34", "12/ab", "1" * 400, 5):
        with pytest.raises(InvalidParamsError, match="before"):
            await alice.conversations.chat_history(conn.id, before=before)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await alice.conversations.chat_history("nobody")


# -- the store's page, as a property --------------------------------------------------------------


RECORDS = st.lists(
    # created, then updated later by, its peer (None: a record without one), ours
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.sampled_from([None, "did:ex:a", "did:ex:b"]), st.booleans()),
    min_size=0, max_size=40,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, limit=st.integers(1, 8),
       cursor=st.one_of(st.none(), st.tuples(st.integers(0, 25), st.integers(0, 90))),
       peers=st.one_of(st.none(), st.sets(st.sampled_from(["did:ex:a", "did:ex:b"]))))
def test_records_newest_is_a_sort_of_the_matching_records(tmp_path_factory: pytest.TempPathFactory,
                                                         records: list[tuple[int, int, str | None, bool]],
                                                         limit: int, cursor: tuple[int, int] | None,
                                                         peers: set[str] | None) -> None:
    """Opening records newest update first, only those of the peers asked for, and
    stopping early gives exactly the page a full sort of the matching records would:
    whatever the times, the cursor, the size."""
    store = open_store(tmp_path_factory.mktemp("records") / "s.sqlite3")
    try:
        rows = []
        for n, (created, later, peer, ours) in enumerate(records):
            thid = f"t{n:02d}"
            record = {"thid": thid, "created_time": created, "ours": ours, "their_did": peer}
            store.record_put(PIURI, thid, "sender", state="sent", updated=created + later, record=record)
            rowid = store._conn.execute("SELECT rowid FROM protocol_records WHERE protocol = ? AND thid = ?",
                                        (PIURI, thid)).fetchone()[0]
            # Another protocol's record is never looked at.
            store.record_put("https://didcomm.org/trust-ping/2.0", thid, "sender", state="sent",
                             updated=created + later, record={**record, "ours": True})
            rows.append(((created, rowid), ours and (peers is None or peer in peers)))

        def match(r: dict[str, Any]) -> bool:
            return bool(r["ours"]) and (peers is None or r["their_did"] in peers)

        expected = sorted((place for place, ok in rows if ok and (cursor is None or place < cursor)), reverse=True)
        got = store.records_newest(PIURI, match, limit=limit, before=cursor, their_dids=peers)
        assert [place for place, _ in got] == expected[:limit]
        assert all(r["created_time"] == place[0] for place, r in got)
    finally:
        store.close()


# -- didcommctl ------------------------------------------------------------------------------------


def test_didcommctl_chat(daemon: Daemon) -> None:
    target = daemon.call("did.create")["did"]  # another DID of ours: delivered locally
    for i in range(3):
        out = daemon.ctl("chat", target, f"line {i}\nand more")
        assert out.returncode == exitcodes.OK, out.stderr
        assert out.stdout.startswith("queued ")
    shown = daemon.ctl("chat", target)
    assert shown.returncode == exitcodes.OK, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if "line" in line]
    # Oldest first, as a chat window shows them; continuation lines indented.
    assert [line.split("  ")[-1].strip() for line in lines] == ["line 0", "line 1", "line 2"]
    assert all(line.split()[2] == "me" for line in lines)
    assert shown.stdout.count("and more") == 3
    page = daemon.ctl("chat", target, "--limit", "2")
    assert "line 0" not in page.stdout and "(older messages: --before " in page.stdout
    cursor = page.stdout.split("--before ")[1].split(")")[0]
    older = daemon.ctl("--json", "chat", target, "--limit", "2", "--before", cursor)
    assert older.returncode == exitcodes.OK
    assert '"content": "line 0\\nand more"' in older.stdout and '"next": null' in older.stdout

    # Usage errors: flags of the other form, and limits the daemon checks.
    for args in ((target, "text", "--follow"), (target, "text", "--limit", "3"), (target, "--ack"),
                 (target, "--lang", "en")):
        bad = daemon.ctl("chat", *args)
        assert bad.returncode == exitcodes.USAGE, (args, bad.stderr)
    bad = daemon.ctl("chat", target, "--limit", "0")
    assert bad.returncode == exitcodes.USAGE and "limit" in bad.stderr
    bad = daemon.ctl("chat", target, "--before", "nonsense")
    assert bad.returncode == exitcodes.USAGE and "before" in bad.stderr
    missing = daemon.ctl("chat", "no-such-connection")
    assert missing.returncode == exitcodes.FAILURE

    # --follow: the page, then a message sent meanwhile, until Ctrl-C (exit 0).
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.ctl", "--socket", str(daemon.socket), "chat", target, "--follow",
         "--limit", "1"],
        env=daemon.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "line 2" in first or "older messages" in first
        time.sleep(0.5)  # subscribed by now, or it replays from the page's events_seq anyway
        assert daemon.ctl("chat", target, "live one").returncode == exitcodes.OK
        deadline = time.monotonic() + 30
        seen = ""
        while "live one" not in seen:
            assert time.monotonic() < deadline, seen
            seen += proc.stdout.readline()
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == exitcodes.OK, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()



async def test_naming_the_other_side(connected: Any) -> None:
    alice, bob, wire, conn = connected
    await alice.conversations.chat(conn.id, "hi")
    await wire.pump()
    renamed = await alice.conversations.rename(conn.id, "bob")
    assert renamed["connection"]["label"] == "bob"
    assert (await alice.conversations.connections.get("bob")).id == conn.id
    page = await alice.conversations.chat_history("bob")
    assert page["label"] == "bob" and [m["content"] for m in page["messages"]] == ["hi"]
    await alice.events.flush()
    events = await alice.store.run(alice.store.sync.events_since, 0)
    assert {"connection": conn.id, "label": "bob"} in [e["data"] for e in events if e["kind"] == "connection.renamed"]
    stored = {r["id"]: r for r in await alice.store.run(alice.store.sync.connection_list)}
    assert stored[conn.id]["record"]["label"] == "bob"
    # Renaming to its own name again is fine; a name of another connection is not.
    await alice.conversations.rename("bob", "bob")
    second_inv = await alice.conversations.invite_create(goal="again")
    await bob.conversations.invite_accept(second_inv["url"], label="alice-2")
    await wire.pump()
    second = next(c for c in await alice.conversations.connections.list() if c.id != conn.id)
    for taken in ("bob", conn.id):
        with pytest.raises(InvalidParamsError, match="already names"):
            await alice.conversations.rename(second.id, taken)
    for bad in ("", "x" * 1000, 5, None):
        with pytest.raises(InvalidParamsError, match="label"):
            await alice.conversations.rename(second.id, bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await alice.conversations.rename("nobody", "carol")


async def test_forgetting_a_connection_and_a_credential_are_events(connected: Any) -> None:
    """Deletions are reported like the other changes, so a client's view can follow."""
    from tests.daemon.test_suspension import _issue

    alice, bob, wire, conn = connected
    _offer, cred_id = await _issue(alice, bob, wire, conn.id)
    creds = bob.conversations.credentials
    assert await creds.delete(cred_id) == {"deleted": cred_id}
    assert cred_id not in {c["id"] for c in (await creds.stored())["credentials"]}
    with pytest.raises(NotFoundError):
        await creds.delete(cred_id)
    forgotten = await alice.conversations.forget(conn.id)
    assert forgotten["deleted"]["id"] == conn.id
    with pytest.raises(NotFoundError):
        await alice.conversations.connections.get(conn.id)
    for agent, kind, data in ((bob, "credential.deleted", {"id": cred_id}),
                              (alice, "connection.deleted", {"connection": conn.id, "label": None})):
        await agent.events.flush()
        events = await agent.store.run(agent.store.sync.events_since, 0)
        assert [e["data"] for e in events if e["kind"] == kind] == [data]
