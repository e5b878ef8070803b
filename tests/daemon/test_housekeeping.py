"""What the store keeps, and for how long: packed bytes once they are of no use, sent
messages past ``[store] keep_sent`` and received ones past ``[store] keep_received``
(daemon.housekeeping), events in batches and by age."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import exitcodes, housekeeping
from daemon.agent import Agent
from daemon.config import ConfigError, load_config, replace
from daemon.errors import NotFoundError
from daemon.events import iso_time
from daemon.store import (
    INBOX_PRUNED_SEQ,
    OUTBOX_DELIVERED,
    OUTBOX_EXPIRED,
    OUTBOX_FAILED,
    OUTBOX_FINAL_STATES,
    OUTBOX_QUEUED,
    OUTBOX_SENDING,
    PACKED_NOT_KEPT,
    Store,
)
from protocols.envelope import pack_encrypted
from tests.daemon.conftest import Daemon, make_config
from tests.daemon.stores import open_store

BASIC = "https://didcomm.org/basicmessage/2.0/message"
DAY = 24 * 3600


def _put(store: Store, id: str, state: str, *, created: int, updated: int) -> None:
    """An outbound row in ``state``, created and last changed at the given times."""
    store.outbox_put(id, to_did="did:ex:bob", from_did=None, packed=b'{"packed": 1}', created=created)
    if state == OUTBOX_QUEUED:
        return
    store.outbox_transition(id, OUTBOX_SENDING, now=created)
    if state != OUTBOX_SENDING:
        store.outbox_transition(id, state, now=updated)


def _ids(store: Store) -> set[str]:
    return {r.id for r in store.outbox_list(limit=1000)}


# -- the store ----------------------------------------------------------------------------------


def test_prune_deletes_only_finished_messages_older_than_the_cut(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    try:
        states = (OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_EXPIRED, OUTBOX_QUEUED, OUTBOX_SENDING)
        for n, state in enumerate(states):
            _put(store, f"old-{state}", state, created=1000 + n, updated=2000 + n)
        # Created long ago, but finished recently: kept.
        _put(store, "late-delivered", OUTBOX_DELIVERED, created=1100, updated=6100)
        for n, state in enumerate(states):
            _put(store, f"new-{state}", state, created=5000 + n, updated=6000 + n)
        assert store.outbox_prune(5000) == 3
        assert _ids(store) == {
            "old-queued", "old-sending", "late-delivered",
            *(f"new-{s}" for s in (OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_EXPIRED, OUTBOX_QUEUED, OUTBOX_SENDING)),
        }
        assert store.outbox_prune(5000) == 0
        # Pending messages are never deleted, however old.
        assert store.outbox_prune(10**9) == 4
        assert _ids(store) == {"old-queued", "old-sending", "new-queued", "new-sending"}
    finally:
        store.close()


def test_prune_goes_in_batches(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    try:
        for i in range(7):
            _put(store, f"m{i}", OUTBOX_DELIVERED, created=100 + i, updated=200 + i)
        assert [store.outbox_prune(1000, limit=3) for _ in range(4)] == [3, 3, 1, 0]
        assert _ids(store) == set()
    finally:
        store.close()


rows = st.lists(
    st.tuples(st.sampled_from((OUTBOX_QUEUED, OUTBOX_SENDING, *OUTBOX_FINAL_STATES)),
              st.integers(0, 50), st.integers(0, 50)),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, cut=st.integers(0, 120), monotone=st.booleans())
def test_prune_property(tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, int, int]], cut: int,
                        monotone: bool) -> None:
    """Never a pending or recent row; with creation times in insertion order (a clock
    that does not jump back), every finished row changed before the cut."""
    store = open_store(tmp_path_factory.mktemp("prune") / "s.sqlite3")
    try:
        created_at, expected = 0, set()
        for i, (state, gap, age) in enumerate(rows):
            created_at = created_at + gap if monotone else gap
            updated = created_at + age
            _put(store, f"m{i}", state, created=created_at, updated=updated)
            if state in OUTBOX_FINAL_STATES and updated < cut:
                expected.add(f"m{i}")
        before = _ids(store)
        while store.outbox_prune(cut, limit=4) == 4:
            pass
        deleted = before - _ids(store)
        assert deleted <= expected
        if monotone:
            assert deleted == expected
    finally:
        store.close()


def test_packed_bytes_go_when_delivered_or_expired_and_stay_when_failed(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    try:
        for state in (OUTBOX_DELIVERED, OUTBOX_EXPIRED, OUTBOX_FAILED):
            _put(store, state, state, created=10, updated=20)
        store.outbox_put("fast", to_did="did:ex:bob", from_did=None, packed=b"{}", created=10, state=OUTBOX_SENDING)
        store.outbox_delivered("fast", now=11)
        packed = {r.id: r.packed for r in store.outbox_list(limit=10)}
        assert packed == {OUTBOX_DELIVERED: PACKED_NOT_KEPT, OUTBOX_EXPIRED: PACKED_NOT_KEPT,
                          OUTBOX_FAILED: b'{"packed": 1}', "fast": PACKED_NOT_KEPT}
    finally:
        store.close()


def test_a_row_accepted_after_a_restart_drops_its_packed_bytes_too(tmp_path: Path) -> None:
    """A row committed before unpacking (then a crash) is accepted in place, as a new one is."""
    store = open_store(tmp_path / "s.sqlite3")
    try:
        for ref, keep in (("kept", True), ("dropped", False)):
            store.inbox_commit(ref, b'{"protected": "..."}', transport="test", received=1)
            assert store.inbox_accept(ref, msg_id=ref, sender="did:ex:a", record={"message": {}},
                                      keep_packed=keep) is None
        rows = {r.ref: r for r in store.inbox_list()}
        assert rows["kept"].packed == b'{"protected": "..."}'
        assert rows["dropped"].packed == PACKED_NOT_KEPT
        assert {r.state for r in rows.values()} == {"received"}
    finally:
        store.close()


# -- two agents -------------------------------------------------------------------------------


async def test_inbound_packed_bytes_are_kept_only_when_signed(connected: Any) -> None:
    alice, bob, wire, conn = connected
    sent = await alice.message_send(conn.their_did, BASIC, {"content": "hi"}, frm=conn.my_did)
    await wire.pump()
    signed_msg = {"id": "signed-1", "type": BASIC, "to": [conn.their_did], "from": conn.my_did,
                  "body": {"content": "signed"}}
    signed = pack_encrypted(signed_msg, conn.their_did, frm=conn.my_did, sign_from=conn.my_did,
                            resolver=alice.resolver, secrets=alice.wallet).packed
    assert (await bob.message_receive(signed))["state"] == "received"

    plain_row = await bob.store.run(bob.store.sync.inbox_get, sent["id"])
    signed_row = await bob.store.run(bob.store.sync.inbox_get, "signed-1")
    assert plain_row is not None and signed_row is not None
    assert plain_row.packed == PACKED_NOT_KEPT
    assert plain_row.record["message"]["body"] == {"content": "hi"}
    assert signed_row.packed == signed.encode()
    assert signed_row.record["metadata"]["non_repudiation"] is True
    # The sender's copy went at delivery; the row is still listed.
    assert (await alice.outbox_get(sent["id"]))["packed"] is None
    assert (await alice.message_get(sent["id"]))["state"] == OUTBOX_DELIVERED
    # The same bytes again are still a duplicate: dedup does not need them.
    assert (await bob.message_receive(signed))["state"] == "duplicate"


async def test_housekeeping_prunes_by_the_configured_age(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    config = make_config(tmp_path / "a")
    agent = await Agent.open(config, clock=lambda: now[0])
    try:
        store = agent.store.sync
        for i in range(3):
            await agent.store.run(_put, store, f"m{i}", OUTBOX_DELIVERED, created=int(now[0]) - 40 * DAY + i,
                                  updated=int(now[0]) - 31 * DAY + i)
        await agent.store.run(_put, store, "recent", OUTBOX_DELIVERED, created=int(now[0]) - DAY,
                              updated=int(now[0]) - DAY)
        agent.config = replace(config, store={"keep_sent": 0})
        assert await housekeeping.prune_sent(agent) == 0
        agent.config = replace(config, store={"keep_sent": 30 * DAY})
        assert await housekeeping.prune_sent(agent) == 3
        assert {m["id"] for m in await agent.message_list(box="outbox")} == {"recent"}
        now[0] += 30 * DAY
        assert await housekeeping.prune_sent(agent) == 1
    finally:
        await agent.aclose()


# -- events -------------------------------------------------------------------------------------


def test_events_prune_is_not_a_write_per_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below EVENTS_KEPT + EVENTS_PRUNE_BATCH a flush deletes nothing."""
    import daemon.store as storemod

    monkeypatch.setattr(storemod, "EVENTS_KEPT", 10)
    monkeypatch.setattr(storemod, "EVENTS_PRUNE_BATCH", 5)
    store = open_store(tmp_path / "s.sqlite3")
    try:
        counts = []
        for seq in range(1, 31):
            store.events_append([{"seq": seq, "kind": "k", "time": "t", "data": {}}])
            counts.append(len(store.events_since(0)))
        assert max(counts) == 15 and min(counts[15:]) == 10
        # Pruned 3 times in 30 flushes, not once a flush.
        assert sum(1 for a, b in itertools.pairwise(counts) if b < a) == 3
    finally:
        store.close()


# -- configuration and a real daemon ------------------------------------------------------------


def test_keep_sent_is_configured_and_checked(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert load_config(env=env).store.keep_sent == 30 * DAY
    assert load_config(env={**env, "DIDCOMMD_STORE_KEEP_SENT": "0"}).store.keep_sent == 0
    path = tmp_path / "c.toml"
    path.write_text("[store]\nkeep_sent = 3600\n")
    assert load_config(path, env=env).store.keep_sent == 3600
    for bad in ("-1", "ten", "999999999999"):
        with pytest.raises(ConfigError, match="DIDCOMMD_STORE_KEEP_SENT"):
            load_config(env={**env, "DIDCOMMD_STORE_KEEP_SENT": bad})
    path.write_text("[store]\nkeep_sent = true\n")
    with pytest.raises(ConfigError, match=r"store\.keep_sent"):
        load_config(path, env=env)


def test_a_daemon_prunes_sent_messages_at_start(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(env={"DIDCOMMD_STORE_KEEP_SENT": "1"})
    mine = d.call("did.create")["did"]
    other = d.call("did.create")["did"]
    # To a DID of our own: delivered locally, at once (and so is the problem report its
    # empty body earns).
    sent = d.call("message.send", to=other, type=BASIC, body={}, **{"from": mine})
    deadline = time.monotonic() + 30
    while d.call("message.outbox.get", id=sent["id"])["state"] != OUTBOX_DELIVERED:
        assert time.monotonic() < deadline, "the message was never delivered"
        time.sleep(0.1)
    assert d.call("message.outbox.get", id=sent["id"])["packed"] is None
    assert d.stop() == 0
    time.sleep(2.1)  # times are whole seconds: updated < now - keep_sent needs 2 s to be sure
    d.start()
    assert sent["id"] not in {m["id"] for m in d.call("message.list", box="outbox")["messages"]}
    # The inbound copy is the owner's: kept.
    assert d.call("message.get", id=sent["id"])["state"] == "received"
    assert any(r.get("event") == "store.pruned" and r.get("outbox", 0) >= 1 for r in d.log_records())
    db = sqlite3.connect(d.state_dir / "didcommd.sqlite3")
    try:
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE id = ?", (sent["id"],)).fetchone()[0] == 0
    finally:
        db.close()


# -- room on disk: peers cannot fill it ---------------------------------------------------------


async def test_a_full_store_refuses_messages_before_committing_anything(connected: Any) -> None:
    alice, bob, _wire, conn = connected
    sent = await alice.message_send(conn.their_did, BASIC, {"content": "hi"}, frm=conn.my_did)
    packed = (await alice.outbox_get(sent["id"]))["packed"]
    now = [0.0]
    bob.space = housekeeping.SpaceGuard(bob, clock=lambda: now[0])
    before = len(await bob.message_list())
    for limits, reason in (({"min_free_bytes": 1 << 50}, "bytes free"), ({"max_bytes": 4096}, "store takes")):
        bob.config = replace(bob.config, store={**{"max_bytes": 0, "min_free_bytes": 0}, **limits})
        now[0] += housekeeping.SPACE_CHECK_S
        with pytest.raises(housekeeping.StoreFullError, match=reason) as info:
            await bob.message_receive(packed)
        assert info.value.code == "unavailable"
        assert len(await bob.message_list()) == before  # nothing committed
        assert reason in (await bob.status())["store"]["refusing"]
    # Room again: taken at the next look, not before (one measurement a second).
    bob.config = replace(bob.config, store={"max_bytes": 0, "min_free_bytes": 0})
    with pytest.raises(housekeeping.StoreFullError):
        await bob.message_receive(packed)
    now[0] += housekeeping.SPACE_CHECK_S
    assert (await bob.message_receive(packed))["state"] == "received"
    assert (await bob.status())["store"]["refusing"] is None


def test_a_refused_message_stays_with_its_sender_until_there_is_room(daemon_factory: Any) -> None:
    """Between two daemons: B refuses while its disk is 'full'; A keeps the message and
    retries; after B's config is reloaded (SIGHUP) with room, the message arrives."""
    import signal

    from tests.daemon.test_two_daemons import ctl_json, outbox_state, received, wait_until

    full = "[store]\nmin_free_bytes = 1125899906842624\n"
    a: Daemon = daemon_factory(env={"DIDCOMMD_DELIVERY_RETRY_BASE": "0.2", "DIDCOMMD_DELIVERY_RETRY_MAX": "0.5"})
    b: Daemon = daemon_factory(config=full)
    did_b = ctl_json(b, "did", "create")["did"]
    ctl_json(a, "did", "create")
    sent = ctl_json(a, "send", "--to", did_b, "--type", BASIC, "--body", '{"content": "wait for room"}')
    wait_until("B refusing", lambda: any(r.get("event") == "store.full" for r in b.log_records()))
    wait_until("A retrying", lambda: outbox_state(a, sent["id"]) == "queued")
    assert received(b, sent["id"]) is None
    assert "bytes free" in b.call("status")["store"]["refusing"]
    (b.home / "didcommd.toml").write_text("[store]\nmin_free_bytes = 0\n")
    b.signal(signal.SIGHUP)
    got = wait_until("the message in B's inbox", lambda: received(b, sent["id"]))
    assert got["message"]["body"] == {"content": "wait for room"}
    wait_until("delivered on A", lambda: outbox_state(a, sent["id"]) == "delivered")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 6000), min_size=1, max_size=40), kept=st.integers(3, 30))
def test_events_are_bounded_by_bytes_too(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                                         sizes: list[int], kept: int) -> None:
    """Whatever the events weigh: the log is a suffix ending with the newest, at most
    EVENTS_KEPT_BYTES of data unless the newest alone is more, and the running total the
    store keeps is what the table holds."""
    import daemon.store as storemod

    cap = 20_000
    monkeypatch.setattr(storemod, "EVENTS_KEPT_BYTES", cap)
    monkeypatch.setattr(storemod, "EVENTS_KEPT", kept)
    monkeypatch.setattr(storemod, "EVENTS_PRUNE_BATCH", 2)
    store = open_store(tmp_path_factory.mktemp("events") / "s.sqlite3")
    try:
        for seq, size in enumerate(sizes, start=1):
            store.events_append([{"seq": seq, "kind": "k", "time": "t", "data": {"pad": "x" * size}}])
            stored = [e["seq"] for e in store.events_since(0)]
            assert stored == list(range(stored[0], seq + 1))  # a suffix, the newest kept
            total = store._conn.execute("SELECT SUM(size) FROM events").fetchone()[0]
            assert store._events_total() == total
            assert total <= cap or len(stored) == 1
            assert len(stored) <= kept + 2
    finally:
        store.close()


def test_an_erase_keeps_the_event_bytes_right(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    try:
        store.events_append([{"seq": 1, "kind": "message.received", "time": "t", "data": {"id": "m1", "x": "y" * 5000}}])
        store.inbox_insert_received("r1", b"p", transport="t", received=1, msg_id="m1", sender="did:ex:a", record={})
        before = store._events_total()
        assert store.message_erase("m1")["events"] == 1
        assert store._events_total() < before - 4000
        assert store._events_total() == store._conn.execute("SELECT SUM(size) FROM events").fetchone()[0]
    finally:
        store.close()


# -- received messages: [store] keep_received ---------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.integers(0, 9), min_size=1, max_size=30).map(sorted), cut=st.integers(0, 10),
       limit=st.integers(1, 4))
def test_events_prune_by_age(tmp_path_factory: pytest.TempPathFactory, times: list[int], cut: int,
                             limit: int) -> None:
    """Events stamped before the cut go, oldest first, in batches of any size, except the
    newest (numbering goes on from it); the store's running byte total stays right."""
    store = open_store(tmp_path_factory.mktemp("events") / "s.sqlite3")
    try:
        for seq, t in enumerate(times, start=1):
            store.events_append([{"seq": seq, "kind": "k", "time": f"2026-11-28T00:00:{t:02d}.000Z",
                                  "data": {"pad": "x" * seq}}])
        deleted = 0
        while True:
            n, more = store.events_prune_older(f"2026-11-28T00:00:{cut:02d}.000Z", limit=limit)
            assert n <= limit
            deleted += n
            if not more:
                break
        old = sum(1 for t in times[:-1] if t < cut)
        assert deleted == old
        assert [e["seq"] for e in store.events_since(0)] == list(range(old + 1, len(times) + 1))
        assert store.events_last_seq() == len(times)
        assert store._events_total() == store._conn.execute("SELECT SUM(size) FROM events").fetchone()[0]
    finally:
        store.close()


@pytest.fixture
async def aged(tmp_path: Path) -> Any:
    """Alice and Bob connected; Bob's clock (his store's and his events') is ``now[0]``."""
    from tests.daemon.test_conversations import Wire, connect

    now = [time.time()]
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"), clock=lambda: now[0])
    try:
        wire = Wire(alice, bob)
        await connect(alice, bob, wire)
        yield alice, bob, wire, (await alice.conversations.connections.list())[0].id, now
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_keep_received_erases_what_arrived_before_the_horizon(aged: Any) -> None:
    alice, bob, wire, conn, now = aged
    secret = "the key is under the third stone"
    old = await alice.conversations.chat(conn, secret)
    packed = (await alice.store.run(alice.store.sync.outbox_get, old["id"])).packed
    await wire.pump()
    assert (await bob.message_get(old["id"]))["message"]["body"]["content"] == secret
    assert await housekeeping.prune_received(bob) == {"inbox": 0, "events": 0}  # default: kept for ever

    now[0] += 8 * DAY
    new = await alice.conversations.chat(conn, "see you tomorrow")
    await wire.pump()
    bob.config = replace(bob.config, store={"keep_received": 7 * DAY})
    pruned = await housekeeping.prune_received(bob)
    # The old chat message, and the connection's messages received with it.
    assert pruned["inbox"] >= 1 and pruned["events"] >= 2

    with pytest.raises(NotFoundError, match="was deleted"):
        await bob.message_get(old["id"])
    with pytest.raises(NotFoundError):
        await bob.conversations.thread(old["id"])
    events = await bob.store.run(bob.store.sync.events_since, 0)
    assert not any(secret in json.dumps(e["data"]) for e in events)
    assert events and all(e["time"] >= iso_time(int(now[0]) - 7 * DAY) for e in events)
    # What came since is all there: the message, its thread, its events.
    assert (await bob.message_get(new["id"]))["message"]["body"]["content"] == "see you tomorrow"
    assert (await bob.conversations.thread(new["id"]))["records"]
    assert any(e["data"].get("id") == new["id"] for e in events)
    # So is the connection (a protocol record, not a message).
    assert await bob.conversations.connections.list()
    # The old message sent again is still a duplicate: its tombstone remembers it.
    assert (await bob.message_receive(packed))["state"] == "duplicate"
    # The next pass finds nothing more (and starts where this one stopped).
    assert await housekeeping.prune_received(bob) == {"inbox": 0, "events": 0}
    assert await bob.store.run(bob.store.sync.meta_get, INBOX_PRUNED_SEQ) > 0


async def test_kept_received_contents_leave_the_files(aged: Any) -> None:
    alice, bob, wire, conn, now = aged
    sent = await alice.conversations.chat(conn, "y" * 20_000)  # overflow pages too
    await wire.pump()
    path = bob.store.sync.path
    db = sqlite3.connect(path)
    try:
        # The message in the inbox, and its text in the basic-message record.
        blobs = [bytes(b) for (b,) in [
            *db.execute("SELECT record FROM inbox WHERE msg_id = ?", (sent["id"],)),
            *db.execute("SELECT record FROM protocol_records WHERE thid = ?", (sent["id"],)),
        ]]
    finally:
        db.close()
    files = (path, path.with_name(path.name + "-wal"))

    def found() -> list[bool]:
        data = b"".join(f.read_bytes() for f in files if f.exists())
        return [b[-32:] in data for b in blobs]

    assert len(blobs) == 2 and any(found())
    now[0] += 2 * DAY
    bob.config = replace(bob.config, store={"keep_received": DAY})
    assert (await housekeeping.prune_received(bob))["inbox"] >= 1
    assert found() == [False, False]


def test_keep_received_is_configured_and_checked(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert load_config(env=env).store.keep_received == 0
    assert load_config(env={**env, "DIDCOMMD_STORE_KEEP_RECEIVED": "86400"}).store.keep_received == DAY
    for bad in ("-1", "a week", "999999999999"):
        with pytest.raises(ConfigError, match="DIDCOMMD_STORE_KEEP_RECEIVED"):
            load_config(env={**env, "DIDCOMMD_STORE_KEEP_RECEIVED": bad})


def test_a_daemon_erases_old_received_messages_at_start(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(env={"DIDCOMMD_STORE_KEEP_RECEIVED": "1"})
    mine = d.call("did.create")["did"]
    other = d.call("did.create")["did"]
    sent = d.call("message.send", to=other, type=BASIC, body={"content": "gone by morning"}, **{"from": mine})
    deadline = time.monotonic() + 30
    while d.call("message.outbox.get", id=sent["id"])["state"] != OUTBOX_DELIVERED:
        assert time.monotonic() < deadline, "the message was never delivered"
        time.sleep(0.1)
    assert d.call("message.get", id=sent["id"])["state"] == "received"
    assert d.stop() == 0
    time.sleep(2.1)  # times are whole seconds
    d.start()
    show = d.ctl("message", "show", sent["id"])
    assert show.returncode == exitcodes.FAILURE and "was deleted" in show.stderr
    assert any(r.get("event") == "store.pruned" and r.get("inbox", 0) >= 1 for r in d.log_records())
